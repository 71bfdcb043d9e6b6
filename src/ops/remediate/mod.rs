//! Remediation: what an office does with its blocked records and an operator with dead ones.
//!
//! - [`show`]: a record with its personal data masked, its state, reasons and audit history.
//! - [`fix`] / [`fix_file`]: correct the office's values of blocked records; each is validated at
//!   once and the answer lists the reasons that remain.
//! - [`replay`]: send parked records back: a blocked record whose data is now complete restarts
//!   at account opening (corrected data must be checked by the bank again); a dead record
//!   resumes at the stage where its retries ran out (a transfer keeps its idempotency key, so
//!   the bank still pays once). A blocked record that is still incomplete stays parked.
//! - [`discard`]: close a parked record for good (`rejected`, DISCARDED, the why in the audit).
//! - [`dlq_list`]: what is parked, why, since when.
//!
//! The database decides; the queues follow: replay reads the records from PostgreSQL (a purged
//! queue loses nothing), and [`reconcile`] afterwards removes from `salur.blocked` and
//! `salur.dead` every message whose record is no longer parked (and duplicates), and puts back
//! a message for a parked record that has none.
//!
//! One file per operation: `show.rs`, `fix.rs` (with [`fix_file`]), `list.rs` ([`dlq_list`]),
//! `replay.rs`, `discard.rs`, `reconcile.rs`; their SQL lives in [`crate::store`] (`parked`,
//! `corrections`, `events`, `records`).
//!
//! Every operation takes a [`Scope`]: an office sees and changes only its own batches' records;
//! another office's record is [`RemediateError::NotFound`], exactly like a record that does not
//! exist.

mod discard;
mod fix;
mod list;
mod reconcile;
mod replay;
mod show;

pub use crate::store::parked::Filter;
pub use discard::{Discarded, discard};
pub use fix::{FixOutcome, fix, fix_file, parse_assignments};
pub use list::{DlqList, ParkedView, dlq_list};
pub use reconcile::{QueuesAgree, Reconciled, parked_queues_agree, reconcile};
pub use replay::{ReplayOutcome, replay};
pub use show::{EventView, RecordView, masked_fields, show};

use crate::domain::Reason;
use crate::messages::Stage;
use uuid::Uuid;

/// Whose records an operation may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every office's (the CLI on the server, an operator, an auditor reading).
    All,
    /// Only the records of batches this office submitted.
    Office(String),
}

impl Scope {
    fn office(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Office(o) => Some(o),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    #[error("no record {0}: check the id in `salur dlq list` or in the batch report")]
    NotFound(i64),
    #[error("no batch {0}: check the id printed by `salur submit`")]
    BatchNotFound(Uuid),
    #[error("record {id} is {state}: only blocked records can be corrected ({hint})")]
    NotFixable {
        id: i64,
        state: String,
        hint: &'static str,
    },
    #[error("record {id} is {state}: only blocked or dead records can be discarded")]
    NotParked { id: i64, state: String },
    /// A correction that intake would have refused, or that could never be paid: refused at
    /// the fix, so a fix never produces a record that fails later. The message never carries
    /// the value.
    #[error("the correction of {field} is refused: {field} {message}")]
    InvalidValue {
        field: &'static str,
        message: String,
    },
    #[error("unknown field {field:?}: use one of {}", crate::intake::file::field_keys().collect::<Vec<_>>().join(", "))]
    UnknownField { field: String },
    /// Carries only the argument's position: its text may be personal data.
    #[error(
        "--set argument {0} is not a correction: write field=value, e.g. mother_name=\"Siti Aminah\""
    )]
    BadAssignment(usize),
    #[error("{file} line {line}: {message}")]
    FixFile {
        file: String,
        line: u64,
        message: String,
    },
    #[error(
        "record {0} went dead waiting for its transfer: the bank may have paid it. Replay it \
         (`salur dlq replay --id {0}`): the bank answers for its idempotency key, paid or not, \
         and pays at most once"
    )]
    TransferMayBePaid(i64),
    #[error("say why the record is discarded (--why), for the audit trail")]
    NoReason,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn reasons_of(value: serde_json::Value) -> Vec<Reason> {
    serde_json::from_value(value).unwrap_or_default()
}

/// The stage a record stopped at, from the state it was parked from.
fn stopped_at(parked_from: Option<&str>) -> Stage {
    crate::domain::lifecycle::stopped_at(parked_from)
}
