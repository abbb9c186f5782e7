-- Accounts, sessions, password resets and the email outbox.

CREATE TABLE users (
    user_id              uuid PRIMARY KEY,
    -- Stored trimmed and lower-cased, so uniqueness is case-insensitive.
    email                text NOT NULL CONSTRAINT users_email_key UNIQUE
                         CONSTRAINT users_email_lowercase CHECK (email = lower(btrim(email))),
    password_hash        text NOT NULL,
    first_name           text NOT NULL,
    last_name            text NOT NULL,
    role                 text NOT NULL CONSTRAINT users_role_check CHECK (role IN ('student', 'mentor', 'admin')),
    country              text,
    is_active            boolean NOT NULL DEFAULT true,
    -- Only mentors go through approval; everyone else is 'approved' from the start.
    approval_status      text NOT NULL DEFAULT 'approved'
                         CONSTRAINT users_approval_status_check CHECK (approval_status IN ('pending', 'approved', 'rejected')),
    rejection_reason     text,
    totp_secret          text,
    totp_pending_secret  text,
    -- The last TOTP time step accepted, so a code can't be replayed within its window.
    totp_last_step       bigint,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX users_role_created_idx ON users (role, created_at DESC, user_id DESC);

-- Mentor details given at signup; the marketplace grows this table.
CREATE TABLE mentor_profiles (
    user_id         uuid PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    qualifications  jsonb NOT NULL DEFAULT '[]',
    specialties     jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    session_id    uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash    bytea NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE,
    -- 'session' authenticates requests; 'totp_enrollment' only lets a mentor enrol 2FA.
    kind          text NOT NULL CONSTRAINT sessions_kind_check CHECK (kind IN ('session', 'totp_enrollment')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

CREATE INDEX sessions_live_by_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE password_reset_codes (
    user_id     uuid PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_outbox (
    email_outbox_id  uuid PRIMARY KEY,
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    category         text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CONSTRAINT email_outbox_status_check CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);

CREATE INDEX email_outbox_pending_idx ON email_outbox (next_attempt_at) WHERE status = 'pending';
