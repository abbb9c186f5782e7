-- Class recordings (product-spec §7): the mentor's client uploads numbered parts during the
-- class; the `recordings` timer merges them into one blob, then deletes the parts.

CREATE TABLE recording_parts (
    booking_id   uuid NOT NULL REFERENCES bookings (booking_id),
    part_number  integer NOT NULL CONSTRAINT recording_parts_number_check CHECK (part_number BETWEEN 1 AND 999),
    blob_name    text NOT NULL,
    size_bytes   bigint NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, part_number)
);

-- One per booking. `merging` while a timer run holds the lease (`lease_until`); a failed merge
-- keeps its row with `last_error` and is retried once the lease has run out.
CREATE TABLE recordings (
    recording_id  uuid PRIMARY KEY,
    booking_id    uuid NOT NULL UNIQUE REFERENCES bookings (booking_id),
    status        text NOT NULL CONSTRAINT recordings_status_check CHECK (status IN ('merging', 'ready')),
    blob_name     text,
    size_bytes    bigint,
    part_count    integer,
    attempts      integer NOT NULL DEFAULT 1,
    last_error    text,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz,
    CONSTRAINT recordings_ready_check CHECK (status <> 'ready' OR (blob_name IS NOT NULL AND size_bytes IS NOT NULL))
);

CREATE INDEX recording_parts_uploaded_idx ON recording_parts (booking_id);
