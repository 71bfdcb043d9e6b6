//! What `salur.dead` holds, message by message: the parked messages of records that are dead,
//! those of records that have since left `dead` (a late bank answer paid one; an operator
//! replayed or discarded one), and messages that are no record's (unreadable, or bank answers
//! refused as untrusted). Counting by depth alone took the second kind for the third.

use crate::broker::{Broker, names};
use crate::messages::ParkedRecord;
use crate::store::State;
use sqlx::PgPool;

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
