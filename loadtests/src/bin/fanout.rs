//! Web PubSub fan-out through the hub the handler serves locally (`webpubsub_hub`, `shared/hub`, run in
//! this process): `--clients` WebSocket clients (default 1,000) in `--groups` class groups (default
//! 500, two participants each, as in video classes). Every client publishes to its group with
//! `noEcho` every `--interval-ms` (default 100) for `--duration` seconds; the other participant's
//! delivery latency goes into an HDR histogram and every message is accounted for (lost = sent −
//! delivered after a drain). Writes `fanout.md` and `fanout.json` under `--out`.
//!
//! `cargo build --release -p loadtests && target/release/fanout`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use webpubsub_hub::{HubConfig, serve};

const KEY: &str = "bG9hZHRlc3QtZmFub3V0LWtleS0wMTIzNDU2Nzg5";
const HUB: &str = "load";

struct Options {
    clients: usize,
    groups: usize,
    duration: Duration,
    interval: Duration,
    out_dir: String,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    acks_failed: AtomicU64,
    wrong_group: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    loadtests::raise_file_limit();
    if options.clients != options.groups * 2 {
        bail!("two clients per group: --clients must be twice --groups");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(serve(
        listener,
        HubConfig {
            hub: HUB.into(),
            client_key: KEY.into(),
            rest_callers: None,
            event_handler: None,
        },
    ));

    eprintln!(
        "connecting {} clients in {} groups",
        options.clients, options.groups
    );
    let connect_started = Instant::now();
    let mut sockets = Vec::with_capacity(options.clients);
    for client in 0..options.clients {
        let group = format!("booking.{}.video", client / 2);
        sockets.push((group.clone(), connect(port, client, &group).await?));
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();

    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let epoch = Instant::now();
    let stop_sending = epoch + options.duration;
    // Messages still in flight when sending stops get this long to arrive.
    let drain_until = stop_sending + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for (group, socket) in sockets {
        let (mut sink, mut stream) = socket.split();
        let counters_send = counters.clone();
        let interval = options.interval;
        let send_group = group.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            let mut ack_id = 0u64;
            while Instant::now() < stop_sending {
                ticker.tick().await;
                ack_id += 1;
                let frame = json!({"type": "sendToGroup", "group": send_group, "noEcho": true, "ackId": ack_id,
                                   "data": {"sentMicros": epoch.elapsed().as_micros() as u64}});
                if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break;
                }
                counters_send.sent.fetch_add(1, Ordering::Relaxed);
            }
            // Closing the socket early would cut off messages still coming to this client.
            tokio::time::sleep_until(drain_until.into()).await;
            drop(sink);
        }));
        let counters = counters.clone();
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            loop {
                let left = drain_until.saturating_duration_since(Instant::now());
                let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(left, stream.next()).await
                else {
                    break;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match frame["type"].as_str() {
                    Some("message") if frame["from"] == "group" => {
                        if frame["group"] != group.as_str() {
                            counters.wrong_group.fetch_add(1, Ordering::Relaxed);
                        }
                        let sent = frame["data"]["sentMicros"].as_u64().unwrap_or_default();
                        let now = epoch.elapsed().as_micros() as u64;
                        local.saturating_record(now.saturating_sub(sent).max(1));
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("ack") if frame["success"] != true => {
                        counters.acks_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            latencies.lock().await.add(&local).expect("same bounds");
            drop(stream);
        }));
    }
    eprintln!("publishing for {} s", options.duration.as_secs());
    for task in tasks {
        let _ = task.await;
    }

    let histogram = latencies.lock().await;
    let sent = counters.sent.load(Ordering::Relaxed);
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let result = json!({
        "clients": options.clients,
        "groups": options.groups,
        "durationSeconds": options.duration.as_secs(),
        "intervalMs": options.interval.as_millis() as u64,
        "connectSeconds": connect_seconds,
        "sent": sent,
        "delivered": delivered,
        "lost": sent.saturating_sub(delivered),
        "deliveriesPerSecond": delivered as f64 / options.duration.as_secs_f64(),
        "p50Ms": histogram.value_at_quantile(0.50) as f64 / 1000.0,
        "p99Ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        "maxMs": histogram.max() as f64 / 1000.0,
        "failedAcks": counters.acks_failed.load(Ordering::Relaxed),
        "wrongGroup": counters.wrong_group.load(Ordering::Relaxed),
        "peakRssMb": peak_rss_mb(),
    });
    write_report(&options, &result)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn connect(
    port: u16,
    client: usize,
    group: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"aud": format!("http://127.0.0.1:{port}/client/hubs/{HUB}"), "iat": now, "exp": now + 3600,
                        "sub": format!("user-{client}"), "role": [format!("webpubsub.sendToGroup.{group}")],
                        "webpubsub.group": [group]});
    let token = webpubsub_hub::sign_client_token(&claims, KEY);
    let mut request = format!("ws://127.0.0.1:{port}/client/hubs/{HUB}?access_token={token}")
        .into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "json.webpubsub.azure.v1".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("connect client {client}"))?;
    // The first frame is the `connected` system message.
    socket.next().await.context("connected message")??;
    Ok(socket)
}

fn write_report(options: &Options, result: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out_dir)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let markdown = format!(
        "# Web PubSub fan-out\n\nCommand: `{command}` (2-core machine, load generator and hub in one process).\n\n\
         | clients | groups | duration | interval | sent | delivered | lost | deliveries/s | p50 | p99 | max | failed acks | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} s | {} ms | {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.0} MB |\n",
        result["clients"],
        result["groups"],
        result["durationSeconds"],
        result["intervalMs"],
        result["sent"],
        result["delivered"],
        result["lost"],
        result["deliveriesPerSecond"].as_f64().unwrap_or_default(),
        result["p50Ms"].as_f64().unwrap_or_default(),
        result["p99Ms"].as_f64().unwrap_or_default(),
        result["maxMs"].as_f64().unwrap_or_default(),
        result["failedAcks"],
        result["peakRssMb"].as_f64().unwrap_or_default(),
    );
    std::fs::write(format!("{}/fanout.md", options.out_dir), markdown)?;
    std::fs::write(
        format!("{}/fanout.json", options.out_dir),
        serde_json::to_string_pretty(result)?,
    )?;
    Ok(())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or_default()
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        clients: 1000,
        groups: 500,
        duration: Duration::from_secs(20),
        interval: Duration::from_millis(100),
        out_dir: "loadtests/results".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => options.clients = value.parse()?,
            "--groups" => options.groups = value.parse()?,
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--interval-ms" => options.interval = Duration::from_millis(value.parse()?),
            "--out" => options.out_dir = value.clone(),
            other => bail!(
                "unknown option {other}; use --clients N --groups N --duration SECONDS --interval-ms MS --out DIR"
            ),
        }
    }
    Ok(options)
}
