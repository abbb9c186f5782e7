-- The admin's ledger: newest first.
CREATE INDEX payment_transactions_created_idx ON payment_transactions (created_at DESC, payment_transaction_id DESC);
