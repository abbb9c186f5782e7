-- Reset codes are now stored as an HMAC under RESET_CODE_KEY; codes stored as plain SHA-256
-- before this could no longer be checked (and a leaked copy reverses them), so they go.
DELETE FROM password_reset_codes;
