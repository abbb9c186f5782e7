//! Replays the production load-test phases against a real handler process and prints an honest
//! table: only 2xx (or a phase's expected 4xx) counts as success. Each run also measures the
//! machine's ceilings (a hello-world axum endpoint and argon2id hashes/s) and reports every
//! phase against its ceiling. See loadtests/README.md.

mod ceilings;
mod ingestion;
mod phases;
mod realtime;
mod remote;
mod report;
mod seed;
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
    let server = server::Server::start(&options.handler, &data.pooled_url, settings).await?;
    eprintln!("handler ready in {} ms", server.ready_ms);

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
            base: server.base_url.clone(),
            data: std::sync::Arc::new(data.clone()),
            connections: options.connections,
        };
        let outcomes = phases::drive(target, &server, &options, phase.kind).await;
        results.push((phase, Some(outcomes)));
    }
    eprintln!("measuring ceilings");
    let hello = ceilings::hello_world(&client, &options).await?;
    let argon2 = ceilings::argon2_per_second();
    let server_summary = server.stop();
    if let Some(ingestion) = &ingestion {
        let received = ingestion.received();
        eprintln!(
            "telemetry: {} uploads, {} items, {} refused",
            received.uploads, received.items, received.refused
        );
        anyhow::ensure!(received.refused == 0, "telemetry uploads were refused");
    }

    let report = report::Report::new(&command, &options, server_summary, hello, argon2, results);
    let (markdown, json) = report.write(&options.out_dir)?;
    println!("{}", report.markdown());
    eprintln!("wrote {markdown} and {json}");
    anyhow::ensure!(report.checks_passed(), "a post-phase check failed");
    Ok(())
}

/// One keep-alive client for all virtual users, with an idle connection per user.
fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}
