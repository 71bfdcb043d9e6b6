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

use crate::broker::Outgoing;
use crate::config::Settings;
use crate::domain::validate;
use crate::stages::{Tally, account_opening, retry_or_dead, stage_message, transfer};
use crate::store::{Attempt, Change, RecordRow, State, records};
use sqlx::{PgConnection, PgPool};
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
        crate::worker::record(&metrics, &s.tally);
    }
}

/// One pass over every waiting state, each in its own transaction. A state whose transaction
/// fails (the database went away) is noted in `failures`; what the others did still counts.
pub async fn sweep_once(settings: &Settings, pool: &PgPool) -> Sweep {
    let mut sweep = Sweep::default();
    for (state, older_than) in [
        (State::AccountRequested, settings.bank_timeout),
        (State::TransferRequested, settings.bank_timeout),
        (State::Received, settings.stale_after),
        (State::AccountOpened, settings.stale_after),
        (State::Verified, settings.stale_after),
    ] {
        let mut tally = Tally::default();
        match sweep_state(settings, pool, state, older_than, &mut tally).await {
            Ok(resent) => {
                match state {
                    State::AccountRequested | State::TransferRequested => {
                        sweep.resent_requests += resent
                    }
                    _ => sweep.resent_stage += resent,
                }
                merge(&mut sweep.tally, tally);
            }
            Err(e) => sweep.failures.push(format!("{state}: {e}")),
        }
    }
    sweep
}

async fn sweep_state(
    settings: &Settings,
    pool: &PgPool,
    state: State,
    older_than: Duration,
    tally: &mut Tally,
) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let rows = waiting(&mut tx, state, older_than).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (changes, out, resent) = resend(settings, state, older_than, &rows, tally);
    crate::stages::write(&mut tx, state, &changes, &out).await?;
    tx.commit().await?;
    Ok(resent)
}

/// Adds `more` to `into` (committed work only).
fn merge(into: &mut Tally, more: Tally) {
    for (k, n) in more.outcomes {
        *into.outcomes.entry(k).or_default() += n;
    }
    for (k, n) in more.reasons {
        *into.reasons.entry(k).or_default() += n;
    }
    for (k, n) in more.retries {
        *into.retries.entry(k).or_default() += n;
    }
}

/// Records in `state` unchanged for longer than `older_than`, doubled for each attempt the
/// record already had in its stage (a bank whose queue is backed up is not flooded with
/// re-sends), locked, skipping those another transaction holds.
async fn waiting(
    conn: &mut PgConnection,
    state: State,
    older_than: Duration,
) -> sqlx::Result<Vec<RecordRow>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM records
         WHERE state = $1 AND updated_at < now() - make_interval(secs => $2 * power(2, least(attempts, 6)))
         ORDER BY updated_at LIMIT $3
         FOR UPDATE SKIP LOCKED",
    )
    .bind(state.as_str())
    .bind(older_than.as_secs_f64())
    .bind(LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    records::lock_in_state_for(conn, &ids, state, records::Needs::to_resend(state)).await
}

/// Changes (same state, one more attempt, or `dead`) and the messages to send again.
fn resend(
    settings: &Settings,
    state: State,
    older_than: Duration,
    rows: &[RecordRow],
    tally: &mut Tally,
) -> (Vec<Change>, Vec<Outgoing>, u64) {
    let stage = state.stage().expect("the sweeper sweeps in-flight states");
    let bank = matches!(state, State::AccountRequested | State::TransferRequested);
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
    let mut changes = Vec::new();
    let mut out = Vec::new();
    let mut again: Vec<&RecordRow> = Vec::new();
    for row in rows {
        let attempt = row.attempts + 1;
        if attempt >= settings.max_attempts(stage) {
            // retry_or_dead declares it dead with its history; it never retries here.
            let (c, o) = retry_or_dead(settings, stage, &[row], state, &what, tally);
            changes.extend(c);
            out.extend(o);
        } else {
            changes.push(
                Change::to(row.id, state)
                    .with_detail(serde_json::json!({"attempt": attempt, "error": why}))
                    .with_attempt(Attempt::Count),
            );
            again.push(row);
        }
    }
    let resent = again.len() as u64;
    if resent > 0 {
        tally.count(stage, "resent", resent);
        // In the retries metric under a tier of its own: what was re-sent, and why.
        let tier = if bank { "bank_timeout" } else { "stale" };
        *tally.retries.entry((stage, tier.to_owned())).or_default() += resent;
    }
    match state {
        State::AccountRequested => {
            let mut complete = Vec::new();
            for row in &again {
                // Stored data only changes while a record is blocked, so it validates as it did.
                if let Ok(recipient) = validate(&row.raw(), &settings.amount_range) {
                    complete.push((*row, recipient));
                }
            }
            out.extend(account_opening::requests(settings, &complete));
        }
        State::TransferRequested => {
            let rows: Vec<RecordRow> = again.iter().map(|r| (*r).clone()).collect();
            out.extend(transfer::requests(settings, &rows));
        }
        _ => {
            let mut by_batch: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
            for row in &again {
                by_batch.entry(row.batch_id).or_default().push(row.id);
            }
            for (batch_id, ids) in by_batch {
                for chunk in ids.chunks(settings.chunk_size) {
                    out.push(stage_message(settings, stage, batch_id, chunk.to_vec()));
                }
            }
        }
    }
    (changes, out, resent)
}
