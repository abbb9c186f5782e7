-- The admin's outbox view: newest first, optionally for one recipient.
CREATE INDEX email_outbox_created_idx ON email_outbox (created_at DESC, email_outbox_id DESC);
CREATE INDEX email_outbox_recipient_idx ON email_outbox (recipient, created_at DESC, email_outbox_id DESC);
