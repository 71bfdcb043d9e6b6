//! The bank side: the contract types; `bank-sim`, the reference implementation of the contract
//! that the demo and the tests run against (over AMQP, and over SNAP BI in [`sim_snap`]); the
//! SNAP BI gateway for banks that speak SNAP; collective account opening by file.

pub mod check;
pub mod contract;
pub mod files;
pub mod gateway;
pub mod refusals;
pub mod sim;
pub mod sim_snap;
pub mod snap;
pub mod users;
