//! Phases 1-4: plain HTTP against the handler (login, the database pool, the authenticated flow
//! and mentor discovery).

use std::sync::Arc;

use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::{Kind, StepResult, Target, VirtualUser, expect_ok, expect_status};
use crate::seed::PASSWORD;

pub struct User {
    target: Arc<Target>,
    kind: Kind,
    user: usize,
}

impl User {
    pub fn new(target: Arc<Target>, kind: Kind, user: usize) -> Self {
        Self { target, kind, user }
    }
}

impl VirtualUser for User {
    async fn step(&mut self) -> StepResult {
        let Target {
            client,
            base,
            data,
            connections,
        } = &*self.target;
        let student = random_student(self.user, *connections, data.student_emails.len());
        match self.kind {
            Kind::Login => login(client, base, &data.student_emails[student], None)
                .await
                .map(|(_, retried)| retried.then(|| RETRIED.to_owned())),
            Kind::DatabasePool => {
                let token = &data.student_tokens[self.user % data.student_tokens.len()];
                let request = match rand::rng().random_range(0..3) {
                    0 => client
                        .get(format!("{base}/api/bookings?when=past"))
                        .bearer_auth(token),
                    1 => client.get(format!("{base}/api/auth/me")).bearer_auth(token),
                    _ => {
                        let min_fee = 100 * rand::rng().random_range(3..=11);
                        client.get(format!("{base}/api/mentors?minFee={min_fee}&limit=20"))
                    }
                };
                expect_ok(request.send().await)
            }
            Kind::AuthenticatedFlow => {
                // Students of its own per virtual user, so logins don't revoke each other's sessions.
                let (token, retried) =
                    login(client, base, &data.student_emails[student], None).await?;
                expect_ok(
                    client
                        .get(format!("{base}/api/auth/me"))
                        .bearer_auth(&token)
                        .send()
                        .await,
                )?;
                expect_ok(
                    client
                        .get(format!("{base}/api/bookings?when=past"))
                        .bearer_auth(&token)
                        .send()
                        .await,
                )?;
                Ok(retried.then(|| RETRIED.to_owned()))
            }
            Kind::MentorDiscovery => expect_ok(
                client
                    .get(discovery_url(base, &data.mentor_ids))
                    .send()
                    .await,
            ),
            other => unreachable!("{other:?} is not a plain HTTP phase"),
        }
    }
}

/// One of discovery's calls, at random: the list with and without filters, a mentor's detail
/// and availability.
pub fn discovery_url(base: &str, mentors: &[Uuid]) -> String {
    let mentor = mentors[rand::rng().random_range(0..mentors.len())];
    let path = discovery_path(rand::rng().random_range(0..4), mentor);
    format!("{base}{path}")
}

/// Every path [`discovery_url`] asks for (what the discovery ceiling serves from memory).
pub fn discovery_paths(mentors: &[Uuid]) -> Vec<String> {
    let mut paths = vec![discovery_path(0, mentors[0]), discovery_path(1, mentors[0])];
    for mentor in mentors {
        paths.extend([discovery_path(2, *mentor), discovery_path(3, *mentor)]);
    }
    paths
}

fn discovery_path(kind: u32, mentor: Uuid) -> String {
    let date = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
    match kind {
        0 => "/api/mentors".to_owned(),
        1 => "/api/mentors?subject=physics&minRating=3.5&experience=3to5".to_owned(),
        2 => format!("/api/mentors/{mentor}"),
        _ => format!("/api/mentors/{mentor}/availability?date={date}"),
    }
}

/// A random student among those only this virtual user logs in as, so one account never has
/// several logins in flight (which the lockout, counting attempts in flight, would refuse as a
/// guessing burst). With more users than students, two users share each student.
fn random_student(user: usize, connections: usize, students: usize) -> usize {
    if connections >= students {
        return user % students;
    }
    let choices = (students - 1 - user) / connections + 1;
    user + connections * rand::rng().random_range(0..choices)
}

/// What a step reports when a login had to wait: the handler refused it as busy (503 `BUSY`,
/// the hashing threads' admission control) and it was sent again after `Retry-After`, as a
/// client does.
pub const RETRIED: &str = "login retried after 503 BUSY";

/// Logs in (from `address` when given, as the front end forwards it), sending again after
/// `Retry-After` while the handler answers 503 `BUSY`; success only with a 200 carrying a
/// session token. Also says whether it had to retry.
pub async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    address: Option<&str>,
) -> Result<(String, bool), String> {
    let mut retried = false;
    let response = loop {
        let mut request = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}));
        if let Some(address) = address {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await;
        let busy = matches!(&response, Ok(answer) if answer.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE);
        if !busy {
            break expect_status(response, reqwest::StatusCode::OK)?;
        }
        let wait = response
            .ok()
            .and_then(|answer| {
                answer
                    .headers()
                    .get("retry-after")?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()
            })
            .unwrap_or(1);
        retried = true;
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    };
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|_| "unreadable body".to_owned())?;
    body["sessionToken"]
        .as_str()
        .map(|token| (token.to_owned(), retried))
        .ok_or_else(|| "no session token".to_owned())
}
