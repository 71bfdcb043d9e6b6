//! `salur topology [--delete]`: declare the namespace's exchanges, queues and bindings, or tear
//! them down with the namespace's bank users.

use salur::broker::{self, Broker};
use salur::config::Settings;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Delete the namespace's queues and exchanges instead (their messages are lost): for
    /// tearing down a test or staging namespace (SALUR_NAMESPACE).
    #[arg(long)]
    delete: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let b = Broker::connect(settings).await?;
    if args.delete {
        let namespace = settings.namespace_to_tear_down()?;
        broker::topology::delete(&b).await?;
        let users = salur::bank::users::remove_namespace_users(settings)
            .await
            .unwrap_or_else(|e| {
                eprintln!("warning: the namespace's bank users were not deleted: {e:#}");
                0
            });
        println!("topology of namespace {namespace} deleted ({users} bank users)");
    } else {
        broker::topology::declare(&b).await?;
        println!("topology declared");
    }
    b.close().await;
    Ok(ExitCode::SUCCESS)
}
