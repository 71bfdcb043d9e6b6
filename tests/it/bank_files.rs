//! Collective account opening by file: export the requests, import the bank's results (all or
//! nothing), with the same outcome as the same answers over AMQP.

use crate::harness::{self, TestEnv};
use salur::bank::contract::{BankReason, BankReply, ItemStatus, ReplyItem, RequestKind, VERSION};
use salur::bank::files::{self, FileError};
use salur::broker::{Broker, Outgoing, names};
use salur::store::State;
use std::time::{Duration, Instant};
use uuid::Uuid;

const BANK: &str = "009";

async fn ids(env: &TestEnv, batch: Uuid) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&env.pool).await.unwrap()
}

/// What the bank decided for rows 1..=6: four opened, two refused.
fn decisions(ids: &[i64]) -> Vec<ReplyItem> {
    ids[..6]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut item = ReplyItem {
                item_id: id.to_string(),
                status: ItemStatus::Ok,
                account_number: Some(format!("00900001{:05}", i + 1)),
                account_name: Some(format!("MARIA GORETI NDOLU {}", i + 1)),
                reference: None,
                reason: None,
            };
            if i >= 4 {
                item.status = ItemStatus::Rejected;
                item.account_number = None;
                item.account_name = None;
                let code = if i == 4 {
                    "NIK_NOT_FOUND"
                } else {
                    "CUSTOMER_BLACKLISTED"
                };
                item.reason = Some(BankReason {
                    code: code.into(),
                    message: "refused".into(),
                });
            }
            item
        })
        .collect()
}

fn result_file(items: &[ReplyItem]) -> String {
    let mut out =
        String::from("item_id,status,account_number,account_name,reason_code,reason_message\n");
    for i in items {
        let (status, code, message) = match &i.reason {
            None => ("opened", "", ""),
            Some(r) => ("refused", r.code.as_str(), r.message.as_str()),
        };
        out.push_str(&format!(
            "{},{status},{},{},{code},{message}\n",
            i.item_id,
            i.account_number.as_deref().unwrap_or(""),
            i.account_name.as_deref().unwrap_or(""),
        ));
    }
    out
}

async fn wait_taken_up(env: &TestEnv, batch: Uuid) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'received'",
        )
        .bind(batch)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows 1..=6 once none of them waits for account opening, verification or the transfer stage.
async fn settled_rows(env: &TestEnv, batch: Uuid) -> Vec<(i32, String, Vec<String>)> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let rows: Vec<_> = harness::rows(&env.pool, batch)
            .await
            .into_iter()
            .take(6)
            .collect();
        if rows
            .iter()
            .all(|r| !["account_requested", "account_opened", "verified"].contains(&r.1.as_str()))
        {
            return rows;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_opening_by_file_ends_as_by_message_and_a_bad_file_changes_nothing() {
    harness::env().worker().run(async |env| {
        // Six recipients at bank 009, one at bank 002 (not this bank's to answer).
        let mut rows: Vec<_> = (1..=7).map(harness::valid_record).collect();
        for r in &mut rows[..6] {
            r.bank_code = Some(BANK.into());
        }
        let by_file = env.submit(&rows, "2026-Q4").await;
        let by_message = env.submit(&rows, "2026-Q3").await;
        wait_taken_up(env, by_file).await;
        wait_taken_up(env, by_message).await;
        let file_ids = ids(env, by_file).await;
        let message_ids = ids(env, by_message).await;

        // The request file: the batch's six account openings at 009, in the documented layout.
        let request = env.temp_path("request.csv");
        assert_eq!(files::export_accounts(&env.pool, BANK, by_file, &request).await.unwrap(), 6);
        let text = std::fs::read_to_string(&request).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("item_id,nik,kk,name,mother_name,birth_place,birth_date,sex,address,region_code,phone")
        );
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first[0], file_ids[0].to_string());
        assert_eq!(&first[1..4], ["5371014508800002", "5371010101200002", "Maria Goreti Ndolu 1"]);
        assert_eq!(first[6..8], ["1980-08-05", "P"]);
        assert_eq!(text.lines().count(), 7);

        // Malformed result files: refused whole, with the line and field, changing nothing.
        let good = result_file(&decisions(&file_ids));
        let events = "SELECT count(*) FROM record_events";
        let outbox = "SELECT count(*) FROM outbox";
        let (events_before, outbox_before) = (count(env, events).await, count(env, outbox).await);
        let other_bank = file_ids[6];
        let bad: Vec<(&str, String, &str)> = vec![
            ("unknown status", good.replacen(",opened,", ",ok,", 1), "line 2, field `status`"),
            ("opened without a number", good.replace(",opened,00900001", ",opened,x"), "line 2, field `account_number`"),
            ("opened without a name", good.replacen("MARIA GORETI NDOLU 4", "", 1), "line 5, field `account_name`"),
            ("refused without a code", good.replace("NIK_NOT_FOUND", ""), "line 6, field `reason_code`"),
            ("an item twice", format!("{good}{},refused,,,NIK_NOT_FOUND,x\n", file_ids[0]), "line 8, field `item_id`"),
            ("no such record", format!("{good}999999999,refused,,,NIK_NOT_FOUND,x\n"), "line 8, field `item_id`"),
            ("another bank's record", format!("{good}{other_bank},opened,0020000000001,SOMEONE,,\n"), "line 8, field `item_id`"),
            ("a field too many", format!("{good}{},opened,1,2,3,4,5\n", file_ids[5]), "line 8"),
            ("a column missing", good.replace("account_name,", ""), "lacks account_name"),
        ];
        let path = env.temp_path("result.csv");
        for (what, content, expected) in bad {
            std::fs::write(&path, content).unwrap();
            let err = files::import_accounts(&env.settings, &env.pool, BANK, &path).await.unwrap_err();
            assert!(err.downcast_ref::<FileError>().is_some(), "{what}: {err:#}");
            let msg = err.to_string();
            assert!(msg.contains(expected) && msg.contains("result.csv"), "{what}: {msg}");
        }
        std::fs::write(&path, b"item_id,status\n\xff\xfe\n").unwrap();
        let err = files::import_accounts(&env.settings, &env.pool, BANK, &path).await.unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert_eq!(count(env, events).await, events_before, "a refused file changed nothing");
        assert_eq!(count(env, outbox).await, outbox_before);
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'account_requested'")
            .bind(by_file)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(waiting, 7);

        // The good file.
        std::fs::write(&path, &good).unwrap();
        let summary = files::import_accounts(&env.settings, &env.pool, BANK, &path).await.unwrap();
        assert_eq!((summary.opened, summary.refused, summary.skipped), (4, 2, 0));
        // The same answers over AMQP for the other batch, as the bank (its own user, answering
        // the request salur sent it).
        let mut conn = env.pool.acquire().await.unwrap();
        let asked = salur::store::bank_requests::latest_for(&mut conn, "account_open", &message_ids[..6])
            .await
            .unwrap();
        drop(conn);
        let request_id = asked.first().expect("the request salur sent").1;
        assert!(asked.iter().all(|(_, r)| *r == request_id), "one request: {asked:?}");
        let creds = salur::bank::users::add(&env.settings, &env.pool, BANK, "BNI")
            .await
            .unwrap();
        let broker = Broker::connect(&creds.settings(&env.settings).unwrap()).await.unwrap();
        let publisher = broker.publisher().await.unwrap();
        let reply = BankReply {
            v: VERSION,
            request_id,
            bank_code: BANK.into(),
            kind: RequestKind::AccountOpen,
            answered_at: chrono::Utc::now(),
            items: decisions(&message_ids),
        };
        publisher
            .publish_all_as(
                &[Outgoing {
                    exchange: env.settings.name(names::BANK_REPLIES),
                    routing_key: RequestKind::AccountOpen.routing_key(BANK),
                    payload: serde_json::to_vec(&reply).unwrap(),
                }],
                &creds.user,
            )
            .await
            .unwrap();
        broker.close().await;

        let a = settled_rows(env, by_file).await;
        let b = settled_rows(env, by_message).await;
        assert_eq!(a, b, "by file and by message: the same states and reasons");
        assert_eq!(a.iter().filter(|r| r.1 == State::Blocked.as_str()).count(), 2, "{a:?}");
        assert!(a[..4].iter().all(|r| r.1 == State::TransferRequested.as_str()), "{a:?}");
        let mut conn = env.pool.acquire().await.unwrap();
        let first = salur::store::records::read_scoped(&mut conn, &file_ids[..1], None)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(
            (first[0].bank_account.clone(), first[0].bank_account_name.clone()),
            (Some("0090000100001".into()), Some("MARIA GORETI NDOLU 1".into()))
        );

        // The same file again changes nothing.
        let events_now = count(env, events).await;
        let again = files::import_accounts(&env.settings, &env.pool, BANK, &path).await.unwrap();
        assert_eq!((again.opened, again.refused, again.skipped), (0, 0, 6));
        assert_eq!(count(env, events).await, events_now);

    })
    .await;
}
