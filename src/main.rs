//! The `salur` command: parses the command line, sets up logging, calls the library.

use clap::{Args, Parser, Subcommand};
use salur::bank::sim::{self, SimOptions};
use salur::config::Settings;
use salur::demo;
use salur::messages::Stage;
use salur::metrics::Metrics;
use salur::ops::remediate::{self, Filter, Scope};
use salur::ops::{batch, office, privacy, submit};
use salur::{broker, store, worker};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod cmd_bank;

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
    /// Run the reference bank integration (opens accounts, answers inquiries, settles transfers),
    /// over AMQP and, with --snap, over SNAP BI.
    BankSim(BankSimArgs),
    /// Serve one bank's requests by calling its SNAP BI API (or print SNAP signatures: `sign`,
    /// `sign-token`). Credentials from SNAP_* variables or --credentials FILE.
    BankGateway(cmd_bank::GatewayArgs),
    /// The banks: their RabbitMQ users (add, list, remove: the broker authenticates each bank's
    /// answers), and collective account opening by file (export-accounts, import-accounts).
    Bank {
        #[command(subcommand)]
        command: cmd_bank::BankCommand,
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
    /// The fault campaign on a three-node cluster (run it with scripts/chaos.sh, which starts the
    /// cluster and sets AMQP_URL and DATABASE_URL): workers, banks, faults, then the invariants.
    Chaos {
        /// Recipients in all (submitted in batches over the first half).
        #[arg(long, default_value_t = 100_000)]
        records: u32,
        /// Minutes of faults.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Seed of the batches and of the fault schedule.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// PostgreSQL restarts at most.
        #[arg(long, default_value_t = 2)]
        pg_restarts: u32,
        /// The cluster's vhost the campaign uses (AMQP_URL must point at it).
        #[arg(long)]
        vhost: String,
        /// scripts/cluster.sh (runs rabbitmqctl on a node).
        #[arg(long, default_value = "scripts/cluster.sh")]
        cluster_script: PathBuf,
        /// Minutes the records may take to settle once the faults are healed.
        #[arg(long, default_value_t = 20)]
        settle_minutes: u64,
        #[arg(long)]
        json: bool,
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
        /// The banks over SNAP BI: bank-sim serves SNAP, a bank-gateway per bank calls it, and
        /// accounts are opened by file exchange.
        #[arg(long)]
        snap: bool,
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
        /// Also run salur with the personal fields stored in clear (benchmark database only)
        /// and report what encryption costs.
        #[arg(long)]
        encryption_cost: bool,
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
    /// The data keys that seal personal fields (SALUR_DATA_KEY_FILE / SALUR_DATA_KEYS).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Erase the personal fields of closed batches past their programme's retention period.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// A data subject's access or erasure request (UU PDP), by NIK (matched by keyed hash).
    PersonData {
        #[command(subcommand)]
        command: PersonDataCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// The keys in the ring, the keys the database knows, and how many values each seals.
    Status,
    /// Add a data key and re-seal every value under it, in chunks, while the pipeline runs;
    /// the old keys are then retired (and may be removed from the key ring).
    Rotate {
        /// Do not add a key: re-seal under the ring's newest key (when the keys come from
        /// SALUR_DATA_KEYS, add the new key there first).
        #[arg(long)]
        no_new_key: bool,
    },
    /// Print a new key ring (a hash key and key 1) for a new installation's key file.
    Generate,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Erase (or, with --dry-run, list) the closed batches past their retention period.
    Apply {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set a programme's retention period in days (default SALUR_RETENTION_DAYS).
    Set {
        #[arg(long)]
        program: String,
        #[arg(long)]
        days: i32,
    },
}

#[derive(Subcommand)]
enum PersonDataCommand {
    /// Write everything salur holds about the person with this NIK, decrypted (audited).
    Export {
        #[arg(long)]
        nik: String,
        /// Who asks (recorded in personal_data_log). Default: $USER.
        #[arg(long)]
        actor: Option<String>,
        /// Write here instead of standard output (the file is created readable by you only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Then erase this person's personal fields (a lawful erasure request); refused while a
        /// payment of theirs is in flight.
        #[arg(long)]
        erase: bool,
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
    #[command(flatten)]
    snap: cmd_bank::SimSnapArgs,
    /// The banks' users to answer as: a file of `salur bank add --json` lines. A bank served
    /// without one gets a user made by bank-sim (an existing one gets a new password).
    #[arg(long = "bank-credentials", value_name = "FILE")]
    bank_credentials: Option<PathBuf>,
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
        Command::Worker { .. }
            | Command::BankSim(_)
            | Command::Api { .. }
            | Command::BankGateway(cmd_bank::GatewayArgs { command: None, .. })
    );
    init_logging(if long_running { "info" } else { "warn" }, cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<submit::SubmitError>().is_some()
                || e.downcast_ref::<salur::bank::files::FileError>().is_some()
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
        Command::Keys { command } => match command {
            KeysCommand::Generate => {
                print!("{}", store::sealed::Keyring::generate().to_text());
            }
            KeysCommand::Status => {
                let pool = store::connect(&settings).await?;
                print!("{}", privacy::key_status(&pool).await?);
            }
            KeysCommand::Rotate { no_new_key } => {
                let pool = store::connect(&settings).await?;
                let (key, n, retired) = privacy::rotate(&pool, no_new_key, |n| {
                    if n % 10_000 < 1000 {
                        eprintln!("re-sealed {n} records…");
                    }
                })
                .await?;
                println!("key {key} encrypts; {n} records re-sealed");
                if !retired.is_empty() {
                    println!(
                        "keys {retired:?} are retired: nothing is sealed with them any more; they \
                         may be removed from the key ring once every process runs with key {key}"
                    );
                }
            }
        },
        Command::Retention { command } => {
            let pool = store::connect(&settings).await?;
            match command {
                RetentionCommand::Set { program, days } => {
                    privacy::set_retention(&pool, &program, days).await?;
                    println!("{program}: personal fields kept {days} days after a batch closes");
                }
                RetentionCommand::Apply { dry_run, json } => {
                    let actor = std::env::var("USER").unwrap_or_else(|_| "operator".into());
                    let run =
                        privacy::apply_retention(&pool, settings.retention_days, dry_run, &actor)
                            .await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&run)?);
                    } else {
                        for b in &run.batches {
                            println!(
                                "batch {} ({} {} {}, {} records): closed {}, kept {} days",
                                b.batch_id,
                                b.office,
                                b.program,
                                b.period,
                                b.records,
                                b.closed_at,
                                b.retention_days
                            );
                        }
                        if dry_run {
                            println!(
                                "{} batches past retention (dry run: nothing erased)",
                                run.batches.len()
                            );
                        } else {
                            println!(
                                "{} batches past retention: personal fields of {} records erased",
                                run.batches.len(),
                                run.records_erased
                            );
                        }
                    }
                }
            }
        }
        Command::PersonData { command } => {
            let pool = store::connect(&settings).await?;
            let PersonDataCommand::Export {
                nik,
                actor,
                out,
                erase,
            } = command;
            let actor = actor
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "operator".into());
            let data = privacy::person_data(&pool, &nik, &actor, erase).await?;
            let text = serde_json::to_string_pretty(&data)?;
            match out {
                Some(path) => {
                    use std::io::Write as _;
                    let mut o = std::fs::OpenOptions::new();
                    o.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                    o.open(&path)?.write_all(text.as_bytes())?;
                    eprintln!(
                        "{} records written to {}",
                        data.records.len(),
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
        }
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
            tokio::spawn(salur::ops::privacy::retention_loop(
                pool.clone(),
                settings.retention_days,
                cancel.clone(),
            ));
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
                credentials: match &a.bank_credentials {
                    Some(file) => read_credentials(file)?,
                    None => Vec::new(),
                },
                reject_code: None,
            };
            let cancel = shutdown_token();
            let snap = match a.snap.options(&opts)? {
                Some(snap_opts) => {
                    let s = Arc::new(sim::Sim::new(settings.clone(), pool.clone(), opts.clone()));
                    let (_, task) =
                        salur::bank::sim_snap::serve(s, pool.clone(), snap_opts, cancel.clone())
                            .await?;
                    Some(task)
                }
                None => None,
            };
            match snap {
                Some(task) if opts.banks.is_empty() => task.await??,
                snap => {
                    sim::run(settings, pool, opts, cancel).await?;
                    if let Some(task) = snap {
                        task.await??;
                    }
                }
            }
        }
        Command::BankGateway(args) => cmd_bank::gateway(settings, args, shutdown_token).await?,
        Command::Bank { command } => cmd_bank::bank(settings, command).await?,
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
        Command::Chaos {
            records,
            minutes,
            seed,
            pg_restarts,
            vhost,
            cluster_script,
            settle_minutes,
            json,
        } => {
            let pool = salur::store::migrate(&settings).await?;
            let opts = salur::ops::chaos::ChaosOptions {
                records,
                minutes,
                seed,
                binary: std::env::current_exe()?,
                cluster_script,
                vhost,
                pg_restarts,
                settle_timeout: Duration::from_secs(settle_minutes * 60),
            };
            let report = salur::ops::chaos::run(&settings, &pool, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
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
            snap,
        } => {
            let opts = demo::DemoOptions {
                fix,
                snap,
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
            encryption_cost,
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
                encryption_cost,
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
                            vec![
                                remediate::fix(
                                    &settings.amount_range,
                                    &pool,
                                    &Scope::All,
                                    id,
                                    &sets,
                                )
                                .await?,
                            ]
                        }
                        (None, Some(batch), Some(file)) => {
                            let reader = std::fs::File::open(&file).map_err(|e| {
                                anyhow::anyhow!("cannot read {}: {e}", file.display())
                            })?;
                            remediate::fix_file(
                                &settings.amount_range,
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
                        dead_queue = salur::ops::parked_queues::census(&b, &pool).await.ok();
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
