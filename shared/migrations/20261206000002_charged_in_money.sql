-- Whether a class is charged in money (a regular class not paid with a package credit; demos are
-- free): the one statement of that rule, read by cancellation refunds and the no-show refund.
ALTER TABLE bookings
    ADD COLUMN charged_in_money boolean NOT NULL
    GENERATED ALWAYS AS (session_type = 'regular' AND package_id IS NULL) STORED;
