//! Scale-out: several broker addresses with failover, the docker-compose cluster profile, and a
//! small run of the fault campaign on a three-node cluster (`scripts/chaos.sh`).

use crate::harness::{self, valid_record};
use salur::store::State;
use std::process::Command;

/// A worker given a dead node first in AMQP_URL connects to the next one and pays the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_skips_a_dead_node_of_amqp_url() {
    let mut live = 0;
    harness::env()
        .settings(|s| {
            // Port 9 (discard) has no broker: the first address always fails.
            live = salur::config::amqp_addresses(&s.amqp_url).len();
            let vhost = s.amqp_url.rsplit('/').next().unwrap().to_owned();
            s.amqp_url = format!("amqp://guest:guest@127.0.0.1:9/{vhost},{}", s.amqp_url);
        })
        .pipeline()
        .run(async |env| {
            assert_eq!(
                salur::config::amqp_addresses(&env.settings.amqp_url).len(),
                live + 1
            );
            let records: Vec<_> = (1..=50).map(valid_record).collect();
            let batch = env.submit(&records, "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 50);
        })
        .await;
}

/// No node answering is an error that names every address and how to start a cluster.
#[tokio::test]
async fn no_node_answering_names_every_address() {
    let s = salur::config::Settings {
        amqp_url: "amqp://guest:secret@127.0.0.1:9/%2f,127.0.0.1:19".into(),
        ..Default::default()
    };
    let e = salur::broker::Broker::connect(&s)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("127.0.0.1:9") && e.contains("127.0.0.1:19"),
        "{e}"
    );
    assert!(e.contains("cluster.sh up"), "{e}");
    assert!(!e.contains("secret"), "{e}");
}

fn compose(args: &[&str]) -> String {
    let out = Command::new("docker-compose")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("docker-compose (Debian's package; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// docker-compose.yml is valid, and its "cluster" profile adds three RabbitMQ nodes sharing
/// one cookie, three workers and two banks that list all three nodes.
#[test]
fn docker_compose_has_a_three_node_cluster_profile() {
    let services = compose(&["--profile", "cluster", "config", "--services"]);
    for s in [
        "rabbitmq-1",
        "rabbitmq-2",
        "rabbitmq-3",
        "worker-cluster",
        "bank-sim-cluster",
    ] {
        assert!(services.lines().any(|l| l == s), "{s} missing: {services}");
    }
    let config = compose(&["--profile", "cluster", "config"]);
    let nodes_url = "amqp://guest:guest@rabbitmq-1:5672/%2f,rabbitmq-2:5672,rabbitmq-3:5672";
    assert_eq!(config.matches(nodes_url).count(), 2, "{config}");
    assert_eq!(config.matches("RABBITMQ_ERLANG_COOKIE").count(), 3);
    // Only with --profile cluster: the default `docker compose up` keeps its single broker.
    assert_eq!(config.matches("\n    - cluster\n").count(), 5, "{config}");
    for n in 1..=3 {
        assert!(config.contains(&format!("hostname: rabbitmq-{n}")));
    }
    let cluster_conf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/rabbitmq/cluster.conf"),
    )
    .unwrap();
    for n in 1..=3 {
        assert!(cluster_conf.contains(&format!("rabbit@rabbitmq-{n}")));
    }
}

/// The fault campaign, small: a three-node cluster (started by the script), three workers, two
/// banks; every kind of fault once (one PostgreSQL restart, under the outage tests' machine-wide
/// lock), then every invariant holds. The PostgreSQL restart would fail the other tests of
/// this binary: it has the services to itself (the script takes the machine-wide lock).
#[test]
fn a_small_fault_campaign_keeps_every_invariant() {
    let _alone = harness::lock::exclusive_blocking(false);
    let out = Command::new("scripts/chaos.sh")
        .args([
            "--records",
            "1500",
            "--minutes",
            "1.6",
            "--seed",
            "3",
            "--pg-restarts",
            "1",
        ])
        .env("SALUR_BIN", env!("CARGO_BIN_EXE_salur"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The invariants table comes last, after the table of records not disbursed by reason.
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| invariant |"))
        .filter(|l| l.starts_with("| "))
        .collect();
    assert_eq!(rows.len(), 8, "a header and seven invariants: {stdout}");
    assert!(rows[1..].iter().all(|r| r.ends_with("| yes |")), "{stdout}");
    assert!(
        !stdout.contains("| (none) |"),
        "a record ended without a reason: {stdout}"
    );
    for kind in [
        "kill -9 a worker",
        "stop the busiest queue's leader node",
        "restart PostgreSQL",
        "freeze a worker",
        "freeze a bank",
        "purge salur.blocked",
        "fix and replay",
    ] {
        assert!(stdout.contains(kind), "{kind} did not happen: {stdout}");
    }
    assert!(stdout.contains("1500 of 1500 final"), "{stdout}");
}
