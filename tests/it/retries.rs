//! Transient failures, retries through the delay tiers, bank answers that never come, and
//! poison messages, against the real services with bank-sim fault injection.

use crate::harness::{self, valid_record};
use salur::bank::contract::{BankReply, RequestKind};
use salur::bank::sim::{SimOptions, settlements};
use salur::broker::{Broker, Outgoing, names};
use salur::config::RetryTier;
use salur::intake::RawRecord;
use salur::messages::{PoisonMessage, Stage};
use salur::ops::remediate::{self, Filter, Scope};
use salur::stages::stage_message;
use salur::store::State;
use std::collections::BTreeSet;
use std::time::Duration;

fn quick_retries(s: &mut salur::Settings) {
    s.retry_tiers = RetryTier::parse_list("300ms,1s,2s").unwrap();
    s.max_attempts = 12;
}

fn batch_of(n: u32) -> Vec<RawRecord> {
    (1..=n).map(valid_record).collect()
}

/// Sum of a counter over its label sets, from the text exposition.
fn counter_sum(metrics: &salur::metrics::Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// 20 % of bank items fail transiently: every record is still paid, each transfer key once, and
/// the retries are visible in the metrics and in each record's audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_bank_errors_are_retried_until_every_record_is_paid_once() {
    harness::env()
        .settings(quick_retries)
        .worker()
        .bank(SimOptions {
            transient_error_rate: 0.2,
            seed: 11,
            ..Default::default()
        })
        .run(async |env| {
            let metrics = env.metrics();
            let batch = env.submit(&batch_of(400), "2026-Q4").await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 400, "{status}");

            let paid = settlements(env.ledger().await).await.unwrap();
            assert_eq!(paid.len(), 400);
            let keys: BTreeSet<_> = paid.iter().map(|s| s.idempotency_key.clone()).collect();
            assert_eq!(keys.len(), 400, "each transfer key paid once");

            let retried_events: i64 =
                sqlx::query_scalar("SELECT count(*) FROM record_events WHERE detail ? 'retry_in'")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert!(
                retried_events > 50,
                "about 20 % of ~800 bank items: {retried_events}"
            );
            assert_eq!(
                counter_sum(&metrics, "salur_retries_total") as i64,
                retried_events
            );
            let text = metrics.render();
            assert!(
                text.contains(r#"salur_retries_total{stage="account_opening",tier="300ms"}"#)
                    && text.contains(r#"salur_retries_total{stage="transfer",tier="300ms"}"#),
                "{text}"
            );
        })
        .await;
}

/// A record whose bank always fails transiently ends `dead` after the stage's maximum attempts,
/// with every attempt in its history and a message on `salur.dead`; replayed once the bank
/// is healthy, it is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_always_fails_ends_dead_with_its_history_then_replays() {
    harness::env()
        .settings(|s| {
            quick_retries(s);
            s.stage_max_attempts.insert(Stage::AccountOpening, 3);
        })
        .worker()
        .bank(SimOptions {
            transient_error_rate: 1.0,
            ..Default::default()
        })
        .run(async |env| {
            let batch = env.submit(&batch_of(1), "2026-Q4").await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Dead), 1, "{status}");
            assert_eq!(status.reasons["RETRIES_EXHAUSTED"], 1);
            assert_eq!(env.queue_depth(names::DEAD_QUEUE).await, 1);

            let id: i64 = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let view = remediate::show(&env.pool, &Scope::All, id).await.unwrap();
            let attempts: Vec<i64> = view
                .history
                .iter()
                .filter_map(|e| e.detail.as_ref()?.get("attempt")?.as_i64())
                .collect();
            assert_eq!(attempts, [1, 2, 3]);
            assert_eq!(view.history.last().unwrap().to, "dead");
            assert_eq!(view.attempts, 3);

            env.stop_services().await;
            env.start_worker();
            env.start_bank(SimOptions::default());
            let replay = remediate::replay(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                &Filter {
                    state: Some(State::Dead),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(replay.replayed["account_opening"], 1);
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 1);
            assert_eq!(env.queue_depth(names::DEAD_QUEUE).await, 0);
        })
        .await;
}

/// The bank carries out 30 % of requests but its answer is lost: after the bank timeout salur
/// asks again with the same idempotency key, and each record is paid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_bank_answers_are_asked_again_and_paid_once() {
    harness::env()
        .settings(|s| {
            quick_retries(s);
            s.bank_timeout = Duration::from_secs(2);
            s.chunk_size = 10;
        })
        .worker()
        .bank(SimOptions {
            lost_answer_rate: 0.3,
            seed: 5,
            ..Default::default()
        })
        .run(async |env| {
            let metrics = env.metrics();
            let batch = env.submit(&batch_of(200), "2026-Q4").await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 200, "{status}");
            let paid = settlements(env.ledger().await).await.unwrap();
            assert_eq!(paid.len(), 200, "one payment per record");
            let resent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM record_events
             WHERE detail->>'error' LIKE 'no answer from the bank%'",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert!(resent > 0, "some requests were sent again");
            let text = metrics.render();
            assert!(text.contains(r#"tier="bank_timeout""#), "{text}");
            // Each disbursed record's bank reference is the one the bank recorded for its key.
            // (The bank's ledger is in its own database: the two sides are compared here.)
            let ours: std::collections::HashMap<String, Option<String>> =
                sqlx::query_as::<_, (i64, Option<String>)>(
                    "SELECT id, bank_reference FROM records",
                )
                .fetch_all(&env.pool)
                .await
                .unwrap()
                .into_iter()
                .map(|(id, reference)| (id.to_string(), reference))
                .collect();
            let banks: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT item_id, reference FROM bank_sim.transfers")
                    .fetch_all(env.ledger().await)
                    .await
                    .unwrap();
            assert!(!banks.is_empty());
            let mismatched: Vec<_> = banks
                .iter()
                .filter(|(id, reference)| ours.get(id).is_some_and(|r| r != reference))
                .collect();
            assert!(mismatched.is_empty(), "{mismatched:?}");
        })
        .await;
}

/// Messages no consumer can process go to `salur.dead` with their body and a reason, once, and
/// the consumers go on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_parked_with_body_and_reason() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let good = env.submit(&batch_of(3), "2026-Q4").await;
            env.wait(good).await;
            let s = &env.settings;
            let mut unknown_version = stage_message(s, Stage::Verification, good, vec![1]);
            unknown_version.payload = String::from_utf8(unknown_version.payload)
                .unwrap()
                .replace("\"v\":1", "\"v\":99")
                .into_bytes();
            let foreign_batch = uuid::Uuid::new_v4();
            let reply = BankReply {
                v: 7,
                request_id: uuid::Uuid::new_v4(),
                bank_code: "002".into(),
                kind: RequestKind::Transfer,
                answered_at: chrono::Utc::now(),
                items: vec![],
            };
            let poison = vec![
                Outgoing {
                    exchange: s.name(names::WORK),
                    routing_key: "account_opening".into(),
                    payload: b"{not json".to_vec(),
                },
                unknown_version,
                stage_message(s, Stage::Transfer, good, vec![987_654_321]),
                // As another deployment on the same vhost and namespace would send it.
                stage_message(s, Stage::Transfer, foreign_batch, vec![987_654_322]),
                Outgoing {
                    exchange: s.name(names::BANK_REPLIES),
                    routing_key: "bank.002.transfer".into(),
                    payload: serde_json::to_vec(&reply).unwrap(),
                },
            ];
            let broker = Broker::connect(s).await.unwrap();
            broker
                .publisher()
                .await
                .unwrap()
                .publish_all(&poison)
                .await
                .unwrap();
            // The consumers still work.
            let mut more = valid_record(4);
            more.row = 1;
            let batch = env.submit(&[more], "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 1);

            let mut parked = Vec::new();
            for _ in 0..100 {
                if env.queue_depth(names::DEAD_QUEUE).await >= 5 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (ch, taken) = broker.take_all(names::DEAD_QUEUE).await.unwrap();
            for d in &taken {
                parked.push(serde_json::from_slice::<PoisonMessage>(&d.data).unwrap());
            }
            let _ = ch.close(200, "ok".into()).await;
            broker.close().await;
            assert_eq!(parked.len(), 5, "{parked:?}");
            let reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
            assert!(
                reasons.iter().any(|r| r.starts_with("not a stage message")),
                "{reasons:?}"
            );
            assert!(
                reasons.iter().any(|r| r.contains("version 99")),
                "{reasons:?}"
            );
            // An unknown record of a known batch is only that; a message whose batch is not in
            // this database either names the likely cause: another deployment's message.
            let of_known_batch = reasons.iter().find(|r| r.contains("987654321"));
            assert!(
                of_known_batch.is_some_and(|r| !r.contains("SALUR_NAMESPACE")),
                "{reasons:?}"
            );
            let foreign = reasons.iter().find(|r| r.contains("987654322"));
            assert!(
                foreign.is_some_and(|r| r.contains(&format!(
                    "its batch {foreign_batch} is not in this worker's database"
                )) && r
                    .contains("give each its own SALUR_NAMESPACE or vhost")),
                "{reasons:?}"
            );
            assert!(
                reasons.iter().any(|r| r.contains("bank reply version 7")),
                "{reasons:?}"
            );
            assert!(parked.iter().any(|p| p.raw == "{not json"));
        })
        .await;
}

/// A transfer whose answer comes only after the record went dead (the bank was slower than all
/// of salur's re-sends) is recorded as paid when the answer comes; a dead transfer cannot be
/// discarded, since the bank may have paid it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_transfer_answer_settles_a_dead_record() {
    harness::env()
        .settings(|s| {
            quick_retries(s);
            s.bank_timeout = Duration::from_millis(500);
            s.stage_max_attempts.insert(Stage::AccountOpening, 30);
            s.stage_max_attempts.insert(Stage::Transfer, 2);
        })
        .worker()
        .bank(SimOptions {
            delay: Duration::from_secs(4),
            ..Default::default()
        })
        .run(async |env| {
            let batch = env.submit(&batch_of(1), "2026-Q4").await;
            let id: i64 = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let mut went_dead = false;
            let mut refused_discard = false;
            for _ in 0..600 {
                let view = remediate::show(&env.pool, &Scope::All, id).await.unwrap();
                if view.state == "dead" && !refused_discard {
                    went_dead = true;
                    let r = remediate::discard(
                        &env.settings,
                        &env.pool,
                        &Scope::All,
                        &harness::operator(),
                        id,
                        "x",
                    )
                    .await;
                    assert!(
                        matches!(r, Err(remediate::RemediateError::TransferMayBePaid(_))),
                        "{r:?}"
                    );
                    refused_discard = true;
                }
                if view.state == "disbursed" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let view = remediate::show(&env.pool, &Scope::All, id).await.unwrap();
            assert_eq!(view.state, "disbursed", "{:?}", view.history);
            assert!(went_dead, "the record never went dead: {:?}", view.history);
            assert!(
                view.history
                    .iter()
                    .any(|e| e.detail.as_ref().is_some_and(|d| d["late_answer"] == true))
            );
            assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 1);
        })
        .await;
}
