//! Test harness: every test gets its own PostgreSQL database and its own RabbitMQ virtual host,
//! on the real services, so tests run in parallel and leave nothing behind: both are removed
//! when the [`TestEnv`] is dropped, also when the test fails (`scripts/test.sh` removes those of
//! runs that were killed).
#![allow(dead_code)]

use salur::bank::sim::{self, SimOptions};
use salur::broker::{Broker, topology};
use salur::config::Settings;
use salur::intake::RawRecord;
use salur::metrics::Metrics;
use salur::ops::batch::{self, BatchStatus};
use salur::ops::submit::{self, BatchInfo};
use salur::worker::{self, WorkerOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestEnv {
    pub settings: Settings,
    pub pool: PgPool,
    pub db_name: String,
    tasks: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    /// Removes the vhost and the database when the environment goes, however it goes.
    _leftovers: Leftovers,
}

/// The test's RabbitMQ vhost and PostgreSQL database, both named `salur_test_<id>`, removed on
/// drop with blocking commands (a panicking test cannot await).
struct Leftovers {
    name: String,
    admin_db_url: String,
    /// Whether the vhost was made (not for [`TestEnv::database_only`]).
    vhost: bool,
}

impl Leftovers {
    /// Creates the vhost and gives `user` every permission on it (waiting up to a minute for
    /// a broker that another test run is restarting). Called once the database exists:
    /// `scripts/test.sh` takes a test vhost without its database for a killed run's.
    fn create_vhost(&mut self, user: &str) {
        self.vhost = true;
        let name = self.name.as_str();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for args in [
            &["add_vhost", name][..],
            &["set_permissions", "-p", name, user, ".*", ".*", ".*"],
        ] {
            while let Err(e) = try_rabbitmqctl(args) {
                assert!(std::time::Instant::now() < deadline, "{e}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if self.vhost {
            let _ = std::process::Command::new("rabbitmqctl")
                .args(["-q", "delete_vhost", &self.name])
                .output();
        }
        let _ = std::process::Command::new("psql")
            .args([
                &self.admin_db_url,
                "-qc",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Runs `rabbitmqctl -q ARGS` (on the node of `RABBITMQ_NODENAME`, the local one by default).
pub fn try_rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl (installed with rabbitmq-server by scripts/services.sh)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The user name in an AMQP URL (`guest` when it names none).
fn amqp_user(url: &str) -> String {
    let first = &salur::config::amqp_addresses(url)[0];
    let rest = first.split_once("://").map_or(first.as_str(), |(_, r)| r);
    match rest.rsplit_once('@') {
        Some((userinfo, _)) => userinfo.split(':').next().unwrap_or("guest").to_owned(),
        None => "guest".to_owned(),
    }
}

fn base_settings() -> Settings {
    let mut s = Settings::from_env().expect("settings");
    s.metrics_addr = None;
    s.db_pool = 20;
    s
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_settings(|_| {}).await
    }

    /// A test environment whose settings `tune` changes first (retry tiers, timeouts, …).
    pub async fn with_settings(tune: impl FnOnce(&mut Settings)) -> Self {
        Self::create(tune, true).await
    }

    /// A database of its own and nothing on the broker: for tests of the HTTP API and of
    /// stages called directly, which publish nothing (the outbox keeps what they would send).
    pub async fn database_only(tune: impl FnOnce(&mut Settings)) -> Self {
        Self::create(tune, false).await
    }

    async fn create(tune: impl FnOnce(&mut Settings), broker: bool) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn,lapin=off".into()),
            )
            .with_test_writer()
            .try_init();
        let mut settings = base_settings();
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("salur_test_{}", &id[..12]);
        let base = settings
            .database_url
            .rsplit_once('/')
            .expect("url has a path")
            .0
            .to_owned();
        settings.database_url = format!("{base}/{db_name}");
        let mut leftovers = Leftovers {
            name: db_name.clone(),
            admin_db_url: format!("{base}/postgres"),
            vhost: false,
        };
        let user = amqp_user(&settings.amqp_url);
        settings.amqp_url = salur::config::amqp_url_on_vhost(&settings.amqp_url, &db_name);
        settings.namespace = String::new();
        tune(&mut settings);
        // Another test run on this machine may be restarting a service (tests/outage.rs): wait
        // for it rather than fail.
        let pool = retry_for_a_minute(|| salur::store::migrate(&settings))
            .await
            .expect("migrate");
        if broker {
            leftovers.create_vhost(&user);
            let b = Broker::connect_with_retry(&settings, Duration::from_secs(60))
                .await
                .expect("rabbitmq");
            topology::declare(&b).await.expect("topology");
            b.close().await;
        }
        Self {
            settings,
            pool,
            db_name,
            tasks: Vec::new(),
            _leftovers: leftovers,
        }
    }

    /// Starts a worker for every stage; returns its metrics.
    pub fn start_worker(&mut self) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::new());
        self.start_worker_with_metrics(metrics.clone());
        metrics
    }

    /// A worker counting into `metrics`, so that a test can scrape them.
    pub fn start_worker_with_metrics(&mut self, metrics: Arc<Metrics>) {
        let cancel = CancellationToken::new();
        let h = tokio::spawn(worker::run(
            self.settings.clone(),
            self.pool.clone(),
            WorkerOptions::default(),
            metrics,
            cancel.clone(),
        ));
        self.tasks.push((cancel, h));
    }

    pub fn start_bank(&mut self, opts: SimOptions) {
        let cancel = CancellationToken::new();
        let h = tokio::spawn(sim::run(
            self.settings.clone(),
            self.pool.clone(),
            opts,
            cancel.clone(),
        ));
        self.tasks.push((cancel, h));
    }

    pub async fn submit(&self, rows: &[RawRecord], period: &str) -> Uuid {
        submit::submit_records(
            &self.settings,
            &self.pool,
            "test.csv",
            rows,
            &BatchInfo {
                office: "DINSOS-TEST".into(),
                program: "BPNT".into(),
                period: period.into(),
            },
        )
        .await
        .expect("submit")
    }

    /// Waits until no record of the batch is in flight (riding out a database restart).
    pub async fn wait(&self, batch_id: Uuid) -> BatchStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            match batch::status(&self.pool, batch_id).await {
                Ok(s) if s.in_flight == 0 => return s,
                Ok(_) => {}
                Err(batch::BatchError::Database(_)) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "batch {batch_id} did not settle in 180 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Messages ready on a queue of this namespace (base name).
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let b = Broker::connect_with_retry(&self.settings, Duration::from_secs(60))
            .await
            .unwrap();
        let n = b.queue_depth(queue).await.unwrap();
        b.close().await;
        n
    }

    /// The queue's depth once it has reached `expected` or stopped changing for 2 s (parked
    /// messages reach their queue through the outbox relay, shortly after the state change).
    pub async fn settled_depth(&self, queue: &str, expected: u32) -> u32 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (mut last, mut since) = (u32::MAX, std::time::Instant::now());
        loop {
            let n = self.queue_depth(queue).await;
            if n == expected || std::time::Instant::now() > deadline {
                return n;
            }
            if n != last {
                (last, since) = (n, std::time::Instant::now());
            } else if since.elapsed() > Duration::from_secs(2) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop_services(&mut self) {
        for (cancel, h) in self.tasks.drain(..) {
            cancel.cancel();
            h.await.expect("task").expect("service ends cleanly");
        }
    }

    /// Stops what runs, deletes the test's bank users (users are global to the broker), then
    /// the vhost (with its queues) and the database go with the environment.
    pub async fn cleanup(mut self) {
        self.stop_services().await;
        let _ = salur::bank::users::remove_namespace_users(&self.settings).await;
        self.pool.close().await;
    }
}

/// A failed test (a panic) drops its environment without `cleanup`: its bank users are deleted
/// here all the same (users are global to the broker, not to the test's namespace).
impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let settings = self.settings.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(salur::bank::users::remove_namespace_users(&settings))
        })
        .join();
    }
}

/// One complete, valid recipient (row numbers and NIK serials from `n`).
pub fn valid_record(n: u32) -> RawRecord {
    RawRecord {
        row: n,
        nik: Some(format!("537101450880{:04}", n % 10_000 + 1)),
        kk: Some(format!("537101010120{:04}", n % 10_000 + 1)),
        name: Some(format!("Maria Goreti Ndolu {n}")),
        mother_name: Some("Yohana Bili".into()),
        birth_place: Some("Kupang".into()),
        birth_date: Some("1980-08-05".into()),
        sex: Some("P".into()),
        address: Some("Jl. El Tari No. 5, RT 002/RW 001".into()),
        region_code: Some("53.71.01.1001".into()),
        phone: Some("081234567890".into()),
        bank_code: Some("002".into()),
        account_number: None,
        amount: Some("600000".into()),
    }
}

/// Tries `f` until it succeeds, for up to a minute.
pub async fn retry_for_a_minute<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// A defect that blocks a record with one reason code.
pub type Defect = (&'static str, fn(&mut RawRecord));

/// One defect per validation reason code, applied to a [`valid_record`].
pub fn defects() -> Vec<Defect> {
    vec![
        ("NIK_MISSING", |r| r.nik = None),
        ("NIK_INVALID", |r| r.nik = Some("537101450880001".into())),
        ("NIK_BIRTH_DATE_MISMATCH", |r| {
            r.birth_date = Some("1981-08-05".into())
        }),
        ("NIK_SEX_MISMATCH", |r| r.sex = Some("L".into())),
        ("KK_MISSING", |r| r.kk = None),
        ("KK_INVALID", |r| r.kk = Some("1001010101200001".into())),
        ("NAME_MISSING", |r| r.name = Some("  ".into())),
        ("MOTHER_NAME_MISSING", |r| r.mother_name = None),
        ("BIRTH_PLACE_MISSING", |r| r.birth_place = Some("-".into())),
        ("BIRTH_DATE_MISSING", |r| r.birth_date = None),
        ("BIRTH_DATE_INVALID", |r| {
            r.birth_date = Some("31/02/1980".into())
        }),
        ("SEX_MISSING", |r| r.sex = None),
        ("SEX_INVALID", |r| r.sex = Some("X".into())),
        ("ADDRESS_MISSING", |r| r.address = None),
        ("REGION_CODE_MISSING", |r| r.region_code = None),
        ("REGION_CODE_INVALID", |r| {
            r.region_code = Some("99.71.01.1001".into())
        }),
        ("BANK_UNKNOWN", |r| r.bank_code = Some("999".into())),
        ("ACCOUNT_NUMBER_INVALID", |r| {
            r.account_number = Some("12AB".into())
        }),
        ("AMOUNT_INVALID", |r| {
            r.amount = Some("enam ratus ribu".into())
        }),
    ]
}

/// A record's values by field key, in file order.
pub fn fields(r: &RawRecord) -> Vec<(&'static str, Option<String>)> {
    salur::intake::file::field_keys()
        .zip(r.values())
        .map(|(k, v)| (k, v.clone()))
        .collect()
}

/// Record states and reason codes per row.
pub async fn rows(pool: &PgPool, batch_id: Uuid) -> Vec<(i32, String, Vec<String>)> {
    let rows: Vec<(i32, String, serde_json::Value)> = sqlx::query_as(
        "SELECT row_number, state, reasons FROM records WHERE batch_id = $1 ORDER BY row_number",
    )
    .bind(batch_id)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(row, state, reasons)| {
            let codes = reasons
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap().to_owned())
                .collect();
            (row, state, codes)
        })
        .collect()
}

/// Runs a test body with a time limit, so that a hang fails the test instead of the CI run.
pub async fn within_limit(body: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(240), body)
        .await
        .expect("the test did not finish within 240 s");
}
