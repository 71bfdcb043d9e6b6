//! Fix and replay, as an office works its blocked records, against the real services.

use crate::harness::{self, TestEnv, fields, rows, valid_record};
use salur::bank::sim::{SimOptions, settlements};
use salur::broker::{Broker, names};
use salur::demo::generate;
use salur::domain::ReasonCode;
use salur::intake::RawRecord;
use salur::ops::remediate::{self, Filter, RemediateError, Scope};
use salur::store::State;

/// The corrections that turn `now` into `good`: every field whose value differs.
fn corrections(now: &RawRecord, good: &RawRecord) -> Vec<(String, String)> {
    fields(now)
        .into_iter()
        .zip(fields(good))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((k, _), (_, b))| (k.to_owned(), b.unwrap_or_default()))
        .collect()
}

async fn record_ids(env: &TestEnv, batch: uuid::Uuid) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number")
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// Replays every parked record of `batch`.
async fn replay_batch(env: &TestEnv, batch: uuid::Uuid) -> remediate::ReplayOutcome {
    let filter = Filter {
        batch_id: Some(batch),
        ..Default::default()
    };
    remediate::replay(
        &env.settings,
        &env.pool,
        &Scope::All,
        &harness::operator(),
        &filter,
    )
    .await
    .unwrap()
}

/// Every validation reason, fixed by the office one record at a time and replayed: each record
/// ends disbursed, and its message leaves `salur.blocked`. A record corrected wrongly stays
/// blocked with its current reason, and keeps its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blocked_reason_is_fixed_and_replayed_to_disbursed() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let defects = harness::defects();
            let good: Vec<RawRecord> = (1..=defects.len() as u32 + 1).map(valid_record).collect();
            let mut spoiled = good.clone();
            for (r, (_, defect)) in spoiled.iter_mut().zip(&defects) {
                defect(r);
            }
            // One more, that the office will correct wrongly.
            spoiled.last_mut().unwrap().mother_name = None;
            let batch = env.submit(&spoiled, "2026-Q4").await;
            let first = env.wait(batch).await;
            assert_eq!(first.count(State::Blocked), spoiled.len() as i64);
            let ids = record_ids(env, batch).await;

            for (i, (code, _)) in defects.iter().enumerate() {
                let fix = corrections(&spoiled[i], &good[i]);
                let out = remediate::fix(
                    &env.settings,
                    &env.pool,
                    &Scope::All,
                    &harness::operator(),
                    ids[i],
                    &fix,
                )
                .await
                .unwrap();
                assert!(out.ready, "{code}: {:?}", out.reasons);
                assert!(out.reasons.is_empty());
                assert_eq!(out.changed.len(), fix.len(), "{code}");
            }
            // A correction that does not fix it: the reason remains and is given back at once.
            let wrong = remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                *ids.last().unwrap(),
                &[("nama_ibu_kandung".into(), "  ".into())],
            )
            .await
            .unwrap();
            assert!(!wrong.ready);
            assert_eq!(
                wrong.reasons.iter().map(|r| r.code).collect::<Vec<_>>(),
                [ReasonCode::MotherNameMissing]
            );

            let replay = replay_batch(env, batch).await;
            assert_eq!(replay.replayed["account_opening"], defects.len() as u64);
            assert_eq!(replay.still_blocked.len(), 1);
            let status = env.wait(batch).await;
            assert_eq!(
                status.count(State::Disbursed),
                defects.len() as i64,
                "{status}"
            );
            assert_eq!(status.count(State::Blocked), 1);
            let got = rows(&env.pool, batch).await;
            assert_eq!(got.last().unwrap().2, vec!["MOTHER_NAME_MISSING"]);
            // The queue agrees with the database: only the still-blocked record's message is left.
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 1).await, 1);
            assert_eq!(
                settlements(env.ledger().await).await.unwrap().len(),
                defects.len()
            );
            // The audit trail shows the correction and the replay, naming fields, not values.
            let view = remediate::show(&env.pool, &Scope::All, ids[7])
                .await
                .unwrap();
            let actions: Vec<String> = view
                .history
                .iter()
                .filter_map(|e| e.detail.as_ref()?.get("action")?.as_str().map(String::from))
                .collect();
            assert_eq!(actions, ["fix", "replay"]);
            assert_eq!(view.state, "disbursed");
        })
        .await;
}

/// Reasons given by the bank (NIK_NOT_FOUND, ACCOUNT_NOT_FOUND) and by verification
/// (NAME_MISMATCH) are fixed and replayed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_and_verification_reasons_are_fixed_and_replayed() {
    harness::env()
        .worker()
        .run(async |env| {
            // An account the bank knows under another holder's name.
            let mut holder = valid_record(9);
            holder.account_number = Some("0021234567".into());
            env.start_bank(SimOptions::default());
            let first = env.submit(&[holder.clone()], "2026-Q3").await;
            assert_eq!(env.wait(first).await.count(State::Disbursed), 1);
            env.stop_services().await;

            env.start_worker();
            env.start_bank(SimOptions {
                reject_rate: 1.0,
                ..Default::default()
            });
            let mut inquiry = valid_record(2);
            inquiry.account_number = Some("0123-4567-8901".into());
            let mut mismatch = valid_record(3);
            mismatch.account_number = holder.account_number.clone();
            mismatch.bank_code = holder.bank_code.clone();
            // The inquiry for a known account is answered from the bank's books, not rejected.
            let batch = env
                .submit(&[valid_record(1), inquiry, mismatch], "2026-Q4")
                .await;
            env.wait(batch).await;
            let got: Vec<Vec<String>> = rows(&env.pool, batch)
                .await
                .into_iter()
                .map(|r| r.2)
                .collect();
            assert_eq!(
                got,
                [
                    vec!["NIK_NOT_FOUND"],
                    vec!["ACCOUNT_NOT_FOUND"],
                    vec!["NAME_MISMATCH"]
                ]
            );
            env.stop_services().await;
            env.start_worker();
            env.start_bank(SimOptions::default());

            let ids = record_ids(env, batch).await;
            let new_nik = valid_record(51).nik.unwrap();
            let fixes: [&[(&str, &str)]; 3] = [
                &[("nik", new_nik.as_str())],
                &[("account_number", "")],
                &[("no_rekening", "")],
            ];
            for (id, fix) in ids.iter().zip(fixes) {
                let fix: Vec<(String, String)> = fix
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let out = remediate::fix(
                    &env.settings,
                    &env.pool,
                    &Scope::All,
                    &harness::operator(),
                    *id,
                    &fix,
                )
                .await
                .unwrap();
                assert!(out.ready, "{out:?}");
            }
            let replay = remediate::replay(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                &Filter {
                    ids: ids.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(replay.replayed_ids, ids);
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 3, "{status}");
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 0).await, 0);
        })
        .await;
}

/// A corrections file with a bad line changes nothing; the right file fixes every blocked
/// record of a generated batch, keyed by row, and another keyed by NIK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_files_are_all_or_nothing() {
    harness::env().pipeline().run(async |env| {
        let demo = generate::generate(300, 40, 7);
        let batch = env.submit(&demo.records, "2026-Q4").await;
        assert_eq!(env.wait(batch).await.count(State::Blocked), 40);

        let mut file = Vec::new();
        generate::write_corrections(&demo.records, &demo.corrected, &mut file).unwrap();
        let text = String::from_utf8(file).unwrap();
        // A row that is not blocked: the whole file is refused, with its line.
        let first_good_row = (1..=300u32)
            .find(|r| !demo.corrected.contains_key(r))
            .unwrap();
        let mut bad = text.clone();
        bad.push_str(&format!("{first_good_row},,,,Siti,,,,,,,,,\n"));
        let err = remediate::fix_file(&env.settings.amount_range, &env.pool, &Scope::All, &harness::operator(), batch, "fixes.csv", bad.as_bytes())
            .await
            .unwrap_err();
        let line = text.lines().count() + 1;
        assert!(
            matches!(&err, RemediateError::FixFile { line: l, .. } if *l == line as u64),
            "{err}"
        );
        assert!(err.to_string().contains("fixes.csv"), "{err}");
        let fixed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM record_events WHERE detail->>'action' = 'fix'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(fixed, 0, "nothing was stored from the refused file");
        // An unknown column is refused too.
        let err = remediate::fix_file(
            &env.settings.amount_range,
            &env.pool,
            &Scope::All,
            &harness::operator(),
            batch,
            "fixes.csv",
            "row,favourite_colour\n1,blue\n".as_bytes(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("favourite_colour"), "{err}");

        // Half the records by row, the other half by NIK (semicolons, as Excel writes them in
        // Indonesia), for the ones whose NIK is right.
        let mut by_row = String::from("row;mother_name;nama;kk;tanggal_lahir;jenis_kelamin;alamat;tempat_lahir;kode_wilayah;kode_bank;nominal;nik\n");
        let mut by_nik = String::from("nik;nama_ibu_kandung\n");
        let mut n_by_nik = 0;
        for (row, good) in &demo.corrected {
            let now = &demo.records[*row as usize - 1];
            let only_mother = corrections(now, good)
                .iter()
                .all(|(k, _)| k == "mother_name");
            if only_mother && n_by_nik < 10 {
                n_by_nik += 1;
                by_nik.push_str(&format!(
                    "{};{}\n",
                    now.nik.clone().unwrap(),
                    good.mother_name.clone().unwrap()
                ));
                continue;
            }
            let v = |x: &Option<String>| x.clone().unwrap_or_default();
            by_row.push_str(&format!(
                "{row};{};{};{};{};{};{};{};{};{};{};{}\n",
                v(&good.mother_name),
                v(&good.name),
                v(&good.kk),
                v(&good.birth_date),
                v(&good.sex),
                v(&good.address),
                v(&good.birth_place),
                v(&good.region_code),
                v(&good.bank_code),
                v(&good.amount),
                v(&good.nik),
            ));
        }
        assert!(n_by_nik > 0);
        let a = remediate::fix_file(&env.settings.amount_range, &env.pool, &Scope::All, &harness::operator(), batch, "rows.csv", by_row.as_bytes())
            .await
            .unwrap();
        let b = remediate::fix_file(&env.settings.amount_range, &env.pool, &Scope::All, &harness::operator(), batch, "niks.csv", by_nik.as_bytes())
            .await
            .unwrap();
        assert_eq!(a.len() + b.len(), 40);
        assert!(a.iter().chain(&b).all(|o| o.ready), "{a:?} {b:?}");
        let replay = remediate::replay(
            &env.settings,
            &env.pool,
            &Scope::All,
            &harness::operator(),
            &Filter {
                reason: None,
                batch_id: Some(batch),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(replay.queues.unwrap().removed, 40);
        assert_eq!(env.wait(batch).await.count(State::Disbursed), 300);
        // Parked messages are published at least once: a late duplicate of a first-pass message
        // is what `dlq reconcile` removes.
        remediate::reconcile(&env.settings, &env.pool).await.unwrap();
        assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 0).await, 0);
    })
    .await;
}

/// Discard closes a record for good, with the why in the audit trail, and its message leaves the
/// queue. Replay works from the database: after an operator purges `salur.blocked`, a fixed
/// record is still replayed, and the still-blocked ones get their messages back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_and_replay_after_a_purge_keep_queues_and_database_in_line() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let mut records: Vec<RawRecord> = (1..=4).map(valid_record).collect();
            for r in &mut records {
                r.mother_name = None;
            }
            let batch = env.submit(&records, "2026-Q4").await;
            env.wait(batch).await;
            let ids = record_ids(env, batch).await;
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 4).await, 4);

            let d = remediate::discard(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                ids[0],
                "recipient died before the period (letter of the village head)",
            )
            .await
            .unwrap();
            assert_eq!(d.was, "blocked");
            assert_eq!(d.queues.unwrap().removed, 1);
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 3).await, 3);
            let view = remediate::show(&env.pool, &Scope::All, ids[0])
                .await
                .unwrap();
            assert_eq!(view.state, "rejected");
            assert_eq!(view.reasons[0].code, ReasonCode::Discarded);
            assert_eq!(
                view.history.last().unwrap().detail.as_ref().unwrap()["why"],
                "recipient died before the period (letter of the village head)"
            );
            assert!(matches!(
                remediate::discard(
                    &env.settings,
                    &env.pool,
                    &Scope::All,
                    &harness::operator(),
                    ids[0],
                    "again"
                )
                .await,
                Err(RemediateError::NotParked { .. })
            ));

            // An operator purges the queue.
            let broker = Broker::connect(&env.settings).await.unwrap();
            let ch = broker.channel().await.unwrap();
            ch.queue_purge(
                env.settings.name(names::BLOCKED_QUEUE).as_str().into(),
                Default::default(),
            )
            .await
            .unwrap();
            broker.close().await;
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 0).await, 0);

            remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                ids[1],
                &[("mother_name".into(), "Yohana Bili".into())],
            )
            .await
            .unwrap();
            let replay = remediate::replay(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                &Filter {
                    batch_id: Some(batch),
                    reason: Some(ReasonCode::MotherNameMissing),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(replay.replayed_ids, [ids[1]]);
            assert_eq!(replay.still_blocked.len(), 2);
            // The two still blocked got their messages back.
            assert_eq!(replay.queues.unwrap().restored, 2);
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 1);
            assert_eq!(status.count(State::Rejected), 1);
            assert_eq!(status.count(State::Blocked), 2);
            assert_eq!(env.settled_depth(names::BLOCKED_QUEUE, 2).await, 2);

            let list = remediate::dlq_list(&env.pool, &Scope::All, &Filter::default(), 10)
                .await
                .unwrap();
            assert_eq!(list.totals["blocked"], 2);
            assert_eq!(list.by_reason["blocked"]["MOTHER_NAME_MISSING"], 2);
            assert_eq!(list.records.len(), 2);
        })
        .await;
}

/// An office sees and changes only its own records: another office's are "not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_cannot_see_or_change_another_offices_records() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let mut r = valid_record(1);
            r.mother_name = None;
            let batch = env.submit(&[r], "2026-Q4").await; // office DINSOS-TEST
            env.wait(batch).await;
            let id = record_ids(env, batch).await[0];
            let other = Scope::Office("DINSOS-OTHER".into());
            let own = Scope::Office("DINSOS-TEST".into());
            assert!(matches!(
                remediate::show(&env.pool, &other, id).await,
                Err(RemediateError::NotFound(_))
            ));
            let fix = [("mother_name".to_string(), "Yohana Bili".to_string())];
            assert!(matches!(
                remediate::fix(
                    &env.settings,
                    &env.pool,
                    &other,
                    &harness::operator(),
                    id,
                    &fix
                )
                .await,
                Err(RemediateError::NotFound(_))
            ));
            assert!(matches!(
                remediate::discard(
                    &env.settings,
                    &env.pool,
                    &other,
                    &harness::operator(),
                    id,
                    "no"
                )
                .await,
                Err(RemediateError::NotFound(_))
            ));
            assert!(matches!(
                remediate::fix_file(
                    &env.settings.amount_range,
                    &env.pool,
                    &other,
                    &harness::operator(),
                    batch,
                    "f.csv",
                    "row,nama\n1,X\n".as_bytes()
                )
                .await,
                Err(RemediateError::BatchNotFound(_))
            ));
            let everything = Filter::default();
            let list = remediate::dlq_list(&env.pool, &other, &everything, 10)
                .await
                .unwrap();
            assert!(list.records.is_empty() && list.totals.is_empty());
            remediate::fix(
                &env.settings,
                &env.pool,
                &own,
                &harness::operator(),
                id,
                &fix,
            )
            .await
            .unwrap();
            let none = remediate::replay(
                &env.settings,
                &env.pool,
                &other,
                &harness::operator(),
                &everything,
            )
            .await
            .unwrap();
            assert!(none.replayed_ids.is_empty());
            let mine = remediate::replay(
                &env.settings,
                &env.pool,
                &own,
                &harness::operator(),
                &everything,
            )
            .await
            .unwrap();
            assert_eq!(mine.replayed_ids, [id]);
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 1);
        })
        .await;
}

/// The record ids of the messages on a parked queue, read without removing them (closing the
/// channel puts them back).
async fn parked_ids(env: &TestEnv, queue: &str) -> Vec<i64> {
    let broker = Broker::connect_with_retry(&env.settings, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let (ch, taken) = broker.take_all(queue).await.unwrap();
    let mut ids: Vec<i64> = taken
        .iter()
        .map(|d| {
            serde_json::from_slice::<salur::messages::ParkedRecord>(&d.data)
                .unwrap()
                .record_id
        })
        .collect();
    let _ = ch.close(200, "read".into()).await;
    broker.close().await;
    ids.sort_unstable();
    ids
}

/// Records the bank refuses every time, replayed 50 times in a row: after each round's one
/// reconcile, `salur.blocked` holds exactly one message per blocked record (none missing, none
/// twice, no late message coming back from an earlier round).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_replay_rounds_leave_one_parked_message_per_blocked_record() {
    const RECORDS: u32 = 120;
    harness::env()
        .settings(|s| s.chunk_size = 10)
        .worker()
        .bank(SimOptions {
            reject_rate: 1.0,
            ..Default::default()
        })
        // 50 rounds within 600 s.
        .time_limit(Some(std::time::Duration::from_secs(600)))
        .run(async |env| {
            let records: Vec<RawRecord> = (1..=RECORDS).map(valid_record).collect();
            let batch = env.submit(&records, "2026-Q4").await;
            assert_eq!(env.wait(batch).await.count(State::Blocked), RECORDS as i64);
            let ids = record_ids(env, batch).await;
            for round in 1..=50 {
                let replay = replay_batch(env, batch).await;
                assert_eq!(replay.replayed_ids.len(), RECORDS as usize, "round {round}");
                let status = env.wait(batch).await;
                assert_eq!(
                    status.count(State::Blocked),
                    RECORDS as i64,
                    "round {round}"
                );
                remediate::reconcile(&env.settings, &env.pool)
                    .await
                    .unwrap();
                let on_queue = parked_ids(env, names::BLOCKED_QUEUE).await;
                assert_eq!(
                    on_queue, ids,
                    "round {round}: the queue disagrees with the database"
                );
            }
        })
        .await;
}
