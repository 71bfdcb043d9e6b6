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
        Ok(())
    }
}

/// The report's columns.
pub const REPORT_HEADER: [&str; 6] = ["row", "nik", "state", "reasons", "amount", "bank_reference"];

/// One record as the report reads it ([`batches::report_rows`]).
pub use crate::store::batches::ReportRow;

/// The report's cells for one record; the NIK is masked, and no cell can be read by a
/// spreadsheet as a formula ([`crate::domain::spreadsheet_safe`]).
pub fn report_fields(row: ReportRow) -> Result<[String; 6], crate::store::sealed::KeyError> {
    Ok(raw_report_fields(row)?.map(crate::domain::spreadsheet_safe))
}

fn raw_report_fields(
    (id, row, nik, masked, state, reasons, amount, reference): ReportRow,
) -> Result<[String; 6], crate::store::sealed::KeyError> {
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
    ])
}

/// One CSV row per record: row number, masked NIK, state, reason codes, amount, bank reference.
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
        );
        let cells = report_fields(row).expect("no sealed value to open");
        assert!(cells[1].starts_with("'="), "{}", cells[1]);
        assert_eq!(cells[5], "'@SUM(A1)");
    }

    #[test]
    fn rupiah_groups_thousands_with_dots() {
        assert_eq!(rupiah(Decimal::from(600_000)), "Rp600.000");
        assert_eq!(rupiah(Decimal::from(1_542_000_000i64)), "Rp1.542.000.000");
        assert_eq!(rupiah(Decimal::new(60000050, 2)), "Rp600.000,50");
        assert_eq!(rupiah(Decimal::ZERO), "Rp0");
    }
}
