//! The `salur` command: parses the command line, sets up logging, calls the library.

use clap::{Args, Parser, Subcommand};
use salur::bank::sim::{self, SimOptions};
use salur::config::Settings;
use salur::messages::Stage;
use salur::metrics::Metrics;
use salur::ops::{batch, demo, submit};
use salur::{broker, store, worker};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Pays social aid without cash: batches of recipients through bank account opening,
/// verification and transfer.
///
/// Configuration comes from the environment: DATABASE_URL (default
/// postgres://postgres@127.0.0.1:5432/salur), AMQP_URL (default
/// amqp://guest:guest@127.0.0.1:5672/%2f), METRICS_ADDR (default 127.0.0.1:9464, or `off`),
/// SALUR_NAMESPACE, SALUR_CHUNK_SIZE, SALUR_CONCURRENCY, SALUR_PREFETCH, SALUR_MAX_ATTEMPTS,
/// RUST_LOG, LOG_FORMAT=json.
#[derive(Parser)]
#[command(name = "salur", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it is missing and apply migrations/.
    Migrate,
    /// Declare the exchanges, queues and bindings of queues/topology.json (idempotent).
    Topology,
    /// Run the stage consumers, the bank-answer consumer and the outbox relay until SIGINT/SIGTERM.
    Worker {
        /// A stage to run (account_opening, verification, transfer); repeat for several. Default: all.
        #[arg(long = "stage", value_name = "NAME", value_parser = parse_stage)]
        stages: Vec<Stage>,
    },
    /// Run the reference bank integration (opens accounts, answers inquiries, settles transfers).
    BankSim(BankSimArgs),
    /// Validate and store a batch file (CSV or JSON), and enqueue it. Prints the batch id.
    Submit {
        /// The office's file: CSV (comma or semicolon) or a JSON array.
        file: PathBuf,
        /// The submitting office's code, e.g. DINSOS-5371.
        #[arg(long)]
        office: String,
        /// The programme, e.g. BPNT or PKH.
        #[arg(long)]
        program: String,
        /// The period, e.g. 2026-Q4.
        #[arg(long)]
        period: String,
        /// Print {"batch_id": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Follow a batch.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Migrate, declare, run workers and bank-sim in this process, submit a realistic generated
    /// batch, wait for it and print the summary.
    Demo {
        /// Recipients in the generated batch.
        #[arg(long, default_value_t = 3000)]
        recipients: u32,
        /// How many of them have incomplete administrative data.
        #[arg(long, default_value_t = 430)]
        incomplete: u32,
        /// Seed of the generated batch.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Throughput benchmark on the local services (its own database and queues, dropped after):
    /// valid recipients through intake and every stage to disbursed, durably, with a raw
    /// lapin+sqlx baseline and a per-record (chunk size 1) baseline measured in the same run.
    /// Fails if any record is not disbursed exactly once or the totals differ.
    Bench {
        /// Recipients in the generated batch.
        #[arg(long, default_value_t = 200_000)]
        recipients: u32,
        /// Record ids per stage message.
        #[arg(long, default_value_t = 100)]
        chunk_size: usize,
        /// Recipients of the per-record baseline (default: recipients / 20).
        #[arg(long)]
        per_record_recipients: Option<u32>,
        /// Measure salur only.
        #[arg(long)]
        skip_baselines: bool,
        /// Seed of the generated batch.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct BankSimArgs {
    /// A bank code to serve (e.g. 002); repeat for several. Default: every known bank.
    #[arg(long = "bank", value_name = "CODE")]
    banks: Vec<String>,
    /// Share of items answered with a transient error (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    transient_error_rate: f64,
    /// Share of new items refused for good (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    reject_rate: f64,
    /// Share of answers sent twice (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    duplicate_rate: f64,
    /// Milliseconds to wait before answering.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests answered at once per bank queue.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum BatchCommand {
    /// Counts by state and by reason, amounts per state.
    Status {
        id: Uuid,
        /// Return once no record of the batch is in flight.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (exit code 3).
        #[arg(long)]
        timeout: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// CSV, one row per record: row, masked NIK, state, reason codes, amount, bank reference.
    Report {
        id: Uuid,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::parse(s).ok_or_else(|| {
        format!("unknown stage {s:?}: use account_opening, verification or transfer")
    })
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rate between 0 and 1")),
    }
}

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    // lapin logs channel-close races at shutdown as errors; our own code reports real failures.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},lapin=off")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Cancelled on SIGINT or SIGTERM.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: finishing chunks in flight");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(cli.command, Command::Worker { .. } | Command::BankSim(_));
    init_logging(if long_running { "info" } else { "warn" });
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<submit::SubmitError>().is_some() {
                ExitCode::from(65)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Migrate => {
            store::migrate(&settings).await?;
            println!("database is up to date");
        }
        Command::Topology => {
            let b = broker::Broker::connect(&settings).await?;
            broker::topology::declare(&b).await?;
            b.close().await;
            println!("topology declared");
        }
        Command::Worker { stages } => {
            let pool = store::connect(&settings).await?;
            let metrics = Arc::new(Metrics::new());
            let cancel = shutdown_token();
            if let Some(addr) = settings.metrics_addr {
                let (m, c) = (metrics.clone(), cancel.clone());
                tokio::spawn(async move {
                    if let Err(e) = salur::metrics::serve(addr, m, c.clone()).await {
                        tracing::error!(error = format!("{e:#}"), "metrics server failed");
                        c.cancel();
                    }
                });
            }
            let opts = if stages.is_empty() {
                worker::WorkerOptions::default()
            } else {
                worker::WorkerOptions { stages }
            };
            worker::run(settings, pool, opts, metrics, cancel).await?;
        }
        Command::BankSim(a) => {
            let pool = store::connect(&settings).await?;
            let opts = SimOptions {
                banks: a.banks,
                transient_error_rate: a.transient_error_rate,
                reject_rate: a.reject_rate,
                duplicate_rate: a.duplicate_rate,
                delay: Duration::from_millis(a.delay_ms),
                seed: a.seed,
                concurrency: a.concurrency,
            };
            sim::run(settings, pool, opts, shutdown_token()).await?;
        }
        Command::Submit {
            file,
            office,
            program,
            period,
            json,
        } => {
            let pool = store::connect(&settings).await?;
            let info = submit::BatchInfo {
                office,
                program,
                period,
            };
            let id = submit::submit_file(&settings, &pool, &file, &info).await?;
            submit::publish_now(&settings, &pool).await;
            if json {
                println!("{}", serde_json::json!({ "batch_id": id }));
            } else {
                println!("{id}");
            }
        }
        Command::Batch { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                BatchCommand::Status {
                    id,
                    wait,
                    timeout,
                    json,
                } => {
                    let status = if wait {
                        match batch::wait(&pool, id, timeout.map(Duration::from_secs), |_| {}).await
                        {
                            Err(e @ batch::BatchError::Timeout(..)) => {
                                eprintln!("error: {e}");
                                return Ok(ExitCode::from(3));
                            }
                            other => other?,
                        }
                    } else {
                        batch::status(&pool, id).await?
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(&status)?);
                    } else {
                        print!("{status}");
                    }
                }
                BatchCommand::Report { id, output } => match output {
                    Some(path) => {
                        let n = batch::report(&pool, id, std::fs::File::create(&path)?).await?;
                        eprintln!("{n} records written to {}", path.display());
                    }
                    None => {
                        batch::report(&pool, id, std::io::stdout().lock()).await?;
                    }
                },
            }
        }
        Command::Demo {
            recipients,
            incomplete,
            seed,
            timeout,
            json,
        } => {
            let opts = demo::DemoOptions {
                recipients,
                incomplete,
                seed,
                progress: !json,
                timeout: Duration::from_secs(timeout),
            };
            let summary = demo::run(&settings, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{summary}");
            }
            let problems = summary.discrepancies();
            if !problems.is_empty() {
                for p in problems {
                    eprintln!("error: {p}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Bench {
            recipients,
            chunk_size,
            per_record_recipients,
            skip_baselines,
            seed,
            json,
        } => {
            anyhow::ensure!(
                (1..=10_000).contains(&chunk_size),
                "--chunk-size must be between 1 and 10000"
            );
            let opts = salur::bench::BenchOptions {
                recipients,
                chunk_size,
                per_record_recipients,
                skip_baselines,
                seed,
                progress: true,
            };
            let report = salur::bench::run(&settings, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
