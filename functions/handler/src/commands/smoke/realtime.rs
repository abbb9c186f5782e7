//! A client's WebSocket to Web PubSub (the JSON subprotocol), as the product's frontends open it.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SUBPROTOCOL: &str = "json.webpubsub.azure.v1";
const WAIT: Duration = Duration::from_secs(10);

pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub connection_id: String,
}

impl Socket {
    /// Connects to the URL `negotiate` gave and waits for the service's `connected` message.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut request = url.into_client_request().context("the negotiated URL")?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", SUBPROTOCOL.parse()?);
        let (stream, response) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
                .await
                .context("no WebSocket handshake within 10 s")?
                // The error's request would show the URL and its access token.
                .map_err(|error| anyhow::anyhow!("WebSocket connect: {error}"))?;
        let agreed = response.headers().get("sec-websocket-protocol");
        if agreed.and_then(|value| value.to_str().ok()) != Some(SUBPROTOCOL) {
            bail!("the service did not agree to {SUBPROTOCOL}");
        }
        let mut socket = Self {
            stream,
            connection_id: String::new(),
        };
        let connected = socket
            .wait_for(|frame| frame["type"] == "system" && frame["event"] == "connected")
            .await?;
        socket.connection_id = connected["connectionId"]
            .as_str()
            .context("a connected message without connectionId")?
            .to_owned();
        Ok(socket)
    }

    /// The first JSON frame `matches` accepts within 10 s.
    pub async fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("nothing within 10 s")?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if matches(&frame) {
                        return Ok(frame);
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    bail!("the service closed the socket: {close:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!("WebSocket: {error}"),
                None => bail!("the socket ended"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
