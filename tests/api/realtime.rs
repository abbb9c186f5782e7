//! Real time end to end over real WebSockets: the app with its local Web PubSub hub (same REST,
//! JWT, client protocol and CloudEvents as Azure), two participants signalling through their
//! class's group, a stranger shut out, presence on join and leave, chat pushes; and the event
//! handler's Entra token and abuse-protection checks.

use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::helpers::*;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Negotiates and connects as `token`'s user; returns the socket and its connection id once
/// the app has recorded the connection (from the hub's `connect` event).
async fn connect(app: &TestApp, token: &str) -> (Socket, String) {
    let (socket, connected) = connect_with(app, token, "json.webpubsub.azure.v1").await;
    let connection_id = connected["connectionId"].as_str().unwrap().to_owned();
    (socket, connection_id)
}

/// [`connect`] with `subprotocol`; returns the socket and the hub's `connected` message.
pub(crate) async fn connect_with(app: &TestApp, token: &str, subprotocol: &str) -> (Socket, Value) {
    let negotiated = app
        .post("/api/realtime/negotiate", &json!({}), Some(token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let mut request = negotiated["url"]
        .as_str()
        .unwrap()
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", subprotocol.parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], subprotocol);
    let connected = next(&mut socket).await.expect("a connected message");
    assert_eq!(
        (&connected["type"], &connected["event"]),
        (&json!("system"), &json!("connected"))
    );
    let connection_id = connected["connectionId"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM realtime_connections WHERE connection_id = $1)",
        )
        .bind(&connection_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if known {
            return (socket, connected);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the connected event never reached the app");
}

/// The next JSON frame within 5 s, or None.
pub(crate) async fn next(socket: &mut Socket) -> Option<Value> {
    next_within(socket, Duration::from_secs(5)).await
}

async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

pub(crate) async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// Frames until one matches, within 5 s.
pub(crate) async fn wait_for(socket: &mut Socket, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..20 {
        let frame = next(socket).await.expect("the expected frame never came");
        if matches(&frame) {
            return frame;
        }
    }
    panic!("the expected frame never came");
}

async fn join(
    app: &TestApp,
    booking_id: Uuid,
    connection_id: &str,
    token: &str,
) -> reqwest::Response {
    app.post(
        &format!("/api/bookings/{booking_id}/video/join"),
        &json!({"connectionId": connection_id}),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn participants_signal_through_their_class_group_and_strangers_get_nothing() {
    let app = app_with_hub().await;
    let class = app.class_in_progress().await;
    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(ready["realtime"], "up");
    let (mut mentor, mentor_connection) = connect(&app, &class.mentor).await;
    let (mut student, student_connection) = connect(&app, &class.student).await;

    let joined = join(&app, class.booking_id, &mentor_connection, &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let group = joined["group"].as_str().unwrap().to_owned();
    assert_eq!(group, format!("booking.{}.video", class.booking_id));
    let mentor_joined: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT mentor_joined_at FROM bookings WHERE booking_id = $1")
            .bind(class.booking_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        mentor_joined.is_some(),
        "the mentor's join is recorded for the no-show rule"
    );
    join(&app, class.booking_id, &student_connection, &class.student)
        .await
        .expect_status(StatusCode::OK)
        .await;
    // Presence: the mentor hears the student arrive (after their own arrival).
    let student_id = class.student_id.to_string();
    let presence = wait_for(&mut mentor, |f| {
        f["data"]["type"] == "presence" && f["data"]["userId"] == student_id.as_str()
    })
    .await;
    assert_eq!(presence["from"], "server");
    assert_eq!(presence["data"]["event"], "user-joined");
    assert_eq!(presence["data"]["userId"], class.student_id.to_string());

    // Offer, answer and a candidate, client to client; noEcho keeps the sender's copy away.
    send(
        &mut student,
        json!({"type": "sendToGroup", "group": group, "ackId": 1, "noEcho": true,
                              "dataType": "json", "data": {"kind": "offer", "sdp": "v=0 offer"}}),
    )
    .await;
    let ack = wait_for(&mut student, |f| f["type"] == "ack").await;
    assert_eq!((&ack["ackId"], &ack["success"]), (&json!(1), &json!(true)));
    let offer = wait_for(&mut mentor, |f| f["from"] == "group").await;
    assert_eq!(offer["data"], json!({"kind": "offer", "sdp": "v=0 offer"}));
    assert_eq!(offer["fromUserId"], class.student_id.to_string());
    send(
        &mut mentor,
        json!({"type": "sendToGroup", "group": group, "noEcho": true,
                             "data": {"kind": "answer", "sdp": "v=0 answer"}}),
    )
    .await;
    send(&mut mentor, json!({"type": "sendToGroup", "group": group, "noEcho": true,
                             "data": {"kind": "ice", "candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host"}})).await;
    let answer = wait_for(&mut student, |f| f["from"] == "group").await;
    assert_eq!(answer["data"]["kind"], "answer");
    let candidate = wait_for(&mut student, |f| f["from"] == "group").await;
    assert_eq!(candidate["data"]["kind"], "ice");

    // A stranger: the API refuses, and the hub refuses joining and sending on its own.
    let (_, stranger_token) = app.student("rt-stranger@example.com").await;
    let (mut stranger, stranger_connection) = connect(&app, &stranger_token).await;
    join(
        &app,
        class.booking_id,
        &stranger_connection,
        &stranger_token,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
    .await;
    // Nor may a participant hand a class to someone else's connection.
    join(&app, class.booking_id, &stranger_connection, &class.student)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "CONNECTION_NOT_YOURS")
        .await;
    send(
        &mut stranger,
        json!({"type": "joinGroup", "group": group, "ackId": 7}),
    )
    .await;
    let refused = wait_for(&mut stranger, |f| f["type"] == "ack").await;
    assert_eq!(
        (&refused["success"], &refused["error"]["name"]),
        (&json!(false), &json!("Forbidden"))
    );
    send(&mut stranger, json!({"type": "sendToGroup", "group": group, "ackId": 8, "data": {"kind": "offer", "sdp": "evil"}})).await;
    let refused = wait_for(&mut stranger, |f| f["type"] == "ack").await;
    assert_eq!(refused["error"]["name"], "Forbidden");
    assert_eq!(
        next_within(&mut mentor, Duration::from_millis(500)).await,
        None,
        "nothing from the stranger"
    );
    assert_eq!(
        next_within(&mut student, Duration::from_millis(200)).await,
        None
    );

    // The student's rights are on this class's group only.
    send(&mut student, json!({"type": "sendToGroup", "group": format!("booking.{}.video", Uuid::new_v4()), "ackId": 2, "data": {}})).await;
    let other = wait_for(&mut student, |f| f["type"] == "ack").await;
    assert_eq!(other["error"]["name"], "Forbidden");

    // Leaving: the mentor hears it when the student's socket closes.
    student.close(None).await.unwrap();
    let left = wait_for(&mut mentor, |f| {
        f["data"]["type"] == "presence" && f["data"]["event"] == "user-left"
    })
    .await;
    assert_eq!(left["data"]["userId"], class.student_id.to_string());
    let _ = class.mentor_id;
}

#[tokio::test]
async fn joins_outside_the_window_or_for_unconfirmed_classes_are_refused() {
    let app = app_with_hub().await;
    let class = app.class_in_progress().await;
    let (_mentor, connection) = connect(&app, &class.mentor).await;
    // A class in progress that was cancelled has no video.
    app.execute(
        "UPDATE bookings SET status = 'cancelled' WHERE booking_id = $1",
        class.booking_id,
    )
    .await;
    join(&app, class.booking_id, &connection, &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "VIDEO_WINDOW_CLOSED")
        .await;
    // 16 minutes before the start is too early; 14 minutes before is fine.
    let at = |minutes: i64| Utc::now() + chrono::Duration::minutes(minutes);
    let later = app
        .insert_booking(class.mentor_id, class.student_id, at(16), "confirmed")
        .await;
    join(&app, later, &connection, &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "VIDEO_WINDOW_CLOSED")
        .await;
    app.execute(
        "UPDATE bookings SET status = 'cancelled' WHERE booking_id = $1",
        later,
    )
    .await;
    let soon = app
        .insert_booking(class.mentor_id, class.student_id, at(14), "confirmed")
        .await;
    join(&app, soon, &connection, &class.mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    // 5 minutes after the end it closes (this one ended 6 minutes ago).
    let ended = app
        .insert_booking(class.mentor_id, class.student_id, at(-61), "confirmed")
        .await;
    join(&app, ended, &connection, &class.mentor)
        .await
        .expect_problem(StatusCode::CONFLICT, "VIDEO_WINDOW_CLOSED")
        .await;
    let _ = class.admin;
}

#[tokio::test]
async fn a_chat_message_posted_over_http_reaches_the_other_participants_socket() {
    let app = app_with_hub().await;
    let class = app.class_in_progress().await;
    let (mut mentor, mentor_connection) = connect(&app, &class.mentor).await;
    let subscribed = app
        .post(
            &format!("/api/bookings/{}/messages/subscribe", class.booking_id),
            &json!({"connectionId": mentor_connection}),
            Some(&class.mentor),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        subscribed["group"],
        format!("booking.{}.chat", class.booking_id)
    );
    let sent = app
        .post(
            &format!("/api/bookings/{}/messages", class.booking_id),
            &json!({"message": "See you at 5", "clientMessageId": "m-1"}),
            Some(&class.student),
        )
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let pushed = wait_for(&mut mentor, |f| f["data"]["type"] == "chat.message").await;
    assert_eq!(pushed["data"]["message"]["messageId"], sent["messageId"]);
    assert_eq!(pushed["data"]["message"]["message"], "See you at 5");
    // A stranger can't subscribe to the chat.
    let (_, stranger_token) = app.student("rt-chat-stranger@example.com").await;
    let (_stranger, stranger_connection) = connect(&app, &stranger_token).await;
    app.post(
        &format!("/api/bookings/{}/messages/subscribe", class.booking_id),
        &json!({"connectionId": stranger_connection}),
        Some(&stranger_token),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
    .await;
}

/// The claims Web PubSub's identity carries in a v1 Entra token for the events audience.
fn service_claims(app: &TestApp) -> Value {
    let issuer = app.issuer();
    let events = app.events_rules();
    let now = Utc::now().timestamp();
    json!({"aud": events.audiences[0], "iss": issuer.v1_issuer(), "iat": now, "nbf": now,
           "exp": now + 3600, "tid": issuer.tenant_id(), "oid": events.principal_ids[0],
           "appid": events.principal_ids[0], "ver": "1.0"})
}

fn with(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

/// A `connect` event (the one that records the connection) for `connection` carrying
/// `authorization`.
async fn connect_event(
    app: &TestApp,
    user_id: Uuid,
    connection: &str,
    authorization: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/realtime/events"))
        .header("ce-specversion", "1.0")
        .header("ce-awpsversion", "1.0")
        .header("ce-type", "azure.webpubsub.sys.connect")
        .header("ce-connectionId", connection)
        .header("ce-userId", user_id.to_string())
        .header("ce-hub", "codeconnect")
        .json(&json!({}));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_event_handler_admits_only_our_web_pubsubs_entra_token() {
    let app = app_with_hub().await;
    let (user_id, _) = app.student("events@example.com").await;
    let genuine = service_claims(&app);
    let now = Utc::now().timestamp();
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let sign = |claims: &Value| bearer(app.issuer().sign(claims));
    let valid = app.issuer().sign(&genuine);
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered_payload = data_encoding::BASE64URL_NOPAD.encode(
        with(&genuine, json!({"oid": Uuid::new_v4()}))
            .to_string()
            .as_bytes(),
    );
    let unsigned_head = data_encoding::BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned_body = data_encoding::BASE64URL_NOPAD.encode(genuine.to_string().as_bytes());
    let other_issuer = azure_clients::entra::LocalIssuer::spawn().await.unwrap();

    let refused = [
        ("missing", None),
        ("not a bearer", Some(format!("Basic {valid}"))),
        (
            "expired",
            sign(&with(
                &genuine,
                json!({"exp": now - 120, "nbf": now - 3600}),
            )),
        ),
        (
            "not yet valid",
            sign(&with(&genuine, json!({"nbf": now + 600}))),
        ),
        (
            "wrong tenant",
            sign(&with(&genuine, json!({"tid": Uuid::new_v4()}))),
        ),
        (
            "wrong issuer",
            sign(&with(
                &genuine,
                json!({"iss": "https://sts.windows.net/x/"}),
            )),
        ),
        (
            "wrong audience",
            sign(&with(
                &genuine,
                json!({"aud": "https://webpubsub.azure.com"}),
            )),
        ),
        (
            "wrong oid",
            sign(&with(
                &genuine,
                json!({"oid": app.issuer().app_principal_id()}),
            )),
        ),
        (
            "alg none",
            Some(format!("Bearer {unsigned_head}.{unsigned_body}.")),
        ),
        ("unknown key", bearer(other_issuer.sign(&genuine))),
        (
            "tampered payload",
            Some(format!("Bearer {head}.{tampered_payload}.{signature}")),
        ),
    ];
    for (case, authorization) in refused {
        connect_event(&app, user_id, &format!("c-{case}"), authorization)
            .await
            .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_EVENT_TOKEN")
            .await;
    }
    assert_eq!(
        app.count("realtime_connections").await,
        0,
        "nothing recorded from refused events"
    );

    assert_eq!(
        connect_event(&app, user_id, "c-genuine", bearer(valid))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    // A v2 token (from a registration asking for v2) is as good as the v1 ones managed
    // identities get by default.
    let v2 = with(
        &genuine,
        json!({"iss": app.issuer().v2_issuer(), "ver": "2.0"}),
    );
    assert_eq!(
        connect_event(&app, user_id, "c-v2", sign(&v2))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.count("realtime_connections").await, 2);
}

#[tokio::test]
async fn a_connect_refused_for_its_token_never_admits_the_client() {
    let app = app_with_hub().await;
    let (user_id, _) = app.student("connect-refused@example.com").await;
    let forged = app
        .issuer()
        .sign(&with(&service_claims(&app), json!({"tid": Uuid::new_v4()})));

    let response = app
        .client
        .post(app.url("/api/realtime/events"))
        .header("ce-type", "azure.webpubsub.sys.connect")
        .header("ce-connectionId", "c-forged")
        .header("ce-userId", user_id.to_string())
        .header("authorization", format!("Bearer {forged}"))
        .json(&json!({"claims": {}}))
        .send()
        .await
        .unwrap();

    // Web PubSub rejects the WebSocket handshake on any non-2xx connect answer.
    response
        .expect_problem(StatusCode::UNAUTHORIZED, "INVALID_EVENT_TOKEN")
        .await;
}

#[tokio::test]
async fn clients_connect_again_after_the_issuer_rotates_its_key() {
    let app = app_with_hub().await;
    let (_, first) = app.student("rotation-1@example.com").await;
    let (_, second) = app.student("rotation-2@example.com").await;
    // The first connection makes the app fetch and cache the issuer's keys.
    let (_first_socket, _) = connect(&app, &first).await;

    app.issuer().rotate().unwrap();
    // A key the app has not seen is looked up again at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_second_socket, connection) = connect(&app, &second).await;

    assert!(!connection.is_empty());
}

#[tokio::test]
async fn the_abuse_protection_handshake_answers_only_our_web_pubsub() {
    let app = app_with_hub().await;
    let ask = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/realtime/events"))
            .header("webhook-request-origin", origin)
            .send()
    };

    let ours = ask("127.0.0.1").await.unwrap();
    let other = ask("attacker.webpubsub.azure.com").await.unwrap();

    assert_eq!(ours.status(), StatusCode::OK);
    assert_eq!(ours.headers()["webhook-allowed-origin"], "127.0.0.1");
    assert!(!other.headers().contains_key("webhook-allowed-origin"));
    other
        .expect_problem(StatusCode::FORBIDDEN, "ORIGIN_NOT_ALLOWED")
        .await;
}

#[tokio::test]
async fn an_unreachable_web_pubsub_degrades_real_time_only() {
    let app = spawn_app_with(Options {
        realtime: Some(unreachable_realtime()),
        ..Options::default()
    })
    .await;

    let ready = app
        .get("/api/health/ready", None)
        .await
        .expect_status(StatusCode::OK)
        .await;

    assert_eq!(ready["realtime"], "down");
}

#[tokio::test]
async fn negotiation_needs_a_session_and_configured_real_time() {
    let app = spawn_app().await;
    let (_, student) = app.student("negotiate@example.com").await;
    assert_eq!(
        app.post("/api/realtime/negotiate", &json!({}), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.post("/api/realtime/negotiate", &json!({}), Some(&student))
        .await
        .expect_problem(StatusCode::SERVICE_UNAVAILABLE, "REALTIME_UNAVAILABLE")
        .await;
}

#[tokio::test]
async fn schedule_changes_reach_only_the_people_involved() {
    let app = app_with_hub().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor_token) = app.open_mentor("sched-mentor@example.com", &admin).await;
    let (_, student_token) = app.student("sched-student@example.com").await;
    let (_, stranger_token) = app.student("sched-stranger@example.com").await;
    let (mut mentor, _) = connect(&app, &mentor_token).await;
    let (mut student, _) = connect(&app, &student_token).await;
    let (mut stranger, _) = connect(&app, &stranger_token).await;

    let booking = json!({"mentorId": mentor_id, "subject": "Physics", "sessionType": "demo",
                         "scheduledAt": at(2, 8, 0).to_rfc3339(), "idempotencyKey": Uuid::new_v4().to_string()});
    let created = app
        .post("/api/bookings", &booking, Some(&student_token))
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    for socket in [&mut mentor, &mut student] {
        let pushed = wait_for(socket, |f| f["from"] == "server").await;
        assert_eq!(pushed["data"], json!({"type": "schedule.changed"}));
    }
    let booking_id = created["bookingId"].as_str().unwrap();
    app.post(
        &format!("/api/bookings/{booking_id}/cancel"),
        &json!({"reason": "clash"}),
        Some(&mentor_token),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    let pushed = wait_for(&mut student, |f| f["from"] == "server").await;
    assert_eq!(pushed["data"]["type"], "schedule.changed");
    assert_eq!(
        next_within(&mut stranger, Duration::from_millis(500)).await,
        None,
        "not broadcast"
    );
}
