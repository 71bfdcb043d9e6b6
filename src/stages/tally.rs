//! What handling one message did, for metrics and logs: a [`Tally`].

use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode};
use crate::messages::Stage;
use crate::metrics::Metrics;
use crate::store::records::Needs;
use crate::store::{RecordRow, State};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// How one message went, for metrics and logs: records per outcome, reasons, money paid.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// `(stage, outcome) -> records`
    pub outcomes: BTreeMap<(Stage, Outcome), u64>,
    pub reasons: BTreeMap<(Stage, ReasonCode), u64>,
    /// `program -> IDR`
    pub disbursed: BTreeMap<String, Decimal>,
    /// Records named by the message that were not in the expected state (redelivery, late or
    /// duplicate answer): nothing was done to them.
    pub skipped: u64,
    /// Ids the message named that are no record at all: the message is parked on `salur.dead`
    /// (after the known records were handled).
    pub unknown_ids: Vec<i64>,
    /// `(stage, tier) -> records` sent to a retry tier.
    pub retries: BTreeMap<(Stage, String), u64>,
    /// `program -> records` taken up by account opening fresh: on their first attempt, or
    /// replayed after a fix.
    pub received: BTreeMap<String, u64>,
    /// `program -> IDR` requested for those records.
    pub requested: BTreeMap<String, Decimal>,
    /// A bank answer: `(bank code, stage, seconds since its request was committed)`.
    pub bank_round_trip: Option<(String, Stage, f64)>,
    /// A bank answer's items that changed nothing because they cannot be trusted (sent by
    /// another bank, for no request salur sent, missing a required field): parked on
    /// `salur.dead` after the others were handled.
    pub refused: Vec<RefusedItem>,
    /// A bank answer: the bank whose RabbitMQ user sent it (`unknown` if none).
    pub sender: Option<String>,
}

/// A bank answer item that changed nothing: why, as a code for the metric and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedItem {
    pub item_id: String,
    /// `WRONG_BANK`, `UNKNOWN_REQUEST`, `MISSING_FIELD`, `NO_SENDER`, `UNKNOWN_SENDER`.
    pub reason: &'static str,
    pub why: String,
}

impl Tally {
    /// Reads the records of `ids` still in `state` ([`crate::store::records::read_in_state`]:
    /// without locking them); counts the others as skipped and notes ids that are no record at
    /// all.
    pub async fn read(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        state: State,
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.read_for(conn, ids, state, Needs::of(state)).await
    }

    /// [`Tally::read`], decrypting the personal fields `needs` says.
    pub async fn read_for(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        state: State,
        needs: Needs,
    ) -> sqlx::Result<Vec<RecordRow>> {
        let rows = crate::store::records::read_in_state_for(conn, ids, state, needs).await?;
        if rows.len() < ids.len() {
            self.skipped += (ids.len() - rows.len()) as u64;
            self.unknown_ids = crate::store::records::missing(conn, ids).await?;
        }
        Ok(rows)
    }

    pub fn count(&mut self, stage: Stage, outcome: Outcome, n: u64) {
        if n > 0 {
            *self.outcomes.entry((stage, outcome)).or_default() += n;
        }
    }

    pub fn reasons(&mut self, stage: Stage, reasons: &[Reason]) {
        for r in reasons {
            *self.reasons.entry((stage, r.code)).or_default() += 1;
        }
    }

    /// Adds what another message (or part of one) did.
    pub fn merge(&mut self, other: Tally) {
        fn add<K: Ord, V: std::ops::AddAssign + Default>(
            into: &mut BTreeMap<K, V>,
            from: BTreeMap<K, V>,
        ) {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
        add(&mut self.outcomes, other.outcomes);
        add(&mut self.reasons, other.reasons);
        add(&mut self.disbursed, other.disbursed);
        add(&mut self.retries, other.retries);
        add(&mut self.received, other.received);
        add(&mut self.requested, other.requested);
        self.skipped += other.skipped;
        self.unknown_ids.extend(other.unknown_ids);
        self.bank_round_trip = self.bank_round_trip.take().or(other.bank_round_trip);
    }

    /// Records of `stage` that ended with `outcome`.
    pub fn outcome(&self, stage: Stage, outcome: Outcome) -> u64 {
        self.outcomes.get(&(stage, outcome)).copied().unwrap_or(0)
    }

    /// Adds what one message (or sweep) did to the metrics.
    pub fn record(&self, m: &Metrics) {
        use rust_decimal::prelude::ToPrimitive as _;
        for (program, n) in &self.received {
            m.received.with_label_values(&[program]).inc_by(*n);
        }
        for (program, amount) in &self.requested {
            m.requested_idr
                .with_label_values(&[program])
                .inc_by(amount.to_f64().unwrap_or(0.0));
        }
        if let Some((bank, stage, seconds)) = &self.bank_round_trip {
            m.bank_round_trip
                .with_label_values(&[bank, stage.as_str()])
                .observe(*seconds);
        }
        for ((stage, tier), n) in &self.retries {
            m.retries
                .with_label_values(&[stage.as_str(), tier])
                .inc_by(*n);
        }
        for ((stage, outcome), n) in &self.outcomes {
            m.records
                .with_label_values(&[stage.as_str(), outcome.label()])
                .inc_by(*n);
        }
        for ((stage, reason), n) in &self.reasons {
            m.reasons
                .with_label_values(&[stage.as_str(), reason.as_str()])
                .inc_by(*n);
        }
        for (program, amount) in &self.disbursed {
            m.disbursed_idr
                .with_label_values(&[program])
                .inc_by(amount.to_f64().unwrap_or(0.0));
        }
    }
}
