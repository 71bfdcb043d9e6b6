//! The pipeline end to end, against the real PostgreSQL and RabbitMQ.

use crate::harness::{self, rows, valid_record};
use rust_decimal::Decimal;
use salur::bank::sim::{SimOptions, settlements};
use salur::broker::{Broker, Outgoing, names};
use salur::demo::generate;
use salur::intake::{RawRecord, parse_bytes};
use salur::messages::Stage;
use salur::ops::submit::{self, BatchInfo, SubmitError};
use salur::stages::stage_message;
use salur::store::State;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_batch_ends_2570_disbursed_430_blocked_with_reasons() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let demo = generate::generate(3000, 430, 42);
            let batch = env.submit(&demo.records, "2026-Q4").await;
            let status = env.wait(batch).await;

            assert_eq!(status.count(State::Disbursed), 2570, "{status}");
            assert_eq!(status.count(State::Blocked), 430, "{status}");
            assert_eq!(status.in_flight, 0);
            let expected: BTreeMap<String, i64> = demo
                .expected_reasons
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), i64::from(*v)))
                .collect();
            assert_eq!(status.reasons, expected);
            assert_eq!(
                status.amount(State::Disbursed),
                Decimal::from(2570 * 600_000)
            );

            // Every blocked record is on the dead-letter queue, with its reasons.
            assert_eq!(env.queue_depth(names::BLOCKED_QUEUE).await, 430);
            // The bank paid each disbursed record once, and the totals reconcile to the rupiah.
            let paid = settlements(env.ledger().await).await.unwrap();
            assert_eq!(paid.len(), 2570);
            let total: Decimal = paid.iter().map(|s| s.amount).sum();
            assert_eq!(total, status.amount(State::Disbursed));
            // Every record has its audit trail: received, then each step.
            let (events, disbursed_events): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE to_state = 'disbursed') FROM record_events",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
            assert_eq!(disbursed_events, 2570);
            assert_eq!(events, 3000 + 430 + 2570 * 5);
        })
        .await;
}

/// One defect per record; each must be blocked with exactly that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_blocks_its_record_with_that_reason() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let defects = harness::defects();
            let records: Vec<RawRecord> = defects
                .iter()
                .enumerate()
                .map(|(i, (_, defect))| {
                    let mut r = valid_record(i as u32 + 1);
                    defect(&mut r);
                    r
                })
                .collect();
            let batch = env.submit(&records, "2026-Q4").await;
            env.wait(batch).await;
            let got = rows(&env.pool, batch).await;
            for ((row, state, codes), (code, _)) in got.iter().zip(&defects) {
                assert_eq!(state, "blocked", "row {row} ({code})");
                assert_eq!(codes, &vec![code.to_string()], "row {row}");
            }
            assert_eq!(
                env.queue_depth(names::BLOCKED_QUEUE).await,
                defects.len() as u32
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_refusals_block_or_fail_with_the_banks_reason() {
    harness::env()
        .worker()
        .bank(SimOptions {
            reject_rate: 1.0,
            ..Default::default()
        })
        .run(async |env| {
            let mut inquiry = valid_record(2);
            inquiry.account_number = Some("0123-4567-8901".into());
            let batch = env.submit(&[valid_record(1), inquiry], "2026-Q4").await;
            env.wait(batch).await;
            let got = rows(&env.pool, batch).await;
            assert_eq!(got[0].1, "blocked");
            assert_eq!(got[0].2, vec!["NIK_NOT_FOUND"]);
            assert_eq!(got[1].1, "blocked");
            assert_eq!(got[1].2, vec!["ACCOUNT_NOT_FOUND"]);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nik_is_paid_once_per_programme_and_period_across_batches() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let first = env.submit(&[valid_record(1)], "2026-Q4").await;
            assert_eq!(env.wait(first).await.count(State::Disbursed), 1);

            // Another office lists the same NIK for the same period: rejected, never paid.
            let second = submit::submit_records(
                &env.settings,
                &env.pool,
                "other.csv",
                &[valid_record(1), valid_record(2), {
                    let mut same_nik = valid_record(2);
                    same_nik.row = 3;
                    same_nik
                }],
                &BatchInfo {
                    office: "DINSOS-OTHER".into(),
                    program: "BPNT".into(),
                    period: "2026-Q4".into(),
                    submitted_by: None,
                },
            )
            .await
            .unwrap();
            env.wait(second).await;
            let got = rows(&env.pool, second).await;
            assert_eq!(
                (got[0].1.as_str(), got[0].2.clone()),
                ("rejected", vec!["DOUBLE_RECIPIENT".to_owned()])
            );
            // Within one batch too: the first of two identical rows is paid, the second rejected.
            assert_eq!(got[1].1, "disbursed");
            assert_eq!(
                (got[2].1.as_str(), got[2].2.clone()),
                ("rejected", vec!["DOUBLE_RECIPIENT".to_owned()])
            );

            // The next period pays the NIK again.
            let next = env.submit(&[valid_record(1)], "2027-Q1").await;
            assert_eq!(env.wait(next).await.count(State::Disbursed), 1);
            assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 3);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semicolon_bom_indonesian_amounts_and_dates_are_paid_in_full() {
    harness::env().pipeline().run(async |env| {
    let csv = "\u{feff}NIK;No_KK;Nama;Nama_Ibu_Kandung;Tempat_Lahir;Tanggal_Lahir;Jenis_Kelamin;Alamat;Kode_Wilayah;No_HP;Kode_Bank;No_Rekening;Nominal\r\n\
        5371014508800001;5371010101200001;Maria Ndolu;Yohana Bili;Kupang;05-08-1980;P;Jl. El Tari 5;5371011001;;002;;Rp 600.000,00\r\n\
        5371014508800002;5371010101200002;Maria Lede;Yohana Bili;Kupang;05/08/1980;P;Jl. El Tari 6;53.71.01.1001;;009;;600.000\r\n\
        5371014508800003;5371010101200003;Maria Tefa;Yohana Bili;Kupang;1980-08-05;P;\"Jl. Sudirman; Gg. 2\";53.71.01.1001;;451;;Rp600.000\r\n\
        5371014508800004;5371010101200004;Maria Kase;Yohana Bili;Kupang;1980-08-05;P;Jl. El Tari 8;53.71.01.1001;;200;;600000.00\r\n";
    let records = parse_bytes("dinsos.csv", csv.as_bytes()).unwrap();
    assert_eq!(records.len(), 4);
    let batch = env.submit(&records, "2026-Q4").await;
    let status = env.wait(batch).await;
    assert_eq!(status.count(State::Disbursed), 4, "{status}");
    assert_eq!(status.amount(State::Disbursed), Decimal::from(2_400_000));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_missing_a_column_is_refused_and_nothing_is_stored() {
    harness::env().run(async |env| {
    let file = env.temp_path("no-mother.csv");
    std::fs::write(
        &file,
        "nik,kk,name,birth_place,birth_date,sex,address,region_code,bank_code,amount\n\
         5371014508800001,5371010101200001,Maria,Kupang,1980-08-05,P,Jl,5371011001,002,600000\n",
    )
    .unwrap();
    let info = BatchInfo {
        office: "DINSOS-TEST".into(),
        program: "BPNT".into(),
        period: "2026-Q4".into(),
        submitted_by: None,
    };
    let err = submit::submit_file(&env.settings, &env.pool, &file, &info)
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::Intake(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no-mother.csv") && text.contains("mother_name"),
        "{text}"
    );
    let (batches, records, outbox): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM records), (SELECT count(*) FROM outbox)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((batches, records, outbox), (0, 0, 0));
    })
    .await;
}

/// A stream of 25,000 good rows with a broken one near the end: refused whole, naming the line,
/// and nothing of it stored (the first slices were already written in the transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_late_in_a_large_stream_stores_nothing() {
    harness::env()
        .run(async |env| {
            let demo = generate::generate(25_000, 0, 11);
            let mut csv = Vec::new();
            generate::write_csv(&demo.records, &mut csv).unwrap();
            csv.extend_from_slice(b"5371014508800001,only,three\n");
            let lines = csv.iter().filter(|&&b| b == b'\n').count();
            let info = BatchInfo {
                office: "DINSOS-TEST".into(),
                program: "BPNT".into(),
                period: "2026-Q4".into(),
                submitted_by: None,
            };
            let err = submit::submit_reader(
                &env.settings,
                &env.pool,
                "late.csv",
                std::io::Cursor::new(csv),
                &info,
            )
            .await
            .unwrap_err();
            assert!(matches!(err, SubmitError::Intake(_)), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("late.csv") && text.contains(&format!("line {lines}")),
                "{text}"
            );
            let (batches, records, data, pending, events, outbox): (i64, i64, i64, i64, i64, i64) =
                sqlx::query_as(
                    "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM records),
                        (SELECT count(*) FROM record_data), (SELECT count(*) FROM intake_pending),
                        (SELECT count(*) FROM record_events), (SELECT count(*) FROM outbox)",
                )
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(
                (batches, records, data, pending, events, outbox),
                (0, 0, 0, 0, 0, 0)
            );

            // The same stream without the broken row is stored whole, with its work in the outbox.
            let mut csv = Vec::new();
            generate::write_csv(&demo.records, &mut csv).unwrap();
            let batch = submit::submit_reader(
                &env.settings,
                &env.pool,
                "good.csv",
                std::io::Cursor::new(csv),
                &info,
            )
            .await
            .unwrap();
            let (count, records, events): (i32, i64, i64) = sqlx::query_as(
                "SELECT (SELECT record_count FROM batches WHERE id = $1),
                    (SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'received'),
                    (SELECT count(*) FROM record_events WHERE to_state = 'received')",
            )
            .bind(batch)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!((count, records, events), (25_000, 25_000, 25_000));
            // The account-opening work names every record once, in chunks of at most chunk_size.
            let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox")
                .fetch_all(&env.pool)
                .await
                .unwrap();
            let mut named = std::collections::HashSet::new();
            for p in &payloads {
                let msg: salur::messages::StageMessage = serde_json::from_slice(p).unwrap();
                assert_eq!(msg.stage, Stage::AccountOpening);
                assert!(msg.record_ids.len() <= env.settings.chunk_size);
                for id in msg.record_ids {
                    assert!(named.insert(id), "record {id} in two messages");
                }
            }
            assert_eq!(named.len(), 25_000);
        })
        .await;
}

/// Every answer twice, then every stage message again: nothing changes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_messages_and_duplicate_answers_change_nothing_twice() {
    harness::env()
        .worker()
        .bank(SimOptions {
            duplicate_rate: 1.0,
            ..Default::default()
        })
        .run(async |env| {
            let demo = generate::generate(300, 30, 7);
            let batch = env.submit(&demo.records, "2026-Q4").await;
            let before = env.wait(batch).await;
            assert_eq!(before.count(State::Disbursed), 270);
            let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM record_events")
                .fetch_one(&env.pool)
                .await
                .unwrap();

            // Redeliver: every record id to every stage, as a crashed worker's unacked chunks would be.
            let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_all(&env.pool)
                .await
                .unwrap();
            let again: Vec<Outgoing> = Stage::ALL
                .iter()
                .map(|s| stage_message(&env.settings, *s, batch, ids.clone()))
                .collect();
            let broker = Broker::connect(&env.settings).await.unwrap();
            broker
                .publisher()
                .await
                .unwrap()
                .publish_all(&again)
                .await
                .unwrap();
            broker.close().await;
            // Let the worker take them (queues drain), then compare.
            for _ in 0..100 {
                let mut depth = 0;
                for s in Stage::ALL {
                    depth += env.queue_depth(&names::stage_queue(s.as_str())).await;
                }
                if depth == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            env.stop_services().await;
            let after = salur::ops::batch::status(&env.pool, batch).await.unwrap();
            assert_eq!(after, before);
            let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM record_events")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(events_after, events_before);
            assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 270);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_parked_and_the_consumer_keeps_working() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let broker = Broker::connect(&env.settings).await.unwrap();
            broker
                .publisher()
                .await
                .unwrap()
                .publish_one(Outgoing {
                    exchange: env.settings.name(names::WORK),
                    routing_key: "account_opening".into(),
                    payload: b"this is not json".to_vec(),
                })
                .await
                .unwrap();
            broker.close().await;
            let batch = env.submit(&[valid_record(1)], "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 1);
            assert_eq!(env.queue_depth(names::DEAD_QUEUE).await, 1);
        })
        .await;
}

/// A test that fails leaves no vhost (with its queues) and no database behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_leaves_no_vhost_and_no_database() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let failed = tokio::spawn(async move {
        let env = harness::env().worker().build().await;
        let _ = tx.send((env.db_name.clone(), env.settings.amqp_url.clone()));
        env.submit(&[valid_record(1)], "2026-Q4").await;
        panic!("the test fails here");
    })
    .await;
    assert!(failed.unwrap_err().is_panic());
    let (name, url) = rx.await.unwrap();
    assert!(
        url.ends_with(&format!("/{name}")),
        "{url} is on its own vhost"
    );
    let vhosts = harness::try_rabbitmqctl(&["list_vhosts"]).unwrap();
    assert!(!vhosts.lines().any(|v| v == name), "vhost {name} is left");
    let admin = harness::env().database_only().build().await;
    let dbs: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&admin.pool)
        .await
        .unwrap();
    assert_eq!(dbs, 0, "database {name} is left");
    admin.cleanup().await;
}

/// Intake takes a slice's record ids with one statement (the sequence advanced by n): uploads
/// at the same moment get ranges that never overlap, and two batches submitted at once both
/// store every row with ids of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_intakes_take_ids_that_never_overlap() {
    harness::env()
        .database_only()
        .run(async |env| {
            let takers = (0..8).map(|_| {
                let pool = env.pool.clone();
                tokio::spawn(async move {
                    let mut conn = pool.acquire().await.unwrap();
                    salur::store::records::take_ids(&mut conn, 1000)
                        .await
                        .unwrap()
                })
            });
            let mut all = Vec::new();
            for t in takers {
                let ids = t.await.unwrap();
                assert_eq!(ids.len(), 1000);
                assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "a range in order");
                all.extend(ids);
            }
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), n, "no id taken twice");
            let rows: Vec<RawRecord> = (1..=25_000).map(valid_record).collect();
            let (a, b) = tokio::join!(env.submit(&rows, "2026-Q1"), env.submit(&rows, "2026-Q2"));
            assert_ne!(a, b);
            let (stored, distinct): (i64, i64) =
                sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM records")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!((stored, distinct), (50_000, 50_000));
            let (data, pending): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM record_data), (SELECT count(*) FROM intake_pending)",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(
                (data, pending),
                (50_000, 0),
                "each record's office data, none pending"
            );
            // Intake's audit rows name their ids as a range too (indexed by it, not id by id):
            // a record's history finds its intake on either side of a slice's edge.
            let (unranged, ranged): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE record_range IS NULL),
                        count(*) FILTER (WHERE record_range IS NOT NULL)
                 FROM audit_chunks WHERE to_state = 'received'",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(unranged, 0, "every intake audit row names a range");
            assert!(
                ranged >= 4,
                "two batches of more than one slice: {ranged} rows"
            );
            let (first, last): (i64, i64) = sqlx::query_as("SELECT min(id), max(id) FROM records")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            for id in [first, first + 9_999, first + 10_000, first + 24_999, last] {
                let received: Vec<(i64, String)> =
                    sqlx::query_as("SELECT record_id, to_state FROM record_events_of($1)")
                        .bind(id)
                        .fetch_all(&env.pool)
                        .await
                        .unwrap();
                assert_eq!(
                    received,
                    [(id, "received".to_owned())],
                    "record {id}'s history"
                );
            }
        })
        .await;
}

/// Intake commits a batch's office data just before the batch itself (two connections copy
/// side by side). A process that dies between the two commits leaves office data of no record,
/// listed as pending: the sweeper removes it, but never while that intake is still in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn office_data_of_an_intake_that_died_before_its_batch_is_removed_by_the_sweeper() {
    harness::env()
        .database_only()
        .run(async |env| {
            let rows: Vec<RawRecord> = (1..=3).map(valid_record).collect();
            let kept = env.submit(&rows, "2026-Q1").await;
            // An intake in progress: its batch's transaction holds the lock, its office data has
            // committed (as just before the batch's commit).
            let batch = uuid::Uuid::new_v4();
            let mut intake = env.pool.begin().await.unwrap();
            salur::store::records::lock_intake(&mut intake, batch).await.unwrap();
            let ids = salur::store::records::take_ids(&mut env.pool.acquire().await.unwrap(), 2)
                .await
                .unwrap();
            let prepared = salur::store::records::prepare_received(batch, &ids, &rows[..2], None)
                .unwrap();
            let mut data = env.pool.begin().await.unwrap();
            salur::store::records::intake_pending(&mut data, batch, &ids).await.unwrap();
            salur::store::records::copy_prepared_data(&mut data, &prepared).await.unwrap();
            data.commit().await.unwrap();
            let count = async || -> (i64, i64) {
                sqlx::query_as(
                    "SELECT (SELECT count(*) FROM record_data), (SELECT count(*) FROM intake_pending)",
                )
                .fetch_one(&env.pool)
                .await
                .unwrap()
            };
            assert_eq!(count().await, (5, 1));
            let sweep = salur::sweeper::sweep_once(&env.settings, &env.pool).await;
            assert!(sweep.failures.is_empty(), "{:?}", sweep.failures);
            assert_eq!(sweep.abandoned_intake, 0, "an intake in progress is left alone");
            assert_eq!(count().await, (5, 1));
            // The process dies: its transaction ends without the batch.
            intake.rollback().await.unwrap();
            let sweep = salur::sweeper::sweep_once(&env.settings, &env.pool).await;
            assert_eq!(sweep.abandoned_intake, 2);
            assert_eq!(count().await, (3, 0), "the stored batch's data stays");
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE batch_id = $1")
                .bind(kept)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(stored, 3);
        })
        .await;
}
