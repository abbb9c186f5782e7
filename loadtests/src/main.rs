//! Replays the production load-test phases against a real handler process and prints an honest
//! table: only 2xx (or a phase's expected 4xx) counts as success. Each run also measures the
//! machine's ceilings (a hello-world axum endpoint and argon2id hashes/s) and reports every
//! phase against its ceiling. See loadtests/README.md.

mod ceilings;
mod phases;
mod realtime;
mod report;
mod seed;
mod server;

use std::time::Duration;

use anyhow::{Context, bail};

const USAGE: &str = "usage: loadtests [--connections N] [--duration SECONDS] [--phases 1,2,...]
                 [--handler PATH] [--out DIR]
  --connections  virtual users, one keep-alive connection each (default 500)
  --duration     seconds per phase (default 30)
  --phases       phase numbers to run (default all: 1-8)
  --handler      the handler binary to start (default target/release/handler)
  --out          where phases-<connections>.md and .json go (default loadtests/results)";

/// Command-line options.
pub struct Options {
    pub connections: usize,
    pub duration: Duration,
    pub handler: String,
    pub out_dir: String,
    /// Phase numbers to run (all by default).
    pub phases: Vec<u8>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    loadtests::raise_file_limit();
    let command = std::env::args().collect::<Vec<_>>().join(" ");

    eprintln!("seeding the load database");
    // Two participants per class in progress: one class per two connections.
    let students = options.connections.max(seed::MIN_STUDENTS);
    let mut data = seed::seed(students, options.connections / 2).await?;
    eprintln!("starting the handler");
    let server = server::Server::start(&options.handler, &data.pooled_url).await?;
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
        let outcome = phases::drive(target, &server, &options, phase.kind).await;
        results.push((phase, Some(outcome)));
    }
    eprintln!("measuring ceilings");
    let hello = ceilings::hello_world(&client, &options).await?;
    let argon2 = ceilings::argon2_per_second();
    let server_summary = server.stop();

    let report = report::Report::new(&command, &options, server_summary, hello, argon2, results);
    let (markdown, json) = report.write(&options.out_dir)?;
    println!("{}", report.markdown());
    eprintln!("wrote {markdown} and {json}");
    anyhow::ensure!(report.checks_passed(), "a post-phase check failed");
    Ok(())
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        connections: 500,
        duration: Duration::from_secs(30),
        handler: "target/release/handler".into(),
        out_dir: "loadtests/results".into(),
        phases: phases::ALL.iter().map(|phase| phase.number).collect(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        if matches!(flag.as_str(), "--help" | "-h") {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = iter
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => options.connections = value.parse()?,
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--handler" => options.handler = value.clone(),
            "--out" => options.out_dir = value.clone(),
            "--phases" => {
                options.phases = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("--phases takes phase numbers like 1,4,5")?
            }
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// One keep-alive client for all virtual users, with an idle connection per user.
fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}
