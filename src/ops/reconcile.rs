//! `salur reconcile FILE --bank CODE` and `POST /v1/reconciliations`: a bank statement of the
//! programme account ([`crate::bank::statement`], MT940 or the CSV export) reconciled line by
//! line against the transfers salur asked for.
//!
//! 1. The statement is read whole and refused whole (nothing stored) if any line is malformed,
//!    if it is another bank's, or if opening balance + credits − debits ≠ closing balance.
//! 2. Each debit is matched to a transfer by its end-to-end reference (the transfer's
//!    idempotency key, found in the requests salur sent); each credit returns the transfer it
//!    names, moving its record from `disbursed` to `returned` with the bank's reason and date.
//! 3. What does not match is an exception of one [`ExceptionKind`]; records disbursed on the
//!    statement's day through this bank that no debit names are `missing`.
//!
//! Idempotent: a statement is reconciled once per bank and statement reference (`:20:`); the
//! same file again gives the stored reconciliation and changes nothing; another file under the
//! same reference is refused.

use crate::bank::statement::{self, Direction, Statement, StatementError};
use crate::domain::{Actor, rupiah};
use crate::stages::transfer::payment_key;
use crate::store::reconciliations::{self as store, ExceptionRow, LineRow, ReturnRow, Summary};
use crate::store::{Change, State, records};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::Digest as _;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What a line, or a record, was found to be when it does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// The bank paid (or returned) a transfer that salur has not disbursed: still waiting for
    /// the bank's answer, failed, or sent back since.
    NotDisbursed,
    /// A line whose end-to-end reference names no transfer salur asked for.
    Unknown,
    /// Disbursed in salur on the statement's day through this bank, and on no debit line.
    Missing,
    /// The line's amount is not the transfer's.
    AmountMismatch,
    /// One reference debited (or returned) twice.
    Duplicate,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 5] = [
        ExceptionKind::NotDisbursed,
        ExceptionKind::Unknown,
        ExceptionKind::Missing,
        ExceptionKind::AmountMismatch,
        ExceptionKind::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::NotDisbursed => "not_disbursed",
            ExceptionKind::Unknown => "unknown",
            ExceptionKind::Missing => "missing",
            ExceptionKind::AmountMismatch => "amount_mismatch",
            ExceptionKind::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The statement cannot be read, or does not add up: refused whole, nothing stored.
    #[error("the statement is refused, nothing was stored: {0}")]
    Malformed(StatementError),
    #[error(
        "statement {reference} of bank {bank} was reconciled before from another file \
         (reconciliation {id}): a bank's statement reference names one statement; ask the bank \
         why it changed"
    )]
    Conflict {
        bank: String,
        reference: String,
        id: Uuid,
    },
    #[error("bank code {0:?}: {1}")]
    Bank(String, String),
    #[error("no reconciliation {0}: see `salur reconcile --list`")]
    NotFound(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<StatementError> for ReconcileError {
    fn from(e: StatementError) -> Self {
        ReconcileError::Malformed(e)
    }
}

/// A reconciliation as reported: its summary, exceptions by kind, and each exception.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub summary: Summary,
    /// True when this statement had been reconciled before: nothing changed now.
    pub already_reconciled: bool,
    pub exceptions_by_kind: BTreeMap<String, i64>,
    pub exceptions: Vec<ExceptionRow>,
}

/// Reconciles the statement in `bytes` (file name `file` for messages) of `bank`.
pub async fn reconcile(
    pool: &PgPool,
    bank: &str,
    file: &str,
    bytes: &[u8],
    actor: &Actor,
) -> Result<Report, ReconcileError> {
    let bank = crate::domain::BankCode::parse(bank)
        .map_err(|e| ReconcileError::Bank(bank.to_owned(), e.to_string()))?
        .as_str()
        .to_owned();
    let s = statement::parse(file, bytes)?;
    check(&s, file, &bank)?;
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let mut tx = pool.begin().await?;
    store::lock_statement(&mut tx, &bank, &s.reference).await?;
    if let Some((id, stored_sha)) = store::existing(&mut tx, &bank, &s.reference).await? {
        tx.rollback().await?;
        if stored_sha != sha {
            return Err(ReconcileError::Conflict {
                bank,
                reference: s.reference,
                id,
            });
        }
        let mut report = show(pool, id).await?;
        report.already_reconciled = true;
        return Ok(report);
    }
    let id = Uuid::new_v4();
    let found = classify(&mut tx, &bank, &s).await?;
    let (debit_count, debit_total) = s.sum(Direction::Debit);
    let summary = Summary {
        id,
        bank_code: bank.clone(),
        statement_ref: s.reference.clone(),
        account: s.account.clone(),
        statement_date: s.date,
        format: s.format.as_str().to_owned(),
        file_name: file.to_owned(),
        file_sha256: sha,
        opening: s.opening,
        closing: s.closing,
        debit_count: debit_count as i32,
        debit_total,
        credit_count: s.sum(Direction::Credit).0 as i32,
        credit_total: s.sum(Direction::Credit).1,
        matched: found.matched,
        returned: found.returns.len() as i32,
        returned_total: found.returns.iter().map(|r| r.amount).sum(),
        person: actor.person.clone(),
        token_label: Some(actor.token.clone()),
        at: chrono::Utc::now(),
        exception_count: found.exceptions.len() as i64,
    };
    store::insert(&mut tx, &summary).await?;
    store::insert_lines(&mut tx, id, &found.lines).await?;
    store::insert_exceptions(&mut tx, id, &bank, &found.exceptions).await?;
    apply_returns(&mut tx, Some(id), &found.returns, Some(actor)).await?;
    tx.commit().await?;
    tracing::info!(
        reconciliation_id = %id,
        bank = %bank,
        matched = found.matched,
        returned = found.returns.len(),
        exceptions = found.exceptions.len(),
        "statement reconciled"
    );
    show(pool, id).await
}

/// Moves the records of `returns` (disbursed, locked by the caller) to `returned`, with an
/// audit row each, and stores the returns: found by the reconciliation `reconciliation`, or
/// announced by a bank's `transfer_returned` message (`None`).
pub async fn apply_returns(
    conn: &mut sqlx::PgConnection,
    reconciliation: Option<Uuid>,
    returns: &[ReturnRow],
    actor: Option<&Actor>,
) -> sqlx::Result<()> {
    let changes: Vec<Change> = returns
        .iter()
        .map(|r| {
            Change::to(r.record_id, State::Returned).with_detail(serde_json::json!({
                "action": "returned",
                "reason": r.reason_code,
                "returned_on": r.returned_on,
                "amount": r.amount,
                "payment_no": r.payment_no,
                "bank_reference": r.bank_reference,
                "reconciliation_id": reconciliation,
                "source": if reconciliation.is_some() { "statement" } else { "transfer_returned" },
            }))
        })
        .collect();
    let moved = records::apply_as(conn, State::Disbursed, &changes, actor).await?;
    debug_assert_eq!(moved.len(), changes.len(), "the records are locked");
    store::insert_returns(conn, reconciliation, returns).await
}

/// The checks that refuse a statement whole: its bank, and that its balances add up.
fn check(s: &Statement, file: &str, bank: &str) -> Result<(), StatementError> {
    let err = |line: usize, message: String| StatementError {
        file: file.to_owned(),
        line,
        message,
    };
    if s.bank_code() != bank {
        // The account is the statement's second line (`:25:`, or the CSV's first row).
        return Err(err(
            2,
            format!(
                "account {:?} is not bank {bank}'s programme account (it must start with \
                 \"{bank}/\"): reconcile it with --bank {}",
                s.account,
                s.bank_code()
            ),
        ));
    }
    let computed = s.computed_closing();
    if computed != s.closing {
        let (nd, d) = s.sum(Direction::Debit);
        let (nc, c) = s.sum(Direction::Credit);
        return Err(err(
            s.closing_line,
            format!(
                "the balances do not add up: opening {} + {nc} credits {} − {nd} debits {} = {}, \
                 but the closing balance is {} (a difference of {})",
                rupiah(s.opening),
                rupiah(c),
                rupiah(d),
                rupiah(computed),
                rupiah(s.closing),
                rupiah((s.closing - computed).abs())
            ),
        ));
    }
    for l in &s.lines {
        if l.value_date > s.date {
            return Err(err(
                l.file_line,
                format!(
                    "its value date {} is after the statement's day {}",
                    l.value_date, s.date
                ),
            ));
        }
    }
    Ok(())
}

/// What the lines were found to be.
struct Found {
    lines: Vec<LineRow>,
    exceptions: Vec<ExceptionRow>,
    returns: Vec<ReturnRow>,
    matched: i32,
}

async fn classify(
    conn: &mut sqlx::PgConnection,
    bank: &str,
    s: &Statement,
) -> Result<Found, ReconcileError> {
    let keys: Vec<String> = s
        .lines
        .iter()
        .map(|l| l.end_to_end.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let day_records = store::disbursed_on(conn, bank, s.date).await?;
    let day_ids: Vec<i64> = day_records.iter().map(|t| t.id).collect();
    let (by_key, transfers) = store::lock_transfers_by_key(conn, bank, &keys, &day_ids).await?;
    let returned_before: HashMap<String, Option<Uuid>> = store::returns_by_key(conn, &keys)
        .await?
        .into_iter()
        .collect();

    let mut lines = Vec::with_capacity(s.lines.len());
    let mut exceptions: Vec<ExceptionRow> = Vec::new();
    let mut returns: Vec<ReturnRow> = Vec::new();
    let mut matched = 0;
    let mut debited: HashSet<&str> = HashSet::new();
    let mut credited: HashSet<&str> = HashSet::new();
    for (i, l) in s.lines.iter().enumerate() {
        let line_no = i as i32 + 1;
        let t = by_key.get(&l.end_to_end).and_then(|id| transfers.get(id));
        let mut exception = |kind: ExceptionKind, expected: Option<Decimal>, detail: String| {
            exceptions.push(ExceptionRow {
                kind: kind.as_str().to_owned(),
                line_no: Some(line_no),
                file_line: Some(l.file_line as i32),
                record_id: t.map(|t| t.id),
                batch_id: t.map(|t| t.batch_id),
                amount: Some(l.amount),
                expected,
                end_to_end: Some(l.end_to_end.clone()),
                detail,
            });
            kind.as_str().to_owned()
        };
        let current = t.map(|t| payment_key(t.batch_id, t.id, t.payment_no));
        let is_current = current.as_deref() == Some(l.end_to_end.as_str());
        let outcome = match (l.direction, t) {
            (Direction::Debit, _) if !debited.insert(&l.end_to_end) => exception(
                ExceptionKind::Duplicate,
                None,
                "this reference was debited on an earlier line of the statement: paid twice".into(),
            ),
            (Direction::Credit, _) if !credited.insert(&l.end_to_end) => exception(
                ExceptionKind::Duplicate,
                None,
                "this reference was returned on an earlier line of the statement".into(),
            ),
            (_, None) => exception(
                ExceptionKind::Unknown,
                None,
                "no transfer salur asked any bank for carries this end-to-end reference".into(),
            ),
            (Direction::Debit, Some(t)) => {
                let paid_before = returned_before.contains_key(&l.end_to_end);
                if (is_current && t.state == State::Disbursed.as_str()) || paid_before {
                    if t.amount == Some(l.amount) {
                        matched += 1;
                        "matched".to_owned()
                    } else {
                        exception(
                            ExceptionKind::AmountMismatch,
                            t.amount,
                            format!(
                                "debited {}, salur disbursed {}",
                                rupiah(l.amount),
                                rupiah(t.amount.unwrap_or_default())
                            ),
                        )
                    }
                } else {
                    exception(
                        ExceptionKind::NotDisbursed,
                        t.amount,
                        format!(
                            "paid by the bank, but record {} is {} in salur",
                            t.id, t.state
                        ),
                    )
                }
            }
            (Direction::Credit, Some(_)) if returned_before.get(&l.end_to_end) == Some(&None) => {
                // Announced by the bank's transfer_returned message and applied then: the
                // statement confirms it.
                "return_confirmed".to_owned()
            }
            (Direction::Credit, Some(t)) => {
                if let Some(earlier) = returned_before.get(&l.end_to_end) {
                    exception(
                        ExceptionKind::Duplicate,
                        t.amount,
                        format!(
                            "this transfer's return was accounted before{}",
                            earlier
                                .map(|id| format!(" (reconciliation {id})"))
                                .unwrap_or_default()
                        ),
                    )
                } else if !(is_current && t.state == State::Disbursed.as_str()) {
                    exception(
                        ExceptionKind::NotDisbursed,
                        t.amount,
                        format!(
                            "returned by the bank, but record {} is {} in salur",
                            t.id, t.state
                        ),
                    )
                } else if t.amount != Some(l.amount) {
                    exception(
                        ExceptionKind::AmountMismatch,
                        t.amount,
                        format!(
                            "returned {}, salur disbursed {}",
                            rupiah(l.amount),
                            rupiah(t.amount.unwrap_or_default())
                        ),
                    )
                } else {
                    let reason = l.return_reason.expect("a credit carries its reason");
                    returns.push(ReturnRow {
                        record_id: t.id,
                        payment_no: t.payment_no,
                        batch_id: t.batch_id,
                        program: t.program.clone(),
                        bank_code: bank.to_owned(),
                        key: l.end_to_end.clone(),
                        bank_reference: Some(l.bank_reference.clone()).filter(|r| !r.is_empty()),
                        amount: l.amount,
                        reason_code: reason.as_str().to_owned(),
                        returned_on: l.value_date,
                    });
                    "returned".to_owned()
                }
            }
        };
        lines.push(LineRow {
            line_no,
            file_line: l.file_line as i32,
            direction: l.direction.as_str(),
            amount: l.amount,
            value_date: l.value_date,
            end_to_end: l.end_to_end.clone(),
            bank_reference: Some(l.bank_reference.clone()).filter(|r| !r.is_empty()),
            return_code: l.return_reason.map(|r| r.code().to_owned()),
            record_id: t.map(|t| t.id),
            outcome,
        });
    }
    // Disbursed on the statement's day through this bank, and on no debit line.
    for t in &day_records {
        let named =
            (0..=t.payment_no).any(|n| debited.contains(payment_key(t.batch_id, t.id, n).as_str()));
        if !named {
            exceptions.push(ExceptionRow {
                kind: ExceptionKind::Missing.as_str().to_owned(),
                line_no: None,
                file_line: None,
                record_id: Some(t.id),
                batch_id: Some(t.batch_id),
                amount: None,
                expected: t.amount,
                end_to_end: Some(payment_key(t.batch_id, t.id, t.payment_no)),
                detail: format!(
                    "record {} was disbursed on {} through bank {bank}, and no debit line names it",
                    t.id, s.date
                ),
            });
        }
    }
    Ok(Found {
        lines,
        exceptions,
        returns,
        matched,
    })
}

/// A stored reconciliation with its exceptions.
pub async fn show(pool: &PgPool, id: Uuid) -> Result<Report, ReconcileError> {
    let summary = store::summary(pool, id)
        .await?
        .ok_or(ReconcileError::NotFound(id))?;
    let exceptions = store::exceptions(pool, id).await?;
    let mut by_kind = BTreeMap::new();
    for e in &exceptions {
        *by_kind.entry(e.kind.clone()).or_insert(0) += 1;
    }
    Ok(Report {
        summary,
        already_reconciled: false,
        exceptions_by_kind: by_kind,
        exceptions,
    })
}

/// The latest reconciliations, of one bank if given.
pub async fn list(
    pool: &PgPool,
    bank: Option<&str>,
    limit: i64,
) -> Result<Vec<Summary>, ReconcileError> {
    Ok(store::list(pool, bank, limit).await?)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "reconciliation {} of bank {} statement {} ({}, {}, from {}){}",
            s.id,
            s.bank_code,
            s.statement_ref,
            s.statement_date,
            s.format,
            s.file_name,
            if self.already_reconciled {
                ": reconciled before, nothing changed"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  opening {} − {} debits {} + {} credits {} = closing {}",
            rupiah(s.opening),
            s.debit_count,
            rupiah(s.debit_total),
            s.credit_count,
            rupiah(s.credit_total),
            rupiah(s.closing)
        )?;
        writeln!(f, "  matched   {:>9} debit lines", s.matched)?;
        writeln!(
            f,
            "  returned  {:>9} records  {}",
            s.returned,
            rupiah(s.returned_total)
        )?;
        writeln!(f, "  exceptions{:>9}", s.exception_count)?;
        for kind in ExceptionKind::ALL {
            if let Some(n) = self.exceptions_by_kind.get(kind.as_str()) {
                writeln!(f, "    {:<18} {n:>9}", kind.as_str())?;
            }
        }
        const SHOWN: usize = 50;
        for e in self.exceptions.iter().take(SHOWN) {
            let place = match (e.line_no, e.file_line) {
                (Some(n), Some(fl)) => format!("line {n} (file line {fl})"),
                _ => "not on the statement".to_owned(),
            };
            let record = e
                .record_id
                .map(|r| format!(" record {r}"))
                .unwrap_or_default();
            writeln!(f, "  {:<16} {place}{record}: {}", e.kind, e.detail)?;
        }
        if self.exceptions.len() > SHOWN {
            writeln!(
                f,
                "  … and {} more (--json lists them all)",
                self.exceptions.len() - SHOWN
            )?;
        }
        Ok(())
    }
}
