//! # salur
//!
//! Pays social aid without cash. A social-affairs office (Dinas Sosial) submits a batch of aid
//! recipients; RabbitMQ consumers take every recipient through bank **account opening**,
//! **verification** and **transfer**; records blocked by incomplete administrative data are
//! parked with their reasons on a dead-letter queue. PostgreSQL is the source of truth for every
//! record's state; every state change is an audit row.
//!
//! # Layout
//! - [`config`]: typed settings from the environment, with local defaults.
//! - [`domain`]: validated newtypes (NIK, KK, region code, amount, …) and the reason codes.
//! - [`intake`]: reading office files (CSV/JSON) and generating realistic demo batches.
//! - [`store`]: PostgreSQL: migrations and set-based queries, always inside a transaction.
//! - [`broker`]: the only module that speaks AMQP: topology, publish with confirms, consume.
//! - [`messages`]: what salur puts on its queues; [`bank::contract`]: what it asks of banks.
//! - [`stages`]: account opening, verification, transfer and bank answers, all of one shape.
//! - [`relay`]: the transactional outbox's publisher; [`sweeper`]: re-sends what was not
//!   answered in time (bank timeouts, lost messages).
//! - [`worker`]: the consumer loop and its supervision; [`bank::sim`]: the reference bank.
//! - [`ops`]: submit, batch status and report, the demo.
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
pub mod worker;

pub use config::Settings;
