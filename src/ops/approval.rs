//! `salur batch approval | approve | reject` (and `GET|POST /v1/batches/{id}/approval`): a
//! checker approves the payment list of a batch as it stands, or rejects it. Nothing of a
//! programme that requires approval reaches a bank's transfer queue before that.
//!
//! The list is the batch's records waiting in `awaiting_approval`, in id order. Its hash
//! ([`list_hash`]) is what the checker approves: an approval names the hash it saw, and is
//! refused ([`ApprovalError::StaleList`]) when the list changed since (a record fixed, replayed,
//! verified meanwhile). An approval moves exactly those records to `verified` with the
//! approval's id (the transfer stage takes them from there), within the budget
//! ([`ApprovalError::OverBudget`], checked in the same transaction with the budget row locked);
//! a rejection sends them to `blocked` with `APPROVAL_REJECTED` and the checker's why, for the
//! office to correct (or discard) and replay; replayed, they wait on a new list.
//!
//! Records that reach `awaiting_approval` later (fixed and replayed, or verified after the
//! first approval) form a new list of the same batch, needing its own approval.

use crate::config::Settings;
use crate::domain::{Reason, ReasonCode};
use crate::messages::Stage;
use crate::stages::{parked_record, stage_message};
use crate::store::approvals::{self, BatchHead, Decision, ListRow};
use crate::store::{end, outbox};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Records and their sum.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sum {
    pub records: i64,
    /// IDR, as a decimal string in JSON.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

impl Sum {
    fn add(&mut self, amount: Decimal) {
        self.records += 1;
        self.amount += amount;
    }
}

/// The budget of the list's programme, period and office, as an approval would leave it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BudgetAfter {
    /// The allocation (pagu); 0 when none is set.
    #[serde(with = "rust_decimal::serde::str")]
    pub allocated: Decimal,
    /// Approved and not yet paid, plus disbursed.
    #[serde(with = "rust_decimal::serde::str")]
    pub used: Decimal,
    /// Allocated − used − this list: negative means the approval would be refused.
    #[serde(with = "rust_decimal::serde::str")]
    pub left_after: Decimal,
}

/// A batch's payment list as it stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovalList {
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    /// Records waiting for approval.
    pub records: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// Per bank code (as the office gave it).
    pub per_bank: BTreeMap<String, Sum>,
    /// Per amount (`600000.00`).
    pub per_amount: BTreeMap<String, Sum>,
    pub budget: BudgetAfter,
    /// SHA-256 of the list ([`list_hash`]), lower-case hex: what an approval names.
    pub list_hash: String,
    /// The person who submitted the batch (they may not approve it).
    pub submitted_by: Option<String>,
}

/// What a decision did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decided {
    pub approval_id: Uuid,
    pub batch_id: Uuid,
    /// `approved` or `rejected`.
    pub decision: String,
    pub records: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    pub list_hash: String,
    pub person: String,
    /// After an approval: the budget left.
    pub budget: Option<BudgetAfter>,
}

/// Who decides, and with what right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// The person deciding (named on the approval and every audit row).
    pub person: String,
    /// The label of the token they used (`None` from the command line on the server).
    pub token_label: Option<String>,
    /// Only this office's batches (a checker token is its office's); every office's when
    /// `None` (the command line on the server).
    pub office: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no batch {0}: check the id printed by `salur submit`")]
    BatchNotFound(Uuid),
    #[error(
        "only a checker approves or rejects a payment list: use a checker's token (`salur office token CODE --role checker --person NAME`)"
    )]
    NotAChecker,
    #[error(
        "{0} submitted this batch and may not approve or reject its payment list: another checker must"
    )]
    OwnSubmission(String),
    #[error("name the person deciding (--person \"NAME\"): every approval names who gave it")]
    NoPerson,
    #[error(
        "list_hash must be the 64 hex digits of the list's SHA-256, as `salur batch approval {0}` shows it"
    )]
    BadHash(Uuid),
    #[error("nothing in batch {0} waits for approval")]
    NothingToApprove(Uuid),
    #[error(
        "the payment list of batch {batch} changed since it was shown: it now holds {records} records, {} in total, hash {current}; look at it again (`salur batch approval {batch}`) and approve what you see",
        crate::domain::rupiah(*total)
    )]
    StaleList {
        batch: Uuid,
        current: String,
        records: i64,
        total: Decimal,
    },
    #[error(
        "approving this list would exceed the budget of {program} {period} for office {office}: allocated {}, already approved or paid {}, this list {}, {} short; nothing was approved. Raise the budget (`salur budget set {program} {period} --office {office} --amount IDR`) or reject the list",
        crate::domain::rupiah(*allocated), crate::domain::rupiah(*used), crate::domain::rupiah(*list), crate::domain::rupiah(*list + *used - *allocated)
    )]
    OverBudget {
        program: String,
        period: String,
        office: String,
        allocated: Decimal,
        used: Decimal,
        list: Decimal,
    },
    #[error("say why the list is rejected (--why), for the office and the audit trail")]
    NoReason,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The list's hash: SHA-256 over one line per record, in id order,
/// `id TAB nik TAB bank_code TAB account TAB amount LF`, UTF-8, where `id` is decimal, `amount`
/// has exactly two decimals (`600000.00`), and a backslash, tab, carriage return or line feed
/// inside a field is written `\\`, `\t`, `\r`, `\n`. Lower-case hex. An empty list hashes the
/// empty string.
pub fn list_hash(rows: &[ListRow]) -> String {
    fn field(h: &mut Sha256, v: &str) {
        let mut escaped = String::with_capacity(v.len());
        for c in v.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '\t' => escaped.push_str("\\t"),
                '\r' => escaped.push_str("\\r"),
                '\n' => escaped.push_str("\\n"),
                c => escaped.push(c),
            }
        }
        h.update(escaped.as_bytes());
    }
    let mut h = Sha256::new();
    for r in rows {
        h.update(r.id.to_string().as_bytes());
        for v in [&r.nik, &r.bank_code, &r.account] {
            h.update(b"\t");
            field(&mut h, v);
        }
        h.update(b"\t");
        h.update(format!("{:.2}", r.amount).as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn total(rows: &[ListRow]) -> Decimal {
    rows.iter().map(|r| r.amount).sum()
}

/// The budget used so far for the list's programme, period and office, and its allocation;
/// with `lock`, the budget row is locked until the caller's transaction ends (two approvals
/// against one budget take turns).
async fn budget(
    conn: &mut sqlx::PgConnection,
    head: &BatchHead,
    list: Decimal,
    lock: bool,
) -> sqlx::Result<BudgetAfter> {
    use crate::store::budgets;
    let (program, period, office) = (&head.program, &head.period, &head.office);
    if lock {
        budgets::lock(conn, program, period, office).await?;
    }
    let usage = budgets::usage_of(conn, program, period, office).await?;
    let allocated = usage.allocated.unwrap_or_default();
    let used = usage.used();
    Ok(BudgetAfter {
        allocated,
        used,
        left_after: allocated - used - list,
    })
}

/// The payment list of `batch` as it stands, for `office` (any office's when `None`).
pub async fn list(
    pool: &PgPool,
    batch: Uuid,
    office: Option<&str>,
) -> Result<ApprovalList, ApprovalError> {
    let mut tx = pool.begin().await?;
    let head = approvals::batch(&mut tx, batch, office, false)
        .await?
        .ok_or(ApprovalError::BatchNotFound(batch))?;
    let rows = approvals::awaiting(&mut tx, batch, false).await?;
    let mut per_bank: BTreeMap<String, Sum> = BTreeMap::new();
    let mut per_amount: BTreeMap<String, Sum> = BTreeMap::new();
    for r in &rows {
        per_bank
            .entry(r.bank_code.clone())
            .or_default()
            .add(r.amount);
        per_amount
            .entry(format!("{:.2}", r.amount))
            .or_default()
            .add(r.amount);
    }
    let total = total(&rows);
    let budget = budget(&mut tx, &head, total, false).await?;
    tx.commit().await?;
    Ok(ApprovalList {
        batch_id: batch,
        records: rows.len() as i64,
        total,
        per_bank,
        per_amount,
        budget,
        list_hash: list_hash(&rows),
        submitted_by: head.submitted_person.clone(),
        office: head.office,
        program: head.program,
        period: head.period,
    })
}

fn check_person(checker: &Checker, head: &BatchHead) -> Result<(), ApprovalError> {
    let person = checker.person.trim();
    if person.is_empty() {
        return Err(ApprovalError::NoPerson);
    }
    if let Some(submitter) = &head.submitted_person
        && same_person(submitter, person)
    {
        return Err(ApprovalError::OwnSubmission(submitter.clone()));
    }
    Ok(())
}

/// Names compared as people write them: case and runs of spaces do not matter.
fn same_person(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// Approves the list of `batch` whose hash is `hash`: in one transaction, with the batch and
/// the budget row locked, the list is read again and compared with `hash`, the budget checked,
/// the approval stored, its records moved to `verified` (each with an audit row naming the
/// checker) and their transfer queued.
pub async fn approve(
    settings: &Settings,
    pool: &PgPool,
    batch: Uuid,
    hash: &str,
    checker: &Checker,
) -> Result<Decided, ApprovalError> {
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApprovalError::BadHash(batch));
    }
    let mut tx = pool.begin().await?;
    let result = approve_in(settings, &mut tx, batch, hash, checker).await;
    let decided = end(tx, result).await?;
    tracing::info!(%batch, approval_id = %decided.approval_id, records = decided.records, "payment list approved");
    crate::ops::submit::publish_now(settings, pool).await;
    Ok(decided)
}

/// [`approve`] in the caller's transaction, which it does not end.
async fn approve_in(
    settings: &Settings,
    tx: &mut sqlx::PgConnection,
    batch: Uuid,
    hash: String,
    checker: &Checker,
) -> Result<Decided, ApprovalError> {
    let head = approvals::batch(&mut *tx, batch, checker.office.as_deref(), true)
        .await?
        .ok_or(ApprovalError::BatchNotFound(batch))?;
    check_person(checker, &head)?;
    let rows = approvals::awaiting(&mut *tx, batch, true).await?;
    if rows.is_empty() {
        return Err(ApprovalError::NothingToApprove(batch));
    }
    let current = list_hash(&rows);
    let total = total(&rows);
    if current != hash {
        return Err(ApprovalError::StaleList {
            batch,
            current,
            records: rows.len() as i64,
            total,
        });
    }
    let budget = budget(&mut *tx, &head, total, true).await?;
    if budget.left_after < Decimal::ZERO {
        return Err(ApprovalError::OverBudget {
            program: head.program.clone(),
            period: head.period.clone(),
            office: head.office.clone(),
            allocated: budget.allocated,
            used: budget.used,
            list: total,
        });
    }
    let decision = Decision {
        id: Uuid::new_v4(),
        batch_id: batch,
        head: &head,
        list_hash: &hash,
        decision: "approved",
        why: None,
        person: checker.person.trim(),
        token_label: checker.token_label.as_deref(),
        record_count: rows.len() as i32,
        total,
    };
    approvals::insert(&mut *tx, &decision).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let moved = approvals::decide(&mut *tx, &ids, &decision, &serde_json::json!([])).await?;
    debug_assert_eq!(moved.len(), ids.len(), "the rows are locked");
    let out: Vec<_> = moved
        .chunks(settings.chunk_size)
        .map(|chunk| stage_message(settings, Stage::Transfer, batch, chunk.to_vec()))
        .collect();
    outbox::insert(&mut *tx, &out).await?;
    Ok(Decided {
        approval_id: decision.id,
        batch_id: batch,
        decision: "approved".into(),
        records: moved.len() as i64,
        total,
        list_hash: hash,
        person: checker.person.trim().to_owned(),
        budget: Some(budget),
    })
}

/// Rejects the list of `batch` as it stands: its records go to `blocked` with
/// `APPROVAL_REJECTED` and `why`, for the office to correct or discard and replay.
pub async fn reject(
    settings: &Settings,
    pool: &PgPool,
    batch: Uuid,
    why: &str,
    checker: &Checker,
) -> Result<Decided, ApprovalError> {
    let why = why.trim();
    if why.is_empty() {
        return Err(ApprovalError::NoReason);
    }
    let mut tx = pool.begin().await?;
    let result = reject_in(settings, &mut tx, batch, why, checker).await;
    let decided = end(tx, result).await?;
    tracing::info!(%batch, approval_id = %decided.approval_id, records = decided.records, "payment list rejected");
    crate::ops::submit::publish_now(settings, pool).await;
    Ok(decided)
}

/// [`reject`] in the caller's transaction, which it does not end.
async fn reject_in(
    settings: &Settings,
    tx: &mut sqlx::PgConnection,
    batch: Uuid,
    why: &str,
    checker: &Checker,
) -> Result<Decided, ApprovalError> {
    let head = approvals::batch(&mut *tx, batch, checker.office.as_deref(), true)
        .await?
        .ok_or(ApprovalError::BatchNotFound(batch))?;
    check_person(checker, &head)?;
    let rows = approvals::awaiting(&mut *tx, batch, true).await?;
    if rows.is_empty() {
        return Err(ApprovalError::NothingToApprove(batch));
    }
    let hash = list_hash(&rows);
    let total = total(&rows);
    let decision = Decision {
        id: Uuid::new_v4(),
        batch_id: batch,
        head: &head,
        list_hash: &hash,
        decision: "rejected",
        why: Some(why),
        person: checker.person.trim(),
        token_label: checker.token_label.as_deref(),
        record_count: rows.len() as i32,
        total,
    };
    approvals::insert(&mut *tx, &decision).await?;
    let reasons = vec![Reason::new(
        ReasonCode::ApprovalRejected,
        "record",
        format!(
            "the payment list was rejected by its checker: {why}; correct the record (or discard it) and replay it: it then waits for a new approval"
        ),
    )];
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let moved = approvals::decide(
        &mut *tx,
        &ids,
        &decision,
        &serde_json::to_value(&reasons).expect("reasons serialize"),
    )
    .await?;
    let out: Vec<_> = rows
        .iter()
        .map(|r| {
            parked_record(
                settings,
                crate::messages::ParkedRecord {
                    v: crate::messages::VERSION,
                    record_id: r.id,
                    batch_id: batch,
                    row: r.row_number,
                    stage: Stage::Transfer,
                    state: crate::store::State::Blocked.as_str().to_owned(),
                    reasons: reasons.clone(),
                },
            )
        })
        .collect();
    outbox::insert(&mut *tx, &out).await?;
    Ok(Decided {
        approval_id: decision.id,
        batch_id: batch,
        decision: "rejected".into(),
        records: moved.len() as i64,
        total,
        list_hash: hash,
        person: checker.person.trim().to_owned(),
        budget: None,
    })
}

use crate::domain::rupiah;
use std::fmt;

/// `salur batch approval`: the summary a checker reads before approving.
impl fmt::Display for ApprovalList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "payment list of batch {} ({} {} {}){}",
            self.batch_id,
            self.office,
            self.program,
            self.period,
            self.submitted_by
                .as_deref()
                .map(|p| format!(", submitted by {p}"))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "  {} records awaiting approval, {} in total",
            self.records,
            rupiah(self.total)
        )?;
        if self.records > 0 {
            writeln!(f, "  per bank:")?;
            for (bank, s) in &self.per_bank {
                let name = crate::domain::BankCode::parse(bank)
                    .map(|b| b.name().to_owned())
                    .unwrap_or_else(|_| "?".to_owned());
                writeln!(
                    f,
                    "    {bank} {name:<10} {:>9}  {:>22}",
                    s.records,
                    rupiah(s.amount)
                )?;
            }
            writeln!(f, "  per amount:")?;
            for (amount, s) in &self.per_amount {
                let a: Decimal = amount.parse().unwrap_or_default();
                writeln!(
                    f,
                    "    {:<14} {:>9}  {:>22}",
                    rupiah(a),
                    s.records,
                    rupiah(s.amount)
                )?;
            }
        }
        writeln!(
            f,
            "  budget: allocated {}, approved or paid {}, left after this list {}{}",
            rupiah(self.budget.allocated),
            rupiah(self.budget.used),
            rupiah(self.budget.left_after),
            if self.budget.left_after < Decimal::ZERO {
                " (over budget: an approval would be refused)"
            } else {
                ""
            }
        )?;
        writeln!(f, "  list hash: {}", self.list_hash)?;
        if self.records > 0 {
            writeln!(
                f,
                "approve it with: salur batch approve {} --list-hash {} --person \"NAME\"",
                self.batch_id, self.list_hash
            )?;
        }
        Ok(())
    }
}

/// `salur batch approve | reject`: what was decided.
impl fmt::Display for Decided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} by {}: {} records of batch {}, {} (approval {})",
            self.decision,
            self.person,
            self.records,
            self.batch_id,
            rupiah(self.total),
            self.approval_id
        )?;
        if let Some(b) = &self.budget {
            writeln!(
                f,
                "  budget: allocated {}, left {}",
                rupiah(b.allocated),
                rupiah(b.left_after)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, account: &str, amount: i64) -> ListRow {
        ListRow {
            id,
            row_number: id as i32,
            nik: "5371014508800001".into(),
            bank_code: "002".into(),
            account: account.into(),
            amount: Decimal::from(amount),
        }
    }

    #[test]
    fn the_hash_is_sha256_of_one_tab_separated_line_per_record() {
        let rows = [
            row(1, "0021000000001", 600_000),
            row(2, "00210\t2", 600_000),
        ];
        let text = "1\t5371014508800001\t002\t0021000000001\t600000.00\n\
                    2\t5371014508800001\t002\t00210\\t2\t600000.00\n";
        assert_eq!(
            list_hash(&rows),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_eq!(list_hash(&[]), hex::encode(Sha256::digest(b"")));
    }

    #[test]
    fn the_hash_changes_with_any_payee_field_and_with_the_records_on_the_list() {
        let base = [
            row(1, "0021000000001", 600_000),
            row(2, "0021000000002", 600_000),
        ];
        let h = list_hash(&base);
        let mut other = base.clone();
        other[1].account = "9999999999".into();
        assert_ne!(list_hash(&other), h);
        let mut other = base.clone();
        other[0].amount = Decimal::from(50_000_000);
        assert_ne!(list_hash(&other), h);
        let mut other = base.clone();
        other[0].bank_code = "008".into();
        assert_ne!(list_hash(&other), h);
        assert_ne!(list_hash(&base[..1]), h);
        // 600000 and 600000.00 are one amount.
        let mut other = base.clone();
        other[0].amount = Decimal::new(60_000_000, 2);
        assert_eq!(list_hash(&other), h);
    }
}
