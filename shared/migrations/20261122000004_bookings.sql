-- Booking lifecycle details, packages, and in-app notifications.

ALTER TABLE bookings
    ADD COLUMN package_id uuid,
    ADD COLUMN cancelled_by uuid REFERENCES users (user_id),
    ADD COLUMN cancel_reason text,
    ADD COLUMN cancelled_at timestamptz,
    -- Share of the class fee to refund (0, 50 or 100), fixed by the cancellation policy.
    ADD COLUMN refund_percent integer CONSTRAINT bookings_refund_percent_check CHECK (refund_percent BETWEEN 0 AND 100),
    ADD COLUMN refund_amount numeric(10, 2),
    ADD COLUMN mentor_joined_at timestamptz,
    ADD COLUMN student_joined_at timestamptz,
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN reminder_24h_sent_at timestamptz,
    ADD COLUMN reminder_1h_sent_at timestamptz;

-- One demo per student and mentor, ever, unless it was cancelled (or its hold lapsed).
CREATE UNIQUE INDEX bookings_one_demo_per_pair ON bookings (student_id, mentor_id)
    WHERE session_type = 'demo' AND status NOT IN ('cancelled', 'expired');

CREATE INDEX bookings_pending_holds_idx ON bookings (hold_expires_at) WHERE status = 'pending_payment';
CREATE INDEX bookings_confirmed_start_idx ON bookings (scheduled_at) WHERE status = 'confirmed';

CREATE TABLE packages (
    package_id         uuid PRIMARY KEY,
    student_id         uuid NOT NULL REFERENCES users (user_id),
    mentor_id          uuid NOT NULL REFERENCES users (user_id),
    subject            text NOT NULL,
    class_fee          numeric(10, 2) NOT NULL,
    discount_percent   integer NOT NULL,
    price              numeric(10, 2) NOT NULL,
    credits_total      integer NOT NULL DEFAULT 6,
    credits_remaining  integer NOT NULL DEFAULT 6,
    status             text NOT NULL DEFAULT 'pending_payment'
                       CONSTRAINT packages_status_check CHECK (status IN ('pending_payment', 'active', 'exhausted', 'cancelled', 'expired')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT packages_credits_check CHECK (credits_remaining BETWEEN 0 AND credits_total)
);

CREATE INDEX packages_student_idx ON packages (student_id, created_at DESC);

ALTER TABLE bookings ADD CONSTRAINT bookings_package_fkey FOREIGN KEY (package_id) REFERENCES packages (package_id);

CREATE TABLE notifications (
    notification_id  uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind             text NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL,
    booking_id       uuid REFERENCES bookings (booking_id) ON DELETE SET NULL,
    read_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, notification_id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;
