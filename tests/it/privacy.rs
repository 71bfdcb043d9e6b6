//! Personal data as UU PDP expects (issue 19): sealed at rest, matched by keyed hash, erased
//! when no longer needed, and given to the person who asks. Real PostgreSQL and RabbitMQ.

use crate::harness::{self, TestEnv, valid_record};
use salur::bank::sim::{SimOptions, settlements};
use salur::intake::generate;
use salur::ops::batch;
use salur::ops::privacy::{self, PersonError};
use salur::store::State;
use salur::store::sealed::{self, Keyring};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `pg_dump` of the test database as text (`extra` arguments added).
fn pg_dump(env: &TestEnv, extra: &[&str]) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", "--no-owner"])
        .args(extra)
        .arg(&env.db_name)
        .output()
        .expect("pg_dump runs (PostgreSQL client tools are installed by scripts/services.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a text dump")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_after_the_batch_holds_no_nik_name_or_mother_name() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let demo = generate::generate(400, 40, 19);
            let batch = env.submit(&demo.records, "2026-Q4").await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 360, "{status}");

            // The outbox holds a bank request (NIK, names) from its commit until the relay has
            // published it and deleted it, which can be a moment after the bank already answered:
            // the dump is taken once the relay is done (see the README, "Personal data").
            for _ in 0..100 {
                let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
                if pending == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // salur's own schema. bank_sim stands for the bank's systems (the reference bank keeps
            // its customers in this database only because it is a simulator).
            let dump = pg_dump(env, &["--exclude-schema=bank_sim"]);
            assert!(
                dump.contains("COPY public.records"),
                "the dump has the records"
            );
            let mut searched = 0;
            for r in &demo.records {
                for (what, value) in [
                    ("NIK", &r.nik),
                    ("name", &r.name),
                    ("mother's name", &r.mother_name),
                    ("KK", &r.kk),
                    ("address", &r.address),
                ] {
                    let Some(v) = value.as_deref().filter(|v| v.len() >= 4) else {
                        continue;
                    };
                    searched += 1;
                    assert!(
                        !dump.contains(v),
                        "the dump holds {what} of row {} in clear",
                        r.row
                    );
                    if what == "NIK" {
                        let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                        assert!(
                            !dump.contains(&digits),
                            "the dump holds a NIK of row {}",
                            r.row
                        );
                    }
                }
            }
            assert!(searched > 1500, "searched {searched} values");
            // The search finds clear values where they are: the simulated bank's own tables.
            let with_bank = pg_dump(env, &[]);
            assert!(
                demo.records
                    .iter()
                    .filter_map(|r| r.nik.as_deref())
                    .any(|n| with_bank.contains(n)),
                "the search would see a NIK in clear"
            );

            // Claims hold a keyed hash, no NIK.
            let claim_columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns
             WHERE table_name = 'recipient_claims' ORDER BY 1",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert!(
                !claim_columns.iter().any(|c| c == "nik"),
                "{claim_columns:?}"
            );
            // Mother's names are gone once the account is open and verified, the audit says so;
            // blocked records (account not open yet) keep theirs, sealed.
            let (paid_with_mother, blocked_with_mother, audited): (i64, i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE state = 'disbursed' AND mother_name IS NOT NULL),
                    count(*) FILTER (WHERE state = 'blocked' AND mother_name IS NOT NULL),
                    (SELECT count(*) FROM record_events WHERE to_state = 'verified'
                       AND detail ? 'mother_name')
             FROM records",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(paid_with_mother, 0);
            assert!(blocked_with_mother > 0);
            assert_eq!(audited, 360);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_for_one_nik_is_that_person_only_and_erasure_waits_for_payments() {
    harness::env()
        .run(async |env| {
            let me = valid_record(1);
            let mut other = valid_record(2);
            other.mother_name = Some("Theresia Dhey".into());
            let nik = me.nik.clone().unwrap();
            let first = env.submit(&[me.clone(), other.clone()], "2026-Q4").await;
            let second = env.submit(std::slice::from_ref(&me), "2027-Q1").await;

            // With separators, as a clerk types it.
            let typed = format!("{}.{}-{}", &nik[..6], &nik[6..12], &nik[12..]);
            let data = privacy::person_data(&env.pool, &typed, "test-admin", false)
                .await
                .unwrap();
            assert_eq!(data.records.len(), 2);
            let text = serde_json::to_string(&data).unwrap();
            assert!(text.contains(&nik) && text.contains(me.name.as_deref().unwrap()));
            assert!(text.contains(me.mother_name.as_deref().unwrap()));
            assert!(!text.contains(other.nik.as_deref().unwrap()));
            assert!(!text.contains(other.name.as_deref().unwrap()));
            assert!(!text.contains(other.mother_name.as_deref().unwrap()));

            // Erasure is refused while a payment is in flight, and changes nothing.
            let e = privacy::person_data(&env.pool, &nik, "test-admin", true)
                .await
                .unwrap_err();
            assert!(matches!(e.downcast_ref(), Some(PersonError::InFlight(ids)) if ids.len() == 2));

            env.start_worker();
            env.start_bank(SimOptions::default());
            let before = env.wait(first).await;
            env.wait(second).await;
            let erased = privacy::person_data(&env.pool, &nik, "test-admin", true)
                .await
                .unwrap();
            assert!(erased.erased);
            // Gone: nothing is found by that NIK any more; the records keep state, amount and
            // masked forms, so the batch adds up as before.
            let e = privacy::person_data(&env.pool, &nik, "test-admin", false)
                .await
                .unwrap_err();
            assert!(matches!(e.downcast_ref(), Some(PersonError::NotFound)));
            assert_eq!(batch::status(&env.pool, first).await.unwrap(), before);
            let kept: Vec<(Option<Vec<u8>>, serde_json::Value)> = sqlx::query_as(
                "SELECT name, masked FROM records WHERE batch_id = $1 AND row_number = 1",
            )
            .bind(first)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(kept[0].0, None);
            assert_eq!(kept[0].1["nik"], salur::domain::mask_digits(&nik));
            // The other person is untouched.
            assert_eq!(
                privacy::person_data(&env.pool, other.nik.as_deref().unwrap(), "t", false)
                    .await
                    .unwrap()
                    .records
                    .len(),
                1
            );
            let log: Vec<(String, String)> =
                sqlx::query_as("SELECT action, actor FROM personal_data_log ORDER BY id")
                    .fetch_all(&env.pool)
                    .await
                    .unwrap();
            let actions: Vec<&str> = log.iter().map(|(a, _)| a.as_str()).collect();
            assert_eq!(actions, ["export", "export", "erase", "export"]);
            assert!(log.iter().all(|(_, who)| who == "test-admin" || who == "t"));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_closed_batches_past_their_period_and_totals_stay() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let demo = generate::generate(50, 10, 5);
            let old = env.submit(&demo.records, "2026-Q4").await;
            let before = env.wait(old).await;
            let young = env.submit(&[valid_record(900)], "2026-Q4").await;
            env.wait(young).await;
            let report = |id| {
                let pool = env.pool.clone();
                async move {
                    let mut out = Vec::new();
                    batch::report(&pool, id, &mut out).await.unwrap();
                    String::from_utf8(out).unwrap()
                }
            };
            let report_before = report(old).await;

            // Nothing is past the default period (five years).
            let run = privacy::apply_retention(&env.pool, 1826, false, "test")
                .await
                .unwrap();
            assert!(run.batches.is_empty());
            // The old batch closed 40 days ago; BPNT keeps personal data 30 days.
            sqlx::query(
                "UPDATE records SET updated_at = now() - interval '40 days' WHERE batch_id = $1",
            )
            .bind(old)
            .execute(&env.pool)
            .await
            .unwrap();
            privacy::set_retention(&env.pool, "BPNT", 30).await.unwrap();
            let dry = privacy::apply_retention(&env.pool, 1826, true, "test")
                .await
                .unwrap();
            assert_eq!(
                dry.batches.iter().map(|b| b.batch_id).collect::<Vec<_>>(),
                [old]
            );
            assert_eq!(dry.records_erased, 0);
            let run = privacy::apply_retention(&env.pool, 1826, false, "test")
                .await
                .unwrap();
            assert_eq!(run.records_erased, 50);

            let personal: (i64, i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE nik IS NOT NULL OR name IS NOT NULL
                                       OR mother_name IS NOT NULL OR kk IS NOT NULL
                                       OR address IS NOT NULL OR bank_account IS NOT NULL
                                       OR nik_hash IS NOT NULL),
                    count(*) FILTER (WHERE erased_at IS NOT NULL),
                    count(*) FILTER (WHERE bank_reference IS NOT NULL)
             FROM records WHERE batch_id = $1",
            )
            .bind(old)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(personal, (0, 50, 40));
            // Totals, states, reasons and the report (masked NIKs) are as before.
            assert_eq!(batch::status(&env.pool, old).await.unwrap(), before);
            assert_eq!(report(old).await, report_before);
            // The young batch keeps its data; a second run finds nothing more.
            let young_kept: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM records WHERE batch_id = $1 AND nik IS NOT NULL",
            )
            .bind(young)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(young_kept, 1);
            let again = privacy::apply_retention(&env.pool, 1826, false, "test")
                .await
                .unwrap();
            assert!(again.batches.is_empty());
        })
        .await;
}

/// A `salur` process on the test's database and namespace, with its own key file.
fn salur(env: &TestEnv, keys: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_salur"));
    c.args(args)
        .env("DATABASE_URL", &env.settings.database_url)
        .env("AMQP_URL", &env.settings.amqp_url)
        .env("SALUR_NAMESPACE", &env.settings.namespace)
        .env("METRICS_ADDR", "off")
        .env_remove("SALUR_DATA_KEYS")
        .env("SALUR_DATA_KEY_FILE", keys);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_a_batch_runs_loses_nothing_and_a_wrong_key_stops_the_worker() {
    harness::env()
        .run(async |env| {
            // This test's processes use their own copy of the key file, so that rotating it does
            // not touch the keys of other tests.
            let keys = env.temp_path("data-keys");
            std::fs::copy(sealed::keyring().unwrap().source.clone(), &keys)
                .or_else(|_| std::fs::copy(sealed::default_key_file(), &keys))
                .unwrap();

            let worker = env.spawn(
                salur(env, &keys, &["worker"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let bank = env.spawn(
                salur(
                    env,
                    &keys,
                    &["bank-sim", "--delay-ms", "1500", "--concurrency", "2"],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            );
            let demo = generate::generate(2000, 200, 23);
            let batch_id = env.submit(&demo.records, "2026-Q4").await;
            let at_start = batch::status(&env.pool, batch_id).await.unwrap();
            assert!(at_start.in_flight > 0);

            let rotate = salur(env, &keys, &["keys", "rotate"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The re-seal pass starts after 3 s (running processes re-read the key file): the batch
            // is still moving then.
            tokio::time::sleep(Duration::from_secs(4)).await;
            let during = batch::status(&env.pool, batch_id).await.unwrap();
            assert!(during.in_flight > 0, "the batch runs while the keys rotate");
            let rotate = tokio::task::spawn_blocking(move || rotate.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            let said = String::from_utf8_lossy(&rotate.stdout).to_string();
            assert!(
                rotate.status.success(),
                "{said}{}",
                String::from_utf8_lossy(&rotate.stderr)
            );
            assert!(said.contains("key 2 encrypts"), "{said}");

            let status = env.wait(batch_id).await;
            assert_eq!(status.count(State::Disbursed), 1800, "{status}");
            assert_eq!(status.count(State::Blocked), 200, "{status}");
            assert_eq!(settlements(&env.pool).await.unwrap().len(), 1800);
            // Everything is sealed with key 2 (also what was written after the pass began).
            let per_key: Vec<(Option<i32>, i64)> =
                salur::store::personal::values_per_key(&env.pool)
                    .await
                    .unwrap();
            assert!(per_key.iter().all(|(k, _)| *k == Some(2)), "{per_key:?}");
            let retired: Vec<i32> = sqlx::query_scalar(
                "SELECT key_id FROM data_keys WHERE retired_at IS NOT NULL ORDER BY 1",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(retired, [1]);

            // The old key can go: every value still opens with key 2 alone.
            let ring = Keyring::parse(&std::fs::read_to_string(&keys).unwrap(), "test").unwrap();
            assert_eq!(ring.ids(), [1, 2]);
            let without_1: String = std::fs::read_to_string(&keys)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("1:"))
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(&keys, &without_1).unwrap();
            let someone = demo.records[0].nik.clone().unwrap();
            let export = salur(env, &keys, &["person-data", "export", "--nik", &someone])
                .output()
                .unwrap();
            assert!(
                export.status.success(),
                "{}",
                String::from_utf8_lossy(&export.stderr)
            );
            let exported = String::from_utf8_lossy(&export.stdout);
            assert!(exported.contains(demo.records[0].name.as_deref().unwrap()));

            // A wrong key stops a worker at start-up, with a message that says what to do.
            let wrong = Keyring::generate().to_text();
            let out = salur(env, &keys, &["worker"])
                .env("SALUR_DATA_KEYS", &wrong)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(
                err.contains("is not the key this database was written with"),
                "{err}"
            );
            // So does a key ring without the key the data is sealed with.
            let only_old = format!(
                "{}\n{}",
                without_1.lines().find(|l| l.starts_with("hash:")).unwrap(),
                Keyring::generate()
                    .to_text()
                    .lines()
                    .find(|l| l.starts_with("1:"))
                    .unwrap()
            );
            let out = salur(env, &keys, &["worker"])
                .env("SALUR_DATA_KEYS", &only_old)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(
                err.contains("data key 1") || err.contains("data key 2"),
                "{err}"
            );
            drop(worker);
            drop(bank);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_written_in_clear_before_encryption_are_sealed_by_migrate() {
    harness::env()
        .run(async |env| {
            let id = env.submit(&[valid_record(1)], "2026-Q4").await;
            // A record as migration 0006 leaves an old one: clear text behind a 0x00 byte.
            let name = valid_record(1).name.unwrap();
            sqlx::query(
            "UPDATE records SET name = '\\x00'::bytea || convert_to($2, 'UTF8'), nik_hash = NULL
             WHERE batch_id = $1",
        )
        .bind(id)
        .bind(&name)
        .execute(&env.pool)
        .await
        .unwrap();
            assert_eq!(
                salur::store::personal::pending(
                    &env.pool,
                    salur::store::personal::Reseal::LegacyOnly
                )
                .await
                .unwrap(),
                1
            );
            let n = salur::store::personal::reseal_all(
                &env.pool,
                salur::store::personal::Reseal::LegacyOnly,
                100,
                |_| {},
            )
            .await
            .unwrap();
            assert_eq!(n, 1);
            let (sealed_name, hash): (Vec<u8>, Option<Vec<u8>>) =
                sqlx::query_as("SELECT name, nik_hash FROM records WHERE batch_id = $1")
                    .bind(id)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(sealed_name[0], 1);
            assert!(hash.is_some());
        })
        .await;
}
