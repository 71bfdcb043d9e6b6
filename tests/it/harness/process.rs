//! salur processes a test spawns (worker, bank-sim, api, gateway, …): a [`Proc`] is killed
//! (SIGKILL) and reaped when it goes, also when the test panics.

use super::TestEnv;
use std::process::{Child, Command, Stdio};

/// A child process, killed and reaped on drop.
pub struct Proc(pub Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TestEnv {
    /// The `salur` binary with `args`, on the test's database, vhost and namespace, without a
    /// metrics listener, logging warnings.
    pub fn salur(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_salur"));
        c.args(args)
            .env("DATABASE_URL", &self.settings.database_url)
            .env("AMQP_URL", &self.settings.amqp_url)
            .env("SALUR_NAMESPACE", &self.settings.namespace)
            .env("METRICS_ADDR", "off")
            .env("RUST_LOG", "warn");
        c
    }

    /// Spawns `command` as a [`Proc`].
    pub fn spawn(&self, command: &mut Command) -> Proc {
        Proc(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {command:?}: {e}")),
        )
    }

    /// A `salur worker` process, its output discarded.
    pub fn spawn_worker(&self) -> Proc {
        self.spawn(
            self.salur(&["worker"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }
}
