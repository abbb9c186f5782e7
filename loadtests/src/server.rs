//! The handler under test, as its own process (like the Functions host starts it), with its
//! start-up time and resource use measured from /proc.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

pub struct Server {
    child: Child,
    pub port: u16,
    pub base_url: String,
    pub ready_ms: u128,
}

/// Peak resident memory and mean CPU over one phase.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    pub peak_rss_mb: f64,
    pub cpu_percent: f64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ServerSummary {
    pub ready_ms: u128,
    /// The process's high-water mark over the whole run.
    pub peak_rss_mb: f64,
}

impl Server {
    /// Starts `binary` on `database_url`, with `settings` added to its environment.
    pub async fn start(
        binary: &str,
        database_url: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Self::start_on(free_port()?, binary, &[], database_url, settings).await
    }

    /// [`Server::start`] on `port`, with `args` (a command of the handler binary; none: serve).
    pub async fn start_on(
        port: u16,
        binary: &str,
        args: &[String],
        database_url: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let pubsub_port = free_port()?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("DATABASE_MAX_CONNECTIONS", "20")
            .env(
                "REDIS_URL",
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            )
            .env(
                "REDIS_KEY_PREFIX",
                format!("load:{}:", uuid::Uuid::new_v4().simple()),
            )
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            // Web PubSub: the hub the handler serves itself when no Azure one is configured.
            .env("LOCAL_PUBSUB_PORT", pubsub_port.to_string())
            // Recording parts go to Azurite (started by infra/local/up.sh) unless told otherwise.
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                std::env::var("AZURE_STORAGE_CONNECTION_STRING")
                    .unwrap_or_else(|_| "UseDevelopmentStorage=true".into()),
            )
            .env("RESET_CODE_KEY", "load-test-reset-code-key-32-chars")
            .env("LOG_LEVEL", "warn")
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("start {binary} (build it with cargo build --release -p handler)")
            })?;
        let base_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        loop {
            if client
                .get(format!("{base_url}/api/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the handler did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Server {
            child,
            port,
            base_url,
            ready_ms: started.elapsed().as_millis(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no shutdown, in-flight requests lost.
    pub fn kill(self) {
        drop(self);
    }

    pub fn stop(self) -> ServerSummary {
        let summary = ServerSummary {
            ready_ms: self.ready_ms,
            peak_rss_mb: status_kb(self.pid(), "VmHWM:") as f64 / 1024.0,
        };
        drop(self);
        summary
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Samples each of `pids` until `done` is set; their usage in the same order.
pub async fn sample_all(pids: Vec<u32>, done: Arc<AtomicBool>) -> Vec<Usage> {
    let samplers: Vec<_> = pids
        .into_iter()
        .map(|pid| tokio::spawn(sample(pid, done.clone())))
        .collect();
    let mut usage = Vec::new();
    for sampler in samplers {
        usage.push(sampler.await.unwrap_or_default());
    }
    usage
}

impl Usage {
    /// Several processes as one: the largest peak, CPU added up.
    pub fn combined(usage: &[Usage]) -> Usage {
        Usage {
            peak_rss_mb: usage.iter().map(|u| u.peak_rss_mb).fold(0.0, f64::max),
            cpu_percent: usage.iter().map(|u| u.cpu_percent).sum(),
        }
    }
}

/// Samples the handler's RSS and CPU time until `done` is set.
async fn sample(pid: u32, done: Arc<AtomicBool>) -> Usage {
    let peak_kb = Arc::new(AtomicU64::new(0));
    let start_ticks = cpu_ticks(pid);
    let started = Instant::now();
    while !done.load(Ordering::SeqCst) {
        peak_kb.fetch_max(status_kb(pid, "VmRSS:"), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ticks = cpu_ticks(pid).saturating_sub(start_ticks);
    // /proc reports CPU in clock ticks of 1/100 s on Linux.
    let cpu_seconds = ticks as f64 / 100.0;
    Usage {
        peak_rss_mb: peak_kb.load(Ordering::SeqCst) as f64 / 1024.0,
        cpu_percent: 100.0 * cpu_seconds / started.elapsed().as_secs_f64(),
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}
