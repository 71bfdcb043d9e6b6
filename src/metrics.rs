//! Prometheus metrics, named once. Names are `salur_*` in base units (seconds, IDR, records,
//! messages); labels come from small fixed sets (stage, outcome, reason, bank, queue, state,
//! program), never a batch, a record or a person. The README's "Monitoring" section lists them
//! with their help text; `monitoring/` holds the alert rules and the dashboard built on them.
//!
//! Two kinds of metric live here:
//! - **counters and histograms** counted where the work happens (the consumer loop records a
//!   [`Tally`](crate::stages::Tally) per message, with [`Tally::record`](crate::stages::Tally::record);
//!   the relay counts what it published). The `outcome` labels are
//!   [`Outcome::label`](crate::domain::lifecycle::Outcome::label), the fixed set per stage
//!   [`Stage::outcomes`](crate::domain::lifecycle::Stage::outcomes);
//! - **gauges read from PostgreSQL** (parked records, records of batches in flight, the outbox
//!   backlog) by [`refresh`], which [`refresh_loop`] runs every [`REFRESH_EVERY`] in each worker
//!   process. They describe the whole database, so every worker reports the same value:
//!   aggregate them with `max`, not `sum`.

use crate::domain::ReasonCode;
use crate::messages::Stage;
use crate::store::State;
use prometheus::{
    CounterVec, Encoder as _, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often [`refresh_loop`] reads the database-derived gauges (longer if a pass is slow).
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Reasons each stage can find (started at zero in `salur_record_reasons_total`).
const REASONS_BY_STAGE: [(Stage, &[ReasonCode]); 3] = [
    (
        Stage::AccountOpening,
        &[
            ReasonCode::NikMissing,
            ReasonCode::NikInvalid,
            ReasonCode::NikBirthDateMismatch,
            ReasonCode::NikSexMismatch,
            ReasonCode::KkMissing,
            ReasonCode::KkInvalid,
            ReasonCode::NameMissing,
            ReasonCode::MotherNameMissing,
            ReasonCode::BirthPlaceMissing,
            ReasonCode::BirthDateMissing,
            ReasonCode::BirthDateInvalid,
            ReasonCode::SexMissing,
            ReasonCode::SexInvalid,
            ReasonCode::AddressMissing,
            ReasonCode::RegionCodeMissing,
            ReasonCode::RegionCodeInvalid,
            ReasonCode::BankUnknown,
            ReasonCode::AccountNumberInvalid,
            ReasonCode::AmountInvalid,
            ReasonCode::AmountNotAllowed,
            ReasonCode::NikNotFound,
            ReasonCode::AccountNotFound,
            ReasonCode::NikDataMismatch,
            ReasonCode::CustomerBlacklisted,
            ReasonCode::AccountClosed,
            ReasonCode::AccountDormant,
            ReasonCode::AccountBlocked,
            ReasonCode::AccountMismatch,
            ReasonCode::BankRefused,
            ReasonCode::RetriesExhausted,
        ],
    ),
    (
        Stage::Verification,
        &[ReasonCode::NameMismatch, ReasonCode::DoubleRecipient],
    ),
    (
        Stage::Transfer,
        &[
            ReasonCode::TransferRejected,
            ReasonCode::AccountNotFound,
            ReasonCode::AccountClosed,
            ReasonCode::AccountDormant,
            ReasonCode::AccountBlocked,
            ReasonCode::AmountLimitExceeded,
            ReasonCode::BankRefused,
            ReasonCode::RetriesExhausted,
        ],
    ),
];

/// The `queue` label of the parked gauges: the parked states, each on the queue of its name
/// (`salur.blocked`, `salur.dead`).
fn parked_queues() -> impl Iterator<Item = (&'static str, State)> {
    State::ALL
        .into_iter()
        .filter(|s| s.parked())
        .map(|s| (s.as_str(), s))
}

pub struct Metrics {
    pub registry: Registry,
    /// Records received into the pipeline (taken up by account opening on their first attempt,
    /// or replayed after a fix), by programme. The top of the funnel.
    pub received: IntCounterVec,
    /// IDR asked for by offices for the records received, by programme.
    pub requested_idr: CounterVec,
    /// Records a stage took up (in the state it expects), by stage. A retried record enters
    /// again.
    pub entered: IntCounterVec,
    /// Records leaving a stage, by outcome (advanced, account_opened, blocked, rejected,
    /// retried, dead, disbursed, failed).
    pub records: IntCounterVec,
    /// Records named by a message that were no longer in the expected state (redelivery,
    /// duplicate or late bank answer): nothing was done to them.
    pub skipped: IntCounterVec,
    /// Records blocked, rejected, failed or dead, by reason code.
    pub reasons: IntCounterVec,
    /// Time to handle one chunk or bank answer, in one transaction.
    pub stage_duration: HistogramVec,
    /// Messages handled in one transaction (`SALUR_GROUP`), by consumer.
    pub messages_per_transaction: HistogramVec,
    /// From a bank request's commit to its answer being applied, by bank and stage.
    pub bank_round_trip: HistogramVec,
    /// IDR paid out, by programme.
    pub disbursed_idr: CounterVec,
    /// IDR paid out and come back (returned transfers, from reconciled bank statements), by
    /// programme. Read from the database by [`refresh`] (a reconciliation may run in any
    /// process): it follows the stored returns, which only ever grow.
    pub returned_idr: CounterVec,
    /// Reconciliation exceptions stored, by bank and kind (`salur reconcile`; whole database).
    pub reconciliation_exceptions: IntGaugeVec,
    /// Messages the relay published from the outbox.
    pub published: IntCounterVec,
    /// Messages parked in `salur.dead` because no consumer could read them.
    pub poison: IntCounterVec,
    /// Bank answer items refused (they changed nothing and were parked on `salur.dead`), by the
    /// bank whose user sent them (`unknown` without one) and why (`WRONG_BANK`,
    /// `UNKNOWN_REQUEST`, `MISSING_FIELD`, `NO_SENDER`, `UNKNOWN_SENDER`).
    pub bank_replies_refused: IntCounterVec,
    /// Messages waiting in the outbox.
    pub outbox_backlog: IntGauge,
    /// Age of the oldest message waiting in the outbox.
    pub outbox_oldest_age: Gauge,
    /// Records in state blocked / dead, by queue and reason.
    pub parked: IntGaugeVec,
    /// Age of the oldest parked record, by queue.
    pub parked_oldest_age: GaugeVec,
    /// Records per state, summed over the batches that still have records in flight.
    pub in_flight: IntGaugeVec,
    /// Batches that still have records in flight.
    pub batches_in_flight: IntGauge,
    /// Records waiting in `awaiting_approval` for a checker (whole database).
    pub awaiting_approval: IntGauge,
    /// Checkers' decisions on payment lists, by decision (`approved`, `rejected`), counted from
    /// the `approvals` table (whoever decided, through the API or the command line).
    pub approvals: IntCounterVec,
    /// Longest time a batch in flight has gone without any of its records changing state.
    pub batch_max_idle: Gauge,
    /// Budget left per programme (allocated − approved-not-paid − disbursed, over its periods
    /// and offices with a budget); the definition is [`crate::store::budgets`]'s.
    pub budget_remaining: GaugeVec,
    /// The largest share of its budget any one period of the programme has used (1 = all).
    pub budget_used_ratio: GaugeVec,
    /// 1 while the worker holds a RabbitMQ connection with its consumers running.
    pub broker_connected: IntGauge,
    /// Times the worker lost its RabbitMQ connection (it then reconnects).
    pub broker_reconnects: IntCounter,
    /// How long the last database-gauge refresh took.
    pub refresh_duration: Gauge,
    /// Database-gauge refreshes that failed (the gauges keep their last values).
    pub refresh_failures: IntCounter,
    /// Records (or, when a handler failed, whole messages) sent to a retry delay tier, by stage
    /// and tier (counted by the retry code).
    pub retries: IntCounterVec,
    /// Every metric family's name, registered or not yet observed.
    names: Vec<String>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let received = IntCounterVec::new(
            opts(
                "salur_records_received_total",
                "Records received into the pipeline (taken up by account opening on their first attempt, or replayed after a fix), by programme.",
            ),
            &["program"],
        )
        .expect("metric");
        let requested_idr = CounterVec::new(
            opts(
                "salur_requested_idr_total",
                "Rupiah requested by offices for the records received, by programme.",
            ),
            &["program"],
        )
        .expect("metric");
        let entered = IntCounterVec::new(
            opts(
                "salur_records_entered_total",
                "Records a stage took up in the state it expects, by stage (a retried record enters again).",
            ),
            &["stage"],
        )
        .expect("metric");
        let records = IntCounterVec::new(
            opts(
                "salur_records_total",
                "Records leaving a stage or a step of it, by outcome (advanced, account_opened, blocked, rejected, retried, resent, dead, disbursed, failed).",
            ),
            &["stage", "outcome"],
        )
        .expect("metric");
        let skipped = IntCounterVec::new(
            opts(
                "salur_records_skipped_total",
                "Records named by a message that were no longer in the expected state (redelivery, duplicate or late bank answer); nothing was done to them.",
            ),
            &["stage"],
        )
        .expect("metric");
        let reasons = IntCounterVec::new(
            opts(
                "salur_record_reasons_total",
                "Reasons records were blocked, rejected, failed or declared dead, by code.",
            ),
            &["stage", "reason"],
        )
        .expect("metric");
        let stage_duration = HistogramVec::new(
            HistogramOpts::new(
                "salur_stage_duration_seconds",
                "Time to handle one chunk or bank answer, in one database transaction; messages handled together observe the group's time once.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0, 120.0,
            ]),
            &["stage"],
        )
        .expect("metric");
        let messages_per_transaction = HistogramVec::new(
            HistogramOpts::new(
                "salur_messages_per_transaction",
                "Messages a consumer handled together in one database transaction (up to SALUR_GROUP; a group that failed together is counted as its messages one by one).",
            )
            .buckets(vec![1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0, 100.0]),
            &["stage"],
        )
        .expect("metric");
        let bank_round_trip = HistogramVec::new(
            HistogramOpts::new(
                "salur_bank_round_trip_seconds",
                "Time from a bank request being committed to the bank's answer being applied, by bank and stage.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                600.0, 1800.0, 3600.0,
            ]),
            &["bank", "stage"],
        )
        .expect("metric");
        let disbursed_idr = CounterVec::new(
            opts(
                "salur_disbursed_idr_total",
                "Rupiah disbursed (transfers the bank confirmed), by programme.",
            ),
            &["program"],
        )
        .expect("metric");
        let returned_idr = CounterVec::new(
            opts(
                "salur_returned_idr_total",
                "IDR disbursed and returned by the bank (account closed, recipient deceased, not collected), from reconciled statements, by programme (whole database).",
            ),
            &["program"],
        )
        .expect("metric");
        let reconciliation_exceptions = IntGaugeVec::new(
            opts(
                "salur_reconciliation_exceptions",
                "Bank statement lines or disbursed records that did not reconcile, by bank and kind (not_disbursed, unknown, missing, amount_mismatch, duplicate; whole database).",
            ),
            &["bank", "kind"],
        )
        .expect("metric");
        let published = IntCounterVec::new(
            opts(
                "salur_outbox_published_total",
                "Messages published from the outbox, by exchange.",
            ),
            &["exchange"],
        )
        .expect("metric");
        let poison = IntCounterVec::new(
            opts(
                "salur_poison_messages_total",
                "Messages no consumer could read, parked on salur.dead, by the queue they came from.",
            ),
            &["queue"],
        )
        .expect("metric");
        let bank_replies_refused = IntCounterVec::new(
            opts(
                "salur_bank_replies_refused_total",
                "Bank answer items refused and parked on salur.dead (sender not the record's bank, \
                 unknown request, required field missing), by sending bank and reason.",
            ),
            &["bank", "reason"],
        )
        .expect("metric");
        let outbox_backlog = IntGauge::new(
            "salur_outbox_backlog_messages",
            "Messages waiting in the outbox to be published (whole database).",
        )
        .expect("metric");
        let outbox_oldest_age = Gauge::new(
            "salur_outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the outbox, 0 when it is empty (whole database).",
        )
        .expect("metric");
        let parked = IntGaugeVec::new(
            opts(
                "salur_parked_records",
                "Records parked in state blocked or dead, by queue and reason (a record with two reasons counts under both; whole database).",
            ),
            &["queue", "reason"],
        )
        .expect("metric");
        let parked_oldest_age = GaugeVec::new(
            opts(
                "salur_parked_oldest_age_seconds",
                "Time since the oldest parked record was parked, by queue, 0 when none (whole database).",
            ),
            &["queue"],
        )
        .expect("metric");
        let in_flight = IntGaugeVec::new(
            opts(
                "salur_records_in_flight",
                "Records per state, summed over the batches that still have records in flight (whole database).",
            ),
            &["state"],
        )
        .expect("metric");
        let batches_in_flight = IntGauge::new(
            "salur_batches_in_flight",
            "Batches that still have records in flight (whole database).",
        )
        .expect("metric");
        let awaiting_approval = IntGauge::new(
            "salur_records_awaiting_approval",
            "Records waiting for a checker to approve the payment list they are on (whole database).",
        )
        .expect("metric");
        let approvals = IntCounterVec::new(
            Opts::new(
                "salur_approvals_total",
                "Payment lists decided by a checker, by decision (approved, rejected), whole database.",
            ),
            &["decision"],
        )
        .expect("metric");
        let batch_max_idle = Gauge::new(
            "salur_batch_max_idle_seconds",
            "Longest time any batch in flight has gone without one of its records changing state, 0 when none is in flight.",
        )
        .expect("metric");
        let budget_remaining = GaugeVec::new(
            opts(
                "salur_budget_remaining_idr",
                "Budget left, IDR: allocated minus approved-not-paid minus disbursed, over the programme's periods and offices with a budget (whole database).",
            ),
            &["program"],
        )
        .expect("metric");
        let budget_used_ratio = GaugeVec::new(
            opts(
                "salur_budget_used_ratio",
                "The largest share of its budget (approved-not-paid plus disbursed over allocated) that any one period of the programme has used (whole database).",
            ),
            &["program"],
        )
        .expect("metric");
        let broker_connected = IntGauge::new(
            "salur_broker_connected",
            "1 while the worker holds a RabbitMQ connection with its consumers running, else 0.",
        )
        .expect("metric");
        let broker_reconnects = IntCounter::new(
            "salur_broker_reconnects_total",
            "Times the worker lost its RabbitMQ connection (it then reconnects with backoff).",
        )
        .expect("metric");
        let refresh_duration = Gauge::new(
            "salur_gauges_refresh_duration_seconds",
            "How long the last refresh of the database-derived gauges took.",
        )
        .expect("metric");
        let refresh_failures = IntCounter::new(
            "salur_gauges_refresh_failures_total",
            "Refreshes of the database-derived gauges that failed (the gauges keep their last values).",
        )
        .expect("metric");
        let build_info = IntGaugeVec::new(
            opts(
                "salur_build_info",
                "Always 1; the version of salur serving these metrics.",
            ),
            &["version"],
        )
        .expect("metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let retries = IntCounterVec::new(
            Opts::new(
                "salur_retries_total",
                "Records sent to a retry delay tier after a transient failure (a message whose \
                 handler failed counts once), by stage and tier; tier bank_timeout counts bank \
                 requests sent again for want of an answer, stale lost stage messages sent again.",
            ),
            &["stage", "tier"],
        )
        .expect("metric");

        let mut names = Vec::new();
        for c in [
            Box::new(build_info) as Box<dyn prometheus::core::Collector>,
            Box::new(received.clone()),
            Box::new(requested_idr.clone()),
            Box::new(entered.clone()),
            Box::new(records.clone()),
            Box::new(skipped.clone()),
            Box::new(reasons.clone()),
            Box::new(stage_duration.clone()),
            Box::new(messages_per_transaction.clone()),
            Box::new(bank_round_trip.clone()),
            Box::new(disbursed_idr.clone()),
            Box::new(returned_idr.clone()),
            Box::new(reconciliation_exceptions.clone()),
            Box::new(published.clone()),
            Box::new(poison.clone()),
            Box::new(bank_replies_refused.clone()),
            Box::new(outbox_backlog.clone()),
            Box::new(outbox_oldest_age.clone()),
            Box::new(parked.clone()),
            Box::new(parked_oldest_age.clone()),
            Box::new(in_flight.clone()),
            Box::new(batches_in_flight.clone()),
            Box::new(awaiting_approval.clone()),
            Box::new(approvals.clone()),
            Box::new(batch_max_idle.clone()),
            Box::new(budget_remaining.clone()),
            Box::new(budget_used_ratio.clone()),
            Box::new(broker_connected.clone()),
            Box::new(broker_reconnects.clone()),
            Box::new(refresh_duration.clone()),
            Box::new(refresh_failures.clone()),
            Box::new(retries.clone()),
        ] {
            names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
            registry.register(c).expect("metric names are unique");
        }
        names.sort();
        names.dedup();
        // Fixed label sets start at zero, so that series exist before the first event and
        // dashboards and alerts see 0 rather than nothing, and so that `increase()` counts the
        // first events too (Prometheus counts from a series' first sample).
        for stage in Stage::ALL {
            entered.with_label_values(&[stage.as_str()]);
            skipped.with_label_values(&[stage.as_str()]);
            poison.with_label_values(&[stage.as_str()]);
            for outcome in stage.outcomes() {
                records.with_label_values(&[stage.as_str(), outcome.label()]);
            }
        }
        skipped.with_label_values(&["bank_replies"]);
        poison.with_label_values(&["bank_replies"]);
        for (stage, code) in REASONS_BY_STAGE
            .iter()
            .flat_map(|(stage, codes)| codes.iter().map(move |c| (stage, c)))
        {
            reasons.with_label_values(&[stage.as_str(), code.as_str()]);
        }
        for (queue, _) in parked_queues() {
            parked_oldest_age.with_label_values(&[queue]).set(0.0);
        }
        for code in ReasonCode::ALL {
            parked.with_label_values(&["blocked", code.as_str()]).set(0);
        }
        parked
            .with_label_values(&["dead", ReasonCode::RetriesExhausted.as_str()])
            .set(0);
        for state in State::ALL {
            in_flight.with_label_values(&[state.as_str()]).set(0);
        }
        for decision in ["approved", "rejected"] {
            approvals.with_label_values(&[decision]);
        }
        for (bank, _) in crate::domain::BankCode::KNOWN {
            for kind in crate::ops::reconcile::ExceptionKind::ALL {
                reconciliation_exceptions
                    .with_label_values(&[bank, kind.as_str()])
                    .set(0);
            }
        }
        Self {
            registry,
            received,
            requested_idr,
            entered,
            records,
            skipped,
            reasons,
            stage_duration,
            messages_per_transaction,
            bank_round_trip,
            disbursed_idr,
            returned_idr,
            reconciliation_exceptions,
            published,
            poison,
            bank_replies_refused,
            outbox_backlog,
            outbox_oldest_age,
            parked,
            parked_oldest_age,
            in_flight,
            batches_in_flight,
            awaiting_approval,
            approvals,
            batch_max_idle,
            budget_remaining,
            budget_used_ratio,
            broker_connected,
            broker_reconnects,
            refresh_duration,
            refresh_failures,
            retries,
            names,
        }
    }

    /// The name of every metric family, including those with no sample yet (a labelled family
    /// shows in a scrape only once it has one).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }

    /// Sets the database-derived gauges from one reading.
    pub fn set_gauges(&self, g: &crate::store::stats::Gauges) {
        self.outbox_backlog.set(g.outbox_backlog);
        self.outbox_oldest_age.set(g.outbox_oldest_age_seconds);
        // Every label pair seen before is set (to 0 if it is gone now) rather than removed,
        // and each is set once, so a scrape never sees a half-written reading.
        let mut parked: BTreeMap<(String, String), i64> = self
            .parked
            .collect_gauges()
            .into_iter()
            .map(|k| (k, 0))
            .collect();
        for ((state, code), n) in &g.parked {
            if let Some((queue, _)) = parked_queues().find(|(_, s)| s.as_str() == state) {
                // Codes are salur's own; anything else is folded so labels stay a fixed set.
                let code = ReasonCode::parse(code).map_or("OTHER", ReasonCode::as_str);
                *parked
                    .entry((queue.to_owned(), code.to_owned()))
                    .or_default() += *n;
            }
        }
        for ((queue, code), n) in parked {
            self.parked.with_label_values(&[&queue, &code]).set(n);
        }
        for (queue, state) in parked_queues() {
            self.parked_oldest_age.with_label_values(&[queue]).set(
                g.parked_oldest_age_seconds
                    .get(state.as_str())
                    .copied()
                    .unwrap_or(0.0),
            );
        }
        for state in State::ALL {
            self.in_flight
                .with_label_values(&[state.as_str()])
                .set(g.in_flight.get(state.as_str()).copied().unwrap_or(0));
        }
        self.batches_in_flight.set(g.batches_in_flight);
        self.awaiting_approval.set(g.awaiting_approval);
        // The table only grows: the counter follows it (a restarted worker starts from the
        // table's count, which a counter reset tells Prometheus).
        for (decision, n) in &g.approvals {
            let c = self.approvals.with_label_values(&[decision]);
            let now = c.get();
            if *n as u64 > now {
                c.inc_by(*n as u64 - now);
            }
        }
        // Programmes of batches in flight get their counters (at 0) before their first record
        // is counted, so that `increase()` sees all of them.
        for program in &g.programs {
            self.received.with_label_values(&[program]);
            self.requested_idr.with_label_values(&[program]);
            self.disbursed_idr.with_label_values(&[program]);
            self.returned_idr.with_label_values(&[program]);
        }
        self.batch_max_idle.set(g.batch_max_idle_seconds);
        for (program, (remaining, ratio)) in &g.budgets {
            self.budget_remaining
                .with_label_values(&[program])
                .set(*remaining);
            self.budget_used_ratio
                .with_label_values(&[program])
                .set(*ratio);
        }
    }
}

/// Label pairs of a two-label gauge family, as currently registered.
trait CollectLabels {
    fn collect_gauges(&self) -> Vec<(String, String)>;
}

impl CollectLabels for IntGaugeVec {
    fn collect_gauges(&self) -> Vec<(String, String)> {
        use prometheus::core::Collector as _;
        self.collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter_map(|m| match m.get_label() {
                [a, b] => Some((a.value().to_owned(), b.value().to_owned())),
                _ => None,
            })
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the database-derived gauges once.
pub async fn refresh(pool: &PgPool, metrics: &Metrics) -> sqlx::Result<()> {
    let started = Instant::now();
    let result = crate::store::stats::read(pool).await;
    metrics
        .refresh_duration
        .set(started.elapsed().as_secs_f64());
    let result = match result {
        Ok(g) => reconciliation(pool, metrics).await.map(|()| g),
        Err(e) => Err(e),
    };
    match result {
        Ok(g) => {
            metrics.set_gauges(&g);
            Ok(())
        }
        Err(e) => {
            metrics.refresh_failures.inc();
            Err(e)
        }
    }
}

/// The reconciliation metrics from the database: exceptions by bank and kind, IDR returned by
/// programme (the counter is moved up to the stored sum).
async fn reconciliation(pool: &PgPool, metrics: &Metrics) -> sqlx::Result<()> {
    use crate::store::reconciliations as r;
    for (bank, kind, n) in r::exception_counts(pool).await? {
        metrics
            .reconciliation_exceptions
            .with_label_values(&[&bank_label(&bank), &kind])
            .set(n);
    }
    for (program, amount) in r::returned_by_programme(pool).await? {
        let counter = metrics.returned_idr.with_label_values(&[&program]);
        let stored = rust_decimal::prelude::ToPrimitive::to_f64(&amount).unwrap_or(0.0);
        if stored > counter.get() {
            counter.inc_by(stored - counter.get());
        }
    }
    Ok(())
}

/// Refreshes the database-derived gauges every [`REFRESH_EVERY`] until `cancel` fires. A slow
/// database is not hammered: the pause is at least ten times the last pass.
pub async fn refresh_loop(
    pool: PgPool,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) {
    loop {
        let started = Instant::now();
        if let Err(e) = refresh(&pool, &metrics).await {
            tracing::warn!(error = %e, "cannot read the database gauges; they keep their last values");
        }
        let pause = REFRESH_EVERY.max(started.elapsed() * 10);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The bank label: a known BI code, or `other` (a bank's answer names its bank code, and labels
/// must stay a small fixed set whatever an outsider sends).
pub fn bank_label(code: &str) -> String {
    crate::domain::BankCode::parse(code)
        .map(|b| b.as_str().to_owned())
        .unwrap_or_else(|_| "other".to_owned())
}

/// Sums of a rendered scrape by metric name and label set, for tests and tools:
/// `{"salur_records_total": {"outcome=disbursed,stage=transfer": 2570.0}}`. Labels are sorted
/// by name; comments and histograms' `_bucket` lines are kept like any other sample.
pub fn parse_samples(text: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut pairs: Vec<String> = split_labels(labels)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.sort();
        *out.entry(name.to_owned())
            .or_default()
            .entry(pairs.join(","))
            .or_default() += value;
    }
    out
}

fn split_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// Binds `/metrics` on `addr`. Separate from [`serve_on`] so that a caller can learn the port
/// (tests bind port 0).
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve metrics on {addr} ({e}): set METRICS_ADDR to a free port, or `off`"
        )
    })
}

/// Serves `/metrics` on `listener` until `cancel` fires.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use axum::{Router, http::header, routing::get};
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }
        }),
    );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await?;
    Ok(())
}

/// Serves `/metrics` until `cancel` fires.
pub async fn serve(
    addr: std::net::SocketAddr,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    serve_on(bind(addr).await?, metrics, cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_help_and_a_salur_name() {
        let m = Metrics::new();
        for family in m.registry.gather() {
            assert!(family.name().starts_with("salur_"), "{}", family.name());
            assert!(!family.help().is_empty(), "{} has no HELP", family.name());
        }
    }

    #[test]
    fn gauges_start_at_zero_and_follow_the_database_reading() {
        let m = Metrics::new();
        let mut g = crate::store::stats::Gauges::default();
        g.parked.insert(("blocked".into(), "NIK_MISSING".into()), 3);
        g.parked
            .insert(("blocked".into(), "SOMETHING_NEW".into()), 2);
        g.parked
            .insert(("dead".into(), "RETRIES_EXHAUSTED".into()), 1);
        g.in_flight.insert("received".into(), 7);
        m.set_gauges(&g);
        let s = parse_samples(&m.render());
        let parked = &s["salur_parked_records"];
        assert_eq!(parked["queue=blocked,reason=NIK_MISSING"], 3.0);
        assert_eq!(parked["queue=blocked,reason=OTHER"], 2.0);
        assert_eq!(parked["queue=blocked,reason=KK_MISSING"], 0.0);
        assert_eq!(parked["queue=dead,reason=RETRIES_EXHAUSTED"], 1.0);
        assert_eq!(s["salur_records_in_flight"]["state=received"], 7.0);
        assert_eq!(s["salur_records_in_flight"]["state=disbursed"], 0.0);

        // Fixed: the reason goes back to 0 instead of disappearing.
        m.set_gauges(&crate::store::stats::Gauges::default());
        let s = parse_samples(&m.render());
        assert_eq!(
            s["salur_parked_records"]["queue=blocked,reason=NIK_MISSING"],
            0.0
        );
        assert_eq!(s["salur_parked_records"]["queue=blocked,reason=OTHER"], 0.0);
        assert_eq!(s["salur_records_in_flight"]["state=received"], 0.0);
    }

    #[test]
    fn bank_labels_are_known_codes_or_other() {
        assert_eq!(bank_label("002"), "002");
        assert_eq!(bank_label("9999'; DROP"), "other");
    }

    #[test]
    fn parses_labels_with_escapes() {
        let s = parse_samples(
            "# HELP x y\nx{a=\"1\",b=\"q\\\"uote\"} 2\nx{b=\"q\\\"uote\",a=\"1\"} 3\ny 4\n",
        );
        assert_eq!(s["x"]["a=1,b=q\"uote"], 5.0);
        assert_eq!(s["y"][""], 4.0);
    }
}
