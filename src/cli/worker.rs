//! `salur worker`: the stage consumers, the bank-answer consumer, the outbox relay, the sweeper
//! and the retention loop, with `/metrics`, until SIGINT/SIGTERM.

use super::shared;
use salur::config::Settings;
use salur::messages::Stage;
use salur::metrics::Metrics;
use salur::{store, worker};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// A stage to run (account_opening, verification, transfer); repeat for several. Default: all.
    #[arg(long = "stage", value_name = "NAME", value_parser = parse_stage)]
    stages: Vec<Stage>,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::parse(s).ok_or_else(|| {
        format!("unknown stage {s:?}: use account_opening, verification or transfer")
    })
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let pool = store::connect(&settings).await?;
    let metrics = Arc::new(Metrics::new());
    let cancel = shared::shutdown_token();
    if let Some(addr) = settings.metrics_addr {
        let (m, c) = (metrics.clone(), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = salur::metrics::serve(addr, m, c.clone()).await {
                tracing::error!(error = format!("{e:#}"), "metrics server failed");
                c.cancel();
            }
        });
    }
    tokio::spawn(salur::ops::privacy::retention_loop(
        pool.clone(),
        settings.retention_days,
        cancel.clone(),
    ));
    let opts = if args.stages.is_empty() {
        worker::WorkerOptions::default()
    } else {
        worker::WorkerOptions {
            stages: args.stages,
        }
    };
    worker::run(settings, pool, opts, metrics, cancel).await?;
    Ok(ExitCode::SUCCESS)
}
