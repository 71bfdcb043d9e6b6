//! The machine's PostgreSQL and RabbitMQ, shared by the tests of this binary: most tests share
//! them, and the few that stop or restart one (the outage tests, the small fault campaign) must
//! have them to themselves. Every [`TestEnv`](super::TestEnv) holds a [`Hold::Shared`] for its
//! life; those tests hold a [`Hold::Exclusive`], which waits until no shared hold is left.
//!
//! Readers are preferred: a shared hold is refused only while an exclusive one is *held* (not
//! while one waits), so a test holding one environment can always make a second one, and a
//! waiting exclusive hold never deadlocks with them. With cargo's few test threads the
//! exclusive tests get their turn as soon as the running tests end.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

struct State {
    shared: usize,
    exclusive: bool,
}

/// Shared and exclusive holds on something, for threads and tasks alike (a hold is `Send`).
pub struct ServiceLock {
    state: Mutex<State>,
    changed: Condvar,
}

/// The machine's PostgreSQL and RabbitMQ, for this test process.
static SERVICES: ServiceLock = ServiceLock::new();

impl ServiceLock {
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                shared: 0,
                exclusive: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A shared hold: waits while an exclusive one is held.
    pub fn shared(&'static self) -> Shared {
        let mut s = self.state();
        while s.exclusive {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.shared += 1;
        Shared(self)
    }

    /// An exclusive hold: waits until no hold is left.
    pub fn exclusive(&'static self) -> Exclusive {
        let mut s = self.state();
        while s.exclusive || s.shared > 0 {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.exclusive = true;
        Exclusive {
            lock: self,
            _machine: None,
        }
    }
}

/// What a test holds of the services; released on drop.
pub enum Hold {
    Shared(Shared),
    Exclusive(Exclusive),
}

pub struct Shared(&'static ServiceLock);

pub struct Exclusive {
    lock: &'static ServiceLock,
    /// The machine-wide lock file, for tests that stop a service other checkouts' test runs use.
    _machine: Option<std::fs::File>,
}

impl Hold {
    /// A shared hold on the services (waits while a test has them to itself).
    pub async fn shared() -> Self {
        Hold::Shared(
            tokio::task::spawn_blocking(|| SERVICES.shared())
                .await
                .expect("lock"),
        )
    }

    /// The services to this test alone, and with `machine` also the machine-wide lock that the
    /// outage tests of every checkout take (`scripts/chaos.sh` takes it itself).
    pub async fn exclusive(machine: bool) -> Self {
        Hold::Exclusive(
            tokio::task::spawn_blocking(move || exclusive_blocking(machine))
                .await
                .expect("lock"),
        )
    }
}

/// The services to this test alone (see [`Hold::exclusive`]), for a test without a runtime.
pub fn exclusive_blocking(machine: bool) -> Exclusive {
    let mut hold = SERVICES.exclusive();
    if machine {
        hold._machine = Some(machine_lock());
    }
    hold
}

/// A machine-wide lock, so that two test runs (two checkouts) never stop a service at once.
fn machine_lock() -> std::fs::File {
    let f = std::fs::File::create(std::env::temp_dir().join("salur-outage-tests.lock"))
        .expect("lock file");
    f.lock().expect("lock");
    f
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.0.state().shared -= 1;
        self.0.changed.notify_all();
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        self.lock.state().exclusive = false;
        self.lock.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceLock;
    use std::sync::mpsc;
    use std::time::Duration;

    /// An exclusive hold waits for the shared ones; shared holds wait for an exclusive one but
    /// not for a waiting one (a test holding one environment can make a second).
    #[test]
    fn exclusive_holds_wait_for_shared_ones_and_the_other_way_round() {
        static LOCK: ServiceLock = ServiceLock::new();
        let short = Duration::from_millis(300);
        let first = LOCK.shared();
        let (tx, rx) = mpsc::channel();
        let waiting = std::thread::spawn(move || {
            let hold = LOCK.exclusive();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(hold);
        });
        assert!(
            rx.recv_timeout(short).is_err(),
            "exclusive beside a shared hold"
        );
        let second = LOCK.shared();
        assert!(rx.recv_timeout(short).is_err(), "exclusive beside two");
        drop(first);
        assert!(rx.recv_timeout(short).is_err(), "exclusive beside one");
        drop(second);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("exclusive once no shared hold is left");
        // While it is held, a shared hold waits until it goes.
        let started = std::time::Instant::now();
        let third = LOCK.shared();
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        drop(third);
        waiting.join().unwrap();
    }
}
