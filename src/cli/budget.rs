//! `salur budget set | show`: a programme's budget ceiling per period and office, and what it
//! has used (allocated, approved and not yet paid, disbursed, released, remaining).

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::budget;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Set (or replace) an office's budget: `salur budget set BPNT 2026-Q4 --office DINSOS-5371
    /// --amount 1500000000`. An approval that would take the office past it is refused.
    Set {
        program: String,
        period: String,
        #[arg(long)]
        office: String,
        /// Rupiah, e.g. 1500000000 or Rp1.500.000.000.
        #[arg(long)]
        amount: String,
        #[arg(long)]
        json: bool,
    },
    /// Per office: allocated, approved and not yet paid, disbursed, released, remaining.
    Show {
        program: String,
        period: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Set {
            program,
            period,
            office,
            amount,
            json,
        } => {
            let amount = budget::parse_amount(&amount)?;
            let line = budget::set(&pool, &program, &period, &office, amount).await?;
            if json {
                shared::print_json(&line)?;
            } else {
                println!("budget of {program} {period} for {office} set");
                println!("{line}");
            }
        }
        Command::Show {
            program,
            period,
            json,
        } => {
            let show = budget::show(&pool, &program, &period).await?;
            if json {
                shared::print_json(&show)?;
            } else {
                print!("{show}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
