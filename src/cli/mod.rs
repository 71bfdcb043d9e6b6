//! The command line: every command, its arguments and a `run` that calls the library and prints
//! the result (through its `Display`, or as JSON). One file per command; this file knows the
//! list of commands, the logging set-up and the exit codes.
//!
//! Exit codes: 0 done; 1 failed (the message on standard error), or the command found what it
//! checks for wrong (`bank-check`, `demo`, `chaos`, `dlq replay --id` of a record not parked,
//! `office revoke` that matched nothing); 2 the command line is wrong (clap); 3 `batch status
//! --wait --timeout` gave up; 65 the data is wrong (a batch file, a bank's result file, a
//! correction: sysexits' `EX_DATAERR`).

mod api;
mod bank;
mod bank_check;
mod bank_gateway;
mod bank_sim;
mod batch;
mod bench;
mod budget;
mod chaos;
mod demo;
mod dlq;
mod keys;
mod migrate;
mod office;
mod person;
mod person_data;
mod programme;
mod reconcile;
mod records;
mod retention;
mod shared;
mod snap_credentials;
mod submit;
mod topology;
mod worker;

use clap::{Parser, Subcommand};
use salur::config::Settings;
use salur::ops::remediate::RemediateError;
use std::process::ExitCode;

/// Pays social aid without cash: batches of recipients through bank account opening,
/// verification and transfer.
///
/// Configuration comes from the environment: DATABASE_URL (default
/// postgres://postgres@127.0.0.1:5432/salur), AMQP_URL (default
/// amqp://guest:guest@127.0.0.1:5672/%2f), METRICS_ADDR (default 127.0.0.1:9464, or `off`),
/// SALUR_NAMESPACE, SALUR_CHUNK_SIZE, SALUR_CONCURRENCY, SALUR_GROUP, SALUR_PREFETCH,
/// SALUR_MAX_ATTEMPTS,
/// API_ADDR (default 127.0.0.1:8080), API_BODY_LIMIT, API_XLSX_LIMIT, RUST_LOG,
/// LOG_FORMAT=json (or --log-format json).
#[derive(Parser)]
#[command(name = "salur", version)]
pub struct Cli {
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
    Topology(topology::Args),
    /// Run the stage consumers, the bank-answer consumer and the outbox relay until SIGINT/SIGTERM.
    Worker(worker::Args),
    /// Run the reference bank integration (opens accounts, answers inquiries, settles transfers),
    /// over AMQP and, with --snap, over SNAP BI.
    BankSim(bank_sim::Args),
    /// Serve one bank's requests by calling its SNAP BI API (or print SNAP signatures: `sign`,
    /// `sign-token`). Credentials from SNAP_* variables or --credentials FILE.
    BankGateway(bank_gateway::Args),
    /// The banks: their RabbitMQ users (add, list, remove: the broker authenticates each bank's
    /// answers), and collective account opening by file (export-accounts, import-accounts).
    Bank {
        #[command(subcommand)]
        command: bank::Command,
    },
    /// The conformance kit: check a bank integration against the contract (queues/asyncapi.yaml)
    /// on a test vhost or namespace where no salur worker runs. One line per rule; exits 1 if
    /// any rule failed.
    BankCheck(bank_check::Args),
    /// Validate and store a batch file (CSV or JSON), and enqueue it. Prints the batch id.
    Submit(submit::Args),
    /// Follow a batch.
    Batch {
        #[command(subcommand)]
        command: batch::Command,
    },
    /// Serve the HTTP API of the offices (/v1, described at /v1/openapi.json) on API_ADDR until
    /// SIGINT/SIGTERM.
    Api(api::Args),
    /// The offices (and auditors) that may use the HTTP API, and their tokens.
    Office {
        #[command(subcommand)]
        command: office::Command,
    },
    /// The people who sign in to the web console (served by `salur api` at /).
    Person {
        #[command(subcommand)]
        command: person::Command,
    },
    /// The programmes batches are submitted for: the amounts each pays and whether payment
    /// lists need a checker's approval.
    Programme {
        #[command(subcommand)]
        command: programme::Command,
    },
    /// Budget ceilings per programme, period and office, and what they have used.
    Budget {
        #[command(subcommand)]
        command: budget::Command,
    },
    /// The fault campaign on a three-node cluster (run it with scripts/chaos.sh, which starts the
    /// cluster and sets AMQP_URL and DATABASE_URL): workers, banks, faults, then the invariants.
    Chaos(chaos::Args),
    /// Migrate, declare, run workers and bank-sim in this process, submit a realistic generated
    /// batch, wait for it and print the summary.
    Demo(demo::Args),
    /// Throughput benchmark on the local services (its own database and queues, dropped after):
    /// valid recipients through intake and every stage to disbursed, durably, with a raw
    /// lapin+sqlx baseline and a per-record (chunk size 1) baseline measured in the same run.
    /// Fails if any record is not disbursed exactly once or the totals differ.
    Bench(bench::Args),
    /// Reconcile a bank statement (MT940 or the CSV export) line by line with what salur paid:
    /// matched, returned, exceptions; stored once per statement.
    Reconcile(reconcile::Args),
    /// Look at one record, or correct blocked records.
    Records {
        #[command(subcommand)]
        command: records::Command,
    },
    /// Work the parked records (salur.blocked, salur.dead): list, replay, discard.
    Dlq {
        #[command(subcommand)]
        command: dlq::Command,
    },
    /// The data keys that seal personal fields (SALUR_DATA_KEY_FILE / SALUR_DATA_KEYS).
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// Erase the personal fields of closed batches past their programme's retention period.
    Retention {
        #[command(subcommand)]
        command: retention::Command,
    },
    /// A data subject's access or erasure request (UU PDP), by NIK (matched by keyed hash).
    PersonData {
        #[command(subcommand)]
        command: person_data::Command,
    },
}

impl Cli {
    /// Services that run until stopped log at `info` by default; one-shot commands at `warn`.
    fn long_running(&self) -> bool {
        match &self.command {
            Command::Worker(_) | Command::Api(_) => true,
            Command::BankSim(a) => a.serves(),
            Command::BankGateway(a) => a.serves(),
            _ => false,
        }
    }

    /// Sets up logging on standard error (`RUST_LOG` overrides the default level).
    pub fn init_logging(&self) {
        use tracing_subscriber::EnvFilter;
        let default = if self.long_running() { "info" } else { "warn" };
        // lapin logs channel-close races at shutdown as errors; our own code reports real
        // failures.
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("{default},lapin=off")));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
            // Event fields at the top level; the enclosing span's fields (input, batch_id)
            // under "span".
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .init(),
            LogFormat::Text => builder.init(),
        }
    }

    /// Runs the command with the settings from the environment.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let settings = Settings::from_env()?;
        match self.command {
            Command::Migrate => migrate::run(&settings).await,
            Command::Topology(args) => topology::run(&settings, args).await,
            Command::Worker(args) => worker::run(settings, args).await,
            Command::BankSim(args) => bank_sim::run(settings, args).await,
            Command::BankGateway(args) => bank_gateway::run(settings, args).await,
            Command::Bank { command } => bank::run(settings, command).await,
            Command::BankCheck(args) => bank_check::run(&settings, args).await,
            Command::Submit(args) => submit::run(&settings, args).await,
            Command::Batch { command } => batch::run(&settings, command).await,
            Command::Api(args) => api::run(settings, args).await,
            Command::Office { command } => office::run(&settings, command).await,
            Command::Person { command } => person::run(&settings, command).await,
            Command::Programme { command } => programme::run(&settings, command).await,
            Command::Budget { command } => budget::run(&settings, command).await,
            Command::Chaos(args) => chaos::run(&settings, args).await,
            Command::Demo(args) => demo::run(&settings, args).await,
            Command::Bench(args) => bench::run(&settings, args).await,
            Command::Reconcile(args) => reconcile::run(&settings, args).await,
            Command::Records { command } => records::run(&settings, command).await,
            Command::Dlq { command } => dlq::run(&settings, command).await,
            Command::Keys { command } => keys::run(&settings, command).await,
            Command::Retention { command } => retention::run(&settings, command).await,
            Command::PersonData { command } => person_data::run(&settings, command).await,
        }
    }
}

/// The exit code of a command that failed with `e`: 65 (`EX_DATAERR`) when the data given was
/// wrong (a batch file, a bank's result file, a correction), 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    let data_error = e
        .downcast_ref::<salur::ops::submit::SubmitError>()
        .is_some()
        || e.downcast_ref::<salur::bank::files::FileError>().is_some()
        || matches!(
            e.downcast_ref::<salur::ops::reconcile::ReconcileError>(),
            Some(salur::ops::reconcile::ReconcileError::Malformed(_))
        )
        || matches!(
            e.downcast_ref::<salur::ops::budget::BudgetError>(),
            Some(salur::ops::budget::BudgetError::InvalidAmount(_))
        )
        || matches!(
            e.downcast_ref::<salur::ops::programme::ProgrammeError>(),
            Some(
                salur::ops::programme::ProgrammeError::Amounts(_)
                    | salur::ops::programme::ProgrammeError::InvalidCode(_)
            )
        )
        || matches!(
            e.downcast_ref::<RemediateError>(),
            Some(
                RemediateError::FixFile { .. }
                    | RemediateError::InvalidValue { .. }
                    | RemediateError::UnknownField { .. }
                    | RemediateError::BadAssignment(_)
            )
        );
    if data_error {
        ExitCode::from(65)
    } else {
        ExitCode::FAILURE
    }
}
