//! Approval before transfer (issue 13), against the real PostgreSQL, RabbitMQ and bank-sim: a
//! programme that requires approval pays nothing before a checker approves the payment list as
//! it stands, within the budget; the wrong party tries at every step. The totals identity is
//! checked after every scenario.

use crate::harness::{self, TestEnv, valid_record};
use rust_decimal::Decimal;
use salur::bank::sim::settlements;
use salur::domain::Actor;
use salur::intake::RawRecord;
use salur::ops::approval::{self, ApprovalError, Checker};
use salur::ops::batch::{self, Totals};
use salur::ops::office::{self, NewToken, Role};
use salur::ops::submit::{self, BatchInfo};
use salur::store::State;
use uuid::Uuid;

const OFFICE: &str = "DINSOS-5371";
const PROGRAM: &str = "BANSOS";
const PERIOD: &str = "2026-Q4";
const MAKER: &str = "Yohanes Maker";
const CHECKER: &str = "Maria Checker";

fn idr(n: i64) -> Decimal {
    Decimal::from(n)
}

/// The office (with a maker token for [`MAKER`]), its programme (approval required,
/// Rp200.000 or Rp600.000) and its budget for the period. Returns the maker's token.
async fn setup(env: &TestEnv, budget: i64) -> String {
    let maker = office::add_for(
        &env.pool,
        OFFICE,
        "Dinas Sosial Kota Kupang",
        &NewToken {
            role: Role::Maker,
            person: Some(MAKER.into()),
            label: Some("maker-yohanes".into()),
        },
    )
    .await
    .unwrap();
    salur::ops::programme::add(&env.pool, PROGRAM, "Bantuan Sosial", "200000,600000", true)
        .await
        .unwrap();
    set_budget(env, budget).await;
    maker
}

/// A token of the office for `person` with `role`.
async fn token(env: &TestEnv, role: Role, person: &str) -> String {
    office::issue(
        &env.pool,
        OFFICE,
        &NewToken {
            role,
            person: Some(person.into()),
            label: Some(format!(
                "{}-{}",
                role.as_str(),
                person.split(' ').next().unwrap()
            )),
        },
    )
    .await
    .unwrap()
}

async fn set_budget(env: &TestEnv, amount: i64) {
    salur::ops::budget::set(&env.pool, PROGRAM, PERIOD, OFFICE, idr(amount))
        .await
        .unwrap();
}

/// A batch of the programme submitted by the maker.
async fn submit(env: &TestEnv, records: &[RawRecord]) -> Uuid {
    submit::submit_records(
        &env.settings,
        &env.pool,
        "bansos.csv",
        records,
        &BatchInfo {
            office: OFFICE.into(),
            program: PROGRAM.into(),
            period: PERIOD.into(),
            submitted_by: Some(maker()),
        },
    )
    .await
    .expect("submit")
}

fn maker() -> Actor {
    Actor::new(Some(MAKER.into()), "maker-yohanes")
}

fn checker(person: &str) -> Checker {
    Checker {
        person: person.into(),
        token_label: Some("checker-token".into()),
        office: Some(OFFICE.into()),
    }
}

/// Valid recipients, rows `from..from + n` (distinct NIKs).
fn recipients(from: u32, n: u32) -> Vec<RawRecord> {
    (from..from + n).map(valid_record).collect()
}

/// The identity of the batch and of the programme-period, which must hold.
async fn identity_holds(env: &TestEnv, batch: Uuid) -> Totals {
    let t = Totals::read(&env.pool, Some(batch), None).await.unwrap();
    assert!(t.holds, "batch {batch}: {t}");
    let p = batch::programme_totals(&env.pool, PROGRAM, PERIOD)
        .await
        .unwrap();
    assert!(p.holds, "{PROGRAM} {PERIOD}: {p}");
    t
}

/// Transfers the bank was asked for (bank_requests of kind transfer) naming `batch`'s records.
async fn transfer_requests(env: &TestEnv, batch: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM bank_requests q
         WHERE q.kind = 'transfer'
           AND EXISTS (SELECT 1 FROM records r WHERE r.batch_id = $1 AND r.id = ANY(q.record_ids))",
    )
    .bind(batch)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_paid_before_a_checker_approves_and_then_exactly_the_list_is_paid() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            setup(env, 10 * 600_000).await;
            let mut records = recipients(1, 5);
            let mut blocked = valid_record(6);
            blocked.mother_name = None;
            records.push(blocked);
            let batch = submit(env, &records).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::AwaitingApproval), 5, "{status}");
            assert_eq!(status.count(State::Blocked), 1, "{status}");
            // Not one transfer asked of any bank, none settled.
            assert_eq!(transfer_requests(env, batch).await, 0);
            assert!(settlements(env.ledger().await).await.unwrap().is_empty());
            let t = identity_holds(env, batch).await;
            assert_eq!(t.awaiting_approval.amount, idr(5 * 600_000));

            let list = approval::list(&env.pool, batch, Some(OFFICE))
                .await
                .unwrap();
            assert_eq!(list.records, 5);
            assert_eq!(list.total, idr(3_000_000));
            assert_eq!(list.per_bank["002"].records, 5);
            assert_eq!(list.per_amount["600000.00"].amount, idr(3_000_000));
            assert_eq!(list.budget.allocated, idr(6_000_000));
            assert_eq!(list.budget.used, idr(0));
            assert_eq!(list.budget.left_after, idr(3_000_000));
            assert_eq!(list.submitted_by.as_deref(), Some(MAKER));
            // Reading the list changes nothing.
            assert_eq!(
                approval::list(&env.pool, batch, Some(OFFICE))
                    .await
                    .unwrap()
                    .list_hash,
                list.list_hash
            );

            let decided = approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            assert_eq!((decided.records, decided.total), (5, idr(3_000_000)));
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 5, "{status}");
            assert_eq!(status.count(State::Blocked), 1, "{status}");
            let paid = settlements(env.ledger().await).await.unwrap();
            assert_eq!(paid.len(), 5);
            // Each paid record carries the approval; its approval row names the checker.
            let approved: Vec<(i64, Option<Uuid>)> = sqlx::query_as(
                "SELECT id, approval_id FROM records WHERE batch_id = $1 AND state = 'disbursed'",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert!(
                approved
                    .iter()
                    .all(|(_, a)| *a == Some(decided.approval_id))
            );
            let (person, n, total): (String, i32, Decimal) =
                sqlx::query_as("SELECT person, record_count, total FROM approvals WHERE id = $1")
                    .bind(decided.approval_id)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!((person.as_str(), n, total), (CHECKER, 5, idr(3_000_000)));
            let t = identity_holds(env, batch).await;
            assert_eq!(t.disbursed.amount, idr(3_000_000));
            assert_eq!(t.blocked.records, 1);
            // Nothing is left to approve.
            assert!(matches!(
                approval::approve(
                    &env.settings,
                    &env.pool,
                    batch,
                    &list.list_hash,
                    &checker(CHECKER)
                )
                .await,
                Err(ApprovalError::NothingToApprove(_))
            ));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_list_hash_is_refused_and_a_record_ready_later_needs_its_own_approval() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            setup(env, 10 * 600_000).await;
            let mut records = recipients(1, 3);
            let mut blocked = valid_record(4);
            blocked.mother_name = None;
            records.push(blocked);
            let batch = submit(env, &records).await;
            env.wait(batch).await;
            let seen = approval::list(&env.pool, batch, None).await.unwrap();
            assert_eq!(seen.records, 3);

            // The office fixes and replays the blocked record meanwhile: the list grows.
            let blocked_id: i64 = sqlx::query_scalar(
                "SELECT id FROM records WHERE batch_id = $1 AND state = 'blocked'",
            )
            .bind(batch)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            fix_and_replay(env, blocked_id, &[("mother_name", "Yohana Bili")]).await;
            env.wait(batch).await;
            let now = approval::list(&env.pool, batch, None).await.unwrap();
            assert_eq!(now.records, 4);
            assert_ne!(now.list_hash, seen.list_hash);

            // The checker approves what they saw: refused, nothing moves.
            let e = approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &seen.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap_err();
            let ApprovalError::StaleList {
                current, records, ..
            } = e
            else {
                panic!("{e}")
            };
            assert_eq!((current.as_str(), records), (now.list_hash.as_str(), 4));
            let status = batch::status(&env.pool, batch).await.unwrap();
            assert_eq!(status.count(State::AwaitingApproval), 4, "{status}");
            assert_eq!(transfer_requests(env, batch).await, 0);
            let none: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(none, 0);
            // A hash that is no hash at all.
            assert!(matches!(
                approval::approve(&env.settings, &env.pool, batch, "abc", &checker(CHECKER)).await,
                Err(ApprovalError::BadHash(_))
            ));
            identity_holds(env, batch).await;

            // Approving the list as it now stands pays all four.
            approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &now.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 4, "{status}");
            identity_holds(env, batch).await;
        })
        .await;
}

/// Corrects a blocked record as its office would and replays it.
async fn fix_and_replay(env: &TestEnv, id: i64, sets: &[(&str, &str)]) {
    use salur::ops::remediate::{self, Filter, Scope};
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let scope = Scope::Office(OFFICE.into());
    if !sets.is_empty() {
        let fixed = remediate::fix(&env.settings, &env.pool, &scope, &maker(), id, &sets)
            .await
            .unwrap();
        assert!(fixed.ready, "{fixed:?}");
    }
    let replayed = remediate::replay(
        &env.settings,
        &env.pool,
        &scope,
        &maker(),
        &Filter {
            ids: vec![id],
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(replayed.replayed_ids, [id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_over_budget_is_refused_with_the_figures_and_nothing_moves() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            // Room for two of the three.
            setup(env, 2 * 600_000).await;
            let batch = submit(env, &recipients(1, 3)).await;
            env.wait(batch).await;
            let list = approval::list(&env.pool, batch, None).await.unwrap();
            assert_eq!(list.budget.left_after, idr(-600_000));
            let e = approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap_err();
            let ApprovalError::OverBudget {
                allocated,
                used,
                list: total,
                ..
            } = &e
            else {
                panic!("{e}")
            };
            assert_eq!(
                (*allocated, *used, *total),
                (idr(1_200_000), idr(0), idr(1_800_000))
            );
            assert!(e.to_string().contains("Rp600.000 short"), "{e}");
            let status = batch::status(&env.pool, batch).await.unwrap();
            assert_eq!(status.count(State::AwaitingApproval), 3, "{status}");
            assert_eq!(transfer_requests(env, batch).await, 0);
            let approvals: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(approvals, 0);
            identity_holds(env, batch).await;

            // With the budget raised, the same list passes.
            set_budget(env, 3 * 600_000).await;
            let decided = approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            assert_eq!(decided.budget.unwrap().left_after, idr(0));
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 3, "{status}");
            identity_holds(env, batch).await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_approvals_that_together_exceed_the_budget_one_passes() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            // Room for three: each list has two.
            setup(env, 3 * 600_000).await;
            let a = submit(env, &recipients(1, 2)).await;
            let b = submit(env, &recipients(11, 2)).await;
            env.wait(a).await;
            env.wait(b).await;
            let la = approval::list(&env.pool, a, None).await.unwrap();
            let lb = approval::list(&env.pool, b, None).await.unwrap();
            // Each alone fits.
            assert!(la.budget.left_after >= Decimal::ZERO);
            assert!(lb.budget.left_after >= Decimal::ZERO);
            let (ca, cb) = (checker(CHECKER), checker("Agustinus Checker"));
            let (ra, rb) = tokio::join!(
                approval::approve(&env.settings, &env.pool, a, &la.list_hash, &ca),
                approval::approve(&env.settings, &env.pool, b, &lb.list_hash, &cb),
            );
            let passed = [ra.is_ok(), rb.is_ok()];
            assert_eq!(passed.iter().filter(|p| **p).count(), 1, "{ra:?} {rb:?}");
            let refused = if ra.is_ok() { rb } else { ra };
            assert!(
                matches!(refused, Err(ApprovalError::OverBudget { .. })),
                "{refused:?}"
            );
            let (paid_batch, held_batch) = if passed[0] { (a, b) } else { (b, a) };
            let paid = env.wait(paid_batch).await;
            assert_eq!(paid.count(State::Disbursed), 2, "{paid}");
            let held = env.wait(held_batch).await;
            assert_eq!(held.count(State::AwaitingApproval), 2, "{held}");
            assert_eq!(transfer_requests(env, held_batch).await, 0);
            let spent: Decimal = settlements(env.ledger().await)
                .await
                .unwrap()
                .iter()
                .map(|s| s.amount)
                .sum();
            assert!(spent <= idr(3 * 600_000));
            identity_holds(env, a).await;
            identity_holds(env, b).await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_list_goes_back_to_the_office_blocked_with_the_why_and_is_approved_anew() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            setup(env, 10 * 600_000).await;
            let batch = submit(env, &recipients(1, 2)).await;
            env.wait(batch).await;
            // The submitter may neither approve nor reject.
            let list = approval::list(&env.pool, batch, None).await.unwrap();
            assert!(matches!(
                approval::approve(
                    &env.settings,
                    &env.pool,
                    batch,
                    &list.list_hash,
                    &checker(" yohanes  MAKER ")
                )
                .await,
                Err(ApprovalError::OwnSubmission(_))
            ));
            assert!(matches!(
                approval::reject(&env.settings, &env.pool, batch, "no", &checker(MAKER)).await,
                Err(ApprovalError::OwnSubmission(_))
            ));
            assert!(matches!(
                approval::reject(&env.settings, &env.pool, batch, "  ", &checker(CHECKER)).await,
                Err(ApprovalError::NoReason)
            ));
            let decided = approval::reject(
                &env.settings,
                &env.pool,
                batch,
                "two recipients are not on the DTKS list",
                &checker(CHECKER),
            )
            .await
            .unwrap();
            assert_eq!(decided.records, 2);
            let rows = harness::rows(&env.pool, batch).await;
            for (_, state, codes) in &rows {
                assert_eq!(state, "blocked");
                assert_eq!(codes, &["APPROVAL_REJECTED"]);
            }
            let (why, person): (String, String) =
                sqlx::query_as("SELECT why, person FROM approvals WHERE id = $1")
                    .bind(decided.approval_id)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(
                (why.as_str(), person.as_str()),
                ("two recipients are not on the DTKS list", CHECKER)
            );
            identity_holds(env, batch).await;
            assert_eq!(transfer_requests(env, batch).await, 0);

            // Replayed, they wait on a new list, approved anew.
            let id: i64 = sqlx::query_scalar("SELECT min(id) FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            fix_and_replay(env, id, &[]).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::AwaitingApproval), 1, "{status}");
            let list = approval::list(&env.pool, batch, None).await.unwrap();
            approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 1, "{status}");
            assert_eq!(status.count(State::Blocked), 1, "{status}");
            identity_holds(env, batch).await;
        })
        .await;
}

/// A record's state and its last audit row's detail.
async fn state_and_last_detail(env: &TestEnv, id: i64) -> (String, serde_json::Value) {
    sqlx::query_as(
        "SELECT r.state, COALESCE(e.detail, 'null') FROM records r
         JOIN LATERAL (SELECT detail FROM record_events WHERE record_id = r.id
                       ORDER BY id DESC LIMIT 1) e ON true
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

async fn fix(env: &TestEnv, id: i64, sets: &[(&str, &str)]) -> salur::ops::remediate::FixOutcome {
    use salur::ops::remediate::{self, Scope};
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    remediate::fix(
        &env.settings,
        &env.pool,
        &Scope::Office(OFFICE.into()),
        &maker(),
        id,
        &sets,
    )
    .await
    .unwrap()
}

/// The dishonest clerk changes payees on a list waiting for approval and on one approved: each
/// change takes the record off the approved list, and nothing is paid for it until a checker
/// approves the new list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payee_change_after_approval_needs_a_new_approval_before_anything_is_paid() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            setup(env, 10 * 600_000).await;
            let batch = submit(env, &recipients(1, 3)).await;
            env.wait(batch).await;
            let ids: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY id")
                    .bind(batch)
                    .fetch_all(&env.pool)
                    .await
                    .unwrap();
            let seen = approval::list(&env.pool, batch, None).await.unwrap();

            // On the list waiting for approval: an inflated amount is never accepted …
            for inflated in ["50000000", "1200000"] {
                let refused = salur::ops::remediate::fix(
                    &env.settings,
                    &env.pool,
                    &salur::ops::remediate::Scope::Office(OFFICE.into()),
                    &maker(),
                    ids[0],
                    &[("amount".into(), inflated.into())],
                )
                .await
                .unwrap_err();
                assert!(refused.to_string().contains("amount"), "{refused}");
            }
            let (state, _) = state_and_last_detail(env, ids[0]).await;
            assert_eq!(state, "awaiting_approval");
            // … and an amount the programme pays changes the list.
            fix(env, ids[0], &[("amount", "200000")]).await;
            let (state, detail) = state_and_last_detail(env, ids[0]).await;
            assert_eq!(state, "awaiting_approval");
            assert_eq!(detail["action"], "payee_change");
            assert_eq!(detail["before"]["amount"], "600000");
            assert_eq!(detail["after"]["amount"], "200000");
            assert!(matches!(
                approval::approve(
                    &env.settings,
                    &env.pool,
                    batch,
                    &seen.list_hash,
                    &checker(CHECKER)
                )
                .await,
                Err(ApprovalError::StaleList { .. })
            ));
            let list = approval::list(&env.pool, batch, None).await.unwrap();
            assert_eq!(list.total, idr(1_400_000));
            assert_eq!(list.per_amount["200000.00"].records, 1);

            // Approved while no worker runs: the transfers wait on the queue.
            env.stop_services().await;
            approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            // After approval the clerk puts their own account on the second record.
            let own = "0021999988887777";
            let fixed = fix(
                env,
                ids[1],
                &[("account_number", own), ("mother_name", "Yohana Bili")],
            )
            .await;
            assert!(fixed.ready, "{fixed:?}");
            let (state, detail) = state_and_last_detail(env, ids[1]).await;
            assert_eq!(state, "blocked");
            assert_eq!(detail["action"], "payee_change");
            assert_eq!(detail["before"]["account_number"], serde_json::Value::Null);
            assert_eq!(detail["after"]["account_number"], "0021********7777");
            assert!(!detail.to_string().contains(own), "{detail}");
            let approval_id: Option<Uuid> =
                sqlx::query_scalar("SELECT approval_id FROM records WHERE id = $1")
                    .bind(ids[1])
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(approval_id, None);

            // The worker comes back: the approved, unchanged records are paid; not the changed one.
            env.start_worker();
            env.start_bank(salur::bank::sim::SimOptions::default());
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 2, "{status}");
            let paid: Vec<String> = settlements(env.ledger().await)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.item_id)
                .collect();
            assert!(!paid.contains(&ids[1].to_string()), "{paid:?}");
            identity_holds(env, batch).await;
            // Blocked by the payee change, it is parked like any blocked record: one message on
            // salur.blocked, which the replay below takes.
            assert_eq!(
                env.settled_depth(salur::broker::names::BLOCKED_QUEUE, 1)
                    .await,
                1
            );

            // Replayed, the bank confirms the new account; the record waits for a checker.
            fix_and_replay(env, ids[1], &[]).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::AwaitingApproval), 1, "{status}");
            assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 2);
            let list = approval::list(&env.pool, batch, None).await.unwrap();
            assert_eq!(list.records, 1);
            approval::approve(
                &env.settings,
                &env.pool,
                batch,
                &list.list_hash,
                &checker(CHECKER),
            )
            .await
            .unwrap();
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 3, "{status}");
            identity_holds(env, batch).await;
        })
        .await;
}

/// The dishonest clerk over the HTTP API, at every step: an inflated amount is blocked
/// AMOUNT_NOT_ALLOWED (and a fix to one is refused); their own account put on a record waits
/// for a checker; approving with their maker token is `not-a-checker`, with a checker token of
/// their own `own-submission`; an auditor and an admin are no checkers either; a stale hash is
/// 409; another office's checker does not see the batch. Nothing reaches the bank before the
/// checker approves, and every audit row a person wrote names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dishonest_clerk_fails_at_every_step_over_the_api() {
    use crate::harness::http::{CSV_TYPE, Server, csv_of, problem};
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            let maker_token = setup(env, 10 * 600_000).await;
            let clerk_as_checker = token(env, Role::Checker, MAKER).await;
            let checker_token = token(env, Role::Checker, CHECKER).await;
            let auditor = office::add(&env.pool, "BPK", "BPK RI", Role::Auditor)
                .await
                .unwrap();
            let admin = token(env, Role::Admin, "Admin Dinas").await;
            office::add_for(
                &env.pool,
                "DINSOS-3578",
                "Dinas Sosial Kota Surabaya",
                &NewToken {
                    role: Role::Maker,
                    person: Some("Budi Maker".into()),
                    label: None,
                },
            )
            .await
            .unwrap();
            let other_checker = office::issue(
                &env.pool,
                "DINSOS-3578",
                &NewToken {
                    role: Role::Checker,
                    person: Some("Siti Checker".into()),
                    label: None,
                },
            )
            .await
            .unwrap();
            let server = Server::start(env.settings.clone(), env.pool.clone()).await;

            // Row 1 valid; row 2 without the mother's name; row 3 inflated.
            let mut records = recipients(1, 3);
            records[1].mother_name = None;
            records[2].amount = Some("1200000".into());
            let r = server
                .request(
                    Method::POST,
                    &format!("/v1/batches?program={PROGRAM}&period={PERIOD}"),
                    Some(&maker_token),
                )
                .header("content-type", CSV_TYPE)
                .body(csv_of(&records))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let body: Value = r.json().await.unwrap();
            let batch: Uuid = body["batch_id"].as_str().unwrap().parse().unwrap();
            env.wait(batch).await;
            let rows = harness::rows(&env.pool, batch).await;
            assert_eq!(rows[0].1, "awaiting_approval");
            assert_eq!(rows[1].2, ["MOTHER_NAME_MISSING"]);
            assert_eq!(rows[2].2, ["AMOUNT_NOT_ALLOWED"]);
            let ids: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number")
                    .bind(batch)
                    .fetch_all(&env.pool)
                    .await
                    .unwrap();

            // The clerk "fixes" row 2 with an inflated amount: refused; with their own account
            // and the mother's name: accepted, replayed, and it waits for a checker.
            let patch = |id: i64, body: Value| {
                server
                    .request(Method::PATCH, &format!("/v1/records/{id}"), Some(&maker_token))
                    .json(&body)
                    .send()
            };
            let r = patch(ids[1], json!({"amount": "1200000", "mother_name": "Yohana Bili"}))
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
            let r = patch(
                ids[1],
                json!({"account_number": "0021999988887777", "mother_name": "Yohana Bili"}),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let r = server
                .request(Method::POST, &format!("/v1/records/{}/replay", ids[1]), Some(&maker_token))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            env.wait(batch).await;
            assert_eq!(harness::rows(&env.pool, batch).await[1].1, "awaiting_approval");

            // The list: anyone of the office may read it.
            let path = format!("/v1/batches/{batch}/approval");
            let r = server.get(&path, &maker_token).await;
            assert_eq!(r.status(), StatusCode::OK);
            let list: Value = r.json().await.unwrap();
            assert_eq!(list["records"], 2);
            assert_eq!(list["total"], "1200000.00");
            assert_eq!(list["budget"]["left_after"], "4800000.00");
            let hash = list["list_hash"].as_str().unwrap().to_owned();
            assert_eq!(server.get(&path, &other_checker).await.status(), StatusCode::NOT_FOUND);

            let post = |token: &str, body: Value| {
                server
                    .request(Method::POST, &path, Some(token))
                    .json(&body)
                    .send()
            };
            for (who, kind) in [
                (&maker_token, "not-a-checker"),
                (&auditor, "not-a-checker"),
                (&admin, "not-a-checker"),
                (&clerk_as_checker, "own-submission"),
            ] {
                let p = problem(post(who, json!({"list_hash": hash})).await.unwrap(), StatusCode::FORBIDDEN).await;
                assert_eq!(p["type"], format!("/problems/{kind}"), "{p}");
                let p = problem(
                    post(who, json!({"decision": "reject", "why": "x"})).await.unwrap(),
                    StatusCode::FORBIDDEN,
                )
                .await;
                assert_eq!(p["type"], format!("/problems/{kind}"), "{p}");
            }
            problem(
                post(&other_checker, json!({"list_hash": hash})).await.unwrap(),
                StatusCode::NOT_FOUND,
            )
            .await;
            let stale = "0".repeat(64);
            let p = problem(post(&checker_token, json!({"list_hash": stale})).await.unwrap(), StatusCode::CONFLICT).await;
            assert_eq!(p["type"], "/problems/stale-list");
            assert_eq!(p["current_list_hash"], hash.as_str());
            // Nothing has reached the bank.
            assert_eq!(transfer_requests(env, batch).await, 0);
            assert!(settlements(env.ledger().await).await.unwrap().is_empty());
            identity_holds(env, batch).await;

            // The checker approves what they saw.
            let r = post(&checker_token, json!({"list_hash": hash})).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let decided: Value = r.json().await.unwrap();
            assert_eq!(decided["person"], CHECKER);
            assert_eq!(decided["records"], 2);
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 2, "{status}");
            assert_eq!(status.count(State::Blocked), 1, "{status}");
            identity_holds(env, batch).await;

            // Every audit row a person wrote (submit, fix, replay, approval) names them.
            let unnamed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM record_events e JOIN records r ON r.id = e.record_id
                 WHERE r.batch_id = $1 AND (e.from_state IS NULL
                       OR e.detail->>'action' IN ('fix', 'replay', 'payee_change', 'approve', 'reject'))
                   AND (e.actor_person IS NULL OR e.actor_token IS NULL)",
            )
            .bind(batch)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(unnamed, 0);
            let approvers: Vec<(String, String)> = sqlx::query_as(
                "SELECT DISTINCT actor_person, actor_token FROM record_events
                 WHERE detail->>'action' = 'approve'",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(approvers, [(CHECKER.to_owned(), "checker-Maria".to_owned())]);
            let submitters: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT actor_person FROM record_events WHERE from_state IS NULL",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(submitters, [MAKER]);
            server.stop().await;
        })
        .await;
}

/// `salur batch approval | approve | reject` on the server's command line: the submitter's name
/// is refused, a stale hash too (exit 1, the reason on standard error); the checker's approval
/// releases the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_shows_the_list_and_approves_it_as_a_checker() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            setup(env, 10 * 600_000).await;
            let batch = submit(env, &recipients(1, 2)).await;
            env.wait(batch).await;
            let salur = |args: &[&str]| {
                std::process::Command::new(env!("CARGO_BIN_EXE_salur"))
                    .args(args)
                    .env("DATABASE_URL", &env.settings.database_url)
                    .env("SALUR_BANK_LEDGER_URL", env.settings.bank_ledger_url())
                    .env("AMQP_URL", &env.settings.amqp_url)
                    .env("METRICS_ADDR", "off")
                    .output()
                    .unwrap()
            };
            let id = batch.to_string();
            let out = salur(&["batch", "approval", &id]);
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(
                text.contains("2 records awaiting approval, Rp1.200.000 in total"),
                "{text}"
            );
            let out = salur(&["batch", "approval", &id, "--json"]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let hash = list["list_hash"].as_str().unwrap().to_owned();
            assert_eq!(list["records"], 2);

            let out = salur(&[
                "batch",
                "approve",
                &id,
                "--list-hash",
                &hash,
                "--person",
                MAKER,
            ]);
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("submitted this batch"), "{err}");
            let stale = "f".repeat(64);
            let out = salur(&[
                "batch",
                "approve",
                &id,
                "--list-hash",
                &stale,
                "--person",
                CHECKER,
            ]);
            assert_eq!(out.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&out.stderr).contains("changed since it was shown"));
            assert_eq!(transfer_requests(env, batch).await, 0);

            let out = salur(&[
                "batch",
                "approve",
                &id,
                "--list-hash",
                &hash,
                "--person",
                CHECKER,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(
                text.starts_with(&format!("approved by {CHECKER}: 2 records")),
                "{text}"
            );
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 2, "{status}");
            let out = salur(&["batch", "status", &id]);
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("the identity holds, to the rupiah"), "{text}");
        })
        .await;
}
