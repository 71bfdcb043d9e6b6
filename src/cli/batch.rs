//! `salur batch status | report`: follow a batch.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
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
    }
    Ok(ExitCode::SUCCESS)
}
