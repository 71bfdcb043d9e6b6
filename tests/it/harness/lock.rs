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

static STATE: Mutex<State> = Mutex::new(State {
    shared: 0,
    exclusive: false,
});
static CHANGED: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a test holds of the services; released on drop.
pub enum Hold {
    Shared(Shared),
    Exclusive(Exclusive),
}

pub struct Shared(());

pub struct Exclusive {
    /// The machine-wide lock file, for tests that stop a service other checkouts' test runs use.
    _machine: Option<std::fs::File>,
}

impl Hold {
    /// A shared hold (waits while a test has the services to itself).
    pub async fn shared() -> Self {
        Hold::Shared(
            tokio::task::spawn_blocking(shared_blocking)
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

pub fn shared_blocking() -> Shared {
    let mut s = state();
    while s.exclusive {
        s = CHANGED.wait(s).unwrap_or_else(PoisonError::into_inner);
    }
    s.shared += 1;
    Shared(())
}

pub fn exclusive_blocking(machine: bool) -> Exclusive {
    {
        let mut s = state();
        while s.exclusive || s.shared > 0 {
            s = CHANGED.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.exclusive = true;
    }
    Exclusive {
        _machine: machine.then(machine_lock),
    }
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
        state().shared -= 1;
        CHANGED.notify_all();
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        state().exclusive = false;
        CHANGED.notify_all();
    }
}
