//! `salur batch status|report`: where a batch's records are, why some stopped, and what was paid.

use crate::store::{State, batches};
use futures::TryStreamExt as _;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateTotal {
    pub records: i64,
    /// IDR, as a decimal string in JSON.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchStatus {
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub file_name: String,
    pub records: i64,
    /// Records still moving through the pipeline.
    pub in_flight: i64,
    /// Records and amounts per state (states with no record are left out).
    pub states: BTreeMap<String, StateTotal>,
    /// Records per reason code, over records that are blocked, rejected, failed or dead.
    pub reasons: BTreeMap<String, i64>,
    /// The totals identity: requested = the sum of where the records are.
    pub totals: Totals,
    /// Reconciliation exceptions of the batch's records, by kind (`salur reconcile`).
    pub exceptions: BTreeMap<String, i64>,
}

/// The totals identity of a batch, or of a programme and period: what was requested equals,
/// to the rupiah and the record, the sum of disbursed, returned, awaiting approval, approved in flight,
/// other in flight, blocked, rejected, failed and dead. Each record's state puts it in exactly
/// one part ([`Part::of`]); `requested` is counted apart, so a record in no part (or a state
/// the parts do not know) breaks the identity.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub requested: StateTotal,
    pub disbursed: StateTotal,
    /// Paid, and come back (a reconciled statement's credit line).
    pub returned: StateTotal,
    pub awaiting_approval: StateTotal,
    /// Approved by a checker and not paid yet (`verified`, `transfer_requested`).
    pub approved_in_flight: StateTotal,
    /// Moving through the pipeline without an approval (account opening, verification; and
    /// the transfer of a programme that requires none).
    pub other_in_flight: StateTotal,
    pub blocked: StateTotal,
    pub rejected: StateTotal,
    pub failed: StateTotal,
    pub dead: StateTotal,
    /// Records in a state none of the parts knows (0 unless the lifecycle outgrew this).
    pub unaccounted: StateTotal,
    /// Whether requested equals the sum of the parts, records and rupiah.
    pub holds: bool,
}

impl Default for StateTotal {
    fn default() -> Self {
        Self {
            records: 0,
            amount: Decimal::ZERO,
        }
    }
}

impl StateTotal {
    fn add(&mut self, records: i64, amount: Decimal) {
        self.records += records;
        self.amount += amount;
    }
}

/// The part of the totals identity a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Disbursed,
    Returned,
    AwaitingApproval,
    ApprovedInFlight,
    OtherInFlight,
    Blocked,
    Rejected,
    Failed,
    Dead,
    Unaccounted,
}

impl Part {
    /// The part of a record in `state`, with or without an approval.
    pub fn of(state: Option<State>, approved: bool) -> Part {
        match state {
            Some(State::Disbursed) => Part::Disbursed,
            Some(State::Returned) => Part::Returned,
            Some(State::Blocked) => Part::Blocked,
            Some(State::Rejected) => Part::Rejected,
            Some(State::Failed) => Part::Failed,
            Some(State::Dead) => Part::Dead,
            Some(s) if s.awaits_checker() => Part::AwaitingApproval,
            Some(s) if s.in_flight() && approved => Part::ApprovedInFlight,
            Some(s) if s.in_flight() => Part::OtherInFlight,
            _ => Part::Unaccounted,
        }
    }
}

impl Totals {
    fn part(&mut self, part: Part) -> &mut StateTotal {
        match part {
            Part::Disbursed => &mut self.disbursed,
            Part::Returned => &mut self.returned,
            Part::AwaitingApproval => &mut self.awaiting_approval,
            Part::ApprovedInFlight => &mut self.approved_in_flight,
            Part::OtherInFlight => &mut self.other_in_flight,
            Part::Blocked => &mut self.blocked,
            Part::Rejected => &mut self.rejected,
            Part::Failed => &mut self.failed,
            Part::Dead => &mut self.dead,
            Part::Unaccounted => &mut self.unaccounted,
        }
    }

    /// The parts, named, in the order the identity lists them.
    pub fn parts(&self) -> [(&'static str, &StateTotal); 9] {
        [
            ("disbursed", &self.disbursed),
            ("returned", &self.returned),
            ("awaiting approval", &self.awaiting_approval),
            ("approved in flight", &self.approved_in_flight),
            ("other in flight", &self.other_in_flight),
            ("blocked", &self.blocked),
            ("rejected", &self.rejected),
            ("failed", &self.failed),
            ("dead", &self.dead),
        ]
    }

    /// The identity of one batch (`batch`), or of a programme and period.
    pub async fn read(
        pool: &PgPool,
        batch: Option<Uuid>,
        program_period: Option<(&str, &str)>,
    ) -> sqlx::Result<Totals> {
        let (n, amount) = batches::requested(pool, batch, program_period).await?;
        let mut t = Totals {
            requested: StateTotal {
                records: n,
                amount: amount.unwrap_or_default(),
            },
            ..Totals::default()
        };
        for (state, approved, n, amount) in
            batches::approval_totals(pool, batch, program_period).await?
        {
            t.part(Part::of(State::parse(&state), approved))
                .add(n, amount.unwrap_or_default());
        }
        let (records, amount) = t.parts().iter().fold((0, Decimal::ZERO), |(n, a), (_, p)| {
            (n + p.records, a + p.amount)
        });
        t.holds = t.unaccounted.records == 0
            && records == t.requested.records
            && amount == t.requested.amount;
        Ok(t)
    }
}

/// The totals identity of a programme and period, over every batch and office.
pub async fn programme_totals(pool: &PgPool, program: &str, period: &str) -> sqlx::Result<Totals> {
    Totals::read(pool, None, Some((program, period))).await
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "totals: requested {} ({} records) = {}",
            rupiah(self.requested.amount),
            self.requested.records,
            self.parts()
                .iter()
                .map(|(name, p)| format!("{name} {}", rupiah(p.amount)))
                .collect::<Vec<_>>()
                .join(" + ")
        )?;
        if self.holds {
            writeln!(f, "  the identity holds, to the rupiah")
        } else {
            writeln!(
                f,
                "  the identity DOES NOT HOLD: the parts sum to {} in {} records{}",
                rupiah(self.parts().iter().map(|(_, p)| p.amount).sum::<Decimal>()),
                self.parts().iter().map(|(_, p)| p.records).sum::<i64>(),
                if self.unaccounted.records > 0 {
                    format!(
                        "; {} records are in a state no part knows",
                        self.unaccounted.records
                    )
                } else {
                    String::new()
                }
            )
        }
    }
}

impl BatchStatus {
    pub fn count(&self, state: State) -> i64 {
        self.states.get(state.as_str()).map_or(0, |t| t.records)
    }

    pub fn amount(&self, state: State) -> Decimal {
        self.states
            .get(state.as_str())
            .map_or(Decimal::ZERO, |t| t.amount)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no batch {0}: check the id printed by `salur submit`")]
    NotFound(Uuid),
    #[error("batch {0} still has {1} records in flight after waiting {2:?}")]
    Timeout(Uuid, i64, Duration),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn status(pool: &PgPool, batch_id: Uuid) -> Result<BatchStatus, BatchError> {
    let head = batches::head(pool, batch_id)
        .await?
        .ok_or(BatchError::NotFound(batch_id))?;
    let rows = batches::state_totals(pool, batch_id).await?;
    let mut states = BTreeMap::new();
    let mut in_flight = 0;
    for (state, n, amount) in rows {
        if State::parse(&state).is_some_and(State::in_flight) {
            in_flight += n;
        }
        states.insert(
            state,
            StateTotal {
                records: n,
                amount: amount.unwrap_or_default(),
            },
        );
    }
    let reasons = batches::reason_counts(pool, batch_id).await?;
    let totals = Totals::read(pool, Some(batch_id), None).await?;
    let exceptions = batches::exception_counts(pool, batch_id).await?;
    Ok(BatchStatus {
        batch_id,
        office: head.office,
        program: head.program,
        period: head.period,
        file_name: head.file_name,
        records: i64::from(head.record_count),
        in_flight,
        states,
        reasons: reasons.into_iter().collect(),
        totals,
        exceptions: exceptions.into_iter().collect(),
    })
}

/// Polls until no record of the batch is in flight; `on_progress` sees every poll.
pub async fn wait(
    pool: &PgPool,
    batch_id: Uuid,
    timeout: Option<Duration>,
    mut on_progress: impl FnMut(&BatchStatus),
) -> Result<BatchStatus, BatchError> {
    let started = std::time::Instant::now();
    loop {
        let s = status(pool, batch_id).await?;
        on_progress(&s);
        if s.in_flight == 0 {
            return Ok(s);
        }
        if let Some(t) = timeout
            && started.elapsed() > t
        {
            return Err(BatchError::Timeout(batch_id, s.in_flight, t));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub use crate::domain::rupiah;

impl std::fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "batch {} ({} {} {}, from {}): {} records, {} in flight",
            self.batch_id,
            self.office,
            self.program,
            self.period,
            self.file_name,
            self.records,
            self.in_flight
        )?;
        for state in State::ALL {
            if let Some(t) = self.states.get(state.as_str()) {
                writeln!(
                    f,
                    "  {:<20} {:>9}  {:>22}",
                    state.as_str(),
                    t.records,
                    rupiah(t.amount)
                )?;
            }
        }
        if !self.reasons.is_empty() {
            writeln!(f, "reasons (records blocked, rejected, failed or dead):")?;
            let mut reasons: Vec<_> = self.reasons.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (code, n) in reasons {
                writeln!(f, "  {code:<28} {n:>9}")?;
            }
        }
        if !self.exceptions.is_empty() {
            writeln!(f, "reconciliation exceptions (salur reconcile):")?;
            for (kind, n) in &self.exceptions {
                writeln!(f, "  {kind:<28} {n:>9}")?;
            }
        }
        write!(f, "{}", self.totals)?;
        Ok(())
    }
}

/// The report's columns.
pub const REPORT_HEADER: [&str; 7] = [
    "row",
    "nik",
    "state",
    "reasons",
    "amount",
    "bank_reference",
    "reconciliation",
];

/// One record as the report reads it ([`batches::report_rows`]).
pub use crate::store::batches::ReportRow;

/// The report's cells for one record; the NIK is masked, and no cell can be read by a
/// spreadsheet as a formula ([`crate::domain::spreadsheet_safe`]).
pub fn report_fields(row: ReportRow) -> Result<[String; 7], crate::store::sealed::KeyError> {
    Ok(raw_report_fields(row)?.map(crate::domain::spreadsheet_safe))
}

fn raw_report_fields(
    (id, row, nik, masked, state, reasons, amount, reference, reconciliation): ReportRow,
) -> Result<[String; 7], crate::store::sealed::KeyError> {
    let codes: Vec<String> = reasons
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let ring = crate::store::sealed::keyring()?;
    let nik = crate::store::records::shown(
        &ring,
        id,
        "nik",
        nik.as_deref(),
        masked.as_ref(),
        crate::domain::mask_digits,
    )?;
    Ok([
        row.to_string(),
        nik.unwrap_or_default(),
        state,
        codes.join("|"),
        amount.map(|a| format!("{a:.2}")).unwrap_or_default(),
        reference.unwrap_or_default(),
        reconciliation.unwrap_or_default(),
    ])
}

/// One CSV row per record: row number, masked NIK, state, reason codes, amount, bank reference,
/// and what reconciliation found (`returned:<code>` and exception kinds, `|`-separated).
pub async fn report(
    pool: &PgPool,
    batch_id: Uuid,
    out: impl std::io::Write,
) -> anyhow::Result<u64> {
    status(pool, batch_id).await?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(REPORT_HEADER)?;
    let mut rows = batches::report_rows(pool, batch_id);
    let mut n = 0;
    while let Some(row) = rows.try_next().await? {
        w.write_record(report_fields(row)?)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cells_are_never_formulas() {
        let row: ReportRow = (
            1,
            1,
            None,
            Some(serde_json::json!({"nik": "=HYPERLINK(\"http://x\",\"1234\")"})),
            "blocked".into(),
            serde_json::json!([]),
            None,
            Some("@SUM(A1)".into()),
            None,
        );
        let cells = report_fields(row).expect("no sealed value to open");
        assert!(cells[1].starts_with("'="), "{}", cells[1]);
        assert_eq!(cells[5], "'@SUM(A1)");
    }

    #[test]
    fn every_state_is_in_one_part_of_the_totals_identity() {
        for state in State::ALL {
            for approved in [false, true] {
                assert_ne!(
                    Part::of(Some(state), approved),
                    Part::Unaccounted,
                    "{state}"
                );
            }
        }
        assert_eq!(
            Part::of(Some(State::AwaitingApproval), false),
            Part::AwaitingApproval
        );
        assert_eq!(
            Part::of(Some(State::Verified), true),
            Part::ApprovedInFlight
        );
        assert_eq!(
            Part::of(Some(State::TransferRequested), false),
            Part::OtherInFlight
        );
        assert_eq!(Part::of(None, false), Part::Unaccounted);
    }

    #[test]
    fn rupiah_groups_thousands_with_dots() {
        assert_eq!(rupiah(Decimal::from(600_000)), "Rp600.000");
        assert_eq!(rupiah(Decimal::from(1_542_000_000i64)), "Rp1.542.000.000");
        assert_eq!(rupiah(Decimal::new(60000050, 2)), "Rp600.000,50");
        assert_eq!(rupiah(Decimal::ZERO), "Rp0");
    }
}
