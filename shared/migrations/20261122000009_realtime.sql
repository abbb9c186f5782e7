-- Chat per booking (product-spec §5) and video classes (§6).

CREATE TABLE chat_messages (
    message_id         uuid PRIMARY KEY,
    booking_id         uuid NOT NULL REFERENCES bookings (booking_id),
    sender_id          uuid NOT NULL REFERENCES users (user_id),
    body               text NOT NULL CONSTRAINT chat_messages_body_check CHECK (length(body) BETWEEN 1 AND 4000),
    client_message_id  text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A client's retry of one message is the same message.
    CONSTRAINT chat_messages_client_id UNIQUE (booking_id, sender_id, client_message_id)
);
CREATE INDEX chat_messages_booking_idx ON chat_messages (booking_id, created_at, message_id);

-- How far each participant has read a booking's chat.
CREATE TABLE chat_reads (
    booking_id    uuid NOT NULL REFERENCES bookings (booking_id),
    user_id       uuid NOT NULL REFERENCES users (user_id),
    read_up_to    timestamptz NOT NULL,
    PRIMARY KEY (booking_id, user_id)
);

CREATE TABLE video_joins (
    booking_id       uuid NOT NULL REFERENCES bookings (booking_id),
    user_id          uuid NOT NULL REFERENCES users (user_id),
    first_joined_at  timestamptz NOT NULL DEFAULT now(),
    last_joined_at   timestamptz NOT NULL DEFAULT now(),
    joins            integer NOT NULL DEFAULT 1,
    -- The connection that joined last; its disconnect is the participant leaving.
    connection_id    text,
    PRIMARY KEY (booking_id, user_id)
);

ALTER TABLE bookings ADD COLUMN fallback_meeting_link text;

-- WebRTC quality samples (every 3 s per participant) and notable events, stored append-only.
CREATE TABLE webrtc_stats (
    booking_id       uuid NOT NULL,
    user_id          uuid NOT NULL,
    recorded_at      timestamptz NOT NULL,
    connection_type  text NOT NULL,
    packet_loss      real,
    rtt_ms           real,
    jitter_ms        real,
    bitrate_in_kbps  real,
    bitrate_out_kbps real,
    health_score     real
);
CREATE INDEX webrtc_stats_booking_idx ON webrtc_stats (booking_id, recorded_at);
CREATE INDEX webrtc_stats_time_idx ON webrtc_stats USING brin (recorded_at);

CREATE TABLE webrtc_events (
    booking_id   uuid NOT NULL,
    user_id      uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    kind         text NOT NULL,
    detail       jsonb
);
CREATE INDEX webrtc_events_booking_idx ON webrtc_events (booking_id, occurred_at);

-- Web PubSub connections of signed-in users, from the upstream connected/disconnected events:
-- a client may only ask for rights on a connection that is its own.
CREATE TABLE realtime_connections (
    connection_id  text PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    connected_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX realtime_connections_user_idx ON realtime_connections (user_id);
