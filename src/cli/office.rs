//! `salur office add | token | revoke | list`: the offices (and auditors) that may use the HTTP
//! API, and their tokens.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::display::OfficeTable;
use salur::ops::office::{self, Role};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Register an office and print its first API token (shown once; only its hash is kept).
    Add {
        /// The office's code, as batches carry it, e.g. DINSOS-5371.
        code: String,
        /// The office's name, e.g. "Dinas Sosial Kota Kupang".
        #[arg(long)]
        name: String,
        /// An auditor: reads every office's batches and records, changes nothing.
        #[arg(long)]
        auditor: bool,
        /// Print {"office": ..., "token": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Print a new token for an existing office (to rotate: make one, then revoke the old).
    Token { code: String },
    /// Revoke an office's tokens: all of them, or the one starting with --token.
    Revoke {
        code: String,
        /// The beginning of the token to revoke (as `salur office list` shows it).
        #[arg(long)]
        token: Option<String>,
    },
    /// The offices, their roles and how many tokens each has.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Add {
            code,
            name,
            auditor,
            json,
        } => {
            let role = if auditor { Role::Auditor } else { Role::Office };
            let token = office::add(&pool, &code, &name, role).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "office": code, "role": role, "token": token })
                );
            } else {
                println!("{token}");
                eprintln!(
                    "{} {code} added; keep this token: it is not shown again (only its hash is stored)",
                    role.as_str()
                );
            }
        }
        Command::Token { code } => {
            println!("{}", office::issue_token(&pool, &code).await?);
            eprintln!("keep this token: it is not shown again");
        }
        Command::Revoke { code, token } => {
            let n = office::revoke(&pool, &code, token.as_deref()).await?;
            if n == 0 {
                eprintln!("error: no active token of {code} matched: see `salur office list`");
                return Ok(ExitCode::FAILURE);
            }
            println!("{n} token(s) of {code} revoked");
        }
        Command::List { json } => {
            let offices = office::list(&pool).await?;
            if json {
                shared::print_json(&offices)?;
            } else {
                print!("{}", OfficeTable(&offices));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
