//! `salur bench`: throughput of the whole pipeline on the local services, durably (quorum
//! queues, persistent messages, publisher confirms, fsync as the servers are configured), with
//! two baselines measured in the same run so that the ratios hold on a noisy machine:
//!
//! - **raw**: a minimal lapin + sqlx loop moving the same records, in the same chunks, through
//!   the same number of queue hops with one database write per hop and no domain logic
//!   ([`raw`]);
//! - **per-record**: salur itself with a chunk size of 1 (on fewer records).
//!
//! Every run gets a fresh database (`salur_bench`), bank-sim ledger database
//! (`salur_bench_bank`) and queue namespace (`salur_bench`); the worker and bank-sim run as child
//! processes of this binary, so their peak memory (VmHWM) is measured apart. salur is measured
//! twice: with bank-sim's ledger in its own database (as a bank is, and the default) and, for
//! comparison, in salur's database (as before issue 17). The run checks its own result: every record disbursed exactly once (one
//! audit row, one settled transfer per record at the bank) and the totals equal to the rupiah;
//! a failed check is an error.

pub mod raw;

use crate::broker::{Broker, names, topology};
use crate::config::Settings;
use crate::demo::generate;
use crate::domain::Amount;
use crate::ops::submit::{self, BatchInfo};
use crate::store;
use anyhow::Context as _;
use rust_decimal::Decimal;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The database and namespace the benchmark owns (dropped and recreated each run).
pub const BENCH_NAME: &str = "salur_bench";
/// bank-sim's ledger database of the benchmark (dropped and recreated each run).
pub const BENCH_LEDGER_NAME: &str = "salur_bench_bank";

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub recipients: u32,
    pub chunk_size: usize,
    /// Recipients of the per-record baseline (chunk size 1); default `recipients / 20`.
    pub per_record_recipients: Option<u32>,
    pub skip_baselines: bool,
    pub seed: u64,
    /// Also run salur with personal fields stored in clear, to measure what sealing costs.
    pub encryption_cost: bool,
    /// Also run salur with bank-sim's ledger in salur's own database (the set-up before issue
    /// 17), to compare with the ledger in a database of its own.
    pub shared_ledger: bool,
    /// Profile PostgreSQL's statements during salur's run (pg_stat_statements).
    pub profile: bool,
    /// Print progress lines on stderr.
    pub progress: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            recipients: 200_000,
            chunk_size: 100,
            per_record_recipients: None,
            skip_baselines: false,
            seed: 7,
            encryption_cost: false,
            shared_ledger: true,
            profile: false,
            progress: true,
        }
    }
}

/// One pipeline run of salur.
#[derive(Debug, Clone, Serialize)]
pub struct SalurRun {
    pub recipients: u32,
    pub chunk_size: usize,
    /// Where bank-sim kept its ledger: `its own database` or `salur's database`.
    pub bank_ledger: &'static str,
    /// Submit (parse, store, account-opening work in the outbox, commit) alone.
    pub intake_seconds: f64,
    pub intake_records_per_second: f64,
    /// From the start of submit to the last record disbursed.
    pub end_to_end_seconds: f64,
    pub end_to_end_records_per_second: f64,
    /// Per record, from its submit to its `disbursed` audit row.
    pub latency_p50_seconds: f64,
    pub latency_p99_seconds: f64,
    /// Peak resident memory (VmHWM) per process, in MiB.
    pub peak_rss_mib: PeakRss,
    /// CPU time of every PostgreSQL process on this machine from the submit to the last
    /// record settled, per record, in microseconds ([`postgres_cpu_seconds`]; `None` when the
    /// server is not local).
    pub db_cpu_us_per_record: Option<f64>,
    /// CPU time per record over the same span, by process (what the two cores were busy
    /// with): salur's and the ledger's PostgreSQL backends, PostgreSQL's own processes,
    /// RabbitMQ, the worker, bank-sim, this process; and the whole machine ([`CpuSnapshot`]).
    pub cpu_us_per_record: Vec<(String, f64)>,
    /// With `--profile`: the statements that took most of PostgreSQL's time, slowest first.
    pub profile: Vec<StatementCost>,
    /// Disbursed total, IDR, as a decimal string.
    pub disbursed_idr: String,
}

/// One statement of a profile (pg_stat_statements, the benchmark database only).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StatementCost {
    /// Execution time (wall clock inside the server, lock waits included; commits apart) per
    /// record of the run, in microseconds.
    pub us_per_record: f64,
    pub calls: i64,
    pub rows: i64,
    /// The statement, whitespace collapsed, cut at 160 characters.
    pub query: String,
}

/// Starts a profile: the extension in the benchmark database, its counts reset.
async fn profile_start(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let loaded: String = sqlx::query_scalar("SHOW shared_preload_libraries")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        loaded.contains("pg_stat_statements"),
        "--profile needs pg_stat_statements in PostgreSQL's shared_preload_libraries (now: {loaded:?}); scripts/db_profile.sh loads it for one run"
    );
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await?;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await?;
    Ok(())
}

/// The statements of the benchmark database that took most time, per record of `n`.
async fn profile_read(pool: &sqlx::PgPool, n: u32) -> anyhow::Result<Vec<StatementCost>> {
    Ok(sqlx::query_as(
        "SELECT (total_exec_time * 1000 / $1)::float8 AS us_per_record, calls, rows,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC LIMIT 20",
    )
    .bind(f64::from(n))
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Clone, Serialize)]
pub struct PeakRss {
    pub worker: f64,
    pub bank_sim: f64,
    /// This process: generating the CSV and submitting it.
    pub submit: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: String,
    /// bank-sim's ledger in a database of its own (the default set-up).
    pub salur: SalurRun,
    /// The same run with bank-sim's ledger in salur's database (`shared_ledger`).
    pub salur_shared_ledger: Option<SalurRun>,
    pub raw: Option<raw::RawRun>,
    pub per_record: Option<SalurRun>,
    /// The same run with personal fields stored in clear (`--encryption-cost`).
    pub clear_text: Option<SalurRun>,
    /// 1 - sealed / clear, end to end and intake (the share of throughput sealing costs).
    pub encryption_cost: Option<(f64, f64)>,
    /// salur end to end / raw.
    pub salur_over_raw: Option<f64>,
    /// salur end to end / per-record.
    pub salur_over_per_record: Option<f64>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: &'static str,
    pub target: f64,
    pub measured: f64,
    pub met: bool,
}

/// Settings for the benchmark's own database and namespace.
pub fn bench_settings(base: &Settings, chunk_size: usize) -> Settings {
    let mut s = base.clone();
    let root = s
        .database_url
        .rsplit_once('/')
        .map_or(s.database_url.as_str(), |(root, _)| root)
        .to_owned();
    s.database_url = format!("{root}/{BENCH_NAME}");
    s.bank_ledger_url = Some(format!("{root}/{BENCH_LEDGER_NAME}"));
    s.namespace = BENCH_NAME.to_owned();
    s.metrics_addr = None;
    s.chunk_size = chunk_size;
    s
}

fn say(opts: &BenchOptions, what: impl std::fmt::Display) {
    if opts.progress {
        eprintln!("bench: {what}");
    }
}

pub async fn run(base: &Settings, opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        crate::config::CHUNK_SIZES.contains(&opts.chunk_size),
        "--chunk-size must be between 1 and 10000"
    );
    anyhow::ensure!(opts.recipients > 0, "--recipients must be at least 1");
    let salur = run_salur(base, opts, opts.recipients, opts.chunk_size).await?;
    say(
        opts,
        format!(
            "salur: {:.0} records/s end to end, intake {:.0} records/s",
            salur.end_to_end_records_per_second, salur.intake_records_per_second
        ),
    );
    let mut salur_shared_ledger = None;
    if opts.shared_ledger {
        say(
            opts,
            "salur again, bank-sim's ledger in salur's database (as before issue 17)",
        );
        let c = run_salur_with(base, opts, opts.recipients, opts.chunk_size, true).await?;
        say(
            opts,
            format!(
                "ledger in salur's database: {:.0} records/s end to end, intake {:.0} records/s",
                c.end_to_end_records_per_second, c.intake_records_per_second
            ),
        );
        salur_shared_ledger = Some(c);
    }
    let (mut clear_text, mut encryption_cost) = (None, None);
    if opts.encryption_cost {
        say(
            opts,
            "salur again, personal fields stored in clear (encryption cost)",
        );
        let settings = bench_settings(base, opts.chunk_size);
        reset(&settings).await?;
        let pool = store::connect(&settings).await?;
        crate::store::sealed::set_bench_clear_text(&mut *pool.acquire().await?, true).await?;
        pool.close().await;
        let c = run_salur(base, opts, opts.recipients, opts.chunk_size).await;
        crate::store::sealed::end_bench_clear_text();
        let c = c?;
        let cost = (
            1.0 - salur.end_to_end_records_per_second / c.end_to_end_records_per_second,
            1.0 - salur.intake_records_per_second / c.intake_records_per_second,
        );
        say(
            opts,
            format!(
                "clear text: {:.0} records/s end to end, intake {:.0} records/s; sealing costs {:.1} % end to end, {:.1} % of intake",
                c.end_to_end_records_per_second,
                c.intake_records_per_second,
                cost.0 * 100.0,
                cost.1 * 100.0
            ),
        );
        clear_text = Some(c);
        encryption_cost = Some(cost);
    }
    let (mut raw_run, mut per_record) = (None, None);
    if !opts.skip_baselines {
        say(opts, "raw baseline (lapin + sqlx, same hops and writes)");
        let settings = bench_settings(base, opts.chunk_size);
        reset(&settings).await?;
        let r = raw::run(&settings, opts.recipients).await?;
        say(
            opts,
            format!("raw: {:.0} records/s", r.end_to_end_records_per_second),
        );
        raw_run = Some(r);
        let n = opts
            .per_record_recipients
            .unwrap_or((opts.recipients / 20).max(1));
        say(opts, format!("per-record baseline: {n} records, chunk 1"));
        let p = run_salur(base, opts, n, 1).await?;
        say(
            opts,
            format!(
                "per-record: {:.0} records/s",
                p.end_to_end_records_per_second
            ),
        );
        per_record = Some(p);
    }
    cleanup(&bench_settings(base, opts.chunk_size)).await;
    let e2e = salur.end_to_end_records_per_second;
    let salur_over_raw = raw_run
        .as_ref()
        .map(|r| e2e / r.end_to_end_records_per_second);
    let salur_over_per_record = per_record
        .as_ref()
        .map(|p| e2e / p.end_to_end_records_per_second);
    let mut targets = vec![
        target("end to end, records/s", 10_000.0, e2e),
        target(
            "intake, records/s",
            100_000.0,
            salur.intake_records_per_second,
        ),
    ];
    if let Some(r) = salur_over_raw {
        targets.push(target("salur / raw", 0.5, r));
    }
    if let Some(r) = salur_over_per_record {
        targets.push(target("salur / per-record", 10.0, r));
    }
    Ok(BenchReport {
        machine: machine(),
        salur,
        salur_shared_ledger,
        raw: raw_run,
        per_record,
        clear_text,
        encryption_cost,
        salur_over_raw,
        salur_over_per_record,
        targets,
    })
}

fn target(what: &'static str, target: f64, measured: f64) -> Target {
    Target {
        what,
        target,
        measured,
        met: measured >= target,
    }
}

/// PostgreSQL settings of the benchmark's database, as a production operator would set them
/// server-wide (see the README's Performance section); set per database here so that other
/// databases on a shared server are left alone.
pub const DATABASE_SETTINGS: &[&str] = &["wal_compression = lz4"];

/// Drops and recreates the benchmark's databases (salur's and bank-sim's ledger) and queues.
pub async fn reset(settings: &Settings) -> anyhow::Result<()> {
    drop_database(settings).await?;
    let pool = store::migrate(settings).await?;
    crate::bank::sim::connect_ledger(settings)
        .await?
        .close()
        .await;
    for setting in DATABASE_SETTINGS {
        sqlx::query(&format!("ALTER DATABASE {BENCH_NAME} SET {setting}"))
            .execute(&pool)
            .await
            .with_context(|| format!("setting {setting} on the benchmark database"))?;
    }
    pool.close().await;
    let broker = Broker::connect(settings).await?;
    let _ = topology::delete(&broker).await;
    broker.close().await;
    let broker = Broker::connect(settings).await?;
    topology::declare(&broker).await?;
    broker.close().await;
    Ok(())
}

async fn drop_database(settings: &Settings) -> anyhow::Result<()> {
    let mut admin = settings.clone();
    let root = admin
        .database_url
        .rsplit_once('/')
        .expect("url has a path")
        .0;
    admin.database_url = format!("{root}/postgres");
    let pool = store::connect(&admin).await?;
    for db in [BENCH_NAME, BENCH_LEDGER_NAME] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&pool)
            .await
            .with_context(|| format!("dropping the benchmark database {db}"))?;
    }
    pool.close().await;
    Ok(())
}

/// Leaves nothing behind: the benchmark's queues and databases.
pub async fn cleanup(settings: &Settings) {
    if let Ok(b) = Broker::connect(settings).await {
        let _ = topology::delete(&b).await;
        raw::delete_queues(&b).await;
        b.close().await;
    }
    let _ = drop_database(settings).await;
}

/// Writes `n` valid recipients as an office CSV; returns the file and its total amount.
fn write_batch(dir: &Path, n: u32, seed: u64) -> anyhow::Result<(PathBuf, Decimal)> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("bench-{n}.csv"));
    let mut total = Decimal::ZERO;
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(generate::CSV_HEADER)?;
    for r in generate::valid_records(n, seed) {
        total += r
            .amount
            .as_deref()
            .and_then(|a| Amount::parse(a).ok())
            .map(|a| a.value())
            .context("the generator writes valid amounts")?;
        csv.write_record(generate::csv_cells(&r))?;
    }
    csv.flush()?;
    Ok((file, total))
}

/// A child process of this binary (`salur worker` or `salur bank-sim`) on the bench settings.
struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    fn start(settings: &Settings, name: &'static str, log: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let log = std::fs::File::create(log)?;
        let child = Command::new(exe)
            .arg(name)
            .env("DATABASE_URL", &settings.database_url)
            .env("SALUR_BANK_LEDGER_URL", settings.bank_ledger_url())
            .env("AMQP_URL", &settings.amqp_url)
            .env("SALUR_NAMESPACE", &settings.namespace)
            .env("SALUR_CHUNK_SIZE", settings.chunk_size.to_string())
            .env("SALUR_PREFETCH", settings.prefetch.to_string())
            .env("SALUR_CONCURRENCY", settings.concurrency.to_string())
            .env("SALUR_GROUP", settings.group.to_string())
            .env("SALUR_DB_POOL", settings.db_pool.to_string())
            .env(
                "SALUR_BENCH_CLEAR_TEXT",
                if crate::store::sealed::bench_clear_text() {
                    "1"
                } else {
                    "0"
                },
            )
            .env(
                "METRICS_ADDR",
                // `SALUR_BENCH_WORKER_METRICS=127.0.0.1:9465` serves the worker's /metrics there,
                // for finding where a run spends its time.
                match std::env::var("SALUR_BENCH_WORKER_METRICS") {
                    Ok(addr) if name == "worker" => addr,
                    _ => "off".to_owned(),
                },
            )
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting salur {name}"))?;
        Ok(Self { name, child })
    }

    fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(&format!("/proc/{}/status", self.child.id()))
    }

    /// SIGTERM, then up to 20 s for a graceful stop, then SIGKILL.
    async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(service = self.name, "did not stop in 20 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user and system) used so far by the PostgreSQL server on this machine: every
/// process named `postgres`, with what the postmaster's exited children used (backends come and
/// go with connections). `None` when no such process is visible (the server is elsewhere).
pub fn postgres_cpu_seconds() -> Option<f64> {
    let ticks = 100.0; // USER_HZ: 100 on Linux
    let mut total = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17)
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let sum: u64 = fields
            .get(11..15)
            .into_iter()
            .flatten()
            .filter_map(|v| v.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
            .sum();
        total += sum;
        found = true;
    }
    found.then(|| total as f64 / ticks)
}

/// CPU time used so far, in seconds, by the processes a salur run is made of (grouped as
/// [`CpuSnapshot::group`] says) and by the whole machine, read from `/proc`.
#[derive(Debug, Default)]
struct CpuSnapshot {
    per_process: std::collections::HashMap<u32, (&'static str, f64)>,
    machine: f64,
}

impl CpuSnapshot {
    const MACHINE: &'static str = "the whole machine (all processes, kernel included)";

    fn take(database: &str, ledger: &str, worker: u32, bank_sim: u32) -> Self {
        let ticks = 100.0; // USER_HZ: 100 on Linux
        let mut snapshot = Self::default();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return snapshot;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17)
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let comm = head.split_once(" (").map_or("", |(_, c)| c);
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let Some(group) = Self::group(pid, comm, &cmdline, database, ledger, worker, bank_sim)
            else {
                continue;
            };
            let seconds: i64 = rest
                .split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|v| v.parse::<i64>().ok())
                .map(|v| v.max(0))
                .sum();
            snapshot
                .per_process
                .insert(pid, (group, seconds as f64 / ticks));
        }
        // cpu  user nice system idle iowait irq softirq steal …: all but idle and iowait.
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().find(|l| l.starts_with("cpu "))
        {
            snapshot.machine = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 4)
                .filter_map(|(_, v)| v.parse::<f64>().ok())
                .sum::<f64>()
                / ticks;
        }
        snapshot
    }

    /// Which part of a salur run a process is, if any.
    fn group(
        pid: u32,
        comm: &str,
        cmdline: &str,
        database: &str,
        ledger: &str,
        worker: u32,
        bank_sim: u32,
    ) -> Option<&'static str> {
        if pid == worker {
            return Some("salur worker");
        }
        if pid == bank_sim {
            return Some("bank-sim");
        }
        if pid == std::process::id() {
            return Some("this process (intake, then polling)");
        }
        match comm {
            "postgres" => {
                let mut words = cmdline.split_whitespace();
                Some(if words.any(|w| w == database) {
                    "PostgreSQL backends, salur's database"
                } else if cmdline.split_whitespace().any(|w| w == ledger) {
                    "PostgreSQL backends, bank-sim's ledger"
                } else {
                    "PostgreSQL's own processes (WAL writer, checkpointer, autovacuum, ended backends)"
                })
            }
            "beam.smp" => Some("RabbitMQ"),
            _ => None,
        }
    }

    /// Per record from `before` to this snapshot, by group (largest first), the machine last.
    fn per_record_since(&self, before: &Self, records: u32) -> Vec<(String, f64)> {
        let mut groups: std::collections::BTreeMap<&str, f64> = Default::default();
        for (pid, (group, seconds)) in &self.per_process {
            let was = before.per_process.get(pid).map_or(0.0, |(_, s)| *s);
            *groups.entry(group).or_default() += (seconds - was).max(0.0);
        }
        let per_record = |seconds: f64| seconds * 1e6 / f64::from(records.max(1));
        let mut out: Vec<(String, f64)> = groups
            .into_iter()
            .map(|(g, s)| (g.to_owned(), per_record(s)))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.push((
            Self::MACHINE.to_owned(),
            per_record(self.machine - before.machine),
        ));
        out
    }
}

/// The database a PostgreSQL URL names (its path, without the query).
fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or_default();
    path.rsplit_once('/').map_or("", |(_, db)| db).to_owned()
}

/// VmHWM of a process, in MiB (0 if unknown).
fn peak_rss_mib(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Waits until a consumer is attached to each of these queues (base names).
async fn wait_for_consumers(settings: &Settings, queues: &[String]) -> anyhow::Result<()> {
    let broker = Broker::connect(settings).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for q in queues {
        loop {
            let ch = broker.channel().await?;
            let decl = ch
                .queue_declare(
                    settings.name(q).as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await?;
            let _ = ch.close(200, "ok".into()).await;
            if decl.consumer_count() > 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no consumer on {q} after 60 s: see the service logs in the bench directory"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    broker.close().await;
    Ok(())
}

async fn run_salur(
    base: &Settings,
    opts: &BenchOptions,
    n: u32,
    chunk_size: usize,
) -> anyhow::Result<SalurRun> {
    run_salur_with(base, opts, n, chunk_size, false).await
}

/// One run of salur; `shared_ledger`: bank-sim's ledger in salur's database instead of its own.
async fn run_salur_with(
    base: &Settings,
    opts: &BenchOptions,
    n: u32,
    chunk_size: usize,
    shared_ledger: bool,
) -> anyhow::Result<SalurRun> {
    let mut settings = bench_settings(base, chunk_size);
    if shared_ledger {
        settings.bank_ledger_url = Some(settings.database_url.clone());
    }
    say(
        opts,
        format!("salur: {n} recipients, chunk size {chunk_size}"),
    );
    reset(&settings).await?;
    let dir = std::env::temp_dir().join("salur-bench");
    let (file, total) = write_batch(&dir, n, opts.seed)?;
    let pool = store::connect(&settings).await?;
    let ledger = crate::bank::sim::connect_ledger(&settings).await?;

    let worker = Service::start(&settings, "worker", &dir.join("worker.log"))?;
    let bank = Service::start(&settings, "bank-sim", &dir.join("bank-sim.log"))?;
    let mut queues: Vec<String> = crate::messages::Stage::ALL
        .iter()
        .map(|s| names::stage_queue(s.as_str()))
        .collect();
    queues.push(names::BANK_REPLIES.to_owned());
    queues.push(names::bank_queue("002"));
    let ready = wait_for_consumers(&settings, &queues).await;
    let result = async {
        ready?;
        let info = BatchInfo {
            office: "DINSOS-BENCH".into(),
            program: "BPNT".into(),
            period: "BENCH".into(),
            submitted_by: None,
        };
        crate::ops::programme::ensure(&pool, "BPNT", "Program Sembako (BPNT)", "600000", false)
            .await?;
        if opts.profile && chunk_size == opts.chunk_size {
            profile_start(&pool).await?;
        }
        let started = Instant::now();
        let db_cpu_before = postgres_cpu_seconds();
        let (database, ledger_database) = (
            database_name(&settings.database_url),
            database_name(&settings.bank_ledger_url()),
        );
        let pids = (worker.child.id(), bank.child.id());
        let cpu_before = CpuSnapshot::take(&database, &ledger_database, pids.0, pids.1);
        let batch_id = submit::submit_file(&settings, &pool, &file, &info).await?;
        let intake = started.elapsed();
        let submit_rss = peak_rss_mib("/proc/self/status");
        say(
            opts,
            format!("stored {n} records in {:.2} s", intake.as_secs_f64()),
        );
        // A generous limit: the slowest configuration (chunk 1) runs near 1,000 records/s.
        let limit = Duration::from_secs(120 + u64::from(n) / 200);
        let mut last_report = Instant::now();
        loop {
            // The batch's counters, as `batch status --wait` reads them (a scan of the
            // batch's records ten times a second would be load of its own).
            let (disbursed, settled): (i64, i64) = sqlx::query_as(
                "SELECT coalesce(sum(records) FILTER (WHERE state = 'disbursed'), 0)::bigint,
                        coalesce(sum(records) FILTER (WHERE state NOT IN ('received',
                            'account_requested', 'account_opened', 'verified',
                            'transfer_requested')), 0)::bigint
                 FROM batch_counts WHERE batch_id = $1",
            )
            .bind(batch_id)
            .fetch_one(&pool)
            .await?;
            if settled == i64::from(n) {
                anyhow::ensure!(
                    disbursed == settled,
                    "{} of {n} records ended other than disbursed",
                    settled - disbursed
                );
                break;
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "only {disbursed} of {n} records disbursed after {limit:?}"
            );
            if last_report.elapsed() > Duration::from_secs(10) {
                say(opts, format!("{disbursed} of {n} disbursed"));
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let db_cpu = postgres_cpu_seconds()
            .zip(db_cpu_before)
            .map(|(after, before)| (after - before) * 1e6 / f64::from(n));
        let cpu = CpuSnapshot::take(&database, &ledger_database, pids.0, pids.1)
            .per_record_since(&cpu_before, n);
        let profile = if opts.profile && chunk_size == opts.chunk_size {
            profile_read(&pool, n).await?
        } else {
            Vec::new()
        };
        let e2e = last_disbursed(&pool, batch_id, started).await?;
        let peak = PeakRss {
            worker: worker.peak_rss_mib(),
            bank_sim: bank.peak_rss_mib(),
            submit: submit_rss,
        };
        let (p50, p99) = latency(&pool, batch_id).await?;
        check(&pool, &ledger, batch_id, n, total).await?;
        Ok(SalurRun {
            recipients: n,
            chunk_size,
            bank_ledger: if shared_ledger {
                "salur's database"
            } else {
                "its own database"
            },
            intake_seconds: intake.as_secs_f64(),
            intake_records_per_second: f64::from(n) / intake.as_secs_f64(),
            end_to_end_seconds: e2e,
            end_to_end_records_per_second: f64::from(n) / e2e,
            latency_p50_seconds: p50,
            latency_p99_seconds: p99,
            peak_rss_mib: peak,
            db_cpu_us_per_record: db_cpu,
            cpu_us_per_record: cpu,
            profile,
            disbursed_idr: total.to_string(),
        })
    }
    .await;
    worker.stop().await;
    bank.stop().await;
    pool.close().await;
    ledger.close().await;
    let _ = std::fs::remove_file(&file);
    result
}

/// Seconds from the submit to the last `disbursed` audit row, by the database's clock (the
/// polling interval does not count).
async fn last_disbursed(
    pool: &sqlx::PgPool,
    batch_id: uuid::Uuid,
    started: Instant,
) -> anyhow::Result<f64> {
    let (received, disbursed): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "SELECT min(e.at) FILTER (WHERE e.to_state = 'received'),
                    max(e.at) FILTER (WHERE e.to_state = 'disbursed')
             FROM record_events e JOIN records r ON r.id = e.record_id
             WHERE r.batch_id = $1",
        )
        .bind(batch_id)
        .fetch_one(pool)
        .await?;
    let by_db = (disbursed - received).as_seconds_f64();
    // `received` is the submit transaction's start; parsing before it is counted by the clock.
    Ok(by_db
        .max(0.0)
        .min(started.elapsed().as_secs_f64())
        .max(1e-6))
}

/// p50 and p99 of submit → disbursed, in seconds.
async fn latency(pool: &sqlx::PgPool, batch_id: uuid::Uuid) -> anyhow::Result<(f64, f64)> {
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY s)
         FROM (
             SELECT extract(epoch FROM t.disbursed - t.received)::float8 AS s
             FROM (
                 SELECT u.id, min(a.at) FILTER (WHERE a.to_state = 'received') AS received,
                        max(a.at) FILTER (WHERE a.to_state = 'disbursed') AS disbursed
                 FROM audit_chunks a CROSS JOIN LATERAL unnest(a.record_ids) AS u(id)
                 WHERE a.to_state IN ('received', 'disbursed')
                 GROUP BY u.id
             ) t
             JOIN records x ON x.id = t.id
             WHERE x.batch_id = $1 AND t.received IS NOT NULL AND t.disbursed IS NOT NULL
         ) s",
    )
    .bind(batch_id)
    .fetch_one(pool)
    .await?;
    Ok((p50, p99))
}

/// Every record disbursed exactly once, and the money adds up, by salur's books and the bank's
/// (`ledger`, bank-sim's database).
async fn check(
    pool: &sqlx::PgPool,
    ledger: &sqlx::PgPool,
    batch_id: uuid::Uuid,
    n: u32,
    total: Decimal,
) -> anyhow::Result<()> {
    let n = i64::from(n);
    let (records, disbursed, amount, count): (i64, i64, Option<Decimal>, i32) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'disbursed'),
                sum(amount) FILTER (WHERE state = 'disbursed'),
                (SELECT record_count FROM batches WHERE id = $1)
         FROM records WHERE batch_id = $1",
    )
    .bind(batch_id)
    .fetch_one(pool)
    .await?;
    let mut problems = Vec::new();
    if (records, disbursed, i64::from(count)) != (n, n, n) {
        problems.push(format!(
            "expected {n} records all disbursed; batch says {count}, {records} stored, {disbursed} disbursed"
        ));
    }
    if amount != Some(total) {
        problems.push(format!(
            "disbursed amount {amount:?} differs from the file's total {total}"
        ));
    }
    let (events, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT record_id) FROM record_events
         WHERE to_state = 'disbursed'",
    )
    .fetch_one(pool)
    .await?;
    if (events, distinct) != (n, n) {
        problems.push(format!(
            "expected one disbursed audit row per record ({n}); found {events} for {distinct} records"
        ));
    }
    let (transfers, items, ok, paid): (i64, i64, i64, Option<Decimal>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT item_id), count(*) FILTER (WHERE status = 'ok'),
                sum(amount) FILTER (WHERE status = 'ok')
         FROM bank_sim.transfers",
    )
    .fetch_one(ledger)
    .await?;
    if (transfers, items, ok) != (n, n, n) {
        problems.push(format!(
            "the bank should have settled {n} transfers, one per record; it has {transfers} \
             ({items} records, {ok} settled)"
        ));
    }
    if paid != Some(total) {
        problems.push(format!(
            "the bank paid {paid:?}, the file's total is {total}"
        ));
    }
    anyhow::ensure!(
        problems.is_empty(),
        "benchmark correctness check failed: {}",
        problems.join("; ")
    );
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {mem:.0} GiB RAM")
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.salur;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "salur, {} recipients, chunk size {}, bank-sim's ledger in {}:",
            s.recipients, s.chunk_size, s.bank_ledger
        )?;
        writeln!(
            f,
            "  end to end          {:>10.0} records/s  ({:.1} s)",
            s.end_to_end_records_per_second, s.end_to_end_seconds
        )?;
        writeln!(
            f,
            "  intake alone        {:>10.0} records/s  ({:.2} s: parse, store, enqueue)",
            s.intake_records_per_second, s.intake_seconds
        )?;
        writeln!(
            f,
            "  submit → disbursed  p50 {:.2} s, p99 {:.2} s",
            s.latency_p50_seconds, s.latency_p99_seconds
        )?;
        writeln!(
            f,
            "  peak RSS            worker {:.0} MiB, bank-sim {:.0} MiB, submit {:.0} MiB",
            s.peak_rss_mib.worker, s.peak_rss_mib.bank_sim, s.peak_rss_mib.submit
        )?;
        if let Some(us) = s.db_cpu_us_per_record {
            writeln!(
                f,
                "  PostgreSQL CPU      {us:.0} µs per record (every postgres process, submit to last settled)"
            )?;
        }
        if !s.cpu_us_per_record.is_empty() {
            writeln!(
                f,
                "  CPU per record, submit to last settled, by process (µs; the machine's busy time \
                 over the wall time is how many cores were busy):"
            )?;
            for (what, us) in &s.cpu_us_per_record {
                writeln!(f, "    {us:>8.1}  {what}")?;
            }
            if let Some((_, machine)) = s.cpu_us_per_record.last() {
                writeln!(
                    f,
                    "    = {:.2} cores busy at {:.0} records/s",
                    machine * s.end_to_end_records_per_second / 1e6,
                    s.end_to_end_records_per_second
                )?;
            }
        }
        writeln!(
            f,
            "  check               {} records disbursed once each, Rp {} paid = file total",
            s.recipients, s.disbursed_idr
        )?;
        if !s.profile.is_empty() {
            writeln!(
                f,
                "  profile (pg_stat_statements: time inside PostgreSQL per record, slowest first):"
            )?;
            writeln!(
                f,
                "    {:>9} {:>9} {:>10}  statement",
                "µs/record", "calls", "rows"
            )?;
            for p in &s.profile {
                writeln!(
                    f,
                    "    {:>9.1} {:>9} {:>10}  {}",
                    p.us_per_record, p.calls, p.rows, p.query
                )?;
            }
        }
        if let Some(c) = &self.salur_shared_ledger {
            writeln!(
                f,
                "salur, bank-sim's ledger in salur's database: {:.0} records/s end to end  ({:.1} s), intake {:.0} records/s, p99 {:.2} s",
                c.end_to_end_records_per_second,
                c.end_to_end_seconds,
                c.intake_records_per_second,
                c.latency_p99_seconds
            )?;
        }
        if let Some(r) = &self.raw {
            writeln!(
                f,
                "raw baseline (lapin + sqlx, {} hops, chunk {}): {:.0} records/s  ({:.1} s){}",
                r.hops,
                r.chunk_size,
                r.end_to_end_records_per_second,
                r.end_to_end_seconds,
                r.db_cpu_us_per_record
                    .map(|us| format!(", PostgreSQL CPU {us:.0} µs per record"))
                    .unwrap_or_default()
            )?;
        }
        if let Some(p) = &self.per_record {
            writeln!(
                f,
                "per-record baseline (salur, chunk 1, {} recipients): {:.0} records/s  (p50 {:.2} s, p99 {:.2} s)",
                p.recipients,
                p.end_to_end_records_per_second,
                p.latency_p50_seconds,
                p.latency_p99_seconds
            )?;
        }
        if let (Some(c), Some((e2e, intake))) = (&self.clear_text, self.encryption_cost) {
            writeln!(
                f,
                "personal fields in clear (no cipher): {:.0} records/s end to end, intake {:.0} records/s",
                c.end_to_end_records_per_second, c.intake_records_per_second
            )?;
            writeln!(
                f,
                "encryption cost    = {:.1} % end to end, {:.1} % of intake (1 - sealed / clear)",
                e2e * 100.0,
                intake * 100.0
            )?;
        }
        if let Some(r) = self.salur_over_raw {
            writeln!(f, "salur / raw        = {r:.2}")?;
        }
        if let Some(r) = self.salur_over_per_record {
            writeln!(f, "salur / per-record = {r:.1}")?;
        }
        writeln!(f, "targets:")?;
        for t in &self.targets {
            writeln!(
                f,
                "  {:<24} {:>10.2}  (target ≥ {}) {}",
                t.what,
                t.measured,
                t.target,
                if t.met { "met" } else { "NOT MET" }
            )?;
        }
        Ok(())
    }
}
