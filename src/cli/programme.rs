//! `salur programme add | list`: the programmes batches are submitted for, and the amounts each
//! pays one recipient.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::domain::rupiah;
use salur::ops::programme;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Approval {
    /// A checker approves each payment list before money moves.
    Required,
    /// Verified records go to transfer without an approval.
    None,
}

#[derive(Subcommand)]
pub enum Command {
    /// Register a programme: `salur programme add BPNT --name "Program Sembako" --amounts
    /// 200000,600000`. A batch for a programme not registered is refused; a record whose amount
    /// is not one of the programme's is blocked AMOUNT_NOT_ALLOWED.
    Add {
        /// The code batches carry, e.g. BPNT or PKH.
        code: String,
        #[arg(long)]
        name: String,
        /// The amounts the programme pays one recipient, comma-separated (e.g. 200000,600000).
        #[arg(long)]
        amounts: String,
        /// Whether a checker must approve each payment list.
        #[arg(long, value_enum, default_value = "required")]
        approval: Approval,
        #[arg(long)]
        json: bool,
    },
    /// The programmes, their amounts and whether they need approval.
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
            amounts,
            approval,
            json,
        } => {
            let p = programme::add(
                &pool,
                &code,
                &name,
                &amounts,
                approval == Approval::Required,
            )
            .await?;
            if json {
                shared::print_json(&p)?;
            } else {
                println!(
                    "programme {} added: pays {} per recipient; approval {}",
                    p.code,
                    amounts_of(&p.amounts),
                    if p.approval_required {
                        "required"
                    } else {
                        "none"
                    }
                );
            }
        }
        Command::List { json } => {
            let list = programme::list(&pool).await?;
            if json {
                shared::print_json(&list)?;
            } else {
                println!("{:<16} {:<9} {:<32} name", "code", "approval", "amounts");
                for p in &list {
                    println!(
                        "{:<16} {:<9} {:<32} {}",
                        p.code,
                        if p.approval_required {
                            "required"
                        } else {
                            "none"
                        },
                        amounts_of(&p.amounts),
                        p.name
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn amounts_of(amounts: &[rust_decimal::Decimal]) -> String {
    amounts
        .iter()
        .map(|a| rupiah(*a))
        .collect::<Vec<_>>()
        .join(", ")
}
