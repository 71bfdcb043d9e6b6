//! `salur chaos`: the fault campaign on a three-node cluster (run by `scripts/chaos.sh`).

use super::shared;
use salur::config::Settings;
use salur::ops::chaos::{self, ChaosOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Recipients in all (submitted in batches over the first half).
    #[arg(long, default_value_t = 100_000)]
    records: u32,
    /// Minutes of faults.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seed of the batches and of the fault schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PostgreSQL restarts at most.
    #[arg(long, default_value_t = 2)]
    pg_restarts: u32,
    /// The cluster's vhost the campaign uses (AMQP_URL must point at it).
    #[arg(long)]
    vhost: String,
    /// scripts/cluster.sh (runs rabbitmqctl on a node).
    #[arg(long, default_value = "scripts/cluster.sh")]
    cluster_script: PathBuf,
    /// Minutes the records may take to settle once the faults are healed.
    #[arg(long, default_value_t = 20)]
    settle_minutes: u64,
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let pool = salur::store::migrate(settings).await?;
    let opts = ChaosOptions {
        records: args.records,
        minutes: args.minutes,
        seed: args.seed,
        binary: std::env::current_exe()?,
        cluster_script: args.cluster_script,
        vhost: args.vhost,
        pg_restarts: args.pg_restarts,
        settle_timeout: Duration::from_secs(args.settle_minutes * 60),
    };
    let report = chaos::run(settings, &pool, &opts).await?;
    if args.json {
        shared::print_json(&report)?;
    } else {
        print!("{report}");
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
