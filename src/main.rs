//! The `salur` command: parses the command line, sets up logging, calls the library.

use clap::{Args, Parser, Subcommand};
use salur::bank::sim::{self, SimOptions};
use salur::config::Settings;
use salur::messages::Stage;
use salur::metrics::Metrics;
use salur::ops::remediate::{self, Filter, Scope};
use salur::ops::{batch, demo, office, submit};
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
/// API_ADDR (default 127.0.0.1:8080), API_BODY_LIMIT, API_XLSX_LIMIT, RUST_LOG,
/// LOG_FORMAT=json (or --log-format json).
#[derive(Parser)]
#[command(name = "salur", version)]
struct Cli {
    /// Log format on standard error: `text` for people, `json` (one object per line, with
    /// batch and record ids as fields) for log collectors.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it is missing and apply migrations/.
    Migrate,
    /// Declare the exchanges, queues and bindings of queues/topology.json (idempotent).
    Topology {
        /// Delete the namespace's queues and exchanges instead (their messages are lost): for
        /// tearing down a test or staging namespace (SALUR_NAMESPACE).
        #[arg(long)]
        delete: bool,
    },
    /// Run the stage consumers, the bank-answer consumer and the outbox relay until SIGINT/SIGTERM.
    Worker {
        /// A stage to run (account_opening, verification, transfer); repeat for several. Default: all.
        #[arg(long = "stage", value_name = "NAME", value_parser = parse_stage)]
        stages: Vec<Stage>,
    },
    /// Run the reference bank integration (opens accounts, answers inquiries, settles transfers).
    BankSim(BankSimArgs),
    /// The banks: their RabbitMQ users (the broker authenticates each bank's answers).
    Bank {
        #[command(subcommand)]
        command: BankCommand,
    },
    /// The conformance kit: check a bank integration against the contract (queues/asyncapi.yaml)
    /// on a test vhost or namespace where no salur worker runs. One line per rule; exits 1 if
    /// any rule failed.
    BankCheck {
        /// The bank code to check, e.g. 002.
        #[arg(long)]
        bank: String,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
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
    /// Serve the HTTP API of the offices (/v1, described at /v1/openapi.json) on API_ADDR until
    /// SIGINT/SIGTERM.
    Api {
        /// Listen here instead of API_ADDR.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
    },
    /// The offices (and auditors) that may use the HTTP API, and their tokens.
    Office {
        #[command(subcommand)]
        command: OfficeCommand,
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
        /// Then fix the blocked records from a corrections file (as the office would), replay
        /// them, and wait until every recipient is paid.
        #[arg(long)]
        fix: bool,
        /// Share of bank items answered with a transient error (0..1): shows the retries.
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        transient_error_rate: f64,
        /// Share of bank answers lost (0..1): shows the bank timeout.
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        lost_answer_rate: f64,
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
    /// Look at one record, or correct blocked records.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Work the parked records (salur.blocked, salur.dead): list, replay, discard.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand)]
enum RecordsCommand {
    /// A record (personal data masked): state, reasons, attempts and audit history.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Correct a blocked record (`salur records fix ID --set mother_name="Siti Aminah"`), or a
    /// batch's blocked records from a file (`--batch ID --file FIXES.csv`, keyed by a `row` or
    /// `nik` column, one column per field). Corrections are validated at once; the answer lists
    /// the reasons that remain. Replay with `salur dlq replay`.
    Fix {
        /// The record to correct.
        #[arg(required_unless_present = "file", conflicts_with_all = ["file", "batch"])]
        id: Option<i64>,
        /// A correction, `field=value` (names as in the batch file); repeat for several.
        #[arg(long = "set", value_name = "FIELD=VALUE", requires = "id")]
        sets: Vec<String>,
        /// The batch the corrections file is for.
        #[arg(long, requires = "file")]
        batch: Option<Uuid>,
        /// A CSV of corrections.
        #[arg(long, requires = "batch")]
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct DlqFilter {
    /// Only this batch's records.
    #[arg(long)]
    batch: Option<Uuid>,
    /// Only records with this reason code (e.g. MOTHER_NAME_MISSING).
    #[arg(long, value_parser = parse_reason)]
    reason: Option<salur::domain::ReasonCode>,
    /// Only this record; repeat for several.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<i64>,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// What is parked and why: counts by reason, the oldest first.
    List {
        /// `blocked` (fixable data) or `dead` (retries exhausted); both by default.
        #[arg(long, value_parser = parse_parked)]
        queue: Option<salur::store::State>,
        #[command(flatten)]
        filter: DlqFilter,
        /// Records listed at most (the counts cover all).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send parked records back: corrected blocked records restart at account opening, dead
    /// records resume at the stage where they stopped. Still-incomplete records stay parked.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Only blocked or only dead records.
        #[arg(long, value_parser = parse_parked)]
        queue: Option<salur::store::State>,
        /// Replay every parked record (when no other filter is given).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Close a parked record for good (state rejected, reason DISCARDED, the why audited).
    Discard {
        #[arg(long)]
        id: i64,
        /// Why, for the audit trail.
        #[arg(long)]
        why: String,
    },
    /// Bring salur.blocked and salur.dead in line with the database (replay and discard do this
    /// themselves): drop messages of records no longer parked, put back missing ones.
    Reconcile,
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
    /// Share of answers never sent, though the request was carried out (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    lost_answer_rate: f64,
    /// Milliseconds to wait before answering.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests answered at once per bank queue.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The banks' users to answer as: a file of `salur bank add --json` lines. A bank served
    /// without one gets a user made by bank-sim (an existing one gets a new password).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BankCommand {
    /// Create the bank's RabbitMQ user (or give it a new password) and print the password once.
    /// The user may read only the bank's request queue and publish only to the replies
    /// exchange, with routing keys bank.<code>.*. Uses RabbitMQ's management HTTP API
    /// (RABBITMQ_MANAGEMENT_URL, default port 15672 on the host of AMQP_URL).
    Add {
        /// The bank's BI code, e.g. 002.
        code: String,
        /// The bank's name, e.g. "BRI".
        #[arg(long)]
        name: String,
        /// Print {"bank": ..., "user": ..., "password": ..., "amqp_url": ...}.
        #[arg(long)]
        json: bool,
    },
    /// The registered banks and whether their user exists on the broker.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete the bank's user (RabbitMQ closes its connections) and forget the bank.
    Remove { code: String },
}

#[derive(Subcommand)]
enum OfficeCommand {
    /// Register an office and print its first API token (shown once; only its hash is kept).
    Add {
        /// The office's code, as batches carry it, e.g. DINSOS-5371.
        code: String,
        /// The office's name, e.g. "Dinas Sosial Kota Kupang".
        #[arg(long)]
        name: String,
        /// An auditor: reads every office's batches and records, changes nothing.
        #[arg(long)]
        auditor: bool,
        /// Print {"office": ..., "token": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Print a new token for an existing office (to rotate: make one, then revoke the old).
    Token { code: String },
    /// Revoke an office's tokens: all of them, or the one starting with --token.
    Revoke {
        code: String,
        /// The beginning of the token to revoke (as `salur office list` shows it).
        #[arg(long)]
        token: Option<String>,
    },
    /// The offices, their roles and how many tokens each has.
    List {
        #[arg(long)]
        json: bool,
    },
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

fn parse_reason(s: &str) -> Result<salur::domain::ReasonCode, String> {
    salur::domain::ReasonCode::parse(&s.to_uppercase())
        .ok_or_else(|| format!("unknown reason code {s:?} (see the README's reason codes)"))
}

fn parse_parked(s: &str) -> Result<salur::store::State, String> {
    match s {
        "blocked" => Ok(salur::store::State::Blocked),
        "dead" => Ok(salur::store::State::Dead),
        _ => Err(format!("{s:?}: use blocked or dead")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rate between 0 and 1")),
    }
}

fn init_logging(default: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // lapin logs channel-close races at shutdown as errors; our own code reports real failures.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},lapin=off")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Event fields at the top level; the enclosing span's fields (input, batch_id) under
        // "span".
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
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
    let long_running = matches!(
        cli.command,
        Command::Worker { .. } | Command::BankSim(_) | Command::Api { .. }
    );
    init_logging(if long_running { "info" } else { "warn" }, cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<submit::SubmitError>().is_some()
                || matches!(
                    e.downcast_ref::<remediate::RemediateError>(),
                    Some(
                        remediate::RemediateError::FixFile { .. }
                            | remediate::RemediateError::UnknownField { .. }
                            | remediate::RemediateError::BadAssignment(_)
                    )
                )
            {
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
        Command::Topology { delete } => {
            let b = broker::Broker::connect(&settings).await?;
            if delete {
                anyhow::ensure!(
                    !settings.namespace.is_empty(),
                    "refusing to delete the production topology: set SALUR_NAMESPACE to the namespace to tear down"
                );
                broker::topology::delete(&b).await?;
                let users = salur::bank::users::remove_namespace_users(&settings)
                    .await
                    .unwrap_or_else(|e| {
                        eprintln!("warning: the namespace's bank users were not deleted: {e:#}");
                        0
                    });
                println!(
                    "topology of namespace {} deleted ({users} bank users)",
                    settings.namespace
                );
            } else {
                broker::topology::declare(&b).await?;
                println!("topology declared");
            }
            b.close().await;
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
                lost_answer_rate: a.lost_answer_rate,
                delay: Duration::from_millis(a.delay_ms),
                seed: a.seed,
                concurrency: a.concurrency,
                credentials: match &a.credentials {
                    Some(file) => read_credentials(file)?,
                    None => Vec::new(),
                },
                reject_code: None,
            };
            sim::run(settings, pool, opts, shutdown_token()).await?;
        }
        Command::Bank { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                BankCommand::Add { code, name, json } => {
                    let creds = salur::bank::users::add(&settings, &pool, &code, &name).await?;
                    let url = creds.amqp_url(&settings)?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "bank": creds.bank, "user": creds.user,
                                "password": creds.password, "amqp_url": url,
                            })
                        );
                    } else {
                        println!("{}", creds.password);
                        eprintln!(
                            "bank {} added as RabbitMQ user {}; keep this password: it is not \
                             shown again. The bank connects with AMQP_URL={}",
                            creds.bank,
                            creds.user,
                            salur::config::redact_url(&url)
                        );
                    }
                }
                BankCommand::List { json } => {
                    let banks = salur::bank::users::list(&settings, &pool).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&banks)?);
                    } else {
                        println!("{:<6} {:<34} {:<6} name", "bank", "user", "exists");
                        for b in banks {
                            println!(
                                "{:<6} {:<34} {:<6} {}",
                                b.bank,
                                b.user,
                                if b.user_exists { "yes" } else { "NO" },
                                b.name
                            );
                        }
                    }
                }
                BankCommand::Remove { code } => {
                    if !salur::bank::users::remove(&settings, &pool, &code).await? {
                        eprintln!("error: bank {code} has no user: see `salur bank list`");
                        return Ok(ExitCode::FAILURE);
                    }
                    println!("bank {code} removed");
                }
            }
        }
        Command::BankCheck {
            bank,
            timeout,
            json,
        } => {
            let results = salur::bank::check::run(
                &settings,
                salur::bank::check::CheckOptions {
                    bank,
                    timeout: Duration::from_secs(timeout),
                },
            )
            .await?;
            let failed = results
                .iter()
                .filter(|r| r.verdict == salur::bank::check::Verdict::Fail)
                .count();
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    println!("{r}");
                }
                println!(
                    "{} rules: {} passed, {failed} failed, {} skipped",
                    results.len(),
                    results
                        .iter()
                        .filter(|r| r.verdict == salur::bank::check::Verdict::Pass)
                        .count(),
                    results
                        .iter()
                        .filter(|r| r.verdict == salur::bank::check::Verdict::Skip)
                        .count()
                );
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
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
        Command::Api { addr } => {
            let pool = store::connect(&settings).await?;
            let addr = addr.unwrap_or(settings.api_addr);
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {addr} ({e}): set API_ADDR (or --addr) to a free port"
                )
            })?;
            let state = salur::api::AppState::new(settings, pool);
            salur::api::serve(state, listener, shutdown_token()).await?;
        }
        Command::Office { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                OfficeCommand::Add {
                    code,
                    name,
                    auditor,
                    json,
                } => {
                    let role = if auditor {
                        office::Role::Auditor
                    } else {
                        office::Role::Office
                    };
                    let token = office::add(&pool, &code, &name, role).await?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "office": code, "role": role, "token": token })
                        );
                    } else {
                        println!("{token}");
                        eprintln!(
                            "{} {code} added; keep this token: it is not shown again (only its hash is stored)",
                            role.as_str()
                        );
                    }
                }
                OfficeCommand::Token { code } => {
                    println!("{}", office::issue_token(&pool, &code).await?);
                    eprintln!("keep this token: it is not shown again");
                }
                OfficeCommand::Revoke { code, token } => {
                    let n = office::revoke(&pool, &code, token.as_deref()).await?;
                    if n == 0 {
                        eprintln!(
                            "error: no active token of {code} matched: see `salur office list`"
                        );
                        return Ok(ExitCode::FAILURE);
                    }
                    println!("{n} token(s) of {code} revoked");
                }
                OfficeCommand::List { json } => {
                    let offices = office::list(&pool).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&offices)?);
                    } else {
                        println!(
                            "{:<24} {:<8} {:>8}  {:<40} name",
                            "code", "role", "revoked", "active tokens"
                        );
                        for o in offices {
                            println!(
                                "{:<24} {:<8} {:>8}  {:<40} {}",
                                o.code,
                                o.role.as_str(),
                                o.revoked_tokens,
                                o.tokens.join(" "),
                                o.name
                            );
                        }
                    }
                }
            }
        }
        Command::Demo {
            recipients,
            incomplete,
            seed,
            timeout,
            json,
            fix,
            transient_error_rate,
            lost_answer_rate,
        } => {
            let opts = demo::DemoOptions {
                fix,
                bank: SimOptions {
                    transient_error_rate,
                    lost_answer_rate,
                    ..Default::default()
                },
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
        Command::Records { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                RecordsCommand::Show { id, json } => {
                    let view = remediate::show(&pool, &Scope::All, id).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&view)?);
                    } else {
                        print_record(&view);
                    }
                }
                RecordsCommand::Fix {
                    id,
                    sets,
                    batch,
                    file,
                    json,
                } => {
                    let outcomes = match (id, batch, file) {
                        (Some(id), _, _) => {
                            anyhow::ensure!(
                                !sets.is_empty(),
                                "say what to correct: --set field=value (e.g. --set mother_name=\"Siti Aminah\")"
                            );
                            let sets = remediate::parse_assignments(&sets)?;
                            vec![remediate::fix(&pool, &Scope::All, id, &sets).await?]
                        }
                        (None, Some(batch), Some(file)) => {
                            let reader = std::fs::File::open(&file).map_err(|e| {
                                anyhow::anyhow!("cannot read {}: {e}", file.display())
                            })?;
                            remediate::fix_file(
                                &pool,
                                &Scope::All,
                                batch,
                                &file.display().to_string(),
                                reader,
                            )
                            .await?
                        }
                        _ => anyhow::bail!("give a record id with --set, or --batch and --file"),
                    };
                    if json {
                        println!("{}", serde_json::to_string_pretty(&outcomes)?);
                    } else {
                        for o in &outcomes {
                            print_fix(o);
                        }
                        let ready = outcomes.iter().filter(|o| o.ready).count();
                        println!(
                            "{} corrected, {ready} complete; replay them with `salur dlq replay`",
                            outcomes.len()
                        );
                    }
                }
            }
        }
        Command::Dlq { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                DlqCommand::List {
                    queue,
                    filter,
                    limit,
                    json,
                } => {
                    let filter = to_filter(filter, queue);
                    let list = remediate::dlq_list(&pool, &Scope::All, &filter, limit).await?;
                    // What the queues hold, best effort: salur.dead also keeps messages that
                    // are no record's (unreadable, refused bank answers), and the stale
                    // messages of records that left `dead` since (a late bank answer).
                    let mut queues = std::collections::BTreeMap::new();
                    let mut dead_queue = None;
                    if let Ok(b) = broker::Broker::connect(&settings).await {
                        for q in [broker::names::BLOCKED_QUEUE, broker::names::DEAD_QUEUE] {
                            if let Ok(n) = b.queue_depth(q).await {
                                queues.insert(q, n);
                            }
                        }
                        dead_queue = salur::ops::dead_queue::census(&b, &pool).await.ok();
                        b.close().await;
                    }
                    if json {
                        let mut v = serde_json::to_value(&list)?;
                        v["queue_messages"] = serde_json::to_value(&queues)?;
                        v["dead_queue"] = serde_json::to_value(&dead_queue)?;
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        print_dlq(&list);
                        for (q, n) in &queues {
                            println!("queue {q}: {n} messages ready");
                        }
                        if let Some(d) = dead_queue {
                            println!(
                                "  salur.dead: {} of dead records, {} of records no longer dead \
                                 (stale: `salur dlq reconcile` removes them), {} no record's \
                                 (unreadable or refused bank answers, kept with their reason: \
                                 read them in the RabbitMQ management UI or with a consumer)",
                                d.dead_records, d.settled_records, d.other
                            );
                        }
                    }
                }
                DlqCommand::Replay {
                    filter,
                    queue,
                    all,
                    json,
                } => {
                    let filter = to_filter(filter, queue);
                    anyhow::ensure!(
                        all || filter.batch_id.is_some()
                            || filter.reason.is_some()
                            || !filter.ids.is_empty(),
                        "say what to replay: --batch, --reason, --id, or --all"
                    );
                    let out = remediate::replay(&settings, &pool, &Scope::All, &filter).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&out)?);
                    } else {
                        let total: u64 = out.replayed.values().sum();
                        println!("{total} records replayed {:?}", out.replayed);
                        for o in &out.still_blocked {
                            print_fix(o);
                        }
                        if !out.still_blocked.is_empty() {
                            println!(
                                "{} records are still incomplete and stay blocked: correct them with `salur records fix`",
                                out.still_blocked.len()
                            );
                        }
                        if let Some(q) = &out.queues {
                            println!(
                                "parked queues: {} messages removed, {} kept, {} restored",
                                q.removed, q.kept, q.restored
                            );
                        }
                        for (id, why) in &out.not_parked {
                            eprintln!("record {id} was not replayed: {why}");
                        }
                    }
                    if !out.not_parked.is_empty() {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                DlqCommand::Discard { id, why } => {
                    let d = remediate::discard(&settings, &pool, &Scope::All, id, &why).await?;
                    println!("record {id} was {} and is now rejected (DISCARDED)", d.was);
                }
                DlqCommand::Reconcile => {
                    let r = remediate::reconcile(&settings, &pool).await?;
                    println!(
                        "parked queues: {} messages removed, {} kept, {} restored",
                        r.removed, r.kept, r.restored
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_filter(f: DlqFilter, queue: Option<salur::store::State>) -> Filter {
    Filter {
        batch_id: f.batch,
        reason: f.reason,
        ids: f.ids,
        state: queue,
    }
}

fn codes(reasons: &[salur::domain::Reason]) -> String {
    reasons
        .iter()
        .map(|r| r.code.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn print_fix(o: &remediate::FixOutcome) {
    if o.ready {
        println!("record {} (row {}): complete", o.id, o.row);
    } else {
        println!("record {} (row {}): still blocked:", o.id, o.row);
        for r in &o.reasons {
            println!("  {} {}: {}", r.code, r.field, r.message);
        }
    }
}

fn print_record(v: &remediate::RecordView) {
    println!(
        "record {} — batch {} row {} ({} {} {})",
        v.id, v.batch_id, v.row, v.office, v.program, v.period
    );
    println!(
        "state: {} (attempts in this stage: {})",
        v.state, v.attempts
    );
    for r in &v.reasons {
        println!("  {} {}: {}", r.code, r.field, r.message);
    }
    println!("fields (masked):");
    for (k, val) in &v.fields {
        println!("  {k:<15} {}", val.as_deref().unwrap_or("—"));
    }
    println!("history:");
    for e in &v.history {
        let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
        println!(
            "  {} {} → {} {} {}",
            e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.from.as_deref().unwrap_or("—"),
            e.to,
            codes(&e.reasons),
            detail
        );
    }
}

fn print_dlq(l: &remediate::DlqList) {
    if l.totals.is_empty() {
        println!("nothing is parked");
        return;
    }
    for (state, n) in &l.totals {
        let queue = if state == "dead" {
            "salur.dead"
        } else {
            "salur.blocked"
        };
        println!(
            "{state} ({queue}): {n} records, the oldest parked {} s ago",
            l.oldest_seconds.get(state).copied().unwrap_or(0)
        );
        if let Some(reasons) = l.by_reason.get(state) {
            let mut sorted: Vec<_> = reasons.iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (code, n) in sorted {
                println!("  {n:>7}  {code}");
            }
        }
    }
    println!("records (oldest first):");
    println!(
        "  {:>10}  {:<36}  {:>6}  {:<7}  {:<15}  reasons",
        "id", "batch", "row", "state", "stage"
    );
    for r in &l.records {
        println!(
            "  {:>10}  {:<36}  {:>6}  {:<7}  {:<15}  {}",
            r.id,
            r.batch_id,
            r.row,
            r.state,
            r.stage.as_str(),
            if r.reasons.is_empty() {
                "(corrected: replay it)".to_owned()
            } else {
                codes(&r.reasons)
            }
        );
    }
}

/// Bank credentials, one `salur bank add --json` object per line.
fn read_credentials(
    file: &std::path::Path,
) -> anyhow::Result<Vec<salur::bank::users::Credentials>> {
    use anyhow::Context as _;
    #[derive(serde::Deserialize)]
    struct Line {
        bank: String,
        user: String,
        password: String,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let l: Line = serde_json::from_str(l).with_context(|| {
                format!(
                    "{} line {}: not a `salur bank add --json` line",
                    file.display(),
                    n + 1
                )
            })?;
            Ok(salur::bank::users::Credentials {
                bank: l.bank,
                user: l.user,
                password: l.password,
            })
        })
        .collect()
}
