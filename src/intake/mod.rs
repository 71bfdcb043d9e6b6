//! Office files in: CSV, JSON or Excel (.xlsx) batches read into [`RawRecord`]s (the demo's
//! generator of realistic batches is [`crate::demo::generate`]).
//!
//! Intake refuses a file only when it cannot be read as a batch at all (see [`IntakeError`]).
//! A row whose *values* are missing or invalid is kept as it is: the account-opening stage
//! blocks it later with reasons, so no recipient is ever silently dropped.

pub mod file;
pub mod xlsx;

pub use file::{IntakeError, RecordStream, parse_bytes, parse_file, parse_reader};
pub use xlsx::parse_xlsx;

/// Kept at its old path: the record's shape lives in [`crate::domain`].
pub use crate::domain::RawRecord;
