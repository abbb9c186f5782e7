//! Replays the production load-test phases against a real handler process and prints an honest
//! table: only 2xx (or a phase's expected 4xx) counts as success. Each run also measures the
//! machine's ceilings (a hello-world axum endpoint and argon2id hashes/s) and reports every
//! phase against its ceiling. See loadtests/README.md.

mod ceilings;
mod cluster;
mod faults;
mod ingestion;
mod phases;
mod razorpay;
mod realtime;
mod remote;
mod report;
mod seed;
mod sendgrid;
mod server;

use std::time::Duration;

use clap::Parser;

/// Replays the load-test phases against a release handler and reports them against this
/// machine's ceilings (loadtests/README.md).
#[derive(Debug, Parser)]
#[command(name = "loadtests")]
pub struct Options {
    /// Virtual users, one keep-alive connection each.
    #[arg(long, default_value_t = 500)]
    pub connections: usize,
    /// Seconds per phase.
    #[arg(long = "duration", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub duration: Duration,
    /// The handler binary to start.
    #[arg(long, default_value = "target/release/handler")]
    pub handler: String,
    /// Where phases-<connections>.md and .json go.
    #[arg(long = "out", value_name = "DIR", default_value = "loadtests/results")]
    pub out_dir: String,
    /// Phase numbers to run, such as 1,4,5.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6,7,8,9")]
    pub phases: Vec<u8>,
    /// Export traces and metrics to a local Application Insights stand-in (to measure what
    /// telemetry costs).
    #[arg(long)]
    pub export_telemetry: bool,
    /// Run only the read-only discovery phase against this deployment (at most 200
    /// connections for 120 s) instead of a local handler.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Handler processes. With more than one: behind HAProxy, with a PgBouncer, a Redis and a
    /// Web PubSub hub process of the run's own; results go to scale-out.md.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Instead of the phases: faults injected under load into the scaled-out deployment (at
    /// least 2 instances; 3 unless --instances says otherwise), each alone and then together:
    /// kill, redis, pgbouncer, postgres, hub, or all. Results go to faults.md.
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    pub faults: Vec<Vec<faults::Fault>>,
}

fn parse_fault(name: &str) -> Result<Vec<faults::Fault>, String> {
    faults::Fault::parse(name)
}

fn seconds(value: &str) -> Result<Duration, std::num::ParseIntError> {
    value.parse().map(Duration::from_secs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    loadtests::raise_file_limit();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(base_url) = &options.base_url {
        return remote::run(&options, base_url, client(options.connections)).await;
    }

    if !options.faults.is_empty() {
        return run_faults(&options, &command).await;
    }
    eprintln!("seeding the load database");
    // Two participants per class in progress: one class per two connections.
    let students = options.connections.max(seed::MIN_STUDENTS);
    let mut data = seed::seed(students, options.connections / 2).await?;
    let ingestion = match options.export_telemetry {
        true => Some(ingestion::Ingestion::start().await?),
        false => None,
    };
    eprintln!("starting the handler");
    let settings = ingestion
        .as_ref()
        .map_or(&[][..], |ingestion| &ingestion.settings);
    let deployment = Deployment::start(&options, &data, settings).await?;
    eprintln!("handler ready in {} ms", deployment.ready_ms());

    let client = client(options.connections);
    let mut results = Vec::new();
    for phase in phases::ALL {
        if !options.phases.contains(&phase.number) {
            results.push((phase, None));
            continue;
        }
        eprintln!("phase {}: {}", phase.number, phase.name);
        if phase.kind.uses_sessions() {
            // Logins in earlier phases revoked the students' other sessions.
            data.student_tokens = seed::fresh_sessions(&data.direct_url, &data.student_ids).await?;
        }
        let target = phases::Target {
            client: client.clone(),
            base: deployment.base_url().to_owned(),
            data: std::sync::Arc::new(data.clone()),
            connections: options.connections,
        };
        let before = deployment.answered().await;
        let mut outcomes = phases::drive(target, &deployment.pids(), &options, phase.kind).await;
        let after = deployment.answered().await;
        if let Some((_, first)) = outcomes.first_mut() {
            first.instance_requests = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        }
        results.push((phase, Some(outcomes)));
    }
    eprintln!("measuring ceilings");
    let hello = ceilings::hello_world(&client, &options).await?;
    let argon2 = ceilings::argon2_per_second();
    let discovery = match options.phases.contains(&4) {
        true => {
            let replay = deployment.replay(&options, &data, settings).await?;
            Some(ceilings::discovery(&client, &options, &replay.base_url, &data).await)
        }
        false => None,
    };
    let booking_transactions = match options.phases.contains(&5) {
        true => Some(
            ceilings::booking_transactions(
                &data,
                deployment.pooled_url(&data),
                deployment.server_connections(),
                &options,
            )
            .await?,
        ),
        false => None,
    };
    let server_summary = deployment.stop();
    if let Some(ingestion) = &ingestion {
        let received = ingestion.received();
        eprintln!(
            "telemetry: {} uploads, {} items, {} refused",
            received.uploads, received.items, received.refused
        );
        anyhow::ensure!(received.refused == 0, "telemetry uploads were refused");
    }

    let ceilings = report::Ceilings {
        hello,
        argon2,
        discovery,
        booking_transactions,
    };
    let report = report::Report::new(&command, &options, server_summary, ceilings, results);
    let (markdown, json) = report.write(&options.out_dir)?;
    println!("{}", report.markdown());
    eprintln!("wrote {markdown} and {json}");
    anyhow::ensure!(report.checks_passed(), "a post-phase check failed");
    Ok(())
}

/// The fault runs (`--faults`): a seeded database, the scaled-out deployment with a SendGrid
/// mock, each fault alone and then all together.
async fn run_faults(options: &Options, command: &str) -> anyhow::Result<()> {
    let mut faults: Vec<faults::Fault> = Vec::new();
    for fault in options.faults.iter().flatten() {
        if !faults.contains(fault) {
            faults.push(*fault);
        }
    }
    let instances = if options.instances < 2 {
        3
    } else {
        options.instances
    };
    eprintln!("seeding the load database");
    let students = faults::students_needed(options.connections, faults.len());
    let data = seed::seed(students, options.connections / 2).await?;
    let sendgrid = sendgrid::SendGrid::start().await?;
    let razorpay = razorpay::Razorpay::start().await?;
    let settings: Vec<_> = sendgrid
        .settings()
        .into_iter()
        .chain(razorpay.settings())
        .collect();
    eprintln!("starting {instances} handlers behind HAProxy");
    let mut cluster =
        cluster::Cluster::start(&options.handler, instances, &data.database, &settings).await?;
    let passed = faults::run(
        command,
        &faults,
        &mut cluster,
        &data,
        &sendgrid,
        options.connections,
        &options.out_dir,
    )
    .await?;
    cluster.stop();
    anyhow::ensure!(
        passed,
        "a fault run broke an invariant or failed outside its window"
    );
    Ok(())
}

/// The handler under test: one process, or several behind a balancer.
enum Deployment {
    Single(server::Server),
    Cluster(cluster::Cluster),
}

impl Deployment {
    async fn start(
        options: &Options,
        data: &seed::LoadData,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Ok(match options.instances {
            0 | 1 => Deployment::Single(
                server::Server::start(&options.handler, &data.pooled_url, settings).await?,
            ),
            instances => Deployment::Cluster(
                cluster::Cluster::start(&options.handler, instances, &data.database, settings)
                    .await?,
            ),
        })
    }

    fn base_url(&self) -> &str {
        match self {
            Deployment::Single(server) => &server.base_url,
            Deployment::Cluster(cluster) => &cluster.base_url,
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Deployment::Single(server) => vec![server.pid()],
            Deployment::Cluster(cluster) => cluster.pids(),
        }
    }

    /// The discovery ceiling's servers, capturing their answers from this deployment.
    async fn replay(
        &self,
        options: &Options,
        data: &seed::LoadData,
        settings: &[(&str, String)],
    ) -> anyhow::Result<cluster::Replay> {
        let mut paths = phases::http::discovery_paths(&data.mentor_ids);
        // The readiness probe the processes are started with.
        paths.push("/api/health".to_owned());
        match self {
            Deployment::Single(server) => {
                let paths_file =
                    std::env::temp_dir().join(format!("codeconnect-replay-{}", std::process::id()));
                std::fs::write(&paths_file, paths.join("\n"))?;
                let args = cluster::replay_args(&server.base_url, &paths_file);
                let port = server::free_port()?;
                let replay = server::Server::start_on(
                    port,
                    &options.handler,
                    &args,
                    &data.pooled_url,
                    settings,
                )
                .await?;
                let _ = std::fs::remove_file(&paths_file);
                Ok(cluster::Replay::single(replay))
            }
            Deployment::Cluster(cluster) => cluster.replay(&paths).await,
        }
    }

    /// The Postgres connections PgBouncer pools for the load database: the machine's PgBouncer
    /// keeps 10 per database (`infra/local/up.sh`), the cluster's 20.
    fn server_connections(&self) -> usize {
        match self {
            Deployment::Single(_) => 10,
            Deployment::Cluster(_) => cluster::SERVER_CONNECTIONS,
        }
    }

    /// Where PgBouncer takes the handlers' connections.
    fn pooled_url<'a>(&'a self, data: &'a seed::LoadData) -> &'a str {
        match self {
            Deployment::Single(_) => &data.pooled_url,
            Deployment::Cluster(cluster) => cluster.pooled_url(),
        }
    }

    fn ready_ms(&self) -> u128 {
        match self {
            Deployment::Single(server) => server.ready_ms,
            Deployment::Cluster(cluster) => cluster.ready_ms(),
        }
    }

    /// Requests each instance has answered so far (the balancer's count; none for one process).
    async fn answered(&self) -> Vec<u64> {
        match self {
            Deployment::Single(_) => Vec::new(),
            Deployment::Cluster(cluster) => cluster.answered().await.unwrap_or_default(),
        }
    }

    fn stop(self) -> server::ServerSummary {
        match self {
            Deployment::Single(server) => server.stop(),
            Deployment::Cluster(cluster) => cluster.stop(),
        }
    }
}

/// One keep-alive client for all virtual users, with an idle connection per user.
fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}
