//! `salur bench`: throughput on the local services against a raw and a per-record baseline.

use super::shared;
use salur::bench::{self, BenchOptions};
use salur::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
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
    /// Do not run salur a second time with bank-sim's ledger in salur's database (by default
    /// both set-ups are measured: the ledger in its own database, and in salur's).
    #[arg(long)]
    skip_shared_ledger: bool,
    /// Also report where PostgreSQL's time goes, per statement and record (needs the
    /// pg_stat_statements library loaded: scripts/db_profile.sh loads it for one run).
    #[arg(long)]
    profile: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let opts = BenchOptions {
        recipients: args.recipients,
        chunk_size: args.chunk_size,
        per_record_recipients: args.per_record_recipients,
        skip_baselines: args.skip_baselines,
        seed: args.seed,
        encryption_cost: args.encryption_cost,
        shared_ledger: !args.skip_shared_ledger,
        profile: args.profile,
        progress: true,
    };
    let report = bench::run(settings, &opts).await?;
    if args.json {
        shared::print_json(&report)?;
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
