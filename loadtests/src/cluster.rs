//! The scaled-out deployment, on one machine: N handler processes behind HAProxy (Debian's
//! package, round robin, health checks every 500 ms), sharing one PgBouncer, one Redis and one
//! Web PubSub hub process, each of which this run owns and can stop, kill or restart (the fault
//! schedule), while Postgres is the machine's own cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::server::{Server, ServerSummary};

/// PgBouncer 1.21 or later (`infra/local/up.sh` builds it there; Debian's 1.18 lacks
/// `max_prepared_statements`).
const PGBOUNCER: &str = "/usr/local/bin/pgbouncer";
/// Postgres connections this run's PgBouncer pools for the load database.
pub const SERVER_CONNECTIONS: usize = 20;

pub struct Cluster {
    dir: PathBuf,
    pub base_url: String,
    instances: Vec<Option<Server>>,
    balancer: Balancer,
    /// Each instance's port, kept when it is killed, so it comes back where the balancer looks.
    ports: Vec<u16>,
    handler: String,
    pooled_url: String,
    settings: Vec<(String, String)>,
    redis: Service,
    pgbouncer: Service,
    hub: Process,
}

/// A child process killed when dropped, so a run that fails half-way leaves nothing behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dependency this run starts and may stop: its command, its process and its port.
struct Service {
    name: &'static str,
    /// How it is told to stop.
    signal: &'static str,
    port: u16,
    command: Vec<String>,
    child: Option<Child>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Service {
    async fn start(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", self.name))?;
        self.child = Some(child);
        wait_for_port(self.port, self.name).await
    }

    /// Sends its stop signal and waits (at most 10 s, then SIGKILL) for the process to end.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", self.signal, &child.id().to_string()])
            .status();
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Cluster {
    /// Starts everything for `instances` handlers on `database` (seeded, through the machine's
    /// Postgres), each handler with `settings` added.
    pub async fn start(
        handler: &str,
        instances: usize,
        database: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("codeconnect-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let redis_port = free_port()?;
        let mut redis = Service {
            name: "redis-server",
            signal: "TERM",
            port: redis_port,
            command: [
                "redis-server",
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "10000",
            ]
            .map(str::to_owned)
            .to_vec(),
            child: None,
        };
        redis.start().await?;
        let mut pgbouncer = pgbouncer(&dir, database)?;
        pgbouncer.start().await?;

        let balancer_port = free_port()?;
        let base_url = format!("http://127.0.0.1:{balancer_port}");
        let (hub, hub_settings) = start_hub(handler, &dir, &base_url).await?;
        let mut shared: Vec<(&str, String)> = vec![
            ("REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
            (
                "REDIS_KEY_PREFIX",
                format!("load:{}:", uuid::Uuid::new_v4().simple()),
            ),
            // Every instance runs the timers, as every Functions instance may: the leases decide.
            ("TIMERS_IN_PROCESS", "true".into()),
        ];
        shared.extend(hub_settings.iter().map(|(k, v)| (k.as_str(), v.clone())));
        shared.extend(settings.iter().cloned());
        let pooled = format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            pgbouncer.port
        );
        let mut started = Vec::new();
        for _ in 0..instances {
            started.push(Some(Server::start(handler, &pooled, &shared).await?));
        }
        let ports = started.iter().flatten().map(|server| server.port).collect();
        let settings = shared
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let servers: Vec<&Server> = started.iter().flatten().collect();
        let balancer = Balancer::start(&dir.join("handlers"), balancer_port, &servers).await?;
        let cluster = Cluster {
            dir,
            base_url,
            instances: started,
            ports,
            handler: handler.to_owned(),
            pooled_url: pooled,
            settings,
            balancer,
            redis,
            pgbouncer,
            hub,
        };
        cluster.balancer.wait_until_up(instances).await?;
        Ok(cluster)
    }

    /// The handlers' database URL (this run's PgBouncer).
    pub fn pooled_url(&self) -> &str {
        &self.pooled_url
    }

    /// The running handlers' process ids, by instance.
    pub fn pids(&self) -> Vec<u32> {
        self.instances.iter().flatten().map(Server::pid).collect()
    }

    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// Ready time of the slowest instance.
    pub fn ready_ms(&self) -> u128 {
        self.instances
            .iter()
            .flatten()
            .map(|server| server.ready_ms)
            .max()
            .unwrap_or(0)
    }

    /// Requests each instance has answered so far, from HAProxy's statistics (instance order).
    pub async fn answered(&self) -> anyhow::Result<Vec<u64>> {
        let csv = reqwest::get(&self.balancer.stats_url).await?.text().await?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .context("empty stats")?
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (proxy, server) = (column("pxname"), column("svname"));
        let responses: Vec<usize> = [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ]
        .iter()
        .filter_map(|name| column(name))
        .collect();
        let mut counts = vec![0; self.instances.len()];
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |index: Option<usize>| index.and_then(|i| fields.get(i)).copied();
            if field(proxy) != Some("handlers") {
                continue;
            }
            let Some(index) = field(server)
                .and_then(|name| name.strip_prefix('h'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            counts[index] = responses
                .iter()
                .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
                .sum();
        }
        Ok(counts)
    }

    /// `kill -9` instance `index`; the balancer stops sending to it within a second.
    pub fn kill_instance(&mut self, index: usize) {
        if let Some(server) = self.instances[index].take() {
            server.kill();
        }
    }

    /// Starts instance `index` again on its port; returns once the balancer sends to it.
    pub async fn revive_instance(&mut self, index: usize) -> anyhow::Result<()> {
        let settings: Vec<(&str, String)> = self
            .settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        let server = Server::start_on(
            self.ports[index],
            &self.handler,
            &[],
            &self.pooled_url,
            &settings,
        )
        .await?;
        self.instances[index] = Some(server);
        self.balancer.wait_until_up(self.pids().len()).await
    }

    pub fn stop_redis(&mut self) {
        self.redis.stop();
    }

    pub async fn start_redis(&mut self) -> anyhow::Result<()> {
        self.redis.start().await
    }

    pub async fn restart_pgbouncer(&mut self) -> anyhow::Result<()> {
        self.pgbouncer.stop();
        self.pgbouncer.start().await
    }

    /// Restarts the machine's Postgres with a fast shutdown (open transactions rolled back,
    /// connections closed), as a failover or a maintenance restart does.
    pub async fn restart_postgres(&self) -> anyhow::Result<()> {
        let version = std::fs::read_dir("/etc/postgresql")?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .max_by_key(|name| name.parse::<u32>().unwrap_or(0))
            .context("no Postgres cluster in /etc/postgresql")?;
        let status = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &version,
                "main",
                "restart",
                "-m",
                "fast",
            ])
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctlcluster restart failed");
        wait_for_port(5432, "postgres").await
    }

    /// The discovery ceiling: a `handler replay` process per instance, each capturing this
    /// deployment's answers to `paths` and serving them from memory, behind a balancer like this
    /// one's.
    pub async fn replay(&self, paths: &[String]) -> anyhow::Result<Replay> {
        let paths_file = self.dir.join("replay-paths");
        std::fs::write(&paths_file, paths.join("\n"))?;
        let args = replay_args(&self.base_url, &paths_file);
        let settings: Vec<(&str, String)> = self
            .settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        let mut servers = Vec::new();
        for _ in 0..self.instances.len() {
            servers.push(
                Server::start_on(
                    crate::server::free_port()?,
                    &self.handler,
                    &args,
                    &self.pooled_url,
                    &settings,
                )
                .await?,
            );
        }
        let port = free_port()?;
        let balancer = Balancer::start(
            &self.dir.join("replay"),
            port,
            &servers.iter().collect::<Vec<_>>(),
        )
        .await?;
        balancer.wait_until_up(servers.len()).await?;
        Ok(Replay {
            base_url: balancer.base_url.clone(),
            _balancer: Some(balancer),
            _servers: servers,
        })
    }

    /// Stops everything; the summary is the first instance's (ready time: the slowest's).
    pub fn stop(self) -> ServerSummary {
        let ready_ms = self.ready_ms();
        drop(self.balancer);
        let summaries: Vec<ServerSummary> = self
            .instances
            .into_iter()
            .flatten()
            .map(Server::stop)
            .collect();
        drop(self.hub);
        let _ = std::fs::remove_dir_all(&self.dir);
        ServerSummary {
            ready_ms,
            peak_rss_mb: summaries
                .iter()
                .map(|summary| summary.peak_rss_mb)
                .fold(0.0, f64::max),
        }
    }
}

/// PgBouncer in transaction mode for the load database, as Azure runs it (prepared statements
/// tracked), owned by this run. After a failed server login it tries again within a second (the
/// default waits 15 s, which turned a 3 s Postgres restart into 15 s of refusals), and a query
/// that waits 8 s for a server connection is refused, which the handler answers as a 503 before
/// the client's 10 s timeout.
fn pgbouncer(dir: &Path, database: &str) -> anyhow::Result<Service> {
    let port = free_port()?;
    let home = dir.join("pgbouncer");
    std::fs::create_dir_all(&home)?;
    std::fs::write(home.join("userlist.txt"), "\"postgres\" \"\"\n")?;
    let ini = format!(
        "[databases]\n{database} = host=127.0.0.1 port=5432\n\n[pgbouncer]\n\
         listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = trust\nauth_file = {userlist}\n\
         pool_mode = transaction\nmax_prepared_statements = 500\n\
         default_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 10000\n\
         server_login_retry = 1\nquery_wait_timeout = 8\n\
         server_reset_query =\nignore_startup_parameters = extra_float_digits\n",
        userlist = home.join("userlist.txt").display(),
    );
    let ini_path = home.join("pgbouncer.ini");
    std::fs::write(&ini_path, ini)?;
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&home)
        .status();
    Ok(Service {
        name: "pgbouncer",
        // Immediate shutdown: in-flight transactions cut (SIGTERM would wait for every client
        // to leave, which pooled clients never do).
        signal: "QUIT",
        port,
        command: vec![
            PGBOUNCER.to_owned(),
            "-u".to_owned(),
            "postgres".to_owned(),
            ini_path.display().to_string(),
        ],
        child: None,
    })
}

/// `handler hub` as its own process, its events sent through the balancer; returns it and the
/// settings it wrote for the handlers.
async fn start_hub(
    handler: &str,
    dir: &Path,
    balancer: &str,
) -> anyhow::Result<(Process, Vec<(String, String)>)> {
    let env_file = dir.join("hub.env");
    let child = Process(
        Command::new(handler)
            .args(["hub", "--port", "0", "--event-handler"])
            .arg(format!("{balancer}/api/realtime/events"))
            .arg("--env-file")
            .arg(&env_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the hub")?,
    );
    let started = Instant::now();
    while !env_file.exists() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the hub wrote no settings"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settings = std::fs::read_to_string(&env_file)?
        .lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    Ok((child, settings))
}

/// `handler replay`'s arguments: capture from `source` the paths listed in `paths_file`.
pub fn replay_args(source: &str, paths_file: &Path) -> Vec<String> {
    vec![
        "replay".to_owned(),
        "--source".to_owned(),
        source.to_owned(),
        "--paths-file".to_owned(),
        paths_file.display().to_string(),
    ]
}

/// Handler processes serving captured answers (the discovery ceiling), behind a balancer when
/// there are several; stopped when dropped.
pub struct Replay {
    pub base_url: String,
    _balancer: Option<Balancer>,
    _servers: Vec<Server>,
}

impl Replay {
    /// One `handler replay` process, reached directly.
    pub fn single(server: Server) -> Self {
        Replay {
            base_url: server.base_url.clone(),
            _balancer: None,
            _servers: vec![server],
        }
    }
}

/// HAProxy in front of servers (a thread per core: Azure's front end does not queue behind the
/// handlers on their cores, and one thread here did under the flood phase): round robin, each
/// checked on `/api/health` every 500 ms (down after two failures); a request whose connection
/// to a server fails is sent to another; the client's address appended to `X-Forwarded-For`, as
/// Azure's front end does, unless the request has one: where the generator plays the front end
/// itself (the flood phase's addresses), its header reaches the handlers as in a
/// single-instance run.
struct Balancer {
    _process: Process,
    base_url: String,
    stats_url: String,
}

impl Balancer {
    async fn start(dir: &Path, port: u16, servers: &[&Server]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stats_port = free_port()?;
        let mut config = format!(
            "global\n  maxconn 9000\n  nbthread 2\n\n\
             defaults\n  mode http\n  option http-keep-alive\n  option forwardfor if-none\n  option redispatch\n  retries 2\n\
             \x20 timeout connect 1s\n  timeout client 150s\n  timeout server 60s\n  timeout http-keep-alive 150s\n\n\
             frontend api\n  bind 127.0.0.1:{port}\n  default_backend handlers\n\n\
             backend handlers\n  balance roundrobin\n  option httpchk GET /api/health\n\
             \x20 default-server check inter 500ms fall 2 rise 2\n"
        );
        for (index, server) in servers.iter().enumerate() {
            config.push_str(&format!("  server h{index} 127.0.0.1:{}\n", server.port));
        }
        config.push_str(&format!(
            "\nlisten stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n"
        ));
        let config_path = dir.join("haproxy.cfg");
        std::fs::write(&config_path, config)?;
        let process = Process(
            Command::new("haproxy")
                .arg("-f")
                .arg(&config_path)
                .stdout(Stdio::null())
                .spawn()
                .context("start haproxy (apt-get install haproxy)")?,
        );
        wait_for_port(port, "haproxy").await?;
        Ok(Balancer {
            _process: process,
            base_url: format!("http://127.0.0.1:{port}"),
            stats_url: format!("http://127.0.0.1:{stats_port}/stats;csv"),
        })
    }

    /// Waits until HAProxy sees `count` servers up.
    async fn wait_until_up(&self, count: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(20) {
            let csv = client.get(&self.stats_url).send().await?.text().await?;
            let up = csv
                .lines()
                .filter(|line| line.starts_with("handlers,h") && line.contains(",UP,"))
                .count();
            if up == count {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("HAProxy never saw every server up")
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_for_port(port: u16, name: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{name} did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
