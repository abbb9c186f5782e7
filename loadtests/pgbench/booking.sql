-- The booking transaction's own statements (functions/bookings/src/create.rs and policy.rs),
-- run by pgbench through PgBouncer as the booking phase's ceiling: what the database alone
-- sustains, without the handler. A random student books a regular class with a random mentor
-- at a random hour of the seeded slots; a taken start is skipped by ON CONFLICT DO NOTHING
-- where the handler answers 409 (pgbench would abort the client on the error).
\set s random(1, :students)
\set m random(1, :mentors)
\set day random(2, 51)
\set hour random(9, 20)
SELECT user_id AS student FROM load_bench_students WHERE n = :s \gset
SELECT user_id AS mentor FROM load_bench_mentors WHERE n = :m \gset
SELECT booking_id FROM bookings WHERE student_id = :student::uuid AND idempotency_key = 'bench-' || :s::int || '-' || :day::int || '-' || :hour::int;
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended(least(:student::uuid, :mentor::uuid)::text, 0));
SELECT pg_advisory_xact_lock(hashtextextended(greatest(:student::uuid, :mentor::uuid)::text, 0));
SELECT booking_id FROM bookings WHERE student_id = :student::uuid AND idempotency_key = 'bench-' || :s::int || '-' || :day::int || '-' || :hour::int;
UPDATE bookings SET status = 'expired', updated_at = now()
 WHERE status = 'pending_payment' AND hold_expires_at <= now() AND (mentor_id = :mentor::uuid OR student_id = :student::uuid);
SELECT p.time_zone, p.upi_id IS NOT NULL, p.demo_enabled, p.package_discount_percent
  FROM users u JOIN mentor_profiles p USING (user_id)
 WHERE u.user_id = :mentor::uuid AND u.role = 'mentor' AND u.is_active AND u.approval_status = 'approved';
SELECT subject, class_fee FROM teacher_subjects WHERE mentor_id = :mentor::uuid AND lower(subject) = lower('Physics');
SELECT day_of_week, start_minute, end_minute FROM time_slots WHERE mentor_id = :mentor::uuid AND NOT is_blocked FOR SHARE;
SELECT count(*) FILTER (WHERE date_trunc('day', scheduled_at AT TIME ZONE 'Asia/Kolkata') = date_trunc('day', (current_date + :day::int + make_interval(hours => :hour::int - 5, mins => -30)) AT TIME ZONE 'Asia/Kolkata')),
       count(*) FILTER (WHERE date_trunc('week', scheduled_at AT TIME ZONE 'Asia/Kolkata') = date_trunc('week', (current_date + :day::int + make_interval(hours => :hour::int - 5, mins => -30)) AT TIME ZONE 'Asia/Kolkata')),
       count(*) FILTER (WHERE date_trunc('month', scheduled_at AT TIME ZONE 'Asia/Kolkata') = date_trunc('month', (current_date + :day::int + make_interval(hours => :hour::int - 5, mins => -30)) AT TIME ZONE 'Asia/Kolkata'))
  FROM bookings
 WHERE student_id = :student::uuid AND status IN ('pending_payment', 'confirmed', 'completed', 'no_show') AND booking_id IS DISTINCT FROM NULL;
INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at,
                      ends_at, blocked_until, hold_expires_at, notes, class_fee, platform_fee, gst,
                      mentor_payout, idempotency_key, package_id)
SELECT gen_random_uuid(), :student::uuid, :mentor::uuid, 'Physics', 'regular', 'pending_payment', start,
       start + interval '55 minutes', start + interval '70 minutes', now() + interval '15 minutes', NULL,
       500.00, 50.00, 9.00, 450.00, 'bench-' || :s::int || '-' || :day::int || '-' || :hour::int, NULL
  FROM (SELECT (current_date + :day::int + make_interval(hours => :hour::int - 5, mins => -30))::timestamptz AS start) t
ON CONFLICT DO NOTHING;
SELECT b.booking_id, b.student_id, s.first_name || ' ' || s.last_name AS student_name,
       b.mentor_id, m.first_name || ' ' || m.last_name AS mentor_name, b.subject, b.session_type,
       b.status, b.scheduled_at, b.ends_at, b.hold_expires_at, b.notes, b.class_fee, b.platform_fee,
       b.gst, b.mentor_payout, b.package_id, b.cancelled_by, b.cancel_reason, b.refund_percent,
       b.refund_amount, b.reschedule_count, b.created_at
  FROM bookings b JOIN users s ON s.user_id = b.student_id JOIN users m ON m.user_id = b.mentor_id
 WHERE b.student_id = :student::uuid AND b.idempotency_key = 'bench-' || :s::int || '-' || :day::int || '-' || :hour::int;
COMMIT;
