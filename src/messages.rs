//! What salur puts on its own queues: stage work and parked (dead-lettered) records.
//! The bank contract lives in [`crate::bank::contract`].

use crate::domain::Reason;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Schema version of every message salur writes. A consumer parks a message with another
/// version in `salur.dead` instead of guessing.
pub const VERSION: u32 = 1;

/// The three stages a record goes through: owned, with the states, by
/// [`crate::domain::lifecycle`].
pub use crate::domain::lifecycle::Stage;

/// A chunk of records for one stage. Published to `salur.work` with the stage name as routing
/// key (or through a retry tier, `<tier>.<stage>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageMessage {
    pub v: u32,
    pub stage: Stage,
    pub batch_id: Uuid,
    pub record_ids: Vec<i64>,
    /// On a retry through a delay tier: the attempt of the records' stage this is (1-based);
    /// absent on first delivery. Each record's own count is kept in the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// A record parked on `salur.blocked` (fixable: incomplete administrative data) or `salur.dead`
/// (an operator decides). Carries the record id and reasons, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedRecord {
    pub v: u32,
    pub record_id: i64,
    pub batch_id: Uuid,
    pub row: i32,
    pub stage: Stage,
    pub state: String,
    pub reasons: Vec<Reason>,
}

/// A message no consumer could process (not JSON, unknown version, …), parked on `salur.dead`
/// with its body kept for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonMessage {
    pub v: u32,
    pub queue: String,
    pub reason: String,
    /// The body as kept: a stage message's original body (lossily decoded as UTF-8); a bank
    /// answer re-serialised with personal data masked (only its refused items, when it was
    /// refused item by item).
    pub raw: String,
}
