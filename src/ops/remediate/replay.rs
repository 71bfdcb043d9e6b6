//! `salur dlq replay`: send parked records back. A blocked record whose data is now complete
//! restarts at account opening (corrected data must be checked by the bank again); one that
//! was verified before (its payment list rejected, its payee's name changed) and lacks only the
//! mother's maiden name erased then restarts at verification, against the account the bank
//! confirmed; a dead
//! record resumes at the stage where its retries ran out (a transfer keeps its idempotency key,
//! so the bank still pays once). A blocked record that is still incomplete stays parked.

use super::reconcile::{Reconciled, reconcile_quietly};
use super::{FixOutcome, RemediateError, Scope, stopped_at};
use crate::config::Settings;
use crate::domain::{Actor, ReasonCode, validate_for};
use crate::messages::Stage;
use crate::stages::stage_message;
use crate::store::parked::{self, Filter};
use crate::store::{Attempt, Change, RecordRow, State, outbox, programmes, records};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayOutcome {
    /// Records sent back, per stage they restart at.
    pub replayed: BTreeMap<String, u64>,
    pub replayed_ids: Vec<i64>,
    /// Blocked records still incomplete: they stay parked, with these reasons.
    pub still_blocked: Vec<FixOutcome>,
    /// Ids asked for by `--id` that were not replayed, with why (their state, or `not found`).
    pub not_parked: Vec<(i64, String)>,
    /// Messages removed from / put back on the parked queues afterwards.
    pub queues: Option<Reconciled>,
}

/// Sends parked records back to the pipeline (see the module documentation), then brings the
/// parked queues in line with the database.
pub async fn replay(
    settings: &Settings,
    pool: &PgPool,
    scope: &Scope,
    actor: &Actor,
    filter: &Filter,
) -> Result<ReplayOutcome, RemediateError> {
    let mut tx = pool.begin().await?;
    let found = parked::find(&mut tx, scope.office(), filter, None).await?;
    let ids: Vec<i64> = found.iter().map(|p| p.id).collect();
    let rows: HashMap<i64, RecordRow> = records::lock_scoped(&mut tx, &ids, scope.office())
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let programs: std::collections::BTreeSet<&str> =
        rows.values().map(|r| r.program.as_str()).collect();
    let amounts =
        programmes::allowed_amounts(&mut tx, &programs.into_iter().collect::<Vec<_>>()).await?;
    let mut outcome = ReplayOutcome::default();
    let mut changes: BTreeMap<State, Vec<Change>> = BTreeMap::new();
    let mut work: BTreeMap<(Stage, Uuid), Vec<i64>> = BTreeMap::new();
    for p in &found {
        // Re-read under the lock: another replay may have moved it meanwhile.
        let Some(row) = rows.get(&p.id).filter(|r| r.state == p.state) else {
            continue;
        };
        let from = State::parse(&row.state).expect("parked state");
        let stage = if from == State::Blocked {
            let programme = amounts.get(&row.program).map(|a| (row.program.as_str(), a));
            match validate_for(&row.raw, &settings.amount_range, programme) {
                Ok(_) => Stage::AccountOpening,
                // Past verification once (its list rejected, its name changed): the mother's
                // maiden name was erased, and the account the bank confirmed still stands, so
                // verification checks the name against it again.
                Err(reasons)
                    if row.bank_account.is_some()
                        && reasons
                            .iter()
                            .all(|r| r.code == ReasonCode::MotherNameMissing) =>
                {
                    Stage::Verification
                }
                Err(reasons) => {
                    outcome.still_blocked.push(FixOutcome {
                        id: row.id,
                        row: row.row_number,
                        changed: Vec::new(),
                        ready: false,
                        reasons,
                    });
                    continue;
                }
            }
        } else {
            stopped_at(p.parked_from.as_deref())
        };
        changes.entry(from).or_default().push(
            Change::to(row.id, State::waiting_for(stage))
                .with_attempt(Attempt::Reset)
                .with_detail(serde_json::json!({"action": "replay", "stage": stage})),
        );
        work.entry((stage, row.batch_id)).or_default().push(row.id);
        *outcome
            .replayed
            .entry(stage.as_str().to_owned())
            .or_default() += 1;
        outcome.replayed_ids.push(row.id);
    }
    if !filter.ids.is_empty() {
        let states: HashMap<i64, String> =
            records::states_scoped(&mut tx, &filter.ids, scope.office())
                .await?
                .into_iter()
                .collect();
        for id in &filter.ids {
            if !outcome.replayed_ids.contains(id)
                && !outcome.still_blocked.iter().any(|o| o.id == *id)
            {
                let why = states
                    .get(id)
                    .map_or_else(|| "not found".to_owned(), |s| format!("is {s}, not parked"));
                outcome.not_parked.push((*id, why));
            }
        }
    }
    let mut out = Vec::new();
    for ((stage, batch_id), ids) in work {
        for chunk in ids.chunks(settings.chunk_size) {
            out.push(stage_message(settings, stage, batch_id, chunk.to_vec()));
        }
    }
    for (from, changes) in &changes {
        records::apply_as(&mut tx, *from, changes, Some(actor)).await?;
    }
    outbox::insert(&mut tx, &out).await?;
    tx.commit().await?;
    if !outcome.replayed_ids.is_empty() {
        crate::ops::submit::publish_now(settings, pool).await;
        outcome.queues = reconcile_quietly(settings, pool).await;
    }
    Ok(outcome)
}
