//! A test environment: its own PostgreSQL database (migrated) and, unless it is database-only,
//! its own RabbitMQ virtual host with salur's topology, both named `salur_test_<id>`, on the
//! real services; bank-sim's ledger database `salur_test_<id>_bank` (made when bank-sim starts
//! or a test reads the ledger, [`TestEnv::ledger`]); settings pointing at them; the services a test starts (worker, bank-sim); a
//! temporary directory. Everything goes when the [`TestEnv`] is dropped, also when the test
//! panics: services stopped, bank users deleted, database dropped, vhost deleted, temporary
//! directory removed (`scripts/test.sh` removes those of runs that were killed). Processes a test
//! spawns are [`Proc`](super::Proc)s, killed when they go.
//!
//! [`env()`] gives a [`Builder`]; [`Builder::run`] is the usual way in: it builds the
//! environment, runs the test body within a time limit, then stops the services (checking that
//! they end cleanly) and removes everything.

use super::lock::Hold;
use super::retry_for_a_minute;
use salur::bank::sim::{self, SimOptions};
use salur::broker::{Broker, topology};
use salur::config::Settings;
use salur::intake::RawRecord;
use salur::metrics::Metrics;
use salur::ops::batch::{self, BatchStatus};
use salur::ops::submit::{self, BatchInfo};
use salur::worker::{self, WorkerOptions};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The time limit of [`Builder::run`] unless the test sets another: a hang fails the test
/// instead of the CI run.
pub const TIME_LIMIT: Duration = Duration::from_secs(240);

pub struct TestEnv {
    pub settings: Settings,
    pub pool: PgPool,
    pub db_name: String,
    /// bank-sim's ledger (its own database), connected (and created) on first use.
    ledger: Arc<tokio::sync::OnceCell<PgPool>>,
    tasks: Vec<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    /// The metrics of the first worker started.
    worker_metrics: Option<Arc<Metrics>>,
    /// Set by [`TestEnv::cleanup`], which did the asynchronous part of the clean-up.
    cleaned: bool,
    temp_dir: PathBuf,
    /// Removes the vhost and the database when the environment goes, however it goes.
    _leftovers: Leftovers,
    /// The test's hold on the services; released last.
    _hold: Hold,
}

/// How to make a [`TestEnv`]: settings changed, database only or with a vhost, the services to
/// start, and for [`Builder::run`] the time limit. Nothing is made before [`Builder::build`] or
/// [`Builder::run`].
pub struct Builder {
    settings: Settings,
    db_name: String,
    admin_db_url: String,
    /// The RabbitMQ user that gets every permission on the test's vhost.
    user: String,
    broker: bool,
    worker: bool,
    bank: Option<SimOptions>,
    exclusive: Option<bool>,
    limit: Option<Duration>,
    /// Whether [`DEFAULT_PROGRAMMES`] are made (see [`Builder::without_programmes`]).
    programmes: bool,
}

/// The programmes every test environment has unless it asks otherwise: approval `none`, the
/// generator's amount (Rp600.000), so that batches submitted for them go straight through.
pub const DEFAULT_PROGRAMMES: [&str; 2] = ["BPNT", "PKH"];

/// The suffix of the test's bank-sim ledger database (`salur_test_<id>_bank`).
const LEDGER_SUFFIX: &str = "_bank";

/// A database and a vhost of its own, nothing started: the settings from the environment
/// (`DATABASE_URL`, `AMQP_URL`, …) pointed at them, without a metrics listener.
pub fn env() -> Builder {
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
    settings.bank_ledger_url = Some(format!("{base}/{db_name}{LEDGER_SUFFIX}"));
    let user = amqp_user(&settings.amqp_url);
    settings.amqp_url = salur::config::amqp_url_on_vhost(&settings.amqp_url, &db_name);
    settings.namespace = String::new();
    Builder {
        settings,
        db_name,
        admin_db_url: format!("{base}/postgres"),
        user,
        broker: true,
        worker: false,
        bank: None,
        exclusive: None,
        limit: Some(TIME_LIMIT),
        programmes: true,
    }
}

impl Builder {
    /// Changes the settings (retry tiers, timeouts, …) before anything is made with them.
    pub fn settings(mut self, tune: impl FnOnce(&mut Settings)) -> Self {
        tune(&mut self.settings);
        self
    }

    /// A database of its own and nothing on the broker: for tests of the HTTP API and of
    /// stages called directly, which publish nothing (the outbox keeps what they would send).
    pub fn database_only(mut self) -> Self {
        self.broker = false;
        self
    }

    /// A worker for every stage, counting into metrics of its own ([`TestEnv::metrics`]).
    pub fn worker(mut self) -> Self {
        self.worker = true;
        self
    }

    /// No programmes made: the test adds its own (e.g. with approval required).
    pub fn without_programmes(mut self) -> Self {
        self.programmes = false;
        self
    }

    /// bank-sim with `opts`.
    pub fn bank(mut self, opts: SimOptions) -> Self {
        self.bank = Some(opts);
        self
    }

    /// The whole pipeline: a worker and the default bank-sim.
    pub fn pipeline(self) -> Self {
        self.worker().bank(SimOptions::default())
    }

    /// The machine's services to this test alone, with the machine-wide lock: for tests that
    /// stop or restart PostgreSQL or RabbitMQ.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = Some(true);
        self
    }

    /// Another time limit for [`Builder::run`] (`None`: none, for measurements).
    pub fn time_limit(mut self, limit: Option<Duration>) -> Self {
        self.limit = limit;
        self
    }

    async fn hold(&self) -> Hold {
        match self.exclusive {
            Some(machine) => Hold::exclusive(machine).await,
            None => Hold::shared().await,
        }
    }

    /// The environment, its services started.
    pub async fn build(self) -> TestEnv {
        let hold = self.hold().await;
        self.build_holding(hold).await
    }

    /// Builds the environment (once the services are free for it, which does not count against
    /// the time limit), runs `body` on it within the time limit, then stops the services,
    /// checking that they end cleanly, and removes everything. A panic or a timeout drops the
    /// environment, which removes everything too.
    pub async fn run(self, body: impl AsyncFnOnce(&mut TestEnv)) {
        let limit = self.limit;
        let hold = self.hold().await;
        let test = async move {
            let mut env = self.build_holding(hold).await;
            body(&mut env).await;
            env.finish().await;
        };
        match limit {
            Some(limit) => tokio::time::timeout(limit, test)
                .await
                .unwrap_or_else(|_| panic!("the test did not finish within {} s", limit.as_secs())),
            None => test.await,
        }
    }

    async fn build_holding(self, hold: Hold) -> TestEnv {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn,lapin=off".into()),
            )
            .with_test_writer()
            .try_init();
        let Builder {
            settings,
            db_name,
            admin_db_url,
            user,
            broker,
            worker,
            bank,
            programmes,
            ..
        } = self;
        let mut leftovers = Leftovers {
            name: db_name.clone(),
            admin_db_url,
            vhost: false,
        };
        let temp_dir = std::env::temp_dir().join(&db_name);
        std::fs::create_dir_all(&temp_dir).expect("temporary directory");
        // Another test run on this machine may be restarting a service (the outage tests): wait
        // for it rather than fail.
        let pool = retry_for_a_minute(|| salur::store::migrate(&settings))
            .await
            .expect("migrate");
        if programmes {
            for code in DEFAULT_PROGRAMMES {
                salur::ops::programme::add(
                    &pool,
                    code,
                    &format!("Programme {code} (tests)"),
                    "600000",
                    false,
                )
                .await
                .expect("programme");
            }
        }
        if broker {
            leftovers.create_vhost(&user);
            let b = Broker::connect_with_retry(&settings, Duration::from_secs(60))
                .await
                .expect("rabbitmq");
            topology::declare(&b).await.expect("topology");
            b.close().await;
        }
        let mut env = TestEnv {
            settings,
            pool,
            db_name,
            ledger: Arc::default(),
            tasks: Vec::new(),
            worker_metrics: None,
            cleaned: false,
            temp_dir,
            _leftovers: leftovers,
            _hold: hold,
        };
        if worker {
            env.start_worker();
        }
        if let Some(opts) = bank {
            env.start_bank(opts);
        }
        env
    }
}

/// The test's RabbitMQ vhost and PostgreSQL database, both named `salur_test_<id>`, and
/// bank-sim's ledger database `salur_test_<id>_bank`, removed on drop with blocking commands (a
/// panicking test cannot await).
struct Leftovers {
    name: String,
    admin_db_url: String,
    /// Whether the vhost was made (not for a database-only environment).
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
        for db in [self.name.clone(), format!("{}{LEDGER_SUFFIX}", self.name)] {
            let _ = std::process::Command::new("psql")
                .args([
                    &self.admin_db_url,
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                ])
                .output();
        }
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
    /// A database and a vhost (as `env().build()`).
    pub async fn new() -> Self {
        env().build().await
    }

    /// A test environment whose settings `tune` changes first (retry tiers, timeouts, …).
    pub async fn with_settings(tune: impl FnOnce(&mut Settings)) -> Self {
        env().settings(tune).build().await
    }

    /// A database of its own, migrated, and nothing on the broker (as
    /// `env().database_only().settings(tune).build()`).
    pub async fn database_only(tune: impl FnOnce(&mut Settings)) -> Self {
        env().database_only().settings(tune).build().await
    }

    /// A path in the test's temporary directory, which goes with the environment.
    pub fn temp_path(&self, name: &str) -> PathBuf {
        self.temp_dir.join(name)
    }

    /// Starts a worker for every stage; returns its metrics.
    pub fn start_worker(&mut self) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::new());
        self.start_worker_with_metrics(metrics.clone());
        self.worker_metrics.get_or_insert_with(|| metrics.clone());
        metrics
    }

    /// The metrics of the first worker started (by [`Builder::worker`] or
    /// [`TestEnv::start_worker`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.worker_metrics.clone().expect("a worker was started")
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

    /// Starts bank-sim, its ledger in the test's ledger database.
    pub fn start_bank(&mut self, opts: SimOptions) {
        let cancel = CancellationToken::new();
        let (settings, ledger, c) = (self.settings.clone(), self.ledger.clone(), cancel.clone());
        let h = tokio::spawn(async move {
            let ledger = ledger
                .get_or_try_init(|| sim::connect_ledger(&settings))
                .await?
                .clone();
            sim::run(settings, ledger, opts, c).await
        });
        self.tasks.push((cancel, h));
    }

    /// bank-sim's ledger: the test's own ledger database (`salur_test_<id>_bank`), created
    /// with bank-sim's tables if nobody has made it yet.
    pub async fn ledger(&self) -> &PgPool {
        self.ledger
            .get_or_try_init(|| sim::connect_ledger(&self.settings))
            .await
            .expect("bank-sim's ledger database")
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
                submitted_by: None,
            },
        )
        .await
        .expect("submit")
    }

    /// Waits until no record of the batch is in flight (riding out a database restart), and
    /// checks that the batch's totals identity holds.
    pub async fn wait(&self, batch_id: Uuid) -> BatchStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            match batch::status(&self.pool, batch_id).await {
                Ok(s) if s.in_flight == 0 => {
                    // Every scenario that waits for a batch checks the totals identity, and
                    // what foreign keys and scans no longer guarantee on the hot path.
                    assert!(s.totals.holds, "batch {batch_id}: {}", s.totals);
                    let mut conn = self.pool.acquire().await.expect("a connection");
                    let problems = salur::store::counts::integrity(&mut conn)
                        .await
                        .expect("integrity checks run");
                    assert!(problems.is_empty(), "batch {batch_id}: {problems:#?}");
                    return s;
                }
                Ok(_) => {}
                Err(batch::BatchError::Database(_)) => {}
                Err(e) => panic!("{e}"),
            }
            if std::time::Instant::now() >= deadline {
                let why = self.unsettled(batch_id).await;
                panic!("batch {batch_id} did not settle in 180 s\n{why}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What a batch that does not settle is waiting for: its records by state, a few records in
    /// flight with their last audit rows, the outbox and the queues (for a failure message).
    async fn unsettled(&self, batch_id: Uuid) -> String {
        let mut out = String::new();
        match batch::status(&self.pool, batch_id).await {
            Ok(s) => out.push_str(&format!("{s}\n")),
            Err(e) => out.push_str(&format!("status: {e}\n")),
        }
        let stuck: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT id, state, updated_at FROM records WHERE batch_id = $1 \
             AND state IN ('received', 'account_requested', 'account_opened', 'verified', 'transfer_requested') \
             ORDER BY id LIMIT 5",
        )
        .bind(batch_id)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        for (id, state, at) in stuck {
            out.push_str(&format!(
                "record {id}: {state} since {at}; last audit rows:"
            ));
            let events: Vec<String> = sqlx::query_scalar(
                "SELECT concat(from_state, ' -> ', to_state, ' at ', at, ' ', detail) \
                 FROM record_events WHERE record_id = $1 ORDER BY id DESC LIMIT 3",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
            for e in events {
                out.push_str(&format!("\n    {e}"));
            }
            let requests: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                "SELECT kind, sent_at FROM bank_requests WHERE $1 = ANY(record_ids) ORDER BY sent_at",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
            out.push_str(&format!("\n    bank requests: {requests:?}\n"));
        }
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(-1);
        out.push_str(&format!("outbox rows not yet published: {outbox}\n"));
        if let Some(m) = &self.worker_metrics {
            out.push_str(&format!(
                "first worker: connected {}, reconnections {}\n",
                m.broker_connected.get(),
                m.broker_reconnects.get()
            ));
        }
        if let Ok(b) = Broker::connect(&self.settings).await {
            let banks = salur::domain::BankCode::KNOWN
                .iter()
                .map(|(code, _)| salur::broker::names::bank_queue(code));
            let queues = topology::definitions_for(&self.settings)
                .queues
                .into_iter()
                .map(|q| q.name)
                .chain(banks)
                .collect::<std::collections::BTreeSet<_>>();
            for q in queues {
                if let Ok(c) = b.queue_counts(&q).await
                    && c.ready > 0
                {
                    out.push_str(&format!(
                        "{q}: {} ready, {} consumers\n",
                        c.ready, c.consumers
                    ));
                }
            }
            b.close().await;
        }
        out
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

    /// Stops the services started so far, checking that each ends cleanly.
    pub async fn stop_services(&mut self) {
        for (cancel, h) in self.tasks.drain(..) {
            cancel.cancel();
            h.await.expect("task").expect("service ends cleanly");
        }
    }

    /// Stops what runs (checking that it ends cleanly), deletes the test's bank users (users
    /// are global to the broker) and closes the pool; the vhost (with its queues), the database
    /// and the temporary directory go when the environment is dropped, right after.
    pub async fn cleanup(mut self) {
        self.finish().await;
    }

    /// [`TestEnv::cleanup`] without giving up the environment, which goes right after:
    /// [`Builder::run`] calls it when the body has returned.
    async fn finish(&mut self) {
        self.stop_services().await;
        let _ = salur::bank::users::remove_namespace_users(&self.settings).await;
        self.pool.close().await;
        if let Some(ledger) = self.ledger.get() {
            ledger.close().await;
        }
        self.cleaned = true;
    }
}

/// However the environment goes (a panic, a timeout, a test that did not call `cleanup`), its
/// services are stopped, its bank users deleted (users are global to the broker, not to the
/// test's vhost) and its temporary directory removed; then the vhost and the database go.
impl Drop for TestEnv {
    fn drop(&mut self) {
        for (cancel, h) in self.tasks.drain(..) {
            cancel.cancel();
            h.abort();
        }
        if !self.cleaned {
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
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}
