//! `salur office add | token | revoke | list`: the offices (and auditors) that may use the HTTP
//! API, and their tokens.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::display::OfficeTable;
use salur::ops::office::{self, NewToken, Role};
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
        /// The person who holds the first token (named on the audit rows of what they do).
        #[arg(long)]
        person: Option<String>,
        /// Print {"office": ..., "role": ..., "token": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Print a new token of an existing office, for a person with a role: maker (submits,
    /// fixes, replays; the default), checker (approves payment lists), auditor (reads
    /// everything), admin (programmes, budgets, offices). To rotate: make one, then revoke
    /// the old.
    Token {
        code: String,
        /// maker, checker, auditor or admin (an auditor's tokens are auditor tokens).
        #[arg(long)]
        role: Option<Role>,
        /// The person who holds the token; required for checker and admin tokens.
        #[arg(long)]
        person: Option<String>,
        /// What audit rows name the token by (default: the token's beginning).
        #[arg(long)]
        label: Option<String>,
        /// Print {"office": ..., "role": ..., "person": ..., "token": ...}.
        #[arg(long)]
        json: bool,
    },
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
            person,
            json,
        } => {
            let role = if auditor { Role::Auditor } else { Role::Maker };
            let spec = NewToken {
                role,
                person,
                label: None,
            };
            let token = office::add_for(&pool, &code, &name, &spec).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "office": code, "role": role, "token": token })
                );
            } else {
                println!("{token}");
                let kind = if auditor { "auditor" } else { "office" };
                eprintln!(
                    "{kind} {code} added with a {role} token; keep it: it is not shown again (only its hash is stored)"
                );
            }
        }
        Command::Token {
            code,
            role,
            person,
            label,
            json,
        } => {
            let role = match role {
                Some(r) => r,
                None => office::default_role(&pool, &code).await?,
            };
            let spec = NewToken {
                role,
                person: person.clone(),
                label,
            };
            let token = office::issue(&pool, &code, &spec).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "office": code,
                        "role": role,
                        "person": person,
                        "token": token,
                    })
                );
            } else {
                println!("{token}");
                eprintln!("keep this token: it is not shown again");
            }
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
