//! # salur
//!
//! Pays social aid without cash. A social-affairs office (Dinas Sosial) submits a batch of aid
//! recipients; RabbitMQ consumers take every recipient through bank **account opening**,
//! **verification** and **transfer**; records blocked by incomplete administrative data are
//! parked with their reasons on a dead-letter queue. PostgreSQL is the source of truth for every
//! record's state; every state change is an audit row.
//!
//! # Layout
//! Each rule lives in one place; the list says where.
//! - `main.rs` and `cli/` (the `salur` binary, not this library): one file per command with its
//!   arguments and a `run` that calls the library and prints the result through its `Display`
//!   (or as JSON); `cli/mod.rs` lists the commands and the exit codes.
//! - [`config`]: typed settings from the environment, with local defaults and their limits.
//! - [`domain`]: validated newtypes (NIK, KK, region code, amount, …), the office's record as
//!   read (`RawRecord`), `validate` and the reason codes; and `domain/lifecycle.rs`, the one
//!   table of the record's life: the states, the stage each state waits for, where a record
//!   goes on success and back to on a transient failure, which states are in flight, parked,
//!   final. `domain` imports nothing from the rest of the crate.
//! - [`intake`]: reading office files (CSV, JSON, Excel) into records.
//! - [`store`]: PostgreSQL, and all of salur's SQL: migrations, records (their columns listed
//!   once), claims, parked records, batches, offices, idempotency keys, the outbox, sealed
//!   personal fields, programmes and budgets (`store::budgets`: the one definition of what a
//!   budget has used); set-based, inside the caller's transaction. (Bench, bank-sim and the fault
//!   campaign's checks keep their own SQL.)
//! - [`broker`]: the only module that speaks AMQP: topology, publish with confirms, consume.
//! - [`messages`]: what salur puts on its queues; [`bank::contract`]: what it asks of banks.
//! - [`stages`]: account opening, verification, transfer and bank answers, all of one shape:
//!   each decides a typed outcome per record, applied in one place (`stages/step.rs`).
//! - [`relay`]: the transactional outbox's publisher; [`sweeper`]: re-sends what was not
//!   answered in time (bank timeouts, lost messages); [`worker`]: the consumer loop and its
//!   supervision.
//! - [`bank`]: the bank contract, the reference bank ([`bank::sim`], also over SNAP BI), the
//!   SNAP BI gateway, account opening by file, the banks' broker users, the conformance kit,
//!   bank statements ([`bank::statement`]: MT940 and the CSV export; bank-sim's in
//!   [`bank::sim_statement`]).
//! - [`ops`]: what people do: submit, batch status and report (with the totals identity),
//!   a checker's approval of payment lists ([`ops::approval`]: the list, its hash, the budget
//!   check), bank statements reconciled line by line and returned funds ([`ops::reconcile`]),
//!   remediation of parked records
//!   (`ops/remediate/`, one file per operation), what the parked queues hold, offices and
//!   tokens (a person and a role each: maker, checker, auditor, admin), programmes and budgets,
//!   personal data (keys, retention, a person's data), the fault campaign; and
//!   [`ops::display`], how their results read on a terminal.
//! - [`api`]: the offices' HTTP API (axum) over the same `ops` functions.
//! - [`web`]: the offices' web console, served by `salur api` at `/`: people and their
//!   sessions, server-rendered pages over the same `ops` functions, the Excel round trip of
//!   blocked records, every text in Indonesian and English.
//! - [`demo`]: `salur demo` and its generator of realistic batches ([`demo::generate`], also
//!   used by the benchmark, the fault campaign and the tests).
//! - [`metrics`]: Prometheus metrics and `/metrics`.
//! - [`bench`]: `salur bench`, throughput against a raw and a per-record baseline.

pub mod api;
pub mod bank;
pub mod bench;
pub mod broker;
pub mod config;
pub mod demo;
pub mod domain;
pub mod intake;
pub mod messages;
pub mod metrics;
pub mod ops;
pub mod relay;
pub mod stages;
pub mod store;
pub mod sweeper;
pub mod web;
pub mod worker;

pub use config::Settings;
