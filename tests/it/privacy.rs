//! Personal data as UU PDP expects (issue 19): sealed at rest, matched by keyed hash, erased
//! when no longer needed, and given to the person who asks. Real PostgreSQL and RabbitMQ.

use crate::harness::{self as common, TestEnv, valid_record};
use salur::bank::sim::{SimOptions, settlements};
use salur::demo::generate;
use salur::messages::Stage;
use salur::ops::batch;
use salur::ops::privacy::{self, PersonError};
use salur::ops::remediate::{self, Scope};
use salur::stages::{Input, process_one};
use salur::store::State;
use salur::store::sealed::{self, Keyring};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `pg_dump` of the test database as text (`extra` arguments added).
fn pg_dump(env: &TestEnv, extra: &[&str]) -> String {
    pg_dump_database(&env.db_name, extra)
}

/// `pg_dump` of one database of the test (salur's, or bank-sim's ledger).
fn pg_dump_database(name: &str, extra: &[&str]) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", "--no-owner"])
        .args(extra)
        .arg(name)
        .output()
        .expect("pg_dump runs (PostgreSQL client tools are installed by scripts/services.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a text dump")
}

/// The values of the input file that must never be in a dump of salur's schema, with what
/// each is (`NIK` values also searched as bare digits).
fn personal_values(records: &[salur::intake::RawRecord]) -> Vec<(&'static str, u32, String)> {
    let mut out = Vec::new();
    for r in records {
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
            out.push((what, r.row, v.to_owned()));
            if what == "NIK" {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                if digits != v {
                    out.push((what, r.row, digits));
                }
            }
        }
    }
    out
}

/// The dump's text followed by the content of every `bytea` value in it, hex-decoded: a dump
/// writes `bytea` as `\\x<hex>`, so clear text stored in a `bytea` column (an outbox payload)
/// is as readable as text, just not by a plain search of the dump.
fn with_bytea_decoded(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len() * 2);
    out.push_str(dump);
    for part in dump.split("\\x").skip(1) {
        let hex: Vec<u8> = part
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .map(|b| (b as char).to_digit(16).unwrap() as u8)
            .collect();
        let bytes: Vec<u8> = hex.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect();
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out
}

/// Asserts that `dump` holds none of `values`, in text or in a `bytea` value; returns how many
/// were searched.
fn assert_none_in(dump: &str, values: &[(&'static str, u32, String)], when: &str) -> usize {
    let searched = with_bytea_decoded(dump);
    for (what, row, v) in values {
        assert!(
            !searched.contains(v.as_str()),
            "{when}: the dump holds {what} of row {row} in clear"
        );
    }
    values.len()
}

/// The `COPY public.outbox` section of a text dump: its data lines.
fn outbox_rows(dump: &str) -> Vec<&str> {
    dump.split("COPY public.outbox ")
        .nth(1)
        .map(|rest| rest.lines().skip(1).take_while(|l| *l != "\\.").collect())
        .unwrap_or_default()
}

/// Takes the account-opening messages out of the outbox and handles them as the account-opening
/// consumer would, without a relay: the bank requests they produce wait in the outbox, as they do
/// between a stage's commit and the relay's publish (no broker needed for this step).
async fn open_accounts_without_relay(env: &TestEnv) -> usize {
    let messages: Vec<Vec<u8>> = sqlx::query_scalar(
        "DELETE FROM outbox WHERE routing_key = 'account_opening' RETURNING payload",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for payload in &messages {
        process_one(
            &env.settings,
            &env.pool,
            Input::Stage(Stage::AccountOpening),
            payload,
            None,
        )
        .await
        .unwrap();
    }
    messages.len()
}

/// `(routing key, key id)` of every bank request waiting in the outbox (`None`: in clear).
async fn waiting_bank_requests(env: &TestEnv) -> Vec<(String, Option<i32>)> {
    sqlx::query_as(
        "SELECT routing_key, salur_key_id(payload) FROM outbox
         WHERE routing_key LIKE 'bank.%' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_during_and_after_the_batch_holds_no_nik_name_or_mother_name() {
    common::within_limit(async {
        let mut env = TestEnv::new().await;
        let demo = generate::generate(400, 40, 19);
        let values = personal_values(&demo.records);
        assert!(values.len() > 1500, "{} values", values.len());
        let batch = env.submit(&demo.records, "2026-Q4").await;

        // Mid-run: the account-opening requests are committed and not yet published (no relay
        // runs), so the outbox holds them, with every NIK, name and mother's name of the batch.
        assert!(open_accounts_without_relay(&env).await > 0);
        let waiting = waiting_bank_requests(&env).await;
        assert!(
            waiting.len() >= 4,
            "bank requests wait in the outbox: {waiting:?}"
        );
        let current = i32::from(sealed::keyring().unwrap().current());
        assert!(
            waiting.iter().all(|(_, key)| *key == Some(current)),
            "every waiting bank request is sealed with the current key: {waiting:?}"
        );
        let during = pg_dump(&env, &[]);
        assert!(
            outbox_rows(&during).len() >= waiting.len(),
            "the dump holds the waiting requests"
        );
        assert_none_in(&during, &values, "mid-run (bank requests in the outbox)");
        // The search reads inside `bytea` values: the parked records' messages waiting next to
        // the requests are clear JSON, and it sees them.
        assert!(with_bytea_decoded(&during).contains("\"record_id\":"));
        // The search is not blind: the same requests, opened, hold the batch's mothers' names.
        let ring = sealed::keyring().unwrap();
        let rows = salur::store::outbox::take(&mut env.pool.acquire().await.unwrap(), 1000)
            .await
            .unwrap();
        let opened: String = rows
            .into_iter()
            .filter(|(_, m)| m.routing_key.starts_with("bank."))
            .map(|(id, m)| {
                String::from_utf8(salur::store::outbox::open(&ring, id, m).unwrap().payload)
                    .unwrap()
            })
            .collect();
        assert!(
            values
                .iter()
                .filter(|(what, _, _)| *what == "mother's name")
                .any(|(_, _, v)| opened.contains(v.as_str())),
            "an opened request holds a mother's name"
        );

        // Now the relay publishes the sealed requests (opening them) and the batch runs on.
        env.start_worker();
        env.start_bank(SimOptions::default());
        let status = env.wait(batch).await;
        assert_eq!(status.count(State::Disbursed), 360, "{status}");

        // The outbox holds a bank request (NIK, names) from its commit until the relay has
        // published it and deleted it, sealed: the dump after the run is searched whatever the
        // relay has left.
        // salur's whole database: bank-sim, which stands for the bank's systems, keeps its
        // customers in a database of its own.
        let dump = pg_dump(&env, &[]);
        assert!(
            !dump.contains("bank_sim"),
            "bank-sim's ledger is not in salur's database"
        );
        assert!(
            dump.contains("COPY public.records"),
            "the dump has the records"
        );
        assert_none_in(&dump, &values, "after the batch");
        // The search finds clear values where they are: the simulated bank's own database.
        let with_bank = pg_dump_database(&format!("{}_bank", env.db_name), &[]);
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
        env.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_for_one_nik_is_that_person_only_and_erasure_waits_for_payments() {
    common::within_limit(async {
        let mut env = TestEnv::new().await;
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
            "SELECT name, masked FROM records_all WHERE batch_id = $1 AND row_number = 1",
        )
        .bind(first)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        assert_eq!(kept[0].0, None);
        assert_eq!(kept[0].1["nik"], salur::domain::mask_digits(&nik));
        // `records show` (and the API's record view) shows the kept masked forms, as the batch
        // listing and the report do, not empty fields.
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 AND row_number = 1")
                .bind(first)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        let masked_nik = salur::domain::mask_digits(&nik);
        let masked_name = salur::domain::mask_words(me.name.as_deref().unwrap());
        let view = remediate::show(&env.pool, &Scope::All, id).await.unwrap();
        assert_eq!(view.fields["nik"].as_deref(), Some(masked_nik.as_str()));
        assert_eq!(view.fields["name"].as_deref(), Some(masked_name.as_str()));
        assert_eq!(view.fields["mother_name"], None, "erased, nothing kept");
        let dir = std::env::temp_dir().join(format!("salur-keys-{}", env.db_name));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("data-keys");
        std::fs::write(&keys, sealed::keyring().unwrap().to_text()).unwrap();
        let shown = salur(&env, &keys, &["records", "show", &id.to_string()])
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.status.success(),
            "{}",
            String::from_utf8_lossy(&shown.stderr)
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("nik") && l.contains(&masked_nik)),
            "{text}"
        );
        assert!(text.contains(&masked_name), "{text}");
        assert!(!text.contains(&nik), "{text}");
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
        env.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_closed_batches_past_their_period_and_totals_stay() {
    common::within_limit(async {
        let mut env = TestEnv::new().await;
        env.start_worker();
        env.start_bank(SimOptions::default());
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
        // The old batch closed 40 days ago (its records' last change, as its counters keep
        // it); BPNT keeps personal data 30 days.
        for sql in [
            "UPDATE records SET updated_at = now() - interval '40 days' WHERE batch_id = $1",
            "UPDATE batch_counts SET last_change = now() - interval '40 days' WHERE batch_id = $1",
        ] {
            sqlx::query(sql).bind(old).execute(&env.pool).await.unwrap();
        }
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
             FROM records_all WHERE batch_id = $1",
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
            "SELECT count(*) FROM records_all WHERE batch_id = $1 AND nik IS NOT NULL",
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
        env.cleanup().await;
    })
    .await;
}

/// A `salur` process on the test's database and namespace, with its own key file.
fn salur(env: &TestEnv, keys: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_salur"));
    c.args(args)
        .env("DATABASE_URL", &env.settings.database_url)
        .env("SALUR_BANK_LEDGER_URL", env.settings.bank_ledger_url())
        .env("AMQP_URL", &env.settings.amqp_url)
        .env("SALUR_NAMESPACE", &env.settings.namespace)
        .env("METRICS_ADDR", "off")
        .env_remove("SALUR_DATA_KEYS")
        .env("SALUR_DATA_KEY_FILE", keys);
    c
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_a_batch_runs_loses_nothing_and_a_wrong_key_stops_the_worker() {
    common::within_limit(async {
        let env = TestEnv::new().await;
        // This test's processes use their own copy of the key file, so that rotating it does
        // not touch the keys of other tests.
        let dir = std::env::temp_dir().join(format!("salur-keys-{}", env.db_name));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("data-keys");
        std::fs::copy(sealed::keyring().unwrap().source.clone(), &keys)
            .or_else(|_| std::fs::copy(sealed::default_key_file(), &keys))
            .unwrap();

        let _worker = Child(
            salur(&env, &keys, &["worker"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let _bank = Child(
            salur(
                &env,
                &keys,
                &["bank-sim", "--delay-ms", "1500", "--concurrency", "2"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        );
        let demo = generate::generate(2000, 200, 23);
        let batch_id = env.submit(&demo.records, "2026-Q4").await;
        let at_start = batch::status(&env.pool, batch_id).await.unwrap();
        assert!(at_start.in_flight > 0);

        let rotate = salur(&env, &keys, &["keys", "rotate"])
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
        assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 1800);
        // Everything is sealed with key 2 (also what was written after the pass began).
        let per_key: Vec<(Option<i32>, i64)> = salur::store::personal::values_per_key(&env.pool)
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
        let export = salur(&env, &keys, &["person-data", "export", "--nik", &someone])
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
        let out = salur(&env, &keys, &["worker"])
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
        let out = salur(&env, &keys, &["worker"])
            .env("SALUR_DATA_KEYS", &only_old)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("data key 1") || err.contains("data key 2"),
            "{err}"
        );
        drop(_worker);
        drop(_bank);
        let _ = std::fs::remove_dir_all(&dir);
        env.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_re_seals_the_bank_requests_waiting_in_the_outbox() {
    common::within_limit(async {
        let env = TestEnv::new().await;
        // The child processes use a key file of their own holding this process's keys.
        let dir = std::env::temp_dir().join(format!("salur-keys-{}", env.db_name));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("data-keys");
        let ring = sealed::keyring().unwrap();
        std::fs::write(&keys, ring.to_text()).unwrap();
        let old = i32::from(ring.current());

        let demo = generate::generate(300, 30, 29);
        let batch_id = env.submit(&demo.records, "2026-Q4").await;
        assert!(open_accounts_without_relay(&env).await > 0);
        let before = waiting_bank_requests(&env).await;
        assert!(before.len() >= 3, "{before:?}");
        assert!(before.iter().all(|(_, k)| *k == Some(old)), "{before:?}");

        let rotate = salur(&env, &keys, &["keys", "rotate"]).output().unwrap();
        let said = String::from_utf8_lossy(&rotate.stdout).to_string();
        assert!(
            rotate.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&rotate.stderr)
        );
        let new = old + 1;
        assert!(said.contains(&format!("key {new} encrypts")), "{said}");
        // The same requests, nothing published or lost, now sealed with the new key.
        let after = waiting_bank_requests(&env).await;
        assert_eq!(
            after.iter().map(|(rk, _)| rk).collect::<Vec<_>>(),
            before.iter().map(|(rk, _)| rk).collect::<Vec<_>>()
        );
        assert!(after.iter().all(|(_, k)| *k == Some(new)), "{after:?}");
        let status = salur(&env, &keys, &["keys", "status"]).output().unwrap();
        let status = String::from_utf8_lossy(&status.stdout).to_string();
        assert!(
            status.contains(&format!(
                "bank requests in the outbox sealed with key {new}: {}",
                after.len()
            )),
            "{status}"
        );

        // The old key goes; a worker with the new key alone publishes the waiting requests
        // (its relay opens them) and the batch ends as it would have.
        let only_new: String = std::fs::read_to_string(&keys)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("hash:") || l.starts_with(&format!("{new}:")))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&keys, &only_new).unwrap();
        let _worker = Child(
            salur(&env, &keys, &["worker"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let _bank = Child(
            salur(&env, &keys, &["bank-sim"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let status = env.wait(batch_id).await;
        assert_eq!(status.count(State::Disbursed), 270, "{status}");
        assert_eq!(status.count(State::Blocked), 30, "{status}");
        assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 270);
        assert!(waiting_bank_requests(&env).await.is_empty());
        drop(_worker);
        drop(_bank);
        let _ = std::fs::remove_dir_all(&dir);
        env.cleanup().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_written_in_clear_before_encryption_are_sealed_by_migrate() {
    common::within_limit(async {
        let env = TestEnv::new().await;
        let id = env.submit(&[valid_record(1)], "2026-Q4").await;
        // A record as migration 0006 leaves an old one: clear text behind a 0x00 byte.
        let name = valid_record(1).name.unwrap();
        sqlx::query(
            "UPDATE record_data SET name = '\\x00'::bytea || convert_to($2, 'UTF8'), nik_hash = NULL
             WHERE id IN (SELECT id FROM records WHERE batch_id = $1)",
        )
        .bind(id)
        .bind(&name)
        .execute(&env.pool)
        .await
        .unwrap();
        assert_eq!(
            salur::store::personal::pending(&env.pool, salur::store::personal::Reseal::LegacyOnly)
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
            sqlx::query_as("SELECT name, nik_hash FROM records_all WHERE batch_id = $1")
                .bind(id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(sealed_name[0], 1);
        assert!(hash.is_some());
        env.cleanup().await;
    })
    .await;
}
