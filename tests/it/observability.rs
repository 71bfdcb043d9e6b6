//! What an operator sees: the `/metrics` scrape taken during a run tells the same story as
//! `salur batch status` and passes `promtool check metrics`; the logs of a demo run carry batch
//! and record ids and no personal data.

use crate::harness::{self, TestEnv};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;
use salur::bank::sim::SimOptions;
use salur::demo::generate;
use salur::metrics::{self, Metrics};
use salur::store::State;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

type Samples = BTreeMap<String, BTreeMap<String, f64>>;

/// GET /metrics over plain HTTP/1.0, as Prometheus would.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: salur\r\n\r\n")
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// `promtool check metrics` on a scrape: no lint problem, exit 0.
fn promtool_check_metrics(scrape: &str) {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run promtool ({e}): install it with `apt-get install -y prometheus` \
             (Debian's package; scripts/check_monitoring.sh and scripts/test.sh do this)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics found problems ({}):\n{said}",
        out.status
    );
}

fn value(s: &Samples, name: &str, labels: &str) -> f64 {
    s.get(name)
        .and_then(|m| m.get(labels))
        .copied()
        .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in the scrape"))
}

/// Sum of a metric's samples whose labels contain every `k=v` of `filter`.
fn sum(s: &Samples, name: &str, filter: &[&str]) -> f64 {
    s.get(name)
        .map(|m| {
            m.iter()
                .filter(|(labels, _)| {
                    let have: Vec<&str> = labels.split(',').collect();
                    filter.iter().all(|f| have.contains(f))
                })
                .map(|(_, v)| v)
                .sum()
        })
        .unwrap_or(0.0)
}

/// Records of the batch that ever reached `state`, from the audit trail.
async fn reached(env: &TestEnv, batch: uuid::Uuid, state: State) -> f64 {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT e.record_id) FROM record_events e
         JOIN records r ON r.id = e.record_id
         WHERE r.batch_id = $1 AND e.to_state = $2",
    )
    .bind(batch)
    .bind(state.as_str())
    .fetch_one(&env.pool)
    .await
    .unwrap();
    n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_during_a_run_tells_the_same_story_as_batch_status() {
    harness::env()
        .run(async |env| {
            let m = Arc::new(Metrics::new());
            let stop = CancellationToken::new();
            let listener = metrics::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(metrics::serve_on(listener, m.clone(), stop.clone()));

            // The batch is stored before any worker runs: the gauges see all of it in flight.
            let demo = generate::generate(1000, 150, 7);
            let batch = env.submit(&demo.records, "OBS-1").await;
            metrics::refresh(&env.pool, &m).await.unwrap();
            let during = scrape(addr).await;
            promtool_check_metrics(&during);
            let s = metrics::parse_samples(&during);
            assert_eq!(
                value(&s, "salur_records_in_flight", "state=received"),
                1000.0
            );
            assert_eq!(value(&s, "salur_batches_in_flight", ""), 1.0);
            assert!(value(&s, "salur_outbox_backlog_messages", "") >= 10.0);
            assert_eq!(value(&s, "salur_broker_connected", ""), 0.0);
            // Counters exist at 0 before their first event (the programme from the batch in
            // flight), so that Prometheus's increase() counts the first records too.
            assert_eq!(
                value(&s, "salur_records_received_total", "program=BPNT"),
                0.0
            );
            assert_eq!(value(&s, "salur_disbursed_idr_total", "program=BPNT"), 0.0);
            assert_eq!(
                value(
                    &s,
                    "salur_records_total",
                    "outcome=disbursed,stage=transfer"
                ),
                0.0
            );
            assert_eq!(
                value(
                    &s,
                    "salur_build_info",
                    &format!("version={}", env!("CARGO_PKG_VERSION"))
                ),
                1.0
            );

            env.start_worker_with_metrics(m.clone());
            env.start_bank(SimOptions::default());
            // Scrape while the batch moves, once the worker is connected (the pipeline is fast:
            // this may already see the batch done).
            let mut moving = scrape(addr).await;
            for _ in 0..100 {
                if value(
                    &metrics::parse_samples(&moving),
                    "salur_broker_connected",
                    "",
                ) == 1.0
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                moving = scrape(addr).await;
            }
            promtool_check_metrics(&moving);
            assert_eq!(
                value(
                    &metrics::parse_samples(&moving),
                    "salur_broker_connected",
                    ""
                ),
                1.0,
                "the worker reports its RabbitMQ connection within 10 s"
            );

            let status = env.wait(batch).await;
            metrics::refresh(&env.pool, &m).await.unwrap();
            let end = scrape(addr).await;
            promtool_check_metrics(&end);
            let s = metrics::parse_samples(&end);

            // The funnel: received → account opened → verified → disbursed.
            let received = value(&s, "salur_records_received_total", "program=BPNT");
            let opened = value(
                &s,
                "salur_records_total",
                "outcome=account_opened,stage=account_opening",
            );
            let verified = value(
                &s,
                "salur_records_total",
                "outcome=advanced,stage=verification",
            );
            let disbursed = value(
                &s,
                "salur_records_total",
                "outcome=disbursed,stage=transfer",
            );
            assert_eq!(received, status.records as f64, "{status}");
            assert_eq!(opened, reached(env, batch, State::AccountOpened).await);
            assert_eq!(verified, reached(env, batch, State::Verified).await);
            assert_eq!(disbursed, status.count(State::Disbursed) as f64, "{status}");
            assert_eq!(
                (received, opened, verified, disbursed),
                (1000.0, 850.0, 850.0, 850.0)
            );
            assert_eq!(
                sum(&s, "salur_records_total", &["outcome=blocked"]),
                status.count(State::Blocked) as f64
            );
            assert_eq!(
                value(&s, "salur_records_entered_total", "stage=account_opening"),
                1000.0
            );
            assert_eq!(
                value(&s, "salur_records_entered_total", "stage=transfer"),
                850.0
            );

            // Reasons: counted as they happened, and parked now, both as batch status says.
            for (code, n) in &status.reasons {
                let reason = format!("reason={code}");
                assert_eq!(
                    sum(&s, "salur_record_reasons_total", &[&reason]),
                    *n as f64,
                    "{code}"
                );
                assert_eq!(
                    value(
                        &s,
                        "salur_parked_records",
                        &format!("queue=blocked,{reason}")
                    ),
                    *n as f64,
                    "{code}"
                );
            }
            assert_eq!(
                sum(&s, "salur_parked_records", &["queue=blocked"]),
                status.reasons.values().sum::<i64>() as f64
            );
            assert_eq!(sum(&s, "salur_parked_records", &["queue=dead"]), 0.0);
            assert!(value(&s, "salur_parked_oldest_age_seconds", "queue=blocked") >= 0.0);

            // Money: requested is what the office asked for; disbursed what the bank paid.
            let requested: Decimal = status.states.values().map(|t| t.amount).sum();
            assert_eq!(
                value(&s, "salur_requested_idr_total", "program=BPNT"),
                requested.to_f64().unwrap()
            );
            assert_eq!(
                value(&s, "salur_disbursed_idr_total", "program=BPNT"),
                status.amount(State::Disbursed).to_f64().unwrap()
            );

            // Nothing in flight any more, nothing waiting to be published.
            assert_eq!(sum(&s, "salur_records_in_flight", &[]), 0.0);
            assert_eq!(value(&s, "salur_batches_in_flight", ""), 0.0);
            assert_eq!(value(&s, "salur_outbox_backlog_messages", ""), 0.0);
            assert_eq!(value(&s, "salur_outbox_oldest_age_seconds", ""), 0.0);

            // Latencies were measured, per stage and per (known) bank.
            assert!(
                sum(
                    &s,
                    "salur_stage_duration_seconds_count",
                    &["stage=account_opening"]
                ) > 0.0
            );
            assert!(
                sum(
                    &s,
                    "salur_stage_duration_seconds_count",
                    &["stage=bank_replies"]
                ) > 0.0
            );
            let round_trips = &s["salur_bank_round_trip_seconds_count"];
            assert!(!round_trips.is_empty());
            for labels in round_trips.keys() {
                let bank = labels
                    .split(',')
                    .find_map(|l| l.strip_prefix("bank="))
                    .unwrap();
                assert!(salur::domain::BankCode::parse(bank).is_ok(), "{labels}");
            }
            // Labels never carry a batch, a record or a person.
            let batch_text = batch.to_string();
            assert!(!end.contains(&batch_text));
            for r in demo.records.iter().filter_map(|r| r.nik.as_deref()) {
                assert!(!end.contains(r));
            }

            stop.cancel();
        })
        .await;
}

/// Personal data of a generated batch: every value of the columns that identify a person.
fn personal_values(records: &[salur::intake::RawRecord]) -> Vec<String> {
    let mut out = Vec::new();
    for r in records {
        for v in [&r.nik, &r.kk, &r.name, &r.mother_name, &r.account_number]
            .into_iter()
            .flatten()
        {
            let v = v.trim();
            // Empty and placeholder cells ("-") are not personal data.
            if v.chars().filter(|c| c.is_alphanumeric()).count() >= 5 {
                out.push(v.to_owned());
                // Banks upper-case and cut names; logs must not carry those either.
                let upper: String = v.to_uppercase().chars().take(30).collect();
                out.push(upper);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_logs_carry_ids_and_no_personal_data() {
    harness::env()
        .run(async |env| {
            let (recipients, incomplete, seed) = (300, 60, 11);
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_salur"))
                .args([
                    "demo",
                    "--recipients",
                    &recipients.to_string(),
                    "--incomplete",
                    &incomplete.to_string(),
                    "--seed",
                    &seed.to_string(),
                    "--json",
                    "--timeout",
                    "150",
                ])
                .env("DATABASE_URL", &env.settings.database_url)
                .env("SALUR_BANK_LEDGER_URL", env.settings.bank_ledger_url())
                .env("AMQP_URL", &env.settings.amqp_url)
                .env("SALUR_NAMESPACE", &env.settings.namespace)
                .env("METRICS_ADDR", "off")
                .env("LOG_FORMAT", "json")
                .env("RUST_LOG", "debug")
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(Duration::from_secs(200), run)
                .await
                .expect("the demo finished")
                .expect("the demo ran");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                out.status.success(),
                "demo failed ({}):\n{stdout}\n{}",
                out.status,
                stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
            let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
            let batch_id = summary["batch_id"].as_str().unwrap().to_owned();

            // Every log line is one JSON object.
            let events: Vec<serde_json::Value> = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
                })
                .collect();
            assert!(events.len() > 10, "{} log lines", events.len());

            // The same records the demo generated for this seed, plus the accounts the bank opened.
            let demo = generate::generate(recipients, incomplete, seed);
            let mut secrets = personal_values(&demo.records);
            // Read through the store: the account numbers are sealed in the database.
            let ids: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM records WHERE bank_account IS NOT NULL")
                    .fetch_all(&env.pool)
                    .await
                    .unwrap();
            let mut conn = env.pool.acquire().await.unwrap();
            let opened: Vec<String> = salur::store::records::read_scoped(&mut conn, &ids, None)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|r| r.bank_account)
                .collect();
            drop(conn);
            assert_eq!(opened.len(), 240);
            secrets.extend(opened);
            let logs = format!("{stdout}\n{stderr}");
            let leaked: Vec<&String> = secrets
                .iter()
                .filter(|v| logs.contains(v.as_str()))
                .collect();
            assert!(
                leaked.is_empty(),
                "{} personal values appear in the logs, e.g. a {}-character value",
                leaked.len(),
                leaked[0].len()
            );

            // Ids instead: stage messages name their batch, parked records their record and batch.
            let field = |e: &serde_json::Value, k: &str| -> Option<String> {
                e.get(k)
                    .or_else(|| e.get("span").and_then(|s| s.get(k)))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            };
            let of_batch = events
                .iter()
                .filter(|e| field(e, "batch_id").as_deref() == Some(batch_id.as_str()))
                .count();
            assert!(of_batch > 0, "no log event carries batch_id {batch_id}");
            let parked = events
                .iter()
                .filter(|e| field(e, "message").as_deref() == Some("record parked"))
                .filter(|e| field(e, "record_id").is_some())
                .count();
            assert_eq!(
                parked, incomplete as usize,
                "one debug event per parked record"
            );
        })
        .await;
}

/// `salur_*` metric names a text uses (histogram series reduced to their family).
fn salur_names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("salur_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            // `salur_parked_*` in prose names a group: keep the trailing `*`.
            let star = bytes.get(end) == Some(&b'*');
            out.insert(format!(
                "{}{}",
                &text[start..end],
                if star { "*" } else { "" }
            ));
        }
        i = end;
    }
    out
}

/// The alert rules, their tests and the dashboard use only metrics salur exports (a renamed
/// metric would otherwise leave a silent alert and an empty panel), and the README documents
/// every metric.
#[test]
fn monitoring_files_use_only_metrics_salur_exports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = Metrics::new();
    let names: std::collections::BTreeSet<&str> = m.names().iter().map(String::as_str).collect();
    assert!(names.len() >= 20, "{names:?}");
    let known = |n: &str| {
        if let Some(prefix) = n.strip_suffix('*') {
            return names.iter().any(|k| k.starts_with(prefix));
        }
        names.contains(n)
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|s| n.strip_suffix(s).is_some_and(|b| names.contains(b)))
    };
    let mut files = vec![
        root.join("monitoring/alerts.yml"),
        root.join("monitoring/alerts_test.yml"),
        root.join("monitoring/prometheus.yml"),
    ];
    for entry in std::fs::read_dir(root.join("monitoring/grafana/dashboards")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut unknown = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for n in salur_names_in(&text) {
            if !known(&n) {
                unknown.push(format!("{}: {n}", f.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics salur does not export:\n{}",
        unknown.join("\n")
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let undocumented: Vec<&&str> = names
        .iter()
        .filter(|n| !readme.contains(&format!("`{n}")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metrics missing from the README: {undocumented:?}"
    );
}
