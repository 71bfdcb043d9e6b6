//! What people do with salur: submit a batch, follow it, report on it, run the demo.

pub mod batch;
pub mod chaos;
pub mod dead_queue;
pub mod demo;
pub mod demo_snap;
pub mod office;
pub mod privacy;
pub mod remediate;
pub mod submit;
