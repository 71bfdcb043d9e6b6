//! What the parked queues (`salur.blocked`, `salur.dead`) hold, next to what the database says
//! is parked (`salur dlq list`; the HTTP API could show the same).
//!
//! `salur.dead` is read message by message ([`census`]): the parked messages of records that
//! are dead, those of records that have since left `dead` (a late bank answer paid one; an
//! operator replayed or discarded one), and messages that are no record's (unreadable, or bank
//! answers refused as untrusted). Counting by depth alone took the second kind for the third.

use crate::broker::{Broker, names};
use crate::config::Settings;
use crate::messages::ParkedRecord;
use crate::store::State;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::fmt;

/// The parked queues as the broker sees them, best effort: a queue the broker did not answer
/// for is left out, and `dead_queue` is `None` when `salur.dead` could not be read.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedQueues {
    /// Messages ready per parked queue (base names: `salur.blocked`, `salur.dead`).
    pub queue_messages: BTreeMap<&'static str, u32>,
    /// What the messages on `salur.dead` are.
    pub dead_queue: Option<DeadQueue>,
}

/// Reads the depth of both parked queues and takes the [`census`] of `salur.dead`. Never fails:
/// without a broker the answer is empty (the database still says what is parked).
pub async fn read(settings: &Settings, pool: &PgPool) -> ParkedQueues {
    let mut out = ParkedQueues::default();
    if let Ok(b) = Broker::connect(settings).await {
        for q in [names::BLOCKED_QUEUE, names::DEAD_QUEUE] {
            if let Ok(n) = b.queue_depth(q).await {
                out.queue_messages.insert(q, n);
            }
        }
        out.dead_queue = census(&b, pool).await.ok();
        b.close().await;
    }
    out
}

/// One line per queue, then what `salur.dead` holds.
impl fmt::Display for ParkedQueues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (q, n) in &self.queue_messages {
            writeln!(f, "queue {q}: {n} messages ready")?;
        }
        if let Some(d) = &self.dead_queue {
            writeln!(
                f,
                "  salur.dead: {} of dead records, {} of records no longer dead \
                 (stale: `salur dlq reconcile` removes them), {} no record's \
                 (unreadable or refused bank answers, kept with their reason: \
                 read them in the RabbitMQ management UI or with a consumer)",
                d.dead_records, d.settled_records, d.other
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadQueue {
    /// Messages of records that are dead.
    pub dead_records: u32,
    /// Messages of records no longer dead: stale, removed by `salur dlq reconcile`.
    pub settled_records: u32,
    /// Messages that are no record's: unreadable messages and refused bank answers, kept with
    /// their reason for an operator (`salur dlq reconcile` keeps them).
    pub other: u32,
}

/// Reads every message on `salur.dead` and puts it back (best effort: the queue's order may
/// change).
pub async fn census(broker: &Broker, pool: &PgPool) -> anyhow::Result<DeadQueue> {
    let (channel, taken) = broker.take_all(names::DEAD_QUEUE).await?;
    let mut census = DeadQueue::default();
    let mut records = Vec::new();
    for d in &taken {
        match serde_json::from_slice::<ParkedRecord>(&d.data) {
            Ok(p) => records.push(p.record_id),
            Err(_) => census.other += 1,
        }
    }
    let dead =
        crate::store::records::ids_in_state(&mut *pool.acquire().await?, &records, State::Dead)
            .await?;
    for id in records {
        if dead.contains(&id) {
            census.dead_records += 1;
        } else {
            census.settled_records += 1;
        }
    }
    // Unacknowledged, they go back to the queue.
    let _ = channel.close(200, "census".into()).await;
    Ok(census)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_census_only_the_depths_are_shown() {
        let mut q = ParkedQueues::default();
        assert_eq!(q.to_string(), "");
        q.queue_messages.insert(names::BLOCKED_QUEUE, 3);
        q.queue_messages.insert(names::DEAD_QUEUE, 1);
        assert_eq!(
            q.to_string(),
            "queue salur.blocked: 3 messages ready\nqueue salur.dead: 1 messages ready\n"
        );
        q.dead_queue = Some(DeadQueue {
            dead_records: 1,
            settled_records: 0,
            other: 0,
        });
        assert!(
            q.to_string()
                .ends_with("  salur.dead: 1 of dead records, 0 of records no longer dead (stale: `salur dlq reconcile` removes them), 0 no record's (unreadable or refused bank answers, kept with their reason: read them in the RabbitMQ management UI or with a consumer)\n")
        );
    }
}
