//! The fault runs' workload, closed loop through the balancer: bookers (students in pairs racing
//! for the same mentor and start with free demo bookings, which confirm at once and send
//! e-mails), payers (a paid class booked, its Razorpay order made, then Checkout's verification
//! and Razorpay's webhook for the same payment, each settling it at most once), chatters (the students of classes in progress, one message every 3.1 s, the chat's
//! limit) with each class's mentor listening on a reliable Web PubSub connection, and readers
//! (discovery). A write that fails or times out is sent again with the same idempotency key
//! (or clientMessageId) after `Retry-After`, until it is answered; every attempt is logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::subscriber::{self, Subscriber};
use crate::phases::booking::at_hour_in_kolkata;
use crate::phases::http::discovery_url;
use crate::phases::transport_error;
use crate::razorpay;
use crate::seed::LoadData;

/// A request unanswered after this is a timeout (an error of its own).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// An operation still failing after this long is given up (and reported).
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
const BETWEEN_POSTS: Duration = Duration::from_millis(3100);
/// Time from one booking to a booker's next, as a person books.
const BETWEEN_BOOKINGS: Duration = Duration::from_secs(2);
/// Bookers per run, in racing pairs, payers, and classes with chat.
pub const BOOKERS: usize = 100;
pub const PAYERS: usize = 20;
const CHATS: usize = 50;

pub const DESCRIPTION: &str = "Workload: 100 students book a free demo every 2 s in racing pairs (same \
mentor and start; the loser's 409 is an expected refusal; each demo confirmed sends two e-mails), 20 students \
pay for a class every 2 s (booking, Razorpay order, Checkout's verification, then Razorpay's signed webhook for the same \
payment), 50 class participants chat every 3.1 s with the class's \
mentor listening on a reliable Web PubSub connection, the other connections read discovery. A booking, \
a payment step or a message that fails or times out (client timeout 10 s) is sent again with the same idempotency key \
or clientMessageId after Retry-After. Each fault's window runs from its injection until 5 s after it is \
over; an attempt overlapping a window counts inside it.\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The answer the step wants.
    Success,
    /// A designed refusal (a lost booking race).
    Refused,
    /// 503 problem+json: the dependency was out of reach; sent again.
    Unavailable,
    /// Anything else: another status, a timeout, a broken connection.
    Failed,
}

impl Class {
    pub fn is_failure(self) -> bool {
        matches!(self, Class::Unavailable | Class::Failed)
    }
}

/// One attempt: when it was sent and answered (seconds from the run's start), and how.
pub struct Answer {
    pub sent: f64,
    pub done: f64,
    pub class: Class,
    pub kind: String,
}

/// A booking request as the generator saw it in the end.
pub struct BookingRecord {
    pub student_id: Uuid,
    pub key: String,
    /// The booking the first answer or a retry returned (201), if any.
    pub booking_id: Option<Uuid>,
}

/// A class the generator paid for: Checkout's verification and the webhook both answered 200.
pub struct PaymentRecord {
    pub booking_id: Uuid,
    pub amount_minor: i64,
}

/// A chat message the generator posted and had answered.
pub struct MessageRecord {
    pub client_message_id: String,
    pub message_id: Uuid,
}

pub struct Outcome {
    pub started_at: DateTime<Utc>,
    pub elapsed: f64,
    pub answers: Vec<Answer>,
    pub operations: u64,
    /// Operations answered only after a retry.
    pub retried: u64,
    pub given_up: u64,
    pub bookings: Vec<BookingRecord>,
    pub payments: Vec<PaymentRecord>,
    pub messages: Vec<MessageRecord>,
    /// What each chat's listening mentor received, by booking.
    pub listeners: Vec<subscriber::Log>,
    /// Mentor tokens by chat booking, to fetch what was not delivered.
    pub mentor_tokens: HashMap<Uuid, String>,
    pub client: reqwest::Client,
    pub base: String,
    latency: Histogram<u64>,
}

impl Outcome {
    pub fn latency_summary(&self) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.latency.value_at_percentile(50.0) as f64 / 1000.0,
            self.latency.value_at_percentile(99.0) as f64 / 1000.0,
            self.latency.max() as f64 / 1000.0
        )
    }
}

/// What one virtual user logged.
#[derive(Default)]
struct UserLog {
    answers: Vec<Answer>,
    operations: u64,
    retried: u64,
    given_up: u64,
    bookings: Vec<BookingRecord>,
    payments: Vec<PaymentRecord>,
    messages: Vec<MessageRecord>,
}

pub struct Workload {
    started: Instant,
    started_at: DateTime<Utc>,
    stop: Arc<AtomicBool>,
    users: Vec<JoinHandle<UserLog>>,
    listeners: Vec<Subscriber>,
    drops: watch::Sender<u64>,
    mentor_tokens: HashMap<Uuid, String>,
    client: reqwest::Client,
    base: String,
}

/// What every user's loop shares.
struct Context {
    client: reqwest::Client,
    base: String,
    data: Arc<LoadData>,
    started: Instant,
    stop: Arc<AtomicBool>,
}

impl Workload {
    /// Connects the listeners, then starts `connections` users; `run` picks fresh students and
    /// days, so runs do not meet each other's bookings.
    pub async fn start(
        client: reqwest::Client,
        base: String,
        data: &LoadData,
        connections: usize,
        run: usize,
    ) -> anyhow::Result<Self> {
        let data = Arc::new(data.clone());
        let (drops, _) = watch::channel(0);
        let chats = CHATS.min(data.classes.len());
        let mut listeners = Vec::new();
        let mut mentor_tokens = HashMap::new();
        for class in &data.classes[..chats] {
            listeners.push(
                Subscriber::start(&client, &base, class, drops.subscribe())
                    .await
                    .map_err(|error| anyhow::anyhow!("a listener could not connect: {error}"))?,
            );
            mentor_tokens.insert(class.booking_id, class.mentor_token.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let started_at = Utc::now();
        let context = Arc::new(Context {
            client: client.clone(),
            base: base.clone(),
            data: data.clone(),
            started,
            stop: stop.clone(),
        });
        let bookers = BOOKERS.min(connections / 3);
        let payers = PAYERS.min(connections / 10);
        let first_booker = data.classes.len() + run * (BOOKERS + PAYERS);
        let first_payer = first_booker + BOOKERS;
        anyhow::ensure!(
            first_payer + payers <= data.student_ids.len(),
            "not enough seeded students for run {run}"
        );
        let mut users = Vec::new();
        for booker in 0..bookers {
            users.push(tokio::spawn(book(
                context.clone(),
                first_booker + booker,
                booker,
                run,
            )));
        }
        for payer in 0..payers {
            users.push(tokio::spawn(pay(
                context.clone(),
                first_payer + payer,
                payer,
                run,
            )));
        }
        for chat in 0..chats {
            users.push(tokio::spawn(chat_loop(context.clone(), chat)));
        }
        for _ in bookers + payers + chats..connections {
            users.push(tokio::spawn(read(context.clone())));
        }
        Ok(Workload {
            started,
            started_at,
            stop,
            users,
            listeners,
            drops,
            mentor_tokens,
            client,
            base,
        })
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Drops every listener's WebSocket; each resumes its connection.
    pub fn drop_hub_clients(&self) {
        self.drops.send_modify(|drops| *drops += 1);
    }

    /// Lets every user finish its operation (retries included), then the listeners drain.
    pub async fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        let mut outcome = Outcome {
            started_at: self.started_at,
            elapsed: 0.0,
            answers: Vec::new(),
            operations: 0,
            retried: 0,
            given_up: 0,
            bookings: Vec::new(),
            payments: Vec::new(),
            messages: Vec::new(),
            listeners: Vec::new(),
            mentor_tokens: self.mentor_tokens,
            client: self.client,
            base: self.base,
            latency: Histogram::new(3).expect("histogram"),
        };
        for user in self.users {
            let Ok(log) = user.await else { continue };
            outcome.operations += log.operations;
            outcome.retried += log.retried;
            outcome.given_up += log.given_up;
            outcome.answers.extend(log.answers);
            outcome.bookings.extend(log.bookings);
            outcome.payments.extend(log.payments);
            outcome.messages.extend(log.messages);
        }
        outcome.elapsed = self.started.elapsed().as_secs_f64();
        for answer in outcome.answers.iter().filter(|a| a.class == Class::Success) {
            let _ = outcome
                .latency
                .record(((answer.done - answer.sent) * 1_000_000.0) as u64);
        }
        // Together: each drains for a few seconds.
        outcome.listeners =
            futures::future::join_all(self.listeners.into_iter().map(Subscriber::stop)).await;
        outcome
    }
}

/// How one request ended, and the body when it was answered as wanted or refused by design.
enum Attempt {
    Answered(StatusCode, Value),
    Again(Duration),
}

/// Sends `request` until it is answered with one of `wanted` or refused with 409, at most
/// [`GIVE_UP_AFTER`]; logs every attempt.
async fn until_answered(
    context: &Context,
    log: &mut UserLog,
    wanted: &[StatusCode],
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Option<(StatusCode, Value)> {
    log.operations += 1;
    let first = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = context.started.elapsed().as_secs_f64();
        let result = classify(request().send().await, wanted).await;
        let done = context.started.elapsed().as_secs_f64();
        let (class, kind, attempt) = result;
        log.answers.push(Answer {
            sent,
            done,
            class,
            kind,
        });
        match attempt {
            Attempt::Answered(status, body) => {
                if attempts > 1 {
                    log.retried += 1;
                }
                return Some((status, body));
            }
            Attempt::Again(wait) if first.elapsed() + wait < GIVE_UP_AFTER => {
                tokio::time::sleep(wait).await;
            }
            Attempt::Again(_) => {
                log.given_up += 1;
                return None;
            }
        }
    }
}

async fn classify(
    response: reqwest::Result<reqwest::Response>,
    wanted: &[StatusCode],
) -> (Class, String, Attempt) {
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            let kind = transport_error(&error);
            return (
                Class::Failed,
                kind,
                Attempt::Again(Duration::from_millis(500)),
            );
        }
    };
    let status = response.status();
    let problem = response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), |s| Duration::from_secs(s.min(5)));
    let body: Value = response.json().await.unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    if wanted.contains(&status) {
        return (
            Class::Success,
            String::new(),
            Attempt::Answered(status, body),
        );
    }
    if status == StatusCode::CONFLICT {
        let kind = format!("HTTP 409 {code}");
        return (Class::Refused, kind, Attempt::Answered(status, body));
    }
    let class = if status == StatusCode::SERVICE_UNAVAILABLE && problem {
        Class::Unavailable
    } else {
        Class::Failed
    };
    let kind = format!("HTTP {} {code}", status.as_u16())
        .trim_end()
        .to_owned();
    (class, kind, Attempt::Again(retry_after))
}

/// Booker `booker` of this run as student `student`: round by round, a demo with the mentor and
/// start its pair partner also wants.
async fn book(context: Arc<Context>, student: usize, booker: usize, run: usize) -> UserLog {
    let mut log = UserLog::default();
    let data = &context.data;
    let token = &data.student_tokens[student];
    let student_id = data.student_ids[student];
    for round in 0.. {
        if context.stop.load(Ordering::SeqCst) || round >= data.mentor_ids.len() {
            break;
        }
        let next = Instant::now() + BETWEEN_BOOKINGS;
        let mentor = data.mentor_ids[(booker / 2 + round) % data.mentor_ids.len()];
        let booking = json!({"mentorId": mentor, "subject": "Physics", "sessionType": "demo",
                             "scheduledAt": start_of(run, round)});
        let key = format!("fault-{run}-{booker}-{round}");
        book_once(&context, &mut log, token, student_id, key, booking).await;
        tokio::time::sleep_until(next.into()).await;
    }
    log
}

/// Sends `booking` under the idempotency key `key` until answered; the booking it got, if any.
async fn book_once(
    context: &Context,
    log: &mut UserLog,
    token: &str,
    student_id: Uuid,
    key: String,
    mut booking: Value,
) -> Option<Uuid> {
    booking["idempotencyKey"] = json!(key);
    let answer = until_answered(context, log, &[StatusCode::CREATED], || {
        post_as(context, token, "/api/bookings", &booking)
    })
    .await;
    let booking_id = match &answer {
        Some((StatusCode::CREATED, body)) => {
            body["bookingId"].as_str().and_then(|id| id.parse().ok())
        }
        _ => None,
    };
    log.bookings.push(BookingRecord {
        student_id,
        key,
        booking_id,
    });
    booking_id
}

/// Payer `payer` of this run as student `student`: round by round, a paid class with a mentor
/// of its own (no race), paid through Razorpay: the order, Checkout's verification, then the
/// webhook for the same payment. Each step is retried until answered; a step given up leaves
/// the class unpaid (its hold lapses).
async fn pay(context: Arc<Context>, student: usize, payer: usize, run: usize) -> UserLog {
    let mut log = UserLog::default();
    let data = &context.data;
    let token = &data.student_tokens[student];
    let student_id = data.student_ids[student];
    for round in 0..ROUNDS {
        if context.stop.load(Ordering::SeqCst) {
            break;
        }
        let next = Instant::now() + BETWEEN_BOOKINGS;
        let mentor = data.mentor_ids[(payer * 5 + round) % data.mentor_ids.len()];
        // Days of their own, after the bookers': paid classes never meet the demos.
        let start = at_hour_in_kolkata(30 + run * 4 + round / 12, 9 + (round % 12) as u32);
        let booking = json!({"mentorId": mentor, "subject": "Physics", "sessionType": "regular",
                             "scheduledAt": start});
        let key = format!("fault-pay-{run}-{payer}-{round}");
        if let Some(booking_id) =
            book_once(&context, &mut log, token, student_id, key, booking).await
            && let Some(amount_minor) = pay_for(&context, &mut log, token, booking_id).await
        {
            log.payments.push(PaymentRecord {
                booking_id,
                amount_minor,
            });
        }
        tokio::time::sleep_until(next.into()).await;
    }
    log
}

/// Pays for `booking_id`; its amount once both Checkout's verification and the webhook were
/// answered 200.
async fn pay_for(
    context: &Context,
    log: &mut UserLog,
    token: &str,
    booking_id: Uuid,
) -> Option<i64> {
    let order = json!({"bookingId": booking_id});
    let (_, order) = until_answered(context, log, &[StatusCode::OK], || {
        post_as(context, token, "/api/payments/razorpay/orders", &order)
    })
    .await?;
    let order_id = order["orderId"].as_str()?.to_owned();
    let amount_minor = order["amount"].as_i64()?;
    let payment_id = format!("pay_{}", Uuid::new_v4().simple());
    let verify = json!({"orderId": order_id, "paymentId": payment_id,
                        "signature": razorpay::checkout_signature(&order_id, &payment_id)});
    let (verified, _) = until_answered(context, log, &[StatusCode::OK], || {
        post_as(context, token, "/api/payments/razorpay/verify", &verify)
    })
    .await?;
    let (event, signature) = razorpay::captured_webhook(&order_id, &payment_id, amount_minor);
    let (acknowledged, _) = until_answered(context, log, &[StatusCode::OK], || {
        context
            .client
            .post(format!("{}/api/payments/razorpay/webhook", context.base))
            .header("content-type", "application/json")
            .header("x-razorpay-event-id", format!("evt_{payment_id}"))
            .header("x-razorpay-signature", &signature)
            .body(event.clone())
    })
    .await?;
    (verified == StatusCode::OK && acknowledged == StatusCode::OK).then_some(amount_minor)
}

/// A student's JSON POST to `path`.
fn post_as(context: &Context, token: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
    context
        .client
        .post(format!("{}{path}", context.base))
        .bearer_auth(token)
        .json(body)
}

/// Rounds per booker or payer and run: hour by hour 09:00-20:00 in the mentors' zone on four
/// days.
const ROUNDS: usize = 48;

/// A start for round `round` of run `run`: hour by hour 09:00-20:00 in the mentors' zone, four
/// days per run, from two days ahead.
fn start_of(run: usize, round: usize) -> DateTime<Utc> {
    at_hour_in_kolkata(2 + run * 4 + (round / 12) % 4, 9 + (round % 12) as u32)
}

/// The student of class `chat` posts to its chat at the chat's pace.
async fn chat_loop(context: Arc<Context>, chat: usize) -> UserLog {
    let mut log = UserLog::default();
    let data = &context.data;
    let class = &data.classes[chat];
    let token = &data.student_tokens[chat];
    // Spread the first posts over one interval.
    tokio::time::sleep(BETWEEN_POSTS.mul_f64(chat as f64 / CHATS as f64)).await;
    for n in 0.. {
        if context.stop.load(Ordering::SeqCst) {
            break;
        }
        let next = Instant::now() + BETWEEN_POSTS;
        let client_message_id = format!("fault-{}-{chat}-{n}", Uuid::new_v4().simple());
        let body = json!({"message": format!("message {n}"), "clientMessageId": client_message_id});
        let answer = until_answered(
            &context,
            &mut log,
            &[StatusCode::CREATED, StatusCode::OK],
            || {
                context
                    .client
                    .post(format!(
                        "{}/api/bookings/{}/messages",
                        context.base, class.booking_id
                    ))
                    .bearer_auth(token)
                    .json(&body)
            },
        )
        .await;
        if let Some((_, body)) = answer
            && let Some(message_id) = body["messageId"].as_str().and_then(|id| id.parse().ok())
        {
            log.messages.push(MessageRecord {
                client_message_id,
                message_id,
            });
        }
        tokio::time::sleep_until(next.into()).await;
    }
    log
}

/// Discovery reads, one after another; a read is not retried.
async fn read(context: Arc<Context>) -> UserLog {
    let mut log = UserLog::default();
    while !context.stop.load(Ordering::SeqCst) {
        let sent = context.started.elapsed().as_secs_f64();
        let url = discovery_url(&context.base, &context.data.mentor_ids);
        let (class, kind, _) =
            classify(context.client.get(url).send().await, &[StatusCode::OK]).await;
        let failed = class.is_failure();
        log.operations += 1;
        log.answers.push(Answer {
            sent,
            done: context.started.elapsed().as_secs_f64(),
            class,
            kind,
        });
        if failed {
            // A client backs off a little after a failed read.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    log
}
