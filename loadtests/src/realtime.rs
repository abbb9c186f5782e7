//! A Web PubSub client as the frontend is one: negotiate with the API, connect with the JSON
//! subprotocol, then hand the connection to a class (video join, chat subscribe).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::phases::{expect_status, transport_error};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Negotiates as `token`'s user and connects; returns the socket and its connection id.
pub async fn connect(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<(Socket, String), String> {
    let (socket, connected, _) = connect_with(client, base, token, JSON).await?;
    let connection_id = connected["connectionId"]
        .as_str()
        .ok_or("connected message without connectionId")?
        .to_owned();
    Ok((socket, connection_id))
}

pub const JSON: &str = "json.webpubsub.azure.v1";
pub const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

/// [`connect`] with `subprotocol`; returns the socket, the hub's `connected` message and the
/// hub's client endpoint (where a reliable client reconnects).
pub async fn connect_with(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    subprotocol: &str,
) -> Result<(Socket, Value, String), String> {
    let negotiated: Value = expect_status(
        client
            .post(format!("{base}/api/realtime/negotiate"))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .await,
        reqwest::StatusCode::OK,
    )
    .map_err(|kind| format!("negotiate {kind}"))?
    .json()
    .await
    .map_err(|error| transport_error(&error))?;
    let url = negotiated["url"].as_str().ok_or("negotiate without url")?;
    let endpoint = url.split('?').next().unwrap_or(url).to_owned();
    let socket = open(url, subprotocol).await?;
    let mut socket = socket;
    let connected = next_frame(&mut socket, Duration::from_secs(10))
        .await
        .ok_or("no connected message")?;
    Ok((socket, connected, endpoint))
}

/// A WebSocket to `url` offering `subprotocol`.
pub async fn open(url: &str, subprotocol: &str) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|_| "bad client url")?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        subprotocol.parse().map_err(|_| "bad subprotocol")?,
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|_| "websocket connect error")?;
    Ok(socket)
}

/// POSTs `{"connectionId"}` to `path` (video join, chat subscribe). The hub reports the new
/// connection to the API asynchronously, so CONNECTION_NOT_YOURS is retried for a while.
pub async fn enter(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    connection_id: &str,
) -> Result<Value, String> {
    for _ in 0..200 {
        let response = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&json!({"connectionId": connection_id}))
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if status == reqwest::StatusCode::OK {
            return Ok(body);
        }
        if body["code"] != "CONNECTION_NOT_YOURS" {
            return Err(format!("HTTP {} {}", status.as_u16(), body["code"]));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err("connected event never reached the API".into())
}

/// The next JSON text frame within `wait`, or None (timeout or closed).
pub async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

pub async fn send(socket: &mut Socket, frame: &Value) -> Result<(), String> {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .map_err(|_| "websocket send error".to_owned())
}
