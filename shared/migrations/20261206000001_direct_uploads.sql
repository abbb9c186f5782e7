-- Uploads go straight from the client to blob storage (azure-contracts: the host forwards at most
-- 100 MiB and cuts responses at 230 s).

-- A mentor's media upload between its write URL and its completion. Completion checks the stored
-- blob, then turns the row into `mentor_media`; the `media-uploads` timer deletes the blobs of
-- uploads never completed.
CREATE TABLE media_uploads (
    upload_id     uuid PRIMARY KEY,
    mentor_id     uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind          text NOT NULL CONSTRAINT media_uploads_kind_check CHECK (kind IN ('photo', 'intro_video')),
    blob_name     text NOT NULL UNIQUE,
    content_type  text NOT NULL,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_uploads_expires_idx ON media_uploads (expires_at);

-- Recording parts are blocks of the recording's one block blob (block id `part-NNN`), committed
-- in part order when the class is over: no blob per part, no copying merge.
ALTER TABLE recording_parts DROP COLUMN blob_name;

-- `failed`: the committed recording is not WebM; its blob is deleted and it is not retried.
ALTER TABLE recordings DROP CONSTRAINT recordings_status_check;
ALTER TABLE recordings ADD CONSTRAINT recordings_status_check CHECK (status IN ('merging', 'ready', 'failed'));
