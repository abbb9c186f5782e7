//! People: students, admins and mentors in the states tests start from, and their codes.

use super::*;

impl TestApp {
    /// Signs up a student and returns `(user_id, session token)`.
    pub async fn student(&self, email: &str) -> (Uuid, String) {
        let response = self
            .post(
                "/api/auth/signup",
                &json!({"email": email, "password": PASSWORD, "firstName": "Stu", "lastName": "Dent", "role": "student"}),
                None,
            )
            .await;
        let body = response.expect_status(StatusCode::CREATED).await;
        (
            user_id_of(&body),
            body["sessionToken"].as_str().unwrap().to_owned(),
        )
    }

    /// Inserts an admin directly (as the bootstrap command does) and signs in.
    pub async fn admin(&self) -> (Uuid, String) {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        self.admin_with_email(&email).await
    }

    /// [`Self::admin`] under `email`, with the password [`PASSWORD`].
    pub async fn admin_with_email(&self, email: &str) -> (Uuid, String) {
        let hash = platform::auth::password::hash(PASSWORD.into())
            .await
            .unwrap();
        let user_id = Uuid::new_v4();
        sqlx::query("INSERT INTO users (user_id, email, password_hash, first_name, last_name, role) VALUES ($1, $2, $3, 'Ad', 'Min', 'admin')")
            .bind(user_id)
            .bind(email)
            .bind(hash)
            .execute(&self.db)
            .await
            .unwrap();
        (user_id, self.login(email).await)
    }

    pub async fn login(&self, email: &str) -> String {
        let response = self
            .post(
                "/api/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        let body = response.expect_status(StatusCode::OK).await;
        body["sessionToken"]
            .as_str()
            .expect("a session token")
            .to_owned()
    }

    /// Signs up a mentor (pending) and returns its id.
    pub async fn pending_mentor(&self, email: &str) -> Uuid {
        let response = self
            .post(
                "/api/auth/signup",
                &json!({
                    "email": email, "password": PASSWORD, "firstName": "Men", "lastName": "Tor",
                    "role": "mentor", "country": "India",
                    "qualifications": [{"qualification": "MSc", "specialization": "Physics", "score": "8.9"}],
                    "specialties": [{"subject": "Physics", "experience": 4}]
                }),
                None,
            )
            .await;
        user_id_of(&response.expect_status(StatusCode::CREATED).await)
    }

    /// A mentor that is approved, has enrolled TOTP and is signed in: `(id, token, totp secret)`.
    pub async fn signed_in_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String, String) {
        let mentor_id = self.pending_mentor(email).await;
        let approved = self
            .post(
                &format!("/api/admin/mentors/{mentor_id}/approve"),
                &json!({}),
                Some(admin_token),
            )
            .await;
        approved.expect_status(StatusCode::OK).await;
        let login = self
            .post(
                "/api/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        let enrollment = login.expect_status(StatusCode::OK).await["enrollmentToken"]
            .as_str()
            .expect("an enrollment token")
            .to_owned();
        let setup = self
            .post("/api/auth/2fa/setup", &json!({}), Some(&enrollment))
            .await;
        let secret = setup.expect_status(StatusCode::OK).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let verify = self
            .post(
                "/api/auth/2fa/verify",
                &json!({"code": totp_now(&secret)}),
                Some(&enrollment),
            )
            .await;
        let token = verify.expect_status(StatusCode::OK).await["sessionToken"]
            .as_str()
            .expect("a session after enrolment")
            .to_owned();
        (mentor_id, token, secret)
    }

    /// A mentor who appears in Find Mentors: approved, 2FA enrolled, one subject ("Physics",
    /// 4 years, 600.00), a Monday-to-Sunday 09:00-17:00 slot each day, and a UPI id.
    pub async fn visible_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String) {
        let (mentor_id, token, _) = self.signed_in_mentor(email, admin_token).await;
        let subject = json!({"subject": "Physics", "experienceYears": 4, "classFee": "600.00"});
        self.post("/api/mentors/me/subjects", &subject, Some(&token))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        for day in 1..=7 {
            let slot = json!({"dayOfWeek": day, "start": "09:00", "end": "17:00"});
            self.post("/api/mentors/me/slots", &slot, Some(&token))
                .await
                .expect_status(StatusCode::CREATED)
                .await;
        }
        let upi = json!({"upiId": "mentor@okaxis"});
        self.put("/api/mentors/me/upi", &upi, Some(&token))
            .await
            .expect_status(StatusCode::OK)
            .await;
        (mentor_id, token)
    }

    /// A mentor in UTC, available all day every day, teaching "Physics" at 600.00, with demos
    /// on: the simplest calendar for booking-rule tests.
    pub async fn open_mentor(&self, email: &str, admin_token: &str) -> (Uuid, String) {
        let (mentor_id, token) = self.visible_mentor(email, admin_token).await;
        let profile = json!({"firstName": "Open", "lastName": "Mentor", "timeZone": "UTC"});
        self.put("/api/mentors/me/profile", &profile, Some(&token))
            .await
            .expect_status(StatusCode::OK)
            .await;
        let slots = self
            .get("/api/mentors/me/slots", Some(&token))
            .await
            .expect_status(StatusCode::OK)
            .await;
        for slot in slots.as_array().unwrap() {
            let whole_day =
                json!({"dayOfWeek": slot["dayOfWeek"], "start": "00:00", "end": "24:00"});
            let path = format!("/api/mentors/me/slots/{}", slot["slotId"].as_str().unwrap());
            self.put(&path, &whole_day, Some(&token))
                .await
                .expect_status(StatusCode::OK)
                .await;
        }
        self.put(
            "/api/mentors/me/demo",
            &json!({"enabled": true}),
            Some(&token),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
        (mentor_id, token)
    }

    /// `n` students inserted directly with live sessions (fast: no password hashing).
    pub async fn students_direct(&self, n: usize) -> Vec<(Uuid, String)> {
        let mut students = Vec::with_capacity(n);
        for _ in 0..n {
            let user_id = Uuid::new_v4();
            let (token, token_hash) = platform::auth::token::generate();
            sqlx::query(
                r#"WITH u AS (INSERT INTO users (user_id, email, password_hash, first_name, last_name, role)
                              VALUES ($1, $1::text || '@students.example', 'unused', 'Load', 'Student', 'student'))
                   INSERT INTO sessions (session_id, user_id, token_hash, kind, expires_at)
                   VALUES (gen_random_uuid(), $1, $2, 'session', now() + interval '1 day')"#,
            )
            .bind(user_id)
            .bind(token_hash)
            .execute(&self.db)
            .await
            .expect("insert student");
            students.push((user_id, token));
        }
        students
    }
}

pub fn user_id_of(body: &Value) -> Uuid {
    body["user"]["userId"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no user id in {body}"))
}

/// The current TOTP code for `secret`, as an authenticator app would show it.
pub fn totp_now(secret: &str) -> String {
    totp_at(secret, 0)
}

/// The TOTP code `offset_seconds` from now.
pub fn totp_at(secret: &str, offset_seconds: i64) -> String {
    auth::totp::current_code(secret, chrono::Utc::now().timestamp() + offset_seconds)
        .expect("valid secret")
}
