-- Payments: checkout orders at the gateways, the ledger, and webhook deliveries seen.

CREATE TABLE payment_orders (
    payment_order_id    uuid PRIMARY KEY,
    gateway             text NOT NULL CONSTRAINT payment_orders_gateway_check CHECK (gateway IN ('razorpay', 'stripe')),
    -- Razorpay order id (order_…) or Stripe PaymentIntent id (pi_…).
    gateway_order_id    text NOT NULL CONSTRAINT payment_orders_gateway_order_key UNIQUE,
    booking_id          uuid REFERENCES bookings (booking_id),
    package_id          uuid REFERENCES packages (package_id),
    student_id          uuid NOT NULL REFERENCES users (user_id),
    amount_minor        bigint NOT NULL CONSTRAINT payment_orders_amount_check CHECK (amount_minor > 0),
    currency            text NOT NULL,
    status              text NOT NULL DEFAULT 'created'
                        CONSTRAINT payment_orders_status_check CHECK (status IN ('created', 'paid', 'failed')),
    gateway_payment_id  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_orders_one_target CHECK ((booking_id IS NULL) <> (package_id IS NULL))
);

-- The ledger. One row per gateway payment, per refund of a booking, per payout.
CREATE TABLE payment_transactions (
    payment_transaction_id  uuid PRIMARY KEY,
    kind                    text NOT NULL CONSTRAINT payment_transactions_kind_check CHECK (kind IN ('payment', 'refund', 'payout')),
    gateway                 text,
    -- Payment id (pay_…/pi_…), refund id, or payout reference.
    gateway_reference       text,
    payment_order_id        uuid REFERENCES payment_orders (payment_order_id),
    booking_id              uuid REFERENCES bookings (booking_id),
    package_id              uuid REFERENCES packages (package_id),
    mentor_id               uuid REFERENCES users (user_id),
    amount                  numeric(10, 2) NOT NULL,
    currency                text NOT NULL DEFAULT 'INR',
    status                  text NOT NULL CONSTRAINT payment_transactions_status_check CHECK (status IN ('pending', 'succeeded', 'failed')),
    last_error              text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX payment_transactions_one_payment ON payment_transactions (gateway, gateway_reference) WHERE kind = 'payment';
-- At most one refund per booking and per payment; at most one payout per booking.
CREATE UNIQUE INDEX payment_transactions_one_refund_per_payment ON payment_transactions (payment_order_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX payment_transactions_one_payout ON payment_transactions (booking_id) WHERE kind = 'payout';

CREATE TABLE webhook_events (
    gateway      text NOT NULL,
    event_id     text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, event_id)
);
