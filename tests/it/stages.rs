//! Each stage's step called directly, on a fresh database and without the broker: records in a
//! given state go in, and the test checks the outcome, the new state, the reasons, the audit
//! rows and the messages the step left in the outbox. One test per outcome; nothing polls.
//!
//! A record is brought to the state a test needs by the steps before it (account opening, the
//! bank's answer read from the outbox, …), never by writing its state by hand.

use crate::harness::{TestEnv, valid_record};
use salur::bank::contract::{
    BankReason, BankReply, BankRequest, ItemStatus, ReplyItem, RequestBody, VERSION,
};
use salur::broker::names;
use salur::config::Settings;
use salur::domain::Outcome;
use salur::intake::RawRecord;
use salur::messages::{ParkedRecord, Stage, StageMessage};
use salur::stages::{Input, Tally, replies, stage_message, transfer};
use serde_json::Value;
use uuid::Uuid;

/// A database of its own, retries as configured by `tune`.
async fn env_with(tune: impl FnOnce(&mut Settings)) -> TestEnv {
    TestEnv::database_only(tune).await
}

async fn env() -> TestEnv {
    env_with(|_| {}).await
}

/// Stores a batch (its records `received`) and returns its id and the record ids in row order.
/// The outbox is emptied, so that each step's messages are all the outbox holds after it.
async fn submit(env: &TestEnv, records: &[RawRecord]) -> (Uuid, Vec<i64>) {
    let batch = env.submit(records, "2026-Q4").await;
    let ids = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    take_outbox(env).await;
    (batch, ids)
}

/// One message the step left in the outbox.
#[derive(Debug)]
struct Sent {
    exchange: String,
    routing_key: String,
    payload: Value,
}

/// What the outbox holds, oldest first; empties it.
async fn take_outbox(env: &TestEnv) -> Vec<Sent> {
    let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
        "DELETE FROM outbox WHERE true RETURNING id, exchange, routing_key, payload",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    // Bank requests are sealed in the outbox (they carry personal data): opened as the relay
    // opens them.
    let ring = salur::store::sealed::keyring().unwrap();
    let mut sent: Vec<Sent> = rows
        .into_iter()
        .map(|(id, exchange, routing_key, payload)| {
            let m = salur::store::outbox::open(
                &ring,
                id,
                salur::broker::Outgoing {
                    exchange,
                    routing_key,
                    payload,
                },
            )
            .unwrap();
            Sent {
                exchange: m.exchange,
                routing_key: m.routing_key,
                payload: serde_json::from_slice(&m.payload).unwrap(),
            }
        })
        .collect();
    sent.sort_by_key(|s| s.routing_key.clone());
    sent
}

/// A record's state, reason codes and attempts.
async fn record(env: &TestEnv, id: i64) -> (String, Vec<String>, i32) {
    let (state, reasons, attempts): (String, Value, i32) =
        sqlx::query_as("SELECT state, reasons, attempts FROM records WHERE id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    (state, codes(&reasons), attempts)
}

/// A record's last audit row: from, to, reason codes, detail.
async fn last_event(env: &TestEnv, id: i64) -> (Option<String>, String, Vec<String>, Value) {
    let (from, to, reasons, detail): (Option<String>, String, Value, Option<Value>) =
        sqlx::query_as(
            "SELECT from_state, to_state, reasons, detail FROM record_events
             WHERE record_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    (from, to, codes(&reasons), detail.unwrap_or(Value::Null))
}

fn codes(reasons: &Value) -> Vec<String> {
    reasons
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `stage`'s step on `ids` in one transaction, as the consumer would.
async fn step(env: &TestEnv, stage: Stage, batch: Uuid, ids: &[i64]) -> Tally {
    let msg = StageMessage {
        v: salur::messages::VERSION,
        stage,
        batch_id: batch,
        record_ids: ids.to_vec(),
        attempt: None,
    };
    let mut tx = env.pool.begin().await.unwrap();
    let tally = salur::stages::handle_stage(&env.settings, &mut tx, stage, &msg)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tally
}

/// The one bank request among `sent`.
fn request(sent: &[Sent]) -> BankRequest {
    let requests: Vec<&Sent> = sent.iter().filter(|s| s.exchange == names::BANK).collect();
    assert_eq!(requests.len(), 1, "{sent:?}");
    serde_json::from_value(requests[0].payload.clone()).unwrap()
}

fn item_ids(req: &BankRequest) -> Vec<String> {
    holders(req).into_iter().map(|(id, _)| id).collect()
}

/// Each item of `req`: its id and the name the bank would give its account's holder.
fn holders(req: &BankRequest) -> Vec<(String, String)> {
    match &req.body {
        RequestBody::AccountOpen { items } => items
            .iter()
            .map(|i| (i.item_id.clone(), i.name.to_uppercase()))
            .collect(),
        RequestBody::AccountInquiry { items } => items
            .iter()
            .map(|i| (i.item_id.clone(), i.name.to_uppercase()))
            .collect(),
        RequestBody::Transfer { items } => items
            .iter()
            .map(|i| (i.item_id.clone(), i.account_name.clone()))
            .collect(),
    }
}

/// The bank's answer to `req`, one `item(id, holder's name)` per record.
fn reply(req: &BankRequest, item: impl Fn(&str, &str) -> ReplyItem) -> BankReply {
    BankReply {
        v: VERSION,
        request_id: req.request_id,
        bank_code: req.bank_code.clone(),
        kind: req.body.kind(),
        answered_at: chrono::Utc::now(),
        items: holders(req)
            .iter()
            .map(|(id, name)| item(id, name))
            .collect(),
    }
}

/// The bank's answer to `req` ([`reply`]), handled as sent by the bank's own RabbitMQ user.
async fn answer(env: &TestEnv, req: &BankRequest, item: impl Fn(&str, &str) -> ReplyItem) -> Tally {
    let reply = reply(req, item);
    let sender = salur::bank::users::user_name(&env.settings, &req.bank_code);
    let mut tx = env.pool.begin().await.unwrap();
    let tally = replies::handle(&env.settings, &mut tx, &reply, Some(&sender))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(tally.refused.is_empty(), "{:?}", tally.refused);
    tally
}

/// Done: the account opened in the holder's name (banks upper-case it), or the transfer paid.
fn ok(id: &str, holder: &str) -> ReplyItem {
    ReplyItem {
        item_id: id.to_owned(),
        status: ItemStatus::Ok,
        account_number: Some(format!("0021000{id:0>6}")),
        account_name: Some(holder.to_owned()),
        reference: Some(format!("REF-{id}")),
        reason: None,
    }
}

fn refused(id: &str, code: &str) -> ReplyItem {
    ReplyItem {
        status: ItemStatus::Rejected,
        account_number: None,
        account_name: None,
        reference: None,
        reason: Some(BankReason {
            code: code.to_owned(),
            message: "as the bank says".to_owned(),
        }),
        ..ok(id, "")
    }
}

fn transient(id: &str, _: &str) -> ReplyItem {
    ReplyItem {
        status: ItemStatus::Error,
        account_number: None,
        account_name: None,
        reference: None,
        ..ok(id, "")
    }
}

/// A batch of `records` brought through account opening and its bank's answer: `account_opened`.
async fn opened(env: &TestEnv, records: &[RawRecord]) -> (Uuid, Vec<i64>) {
    let (batch, ids) = submit(env, records).await;
    step(env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(env).await);
    answer(env, &req, ok).await;
    take_outbox(env).await;
    (batch, ids)
}

/// … and through verification: `verified`.
async fn verified(env: &TestEnv, records: &[RawRecord]) -> (Uuid, Vec<i64>) {
    let (batch, ids) = opened(env, records).await;
    step(env, Stage::Verification, batch, &ids).await;
    take_outbox(env).await;
    (batch, ids)
}

/// … and through transfer: `transfer_requested`, with the bank's transfer request.
async fn transfer_requested(env: &TestEnv, records: &[RawRecord]) -> (Uuid, Vec<i64>, BankRequest) {
    let (batch, ids) = verified(env, records).await;
    step(env, Stage::Transfer, batch, &ids).await;
    let req = request(&take_outbox(env).await);
    (batch, ids, req)
}

/// `stage` handled two records of `ids` at a time: the bank request each step sent.
async fn requested_by_pairs(
    env: &TestEnv,
    stage: Stage,
    batch: Uuid,
    ids: &[i64],
) -> Vec<BankRequest> {
    let mut requests = Vec::new();
    for pair in ids.chunks(2) {
        step(env, stage, batch, pair).await;
        requests.push(request(&take_outbox(env).await));
    }
    requests
}

fn one(tally: &Tally, stage: Stage, outcome: Outcome) {
    only(tally, stage, outcome, 1);
}

/// The tally decided `outcome` for `n` records and nothing else.
fn only(tally: &Tally, stage: Stage, outcome: Outcome, n: u64) {
    let decided: Vec<_> = tally.outcomes.iter().filter(|(_, n)| **n > 0).collect();
    assert_eq!(decided, [(&(stage, outcome), &n)], "{tally:?}");
}

fn parked(sent: &Sent) -> ParkedRecord {
    assert_eq!(sent.exchange, names::PARKED, "{sent:?}");
    serde_json::from_value(sent.payload.clone()).unwrap()
}

#[tokio::test]
async fn account_opening_advances_a_complete_record_and_asks_its_bank_to_open_an_account() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    let tally = step(&env, Stage::AccountOpening, batch, &ids).await;
    one(&tally, Stage::AccountOpening, Outcome::Advanced);
    assert_eq!(tally.received["BPNT"], 1);
    assert_eq!(
        record(&env, ids[0]).await,
        ("account_requested".into(), vec![], 0)
    );
    let (from, to, reasons, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("received"), "account_requested")
    );
    assert!(reasons.is_empty());
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "bank.002.account_open");
    assert_eq!(item_ids(&request(&sent)), [ids[0].to_string()]);
    env.cleanup().await;
}

#[tokio::test]
async fn account_opening_blocks_an_incomplete_record_with_a_reason_per_problem() {
    let env = env().await;
    let mut r = valid_record(1);
    r.nik = None;
    r.mother_name = None;
    let (batch, ids) = submit(&env, &[r]).await;
    let tally = step(&env, Stage::AccountOpening, batch, &ids).await;
    one(&tally, Stage::AccountOpening, Outcome::Blocked);
    let expected = vec!["NIK_MISSING".to_owned(), "MOTHER_NAME_MISSING".to_owned()];
    assert_eq!(
        record(&env, ids[0]).await,
        ("blocked".into(), expected.clone(), 0)
    );
    let (from, to, reasons, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("received"), "blocked")
    );
    assert_eq!(reasons, expected);
    // Parked on salur.blocked with its reasons; no bank is asked.
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "blocked");
    let p = parked(&sent[0]);
    assert_eq!(
        (p.record_id, p.stage, p.state.as_str()),
        (ids[0], Stage::AccountOpening, "blocked")
    );
    assert_eq!(p.reasons.len(), 2);
    env.cleanup().await;
}

#[tokio::test]
async fn an_account_the_bank_opened_goes_on_to_verification() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    let tally = answer(&env, &req, ok).await;
    one(&tally, Stage::AccountOpening, Outcome::AccountOpened);
    assert_eq!(
        record(&env, ids[0]).await,
        ("account_opened".into(), vec![], 0)
    );
    let (from, to, _, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_requested"), "account_opened")
    );
    assert_eq!(detail["request_id"], req.request_id.to_string());
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].exchange.as_str(), sent[0].routing_key.as_str()),
        (names::WORK, "verification")
    );
    assert_eq!(sent[0].payload["record_ids"], serde_json::json!(ids));
    env.cleanup().await;
}

/// An account-opening answer is checked against the key of the data last sent, kept on the
/// record: it opens no personal field (here the sealed values of all but one record are made
/// unreadable and their answers still apply), an answer to data sent before (another key)
/// opens nothing, and a record sent before the key was kept has it recomputed.
#[tokio::test]
async fn an_account_opening_answer_reads_no_personal_field_and_must_answer_the_data_last_sent() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1), valid_record(2), valid_record(3)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    let keys: Vec<String> = match &req.body {
        RequestBody::AccountOpen { items } => {
            items.iter().map(|i| i.idempotency_key.clone()).collect()
        }
        _ => panic!("not an account opening"),
    };
    let kept: Vec<Option<String>> =
        sqlx::query_scalar("SELECT open_key FROM records WHERE id = ANY($1) ORDER BY id")
            .bind(&ids)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(kept, keys.iter().cloned().map(Some).collect::<Vec<_>>());
    // Record 1: its personal fields cannot be opened any more (one flipped byte each).
    // Record 2: it was sent again since with other data (another key).
    // Record 3: sent before salur kept the key.
    sqlx::query(
        "WITH data AS (
             UPDATE record_data SET nik = set_byte(nik, 20, get_byte(nik, 20) # 1),
                                    name = set_byte(name, 20, get_byte(name, 20) # 1)
             WHERE id = $1
         )
         UPDATE records SET mother_name = set_byte(mother_name, 20, get_byte(mother_name, 20) # 1)
         WHERE id = $1",
    )
    .bind(ids[0])
    .execute(&env.pool)
    .await
    .unwrap();
    for (id, key) in [(ids[1], Some("another-key")), (ids[2], None)] {
        sqlx::query("UPDATE records SET open_key = $2 WHERE id = $1")
            .bind(id)
            .bind(key)
            .execute(&env.pool)
            .await
            .unwrap();
    }
    let tally = answer(&env, &req, ok).await;
    assert_eq!(tally.skipped, 1, "{tally:?}");
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM records WHERE id = ANY($1) ORDER BY id")
            .bind(&ids)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        ["account_opened", "account_requested", "account_opened"]
    );
    env.cleanup().await;
}

#[tokio::test]
async fn an_account_the_bank_refused_is_blocked_with_the_banks_reason() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    let tally = answer(&env, &req, |id, _| refused(id, "NIK_NOT_FOUND")).await;
    one(&tally, Stage::AccountOpening, Outcome::Blocked);
    assert_eq!(
        record(&env, ids[0]).await,
        ("blocked".into(), vec!["NIK_NOT_FOUND".into()], 0)
    );
    let (from, to, reasons, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_requested"), "blocked")
    );
    assert_eq!(reasons, ["NIK_NOT_FOUND"]);
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "blocked");
    assert_eq!(parked(&sent[0]).record_id, ids[0]);
    env.cleanup().await;
}

#[tokio::test]
async fn a_transient_bank_error_sends_the_record_back_to_where_the_lifecycle_says_with_a_retry() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    let tally = answer(&env, &req, transient).await;
    one(&tally, Stage::AccountOpening, Outcome::Retried);
    let tier = env.settings.retry_tier(1).name.clone();
    assert_eq!(tally.retries[&(Stage::AccountOpening, tier.clone())], 1);
    // Back to `received` (the lifecycle's way back from `account_requested`), one attempt
    // spent.
    assert_eq!(record(&env, ids[0]).await, ("received".into(), vec![], 1));
    let (from, to, reasons, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_requested"), "received")
    );
    assert!(reasons.is_empty());
    assert_eq!(detail["attempt"], 1);
    assert_eq!(detail["retry_in"], tier.as_str());
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].exchange, names::RETRY);
    assert_eq!(sent[0].routing_key, format!("{tier}.account_opening"));
    assert_eq!(sent[0].payload["record_ids"], serde_json::json!(ids));
    assert_eq!(sent[0].payload["attempt"], 1);
    env.cleanup().await;
}

#[tokio::test]
async fn a_transient_error_on_the_last_attempt_is_dead_and_parked() {
    let env = env_with(|s| s.max_attempts = 1).await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    let tally = answer(&env, &req, transient).await;
    one(&tally, Stage::AccountOpening, Outcome::Dead);
    assert_eq!(
        record(&env, ids[0]).await,
        ("dead".into(), vec!["RETRIES_EXHAUSTED".into()], 1)
    );
    let (from, to, reasons, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_requested"), "dead")
    );
    assert_eq!(reasons, ["RETRIES_EXHAUSTED"]);
    assert_eq!(detail["attempt"], 1);
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "dead");
    let p = parked(&sent[0]);
    assert_eq!((p.record_id, p.state.as_str()), (ids[0], "dead"));
    env.cleanup().await;
}

#[tokio::test]
async fn verification_advances_a_matching_name_claims_its_nik_and_hands_it_to_transfer() {
    let env = env().await;
    let (batch, ids) = opened(&env, &[valid_record(1)]).await;
    let tally = step(&env, Stage::Verification, batch, &ids).await;
    one(&tally, Stage::Verification, Outcome::Advanced);
    assert_eq!(record(&env, ids[0]).await, ("verified".into(), vec![], 0));
    let (from, to, _, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_opened"), "verified")
    );
    let claims: Vec<i64> = sqlx::query_scalar("SELECT record_id FROM recipient_claims")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(claims, ids);
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].exchange.as_str(), sent[0].routing_key.as_str()),
        (names::WORK, "transfer")
    );
    assert_eq!(sent[0].payload["record_ids"], serde_json::json!(ids));
    env.cleanup().await;
}

/// Makes the test's programme (BPNT) one whose payments wait for a checker's approval.
async fn require_approval(env: &TestEnv) {
    sqlx::query(
        "INSERT INTO programmes (code, name, amounts, approval_required)
         VALUES ('BPNT', 'Bantuan Pangan Non Tunai', '{600000}', true)
         ON CONFLICT (code) DO UPDATE SET approval_required = true",
    )
    .execute(&env.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn verification_holds_a_record_of_a_programme_that_requires_approval_and_sends_nothing() {
    let env = env().await;
    require_approval(&env).await;
    let (batch, ids) = opened(&env, &[valid_record(1)]).await;
    let tally = step(&env, Stage::Verification, batch, &ids).await;
    one(&tally, Stage::Verification, Outcome::HeldForApproval);
    assert_eq!(
        record(&env, ids[0]).await,
        ("awaiting_approval".into(), vec![], 0)
    );
    let (from, to, _, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_opened"), "awaiting_approval")
    );
    // Verified: the mother's maiden name, needed only to open the account, is gone.
    assert!(detail["mother_name"].as_str().is_some(), "{detail}");
    // The NIK is claimed (no second record can be paid for it), and nothing goes to the
    // transfer: no message at all, not even a parked one.
    let claims: Vec<i64> = sqlx::query_scalar("SELECT record_id FROM recipient_claims")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(claims, ids);
    assert!(take_outbox(&env).await.is_empty());
    // Not in flight: `batch status --wait` returns.
    let status = salur::ops::batch::status(&env.pool, batch).await.unwrap();
    assert_eq!(status.in_flight, 0);
    assert_eq!(status.totals.awaiting_approval.records, 1);
    assert!(status.totals.holds, "{}", status.totals);
    env.cleanup().await;
}

#[tokio::test]
async fn transfer_sends_a_record_without_approval_back_to_wait_for_one_and_asks_no_bank() {
    let env = env().await;
    // Verified while its programme required no approval; the programme requires one now.
    let (batch, ids) = verified(&env, &[valid_record(1)]).await;
    require_approval(&env).await;
    let tally = step(&env, Stage::Transfer, batch, &ids).await;
    one(&tally, Stage::Transfer, Outcome::HeldForApproval);
    assert_eq!(
        record(&env, ids[0]).await,
        ("awaiting_approval".into(), vec![], 0)
    );
    let (from, to, _, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("verified"), "awaiting_approval")
    );
    assert!(take_outbox(&env).await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn verification_blocks_a_name_the_bank_account_does_not_carry() {
    let env = env().await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    answer(&env, &req, |id, _| ok(id, "YOHANES BILI")).await;
    take_outbox(&env).await;
    let tally = step(&env, Stage::Verification, batch, &ids).await;
    one(&tally, Stage::Verification, Outcome::Blocked);
    assert_eq!(
        record(&env, ids[0]).await,
        ("blocked".into(), vec!["NAME_MISMATCH".into()], 0)
    );
    let (from, to, reasons, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_opened"), "blocked")
    );
    assert_eq!(reasons, ["NAME_MISMATCH"]);
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "blocked");
    assert_eq!(parked(&sent[0]).stage, Stage::Verification);
    env.cleanup().await;
}

#[tokio::test]
async fn verification_rejects_the_second_claimant_of_a_nik_and_parks_nothing() {
    let env = env().await;
    // Rows 1 and 2 carry the same NIK (and name, so that both pass the name check).
    let mut second = valid_record(1);
    second.row = 2;
    let (batch, ids) = submit(&env, &[valid_record(1), second]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let req = request(&take_outbox(&env).await);
    answer(&env, &req, ok).await;
    take_outbox(&env).await;
    let tally = step(&env, Stage::Verification, batch, &ids).await;
    assert_eq!(tally.outcome(Stage::Verification, Outcome::Advanced), 1);
    assert_eq!(tally.outcome(Stage::Verification, Outcome::Rejected), 1);
    assert_eq!(record(&env, ids[0]).await.0, "verified");
    assert_eq!(
        record(&env, ids[1]).await,
        ("rejected".into(), vec!["DOUBLE_RECIPIENT".into()], 0)
    );
    let (from, to, _, _) = last_event(&env, ids[1]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_opened"), "rejected")
    );
    let message: String =
        sqlx::query_scalar("SELECT reasons->0->>'message' FROM records WHERE id = $1")
            .bind(ids[1])
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(
        message.contains(&format!("by this office (record {})", ids[0])),
        "{message}"
    );
    // Rejected is final, not parked: only the transfer work of the first record is sent.
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "transfer");
    assert_eq!(sent[0].payload["record_ids"], serde_json::json!([ids[0]]));
    env.cleanup().await;
}

#[tokio::test]
async fn transfer_advances_and_asks_the_bank_to_pay_with_the_records_key() {
    let env = env().await;
    let (batch, ids) = verified(&env, &[valid_record(1)]).await;
    let tally = step(&env, Stage::Transfer, batch, &ids).await;
    one(&tally, Stage::Transfer, Outcome::Advanced);
    assert_eq!(
        record(&env, ids[0]).await,
        ("transfer_requested".into(), vec![], 0)
    );
    let (from, to, _, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("verified"), "transfer_requested")
    );
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].routing_key, "bank.002.transfer");
    let RequestBody::Transfer { items } = request(&sent).body else {
        panic!("not a transfer: {sent:?}")
    };
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].idempotency_key,
        transfer::idempotency_key(batch, ids[0])
    );
    assert_eq!(items[0].amount.value, "600000.00");
    env.cleanup().await;
}

#[tokio::test]
async fn a_transfer_the_bank_paid_is_disbursed() {
    let env = env().await;
    let (_, ids, req) = transfer_requested(&env, &[valid_record(1)]).await;
    let tally = answer(&env, &req, ok).await;
    one(&tally, Stage::Transfer, Outcome::Disbursed);
    assert_eq!(
        tally.disbursed["BPNT"],
        rust_decimal::Decimal::from(600_000)
    );
    assert_eq!(record(&env, ids[0]).await, ("disbursed".into(), vec![], 0));
    let (from, to, _, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("transfer_requested"), "disbursed")
    );
    assert_eq!(detail["request_id"], req.request_id.to_string());
    assert!(take_outbox(&env).await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn a_transfer_the_bank_refused_fails_parks_nothing_and_gives_up_the_nik_claim() {
    let env = env().await;
    let (_, ids, req) = transfer_requested(&env, &[valid_record(1)]).await;
    let tally = answer(&env, &req, |id, _| refused(id, "ACCOUNT_CLOSED")).await;
    one(&tally, Stage::Transfer, Outcome::Failed);
    assert_eq!(
        record(&env, ids[0]).await,
        ("failed".into(), vec!["ACCOUNT_CLOSED".into()], 0)
    );
    let (from, to, reasons, _) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("transfer_requested"), "failed")
    );
    assert_eq!(reasons, ["ACCOUNT_CLOSED"]);
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM recipient_claims")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        claims, 0,
        "a failed transfer's NIK may be paid by a corrected record"
    );
    assert!(take_outbox(&env).await.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn a_transient_transfer_error_sends_the_record_back_to_verified() {
    let env = env().await;
    let (_, ids, req) = transfer_requested(&env, &[valid_record(1)]).await;
    let tally = answer(&env, &req, transient).await;
    one(&tally, Stage::Transfer, Outcome::Retried);
    assert_eq!(record(&env, ids[0]).await, ("verified".into(), vec![], 1));
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let tier = &env.settings.retry_tier(1).name;
    assert_eq!(sent[0].routing_key, format!("{tier}.transfer"));
    env.cleanup().await;
}

#[tokio::test]
async fn a_late_answer_for_a_transfer_given_up_on_is_applied_as_the_bank_decided() {
    let env = env_with(|s| {
        s.stage_max_attempts.insert(Stage::Transfer, 1);
    })
    .await;
    let (_, ids, req) = transfer_requested(&env, &[valid_record(1)]).await;
    // The bank fails once: the record's only attempt is spent, it is dead.
    answer(&env, &req, transient).await;
    assert_eq!(record(&env, ids[0]).await.0, "dead");
    take_outbox(&env).await;
    // Then it answers the same request: paid. The bank's word decides.
    let tally = answer(&env, &req, ok).await;
    one(&tally, Stage::Transfer, Outcome::Disbursed);
    assert_eq!(tally.skipped, 0);
    assert_eq!(record(&env, ids[0]).await.0, "disbursed");
    let (from, to, _, detail) = last_event(&env, ids[0]).await;
    assert_eq!((from.as_deref(), to.as_str()), (Some("dead"), "disbursed"));
    assert_eq!(detail["late_answer"], true);
    env.cleanup().await;
}

#[tokio::test]
async fn an_answer_for_a_record_no_longer_waiting_changes_nothing() {
    let env = env().await;
    let (_, ids, req) = transfer_requested(&env, &[valid_record(1)]).await;
    answer(&env, &req, ok).await;
    let tally = answer(&env, &req, |id, _| refused(id, "ACCOUNT_CLOSED")).await;
    assert!(tally.outcomes.is_empty(), "{tally:?}");
    assert_eq!(tally.skipped, 1);
    assert_eq!(record(&env, ids[0]).await.0, "disbursed");
    env.cleanup().await;
}

#[tokio::test]
async fn the_sweeper_sends_an_unanswered_bank_request_again_with_the_same_key() {
    let env = env_with(|s| s.bank_timeout = std::time::Duration::from_millis(1)).await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    step(&env, Stage::AccountOpening, batch, &ids).await;
    let first = request(&take_outbox(&env).await);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let sweep = salur::sweeper::sweep_once(&env.settings, &env.pool).await;
    assert!(sweep.failures.is_empty(), "{:?}", sweep.failures);
    assert_eq!((sweep.resent_requests, sweep.resent_stage), (1, 0));
    one(&sweep.tally, Stage::AccountOpening, Outcome::Resent);
    assert_eq!(
        sweep.tally.retries[&(Stage::AccountOpening, "bank_timeout".to_owned())],
        1
    );
    // Same state, one attempt spent, the audit row says why.
    assert_eq!(
        record(&env, ids[0]).await,
        ("account_requested".into(), vec![], 1)
    );
    let (from, to, _, detail) = last_event(&env, ids[0]).await;
    assert_eq!(
        (from.as_deref(), to.as_str()),
        (Some("account_requested"), "account_requested")
    );
    assert_eq!(detail["attempt"], 1);
    let again = request(&take_outbox(&env).await);
    assert_ne!(again.request_id, first.request_id);
    let key = |r: &BankRequest| match &r.body {
        RequestBody::AccountOpen { items } => items[0].idempotency_key.clone(),
        _ => panic!("not an account opening"),
    };
    assert_eq!(key(&again), key(&first), "the bank opens one account");
    env.cleanup().await;
}

#[tokio::test]
async fn the_sweeper_sends_a_lost_stage_message_again() {
    let env = env_with(|s| s.stale_after = std::time::Duration::from_millis(1)).await;
    let (batch, ids) = submit(&env, &[valid_record(1)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let sweep = salur::sweeper::sweep_once(&env.settings, &env.pool).await;
    assert_eq!((sweep.resent_requests, sweep.resent_stage), (0, 1));
    one(&sweep.tally, Stage::AccountOpening, Outcome::Resent);
    assert_eq!(record(&env, ids[0]).await, ("received".into(), vec![], 1));
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let expected = stage_message(&env.settings, Stage::AccountOpening, batch, ids.clone());
    assert_eq!(
        (sent[0].exchange.as_str(), sent[0].routing_key.as_str()),
        (expected.exchange.as_str(), expected.routing_key.as_str())
    );
    assert_eq!(sent[0].payload["record_ids"], serde_json::json!(ids));
    env.cleanup().await;
}

#[test]
fn every_outcome_a_stage_decides_has_its_test_here() {
    // The tests above cover each outcome a stage decides (Stage::outcomes); a new outcome
    // needs its test here.
    let covered = [
        (Stage::AccountOpening, Outcome::Advanced),
        (Stage::AccountOpening, Outcome::AccountOpened),
        (Stage::AccountOpening, Outcome::Blocked),
        (Stage::AccountOpening, Outcome::Retried),
        (Stage::AccountOpening, Outcome::Resent),
        (Stage::AccountOpening, Outcome::Dead),
        (Stage::Verification, Outcome::Advanced),
        (Stage::Verification, Outcome::HeldForApproval),
        (Stage::Verification, Outcome::Blocked),
        (Stage::Verification, Outcome::Rejected),
        (Stage::Transfer, Outcome::Advanced),
        (Stage::Transfer, Outcome::HeldForApproval),
        (Stage::Transfer, Outcome::Disbursed),
        (Stage::Transfer, Outcome::Failed),
        (Stage::Transfer, Outcome::Retried),
    ];
    for stage in Stage::ALL {
        for outcome in stage.outcomes() {
            let untested_but_shared = matches!(
                (stage, outcome),
                // The same code paths as account opening's (Step::retry_or_dead, the sweeper).
                (Stage::Transfer, Outcome::Resent | Outcome::Dead)
            );
            assert!(
                untested_but_shared || covered.contains(&(stage, *outcome)),
                "{stage} {outcome} has no test in tests/it/stages.rs"
            );
        }
    }
}

/// The names in single quotes of a constraint's or a function's text, as PostgreSQL prints it
/// (`state = ANY (ARRAY['received'::text, …])`).
fn quoted_names(definition: &str) -> std::collections::BTreeSet<String> {
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_databases_state_check_and_stopped_records_agree_with_the_lifecycle_table() {
    // A state added to the lifecycle table needs its migration too: the records' CHECK
    // constraint, and the stopped records the counters' trigger keeps apart (its CHECK and
    // each state list of the trigger). This test says which one is missing.
    use salur::store::State;
    let env = env().await;
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.conrelid = 'records'::regclass AND c.contype = 'c' AND a.attname = 'state'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let names = |keep: fn(State) -> bool| -> std::collections::BTreeSet<String> {
        State::names_where(keep)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        quoted_names(&check),
        names(|_| true),
        "records.state CHECK: {check}"
    );
    let stopped: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         WHERE c.conrelid = 'stopped_records'::regclass AND c.contype = 'c'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(quoted_names(&stopped), names(State::stopped), "{stopped}");
    let trigger: String =
        sqlx::query_scalar("SELECT pg_get_functiondef('records_counted'::regproc)")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let lists: Vec<&str> = trigger
        .split("IN (")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|list| list.contains('\''))
        .collect();
    assert_eq!(lists.len(), 3, "{trigger}");
    for list in lists {
        assert_eq!(quoted_names(list), names(State::stopped), "{list}");
    }
}

/// The audit rows of record `id` that moved it from `from` to `to`.
async fn moves(env: &TestEnv, id: i64, from: &str, to: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM record_events WHERE record_id = $1 AND from_state = $2 AND to_state = $3",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_step_whose_records_another_transaction_moved_after_it_read_them_writes_nothing() {
    let env = env().await;
    let (batch, ids) = verified(&env, &[valid_record(1), valid_record(2)]).await;
    // A step reads the records (without locking them) …
    let mut late = salur::stages::Step::of(&env.settings, Stage::Transfer);
    let mut tx = env.pool.begin().await.unwrap();
    let rows = late.read(&mut tx, &ids).await.unwrap();
    assert_eq!(rows.len(), 2);
    // … the same message, handled at the same moment elsewhere, moves them and commits …
    step(&env, Stage::Transfer, batch, &ids).await;
    // … and the first step's decisions, written now, are refused whole.
    for row in &rows {
        late.decide(row, Outcome::Advanced, Vec::new());
    }
    late.send(salur::stages::stage_message(
        &env.settings,
        Stage::Transfer,
        batch,
        ids.clone(),
    ));
    let Err(sqlx::Error::Database(e)) = late.write(&mut tx).await else {
        panic!("a step on records changed since it read them was written");
    };
    assert_eq!(e.code().as_deref(), Some("40001"), "{e}");
    assert!(salur::stages::transient(&sqlx::Error::Database(e)));
    drop(tx);
    for id in &ids {
        assert_eq!(moves(&env, *id, "verified", "transfer_requested").await, 1);
        assert_eq!(record(&env, *id).await.0, "transfer_requested");
    }
    // One transfer request (the committed step's), nothing of the refused one.
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(item_ids(&request(&sent)).len(), 2);
    env.cleanup().await;
}

#[tokio::test]
async fn the_same_message_handled_twice_at_once_moves_each_record_once() {
    let env = env().await;
    let records: Vec<RawRecord> = (1..=40).map(valid_record).collect();
    let (batch, ids) = verified(&env, &records).await;
    let body = serde_json::to_vec(&StageMessage {
        v: salur::messages::VERSION,
        stage: Stage::Transfer,
        batch_id: batch,
        record_ids: ids.clone(),
        attempt: None,
    })
    .unwrap();
    let input = Input::Stage(Stage::Transfer);
    let handle = || salur::stages::process_one(&env.settings, &env.pool, input, &body, None);
    let (a, b, c) = tokio::join!(handle(), handle(), handle());
    let advanced: u64 = [a, b, c]
        .into_iter()
        .map(|t| t.unwrap().outcomes.values().sum::<u64>())
        .sum();
    assert_eq!(advanced, 40, "each record is decided by one of the three");
    for id in &ids {
        assert_eq!(moves(&env, *id, "verified", "transfer_requested").await, 1);
    }
    // Every record is asked to be paid exactly once.
    let mut asked: Vec<String> = take_outbox(&env)
        .await
        .iter()
        .filter(|s| s.exchange == names::BANK)
        .flat_map(|s| {
            let req: BankRequest = serde_json::from_value(s.payload.clone()).unwrap();
            item_ids(&req)
        })
        .collect();
    asked.sort();
    let mut expected: Vec<String> = ids.iter().map(i64::to_string).collect();
    expected.sort();
    assert_eq!(asked, expected);
    env.cleanup().await;
}

#[tokio::test]
async fn a_step_is_refused_when_its_record_changed_in_place_after_it_read_it() {
    let env = env().await;
    let (batch, ids) = verified(&env, &[valid_record(1)]).await;
    let mut late = salur::stages::Step::of(&env.settings, Stage::Transfer);
    let mut tx = env.pool.begin().await.unwrap();
    let rows = late.read(&mut tx, &ids).await.unwrap();
    // Another transaction changes the record without moving it (as the sweeper's re-send
    // counts an attempt and leaves the state), and commits.
    sqlx::query("UPDATE records SET attempts = attempts + 1 WHERE id = $1")
        .bind(ids[0])
        .execute(&env.pool)
        .await
        .unwrap();
    late.decide(&rows[0], Outcome::Advanced, Vec::new());
    let Err(sqlx::Error::Database(e)) = late.write(&mut tx).await else {
        panic!("a decision made from an older version of the record was written");
    };
    assert_eq!(e.code().as_deref(), Some("40001"), "{e}");
    drop(tx);
    assert_eq!(record(&env, ids[0]).await, ("verified".into(), vec![], 1));
    // Handled again, it is decided from what is there now.
    let tally = step(&env, Stage::Transfer, batch, &ids).await;
    one(&tally, Stage::Transfer, Outcome::Advanced);
    assert_eq!(
        moves(&env, ids[0], "verified", "transfer_requested").await,
        1
    );
    env.cleanup().await;
}

#[tokio::test]
async fn the_records_of_one_bank_request_take_consecutive_ids_and_a_steps_audit_names_them_as_a_range()
 {
    let env = env().await;
    // Rows alternate between two banks: one account-opening request each.
    let records: Vec<RawRecord> = (1..=6)
        .map(|n| {
            let mut r = valid_record(n);
            if n % 2 == 0 {
                r.bank_code = Some("008".into());
            }
            r
        })
        .collect();
    let (batch, ids) = submit(&env, &records).await;
    // In row order: rows 1, 3 and 5 (bank 002) took the first three ids, rows 2, 4 and 6
    // (bank 008) the next three.
    let first = *ids.iter().min().unwrap();
    assert_eq!(
        ids,
        [first, first + 3, first + 1, first + 4, first + 2, first + 5]
    );
    // A step on bank 002's records (one run of ids), then on two of bank 008's that are not
    // neighbours.
    let bri = vec![ids[0], ids[2], ids[4]];
    let apart = vec![ids[1], ids[5]];
    step(&env, Stage::AccountOpening, batch, &bri).await;
    step(&env, Stage::AccountOpening, batch, &apart).await;
    let audit: Vec<(Vec<i64>, Option<String>)> = sqlx::query_as(
        "SELECT record_ids, record_range::text FROM audit_chunks
         WHERE from_state = 'received' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            (bri.clone(), Some(format!("[{first},{})", first + 3))),
            (apart.clone(), None),
        ]
    );
    // Through either index, a record's history is one query.
    for id in bri.iter().chain(&apart) {
        let history: Vec<(Option<String>, String)> =
            sqlx::query_as("SELECT from_state, to_state FROM record_events_of($1) ORDER BY id")
                .bind(id)
                .fetch_all(&env.pool)
                .await
                .unwrap();
        assert_eq!(
            history,
            [
                (None, "received".to_owned()),
                (Some("received".to_owned()), "account_requested".to_owned()),
            ],
            "record {id}"
        );
    }
    env.cleanup().await;
}

#[tokio::test]
async fn messages_of_a_stage_handled_together_write_what_each_would_alone_and_refuse_a_record_named_twice()
 {
    let env = env().await;
    let records: Vec<RawRecord> = (1..=6).map(valid_record).collect();
    let (batch, ids) = submit(&env, &records).await;
    let body = |ids: &[i64]| {
        serde_json::to_vec(&StageMessage {
            v: salur::messages::VERSION,
            stage: Stage::AccountOpening,
            batch_id: batch,
            record_ids: ids.to_vec(),
            attempt: None,
        })
        .unwrap()
    };
    let chunks: Vec<&[i64]> = ids.chunks(2).collect();
    let bodies: Vec<Vec<u8>> = chunks.iter().map(|c| body(c)).collect();

    // A record named by two messages, or a message that does not decode: nothing is written,
    // and the caller handles them one by one.
    async fn group(env: &TestEnv, bodies: &[&[u8]]) -> Option<Vec<Tally>> {
        let messages: Vec<(&[u8], Option<&str>)> = bodies.iter().map(|b| (*b, None)).collect();
        salur::stages::process_group(
            &env.settings,
            &env.pool,
            Input::Stage(Stage::AccountOpening),
            &messages,
        )
        .await
    }
    assert!(group(&env, &[&bodies[0], &bodies[0]]).await.is_none());
    assert!(group(&env, &[&bodies[0], b"{not json"]).await.is_none());
    for id in &ids {
        assert_eq!(record(&env, *id).await.0, "received");
    }
    assert!(take_outbox(&env).await.is_empty());

    let all: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let tallies = group(&env, &all)
        .await
        .expect("three distinct messages are handled together");
    assert_eq!(tallies.len(), 3);
    for tally in &tallies {
        assert_eq!(tally.outcome(Stage::AccountOpening, Outcome::Advanced), 2);
    }
    for id in &ids {
        assert_eq!(moves(&env, *id, "received", "account_requested").await, 1);
        assert_eq!(
            record(&env, *id).await,
            ("account_requested".into(), vec![], 0)
        );
    }
    // Each message's own bank requests: none names records of two messages.
    let sent = take_outbox(&env).await;
    let mut asked: Vec<String> = Vec::new();
    for s in sent.iter().filter(|s| s.exchange == names::BANK) {
        let req: BankRequest = serde_json::from_value(s.payload.clone()).unwrap();
        let items = item_ids(&req);
        assert!(
            chunks.iter().any(|c| items
                .iter()
                .all(|i| c.iter().any(|id| id.to_string() == *i))),
            "a request names the records of one message only: {items:?}"
        );
        asked.extend(items);
    }
    asked.sort();
    let mut expected: Vec<String> = ids.iter().map(i64::to_string).collect();
    expected.sort();
    assert_eq!(asked, expected, "every record asked for once");
    env.cleanup().await;
}

#[tokio::test]
async fn bank_answers_handled_together_are_each_checked_and_applied_as_alone() {
    let env = env().await;
    let records: Vec<RawRecord> = (1..=6).map(valid_record).collect();
    let (batch, ids) = verified(&env, &records).await;
    // Three transfer requests of two records each.
    let requests = requested_by_pairs(&env, Stage::Transfer, batch, &ids).await;
    let bank_user = salur::bank::users::user_name(&env.settings, &requests[0].bank_code);
    let body = |r: &BankReply| serde_json::to_vec(r).unwrap();
    // Both paid; one refused and one failing for a while; both paid, but said by a RabbitMQ
    // user that is no bank's.
    let paid = body(&reply(&requests[0], ok));
    let mixed = body(&reply(&requests[1], |id, name| {
        if id == ids[2].to_string() {
            refused(id, "ACCOUNT_CLOSED")
        } else {
            transient(id, name)
        }
    }));
    let forged = body(&reply(&requests[2], ok));
    async fn group(env: &TestEnv, messages: &[(&[u8], Option<&str>)]) -> Option<Vec<Tally>> {
        salur::stages::process_group(&env.settings, &env.pool, Input::BankReplies, messages).await
    }

    // The same answer twice (a record named twice), or an answer with a bank's return of a
    // payment: nothing is written, the caller handles them one by one.
    let returned = br#"{"v":1,"kind":"transfer_returned"}"#;
    assert!(
        group(
            &env,
            &[(&paid, Some(&bank_user)), (&paid, Some(&bank_user))]
        )
        .await
        .is_none()
    );
    assert!(
        group(
            &env,
            &[(&paid, Some(&bank_user)), (returned, Some(&bank_user))]
        )
        .await
        .is_none()
    );
    for id in &ids {
        assert_eq!(record(&env, *id).await.0, "transfer_requested");
    }

    let tallies = group(
        &env,
        &[
            (&paid, Some(&bank_user)),
            (&mixed, Some(&bank_user)),
            (&forged, Some("somebody")),
        ],
    )
    .await
    .expect("three answers naming distinct records are handled together");
    assert_eq!(tallies.len(), 3);
    assert_eq!(tallies[0].outcome(Stage::Transfer, Outcome::Disbursed), 2);
    assert_eq!(
        tallies[0].disbursed["BPNT"],
        rust_decimal::Decimal::from(1_200_000)
    );
    assert!(tallies[0].refused.is_empty());
    assert_eq!(tallies[1].outcome(Stage::Transfer, Outcome::Failed), 1);
    assert_eq!(tallies[1].outcome(Stage::Transfer, Outcome::Retried), 1);
    assert!(tallies[1].disbursed.is_empty());
    // The forged answer changes nothing: each of its items is refused, with the reason.
    assert!(
        tallies[2].outcomes.values().all(|n| *n == 0),
        "{:?}",
        tallies[2]
    );
    let refused: Vec<(&str, &str)> = tallies[2]
        .refused
        .iter()
        .map(|r| (r.item_id.as_str(), r.reason))
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(
        refused
            .iter()
            .all(|(_, reason)| *reason == "UNKNOWN_SENDER")
    );

    for id in &ids[0..2] {
        assert_eq!(record(&env, *id).await.0, "disbursed");
        assert_eq!(moves(&env, *id, "transfer_requested", "disbursed").await, 1);
    }
    assert_eq!(
        record(&env, ids[2]).await,
        ("failed".into(), vec!["ACCOUNT_CLOSED".into()], 0)
    );
    assert_eq!(record(&env, ids[3]).await, ("verified".into(), vec![], 1));
    for id in &ids[4..6] {
        assert_eq!(record(&env, *id).await.0, "transfer_requested");
    }
    // The refused transfer gave up its NIK's claim; the others keep theirs.
    let claimed: Vec<i64> =
        sqlx::query_scalar("SELECT record_id FROM recipient_claims ORDER BY record_id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let mut kept: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[2]).collect();
    kept.sort();
    assert_eq!(claimed, kept);
    // The one outgoing message: the transient record's retry.
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].routing_key,
        format!("{}.transfer", env.settings.retry_tier(1).name)
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_group_of_bank_answers_the_database_refuses_writes_nothing_not_even_a_released_claim() {
    let env = env().await;
    let records: Vec<RawRecord> = (1..=4).map(valid_record).collect();
    let (batch, ids) = verified(&env, &records).await;
    let requests = requested_by_pairs(&env, Stage::Transfer, batch, &ids).await;
    let bank_user = salur::bank::users::user_name(&env.settings, &requests[0].bank_code);
    let body = |r: &BankReply| serde_json::to_vec(r).unwrap();
    // The first answer refuses one transfer (its handler gives the NIK's claim up as it goes)
    // and pays the other; the second fails one for a while (a retry to send) and pays the
    // other, but the database refuses that payment.
    let refusing = body(&reply(&requests[0], |id, name| {
        if id == ids[0].to_string() {
            refused(id, "ACCOUNT_CLOSED")
        } else {
            ok(id, name)
        }
    }));
    let paid = body(&reply(&requests[1], |id, name| {
        if id == ids[2].to_string() {
            transient(id, name)
        } else {
            ok(id, name)
        }
    }));
    crate::harness::refuse_updates(
        &env.pool,
        &format!("NEW.id = {} AND NEW.state = 'disbursed'", ids[3]),
    )
    .await;
    async fn claimed(env: &TestEnv) -> Vec<i64> {
        sqlx::query_scalar("SELECT record_id FROM recipient_claims ORDER BY record_id")
            .fetch_all(&env.pool)
            .await
            .unwrap()
    }
    let mut all = ids.clone();
    all.sort();
    assert_eq!(claimed(&env).await, all);
    let messages: [(&[u8], Option<&str>); 2] =
        [(&refusing, Some(&bank_user)), (&paid, Some(&bank_user))];
    let group =
        || salur::stages::process_group(&env.settings, &env.pool, Input::BankReplies, &messages);
    assert!(group().await.is_none(), "the group fails as a whole");
    for id in &ids {
        assert_eq!(
            record(&env, *id).await.0,
            "transfer_requested",
            "record {id}"
        );
        assert_eq!(moves(&env, *id, "transfer_requested", "disbursed").await, 0);
    }
    assert_eq!(
        claimed(&env).await,
        all,
        "the refused transfer's claim is given up only when its answer commits"
    );
    assert!(take_outbox(&env).await.is_empty(), "no retry is sent");

    // Once the database takes them, the same two answers together apply each as alone.
    sqlx::raw_sql("DROP TRIGGER refuse_update ON records")
        .execute(&env.pool)
        .await
        .unwrap();
    let tallies = group().await.expect("the same group, accepted");
    assert_eq!(tallies[0].outcome(Stage::Transfer, Outcome::Failed), 1);
    assert_eq!(tallies[0].outcome(Stage::Transfer, Outcome::Disbursed), 1);
    assert_eq!(tallies[1].outcome(Stage::Transfer, Outcome::Disbursed), 1);
    assert_eq!(tallies[1].outcome(Stage::Transfer, Outcome::Retried), 1);
    assert_eq!(
        record(&env, ids[0]).await,
        ("failed".into(), vec!["ACCOUNT_CLOSED".into()], 0)
    );
    assert_eq!(record(&env, ids[2]).await, ("verified".into(), vec![], 1));
    for id in [ids[1], ids[3]] {
        assert_eq!(record(&env, id).await.0, "disbursed", "record {id}");
        assert_eq!(moves(&env, id, "transfer_requested", "disbursed").await, 1);
    }
    let sent = take_outbox(&env).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].routing_key,
        format!("{}.transfer", env.settings.retry_tier(1).name)
    );
    let kept: Vec<i64> = all.iter().copied().filter(|id| *id != ids[0]).collect();
    assert_eq!(claimed(&env).await, kept);
    env.cleanup().await;
}

#[tokio::test]
async fn account_opening_answers_and_a_late_answer_handled_together_each_hand_on_and_apply_as_alone()
 {
    let env = env_with(|s| {
        s.stage_max_attempts.insert(Stage::Transfer, 1);
    })
    .await;
    // A transfer given up on: the bank failed its only attempt, it is dead.
    let (_, late_ids, transfer) = transfer_requested(&env, &[valid_record(9)]).await;
    answer(&env, &transfer, transient).await;
    assert_eq!(record(&env, late_ids[0]).await.0, "dead");
    take_outbox(&env).await;
    // Two account-opening requests of two records each.
    let (batch, ids) = submit(&env, &(1..=4).map(valid_record).collect::<Vec<_>>()).await;
    let requests = requested_by_pairs(&env, Stage::AccountOpening, batch, &ids).await;
    let bodies: Vec<(Vec<u8>, String)> = [&requests[0], &requests[1], &transfer]
        .into_iter()
        .map(|r| {
            (
                serde_json::to_vec(&reply(r, ok)).unwrap(),
                salur::bank::users::user_name(&env.settings, &r.bank_code),
            )
        })
        .collect();
    let messages: Vec<(&[u8], Option<&str>)> = bodies
        .iter()
        .map(|(b, u)| (b.as_slice(), Some(u.as_str())))
        .collect();
    let tallies =
        salur::stages::process_group(&env.settings, &env.pool, Input::BankReplies, &messages)
            .await
            .expect("three answers naming distinct records are handled together");
    for tally in &tallies[0..2] {
        only(tally, Stage::AccountOpening, Outcome::AccountOpened, 2);
    }
    one(&tallies[2], Stage::Transfer, Outcome::Disbursed);
    for id in &ids {
        assert_eq!(
            moves(&env, *id, "account_requested", "account_opened").await,
            1
        );
    }
    // The late answer is applied as the bank decided, from where the record was.
    assert_eq!(record(&env, late_ids[0]).await.0, "disbursed");
    let (from, to, _, detail) = last_event(&env, late_ids[0]).await;
    assert_eq!((from.as_deref(), to.as_str()), (Some("dead"), "disbursed"));
    assert_eq!(detail["late_answer"], true);
    // Each account-opening answer hands its own records on, in a message of its own.
    let mut handed: Vec<Value> = take_outbox(&env)
        .await
        .into_iter()
        .filter(|s| s.exchange == names::WORK && s.routing_key == "verification")
        .map(|s| s.payload["record_ids"].clone())
        .collect();
    handed.sort_by_key(|ids| ids[0].as_i64());
    assert_eq!(
        handed,
        [serde_json::json!(ids[0..2]), serde_json::json!(ids[2..4])]
    );
    env.cleanup().await;
}
