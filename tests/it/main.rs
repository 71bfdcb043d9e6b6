//! salur's integration tests, one binary: a module per feature, all on the shared [`harness`]
//! (a database and vhost of their own per test on the real PostgreSQL and RabbitMQ, removed on
//! drop, also when a test panics). Run one feature with `cargo test --test it pipeline::`.
//!
//! Tests that stop or restart a service (`outage::`, `cluster::a_small_fault_campaign…`) have
//! the services to themselves: the others wait for them (see [`harness::lock`]).

mod harness;

mod api;
mod approval;
mod bank_files;
mod bank_trust;
mod cleanup;
mod cluster;
mod console;
mod crash;
mod hostile;
mod observability;
mod outage;
mod pipeline;
mod privacy;
mod programmes;
mod reconciliation;
mod remediation;
mod retries;
mod snap;
mod stages;
