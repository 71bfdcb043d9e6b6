//! The shared harness of the integration tests: [`env()`] builds a [`TestEnv`] (a database and
//! vhost of its own on the real services, settings, services started, a temporary directory),
//! [`Builder::run`] runs a test body on it within a time limit and removes everything after;
//! [`Proc`] is a spawned salur process killed on drop; [`http`] serves the API in the test
//! process; [`lock`] keeps the tests that stop a service apart from the others.
#![allow(dead_code)]

mod data;
mod env;
pub mod http;
pub mod lock;
mod process;

pub use data::*;
pub use env::{Builder, TestEnv, env, try_rabbitmqctl};
pub use process::{Proc, alone};
