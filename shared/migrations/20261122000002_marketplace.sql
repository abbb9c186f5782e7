-- The marketplace: mentor profiles, bookable subjects, weekly slots, media; and the bookings and
-- reviews tables whose constraints make double booking impossible.

CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE mentor_profiles
    ADD COLUMN title text,
    ADD COLUMN description text,
    ADD COLUMN time_zone text NOT NULL DEFAULT 'Asia/Kolkata',
    ADD COLUMN upi_id text,
    ADD COLUMN demo_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN package_discount_percent integer NOT NULL DEFAULT 0
        CONSTRAINT mentor_profiles_package_discount_check CHECK (package_discount_percent BETWEEN 0 AND 50),
    ADD COLUMN rating numeric(3, 2) NOT NULL DEFAULT 0,
    ADD COLUMN review_count integer NOT NULL DEFAULT 0,
    ADD COLUMN student_count integer NOT NULL DEFAULT 0;

CREATE INDEX mentor_profiles_rating_idx ON mentor_profiles (rating DESC, user_id DESC);

CREATE TABLE teacher_subjects (
    teacher_subject_id  uuid PRIMARY KEY,
    mentor_id           uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    subject             text NOT NULL,
    experience_years    integer NOT NULL CONSTRAINT teacher_subjects_experience_check CHECK (experience_years BETWEEN 0 AND 60),
    class_fee           numeric(10, 2) NOT NULL DEFAULT 500.00 CONSTRAINT teacher_subjects_fee_check CHECK (class_fee > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX teacher_subjects_mentor_subject_key ON teacher_subjects (mentor_id, lower(subject));

-- Weekly availability in the mentor's time zone: ISO day of week (1 = Monday) and minutes
-- since local midnight.
CREATE TABLE time_slots (
    time_slot_id  uuid PRIMARY KEY,
    mentor_id     uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    day_of_week   integer NOT NULL CONSTRAINT time_slots_day_check CHECK (day_of_week BETWEEN 1 AND 7),
    start_minute  integer NOT NULL CONSTRAINT time_slots_start_check CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    integer NOT NULL CONSTRAINT time_slots_end_check CHECK (end_minute BETWEEN 1 AND 1440),
    is_blocked    boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_slots_start_before_end CHECK (start_minute < end_minute),
    CONSTRAINT time_slots_no_overlap EXCLUDE USING gist (
        mentor_id WITH =, day_of_week WITH =, int4range(start_minute, end_minute) WITH &&
    )
);

CREATE TABLE mentor_media (
    mentor_media_id   uuid PRIMARY KEY,
    mentor_id         uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind              text NOT NULL CONSTRAINT mentor_media_kind_check CHECK (kind IN ('photo', 'intro_video')),
    blob_name         text NOT NULL,
    content_type      text NOT NULL,
    size_bytes        bigint NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CONSTRAINT mentor_media_status_check CHECK (status IN ('pending', 'approved', 'rejected')),
    rejection_reason  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    reviewed_at       timestamptz,
    CONSTRAINT mentor_media_one_per_kind UNIQUE (mentor_id, kind)
);

CREATE INDEX mentor_media_pending_idx ON mentor_media (created_at) WHERE status = 'pending';

CREATE TABLE bookings (
    booking_id       uuid PRIMARY KEY,
    student_id       uuid NOT NULL REFERENCES users (user_id),
    mentor_id        uuid NOT NULL REFERENCES users (user_id),
    subject          text NOT NULL,
    session_type     text NOT NULL CONSTRAINT bookings_session_type_check CHECK (session_type IN ('demo', 'regular')),
    status           text NOT NULL CONSTRAINT bookings_status_check
                     CHECK (status IN ('pending_payment', 'confirmed', 'completed', 'cancelled', 'expired', 'no_show')),
    scheduled_at     timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    -- The class's end widened by the buffer in force when booked: the booking occupies
    -- [scheduled_at, blocked_until), so two active bookings are always a buffer apart.
    blocked_until    timestamptz NOT NULL,
    hold_expires_at  timestamptz,
    notes            text,
    class_fee        numeric(10, 2) NOT NULL DEFAULT 0,
    platform_fee     numeric(10, 2) NOT NULL DEFAULT 0,
    gst              numeric(10, 2) NOT NULL DEFAULT 0,
    mentor_payout    numeric(10, 2) NOT NULL DEFAULT 0,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_times_check CHECK (ends_at > scheduled_at AND blocked_until >= ends_at),
    CONSTRAINT bookings_idempotency_key UNIQUE (student_id, idempotency_key),
    CONSTRAINT bookings_mentor_no_overlap EXCLUDE USING gist (
        mentor_id WITH =, tstzrange(scheduled_at, blocked_until) WITH &&
    ) WHERE (status IN ('pending_payment', 'confirmed')),
    CONSTRAINT bookings_student_no_overlap EXCLUDE USING gist (
        student_id WITH =, tstzrange(scheduled_at, blocked_until) WITH &&
    ) WHERE (status IN ('pending_payment', 'confirmed'))
);

CREATE INDEX bookings_mentor_time_idx ON bookings (mentor_id, scheduled_at);
CREATE INDEX bookings_student_time_idx ON bookings (student_id, scheduled_at);

CREATE TABLE reviews (
    review_id   uuid PRIMARY KEY,
    booking_id  uuid NOT NULL CONSTRAINT reviews_booking_key UNIQUE REFERENCES bookings (booking_id),
    mentor_id   uuid NOT NULL REFERENCES users (user_id),
    student_id  uuid NOT NULL REFERENCES users (user_id),
    rating      integer NOT NULL CONSTRAINT reviews_rating_check CHECK (rating BETWEEN 1 AND 5),
    comment     text CONSTRAINT reviews_comment_check CHECK (char_length(comment) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX reviews_mentor_idx ON reviews (mentor_id, created_at DESC, review_id DESC);
