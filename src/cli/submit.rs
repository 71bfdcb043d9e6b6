//! `salur submit FILE`: validate and store a batch file, enqueue it, print the batch id.

use salur::config::Settings;
use salur::ops::submit::{self, BatchInfo};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The office's file: CSV (comma or semicolon) or a JSON array.
    file: PathBuf,
    /// The submitting office's code, e.g. DINSOS-5371.
    #[arg(long)]
    office: String,
    /// The programme, e.g. BPNT or PKH.
    #[arg(long)]
    program: String,
    /// The period, e.g. 2026-Q4.
    #[arg(long)]
    period: String,
    /// The person submitting, named on the audit trail (default: the login name).
    #[arg(long)]
    person: Option<String>,
    /// Print {"batch_id": ...}.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    let info = BatchInfo {
        office: args.office,
        program: args.program,
        period: args.period,
        submitted_by: Some(super::shared::actor(args.person.clone())),
    };
    let id = submit::submit_file(settings, &pool, &args.file, &info).await?;
    submit::publish_now(settings, &pool).await;
    if args.json {
        println!("{}", serde_json::json!({ "batch_id": id }));
    } else {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}
