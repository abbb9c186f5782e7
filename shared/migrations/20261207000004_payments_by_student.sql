-- A student's dashboard sums what the student paid through the ledger, from their orders.
CREATE INDEX payment_orders_student_idx ON payment_orders (student_id);
