//! The fault campaign (`salur chaos`, driven by `scripts/chaos.sh`): three workers and two
//! bank simulators sharing one ledger run against a three-node RabbitMQ cluster while faults come
//! at random times from a seeded schedule: a worker killed with SIGKILL (and restarted), the node
//! leading the busiest queue stopped (`stop_app`, later `start_app`), PostgreSQL restarted, a
//! worker or a bank frozen with SIGSTOP past the bank timeout (and thawed), `salur.blocked`
//! purged, blocked records fixed and replayed. Then everything is healed, the pipeline drains,
//! one reconcile runs, and the invariants are checked and printed as a table.
//!
//! The same seed gives the same batches and the same fault schedule (the times at which the
//! faults land in the pipeline's work depend on the machine).

use crate::broker::{Broker, names};
use crate::config::Settings;
use crate::demo::generate;
use crate::domain::Actor;
use crate::ops::remediate::{self, Filter, Scope};
use crate::ops::submit::{self, BatchInfo};
use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// What the campaign runs.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub records: u32,
    pub minutes: f64,
    pub seed: u64,
    /// The salur binary to start workers and banks from.
    pub binary: PathBuf,
    /// `scripts/cluster.sh`, which runs `rabbitmqctl` on a node (`ctl N ARGS`).
    pub cluster_script: PathBuf,
    /// The RabbitMQ vhost the campaign uses on the cluster.
    pub vhost: String,
    /// PostgreSQL restarts at most (they hit everyone using the machine's PostgreSQL).
    pub pg_restarts: u32,
    /// How long the records may take to settle once every fault is healed.
    pub settle_timeout: Duration,
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    KillWorker(usize),
    StopLeaderNode { down_secs: u64 },
    RestartPostgres,
    FreezeWorker(usize),
    FreezeBank(usize),
    PurgeBlocked,
    FixAndReplay,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::KillWorker(i) => write!(f, "kill -9 worker {i}, restart it"),
            Fault::StopLeaderNode { down_secs } => {
                write!(f, "stop_app the busiest queue's leader for {down_secs} s")
            }
            Fault::RestartPostgres => write!(f, "restart PostgreSQL"),
            Fault::FreezeWorker(i) => write!(f, "SIGSTOP worker {i} past the bank timeout"),
            Fault::FreezeBank(i) => write!(f, "SIGSTOP bank {i} past the bank timeout"),
            Fault::PurgeBlocked => write!(f, "purge salur.blocked"),
            Fault::FixAndReplay => write!(f, "fix blocked records and replay them"),
        }
    }
}

pub const WORKERS: usize = 3;
pub const BANKS: usize = 2;
/// The bank timeout the campaign's workers use: a frozen process outlasts it.
pub const BANK_TIMEOUT: Duration = Duration::from_secs(15);

/// The fault schedule of `seed` over `minutes`: (seconds from the start, fault), in order.
/// Every kind of fault comes once first (in a seeded order; a PostgreSQL restart only if
/// `pg_restarts` allows one), then kinds at random.
pub fn schedule(seed: u64, minutes: f64, pg_restarts: u32) -> Vec<(f64, Fault)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = minutes * 60.0;
    let mut at = 5.0;
    let mut out = Vec::new();
    let mut pg_left = pg_restarts;
    let mut first: Vec<u32> = vec![0, 30, 40, 50, 65, 75, 90];
    for i in (1..first.len()).rev() {
        first.swap(i, rng.random_range(0..=i));
    }
    let mut first = first.into_iter();
    while at < end {
        let pick = first.next().unwrap_or_else(|| rng.random_range(0..100));
        let fault = match pick {
            0..=21 => Fault::KillWorker(rng.random_range(0..WORKERS)),
            22..=37 => Fault::StopLeaderNode {
                down_secs: rng.random_range(5..=20),
            },
            38..=45 if pg_left > 0 => {
                pg_left -= 1;
                Fault::RestartPostgres
            }
            38..=45 => Fault::PurgeBlocked,
            46..=61 => Fault::FreezeWorker(rng.random_range(0..WORKERS)),
            62..=71 => Fault::FreezeBank(rng.random_range(0..BANKS)),
            72..=83 => Fault::PurgeBlocked,
            _ => Fault::FixAndReplay,
        };
        out.push((at, fault));
        at += rng.random_range(4.0..16.0);
    }
    out
}

/// A child process the campaign owns.
struct Proc {
    args: Vec<String>,
    child: Child,
}

impl Proc {
    fn pid(&self) -> String {
        self.child.id().map(|p| p.to_string()).unwrap_or_default()
    }
}

/// Starts a child. With `SALUR_CHAOS_LOGS` set to a directory, its standard error (the log at
/// `RUST_LOG=warn`) goes to a file there, one per process started (`worker-3.log`); otherwise
/// nowhere.
fn spawn(binary: &PathBuf, env: &[(String, String)], args: &[String]) -> anyhow::Result<Proc> {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let stderr = match std::env::var_os("SALUR_CHAOS_LOGS") {
        Some(dir) => {
            let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let kind = args.first().map_or("process", String::as_str);
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("SALUR_CHAOS_LOGS: cannot create {}", dir.display()))?;
            let file = dir.join(format!("{kind}-{n}.log"));
            Stdio::from(
                std::fs::File::create(&file).with_context(|| {
                    format!("SALUR_CHAOS_LOGS: cannot create {}", file.display())
                })?,
            )
        }
        None => Stdio::null(),
    };
    let child = Command::new(binary)
        .args(args)
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    Ok(Proc {
        args: args.to_vec(),
        child,
    })
}

async fn signal(pid: &str, sig: &str) {
    let _ = Command::new("kill").args([sig, pid]).status().await;
}

/// `rabbitmqctl` on cluster node `n` (1-based), through `scripts/cluster.sh ctl`.
async fn ctl(opts: &ChaosOptions, n: usize, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&opts.cluster_script)
        .arg("ctl")
        .arg(n.to_string())
        .args(args)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?} on node {n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The queues of the vhost: (name, ready, unacked, leader node number).
async fn queues(opts: &ChaosOptions, via: usize) -> anyhow::Result<Vec<(String, u64, u64, usize)>> {
    let out = ctl(
        opts,
        via,
        &[
            "list_queues",
            "-p",
            &opts.vhost,
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "leader",
            "--formatter",
            "json",
        ],
    )
    .await?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(out.trim())?;
    Ok(rows
        .iter()
        .map(|q| {
            let leader = q["leader"].as_str().unwrap_or("");
            let node = leader
                .strip_prefix("salur")
                .and_then(|s| s.split('@').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            (
                q["name"].as_str().unwrap_or("").to_owned(),
                q["messages_ready"].as_u64().unwrap_or(0),
                q["messages_unacknowledged"].as_u64().unwrap_or(0),
                node,
            )
        })
        .collect())
}

/// The machine-wide lock the outage tests (`tests/it/harness/lock.rs`) take before it stops a service.
fn machine_lock() -> anyhow::Result<std::fs::File> {
    let f = std::fs::File::create(std::env::temp_dir().join("salur-outage-tests.lock"))?;
    f.lock()?;
    Ok(f)
}

async fn restart_postgres() -> anyhow::Result<()> {
    let version = std::fs::read_dir("/etc/postgresql")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL cluster in /etc/postgresql"))?;
    let lock = tokio::task::spawn_blocking(machine_lock).await??;
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .await?;
    drop(lock);
    anyhow::ensure!(status.success(), "pg_ctlcluster restart failed");
    Ok(())
}

/// One line of the result table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub invariant: String,
    pub value: String,
    pub ok: bool,
}

/// What a campaign did and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub records: u32,
    pub minutes: f64,
    pub faults: BTreeMap<String, u32>,
    pub states: BTreeMap<String, i64>,
    /// The records that ended other than disbursed, by state and reason code.
    pub parked: Vec<Parked>,
    pub checks: Vec<Check>,
    pub elapsed_secs: f64,
}

/// Records that ended in `state` with reason `reason` (a record with two reasons counts under
/// both; `(none)` for a record that has none, which is a defect).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Parked {
    pub state: String,
    pub reason: String,
    pub records: i64,
    /// Of them, how many were incomplete in the office's file (the generator spoiled them and
    /// the campaign's corrections file carries their complete values).
    pub incomplete_in_file: i64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "chaos campaign: seed {}, {} records, {} minutes of faults, {:.0} s in all",
            self.seed, self.records, self.minutes, self.elapsed_secs
        )?;
        writeln!(f, "faults:")?;
        for (k, n) in &self.faults {
            writeln!(f, "  {n:>4}  {k}")?;
        }
        writeln!(
            f,
            "states: {}",
            self.states
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        if !self.parked.is_empty() {
            writeln!(f, "records not disbursed, by reason:")?;
            writeln!(f, "| state | reason | records | incomplete in the file |")?;
            writeln!(f, "|---|---|---|---|")?;
            for p in &self.parked {
                writeln!(
                    f,
                    "| {} | {} | {} | {} |",
                    p.state, p.reason, p.records, p.incomplete_in_file
                )?;
            }
        }
        writeln!(f, "| invariant | value | holds |")?;
        writeln!(f, "|---|---|---|")?;
        for c in &self.checks {
            writeln!(
                f,
                "| {} | {} | {} |",
                c.invariant,
                c.value,
                if c.ok { "yes" } else { "NO" }
            )?;
        }
        Ok(())
    }
}

/// Runs the campaign. `settings` reach the cluster (all three nodes in AMQP_URL, on
/// `opts.vhost`) and the campaign's own database.
pub async fn run(
    settings: &Settings,
    pool: &PgPool,
    opts: &ChaosOptions,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let broker = Broker::connect_with_retry(settings, Duration::from_secs(60)).await?;
    crate::broker::topology::declare(&broker).await?;
    broker.close().await;
    crate::bank::sim::connect_ledger(settings)
        .await?
        .close()
        .await;

    let env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), settings.database_url.clone()),
        ("SALUR_BANK_LEDGER_URL".into(), settings.bank_ledger_url()),
        ("AMQP_URL".into(), settings.amqp_url.clone()),
        ("SALUR_NAMESPACE".into(), settings.namespace.clone()),
        ("METRICS_ADDR".into(), "off".into()),
        ("RUST_LOG".into(), "warn".into()),
        (
            "SALUR_BANK_TIMEOUT".into(),
            format!("{}s", BANK_TIMEOUT.as_secs()),
        ),
        ("SALUR_RETRY_TIERS".into(), "1s,5s,15s".into()),
        ("SALUR_STALE_AFTER".into(), "45s".into()),
        ("SALUR_MAX_ATTEMPTS".into(), "40".into()),
        ("SALUR_DB_POOL".into(), "8".into()),
    ];
    let mut workers: Vec<Proc> = (0..WORKERS)
        .map(|_| spawn(&opts.binary, &env, &["worker".into()]))
        .collect::<anyhow::Result<_>>()?;
    let bank_args = |i: usize| -> Vec<String> {
        [
            "bank-sim",
            "--transient-error-rate",
            "0.05",
            "--duplicate-rate",
            "0.05",
            "--lost-answer-rate",
            "0.02",
            "--delay-ms",
            if i == 0 { "0" } else { "50" },
            "--seed",
            &(opts.seed * 10 + i as u64).to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // The bank-sims share one user per bank (made once here): a bank-sim that made its own
    // would give the other's user a new password, and the other could not reconnect.
    let mut lines = String::new();
    for (code, name) in crate::domain::BankCode::KNOWN {
        let c = crate::bank::users::add(settings, pool, code, &format!("{name} (chaos)")).await?;
        lines.push_str(&serde_json::to_string(&c)?);
        lines.push('\n');
    }
    let credentials =
        std::env::temp_dir().join(format!("salur-chaos-{}-banks.jsonl", std::process::id()));
    std::fs::write(&credentials, lines)?;
    let bank_args = |i: usize| -> Vec<String> {
        let mut args = bank_args(i);
        args.push("--bank-credentials".into());
        args.push(credentials.display().to_string());
        args
    };
    let mut banks: Vec<Proc> = (0..BANKS)
        .map(|i| spawn(&opts.binary, &env, &bank_args(i)))
        .collect::<anyhow::Result<_>>()?;

    // The records, in batches spread over the first half of the campaign; about one in eight
    // incomplete (blocked until the office fixes them).
    let n_batches = ((opts.minutes * 2.0).ceil() as u32).clamp(1, 20);
    let per = opts.records.div_ceil(n_batches);
    let mut batches = Vec::new();
    let mut remaining = opts.records;
    let mut submit_at = Vec::new();
    for b in 0..n_batches {
        let n = per.min(remaining);
        remaining -= n;
        if n == 0 {
            break;
        }
        // Each batch its own period: one NIK is paid once per programme and period.
        let demo = generate::generate(n, n / 8, opts.seed * 1000 + u64::from(b));
        submit_at.push(opts.minutes * 60.0 / 2.0 * f64::from(b) / f64::from(n_batches));
        batches.push(demo);
    }
    let schedule = schedule(opts.seed, opts.minutes, opts.pg_restarts);
    tracing::info!(faults = schedule.len(), "chaos schedule");
    for (at, fault) in &schedule {
        println!("  at {at:>7.1} s: {fault}");
    }

    crate::ops::programme::ensure(pool, "BPNT", "Program Sembako (BPNT)", "600000", false).await?;
    let mut faults: BTreeMap<String, u32> = BTreeMap::new();
    let mut submitted: Vec<(uuid::Uuid, usize)> = Vec::new();
    let mut next_submit = 0;
    let t0 = Instant::now();
    let mut events = schedule.into_iter().peekable();
    loop {
        let now = t0.elapsed().as_secs_f64();
        if next_submit < batches.len() && submit_at[next_submit] <= now {
            let demo = &batches[next_submit];
            let info = BatchInfo {
                office: "DINSOS-CHAOS".into(),
                program: "BPNT".into(),
                period: format!("2026-P{}", next_submit + 1),
                submitted_by: None,
            };
            let id =
                retry(|| submit::submit_records(settings, pool, "chaos.csv", &demo.records, &info))
                    .await?;
            println!(
                "  at {now:>7.1} s: submitted batch {} ({} records)",
                id,
                demo.records.len()
            );
            submitted.push((id, next_submit));
            next_submit += 1;
            continue;
        }
        let Some((at, _)) = events.peek() else {
            if next_submit >= batches.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if *at > now {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let (_, fault) = events.next().expect("peeked");
        let label = match &fault {
            Fault::KillWorker(_) => "kill -9 a worker",
            Fault::StopLeaderNode { .. } => "stop the busiest queue's leader node",
            Fault::RestartPostgres => "restart PostgreSQL",
            Fault::FreezeWorker(_) => "freeze a worker past the bank timeout",
            Fault::FreezeBank(_) => "freeze a bank past the bank timeout",
            Fault::PurgeBlocked => "purge salur.blocked",
            Fault::FixAndReplay => "fix and replay blocked records",
        };
        *faults.entry(label.to_owned()).or_default() += 1;
        match fault {
            Fault::KillWorker(i) => {
                signal(&workers[i].pid(), "-KILL").await;
                let _ = workers[i].child.wait().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                workers[i] = spawn(&opts.binary, &env, &workers[i].args.clone())?;
            }
            Fault::StopLeaderNode { down_secs } => {
                let busiest = queues(opts, 1 + (now as usize % 3))
                    .await
                    .ok()
                    .and_then(|qs| qs.into_iter().max_by_key(|q| q.1 + q.2));
                let node = busiest.map_or(1, |q| q.3);
                if ctl(opts, node, &["stop_app"]).await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(down_secs)).await;
                    ctl(opts, node, &["start_app"]).await?;
                    ctl(opts, node, &["await_startup"]).await?;
                }
            }
            Fault::RestartPostgres => restart_postgres().await?,
            Fault::FreezeWorker(i) => {
                let pid = workers[i].pid();
                signal(&pid, "-STOP").await;
                tokio::time::sleep(BANK_TIMEOUT + Duration::from_secs(5)).await;
                signal(&pid, "-CONT").await;
            }
            Fault::FreezeBank(i) => {
                let pid = banks[i].pid();
                signal(&pid, "-STOP").await;
                tokio::time::sleep(BANK_TIMEOUT + Duration::from_secs(5)).await;
                signal(&pid, "-CONT").await;
            }
            Fault::PurgeBlocked => {
                if let Ok(b) = Broker::connect(settings).await {
                    if let Ok(ch) = b.channel().await {
                        let _ = ch
                            .queue_purge(
                                settings.name(names::BLOCKED_QUEUE).as_str().into(),
                                Default::default(),
                            )
                            .await;
                    }
                    b.close().await;
                }
            }
            Fault::FixAndReplay => {
                // The office fixes the blocked records of one submitted batch and replays them.
                if let Some((id, b)) = submitted.get(faults.len() % submitted.len().max(1)) {
                    let demo = &batches[*b];
                    // The database may be restarting: the next fix and the final one catch up.
                    let _ = fix_and_replay(settings, pool, *id, demo).await;
                }
            }
        }
    }

    // Heal: every process running and thawed, every node up.
    println!("healing: every node started, every process thawed and running");
    for n in 1..=3 {
        let _ = ctl(opts, n, &["start_app"]).await;
    }
    for p in workers.iter_mut().chain(banks.iter_mut()) {
        signal(&p.pid(), "-CONT").await;
    }
    for p in workers.iter_mut().chain(banks.iter_mut()) {
        if p.child.try_wait()?.is_some() {
            *p = spawn(&opts.binary, &env, &p.args.clone())?;
        }
    }
    // The office fixes and replays whatever is still blocked, once, then everything settles.
    let deadline = Instant::now() + opts.settle_timeout;
    wait_final(pool, deadline).await?;
    for (id, b) in &submitted {
        retry(|| fix_and_replay(settings, pool, *id, &batches[*b])).await?;
    }
    wait_final(pool, deadline).await?;
    // Dead records (attempts exhausted during the faults) are replayed once as an operator would.
    retry(|| async {
        remediate::replay(
            settings,
            pool,
            &Scope::All,
            &Actor::cli(Some("salur chaos".into())),
            &Filter {
                state: Some(crate::store::State::Dead),
                ..Default::default()
            },
        )
        .await
        .map_err(anyhow::Error::from)
    })
    .await?;
    wait_final(pool, deadline).await?;
    remediate::reconcile(settings, pool).await?;
    // Give the workers a moment to settle any last delivery, then check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let checks = invariants(settings, pool, opts).await?;
    let parked = parked(pool, &submitted, &batches).await?;
    for p in workers.iter_mut().chain(banks.iter_mut()) {
        signal(&p.pid(), "-TERM").await;
    }
    for p in workers.iter_mut().chain(banks.iter_mut()) {
        let ok = tokio::time::timeout(Duration::from_secs(60), p.child.wait())
            .await
            .map(|s| s.map(|s| s.success()).unwrap_or(false))
            .unwrap_or(false);
        if !ok {
            let _ = p.child.kill().await;
        }
    }
    let states: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT state, count(*) FROM records GROUP BY state")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    Ok(Report {
        seed: opts.seed,
        records: opts.records,
        minutes: opts.minutes,
        faults,
        states,
        parked,
        checks,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// The office corrects the blocked records of batch `id` (from the generator's complete
/// versions, as a corrections file) and replays the batch's parked records.
async fn fix_and_replay(
    settings: &Settings,
    pool: &PgPool,
    id: uuid::Uuid,
    demo: &generate::DemoBatch,
) -> anyhow::Result<()> {
    let mut file = Vec::new();
    generate::write_corrections(&demo.records, &demo.corrected, &mut file)?;
    match remediate::fix_file(
        &settings.amount_range,
        pool,
        &Scope::All,
        &Actor::cli(Some("salur chaos".into())),
        id,
        "fixes.csv",
        file.as_slice(),
    )
    .await
    {
        // Nothing left to fix in that batch is not an error.
        Ok(_) | Err(remediate::RemediateError::FixFile { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let filter = Filter {
        batch_id: Some(id),
        ..Default::default()
    };
    remediate::replay(
        settings,
        pool,
        &Scope::All,
        &Actor::cli(Some("salur chaos".into())),
        &filter,
    )
    .await?;
    Ok(())
}

/// Tries `f` for up to two minutes (the database or a node may be coming back).
async fn retry<T, E, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

const FINAL: &str = "('disbursed', 'blocked', 'rejected', 'failed', 'dead')";

/// Waits until no record is in flight.
async fn wait_final(pool: &PgPool, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let open: Result<i64, _> = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM records WHERE state NOT IN {FINAL}"
        ))
        .fetch_one(pool)
        .await;
        if let Ok(0) = open {
            return Ok(());
        }
        if Instant::now() > deadline {
            println!("settle timeout: {open:?} records still in flight");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The records that ended other than disbursed, by state and reason, and how many of them the
/// generator made incomplete (so the corrections file covers them).
async fn parked(
    pool: &PgPool,
    submitted: &[(uuid::Uuid, usize)],
    batches: &[generate::DemoBatch],
) -> anyhow::Result<Vec<Parked>> {
    let rows: Vec<(uuid::Uuid, i32, String, Vec<String>)> = sqlx::query_as(
        "SELECT batch_id, row_number, state,
                ARRAY(SELECT DISTINCT e->>'code' FROM jsonb_array_elements(reasons) e
                      WHERE e->>'code' IS NOT NULL ORDER BY 1)
         FROM records WHERE state <> 'disbursed'",
    )
    .fetch_all(pool)
    .await?;
    let batch_of: std::collections::HashMap<uuid::Uuid, usize> =
        submitted.iter().copied().collect();
    let mut out: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (batch, row, state, codes) in rows {
        let incomplete = batch_of
            .get(&batch)
            .and_then(|b| batches.get(*b))
            .is_some_and(|d| u32::try_from(row).is_ok_and(|r| d.corrected.contains_key(&r)));
        let codes = if codes.is_empty() {
            vec!["(none)".to_owned()]
        } else {
            codes
        };
        for code in codes {
            let e = out.entry((state.clone(), code)).or_default();
            e.0 += 1;
            e.1 += i64::from(incomplete);
        }
    }
    Ok(out
        .into_iter()
        .map(|((state, reason), (records, incomplete_in_file))| Parked {
            state,
            reason,
            records,
            incomplete_in_file,
        })
        .collect())
}

async fn invariants(
    settings: &Settings,
    pool: &PgPool,
    opts: &ChaosOptions,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut check = |invariant: &str, value: String, ok: bool| {
        checks.push(Check {
            invariant: invariant.to_owned(),
            value,
            ok,
        })
    };
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(pool)
        .await?;
    let open: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM records WHERE state NOT IN {FINAL}"
    ))
    .fetch_one(pool)
    .await?;
    check(
        "every record final",
        format!("{} of {total} final", total - open),
        open == 0 && total == i64::from(opts.records),
    );
    let no_reason: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM records
         WHERE state IN ('blocked', 'rejected', 'failed', 'dead') AND reasons = '[]'::jsonb",
    )
    .fetch_one(pool)
    .await?;
    check(
        "every record not paid says why (a reason code)",
        format!("{no_reason} without a reason"),
        no_reason == 0,
    );
    // The bank's ledger: one row per idempotency key by construction, so a double payment
    // would be two paid keys for one record: compare paid keys with the keys of salur's records.
    let keys: Vec<(uuid::Uuid, i64, String)> =
        sqlx::query_as("SELECT batch_id, id, state FROM records")
            .fetch_all(pool)
            .await?;
    let by_key: std::collections::HashMap<String, (i64, String)> = keys
        .into_iter()
        .map(|(b, id, s)| (crate::stages::transfer::idempotency_key(b, id), (id, s)))
        .collect();
    let bank_ledger = crate::bank::sim::connect_ledger(settings).await?;
    let paid: Vec<(String, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT idempotency_key, amount FROM bank_sim.transfers WHERE status = 'ok'",
    )
    .fetch_all(&bank_ledger)
    .await?;
    let unknown = paid.iter().filter(|(k, _)| !by_key.contains_key(k)).count();
    let paid_not_disbursed = paid
        .iter()
        .filter(|(k, _)| by_key.get(k).is_some_and(|(_, s)| s != "disbursed"))
        .count();
    let dup_keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT idempotency_key FROM bank_sim.transfers
         WHERE status = 'ok' GROUP BY 1 HAVING count(*) > 1) d",
    )
    .fetch_one(&bank_ledger)
    .await?;
    bank_ledger.close().await;
    check(
        "no idempotency key paid twice; every paid key is a disbursed record's",
        format!(
            "{} paid, {dup_keys} twice, {unknown} unknown, {paid_not_disbursed} not disbursed in salur",
            paid.len()
        ),
        dup_keys == 0 && unknown == 0 && paid_not_disbursed == 0,
    );
    let (disbursed_n, disbursed_sum): (i64, Option<rust_decimal::Decimal>) =
        sqlx::query_as("SELECT count(*), sum(amount) FROM records WHERE state = 'disbursed'")
            .fetch_one(pool)
            .await?;
    let ledger: rust_decimal::Decimal = paid.iter().map(|(_, a)| *a).sum();
    let disbursed_sum = disbursed_sum.unwrap_or_default();
    check(
        "disbursed in salur = bank ledger (IDR)",
        format!("{disbursed_n} records, Rp{disbursed_sum} = Rp{ledger}"),
        disbursed_sum == ledger && disbursed_n as usize == paid.len(),
    );
    // The audit agrees with every record's state, and the batches' counters, the stopped
    // records and every reference with the records (store::counts::integrity).
    let problems = crate::store::counts::integrity(&mut *pool.acquire().await?).await?;
    check(
        "audit, counters and references agree with every record",
        if problems.is_empty() {
            "0 disagreements".to_owned()
        } else {
            problems.join("; ")
        },
        problems.is_empty(),
    );
    let agree = remediate::parked_queues_agree(settings, pool).await?;
    check(
        "parked queues: one message per parked record after one reconcile",
        agree.to_string(),
        agree.ok(),
    );
    // Every record is final, but deliveries of redundant messages (a bank request the sweeper
    // sent again while its bank was frozen, a late answer) may still be in a consumer's hands:
    // wait for the queues to settle, up to QUIET_WAIT, then say which queue holds what.
    const QUIET_WAIT: Duration = Duration::from_secs(120);
    let started = Instant::now();
    let (unacked, work_ready, holding) = loop {
        let qs = queues(opts, 1).await.or(queues(opts, 2).await)?;
        let unacked: u64 = qs.iter().map(|q| q.2).sum();
        let is_work =
            |q: &str| !q.ends_with(names::BLOCKED_QUEUE) && !q.ends_with(names::DEAD_QUEUE);
        let work_ready: u64 = qs.iter().filter(|q| is_work(&q.0)).map(|q| q.1).sum();
        if (unacked == 0 && work_ready == 0) || started.elapsed() >= QUIET_WAIT {
            let holding: Vec<String> = qs
                .iter()
                .filter(|q| q.2 > 0 || (is_work(&q.0) && q.1 > 0))
                .map(|q| format!("{}: {} unacked, {} ready", q.0, q.2, q.1))
                .collect();
            break (unacked, work_ready, holding);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    check(
        "no message left unacknowledged (nor waiting on a work queue)",
        if holding.is_empty() {
            format!(
                "{unacked} unacked, {work_ready} ready (settled after {:.0} s)",
                started.elapsed().as_secs_f64()
            )
        } else {
            format!(
                "{unacked} unacked, {work_ready} ready after {} s: {}",
                QUIET_WAIT.as_secs(),
                holding.join("; ")
            )
        },
        unacked == 0 && work_ready == 0,
    );
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_schedule_and_every_fault_comes_early() {
        let a = schedule(1, 30.0, 2);
        assert_eq!(a, schedule(1, 30.0, 2));
        assert_ne!(a, schedule(2, 30.0, 2));
        let kinds: std::collections::BTreeSet<String> = a[..7]
            .iter()
            .map(|(_, f)| {
                format!("{f:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
        let pg = a
            .iter()
            .filter(|(_, f)| *f == Fault::RestartPostgres)
            .count();
        assert!(pg <= 2);
        assert!(a.iter().all(|(at, _)| *at < 30.0 * 60.0));
        assert!(
            !schedule(3, 2.0, 0)
                .iter()
                .any(|(_, f)| *f == Fault::RestartPostgres)
        );
    }
}
