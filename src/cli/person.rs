//! `salur person add`: a person who signs in to the web console, with a one-time password.

use clap::Subcommand;
use salur::config::Settings;
use salur::ops::office::Role;
use salur::web::people;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Add a person to an office (or an auditor) and print their one-time password (shown
    /// once; only its argon2id hash is kept). They change it at their first sign-in.
    Add {
        /// The office's code, e.g. DINSOS-5371 (an auditor's code for an auditor).
        #[arg(long)]
        office: String,
        /// What they sign in with: lower-case letters, digits, '.', '_' or '-'.
        #[arg(long)]
        login: String,
        /// Their full name, as approvals and audit rows name them.
        #[arg(long)]
        name: String,
        /// maker (uploads, fixes, replays), checker (approves payment lists) or auditor
        /// (reads every office's batches).
        #[arg(long)]
        role: Role,
        /// Print {"login": ..., "office": ..., "role": ..., "password": ...}.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Add {
            office,
            login,
            name,
            role,
            json,
        } => {
            let password = people::add(&pool, &office, &login, &name, role).await?;
            if json {
                super::shared::print_json(&serde_json::json!({
                    "login": login,
                    "office": office,
                    "role": role.as_str(),
                    "password": password,
                }))?;
            } else {
                println!(
                    "{login} ({role}, {office}) may sign in to the console with the one-time password:"
                );
                println!("{password}");
                println!("(shown once; they choose their own password at the first sign-in)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
