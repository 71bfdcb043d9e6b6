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
            .env("SALUR_BANK_LEDGER_URL", self.settings.bank_ledger_url())
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

/// Whether this process is the one to run `test` (its full name, `module::function`): a test
/// that asserts on this process's own resources (peak memory) must not count the other tests
/// of the binary. In the test binary's own run this re-runs the binary for `test` alone,
/// checks that it passed, prints its output and returns `false` (the test then returns); in
/// that second process it returns `true` and the test does its work.
pub async fn alone(test: &str) -> bool {
    const ALONE: &str = "SALUR_TEST_ALONE";
    if std::env::var(ALONE).as_deref() == Ok(test) {
        return true;
    }
    // Its environment is made in the other process: hold the services for it here.
    let _hold = super::lock::Hold::shared().await;
    let exe = std::env::current_exe().expect("the test binary");
    let test = test.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([&test, "--exact", "--nocapture", "--test-threads", "1"])
            .env(ALONE, &test)
            .output()
            .expect("the test binary runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
