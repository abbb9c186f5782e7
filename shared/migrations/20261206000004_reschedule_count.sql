-- How many times a booking was moved: reschedules are capped per booking.
ALTER TABLE bookings ADD COLUMN reschedule_count integer NOT NULL DEFAULT 0 CHECK (reschedule_count >= 0);
