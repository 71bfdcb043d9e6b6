//! Bank statements reconciled line by line, and returned funds (issue 14), against the real
//! PostgreSQL, RabbitMQ, worker and bank-sim: bank-sim's statements of the demo batch reconcile
//! with every transfer matched; a tampered statement gives exactly its exceptions; a statement
//! whose balances do not add up is refused whole; returns move records to `returned`, the
//! totals identity holds to the rupiah, and a returned record corrected and replayed is paid
//! again, through approval again.

use crate::harness::{self, TestEnv, valid_record};
use rust_decimal::Decimal;
use salur::bank::sim_statement::{self, StatementOptions};
use salur::bank::statement::{self, Direction, Statement};
use salur::demo::generate;
use salur::domain::{Actor, BankCode};
use salur::ops::approval::{self, Checker};
use salur::ops::batch::Totals;
use salur::ops::reconcile::{self, ReconcileError, Report};
use salur::ops::remediate::{self, Filter, Scope};
use salur::ops::submit::{self, BatchInfo};
use salur::store::State;
use std::collections::BTreeMap;
use uuid::Uuid;

fn auditor() -> Actor {
    Actor::new(Some("Auditor BPK".into()), "auditor-token")
}

/// Every statement bank-sim has: `(bank, statement)` for every bank and day it paid or returned
/// anything, returns decided at `return_rate`.
async fn statements(env: &TestEnv, return_rate: f64) -> Vec<(String, Statement)> {
    let mut out = Vec::new();
    for (bank, _) in BankCode::KNOWN {
        for date in sim_statement::days(env.ledger().await, bank).await.unwrap() {
            let s = sim_statement::statement(
                env.ledger().await,
                &StatementOptions {
                    bank: (*bank).to_owned(),
                    date,
                    return_rate,
                    return_after_days: 0,
                    seed: 7,
                },
            )
            .await
            .unwrap();
            out.push(((*bank).to_owned(), s));
        }
    }
    out
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&env.pool).await.unwrap()
}

fn kinds(r: &Report) -> BTreeMap<String, i64> {
    r.exceptions_by_kind.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_batchs_statements_reconcile_and_a_tampered_one_gives_exactly_its_exceptions() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let demo = generate::generate(3000, 430, 42);
            let batch = env.submit(&demo.records, "2026-Q4").await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 2570, "{status}");

            // Every statement, the MT940 and the CSV forms alternately: all matched, nothing else.
            let all = statements(env, 0.0).await;
            assert!(!all.is_empty());
            let mut matched = 0;
            for (i, (bank, s)) in all.iter().enumerate() {
                let (name, text) = if i % 2 == 0 {
                    (format!("{bank}.sta"), s.to_mt940())
                } else {
                    (format!("{bank}.csv"), s.to_csv())
                };
                let r = reconcile::reconcile(&env.pool, bank, &name, text.as_bytes(), &auditor())
                    .await
                    .unwrap();
                assert_eq!(r.summary.exception_count, 0, "{r}");
                assert_eq!(r.summary.returned, 0, "{r}");
                matched += r.summary.matched;
            }
            assert_eq!(matched, 2570);
            let stored = count(env, "SELECT count(*) FROM reconciliations").await;
            assert_eq!(stored, all.len() as i64);

            // The same file again: the stored reconciliation, nothing new.
            let (bank, s) = all
                .iter()
                .max_by_key(|(_, s)| s.lines.len())
                .unwrap()
                .clone();
            let text = s.to_mt940();
            let again =
                reconcile::reconcile(&env.pool, &bank, "again.sta", text.as_bytes(), &auditor())
                    .await
                    .unwrap();
            assert!(again.already_reconciled);
            assert_eq!(
                count(env, "SELECT count(*) FROM reconciliations").await,
                stored
            );
            assert_eq!(
                count(env, "SELECT count(*) FROM reconciliation_exceptions").await,
                0
            );

            // Balances that do not add up: refused whole, with the closing balance's line.
            let mut bad = s.clone();
            bad.reference = format!("{}B", &bad.reference[..bad.reference.len().min(15)]);
            bad.recompute_closing();
            bad.closing += Decimal::from(1);
            let e = reconcile::reconcile(
                &env.pool,
                &bank,
                "bad.sta",
                bad.to_mt940().as_bytes(),
                &auditor(),
            )
            .await
            .unwrap_err();
            match &e {
                ReconcileError::Malformed(m) => {
                    assert_eq!(m.line, bad.to_mt940().lines().count(), "{e}");
                    assert!(m.message.contains("do not add up"), "{e}");
                }
                other => panic!("{other}"),
            }
            assert_eq!(
                count(env, "SELECT count(*) FROM reconciliations").await,
                stored
            );
            // A broken line: refused whole, naming its line.
            let broken = s.to_mt940().replacen(":61:", ":61:XX", 1);
            let e = reconcile::reconcile(
                &env.pool,
                &bank,
                "broken.sta",
                broken.as_bytes(),
                &auditor(),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&e, ReconcileError::Malformed(m) if m.line == 5),
                "{e}"
            );
            // Another file under a reconciled statement's reference is refused.
            let mut changed = s.clone();
            changed.lines.pop();
            changed.recompute_closing();
            let e = reconcile::reconcile(
                &env.pool,
                &bank,
                "changed.sta",
                changed.to_mt940().as_bytes(),
                &auditor(),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, ReconcileError::Conflict { .. }), "{e}");

            // The bank's statement of the same day with one debit duplicated, one removed and
            // one amount changed (and balances that add up): exactly those three exceptions.
            let mut tampered = s.clone();
            tampered.reference = format!(
                "{}T",
                &tampered.reference[..tampered.reference.len().min(15)]
            );
            let duplicated = tampered.lines[0].clone();
            tampered.lines.push(duplicated.clone());
            let removed = tampered.lines.remove(1);
            tampered.lines[2].amount += Decimal::from(50_000);
            let changed_line = tampered.lines[2].clone();
            tampered.recompute_closing();
            let r = reconcile::reconcile(
                &env.pool,
                &bank,
                "tampered.sta",
                tampered.to_mt940().as_bytes(),
                &auditor(),
            )
            .await
            .unwrap();
            assert_eq!(
                kinds(&r),
                BTreeMap::from([
                    ("amount_mismatch".to_owned(), 1),
                    ("duplicate".to_owned(), 1),
                    ("missing".to_owned(), 1)
                ]),
                "{r}"
            );
            assert_eq!(r.summary.matched as usize, s.lines.len() - 2, "{r}");
            let by_kind = |k: &str| r.exceptions.iter().find(|e| e.kind == k).unwrap().clone();
            assert_eq!(
                by_kind("duplicate").end_to_end.as_deref(),
                Some(duplicated.end_to_end.as_str())
            );
            assert_eq!(
                by_kind("duplicate").line_no,
                Some(tampered.lines.len() as i32)
            );
            assert_eq!(
                by_kind("missing").end_to_end.as_deref(),
                Some(removed.end_to_end.as_str())
            );
            assert_eq!(by_kind("missing").batch_id, Some(batch));
            let mismatch = by_kind("amount_mismatch");
            assert_eq!(
                mismatch.end_to_end.as_deref(),
                Some(changed_line.end_to_end.as_str())
            );
            assert_eq!(mismatch.amount, Some(Decimal::from(650_000)));
            assert_eq!(mismatch.expected, Some(Decimal::from(600_000)));

            // The batch shows them; nothing was returned, the identity holds.
            let status = env.wait(batch).await;
            assert_eq!(
                status.exceptions,
                BTreeMap::from([
                    ("amount_mismatch".to_owned(), 1),
                    ("duplicate".to_owned(), 1),
                    ("missing".to_owned(), 1)
                ]),
                "{status}"
            );
            assert!(status.totals.holds, "{status}");
            assert_eq!(status.count(State::Disbursed), 2570);
        })
        .await;
}

const OFFICE: &str = "DINSOS-5371";
const PROGRAM: &str = "BANSOS";
const PERIOD: &str = "2026-Q4";

fn checker() -> Checker {
    Checker {
        person: "Maria Checker".into(),
        token_label: Some("checker-token".into()),
        office: None,
    }
}

async fn approve(env: &TestEnv, batch: Uuid) -> i64 {
    let list = approval::list(&env.pool, batch, None).await.unwrap();
    let decided = approval::approve(&env.settings, &env.pool, batch, &list.list_hash, &checker())
        .await
        .unwrap();
    decided.records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_move_records_to_returned_and_a_corrected_one_is_paid_again_after_approval() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            salur::ops::office::add(
                &env.pool,
                OFFICE,
                "Dinas Sosial Kota Kupang",
                salur::ops::office::Role::Maker,
            )
            .await
            .unwrap();
            salur::ops::programme::add(&env.pool, PROGRAM, "Bantuan Sosial", "600000", true)
                .await
                .unwrap();
            salur::ops::budget::set(
                &env.pool,
                PROGRAM,
                PERIOD,
                OFFICE,
                Decimal::from(100_000_000),
            )
            .await
            .unwrap();
            let records: Vec<_> = (1..=40).map(valid_record).collect();
            let batch = submit::submit_records(
                &env.settings,
                &env.pool,
                "bansos.csv",
                &records,
                &BatchInfo {
                    office: OFFICE.into(),
                    program: PROGRAM.into(),
                    period: PERIOD.into(),
                    submitted_by: Some(Actor::new(Some("Yohanes Maker".into()), "maker")),
                },
            )
            .await
            .unwrap();
            let held = env.wait(batch).await;
            assert_eq!(held.count(State::AwaitingApproval), 40, "{held}");
            assert_eq!(approve(env, batch).await, 40);
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 40);

            // bank-sim's statement with returns, written by the command line, reconciled by it.
            let days = sim_statement::days(env.ledger().await, "002")
                .await
                .unwrap();
            assert_eq!(days.len(), 1, "one day's transfers");
            let file = env.temp_path("002.sta");
            let out = env
                .salur(&[
                    "bank-sim",
                    "statement",
                    "--bank",
                    "002",
                    "--date",
                    &days[0].to_string(),
                    "--return-rate",
                    "0.25",
                    "--seed",
                    "3",
                    "-o",
                    file.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = std::fs::read_to_string(&file).unwrap();
            let s = statement::parse("002.sta", text.as_bytes()).unwrap();
            let (credits, returned_idr) = s.sum(Direction::Credit);
            assert!(credits > 0 && credits < 40, "{credits} returns");
            assert_eq!(s.sum(Direction::Debit).0, 40);
            let out = env
                .salur(&[
                    "reconcile",
                    file.to_str().unwrap(),
                    "--bank",
                    "002",
                    "--json",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["matched"], 40, "{report}");
            assert_eq!(report["returned"], credits, "{report}");
            assert_eq!(report["exception_count"], 0, "{report}");

            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Returned), credits as i64, "{status}");
            assert_eq!(status.amount(State::Returned), returned_idr);
            assert_eq!(status.count(State::Disbursed), 40 - credits as i64);
            assert!(status.totals.holds, "{status}");
            assert_eq!(status.totals.returned.amount, returned_idr);
            assert_eq!(status.totals.requested.amount, Decimal::from(40 * 600_000));
            assert_eq!(
                status.totals.disbursed.amount + status.totals.returned.amount,
                status.totals.requested.amount,
                "to the rupiah"
            );
            let p = salur::ops::batch::programme_totals(&env.pool, PROGRAM, PERIOD)
                .await
                .unwrap();
            assert!(p.holds, "{p}");
            // Each return carries the bank's reason and date, on the record's audit trail too.
            let reasons: Vec<(String, chrono::NaiveDate)> = sqlx::query_as(
                "SELECT reason_code, returned_on FROM record_returns ORDER BY record_id",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(reasons.len(), credits);
            assert!(reasons.iter().all(|(code, on)| {
                ["ACCOUNT_CLOSED", "RECIPIENT_DECEASED", "NOT_COLLECTED"].contains(&code.as_str())
                    && *on == days[0]
            }));
            let audited = count(
                env,
                "SELECT count(*) FROM record_events WHERE to_state = 'returned'
                   AND detail->>'action' = 'returned' AND actor_token = 'cli'",
            )
            .await;
            assert_eq!(audited, credits as i64);
            // Reconciling the same file again changes nothing.
            let out = env
                .salur(&["reconcile", file.to_str().unwrap(), "--bank", "002"])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert!(String::from_utf8_lossy(&out.stdout).contains("reconciled before"));
            assert_eq!(count(env, "SELECT count(*) FROM reconciliations").await, 1);
            assert_eq!(
                count(env, "SELECT count(*) FROM record_returns").await,
                credits as i64
            );
            // The report's column says what came back and why.
            let mut csv = Vec::new();
            salur::ops::batch::report(&env.pool, batch, &mut csv)
                .await
                .unwrap();
            let csv = String::from_utf8(csv).unwrap();
            assert!(csv.lines().next().unwrap().ends_with(",reconciliation"));
            assert_eq!(csv.matches("returned:").count(), credits);

            // One returned record corrected (a new account; the mother's maiden name, erased
            // after verification, given again) and replayed: checked by the bank again, on a
            // new payment list for the checker, paid again under a new key.
            let (id, old_key): (i64, String) = sqlx::query_as(
                "SELECT record_id, idempotency_key FROM record_returns ORDER BY record_id LIMIT 1",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            let fixed = remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                id,
                &[
                    ("account_number".into(), "0021234567890".into()),
                    ("mother_name".into(), "Yohana Bili".into()),
                ],
            )
            .await
            .unwrap();
            assert!(fixed.ready, "{:?}", fixed.reasons);
            let replayed = remediate::replay(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                &Filter {
                    ids: vec![id],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(replayed.replayed_ids, [id]);
            let held = env.wait(batch).await;
            assert_eq!(held.count(State::AwaitingApproval), 1, "{held}");
            assert_eq!(approve(env, batch).await, 1);
            let paid = env.wait(batch).await;
            assert_eq!(
                paid.count(State::Disbursed),
                40 - credits as i64 + 1,
                "{paid}"
            );
            assert!(paid.totals.holds, "{paid}");
            let ledger: Vec<(String, String)> = sqlx::query_as(
                "SELECT idempotency_key, item_id FROM bank_sim.transfers
                 WHERE status = 'ok' AND item_id = $1 ORDER BY settled_at",
            )
            .bind(id.to_string())
            .fetch_all(env.ledger().await)
            .await
            .unwrap();
            assert_eq!(
                ledger.len(),
                2,
                "paid twice: the returned payment and the new one"
            );
            assert_eq!(ledger[0].0, old_key);
            assert_ne!(ledger[1].0, old_key);
            let payment_no: i32 =
                sqlx::query_scalar("SELECT payment_no FROM records WHERE id = $1")
                    .bind(id)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(payment_no, 1);
            let t = Totals::read(&env.pool, Some(batch), None).await.unwrap();
            assert_eq!(t.returned.records, credits as i64 - 1, "{t}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reconciles_for_admins_and_auditors_only_and_refuses_a_statement_that_does_not_add_up()
 {
    use crate::harness::http::{add_office, problem};
    use reqwest::{Method, StatusCode};
    use salur::ops::office::Role;
    harness::env()
        .pipeline()
        .run(async |env| {
            let records: Vec<_> = (1..=6).map(valid_record).collect();
            let batch = env.submit(&records, "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 6);
            let day = sim_statement::days(env.ledger().await, "002")
                .await
                .unwrap()[0];
            let s = sim_statement::statement(
                env.ledger().await,
                &StatementOptions {
                    bank: "002".into(),
                    date: day,
                    return_rate: 0.5,
                    return_after_days: 0,
                    seed: 1,
                },
            )
            .await
            .unwrap();
            let (credits, _) = s.sum(Direction::Credit);
            assert!(credits > 0, "some returns");
            let server = env.serve_api().await;
            let maker = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let auditor = add_office(&env.pool, "BPK", Role::Auditor).await;
            let post = |token: &str, body: String| {
                server
                    .request(
                        Method::POST,
                        "/v1/reconciliations?bank=002&file_name=002.sta",
                        Some(token),
                    )
                    .header("content-type", "text/plain")
                    .body(body)
                    .send()
            };
            let stored = async || count(env, "SELECT count(*) FROM reconciliations").await;

            // An office's maker may not: a statement covers every office's payments.
            let p = problem(
                post(&maker, s.to_mt940()).await.unwrap(),
                StatusCode::FORBIDDEN,
            )
            .await;
            assert_eq!(p["role"], "maker");
            problem(
                server.get("/v1/reconciliations", &maker).await,
                StatusCode::FORBIDDEN,
            )
            .await;
            assert_eq!(stored().await, 0);

            // Balances that do not add up: refused, the closing balance's line named.
            let mut bad = s.clone();
            bad.closing -= Decimal::from(600_000);
            let text = bad.to_mt940();
            let p = problem(
                post(&auditor, text.clone()).await.unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
            assert_eq!(p["line"], text.lines().count());
            assert!(
                p["detail"].as_str().unwrap().contains("do not add up"),
                "{p}"
            );
            assert_eq!(stored().await, 0);
            assert_eq!(env.wait(batch).await.count(State::Returned), 0);

            // The statement: reconciled (201), then the stored one (200).
            let r = post(&auditor, s.to_mt940()).await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["matched"], 6, "{body}");
            assert_eq!(body["returned"], credits);
            assert_eq!(body["exceptions"], serde_json::json!([]));
            let r = post(&auditor, s.to_mt940()).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let again: serde_json::Value = r.json().await.unwrap();
            assert_eq!(again["already_reconciled"], true);
            assert_eq!(again["id"], body["id"]);
            assert_eq!(stored().await, 1);

            let list: serde_json::Value = server
                .get("/v1/reconciliations?bank=002", &auditor)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(list["items"].as_array().unwrap().len(), 1);
            let id = body["id"].as_str().unwrap();
            let one = server
                .get(&format!("/v1/reconciliations/{id}"), &auditor)
                .await;
            assert_eq!(one.status(), StatusCode::OK);
            problem(
                server
                    .get(&format!("/v1/reconciliations/{}", Uuid::new_v4()), &auditor)
                    .await,
                StatusCode::NOT_FOUND,
            )
            .await;

            // The batch resource counts what came back.
            let b: serde_json::Value = server
                .get(&format!("/v1/batches/{batch}"), &auditor)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(b["states"]["returned"]["records"], credits, "{b}");
            assert_eq!(b["totals"]["returned"]["records"], credits, "{b}");
            assert_eq!(b["totals"]["holds"], true, "{b}");
            assert_eq!(b["exceptions"], serde_json::json!({}), "{b}");

            // The next day's statement (the CSV export) debits a transfer salur never asked
            // for: an exception of kind unknown, and nothing else (nothing was disbursed that
            // day).
            let mut next = s.clone();
            next.date = s.date.succ_opt().unwrap();
            next.reference = statement::reference_of("002", next.date);
            next.opening = s.closing;
            let mut stranger = s.lines[0].clone();
            stranger.direction = Direction::Debit;
            stranger.return_reason = None;
            stranger.value_date = next.date;
            stranger.end_to_end = Uuid::new_v4().to_string();
            next.lines = vec![stranger];
            next.recompute_closing();
            let r = post(&auditor, next.to_csv()).await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["format"], "csv");
            assert_eq!(
                body["exceptions_by_kind"],
                serde_json::json!({"unknown": 1}),
                "{body}"
            );
            assert_eq!(body["exceptions"][0]["line_no"], 1);
            assert_eq!(body["exceptions"][0]["file_line"], 3);

            // The metrics, read from the database as a worker reads them.
            let metrics = salur::metrics::Metrics::new();
            salur::metrics::refresh(&env.pool, &metrics).await.unwrap();
            let samples = salur::metrics::parse_samples(&metrics.render());
            assert_eq!(
                samples["salur_reconciliation_exceptions"]["bank=002,kind=unknown"],
                1.0
            );
            assert_eq!(
                samples["salur_reconciliation_exceptions"]["bank=002,kind=missing"],
                0.0
            );
            assert_eq!(
                samples["salur_returned_idr_total"]["program=BPNT"],
                (credits * 600_000) as f64
            );
            server.stop().await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_the_bank_paid_and_salur_has_not_heard_of_is_not_disbursed() {
    use std::process::Stdio;
    harness::env()
        .without_programmes()
        .worker()
        .run(async |env| {
            salur::ops::office::add(
                &env.pool,
                OFFICE,
                "Dinas Sosial Kota Kupang",
                salur::ops::office::Role::Maker,
            )
            .await
            .unwrap();
            salur::ops::programme::add(&env.pool, PROGRAM, "Bantuan Sosial", "600000", true)
                .await
                .unwrap();
            salur::ops::budget::set(
                &env.pool,
                PROGRAM,
                PERIOD,
                OFFICE,
                Decimal::from(10_000_000),
            )
            .await
            .unwrap();
            let bank = |args: &[&str]| {
                env.spawn(
                    env.salur(&[&["bank-sim", "--bank", "002"], args].concat())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                )
            };
            let first = bank(&[]);
            let records: Vec<_> = (1..=3).map(valid_record).collect();
            let batch = submit::submit_records(
                &env.settings,
                &env.pool,
                "bansos.csv",
                &records,
                &BatchInfo {
                    office: OFFICE.into(),
                    program: PROGRAM.into(),
                    period: PERIOD.into(),
                    submitted_by: Some(Actor::new(Some("Yohanes Maker".into()), "maker")),
                },
            )
            .await
            .unwrap();
            assert_eq!(env.wait(batch).await.count(State::AwaitingApproval), 3);
            // The bank now pays and its answers are lost: salur still waits for them.
            drop(first);
            let _second = bank(&["--lost-answer-rate", "1"]);
            assert_eq!(approve(env, batch).await, 3);
            harness::retry_for_a_minute(async || {
                let paid: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM bank_sim.transfers WHERE status = 'ok'",
                )
                .fetch_one(env.ledger().await)
                .await?;
                anyhow::ensure!(paid == 3, "{paid} paid");
                Ok(())
            })
            .await
            .unwrap();
            let day = sim_statement::days(env.ledger().await, "002")
                .await
                .unwrap()[0];
            let s = sim_statement::statement(
                env.ledger().await,
                &StatementOptions {
                    bank: "002".into(),
                    date: day,
                    return_rate: 0.0,
                    return_after_days: 0,
                    seed: 1,
                },
            )
            .await
            .unwrap();
            let r = reconcile::reconcile(
                &env.pool,
                "002",
                "002.sta",
                s.to_mt940().as_bytes(),
                &auditor(),
            )
            .await
            .unwrap();
            assert_eq!(
                kinds(&r),
                BTreeMap::from([("not_disbursed".to_owned(), 3)]),
                "{r}"
            );
            assert_eq!(r.summary.matched, 0);
            assert!(
                r.exceptions
                    .iter()
                    .all(|e| e.detail.contains("transfer_requested")),
                "{r}"
            );
            let status = salur::ops::batch::status(&env.pool, batch).await.unwrap();
            assert_eq!(status.count(State::TransferRequested), 3, "{status}");
            assert_eq!(
                status.exceptions,
                BTreeMap::from([("not_disbursed".to_owned(), 3)])
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banks_transfer_returned_message_returns_records_once_and_the_statement_confirms_it() {
    use salur::bank::contract::{
        Money, ReturnedItem, TRANSFER_RETURNED, TransferReturned, VERSION,
    };
    use salur::broker::{Broker, Outgoing, names};
    harness::env()
        .pipeline()
        .run(async |env| {
            let records: Vec<_> = (1..=10).map(valid_record).collect();
            let batch = env.submit(&records, "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 10);
            let day = sim_statement::days(env.ledger().await, "002")
                .await
                .unwrap()[0];

            // Bank 009's user announces returns of bank 002's transfers: refused, parked.
            let (key, amount): (String, Decimal) = sqlx::query_as(
                "SELECT idempotency_key, amount FROM bank_sim.transfers ORDER BY item_id LIMIT 1",
            )
            .fetch_one(env.ledger().await)
            .await
            .unwrap();
            let notice = TransferReturned {
                v: VERSION,
                kind: TRANSFER_RETURNED.into(),
                bank_code: "002".into(),
                sent_at: chrono::Utc::now(),
                items: vec![ReturnedItem {
                    idempotency_key: key,
                    reference: None,
                    amount: Money {
                        value: format!("{amount:.2}"),
                        currency: "IDR".into(),
                    },
                    reason_code: "MD07".into(),
                    returned_on: day,
                }],
            };
            let intruder = salur::bank::users::add(&env.settings, &env.pool, "009", "test bank")
                .await
                .unwrap();
            let broker = Broker::connect(&intruder.settings(&env.settings).unwrap())
                .await
                .unwrap();
            broker
                .publisher()
                .await
                .unwrap()
                .publish_all_as(
                    &[Outgoing {
                        exchange: env.settings.name(names::BANK_REPLIES),
                        routing_key: format!("bank.009.{TRANSFER_RETURNED}"),
                        payload: serde_json::to_vec(&notice).unwrap(),
                    }],
                    &intruder.user,
                )
                .await
                .unwrap();
            broker.close().await;
            assert_eq!(env.settled_depth(names::DEAD_QUEUE, 1).await, 1);
            assert_eq!(env.wait(batch).await.count(State::Returned), 0);

            // Bank 002 returns 40 % of its transfers and says so.
            let out = env
                .salur(&[
                    "bank-sim",
                    "return",
                    "--bank",
                    "002",
                    "--date",
                    &day.to_string(),
                    "--return-rate",
                    "0.4",
                    "--seed",
                    "2",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let returned: i64 = sqlx::query_scalar("SELECT count(*) FROM bank_sim.returns")
                .fetch_one(env.ledger().await)
                .await
                .unwrap();
            assert!(returned > 0 && returned < 10, "{returned}");
            harness::retry_for_a_minute(async || {
                let n = salur::ops::batch::status(&env.pool, batch)
                    .await?
                    .count(State::Returned);
                anyhow::ensure!(n == returned, "{n} of {returned} returned");
                Ok(())
            })
            .await
            .unwrap();
            let status = env.wait(batch).await;
            assert!(status.totals.holds, "{status}");
            assert_eq!(
                status.amount(State::Returned),
                Decimal::from(returned * 600_000)
            );
            assert_eq!(
                count(
                    env,
                    "SELECT count(*) FROM record_returns WHERE reconciliation_id IS NULL"
                )
                .await,
                returned
            );

            // The day's statement lists them as credits: confirmed, not returned twice.
            let s = sim_statement::statement(
                env.ledger().await,
                &StatementOptions {
                    bank: "002".into(),
                    date: day,
                    return_rate: 0.0,
                    return_after_days: 0,
                    seed: 1,
                },
            )
            .await
            .unwrap();
            assert_eq!(s.sum(Direction::Credit).0 as i64, returned);
            let r = reconcile::reconcile(
                &env.pool,
                "002",
                "002.sta",
                s.to_mt940().as_bytes(),
                &auditor(),
            )
            .await
            .unwrap();
            assert_eq!(r.summary.exception_count, 0, "{r}");
            assert_eq!(r.summary.matched, 10);
            assert_eq!(r.summary.returned, 0);
            assert_eq!(
                count(
                    env,
                    "SELECT count(*) FROM reconciliation_lines WHERE outcome = 'return_confirmed'"
                )
                .await,
                returned
            );
            assert_eq!(
                count(env, "SELECT count(*) FROM record_returns").await,
                returned
            );
        })
        .await;
}
