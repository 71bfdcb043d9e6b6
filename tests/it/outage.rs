//! Outages mid-batch: RabbitMQ's application stopped and started again, PostgreSQL stopped and
//! started again. The workers ride them out; every record is paid exactly once.
//!
//! These tests stop the machine's real services for a few seconds, so each has them to itself
//! (`harness::env().exclusive()`: the other tests of this binary wait for it, and the
//! machine-wide lock keeps two checkouts' test runs from stopping a service at once).

use crate::harness::{self, TestEnv, valid_record};
use salur::bank::sim::settlements;
use salur::config::RetryTier;
use salur::ops::batch::{self, BatchStatus};
use salur::store::State;
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const RECORDS: u32 = 4000;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL cluster version installed (`/etc/postgresql/<version>`).
fn pg_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("PostgreSQL from Debian's packages")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .expect("a cluster")
}

fn pg_cluster(action: &str) {
    let args = ["--skip-systemctl-redirect", &pg_version(), "main", action];
    let out = Command::new("pg_ctlcluster")
        .args(args)
        .output()
        .expect("cannot run pg_ctlcluster");
    // Started again meanwhile by something else on the machine (a `scripts/services.sh`
    // of another checkout): what the test needs, PostgreSQL back, is so.
    let already =
        action == "start" && String::from_utf8_lossy(&out.stderr).contains("already running");
    assert!(
        out.status.success() || already,
        "pg_ctlcluster {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until about a quarter of the batch is paid, so the outage hits it mid-way.
async fn until_under_way(env: &TestEnv, batch: Uuid) {
    for _ in 0..600 {
        let s = batch::status(&env.pool, batch).await.unwrap();
        if s.count(State::Disbursed) >= i64::from(RECORDS / 4) {
            assert!(s.in_flight > 0, "the batch finished before the outage");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the batch did not get under way");
}

async fn assert_paid_once(env: &TestEnv, status: &BatchStatus) {
    assert_eq!(
        status.count(State::Disbursed),
        i64::from(RECORDS),
        "{status}"
    );
    let paid = settlements(env.ledger().await).await.unwrap();
    assert_eq!(paid.len(), RECORDS as usize, "one payment per record");
    // Exactly one audit row per step: nothing was done twice.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM record_events")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(events, i64::from(RECORDS) * 6);
}

fn outage_settings(s: &mut salur::Settings) {
    s.retry_tiers = RetryTier::parse_list("1s,2s,5s").unwrap();
    s.max_attempts = 20;
}

/// A batch under way, `outage` in the middle of it, then every record paid once.
async fn batch_survives(outage: fn()) {
    harness::env()
        .settings(outage_settings)
        .pipeline()
        .exclusive()
        .run(async |env| {
            let records: Vec<_> = (1..=RECORDS).map(valid_record).collect();
            let batch = env.submit(&records, "2026-Q4").await;
            until_under_way(env, batch).await;

            outage();

            // `wait` rides out database errors while the service comes back.
            let status = env.wait(batch).await;
            assert_paid_once(env, &status).await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stopped_and_started_mid_batch_the_batch_completes() {
    batch_survives(|| {
        run("rabbitmqctl", &["stop_app"]);
        std::thread::sleep(Duration::from_secs(5));
        run("rabbitmqctl", &["start_app"]);
        run("rabbitmqctl", &["await_startup"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_and_started_mid_batch_the_batch_completes() {
    batch_survives(|| {
        pg_cluster("stop");
        std::thread::sleep(Duration::from_secs(5));
        pg_cluster("start");
    })
    .await;
}
