//! Seeds a dedicated database with load-test data in a few set-based statements: 100 visible
//! mentors (subjects, weekly slots, UPI ids), 2,000 students (or one per connection, when there
//! are more) with a known password and live sessions, completed bookings with reviews, and classes in progress (each with a mentor of its
//! own, as the no-overlap rule requires) with a finished recording each.

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

pub const PASSWORD: &str = "LoadTest123";
pub const MENTORS: usize = 100;
/// Students seeded at least; with more connections, one per connection, so no two virtual users
/// share an account (a login revokes the account's other sessions).
pub const MIN_STUDENTS: usize = 2000;
const DATABASE: &str = "codeconnect_load";

#[derive(Clone)]
pub struct LoadData {
    /// The load database's name.
    pub database: String,
    pub pooled_url: String,
    pub direct_url: String,
    pub student_ids: Vec<Uuid>,
    pub mentor_ids: Vec<Uuid>,
    pub student_emails: Vec<String>,
    /// One live session token per student (written directly, as a login would).
    pub student_tokens: Vec<String>,
    /// Classes happening now; class `k`'s student is student `k`.
    pub classes: Vec<Class>,
}

/// A confirmed class in progress between student `k` and a mentor who teaches only it.
#[derive(Clone)]
pub struct Class {
    pub booking_id: Uuid,
    pub mentor_id: Uuid,
    pub mentor_token: String,
    /// A finished recording of an earlier class between the same two people.
    pub recording_id: Uuid,
}

/// Seeds the load database with `students` students and `classes` classes in progress (at most
/// one per student).
pub async fn seed(students: usize, classes: usize) -> anyhow::Result<LoadData> {
    let classes = classes.clamp(1, students);
    let direct_base = std::env::var("LOAD_DATABASE_DIRECT_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let pooled_base = std::env::var("LOAD_DATABASE_POOLED_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:6432".into());
    let mut admin = PgConnection::connect(&format!("{direct_base}/postgres"))
        .await
        .context("connect to Postgres")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut admin)
        .await?;
    let direct_url = format!("{direct_base}/{DATABASE}");
    platform::db::migrate(&direct_url).await?;
    let mut db = PgConnection::connect(&direct_url).await?;
    let hash = platform::auth::password::hash(PASSWORD.into())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    sqlx::query(
        r#"INSERT INTO users (user_id, email, password_hash, first_name, last_name, role, country)
           SELECT gen_random_uuid(), 'mentor' || n || '@load.example', $1, 'Mentor', n::text, 'mentor', 'India'
           FROM generate_series(1, $2) n"#,
    )
    .bind(&hash)
    .bind(MENTORS as i32)
    .execute(&mut db)
    .await?;
    sqlx::query(
        r#"INSERT INTO mentor_profiles (user_id, title, description, upi_id, demo_enabled, rating, review_count)
           SELECT user_id, 'Mentor ' || last_name, 'Load-test mentor', 'm' || last_name || '@okaxis', true,
                  3 + (last_name::int % 200) / 100.0, 0
           FROM users WHERE role = 'mentor'"#,
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        r#"INSERT INTO teacher_subjects (teacher_subject_id, mentor_id, subject, experience_years, class_fee)
           SELECT gen_random_uuid(), u.user_id, s.subject, 1 + (u.last_name::int % 9), 400 + (u.last_name::int % 8) * 100
           FROM users u CROSS JOIN (VALUES ('Physics'), ('Mathematics')) s(subject)
           WHERE u.role = 'mentor'"#,
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        r#"INSERT INTO time_slots (time_slot_id, mentor_id, day_of_week, start_minute, end_minute)
           SELECT gen_random_uuid(), u.user_id, d, 9 * 60, 21 * 60
           FROM users u CROSS JOIN generate_series(1, 7) d WHERE u.role = 'mentor'"#,
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        r#"INSERT INTO users (user_id, email, password_hash, first_name, last_name, role)
           SELECT gen_random_uuid(), 'student' || n || '@load.example', $1, 'Student', n::text, 'student'
           FROM generate_series(1, $2) n"#,
    )
    .bind(&hash)
    .bind(i32::try_from(students)?)
    .execute(&mut db)
    .await?;
    // Past, completed classes with reviews, and upcoming confirmed ones, so lists have rows.
    sqlx::query(
        r#"WITH pairs AS (
               SELECT s.user_id AS student_id, m.user_id AS mentor_id, row_number() OVER () AS n
               FROM (SELECT user_id, row_number() OVER () AS k FROM users WHERE role = 'student') s
               JOIN (SELECT user_id, row_number() OVER () AS k FROM users WHERE role = 'mentor') m
                 ON m.k = 1 + (s.k % 100))
           INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at, ends_at,
                                 blocked_until, completed_at, class_fee, platform_fee, gst, mentor_payout)
           SELECT gen_random_uuid(), student_id, mentor_id, 'Physics', 'regular', 'completed',
                  date_trunc('hour', now()) - make_interval(days => 1 + (n % 300)::int, hours => (n / 300)::int),
                  date_trunc('hour', now()) - make_interval(days => 1 + (n % 300)::int, hours => (n / 300)::int) + interval '55 minutes',
                  date_trunc('hour', now()) - make_interval(days => 1 + (n % 300)::int, hours => (n / 300)::int) + interval '60 minutes',
                  now() - interval '1 day', 500, 75, 13.5, 411.5
           FROM pairs"#,
    )
    .execute(&mut db)
    .await?;
    sqlx::query(
        r#"INSERT INTO reviews (review_id, booking_id, mentor_id, student_id, rating, comment)
           SELECT gen_random_uuid(), booking_id, mentor_id, student_id, 3 + (abs(hashtext(booking_id::text)) % 3), 'Helpful'
           FROM bookings"#,
    )
    .execute(&mut db)
    .await?;

    // The highest limits an admin can set, so the booking race measures races, not limits.
    sqlx::query(
        r#"INSERT INTO platform_settings (setting_key, value) VALUES ('booking-limits',
           '{"dailyLimit": 20, "weeklyLimit": 100, "weeklyLimitEnabled": false, "monthlyLimit": 300,
             "maxActivePackages": 2, "bufferMinutes": 5}')"#,
    )
    .execute(&mut db)
    .await?;
    sqlx::query("INSERT INTO platform_settings (setting_key, value) VALUES ('rate-limits', $1)")
        .bind(load_budgets())
        .execute(&mut db)
        .await?;
    let class_rows = seed_classes(&mut db, &hash, classes).await?;

    let mentor_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM users WHERE role = 'mentor' AND email LIKE 'mentor%' ORDER BY email",
    )
    .fetch_all(&mut db)
    .await?;
    let students: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, email FROM users WHERE role = 'student' ORDER BY email")
            .fetch_all(&mut db)
            .await?;
    db.close().await?;
    let ids: Vec<Uuid> = students.iter().map(|(user_id, _)| *user_id).collect();
    let mentor_tokens = fresh_sessions(
        &direct_url,
        &class_rows.iter().map(|c| c.1).collect::<Vec<_>>(),
    )
    .await?;
    let classes = class_rows
        .into_iter()
        .zip(mentor_tokens)
        .map(
            |((booking_id, mentor_id, recording_id), mentor_token)| Class {
                booking_id,
                mentor_id,
                mentor_token,
                recording_id,
            },
        )
        .collect();
    Ok(LoadData {
        database: DATABASE.to_owned(),
        classes,
        pooled_url: format!("{pooled_base}/{DATABASE}"),
        student_tokens: fresh_sessions(&direct_url, &ids).await?,
        direct_url,
        student_ids: ids,
        mentor_ids,
        student_emails: students.into_iter().map(|(_, email)| email).collect(),
    })
}

/// `count` mentors who teach nothing listed, each with a confirmed class in progress with
/// student `k` (by email order) and a finished recording of an earlier class between them.
/// Returns (booking, mentor, recording) per class, in student order.
async fn seed_classes(
    db: &mut PgConnection,
    hash: &str,
    count: usize,
) -> anyhow::Result<Vec<(Uuid, Uuid, Uuid)>> {
    sqlx::query(
        r#"INSERT INTO users (user_id, email, password_hash, first_name, last_name, role)
           SELECT gen_random_uuid(), 'class-mentor' || lpad(n::text, 5, '0') || '@load.example', $1, 'Class', n::text, 'mentor'
           FROM generate_series(1, $2) n"#,
    )
    .bind(hash)
    .bind(count as i32)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        r#"INSERT INTO mentor_profiles (user_id, title, description, upi_id)
           SELECT user_id, 'Class mentor', 'Teaches one load-test class', 'c' || last_name || '@okaxis'
           FROM users WHERE email LIKE 'class-mentor%'"#,
    )
    .execute(&mut *db)
    .await?;
    let rows: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        r#"WITH pairs AS (
               SELECT s.user_id AS student_id, m.user_id AS mentor_id, s.k
               FROM (SELECT user_id, row_number() OVER (ORDER BY email) AS k FROM users WHERE role = 'student') s
               JOIN (SELECT user_id, row_number() OVER (ORDER BY email) AS k FROM users WHERE email LIKE 'class-mentor%') m
                 USING (k)),
           now_classes AS (
               INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status,
                                     scheduled_at, ends_at, blocked_until, class_fee, platform_fee, gst, mentor_payout)
               SELECT gen_random_uuid(), student_id, mentor_id, 'Physics', 'regular', 'confirmed',
                      now() - interval '10 minutes', now() + interval '45 minutes', now() + interval '50 minutes',
                      500, 75, 13.5, 411.5
               FROM pairs
               RETURNING booking_id, student_id, mentor_id),
           earlier AS (
               INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status,
                                     scheduled_at, ends_at, blocked_until, completed_at, class_fee, platform_fee, gst, mentor_payout)
               SELECT gen_random_uuid(), student_id, mentor_id, 'Physics', 'regular', 'completed',
                      now() - interval '2 days', now() - interval '2 days' + interval '55 minutes',
                      now() - interval '2 days' + interval '60 minutes', now() - interval '2 days', 500, 75, 13.5, 411.5
               FROM pairs
               RETURNING booking_id, mentor_id),
           recorded AS (
               INSERT INTO recordings (recording_id, booking_id, status, blob_name, size_bytes, part_count, ready_at)
               SELECT gen_random_uuid(), booking_id, 'ready', 'load/' || booking_id || '.webm', 1048576, 1, now()
               FROM earlier
               RETURNING recording_id, booking_id)
           SELECT c.booking_id, c.mentor_id, r.recording_id
           FROM now_classes c
           JOIN earlier e USING (mentor_id)
           JOIN recorded r ON r.booking_id = e.booking_id
           JOIN pairs p ON p.mentor_id = c.mentor_id
           ORDER BY p.k"#,
    )
    .fetch_all(&mut *db)
    .await?;
    anyhow::ensure!(
        rows.len() == count,
        "seeded {} of {count} classes",
        rows.len()
    );
    Ok(rows)
}

/// A live session per student, written directly (as a login would). Logins revoke a user's
/// other sessions, so phases that use tokens get fresh ones.
pub async fn fresh_sessions(direct_url: &str, student_ids: &[Uuid]) -> anyhow::Result<Vec<String>> {
    let mut db = PgConnection::connect(direct_url).await?;
    let (tokens, hashes): (Vec<String>, Vec<Vec<u8>>) = student_ids
        .iter()
        .map(|_| platform::auth::token::generate())
        .unzip();
    sqlx::query(
        r#"INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at)
           SELECT gen_random_uuid(), u, h, 'session', now() + interval '1 day'
           FROM unnest($1::uuid[], $2::bytea[]) AS t(u, h)"#,
    )
    .bind(student_ids)
    .bind(&hashes)
    .execute(&mut db)
    .await?;
    db.close().await?;
    Ok(tokens)
}

/// Budgets no virtual user meets (all share one IP and loop closed): the phases measure the
/// handler, its budget checks included, not the limits. The `rate-limits` setting's shape.
pub fn load_budgets() -> serde_json::Value {
    let quota = serde_json::json!({"limit": 1_000_000, "windowSeconds": 60});
    let limits: serde_json::Map<String, serde_json::Value> = [
        "perIp",
        "perSession",
        "signupPerIp",
        "loginPerIp",
        "recoveryPerIp",
        "twoFactorPerSession",
        "checkoutPerSession",
        "negotiatePerSession",
        "uploadsPerSession",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), quota.clone()))
    .collect();
    serde_json::Value::Object(limits)
}
