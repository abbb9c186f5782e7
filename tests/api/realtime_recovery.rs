//! The reliable subprotocol's recovery in the local hub, as Azure's service does it: a client
//! whose socket drops reconnects with its connection id and reconnection token, keeps its
//! connection (no `disconnected` reaches the app, its groups stay) and gets every message it had
//! not acknowledged, in order, before new ones.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;
use crate::realtime::{Socket, connect_with, next, send, wait_for};

const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

/// The hub's client endpoint with recovery parameters instead of an access token.
async fn recovery_url(
    app: &TestApp,
    token: &str,
    connected: &Value,
    reconnection_token: &str,
) -> String {
    let negotiated = app
        .post("/api/realtime/negotiate", &json!({}), Some(token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let endpoint = negotiated["url"]
        .as_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    format!(
        "{endpoint}?awps_connection_id={}&awps_reconnection_token={reconnection_token}",
        connected["connectionId"].as_str().unwrap()
    )
}

async fn reconnect(url: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", RELIABLE.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("reconnect")
        .0
}

async fn post_chat(app: &TestApp, booking: uuid::Uuid, token: &str, text: &str) {
    app.post(
        &format!("/api/bookings/{booking}/messages"),
        &json!({"message": text, "clientMessageId": text}),
        Some(token),
    )
    .await
    .expect_status(StatusCode::CREATED)
    .await;
}

fn chat_text(frame: &Value) -> &str {
    frame["data"]["message"]["message"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dropped_reliable_client_resumes_its_connection_and_gets_what_it_missed() {
    let app = app_with_hub().await;
    let class = app.class_in_progress().await;
    let (mut mentor, connected) = connect_with(&app, &class.mentor, RELIABLE).await;
    let connection_id = connected["connectionId"].as_str().unwrap().to_owned();
    let token = connected["reconnectionToken"]
        .as_str()
        .expect("a reconnection token")
        .to_owned();
    app.post(
        &format!("/api/bookings/{}/messages/subscribe", class.booking_id),
        &json!({"connectionId": connection_id}),
        Some(&class.mentor),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;

    // One message received and acknowledged, one received but not acknowledged.
    post_chat(&app, class.booking_id, &class.student, "first").await;
    let first = wait_for(&mut mentor, |f| chat_text(f) == "first").await;
    let acked = first["sequenceId"].as_u64().expect("a sequence id");
    send(
        &mut mentor,
        json!({"type": "sequenceAck", "sequenceId": acked}),
    )
    .await;
    post_chat(&app, class.booking_id, &class.student, "second").await;
    wait_for(&mut mentor, |f| chat_text(f) == "second").await;

    // The socket drops without a close frame; two messages are sent meanwhile.
    drop(mentor);
    post_chat(&app, class.booking_id, &class.student, "third").await;
    post_chat(&app, class.booking_id, &class.student, "fourth").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let still_known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM realtime_connections WHERE connection_id = $1)",
    )
    .bind(&connection_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        still_known,
        "a recoverable drop must not end the connection for the app"
    );

    // A wrong token is refused with 1008; the right one resumes the same connection.
    let mut refused =
        reconnect(&recovery_url(&app, &class.mentor, &connected, "forged").await).await;
    match refused.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("a forged recovery must be closed with 1008, got {other:?}"),
    }
    let mut mentor = reconnect(&recovery_url(&app, &class.mentor, &connected, &token).await).await;
    let again = next(&mut mentor).await.expect("a connected message");
    assert_eq!(again["event"], "connected");
    assert_eq!(again["connectionId"], connection_id.as_str());

    // Everything after the acknowledged message, in order, then new messages as usual.
    let mut resent = Vec::new();
    for _ in 0..3 {
        let frame = next(&mut mentor).await.expect("a resent message");
        resent.push((
            chat_text(&frame).to_owned(),
            frame["sequenceId"].as_u64().unwrap(),
        ));
    }
    assert_eq!(
        resent,
        [
            ("second".into(), acked + 1),
            ("third".into(), acked + 2),
            ("fourth".into(), acked + 3)
        ]
    );
    post_chat(&app, class.booking_id, &class.student, "fifth").await;
    let fifth = wait_for(&mut mentor, |f| chat_text(f) == "fifth").await;
    assert_eq!(fifth["sequenceId"].as_u64(), Some(acked + 4));
}
