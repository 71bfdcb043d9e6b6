//! `salur records show | fix`: look at one record (personal data masked), or correct blocked
//! records, one by `--set` or a batch's from a corrections file.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::display::Corrections;
use salur::ops::remediate::{self, Scope};
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum Command {
    /// A record (personal data masked): state, reasons, attempts and audit history.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Correct a blocked record (`salur records fix ID --set mother_name="Siti Aminah"`), or a
    /// batch's blocked records from a file (`--batch ID --file FIXES.csv`, keyed by a `row` or
    /// `nik` column, one column per field). Corrections are validated at once; the answer lists
    /// the reasons that remain. Replay with `salur dlq replay`.
    Fix {
        /// The record to correct.
        #[arg(required_unless_present = "file", conflicts_with_all = ["file", "batch"])]
        id: Option<i64>,
        /// A correction, `field=value` (names as in the batch file); repeat for several.
        #[arg(long = "set", value_name = "FIELD=VALUE", requires = "id")]
        sets: Vec<String>,
        /// The batch the corrections file is for.
        #[arg(long, requires = "file")]
        batch: Option<Uuid>,
        /// A CSV of corrections.
        #[arg(long, requires = "batch")]
        file: Option<PathBuf>,
        /// The person correcting, named on the audit rows (default: the login name).
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::Show { id, json } => {
            let view = remediate::show(&pool, &Scope::All, id).await?;
            if json {
                shared::print_json(&view)?;
            } else {
                print!("{view}");
            }
        }
        Command::Fix {
            id,
            sets,
            batch,
            file,
            person,
            json,
        } => {
            let amounts = &settings.amount_range;
            let actor = shared::actor(person);
            let outcomes = match (id, batch, file) {
                (Some(id), _, _) => {
                    anyhow::ensure!(
                        !sets.is_empty(),
                        "say what to correct: --set field=value (e.g. --set mother_name=\"Siti Aminah\")"
                    );
                    let sets = remediate::parse_assignments(&sets)?;
                    vec![remediate::fix(settings, &pool, &Scope::All, &actor, id, &sets).await?]
                }
                (None, Some(batch), Some(file)) => {
                    let reader = std::fs::File::open(&file)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                    let name = file.display().to_string();
                    remediate::fix_file(amounts, &pool, &Scope::All, &actor, batch, &name, reader)
                        .await?
                }
                _ => anyhow::bail!("give a record id with --set, or --batch and --file"),
            };
            if json {
                shared::print_json(&outcomes)?;
            } else {
                print!("{}", Corrections(&outcomes));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
