//! What people do with salur: submit a batch, follow it, report on it, work its parked
//! records, manage offices and personal data.

pub mod batch;
pub mod chaos;
pub mod dead_queue;
pub mod office;
pub mod privacy;
pub mod remediate;
pub mod submit;
