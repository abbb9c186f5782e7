-- The admin's booking search: newest class first, across everyone.
CREATE INDEX bookings_scheduled_idx ON bookings (scheduled_at DESC, booking_id DESC);
