-- Admin-tuned platform settings, one JSON document per setting; code holds the defaults.

CREATE TABLE platform_settings (
    setting_key  text PRIMARY KEY,
    value        jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   uuid REFERENCES users (user_id)
);
