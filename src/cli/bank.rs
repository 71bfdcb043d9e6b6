//! `salur bank`: the banks' RabbitMQ users (add, list, remove), and collective account opening
//! by file (export-accounts, import-accounts; simulate-results is bank-sim's side).

use super::shared;
use clap::Subcommand;
use salur::bank::files;
use salur::config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum Command {
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
    /// Write a batch's account-opening requests for one bank as the bank's collective
    /// account-opening file (CSV; layout in the README).
    ExportAccounts {
        #[arg(long, value_name = "CODE")]
        bank: String,
        #[arg(long, value_name = "ID")]
        batch: Uuid,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Apply the bank's result file (opened with account number and name, or refused with a
    /// code) as account-opening answers: all or nothing.
    ImportAccounts {
        file: PathBuf,
        #[arg(long, value_name = "CODE")]
        bank: String,
        #[arg(long)]
        json: bool,
    },
    /// bank-sim's side of collective account opening: answer a request file with a result
    /// file, deciding as bank-sim does over AMQP (same ledger).
    SimulateResults {
        request: PathBuf,
        /// bank-sim's ledger database, as `salur bank-sim --ledger-url`.
        #[arg(long, env = "SALUR_BANK_LEDGER_URL", value_name = "URL")]
        ledger_url: Option<String>,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, value_name = "CODE")]
        bank: String,
        /// Share of accounts refused (NIK not found).
        #[arg(long, default_value_t = 0.0)]
        reject_rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub async fn run(mut settings: Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(&settings).await?;
    match command {
        Command::Add { code, name, json } => {
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
        Command::List { json } => {
            let banks = salur::bank::users::list(&settings, &pool).await?;
            if json {
                shared::print_json(&banks)?;
            } else {
                print!("{}", salur::bank::users::BankTable(&banks));
            }
        }
        Command::Remove { code } => {
            if !salur::bank::users::remove(&settings, &pool, &code).await? {
                anyhow::bail!("bank {code} has no user: see `salur bank list`");
            }
            println!("bank {code} removed");
        }
        Command::ExportAccounts {
            bank,
            batch,
            output,
        } => {
            let n = files::export_accounts(&pool, &bank, batch, &output).await?;
            eprintln!(
                "{n} account-opening requests written to {}",
                output.display()
            );
        }
        Command::ImportAccounts { file, bank, json } => {
            let summary = files::import_accounts(&settings, &pool, &bank, &file).await?;
            salur::ops::submit::publish_now(&settings, &pool).await;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{summary}");
            }
        }
        Command::SimulateResults {
            request,
            ledger_url,
            output,
            bank,
            reject_rate,
            seed,
        } => {
            if ledger_url.is_some() {
                settings.bank_ledger_url = ledger_url;
            }
            let ledger = salur::bank::sim::connect_ledger(&settings).await?;
            let opts = salur::bank::sim::SimOptions {
                reject_rate,
                seed,
                ..Default::default()
            };
            let sim = salur::bank::sim::Sim::new(settings, ledger, opts);
            let (opened, refused) = files::simulate_results(&sim, &bank, &request, &output).await?;
            eprintln!("{opened} opened, {refused} refused: {}", output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
