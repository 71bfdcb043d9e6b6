//! The bank side: the contract types, and `bank-sim`, the reference implementation of the
//! contract that the demo and the tests run against.

pub mod check;
pub mod contract;
pub mod refusals;
pub mod sim;
pub mod users;
