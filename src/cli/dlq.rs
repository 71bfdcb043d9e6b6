//! `salur dlq list | replay | discard | reconcile`: work the parked records (`blocked`,
//! `dead`) and their queues.

use super::shared;
use clap::{Args, Subcommand};
use salur::config::Settings;
use salur::domain::ReasonCode;
use salur::ops::parked_queues::{self, ParkedQueues};
use salur::ops::remediate::{self, DlqList, Filter, Scope};
use salur::store::State;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Args)]
pub struct DlqFilter {
    /// Only this batch's records.
    #[arg(long)]
    batch: Option<Uuid>,
    /// Only records with this reason code (e.g. MOTHER_NAME_MISSING).
    #[arg(long, value_parser = parse_reason)]
    reason: Option<ReasonCode>,
    /// Only this record; repeat for several.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<i64>,
}

#[derive(Subcommand)]
pub enum Command {
    /// What is parked and why: counts by reason, the oldest first.
    List {
        /// `blocked` (fixable data) or `dead` (retries exhausted); both by default.
        #[arg(long, value_parser = parse_parked)]
        queue: Option<State>,
        #[command(flatten)]
        filter: DlqFilter,
        /// Records listed at most (the counts cover all).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send parked records back: corrected blocked records restart at account opening, dead
    /// records resume at the stage where they stopped. Still-incomplete records stay parked.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Only blocked or only dead records.
        #[arg(long, value_parser = parse_parked)]
        queue: Option<State>,
        /// Replay every parked record (when no other filter is given).
        #[arg(long)]
        all: bool,
        /// The person replaying, named on the audit rows (default: the login name).
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Close a parked record for good (state rejected, reason DISCARDED, the why audited).
    Discard {
        #[arg(long)]
        id: i64,
        /// Why, for the audit trail.
        #[arg(long)]
        why: String,
        /// The person discarding, named on the audit row (default: the login name).
        #[arg(long)]
        person: Option<String>,
    },
    /// Bring salur.blocked and salur.dead in line with the database (replay and discard do this
    /// themselves): drop messages of records no longer parked, put back missing ones.
    Reconcile,
}

fn parse_reason(s: &str) -> Result<ReasonCode, String> {
    ReasonCode::parse(&s.to_uppercase())
        .ok_or_else(|| format!("unknown reason code {s:?} (see the README's reason codes)"))
}

fn parse_parked(s: &str) -> Result<State, String> {
    match s {
        "blocked" => Ok(State::Blocked),
        "dead" => Ok(State::Dead),
        _ => Err(format!("{s:?}: use blocked or dead")),
    }
}

impl DlqFilter {
    fn with_state(self, state: Option<State>) -> Filter {
        Filter {
            batch_id: self.batch,
            reason: self.reason,
            ids: self.ids,
            state,
        }
    }
}

/// `dlq list --json`: the database's listing and, next to it, what the queues hold.
#[derive(serde::Serialize)]
struct Listing {
    #[serde(flatten)]
    parked: DlqList,
    #[serde(flatten)]
    queues: ParkedQueues,
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    match command {
        Command::List {
            queue,
            filter,
            limit,
            json,
        } => {
            let filter = filter.with_state(queue);
            let parked = remediate::dlq_list(&pool, &Scope::All, &filter, limit).await?;
            let queues = parked_queues::read(settings, &pool).await;
            if json {
                // Through a JSON value, whose keys are sorted, as before.
                shared::print_json(&serde_json::to_value(Listing { parked, queues })?)?;
            } else {
                print!("{parked}{queues}");
            }
        }
        Command::Replay {
            filter,
            queue,
            all,
            person,
            json,
        } => {
            let filter = filter.with_state(queue);
            anyhow::ensure!(
                all || filter.batch_id.is_some()
                    || filter.reason.is_some()
                    || !filter.ids.is_empty(),
                "say what to replay: --batch, --reason, --id, or --all"
            );
            let out = remediate::replay(
                settings,
                &pool,
                &Scope::All,
                &shared::actor(person),
                &filter,
            )
            .await?;
            if json {
                shared::print_json(&out)?;
            } else {
                print!("{out}");
                for (id, why) in &out.not_parked {
                    eprintln!("record {id} was not replayed: {why}");
                }
            }
            if !out.not_parked.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Discard { id, why, person } => {
            let actor = shared::actor(person);
            let discarded =
                remediate::discard(settings, &pool, &Scope::All, &actor, id, &why).await?;
            println!("{discarded}");
        }
        Command::Reconcile => {
            println!("{}", remediate::reconcile(settings, &pool).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
