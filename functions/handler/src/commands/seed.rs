//! `handler seed-demo`: demo data for a local run (admin, 60 visible mentors with subjects,
//! slots and UPI ids, 25 students). Idempotent: accounts that exist are kept.

use anyhow::Context;
use platform::auth::password;
use platform::config::DatabaseConfig;
use platform::config::ExposeSecret;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Every demo account's password.
pub const DEMO_PASSWORD: &str = "DemoPass123";
/// The demo mentors' TOTP secret (enter it in any authenticator app).
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";
const MENTORS: usize = 60;
const STUDENTS: usize = 25;
const SUBJECTS: [&str; 6] = [
    "Rust",
    "Python",
    "Mathematics",
    "Physics",
    "Web Development",
    "Data Science",
];

pub async fn seed_demo(database: &DatabaseConfig) -> anyhow::Result<()> {
    let url = database.operator_url();
    let mut connection =
        PgConnection::connect_with(&platform::db::connect_options(url.expose_secret())?)
            .await
            .context("connect to Postgres")?;
    // One hash for all demo accounts: they share a password, and hashing 85 times is slow.
    let password_hash = password::hash(DEMO_PASSWORD.into())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let mut transaction = connection.begin().await?;
    insert(
        &mut transaction,
        "admin@codeconnect.local",
        "Ada",
        "Admin",
        "admin",
        &password_hash,
        None,
    )
    .await?;
    for n in 1..=MENTORS {
        let email = format!("mentor{n:02}@codeconnect.local");
        let created = insert(
            &mut transaction,
            &email,
            "Mentor",
            &format!("{n:02}"),
            "mentor",
            &password_hash,
            Some(DEMO_TOTP_SECRET),
        )
        .await?;
        if let Some(user_id) = created {
            seed_mentor_profile(&mut transaction, user_id, n).await?;
        }
    }
    for n in 1..=STUDENTS {
        let email = format!("student{n:02}@codeconnect.local");
        insert(
            &mut transaction,
            &email,
            "Student",
            &format!("{n:02}"),
            "student",
            &password_hash,
            None,
        )
        .await?;
    }
    transaction.commit().await?;

    println!("demo data ready; every password is {DEMO_PASSWORD}");
    println!("  admin:    admin@codeconnect.local");
    println!(
        "  mentors:  mentor01..mentor{MENTORS:02}@codeconnect.local (TOTP secret {DEMO_TOTP_SECRET})"
    );
    println!("  students: student01..student{STUDENTS:02}@codeconnect.local");
    Ok(())
}

/// A visible mentor: profile, two subjects, weekday and weekend slots, a UPI id.
async fn seed_mentor_profile(
    connection: &mut PgConnection,
    user_id: Uuid,
    n: usize,
) -> anyhow::Result<()> {
    let subjects = [
        SUBJECTS[n % SUBJECTS.len()],
        SUBJECTS[(n + 1) % SUBJECTS.len()],
    ];
    let experience = 1 + (n % 10) as i32;
    let specialties = serde_json::json!([{ "subject": subjects[0], "experience": experience }]);
    let rating = rust_decimal::Decimal::new(300 + (n as i64 * 37) % 200, 2);
    sqlx::query(
        r#"INSERT INTO mentor_profiles (user_id, specialties, title, description, upi_id, demo_enabled, rating, time_zone)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'Asia/Kolkata')"#,
    )
    .bind(user_id)
    .bind(specialties)
    .bind(format!("{} mentor", subjects[0]))
    .bind(format!("Demo mentor {n:02}: patient, practical {} lessons.", subjects[0]))
    .bind(format!("mentor{n:02}@okaxis"))
    .bind(n.is_multiple_of(2))
    .bind(rating)
    .execute(&mut *connection)
    .await?;
    for (index, subject) in subjects.iter().enumerate() {
        sqlx::query(
            r#"INSERT INTO teacher_subjects (teacher_subject_id, mentor_id, subject, experience_years, class_fee)
               VALUES ($1, $2, $3, $4, $5)"#,
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(subject)
        .bind(experience + index as i32)
        .bind(rust_decimal::Decimal::new(40_000 + (n as i64 % 8) * 10_000, 2))
        .execute(&mut *connection)
        .await?;
    }
    // Weekdays 17:00-21:00 and Saturday 09:00-13:00, in the mentor's time zone.
    let slots = (1..=5)
        .map(|day| (day, 17 * 60, 21 * 60))
        .chain([(6, 9 * 60, 13 * 60)]);
    for (day, start, end) in slots {
        sqlx::query(
            r#"INSERT INTO time_slots (time_slot_id, mentor_id, day_of_week, start_minute, end_minute)
               VALUES ($1, $2, $3, $4, $5)"#,
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(day)
        .bind(start)
        .bind(end)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Inserts an approved, active account unless the email exists; returns the new id.
async fn insert(
    connection: &mut PgConnection,
    email: &str,
    first_name: &str,
    last_name: &str,
    role: &str,
    password_hash: &str,
    totp_secret: Option<&str>,
) -> anyhow::Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        r#"INSERT INTO users (user_id, email, password_hash, first_name, last_name, role, country, totp_secret)
           VALUES ($1, $2, $3, $4, $5, $6, 'India', $7)
           ON CONFLICT (email) DO NOTHING
           RETURNING user_id"#,
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .bind(first_name)
    .bind(last_name)
    .bind(role)
    .bind(totp_secret)
    .fetch_optional(connection)
    .await?)
}
