//! The bank side: the contract types; `bank-sim`, the reference implementation of the contract
//! that the demo and the tests run against (over AMQP, and over SNAP BI in [`sim_snap`]); the
//! SNAP BI gateway for banks that speak SNAP; collective account opening by file; bank
//! statements (MT940 and CSV, [`statement`]) and bank-sim's ([`sim_statement`]).

pub mod check;
pub mod contract;
pub mod files;
pub mod gateway;
pub mod refusals;
pub mod sim;
pub mod sim_snap;
pub mod sim_statement;
pub mod snap;
pub mod statement;
pub mod users;
