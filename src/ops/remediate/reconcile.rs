//! `salur dlq reconcile`: the database decides, the queues follow. Removes from
//! `salur.blocked` and `salur.dead` every message whose record is no longer parked (and
//! duplicates), and puts back a message for a parked record that has none.

use super::{reasons_of, stopped_at};
use crate::broker::{Broker, Outgoing, names};
use crate::config::Settings;
use crate::messages::{self, ParkedRecord};
use crate::stages::parked_record;
use crate::store::parked::{self, Filter, ParkedRow};
use crate::store::{State, locks};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{BTreeSet, HashSet};

/// What reconciling the parked queues with the database did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Reconciled {
    /// Messages kept (their record is still parked, or the message is not a record's).
    pub kept: u64,
    /// Messages removed: their record is no longer parked, or it had another message.
    pub removed: u64,
    /// Messages put back for parked records that had none (a purged queue).
    pub restored: u64,
}

pub(super) async fn reconcile_quietly(settings: &Settings, pool: &PgPool) -> Option<Reconciled> {
    use backon::{ExponentialBuilder, Retryable as _};
    let tried = (|| reconcile(settings, pool))
        .retry(
            ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(std::time::Duration::from_millis(500))
                .with_max_times(4),
        )
        .await;
    match tried {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "the parked queues could not be brought in line with the database now; run `salur dlq reconcile` later"
            );
            None
        }
    }
}

/// Brings `salur.blocked` and `salur.dead` in line with the database: one message per parked
/// record, none for a record that is no longer parked. Messages that are not a record's (an
/// unreadable message parked on `salur.dead`) are kept as they are.
pub async fn reconcile(settings: &Settings, pool: &PgPool) -> anyhow::Result<Reconciled> {
    // One reconcile at a time, across processes: a second one would find the queues emptied
    // by the first (its messages held unacked) and put back duplicates.
    let mut lock = pool.acquire().await?;
    locks::lock(&mut lock, RECONCILE_LOCK).await?;
    let result = async {
        let broker = Broker::connect(settings).await?;
        let result = reconcile_with(&broker, pool).await;
        broker.close().await;
        result
    }
    .await;
    let _ = locks::unlock(&mut lock, RECONCILE_LOCK).await;
    result
}

/// Whether parked messages wait in the outbox.
async fn parked_on_the_way(settings: &Settings, pool: &PgPool) -> sqlx::Result<bool> {
    parked::any_on_the_way(pool, &settings.name(names::PARKED)).await
}

/// The parked records in `state`, and of those the ones whose message has certainly been
/// published: their outbox row is gone. The records are read before the outbox, so a record
/// parked in between counts as on its way.
async fn parked_and_published(
    settings: &Settings,
    pool: &PgPool,
    state: State,
) -> anyhow::Result<(Vec<ParkedRow>, HashSet<i64>)> {
    let mut conn = pool.acquire().await?;
    let all = parked::find(
        &mut conn,
        None,
        &Filter {
            state: Some(state),
            ..Default::default()
        },
        None,
    )
    .await?;
    let on_the_way = parked::on_the_way(&mut conn, &settings.name(names::PARKED)).await?;
    let on_the_way: HashSet<i64> = on_the_way.into_iter().collect();
    let published = all
        .iter()
        .map(|p| p.id)
        .filter(|id| !on_the_way.contains(id))
        .collect();
    Ok((all, published))
}

/// How the parked queues compare with the database.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueuesAgree {
    /// Records parked in the database (blocked and dead).
    pub parked: u64,
    /// Record messages on the parked queues.
    pub messages: u64,
    /// Parked records without a message.
    pub missing: u64,
    /// Messages beyond the first for a record.
    pub duplicates: u64,
    /// Messages of records that are not parked (or not in that state).
    pub strays: u64,
}

impl QueuesAgree {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.strays == 0
    }
}

impl std::fmt::Display for QueuesAgree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} parked, {} messages: {} missing, {} duplicates, {} strays",
            self.parked, self.messages, self.missing, self.duplicates, self.strays
        )
    }
}

/// Reads `salur.blocked` and `salur.dead` without changing them (the messages go back when the
/// channel closes) and compares them with the parked records.
pub async fn parked_queues_agree(
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<QueuesAgree> {
    let broker = Broker::connect(settings).await?;
    let mut out = QueuesAgree::default();
    for (queue, state) in [
        (names::BLOCKED_QUEUE, State::Blocked),
        (names::DEAD_QUEUE, State::Dead),
    ] {
        let (all, _) = parked_and_published(settings, pool, state).await?;
        let (channel, taken) = broker.take_all(queue).await?;
        let _ = channel.close(200, "read".into()).await;
        let parked: HashSet<i64> = all.iter().map(|p| p.id).collect();
        let mut seen = HashSet::new();
        for d in &taken {
            let Ok(p) = serde_json::from_slice::<ParkedRecord>(&d.data) else {
                continue;
            };
            out.messages += 1;
            if !parked.contains(&p.record_id) {
                out.strays += 1;
            } else if !seen.insert(p.record_id) {
                out.duplicates += 1;
            }
        }
        out.parked += parked.len() as u64;
        out.missing += parked.difference(&seen).count() as u64;
    }
    broker.close().await;
    Ok(out)
}

/// The advisory lock key that serialises [`reconcile`].
const RECONCILE_LOCK: i64 = 0x5a1_u64 as i64 * 1_000_003;

async fn reconcile_with(broker: &Broker, pool: &PgPool) -> anyhow::Result<Reconciled> {
    let settings = &broker.settings;
    let publisher = broker.publisher().await?;
    let mut done = Reconciled::default();
    // Parked messages still in the outbox (a relay publishing them right now) would reach the
    // queue after it was reconciled: let them arrive first, for up to 10 s.
    for _ in 0..100 {
        if !parked_on_the_way(settings, pool).await? {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (queue, state) in [
        (names::BLOCKED_QUEUE, State::Blocked),
        (names::DEAD_QUEUE, State::Dead),
    ] {
        // Parked before the queue is read, with the message published: if the queue does not
        // hold it, it was lost (a purge) and is put back. A record parked later may have its
        // message on the way; it is left alone this time rather than given two.
        let (_, published_before) = parked_and_published(settings, pool, state).await?;
        let taken = broker.remove_all(queue).await?;
        let (all_parked, _) = parked_and_published(settings, pool, state).await?;
        let still: HashSet<i64> = all_parked.iter().map(|p| p.id).collect();
        let mut keep = Vec::new();
        let mut seen = BTreeSet::new();
        let mut removed = 0;
        for d in taken {
            match serde_json::from_slice::<ParkedRecord>(&d.data) {
                Ok(p) if still.contains(&p.record_id) && seen.insert(p.record_id) => keep.push(d),
                Ok(_) => removed += 1,
                Err(_) => keep.push(d), // not a record's message: an operator's to read
            }
        }
        let restore: Vec<Outgoing> = all_parked
            .iter()
            .filter(|p| !seen.contains(&p.id) && published_before.contains(&p.id))
            .map(|p| {
                parked_record(
                    settings,
                    ParkedRecord {
                        v: messages::VERSION,
                        record_id: p.id,
                        batch_id: p.batch_id,
                        row: p.row_number,
                        stage: stopped_at(p.parked_from.as_deref()),
                        state: p.state.clone(),
                        reasons: reasons_of(p.reasons.clone()),
                    },
                )
            })
            .collect();
        // The kept messages go back as they were, then the missing ones. A crash before this
        // publish loses kept messages of records, which the next reconcile puts back from the
        // database (an unreadable message on salur.dead would be lost: it was logged when
        // parked).
        let copies: Vec<Outgoing> = keep
            .iter()
            .map(|d| Outgoing {
                exchange: settings.name(names::PARKED),
                routing_key: if state == State::Dead {
                    "dead"
                } else {
                    "blocked"
                }
                .into(),
                payload: d.data.clone(),
            })
            .collect();
        publisher.publish_all(&copies).await?;
        publisher.publish_all(&restore).await?;
        done.kept += keep.len() as u64;
        done.removed += removed;
        done.restored += restore.len() as u64;
    }
    Ok(done)
}
