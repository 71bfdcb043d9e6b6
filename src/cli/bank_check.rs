//! `salur bank-check`: the conformance kit, a bank integration against the contract.

use super::shared;
use salur::bank::check::{self, CheckOptions, CheckReport, Verdict};
use salur::config::Settings;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The bank code to check, e.g. 002.
    #[arg(long)]
    bank: String,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let opts = CheckOptions {
        bank: args.bank,
        timeout: Duration::from_secs(args.timeout),
    };
    let results = check::run(settings, opts).await?;
    let report = CheckReport(&results);
    if args.json {
        shared::print_json(&results)?;
    } else {
        print!("{report}");
    }
    Ok(if report.count(Verdict::Fail) > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
