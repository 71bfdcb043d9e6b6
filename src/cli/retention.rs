//! `salur retention apply | set`: erase the personal fields of closed batches past their
//! programme's retention period.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::privacy;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
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

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Set { program, days } => {
            privacy::set_retention(&pool, &program, days).await?;
            println!("{program}: personal fields kept {days} days after a batch closes");
        }
        Command::Apply { dry_run, json } => {
            let actor = shared::operator();
            let run =
                privacy::apply_retention(&pool, settings.retention_days, dry_run, &actor).await?;
            if json {
                shared::print_json(&run)?;
            } else {
                print!("{run}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
