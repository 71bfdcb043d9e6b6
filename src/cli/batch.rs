//! `salur batch status | report | approval | approve | reject`: follow a batch; its payment
//! list, approved or rejected by a checker.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::approval;
use salur::ops::batch::{self, BatchError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum Command {
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
    /// The payment list awaiting approval: record count, total, per bank and per amount, the
    /// budget left after it, and the list hash an approval names.
    Approval {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Approve the payment list whose hash you checked (`salur batch approval ID`), as a
    /// checker: exactly that list is released to the banks, within the budget.
    Approve {
        id: Uuid,
        /// The list hash `salur batch approval` showed.
        #[arg(long)]
        list_hash: String,
        /// The checker approving (not the person who submitted the batch).
        #[arg(long)]
        person: String,
        #[arg(long)]
        json: bool,
    },
    /// Reject the payment list as it stands: its records go back to the office, blocked with
    /// APPROVAL_REJECTED and your why.
    Reject {
        id: Uuid,
        #[arg(long)]
        why: String,
        /// The checker rejecting.
        #[arg(long)]
        person: String,
        #[arg(long)]
        json: bool,
    },
}

/// A checker on the server's command line: every office's batches, no token.
fn checker(person: String) -> approval::Checker {
    approval::Checker {
        person,
        token_label: Some("cli".to_owned()),
        office: None,
    }
}

/// `batch status --wait --timeout` gave up.
const TIMED_OUT: u8 = 3;

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Status {
            id,
            wait,
            timeout,
            json,
        } => {
            let status = if wait {
                match batch::wait(&pool, id, timeout.map(Duration::from_secs), |_| {}).await {
                    Err(e @ BatchError::Timeout(..)) => {
                        eprintln!("error: {e}");
                        return Ok(ExitCode::from(TIMED_OUT));
                    }
                    other => other?,
                }
            } else {
                batch::status(&pool, id).await?
            };
            if json {
                shared::print_json(&status)?;
            } else {
                print!("{status}");
            }
        }
        Command::Report { id, output } => match output {
            Some(path) => {
                let n = batch::report(&pool, id, std::fs::File::create(&path)?).await?;
                eprintln!("{n} records written to {}", path.display());
            }
            None => {
                batch::report(&pool, id, std::io::stdout().lock()).await?;
            }
        },
        Command::Approval { id, json } => {
            let list = approval::list(&pool, id, None).await?;
            if json {
                shared::print_json(&list)?;
            } else {
                print!("{list}");
            }
        }
        Command::Approve {
            id,
            list_hash,
            person,
            json,
        } => {
            let decided =
                approval::approve(settings, &pool, id, &list_hash, &checker(person)).await?;
            if json {
                shared::print_json(&decided)?;
            } else {
                print!("{decided}");
            }
        }
        Command::Reject {
            id,
            why,
            person,
            json,
        } => {
            let decided = approval::reject(settings, &pool, id, &why, &checker(person)).await?;
            if json {
                shared::print_json(&decided)?;
            } else {
                print!("{decided}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
