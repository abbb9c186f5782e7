//! Bookings arranged directly, for states the API can't reach now.

use super::*;

/// What [`TestApp::class_in_progress`] arranges; tokens are session tokens.
pub struct ClassInProgress {
    pub booking_id: Uuid,
    pub mentor_id: Uuid,
    pub mentor: String,
    pub student_id: Uuid,
    pub student: String,
    pub admin: String,
}

impl TestApp {
    /// Inserts a regular 600.00 booking directly, to arrange states the API can't reach now
    /// (classes in the past, paid classes, classes starting in minutes).
    pub async fn insert_booking(
        &self,
        mentor_id: Uuid,
        student_id: Uuid,
        starts_at: chrono::DateTime<chrono::Utc>,
        status: &str,
    ) -> Uuid {
        let booking_id = Uuid::new_v4();
        sqlx::query(
            r#"INSERT INTO bookings (booking_id, student_id, mentor_id, subject, session_type, status, scheduled_at, ends_at,
                                    blocked_until, class_fee, platform_fee, gst, mentor_payout)
               VALUES ($1, $2, $3, 'Physics', 'regular', $4, $5, $5 + interval '55 minutes', $5 + interval '60 minutes',
                       600.00, 90.00, 16.20, 493.80)"#,
        )
        .bind(booking_id)
        .bind(student_id)
        .bind(mentor_id)
        .bind(status)
        .bind(starts_at)
        .execute(&self.db)
        .await
        .expect("insert booking");
        booking_id
    }

    /// A class in progress: an admin, a mentor, a student and their confirmed booking that
    /// started 10 minutes ago.
    pub async fn class_in_progress(&self) -> ClassInProgress {
        let (_, admin) = self.admin().await;
        let (mentor_id, mentor) = self.open_mentor("class-mentor@example.com", &admin).await;
        let (student_id, student) = self.student("class-student@example.com").await;
        let booking_id = self
            .insert_booking(
                mentor_id,
                student_id,
                chrono::Utc::now() - chrono::Duration::minutes(10),
                "confirmed",
            )
            .await;
        ClassInProgress {
            booking_id,
            mentor_id,
            mentor,
            student_id,
            student,
            admin,
        }
    }
}

/// A UTC instant `days` from today at `hour:minute`.
pub fn at(days: i64, hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    let date = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    date.and_hms_opt(hour, minute, 0).unwrap().and_utc()
}
