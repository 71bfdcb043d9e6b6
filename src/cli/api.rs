//! `salur api`: the offices' HTTP API until SIGINT/SIGTERM.

use super::shared;
use salur::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Listen here instead of API_ADDR.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(&settings).await?;
    let addr = args.addr.unwrap_or(settings.api_addr);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} ({e}): set API_ADDR (or --addr) to a free port")
    })?;
    let state = salur::api::AppState::new(settings, pool);
    salur::api::serve(state, listener, shared::shutdown_token()).await?;
    Ok(ExitCode::SUCCESS)
}
