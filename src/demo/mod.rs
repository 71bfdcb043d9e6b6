//! `salur demo`: a realistic batch through the whole pipeline on the local services, with the
//! workers and bank-sim in this process; and its generator of realistic office batches
//! ([`generate`], also used by the benchmark, the fault campaign and the tests).

pub mod generate;
mod snap;

use crate::bank::sim::{self, SimOptions};
use crate::broker::{Broker, topology};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::ops::approval::{self, ApprovalList, Decided};
use crate::ops::batch::{self, BatchStatus};
use crate::ops::submit::{self, BatchInfo};
use crate::store::{self, State};
use crate::worker::{self, WorkerOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub recipients: u32,
    pub incomplete: u32,
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Give up waiting after this long.
    pub timeout: Duration,
    /// How the simulated bank misbehaves (transient errors, lost answers).
    pub bank: SimOptions,
    /// After the first pass, fix the blocked records from a corrections file (as an office
    /// would), replay them and wait again.
    pub fix: bool,
    /// The banks over SNAP BI (gateways, bank-sim's SNAP server) and account opening by file,
    /// instead of AMQP ([`snap`]).
    pub snap: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            recipients: 3000,
            incomplete: 430,
            seed: 42,
            progress: true,
            timeout: Duration::from_secs(600),
            fix: false,
            snap: false,
            bank: SimOptions::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub batch_id: Uuid,
    pub file: PathBuf,
    pub recipients: u32,
    /// Recipients generated with incomplete administrative data.
    pub incomplete: u32,
    pub disbursed: i64,
    pub blocked: i64,
    /// Records whose retries ran out (only with bank faults).
    pub dead: i64,
    /// Retries per `stage/tier`, from the worker's metrics.
    pub retries: BTreeMap<String, u64>,
    /// Whether the bank was told to misbehave: then a few records may end dead.
    pub bank_faults: bool,
    /// Records per blocked reason, as the pipeline found them.
    pub blocked_reasons: BTreeMap<String, i64>,
    /// What the generator put in, per reason: the demo checks that the pipeline found exactly this.
    pub expected_reasons: BTreeMap<String, u32>,
    pub wall_seconds: f64,
    pub records_per_second: f64,
    pub status: BatchStatus,
    /// The payment list as the checker saw it after the first pass, and what they decided
    /// (`None` when the programme requires no approval).
    pub approval: Option<ApprovalStep>,
    /// The second pass of `--fix`.
    pub fix: Option<FixSummary>,
}

/// A checker's step: the list they were shown, and their approval.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalStep {
    pub list: ApprovalList,
    pub decided: Decided,
}

/// What `--fix` did: corrections, replay, and where the batch ended.
#[derive(Debug, Clone, Serialize)]
pub struct FixSummary {
    pub corrections_file: PathBuf,
    /// Records corrected, and of those the ones complete afterwards.
    pub corrected: usize,
    pub complete_after_fix: usize,
    pub replayed: u64,
    pub still_blocked: usize,
    pub disbursed: i64,
    pub blocked: i64,
    /// Messages left on `salur.blocked` once the batch settled again.
    pub blocked_queue_messages: u32,
    pub wall_seconds: f64,
    /// The supplementary list of the replayed records, and its approval.
    pub approval: Option<ApprovalStep>,
    pub status: BatchStatus,
}

/// The programme the demo pays (its own, approval required: BPNT is the tests' and the
/// benchmark's, without approval), the office it submits as, its maker and its checker
/// (another person).
const PROGRAM: &str = "SEMBAKO";
const OFFICE: &str = "DINSOS-5371";
const MAKER: &str = "salur demo (maker)";
const CHECKER: &str = "salur demo (checker)";

/// What [`write_batch`] wrote: the office's file, the corrections the office would write for
/// its incomplete records, and what the pipeline must find.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenBatch {
    pub file: PathBuf,
    pub corrections_file: PathBuf,
    pub recipients: u32,
    pub incomplete: u32,
    /// Records per blocked reason (a record with two problems counts under both).
    pub expected_reasons: BTreeMap<String, u32>,
}

/// The corrections file that goes with the batch file `file`: `x.csv` -> `x.corrections.csv`.
pub fn corrections_path(file: &std::path::Path) -> PathBuf {
    file.with_extension("corrections.csv")
}

/// Writes the demo's generated batch to `file` (CSV, as [`run`] submits it) and the office's
/// corrections of its incomplete records to [`corrections_path`] (as `--fix` applies them),
/// without running anything: for tests that drive the batch themselves (the browser journey).
pub fn write_batch(file: &std::path::Path, opts: &DemoOptions) -> anyhow::Result<WrittenBatch> {
    anyhow::ensure!(
        opts.incomplete <= opts.recipients,
        "--incomplete ({}) cannot be more than --recipients ({})",
        opts.incomplete,
        opts.recipients
    );
    let demo = generate::generate(opts.recipients, opts.incomplete, opts.seed);
    let create = |p: &std::path::Path| {
        std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", p.display()))
    };
    generate::write_csv(&demo.records, create(file)?)?;
    let corrections_file = corrections_path(file);
    generate::write_corrections(&demo.records, &demo.corrected, create(&corrections_file)?)?;
    Ok(WrittenBatch {
        file: file.to_owned(),
        corrections_file,
        recipients: opts.recipients,
        incomplete: opts.incomplete,
        expected_reasons: demo
            .expected_reasons
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect(),
    })
}

/// The checker approves the batch's list as it stands (the summary shows what they saw).
async fn approve(
    settings: &Settings,
    pool: &sqlx::PgPool,
    batch_id: Uuid,
) -> anyhow::Result<ApprovalStep> {
    let list = approval::list(pool, batch_id, None).await?;
    let checker = approval::Checker {
        person: CHECKER.into(),
        token_label: Some("cli".into()),
        office: None,
    };
    let decided = approval::approve(settings, pool, batch_id, &list.list_hash, &checker).await?;
    Ok(ApprovalStep { list, decided })
}

pub async fn run(settings: &Settings, opts: &DemoOptions) -> anyhow::Result<DemoSummary> {
    anyhow::ensure!(
        opts.incomplete <= opts.recipients,
        "--incomplete ({}) cannot be more than --recipients ({})",
        opts.incomplete,
        opts.recipients
    );
    let pool = store::migrate(settings).await?;
    let broker = Broker::connect(settings).await?;
    topology::declare(&broker).await?;
    broker.close().await;

    // bank-sim's ledger, in its own database (a bank does not live in salur's).
    let ledger = sim::connect_ledger(settings).await?;
    sim::forget_customers(&ledger).await?;

    let cancel = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let mut services = tokio::task::JoinSet::new();
    services.spawn(worker::run(
        settings.clone(),
        pool.clone(),
        WorkerOptions::default(),
        metrics.clone(),
        cancel.clone(),
    ));
    let stamp = chrono::Local::now().format("%Y%m%d%H%M%S%3f").to_string();
    let dir = std::env::temp_dir().join("salur-demo");
    let snap = if opts.snap {
        let snap_dir = dir.join(format!("snap-{stamp}"));
        std::fs::create_dir_all(&snap_dir)?;
        let s = snap::start(
            settings,
            &pool,
            &ledger,
            &opts.bank,
            &snap_dir,
            &mut services,
            &cancel,
        )
        .await?;
        Some((s, snap_dir))
    } else {
        services.spawn(sim::run(
            settings.clone(),
            ledger.clone(),
            opts.bank.clone(),
            cancel.clone(),
        ));
        None
    };
    if let Some(addr) = settings.metrics_addr {
        let (metrics, cancel) = (metrics.clone(), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(addr, metrics, cancel).await {
                tracing::warn!(error = format!("{e:#}"), "demo runs without /metrics");
            }
        });
    }

    // The office's file, written as an office would export it.
    let demo = generate::generate(opts.recipients, opts.incomplete, opts.seed);
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("sembako-{stamp}.csv"));
    generate::write_csv(&demo.records, std::fs::File::create(&file)?)?;
    // Each demo is its own disbursement period, so runs never see each other as double recipients.
    let info = BatchInfo {
        office: OFFICE.into(),
        program: PROGRAM.into(),
        period: format!("DEMO-{stamp}"),
        submitted_by: Some(crate::domain::Actor::cli(Some(MAKER.into()))),
    };

    // The demo's programme (approval required), its office and its budget for the period:
    // room for every recipient, at Rp600.000 each.
    let programme = crate::ops::programme::ensure(
        &pool,
        PROGRAM,
        "Program Sembako (BPNT), the demo's: payments approved by a checker",
        "600000",
        true,
    )
    .await?;
    match crate::ops::office::add(
        &pool,
        OFFICE,
        "Dinas Sosial Kota Kupang",
        crate::ops::office::Role::Maker,
    )
    .await
    {
        Ok(_) | Err(crate::ops::office::OfficeError::Exists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    crate::ops::budget::set(
        &pool,
        &info.program,
        &info.period,
        OFFICE,
        rust_decimal::Decimal::from(opts.recipients) * rust_decimal::Decimal::from(600_000),
    )
    .await?;
    let started = Instant::now();
    let batch_id = submit::submit_file(settings, &pool, &file, &info).await?;
    if let Some((sim, snap_dir)) = snap {
        services.spawn(snap::exchange_files(
            settings.clone(),
            pool.clone(),
            sim,
            batch_id,
            snap_dir,
            cancel.clone(),
        ));
    }
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(u64::from(opts.recipients));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} settled ({per_sec}) {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar
    });
    let mut waited = batch::wait(&pool, batch_id, Some(opts.timeout), |s| progress(&bar, s)).await;
    // The checker approves the list as it stands; the transfers follow.
    let approved = match &waited {
        Ok(s) if programme.approval_required && s.count(State::AwaitingApproval) > 0 => {
            let step = approve(settings, &pool, batch_id).await;
            waited = batch::wait(&pool, batch_id, Some(opts.timeout), |s| progress(&bar, s)).await;
            Some(step)
        }
        _ => None,
    };
    let approved = approved.transpose();
    let elapsed = started.elapsed();
    let fixed = match (&waited, opts.fix) {
        (Ok(_), true) => Some(
            fix_and_replay(
                settings,
                &pool,
                &demo,
                &info,
                batch_id,
                &file,
                opts.timeout,
                &bar,
            )
            .await,
        ),
        _ => None,
    };
    if let Some(bar) = bar {
        bar.finish();
    }
    cancel.cancel();
    while let Some(r) = services.join_next().await {
        if let Err(e) = r? {
            tracing::warn!(
                error = format!("{e:#}"),
                "a demo service stopped with an error"
            );
        }
    }
    let fix = fixed.transpose()?;
    let approval = approved?;
    let status = waited?;
    let blocked_reasons: BTreeMap<String, i64> = status.reasons.clone();
    let summary = DemoSummary {
        batch_id,
        file,
        recipients: opts.recipients,
        incomplete: opts.incomplete,
        disbursed: status.count(State::Disbursed),
        blocked: status.count(State::Blocked),
        dead: status.count(State::Dead),
        retries: retries(&metrics),
        bank_faults: opts.bank.transient_error_rate > 0.0 || opts.bank.lost_answer_rate > 0.0,
        blocked_reasons,
        expected_reasons: demo
            .expected_reasons
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect(),
        wall_seconds: elapsed.as_secs_f64(),
        records_per_second: f64::from(opts.recipients) / elapsed.as_secs_f64().max(1e-9),
        status,
        approval,
        fix,
    };
    Ok(summary)
}

/// `stage/tier -> retries` from the worker's counters.
fn retries(metrics: &Metrics) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for family in metrics.registry.gather() {
        if family.name() != "salur_retries_total" {
            continue;
        }
        for m in family.get_metric() {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let key = format!("{}/{}", label("stage"), label("tier"));
            *out.entry(key).or_default() += m.get_counter().value() as u64;
        }
    }
    out
}

fn progress(bar: &Option<indicatif::ProgressBar>, s: &BatchStatus) {
    if let Some(bar) = bar {
        bar.set_position((s.records - s.in_flight) as u64);
        bar.set_message(format!(
            "disbursed {}, blocked {}, awaiting approval {}",
            s.count(State::Disbursed),
            s.count(State::Blocked),
            s.count(State::AwaitingApproval)
        ));
    }
}

/// The office's second pass: a corrections file for the blocked rows (from its own complete
/// records), `fix_file`, `replay`, and wait until the batch settles again.
#[allow(clippy::too_many_arguments)]
async fn fix_and_replay(
    settings: &Settings,
    pool: &sqlx::PgPool,
    demo: &generate::DemoBatch,
    info: &BatchInfo,
    batch_id: Uuid,
    file: &std::path::Path,
    timeout: Duration,
    bar: &Option<indicatif::ProgressBar>,
) -> anyhow::Result<FixSummary> {
    use crate::ops::remediate::{self, Filter, Scope};
    let started = Instant::now();
    let corrections_file = corrections_path(file);
    generate::write_corrections(
        &demo.records,
        &demo.corrected,
        std::fs::File::create(&corrections_file)?,
    )?;
    let scope = Scope::Office(info.office.clone());
    let actor = crate::domain::Actor::cli(Some(MAKER.into()));
    let name = corrections_file.display().to_string();
    let fixes = remediate::fix_file(
        &settings.amount_range,
        pool,
        &scope,
        &actor,
        batch_id,
        &name,
        std::fs::File::open(&corrections_file)?,
    )
    .await?;
    let replay = remediate::replay(
        settings,
        pool,
        &scope,
        &actor,
        &Filter {
            batch_id: Some(batch_id),
            state: Some(State::Blocked),
            ..Default::default()
        },
    )
    .await?;
    if let Some(bar) = bar {
        bar.set_position(0);
    }
    let mut status = batch::wait(pool, batch_id, Some(timeout), |s| progress(bar, s)).await?;
    // The replayed records form a supplementary list: it needs its own approval.
    let approval = if status.count(State::AwaitingApproval) > 0 {
        let step = approve(settings, pool, batch_id).await?;
        status = batch::wait(pool, batch_id, Some(timeout), |s| progress(bar, s)).await?;
        Some(step)
    } else {
        None
    };
    // Blocked-queue messages of replayed records are removed by the replay; wait for the
    // pipeline's own parked messages (if any record blocked again) to reach the queue.
    submit::publish_now(settings, pool).await;
    // The replay reconciled while records were still moving; once all is quiet one reconcile
    // (as an operator runs `salur dlq reconcile`) leaves one message per blocked record.
    remediate::reconcile(settings, pool).await?;
    let broker = Broker::connect(settings).await?;
    let blocked_queue_messages = broker
        .queue_depth(crate::broker::names::BLOCKED_QUEUE)
        .await?;
    broker.close().await;
    Ok(FixSummary {
        corrections_file,
        corrected: fixes.len(),
        complete_after_fix: fixes.iter().filter(|f| f.ready).count(),
        replayed: replay.replayed.values().sum(),
        still_blocked: replay.still_blocked.len(),
        disbursed: status.count(State::Disbursed),
        blocked: status.count(State::Blocked),
        blocked_queue_messages,
        wall_seconds: started.elapsed().as_secs_f64(),
        approval,
        status,
    })
}

impl DemoSummary {
    /// Problems found comparing the outcome with what the generator put in.
    pub fn discrepancies(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let complete = i64::from(self.recipients - self.incomplete);
        // With a misbehaving bank a few records may run out of retries: they end dead, never lost.
        let dead_allowed = if self.bank_faults { self.dead } else { 0 };
        if self.disbursed + dead_allowed != complete || (!self.bank_faults && self.dead != 0) {
            problems.push(format!(
                "expected {complete} disbursed (or dead with a faulty bank), got {} disbursed and {} dead",
                self.disbursed, self.dead
            ));
        }
        if self.blocked != i64::from(self.incomplete) {
            problems.push(format!(
                "expected {} blocked, got {}",
                self.incomplete, self.blocked
            ));
        }
        let expected: BTreeMap<String, i64> = self
            .expected_reasons
            .iter()
            .map(|(k, v)| (k.clone(), i64::from(*v)))
            .collect();
        if expected != self.blocked_reasons {
            problems.push(format!(
                "blocked reasons differ: expected {expected:?}, got {:?}",
                self.blocked_reasons
            ));
        }
        if !self.status.totals.holds {
            problems.push(format!(
                "the totals identity does not hold: {}",
                self.status.totals
            ));
        }
        if let Some(a) = &self.approval
            && a.decided.records != complete
        {
            problems.push(format!(
                "expected a payment list of {complete} to approve, got {}",
                a.decided.records
            ));
        }
        if let Some(fix) = &self.fix {
            if !fix.status.totals.holds {
                problems.push(format!(
                    "after the fix the totals identity does not hold: {}",
                    fix.status.totals
                ));
            }
            let dead_after = if self.bank_faults {
                fix.status.count(State::Dead)
            } else {
                0
            };
            let all = i64::from(self.recipients) - dead_after;
            if fix.disbursed != all || (!self.bank_faults && fix.status.count(State::Dead) != 0) {
                problems.push(format!(
                    "after fixing and replaying, expected {all} disbursed, got {}",
                    fix.disbursed
                ));
            }
            if fix.blocked_queue_messages != 0 {
                problems.push(format!(
                    "{} messages are still on salur.blocked after every record was fixed",
                    fix.blocked_queue_messages
                ));
            }
        }
        problems
    }
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "office file: {}", self.file.display())?;
        if let Some(a) = &self.approval {
            write!(f, "{}{}", a.list, a.decided)?;
        }
        write!(f, "{}", self.status)?;
        writeln!(
            f,
            "{} disbursed, {} blocked; {} records in {:.1} s ({:.0} records/s end to end)",
            self.disbursed,
            self.blocked,
            self.recipients,
            self.wall_seconds,
            self.records_per_second
        )?;
        if !self.retries.is_empty() || self.dead > 0 {
            let total: u64 = self.retries.values().sum();
            writeln!(
                f,
                "retries: {total} {:?}; dead (retries exhausted): {}",
                self.retries, self.dead
            )?;
        }
        if let Some(fix) = &self.fix {
            writeln!(
                f,
                "\n--fix: corrections file {}",
                fix.corrections_file.display()
            )?;
            writeln!(
                f,
                "{} records corrected ({} complete), {} replayed, {} still blocked",
                fix.corrected, fix.complete_after_fix, fix.replayed, fix.still_blocked
            )?;
            if let Some(a) = &fix.approval {
                write!(f, "supplementary {}{}", a.list, a.decided)?;
            }
            write!(f, "{}", fix.status)?;
            writeln!(
                f,
                "{} disbursed, {} blocked, {} messages left on salur.blocked; second pass {:.1} s",
                fix.disbursed, fix.blocked, fix.blocked_queue_messages, fix.wall_seconds
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_batch_writes_the_batch_and_the_corrections_of_its_incomplete_records() {
        let dir = std::env::temp_dir().join(format!("salur-write-batch-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("penerima.csv");
        let opts = DemoOptions {
            recipients: 200,
            incomplete: 20,
            ..Default::default()
        };
        let written = write_batch(&file, &opts).unwrap();
        let demo = generate::generate(200, 20, 42);
        assert_eq!(
            written.corrections_file,
            dir.join("penerima.corrections.csv")
        );
        let batch = std::fs::read_to_string(&file).unwrap();
        assert_eq!(batch.lines().count(), 201, "a header and 200 recipients");
        assert!(batch.starts_with("nik,no_kk,nama,nama_ibu_kandung,"));
        let mut fixes = csv::Reader::from_path(&written.corrections_file).unwrap();
        let rows: Vec<u32> = fixes
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        assert_eq!(rows, demo.corrected.keys().copied().collect::<Vec<_>>());
        let expected: u32 = written.expected_reasons.values().sum();
        assert!(written.expected_reasons.len() >= 5 && expected >= 20);
        assert_eq!(
            written.expected_reasons["MOTHER_NAME_MISSING"],
            demo.expected_reasons[&crate::domain::ReasonCode::MotherNameMissing]
        );
        let refused = write_batch(
            &dir.join("x.csv"),
            &DemoOptions {
                recipients: 5,
                incomplete: 6,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            refused.to_string().contains("--incomplete (6)"),
            "{refused}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
