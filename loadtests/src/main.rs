//! Replays the production load-test phases against a real handler process and prints an honest
//! table: only 2xx (or a phase's expected 4xx) counts as success. Each run also measures the
//! machine's ceilings (a hello-world axum endpoint and argon2id hashes/s) and reports every
//! phase against its ceiling. See loadtests/README.md.

mod ceilings;
mod phases;
mod report;
mod seed;
mod server;

use std::time::Duration;

use anyhow::{Context, bail};

/// Command-line options.
pub struct Options {
    pub connections: usize,
    pub duration: Duration,
    pub handler: String,
    pub out_dir: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    loadtests::raise_file_limit();
    let command = std::env::args().collect::<Vec<_>>().join(" ");

    eprintln!("seeding the load database");
    let mut data = seed::seed().await?;
    eprintln!("starting the handler");
    let server = server::Server::start(&options.handler, &data.pooled_url).await?;
    eprintln!("handler ready in {} ms", server.ready_ms);

    let client = client(options.connections);
    let mut results = Vec::new();
    for phase in phases::ALL {
        eprintln!("phase {}: {}", phase.number, phase.name);
        if matches!(phase.run, Some(phases::Kind::DatabasePool)) {
            data.student_tokens = seed::fresh_sessions(&data.direct_url, &data.student_ids).await?;
        }
        let outcome = match phase.run {
            Some(run) => Some(phases::drive(&client, &server, &data, &options, run).await),
            None => None,
        };
        results.push((phase, outcome));
    }
    eprintln!("measuring ceilings");
    let hello = ceilings::hello_world(&client_for_hello(options.connections), &options).await?;
    let argon2 = ceilings::argon2_per_second();
    let server_summary = server.stop();

    let report = report::Report::new(&command, &options, server_summary, hello, argon2, results);
    let (markdown, json) = report.write(&options.out_dir)?;
    println!("{}", report.markdown());
    eprintln!("wrote {markdown} and {json}");
    Ok(())
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        connections: 500,
        duration: Duration::from_secs(30),
        handler: "target/release/handler".into(),
        out_dir: "loadtests/results".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => options.connections = value.parse()?,
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--handler" => options.handler = value.clone(),
            "--out" => options.out_dir = value.clone(),
            other => bail!(
                "unknown option {other}; use --connections N --duration SECONDS --handler PATH --out DIR"
            ),
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

fn client_for_hello(connections: usize) -> reqwest::Client {
    client(connections)
}
