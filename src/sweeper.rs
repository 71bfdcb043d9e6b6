//! The sweeper: finds records that wait for something that is not coming, and sends it again.
//!
//! - A bank request with no answer after `SALUR_BANK_TIMEOUT` (`account_requested`,
//!   `transfer_requested`) is sent again with the same item ids and, for a transfer, the same
//!   idempotency key: the bank pays once per key, so a request that was paid but whose answer was
//!   lost is answered with the first result. Each re-send counts as an attempt.
//! - A record waiting for a stage (`received`, `account_opened`, `verified`) with no change for
//!   `SALUR_STALE_AFTER` (longer than the longest retry tier) has lost its message: a purged
//!   queue, or a handler that gave up while the database was down. Its stage message is sent
//!   again, counted as an attempt.
//!
//! The wait doubles with each attempt a record already had in its stage (60 s, 120 s, 240 s, …
//! for a 60 s timeout): a bank that is only slow, its queue backed up, is not flooded with
//! re-sends of requests it has not yet read.
//!
//! Once a record's attempts in its stage are spent it is `dead` (RETRIES_EXHAUSTED) and parked
//! on `salur.dead`. Any number of workers may sweep at once: rows are taken with `SKIP LOCKED`
//! and every change is guarded by the state it was read in.

use crate::config::Settings;
use crate::domain::lifecycle::{Outcome, Stage, Waits};
use crate::domain::validate;
use crate::stages::{Step, Tally, account_opening, stage_message, transfer};
use crate::store::{Attempt, RecordRow, State, pipeline, records};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Records handled per sweep transaction.
const LIMIT: i64 = 1000;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sweep {
    /// Bank requests sent again after the timeout.
    pub resent_requests: u64,
    /// Stage messages sent again for records that had lost theirs.
    pub resent_stage: u64,
    pub tally: Tally,
    /// Rows of office data removed because their intake never stored its batch (a process
    /// that died between the two commits of intake, see `store::records::remove_abandoned_intake`).
    pub abandoned_intake: u64,
    /// States whose sweep failed, with the error.
    pub failures: Vec<String>,
}

/// How often a worker sweeps: a quarter of the shorter wait, between 1 s and 30 s.
pub fn interval(settings: &Settings) -> Duration {
    (settings.bank_timeout.min(settings.stale_after) / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Sweeps until `cancel`, logging failures (a database outage) and carrying on.
pub async fn run(
    settings: Settings,
    pool: PgPool,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    let every = interval(&settings);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = sweep_once(&settings, &pool).await;
        for f in &s.failures {
            tracing::warn!(error = %f, "sweep failed; trying again later");
        }
        if s.resent_requests + s.resent_stage > 0 {
            tracing::info!(
                resent_requests = s.resent_requests,
                resent_stage = s.resent_stage,
                "sent again what was not answered in time"
            );
            wake.notify_one();
        }
        s.tally.record(&metrics);
    }
}

/// One pass over every in-flight state (those waiting for a bank first), each in its own
/// transaction, then the batches' counters folded ([`crate::store::counts::compact`]) and the
/// office data of intakes that never stored their batch removed. A state
/// whose transaction fails (the database went away) is noted in `failures`; what the others
/// did still counts.
pub async fn sweep_once(settings: &Settings, pool: &PgPool) -> Sweep {
    let mut sweep = Sweep::default();
    let swept = [Waits::ForBank, Waits::ForStage]
        .into_iter()
        .flat_map(|waits| State::ALL.into_iter().filter(move |s| s.waits() == waits));
    for state in swept {
        let older_than = match state.waits() {
            Waits::ForBank => settings.bank_timeout,
            _ => settings.stale_after,
        };
        match sweep_state(settings, pool, state, older_than).await {
            Ok((resent, tally)) => {
                if state.awaits_bank() {
                    sweep.resent_requests += resent
                } else {
                    sweep.resent_stage += resent
                }
                sweep.tally.merge(tally);
            }
            Err(e) => sweep.failures.push(format!("{state}: {e}")),
        }
    }
    if let Err(e) = crate::store::counts::compact(pool).await {
        sweep.failures.push(format!("folding batch counters: {e}"));
    }
    match crate::store::records::remove_abandoned_intake(pool).await {
        Ok(n) => sweep.abandoned_intake = n,
        Err(e) => sweep.failures.push(format!(
            "removing the data of intakes that did not complete: {e}"
        )),
    }
    sweep
}

/// Sweeps one state: re-sends what waited in it too long, or gives up on it. Returns how many
/// records were sent again, and the tally (committed work only).
async fn sweep_state(
    settings: &Settings,
    pool: &PgPool,
    state: State,
    older_than: Duration,
) -> sqlx::Result<(u64, Tally)> {
    let mut tx = pool.begin().await?;
    let ids = pipeline::stale(&mut tx, state, older_than, LIMIT).await?;
    if ids.is_empty() {
        return Ok((0, Tally::default()));
    }
    let rows =
        records::read_in_state_for(&mut tx, &ids, state, records::Needs::to_resend(state)).await?;
    let stage = state.stage().expect("the sweeper sweeps in-flight states");
    let mut step = Step::new(settings, stage, state);
    let resent = resend(settings, &mut step, older_than, &rows);
    let tally = step.write(&mut tx).await?;
    tx.commit().await?;
    Ok((resent, tally))
}

/// Decides, for each record of `rows` (all in `step.from`), to send its message or request
/// again (same state, one more attempt) or to give up on it (`dead`); returns how many are
/// sent again.
fn resend(settings: &Settings, step: &mut Step, older_than: Duration, rows: &[RecordRow]) -> u64 {
    let (state, stage) = (step.from, step.stage);
    let bank = state.awaits_bank();
    // What happened; a record that goes on is told what is done about it, one that is given
    // up on (dead) is not told that it was sent again.
    let what = if bank {
        format!("no answer from the bank within {} s", older_than.as_secs())
    } else {
        format!(
            "no progress for {} s (its message was lost)",
            older_than.as_secs()
        )
    };
    let why = if bank {
        format!("{what}; the request was sent again")
    } else {
        format!("{what}; sent to {stage} again")
    };
    let mut again: Vec<&RecordRow> = Vec::new();
    for row in rows {
        let attempt = row.attempts + 1;
        if attempt >= settings.max_attempts(stage) {
            step.give_up(row, attempt, &what);
        } else {
            let c = step.decide(row, Outcome::Resent, Vec::new());
            c.detail = Some(serde_json::json!({"attempt": attempt, "error": why}));
            c.attempt = Attempt::Count;
            again.push(row);
        }
    }
    let resent = again.len() as u64;
    if resent > 0 {
        // In the retries metric under a tier of its own: what was re-sent, and why.
        let tier = if bank { "bank_timeout" } else { "stale" };
        *step
            .tally
            .retries
            .entry((stage, tier.to_owned()))
            .or_default() += resent;
    }
    if bank {
        let requests = match stage {
            Stage::AccountOpening => {
                let mut complete = Vec::new();
                for row in &again {
                    // Stored data only changes while a record is blocked, so it validates as
                    // it did.
                    if let Ok(recipient) = validate(&row.raw(), &settings.amount_range) {
                        complete.push((*row, recipient));
                    }
                }
                account_opening::requests(settings, &complete)
            }
            Stage::Transfer => {
                let rows: Vec<RecordRow> = again.iter().map(|r| (*r).clone()).collect();
                transfer::requests(settings, &rows)
            }
            Stage::Verification => unreachable!("verification asks no bank"),
        };
        for request in requests {
            step.send(request);
        }
    } else {
        let mut by_batch: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
        for row in &again {
            by_batch.entry(row.batch_id).or_default().push(row.id);
        }
        for (batch_id, ids) in by_batch {
            for chunk in ids.chunks(settings.chunk_size) {
                step.send(stage_message(settings, stage, batch_id, chunk.to_vec()));
            }
        }
    }
    resent
}
