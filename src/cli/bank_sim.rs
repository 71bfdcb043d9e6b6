//! `salur bank-sim`: the reference bank (opens accounts, answers inquiries, settles
//! transfers) over AMQP and, with `--snap`, over SNAP BI; with faults to inject.

use super::shared;
use super::snap_credentials::{CredentialArgs, read_pem};

use salur::bank::sim::{self, SimOptions};
use salur::bank::sim_snap;
use salur::bank::snap::sign;
use salur::config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<SimCommand>,
    /// bank-sim's ledger database (accounts, transfers, returns, SNAP calls), for every
    /// subcommand. Default: `<salur's database>_bank` next to salur's, created if missing.
    #[arg(long, env = "SALUR_BANK_LEDGER_URL", value_name = "URL", global = true)]
    ledger_url: Option<String>,
    /// A bank code to serve (e.g. 002); repeat for several. Default: every known bank.
    #[arg(long = "bank", value_name = "CODE")]
    banks: Vec<String>,
    /// Share of items answered with a transient error (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    transient_error_rate: f64,
    /// Share of new items refused for good (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    reject_rate: f64,
    /// Share of answers sent twice (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    duplicate_rate: f64,
    /// Share of answers never sent, though the request was carried out (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
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
    snap: SimSnapArgs,
    /// The banks' users to answer as: a file of `salur bank add --json` lines. A bank served
    /// without one gets a user made by bank-sim (an existing one gets a new password).
    #[arg(long = "bank-credentials", value_name = "FILE")]
    bank_credentials: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum SimCommand {
    /// Write the programme source account's statement of one day (MT940, or the CSV export),
    /// from bank-sim's ledger: a debit per transfer paid that day, a credit per transfer
    /// returned that day.
    Statement(StatementArgs),
    /// Return a share of the transfers paid (account closed, recipient deceased, not
    /// collected) and announce them to salur with `transfer_returned` messages, as the bank's
    /// RabbitMQ user (the day's statement lists them as credits too).
    Return(ReturnArgs),
}

#[derive(clap::Args)]
struct ReturnArgs {
    /// The bank returning (e.g. 002).
    #[arg(long)]
    bank: String,
    /// The day of the returns (WIB), YYYY-MM-DD. Default: today.
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
    /// Share of paid transfers, not returned yet, that come back (0..1).
    #[arg(long, value_parser = shared::parse_rate)]
    return_rate: f64,
    /// Only transfers paid at least this many days before the day come back.
    #[arg(long, default_value_t = 0)]
    return_after_days: u32,
    /// Seed of which transfers come back.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One bank's day of bank-sim's ledger: `--bank` checked, `--date` today in WIB when not given.
fn day(
    bank: &str,
    date: Option<chrono::NaiveDate>,
    return_rate: f64,
    return_after_days: u32,
    seed: u64,
) -> anyhow::Result<salur::bank::sim_statement::StatementOptions> {
    let bank = salur::domain::BankCode::parse(bank)
        .map_err(|e| anyhow::anyhow!("--bank {bank}: {e}"))?
        .as_str()
        .to_owned();
    let date =
        date.unwrap_or_else(|| (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive());
    Ok(salur::bank::sim_statement::StatementOptions {
        bank,
        date,
        return_rate,
        return_after_days,
        seed,
    })
}

async fn announce(settings: Settings, a: ReturnArgs) -> anyhow::Result<ExitCode> {
    let opts = day(&a.bank, a.date, a.return_rate, a.return_after_days, a.seed)?;
    let ledger = sim::connect_ledger(&settings).await?;
    let returned = salur::bank::sim_statement::announce_returns(&settings, &ledger, &opts).await?;
    let (bank, date) = (&opts.bank, opts.date);
    let total: rust_decimal::Decimal = returned.iter().map(|r| r.1).sum();
    println!(
        "bank {bank} returned {} transfers ({}) on {date}, announced with transfer_returned",
        returned.len(),
        salur::domain::rupiah(total)
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
struct StatementArgs {
    /// The bank whose statement it is (e.g. 002).
    #[arg(long)]
    bank: String,
    /// The day (WIB), YYYY-MM-DD. Default: today.
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// mt940 or csv (the CSV export; layout in the README's "Reconciliation").
    #[arg(long, default_value = "mt940", value_parser = ["mt940", "csv"])]
    format: String,
    /// Share of paid transfers, not returned yet, that come back on this day (0..1), each with
    /// a reason: account closed (AC04), recipient deceased (MD07), not collected (NOCO).
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    return_rate: f64,
    /// Only transfers paid at least this many days before the day come back.
    #[arg(long, default_value_t = 0)]
    return_after_days: u32,
    /// Seed of which transfers come back.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

async fn statement(settings: Settings, a: StatementArgs) -> anyhow::Result<ExitCode> {
    let opts = day(&a.bank, a.date, a.return_rate, a.return_after_days, a.seed)?;
    let ledger = sim::connect_ledger(&settings).await?;
    let s = salur::bank::sim_statement::statement(&ledger, &opts).await?;
    let text = if a.format == "csv" {
        s.to_csv()
    } else {
        s.to_mt940()
    };
    match &a.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    let (debits, paid) = s.sum(salur::bank::statement::Direction::Debit);
    let (credits, returned) = s.sum(salur::bank::statement::Direction::Credit);
    eprintln!(
        "statement {} of {}: {debits} debits ({}), {credits} returns ({}), closing {}",
        s.reference,
        s.date,
        salur::domain::rupiah(paid),
        salur::domain::rupiah(returned),
        salur::domain::rupiah(s.closing)
    );
    Ok(ExitCode::SUCCESS)
}

/// bank-sim over SNAP BI.
#[derive(clap::Args, Clone, Default)]
struct SimSnapArgs {
    /// Also serve SNAP BI here (e.g. 127.0.0.1:8443). Without --bank, bank-sim then serves SNAP
    /// only (no AMQP bank queue), leaving the queues to `salur bank-gateway`.
    #[arg(long, value_name = "ADDR")]
    snap: Option<std::net::SocketAddr>,
    /// The bank the SNAP server is (its internal accounts, intrabank transfers).
    #[arg(long, default_value = "009")]
    snap_bank: String,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// The partner's registered RSA public key (PEM).
    #[arg(long, env = "SNAP_PUBLIC_KEY", value_name = "PEM")]
    snap_public_key: Option<PathBuf>,
    /// Seconds an access token lives.
    #[arg(long, default_value_t = 900)]
    snap_token_ttl: u64,
    /// Timestamps further than this many seconds from bank-sim's clock are refused.
    #[arg(long, default_value_t = 300)]
    snap_max_skew: u64,
    /// bank-sim's clock is off by this many seconds (to show clock-skew handling).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    snap_clock_offset: i64,
    /// Share of SNAP transfers carried out and then answered 504 Timeout (0..1).
    #[arg(long, default_value_t = 0.0)]
    timeout_rate: f64,
    /// Milliseconds a lost SNAP answer keeps the caller waiting.
    #[arg(long, default_value_t = 60_000)]
    snap_lost_delay_ms: u64,
}

impl SimSnapArgs {
    fn options(&self, sim: &SimOptions) -> anyhow::Result<Option<sim_snap::SnapOptions>> {
        let Some(addr) = self.snap else {
            return Ok(None);
        };
        let file = self.credentials.file()?;
        let c = &self.credentials;
        let key = self
            .snap_public_key
            .clone()
            .or_else(|| file.get("SNAP_PUBLIC_KEY").map(PathBuf::from))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no partner public key: set SNAP_PUBLIC_KEY or pass --snap-public-key PEM"
                )
            })?;
        let (client_key, client_secret, partner_id) = c.identity(&file)?;
        Ok(Some(sim_snap::SnapOptions {
            addr,
            bank_code: self.snap_bank.clone(),
            client_key,
            client_secret,
            partner_id,
            public_key: sign::TokenVerifier::from_pem(&read_pem(&key)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?,
            token_ttl: Duration::from_secs(self.snap_token_ttl),
            max_skew: Duration::from_secs(self.snap_max_skew),
            clock_offset: chrono::Duration::seconds(self.snap_clock_offset),
            timeout_rate: self.timeout_rate,
            lost_answer_rate: sim.lost_answer_rate,
            duplicate_rate: sim.duplicate_rate,
            lost_delay: Duration::from_millis(self.snap_lost_delay_ms),
            delay: sim.delay,
            seed: sim.seed,
        }))
    }
}

impl Args {
    /// Whether this runs the bank (not a one-off like `statement`).
    pub fn serves(&self) -> bool {
        self.command.is_none()
    }
}

pub async fn run(mut settings: Settings, mut a: Args) -> anyhow::Result<ExitCode> {
    if let Some(url) = a.ledger_url.take() {
        settings.bank_ledger_url = Some(url);
    }
    match a.command.take() {
        Some(SimCommand::Statement(s)) => return statement(settings, s).await,
        Some(SimCommand::Return(r)) => return announce(settings, r).await,
        None => {}
    }
    let ledger = sim::connect_ledger(&settings).await?;
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
            Some(file) => salur::bank::users::read_credentials(file)?,
            None => Vec::new(),
        },
        reject_code: None,
    };
    let cancel = shared::shutdown_token();
    let snap = match a.snap.options(&opts)? {
        Some(snap_opts) => {
            let s = Arc::new(sim::Sim::new(
                settings.clone(),
                ledger.clone(),
                opts.clone(),
            ));
            let (_, task) = sim_snap::serve(s, ledger.clone(), snap_opts, cancel.clone()).await?;
            Some(task)
        }
        None => None,
    };
    match snap {
        // SNAP only: the bank queues are left to `salur bank-gateway`.
        Some(task) if opts.banks.is_empty() => task.await??,
        snap => {
            sim::run(settings, ledger, opts, cancel).await?;
            if let Some(task) = snap {
                task.await??;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
