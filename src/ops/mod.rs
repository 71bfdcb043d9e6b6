//! What people do with salur: submit a batch, follow it, report on it, work its parked
//! records, approve payment lists, manage offices, programmes, budgets and personal data; reconcile
//! bank statements ([`reconcile`]).

pub mod approval;
pub mod batch;
pub mod budget;
pub mod chaos;
pub mod display;
pub mod office;
pub mod parked_queues;
pub mod privacy;
pub mod programme;
pub mod reconcile;
pub mod remediate;
pub mod submit;
