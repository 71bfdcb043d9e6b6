//! Bank answers are trusted only from the bank that was asked: each bank has its own RabbitMQ
//! user, an answer's `user_id` (validated by RabbitMQ) names its bank, and an answer must answer
//! a request salur sent to that bank for that record, carrying what the contract requires.
//! Every test here acts as a bank over a real per-bank user on the real broker.

use crate::harness::{self, TestEnv, valid_record};
use salur::bank::check::{self, CheckOptions, Verdict};
use salur::bank::contract::*;
use salur::bank::sim::SimOptions;
use salur::bank::users::{self, Credentials};
use salur::broker::{Broker, Outgoing, names};
use salur::messages::PoisonMessage;
use salur::metrics::Metrics;
use std::time::Duration;

/// A bank written against the contract, connected as its own user.
struct TestBank {
    creds: Credentials,
    broker: Broker,
    settings: salur::Settings,
}

impl TestBank {
    async fn new(env: &TestEnv, code: &str) -> Self {
        let creds = users::add(&env.settings, &env.pool, code, "test bank")
            .await
            .expect("bank user");
        let settings = creds.settings(&env.settings).unwrap();
        let broker = Broker::connect(&settings).await.expect("bank connects");
        Self {
            creds,
            broker,
            settings,
        }
    }

    /// The next request on the bank's queue (read as the bank's user).
    async fn next_request(&self) -> BankRequest {
        let queue = names::bank_queue(&self.creds.bank);
        for _ in 0..300 {
            let (ch, taken) = self.broker.take_all(&queue).await.unwrap();
            if let Some(d) = taken.first() {
                d.acker.ack(Default::default()).await.unwrap();
                let request = serde_json::from_slice(&d.data).unwrap();
                let _ = ch.close(200, "ok".into()).await;
                return request;
            }
            let _ = ch.close(200, "ok".into()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no request reached bank {}", self.creds.bank);
    }

    /// Publishes an answer as this bank (user_id = its user), routed by its `kind` and
    /// `bank_code`.
    async fn answer(&self, reply: &BankReply) -> Result<(), salur::broker::PublishError> {
        let message = Outgoing {
            exchange: self.settings.name(names::BANK_REPLIES),
            routing_key: reply.kind.routing_key(&self.creds.bank),
            payload: serde_json::to_vec(reply).unwrap(),
        };
        let publisher = self.broker.publisher().await.unwrap();
        publisher
            .publish_all_as(std::slice::from_ref(&message), &self.creds.user)
            .await
    }
}

fn reply(request: &BankRequest, bank_code: &str, items: Vec<ReplyItem>) -> BankReply {
    BankReply {
        v: VERSION,
        request_id: request.request_id,
        bank_code: bank_code.into(),
        kind: request.body.kind(),
        answered_at: chrono::Utc::now(),
        items,
    }
}

fn item(id: &str, status: ItemStatus) -> ReplyItem {
    ReplyItem {
        item_id: id.into(),
        status,
        account_number: None,
        account_name: None,
        reference: None,
        reason: None,
    }
}

fn opened(id: &str, number: &str) -> ReplyItem {
    ReplyItem {
        account_number: Some(number.into()),
        account_name: Some(format!("MARIA GORETI NDOLU {id}")),
        ..item(id, ItemStatus::Ok)
    }
}

fn refused(id: &str, code: &str) -> ReplyItem {
    ReplyItem {
        reason: Some(BankReason {
            code: code.into(),
            message: "refused in the test".into(),
        }),
        ..item(id, ItemStatus::Rejected)
    }
}

fn item_ids(r: &BankRequest) -> Vec<String> {
    match &r.body {
        RequestBody::AccountOpen { items } => items.iter().map(|i| i.item_id.clone()).collect(),
        RequestBody::AccountInquiry { items } => items.iter().map(|i| i.item_id.clone()).collect(),
        RequestBody::Transfer { items } => items.iter().map(|i| i.item_id.clone()).collect(),
    }
}

async fn state_of(env: &TestEnv, id: &str) -> (String, Option<String>, Option<String>) {
    // Through the store: the account number is sealed in the database.
    let mut conn = env.pool.acquire().await.unwrap();
    let row = salur::store::records::read_scoped(&mut conn, &[id.parse::<i64>().unwrap()], None)
        .await
        .unwrap()
        .pop()
        .expect("the record");
    (row.state, row.bank_account, row.bank_reference)
}

async fn wait_state(env: &TestEnv, id: &str, state: &str) {
    for _ in 0..300 {
        if state_of(env, id).await.0 == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "record {id} never reached {state}: {:?}",
        state_of(env, id).await
    );
}

/// Waits for `n` parked messages on salur.dead and takes them.
async fn dead_messages(env: &TestEnv, n: u32) -> Vec<PoisonMessage> {
    env.settled_depth(names::DEAD_QUEUE, n).await;
    let b = Broker::connect(&env.settings).await.unwrap();
    let (ch, taken) = b.take_all(names::DEAD_QUEUE).await.unwrap();
    let mut out = Vec::new();
    for d in &taken {
        if let Ok(p) = serde_json::from_slice::<PoisonMessage>(&d.data) {
            out.push(p);
        }
        d.acker.ack(Default::default()).await.unwrap();
    }
    let _ = ch.close(200, "ok".into()).await;
    b.close().await;
    out
}

fn refused_count(m: &Metrics, bank: &str, reason: &str) -> u64 {
    m.bank_replies_refused
        .with_label_values(&[bank, reason])
        .get()
}

/// The spoofing scenario of issue 11: bank 009, with its own valid credentials, answers for a
/// bank-002 record (ok, paid, with a reference of its choosing; and refused). Nothing changes,
/// the answers are parked as WRONG_BANK and counted; bank 002's own answer then pays the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_banks_answer_changes_nothing_and_is_parked_as_wrong_bank() {
    harness::env()
        .worker()
        .run(async |env| {
            let metrics = env.metrics();
            let bri = TestBank::new(env, "002").await;
            let bni = TestBank::new(env, "009").await;
            let batch = env.submit(&[valid_record(1)], "2026-Q4").await;
            let open = bri.next_request().await;
            let id = item_ids(&open)[0].clone();
            bri.answer(&reply(&open, "002", vec![opened(&id, "0020000000001")]))
                .await
                .unwrap();
            let transfer = bri.next_request().await;
            assert_eq!(transfer.body.kind(), RequestKind::Transfer);
            wait_state(env, &id, "transfer_requested").await;

            // Bank 009 says it paid bank 002's transfer, in its own name and claiming to be 002.
            let paid = ReplyItem {
                reference: Some("SPOOFED-REF".into()),
                ..item(&id, ItemStatus::Ok)
            };
            bni.answer(&reply(&transfer, "009", vec![paid.clone()]))
                .await
                .unwrap();
            bni.answer(&reply(&transfer, "002", vec![paid]))
                .await
                .unwrap();
            // And that it refused it.
            bni.answer(&reply(
                &transfer,
                "009",
                vec![refused(&id, "ACCOUNT_CLOSED")],
            ))
            .await
            .unwrap();
            let parked = dead_messages(env, 3).await;
            assert_eq!(parked.len(), 3, "{parked:?}");
            assert!(
                parked
                    .iter()
                    .all(|p| p.reason.contains("WRONG_BANK")
                        && p.reason.contains(&format!("item {id}"))),
                "{parked:?}"
            );
            assert_eq!(refused_count(&metrics, "009", "WRONG_BANK"), 3);
            let (state, _, reference) = state_of(env, &id).await;
            assert_eq!((state.as_str(), reference), ("transfer_requested", None));

            // The bank that was asked answers: paid, with its reference.
            let mut ok = item(&id, ItemStatus::Ok);
            ok.reference = Some("BRI-REF-1".into());
            bri.answer(&reply(&transfer, "002", vec![ok]))
                .await
                .unwrap();
            let status = env.wait(batch).await;
            assert_eq!(status.count(salur::store::State::Disbursed), 1);
            assert_eq!(state_of(env, &id).await.2.as_deref(), Some("BRI-REF-1"));
        })
        .await;
}

/// RabbitMQ itself refuses an answer whose user_id names another user than the connection's:
/// bank 009 cannot pass as bank 002. The publisher sees its channel closed with
/// PRECONDITION_FAILED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_claiming_another_banks_user_is_refused_by_the_broker() {
    harness::env()
        .run(async |env| {
            let bni = TestBank::new(env, "009").await;
            let forged = Outgoing {
                exchange: env.settings.name(names::BANK_REPLIES),
                routing_key: "bank.009.transfer".into(),
                payload: b"{}".to_vec(),
            };
            let publisher = bni.broker.publisher().await.unwrap();
            let err = publisher
                .publish_all_as(
                    std::slice::from_ref(&forged),
                    &users::user_name(&env.settings, "002"),
                )
                .await
                .expect_err("the broker must refuse a forged user_id");
            let seen = err.to_string();
            println!("the publisher sees: {seen}");
            assert!(
                seen.contains("PRECONDITION_FAILED") && seen.contains("user_id"),
                "{seen}"
            );
            // Nor may 009 publish with 002's routing keys, or read 002's queue.
            let publisher = bni.broker.publisher().await.unwrap();
            let err = publisher
                .publish_all_as(
                    &[Outgoing {
                        routing_key: "bank.002.transfer".into(),
                        ..forged
                    }],
                    &bni.creds.user,
                )
                .await
                .expect_err("topic permissions refuse another bank's routing key");
            assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");
            let err = bni
                .broker
                .take_all(&names::bank_queue("002"))
                .await
                .expect_err("bank 009 cannot read bank 002's requests");
            assert!(format!("{err:#}").contains("ACCESS_REFUSED"), "{err:#}");
        })
        .await;
}

/// An answer for a request salur never sent, and an ok transfer without the bank's reference,
/// change nothing and are parked naming why (the field, for the second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_requests_and_ok_answers_missing_a_field_are_refused() {
    harness::env()
        .worker()
        .run(async |env| {
            let metrics = env.metrics();
            let bri = TestBank::new(env, "002").await;
            env.submit(&[valid_record(1)], "2026-Q4").await;
            let open = bri.next_request().await;
            let id = item_ids(&open)[0].clone();
            // An ok account opening without the holder's name: refused (not NAME_MISMATCH).
            let mut nameless = opened(&id, "0020000000001");
            nameless.account_name = None;
            bri.answer(&reply(&open, "002", vec![nameless]))
                .await
                .unwrap();
            // An answer to a request that was never sent.
            let mut made_up = open.clone();
            made_up.request_id = uuid::Uuid::new_v4();
            bri.answer(&reply(&made_up, "002", vec![opened(&id, "0020000000001")]))
                .await
                .unwrap();
            let parked = dead_messages(env, 2).await;
            assert!(
                parked.iter().any(
                    |p| p.reason.contains("MISSING_FIELD") && p.reason.contains("account_name")
                ),
                "{parked:?}"
            );
            assert!(
                parked.iter().any(|p| p.reason.contains("UNKNOWN_REQUEST")),
                "{parked:?}"
            );
            assert_eq!(state_of(env, &id).await.0, "account_requested");

            bri.answer(&reply(&open, "002", vec![opened(&id, "0020000000001")]))
                .await
                .unwrap();
            let transfer = bri.next_request().await;
            // Transfer ok without a reference: refused, the record still waits.
            bri.answer(&reply(&transfer, "002", vec![item(&id, ItemStatus::Ok)]))
                .await
                .unwrap();
            let parked = dead_messages(env, 1).await;
            assert!(
                parked[0].reason.contains("MISSING_FIELD")
                    && parked[0].reason.contains("reference"),
                "{parked:?}"
            );
            assert_eq!(state_of(env, &id).await.0, "transfer_requested");
            assert_eq!(refused_count(&metrics, "002", "MISSING_FIELD"), 2);
            assert_eq!(refused_count(&metrics, "002", "UNKNOWN_REQUEST"), 1);
        })
        .await;
}

/// Every refusal code of queues/refusal-codes.md reaches the record as its mapped reason; an
/// unknown code is BANK_REFUSED keeping the bank's code; an inquiry answering another account
/// number blocks the record (ACCOUNT_MISMATCH) and never changes its payee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_code_reaches_its_reason() {
    harness::env()
        .worker()
        .run(async |env| {
            let bri = TestBank::new(env, "002").await;
            let open_codes = [
                "NIK_NOT_FOUND",
                "NIK_DATA_MISMATCH",
                "CUSTOMER_BLACKLISTED",
                "XYZ_1",
            ];
            let inquiry_codes = [
                "ACCOUNT_NOT_FOUND",
                "ACCOUNT_CLOSED",
                "ACCOUNT_DORMANT",
                "ACCOUNT_BLOCKED",
                "MISMATCH",
            ];
            let transfer_codes = [
                "ACCOUNT_NOT_FOUND",
                "ACCOUNT_CLOSED",
                "ACCOUNT_DORMANT",
                "ACCOUNT_BLOCKED",
                "AMOUNT_LIMIT_EXCEEDED",
                "TRANSFER_REFUSED",
                "XYZ_2",
            ];
            let mut records = Vec::new();
            for n in 0..(open_codes.len() + transfer_codes.len()) as u32 {
                records.push(valid_record(n + 1));
            }
            for n in 0..inquiry_codes.len() as u32 {
                let mut r = valid_record(100 + n);
                r.account_number = Some(format!("00200000{n:04}"));
                records.push(r);
            }
            let batch = env.submit(&records, "2026-Q4").await;
            let ids: Vec<(i32, i64)> = sqlx::query_as(
                "SELECT row_number, id FROM records WHERE batch_id = $1 ORDER BY row_number",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            let row_of = |id: &str| -> usize {
                ids.iter()
                    .position(|(_, i)| i.to_string() == id)
                    .expect("a record of the batch")
            };
            let mut transfer_ids = Vec::new();
            for _ in 0..2 {
                let request = bri.next_request().await;
                let items = item_ids(&request)
                    .into_iter()
                    .map(|id| {
                        let row = row_of(&id);
                        match request.body.kind() {
                            RequestKind::AccountOpen if row < open_codes.len() => {
                                refused(&id, open_codes[row])
                            }
                            RequestKind::AccountOpen => {
                                transfer_ids.push(id.clone());
                                opened(&id, &format!("002999{row:06}"))
                            }
                            _ => {
                                let code =
                                    inquiry_codes[row - open_codes.len() - transfer_codes.len()];
                                if code == "MISMATCH" {
                                    opened(&id, "0029999999999")
                                } else {
                                    refused(&id, code)
                                }
                            }
                        }
                    })
                    .collect();
                bri.answer(&reply(&request, "002", items)).await.unwrap();
            }
            let transfer = bri.next_request().await;
            let items = item_ids(&transfer)
                .into_iter()
                .map(|id| {
                    let k = transfer_ids.iter().position(|t| *t == id).unwrap();
                    refused(&id, transfer_codes[k])
                })
                .collect();
            bri.answer(&reply(&transfer, "002", items)).await.unwrap();
            env.wait(batch).await;

            let got = harness::rows(&env.pool, batch).await;
            let reason = |row: usize| (got[row].1.clone(), got[row].2.join(","));
            let b = |r: &str| ("blocked".to_owned(), r.to_owned());
            let f = |r: &str| ("failed".to_owned(), r.to_owned());
            assert_eq!(reason(0), b("NIK_NOT_FOUND"));
            assert_eq!(reason(1), b("NIK_DATA_MISMATCH"));
            assert_eq!(reason(2), b("CUSTOMER_BLACKLISTED"));
            assert_eq!(reason(3), b("BANK_REFUSED"));
            // Transfers, in the order their accounts were opened.
            let expected_transfer = [
                "ACCOUNT_NOT_FOUND",
                "ACCOUNT_CLOSED",
                "ACCOUNT_DORMANT",
                "ACCOUNT_BLOCKED",
                "AMOUNT_LIMIT_EXCEEDED",
                "TRANSFER_REJECTED",
                "BANK_REFUSED",
            ];
            for (k, id) in transfer_ids.iter().enumerate() {
                assert_eq!(reason(row_of(id)), f(expected_transfer[k]), "{id}");
            }
            let first_inquiry = open_codes.len() + transfer_codes.len();
            for (k, code) in [
                "ACCOUNT_NOT_FOUND",
                "ACCOUNT_CLOSED",
                "ACCOUNT_DORMANT",
                "ACCOUNT_BLOCKED",
                "ACCOUNT_MISMATCH",
            ]
            .iter()
            .enumerate()
            {
                assert_eq!(reason(first_inquiry + k), b(code));
            }
            // The messages tell the office what to do, keeping the bank's code.
            let reasons: Vec<(serde_json::Value,)> = sqlx::query_as(
                "SELECT reasons FROM records WHERE batch_id = $1 ORDER BY row_number",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            let blacklisted = &reasons[2].0[0];
            assert_ne!(blacklisted["field"], "nik");
            assert!(
                blacklisted["message"]
                    .as_str()
                    .unwrap()
                    .contains("not at fault")
            );
            let unknown = reasons[3].0[0]["message"].as_str().unwrap();
            assert!(unknown.contains("XYZ_1") && unknown.contains("refused in the test"));
            // The payee of the mismatched inquiry was not switched.
            let mismatched = ids[first_inquiry + 4].1.to_string();
            assert_eq!(state_of(env, &mismatched).await.1, None);
        })
        .await;
}

/// A bank that never answers in time gets the account-opening request again: every re-send
/// carries the same idempotency key, and bank-sim (which honours it) opens one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_opening_resent_opens_one_account() {
    harness::env()
        .settings(|s| {
            s.bank_timeout = Duration::from_millis(300);
            s.max_attempts = 30;
        })
        .worker()
        // Every answer is lost until the third time (the bank opened the account each time).
        .bank(SimOptions {
            lost_answer_rate: 0.7,
            seed: 7,
            ..Default::default()
        })
        .run(async |env| {
            let batch = env
                .submit(&[valid_record(1), valid_record(2)], "2026-Q4")
                .await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(salur::store::State::Disbursed), 2);
            let per_record: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT r.id, count(*), count(DISTINCT k.key)
             FROM bank_requests q, UNNEST(q.record_ids, q.keys) AS k(id, key)
             JOIN records r ON r.id = k.id
             WHERE q.kind = 'account_open' GROUP BY r.id",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert!(
                per_record.iter().any(|(_, sent, _)| *sent > 1),
                "nothing was re-sent: {per_record:?}"
            );
            assert!(
                per_record.iter().all(|(_, _, keys)| *keys == 1),
                "{per_record:?}"
            );
            let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM bank_sim.accounts")
                .fetch_one(env.ledger().await)
                .await
                .unwrap();
            assert_eq!(accounts, 2);
        })
        .await;
}

/// The conformance kit passes bank-sim, and fails a broken bank naming the rules it breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_kit_passes_bank_sim_and_names_what_a_broken_bank_breaks() {
    harness::env()
        .bank(SimOptions {
            banks: vec!["002".into()],
            ..Default::default()
        })
        .run(async |env| {
            let opts = |bank: &str| CheckOptions {
                bank: bank.into(),
                timeout: Duration::from_secs(20),
            };
            // bank-sim's consumer may take a moment to start.
            let results = harness::retry_for_a_minute(|| check::run(&env.settings, opts("002")))
                .await
                .unwrap();
            for r in &results {
                println!("{r}");
            }
            assert!(
                results.iter().all(|r| r.verdict == Verdict::Pass),
                "{results:#?}"
            );
            assert!(results.len() >= 10);

            // A broken bank 008: a new account per request, transfers "paid" without a reference.
            let broken = TestBank::new(env, "008").await;
            let stop = tokio_util::sync::CancellationToken::new();
            let serve = {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let (ch, mut consumer) = broken
                        .broker
                        .consume(&names::bank_queue("008"), "broken")
                        .await
                        .unwrap();
                    let mut n = 0;
                    loop {
                        use futures::StreamExt as _;
                        let d = tokio::select! {
                            _ = stop.cancelled() => break,
                            d = consumer.next() => d.unwrap().unwrap(),
                        };
                        let request: BankRequest = serde_json::from_slice(&d.data).unwrap();
                        let items = item_ids(&request)
                            .into_iter()
                            .map(|id| {
                                n += 1;
                                match request.body.kind() {
                                    RequestKind::Transfer => item(&id, ItemStatus::Ok),
                                    _ => opened(&id, &format!("008{n:010}")),
                                }
                            })
                            .collect();
                        broken.answer(&reply(&request, "008", items)).await.unwrap();
                        d.acker.ack(Default::default()).await.unwrap();
                    }
                    let _ = ch.close(200, "bye".into()).await;
                })
            };
            let results = check::run(&env.settings, opts("008")).await.unwrap();
            stop.cancel();
            serve.await.unwrap();
            for r in &results {
                println!("{r}");
            }
            let failed: Vec<&str> = results
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .map(|r| r.rule)
                .collect();
            assert!(
                failed.contains(&"account_open.resend_one_account"),
                "{failed:?}"
            );
            assert!(failed.contains(&"transfer.required_fields"), "{failed:?}");
            let reference = results
                .iter()
                .find(|r| r.rule == "transfer.required_fields")
                .unwrap();
            assert!(reference.seen.contains("lacks reference"), "{reference:?}");
        })
        .await;
}
