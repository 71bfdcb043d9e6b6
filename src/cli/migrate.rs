//! `salur migrate`: create the database if it is missing and apply `migrations/`.

use salur::config::Settings;
use std::process::ExitCode;

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    salur::store::migrate(settings).await?;
    println!("database is up to date");
    Ok(ExitCode::SUCCESS)
}
