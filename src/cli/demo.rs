//! `salur demo`: a realistic generated batch through the whole pipeline, with the workers and
//! bank-sim in this process; exits 1 if the outcome differs from what the generator put in.

use super::shared;
use salur::bank::sim::SimOptions;
use salur::config::Settings;
use salur::demo::{self, DemoOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
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
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    transient_error_rate: f64,
    /// Share of bank answers lost (0..1): shows the bank timeout.
    #[arg(long, default_value_t = 0.0, value_parser = shared::parse_rate)]
    lost_answer_rate: f64,
    /// The banks over SNAP BI: bank-sim serves SNAP, a bank-gateway per bank calls it, and
    /// accounts are opened by file exchange.
    #[arg(long)]
    snap: bool,
    /// Only write the generated batch to FILE (CSV) and the office's corrections of its
    /// incomplete records next to it (FILE with the extension `.corrections.csv`, the file
    /// `--fix` applies), print what was written (JSON: files, and records per expected
    /// blocked reason) and exit: nothing is submitted. For tests that drive the batch
    /// themselves, such as scripts/browser_test.sh.
    #[arg(long, value_name = "FILE")]
    write_batch: Option<PathBuf>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let opts = DemoOptions {
        fix: args.fix,
        snap: args.snap,
        bank: SimOptions {
            transient_error_rate: args.transient_error_rate,
            lost_answer_rate: args.lost_answer_rate,
            ..Default::default()
        },
        recipients: args.recipients,
        incomplete: args.incomplete,
        seed: args.seed,
        progress: !args.json,
        timeout: Duration::from_secs(args.timeout),
    };
    if let Some(file) = &args.write_batch {
        shared::print_json(&demo::write_batch(file, &opts)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = demo::run(settings, &opts).await?;
    if args.json {
        shared::print_json(&summary)?;
    } else {
        print!("{summary}");
    }
    let problems = summary.discrepancies();
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
