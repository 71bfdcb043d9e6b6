//! Reconciliations of bank statements, their lines and exceptions, and the returns they found
//! (migrations/0010_reconciliation.sql). The rules live in [`crate::ops::reconcile`].

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// The time zone of a statement's day (as bank-sim writes it, and Indonesian banks cut it).
pub const DAY_ZONE: &str = crate::bank::sim_statement::DAY_ZONE;

/// A transfer salur asked a bank for, as a statement line is matched against it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Transfer {
    pub id: i64,
    pub batch_id: Uuid,
    pub program: String,
    pub state: String,
    pub payment_no: i32,
    pub amount: Option<Decimal>,
    pub bank_reference: Option<String>,
}

/// Serialises reconciliations of one statement (bank and reference).
pub async fn lock_statement(
    conn: &mut PgConnection,
    bank: &str,
    reference: &str,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('salur.reconcile/' || $1 || '/' || $2))")
        .bind(bank)
        .bind(reference)
        .execute(conn)
        .await?;
    Ok(())
}

/// The reconciliation of a statement already stored: `(id, file_sha256)`.
pub async fn existing(
    conn: &mut PgConnection,
    bank: &str,
    reference: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT id, file_sha256 FROM reconciliations WHERE bank_code = $1 AND statement_ref = $2",
    )
    .bind(bank)
    .bind(reference)
    .fetch_optional(conn)
    .await
}

/// The transfers salur sent to `bank` under `keys` (a key sent to another bank is unknown to
/// this one) and the records of `also`, locked (returns move some of them): which record each
/// key paid, and each record as a transfer.
pub async fn lock_transfers_by_key(
    conn: &mut PgConnection,
    bank: &str,
    keys: &[String],
    also: &[i64],
) -> sqlx::Result<(HashMap<String, i64>, HashMap<i64, Transfer>)> {
    let by_key: Vec<(String, i64)> = sqlx::query_as(
        "SELECT DISTINCT k.key, k.record_id FROM bank_requests br
         CROSS JOIN LATERAL unnest(br.keys, br.record_ids) AS k(key, record_id)
         WHERE br.kind = 'transfer' AND br.bank_code = $1 AND br.keys && $2::text[]
           AND k.key = ANY($2)",
    )
    .bind(bank)
    .bind(keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids: Vec<i64> = by_key
        .iter()
        .map(|(_, id)| *id)
        .chain(also.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let transfers: Vec<Transfer> = sqlx::query_as(
        "SELECT r.id, r.batch_id, b.program, r.state, r.payment_no, r.amount, r.bank_reference
         FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE OF r",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok((
        by_key.into_iter().collect(),
        transfers.into_iter().map(|t| (t.id, t)).collect(),
    ))
}

/// Returns already stored under these keys: `(key, reconciliation id)`.
pub async fn returns_by_key(
    conn: &mut PgConnection,
    keys: &[String],
) -> sqlx::Result<Vec<(String, Option<Uuid>)>> {
    sqlx::query_as(
        "SELECT idempotency_key, reconciliation_id FROM record_returns
         WHERE idempotency_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(conn)
    .await
}

/// The records disbursed on `day` (its WIB day) through a transfer request to `bank`, as
/// transfers.
pub async fn disbursed_on(
    conn: &mut PgConnection,
    bank: &str,
    day: NaiveDate,
) -> sqlx::Result<Vec<Transfer>> {
    sqlx::query_as(&format!(
        "SELECT r.id, r.batch_id, b.program, r.state, r.payment_no, r.amount, r.bank_reference
         FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id IN (
             SELECT unnest(a.record_ids) FROM audit_chunks a
             WHERE a.to_state = 'disbursed'
               AND a.at >= ($2::date)::timestamp AT TIME ZONE '{DAY_ZONE}'
               AND a.at < ($2::date + 1)::timestamp AT TIME ZONE '{DAY_ZONE}')
           AND EXISTS (SELECT 1 FROM bank_requests br
                       WHERE br.kind = 'transfer' AND br.bank_code = $1
                         AND br.record_ids @> ARRAY[r.id])
         ORDER BY r.id"
    ))
    .bind(bank)
    .bind(day)
    .fetch_all(conn)
    .await
}

/// A reconciliation as stored (the summary; exceptions apart).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Summary {
    pub id: Uuid,
    pub bank_code: String,
    pub statement_ref: String,
    pub account: String,
    pub statement_date: NaiveDate,
    pub format: String,
    pub file_name: String,
    pub file_sha256: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub opening: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub closing: Decimal,
    pub debit_count: i32,
    #[serde(with = "rust_decimal::serde::str")]
    pub debit_total: Decimal,
    pub credit_count: i32,
    #[serde(with = "rust_decimal::serde::str")]
    pub credit_total: Decimal,
    pub matched: i32,
    pub returned: i32,
    #[serde(with = "rust_decimal::serde::str")]
    pub returned_total: Decimal,
    pub person: Option<String>,
    pub token_label: Option<String>,
    pub at: DateTime<Utc>,
    /// Exceptions of this reconciliation (all kinds).
    pub exception_count: i64,
}

const SUMMARY: &str = "SELECT c.id, c.bank_code, c.statement_ref, c.account, c.statement_date,
        c.format, c.file_name, c.file_sha256, c.opening, c.closing, c.debit_count,
        c.debit_total, c.credit_count, c.credit_total, c.matched, c.returned, c.returned_total,
        c.person, c.token_label, c.at,
        (SELECT count(*) FROM reconciliation_exceptions e WHERE e.reconciliation_id = c.id)
            AS exception_count
    FROM reconciliations c";

pub async fn insert(conn: &mut PgConnection, s: &Summary) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reconciliations (id, bank_code, statement_ref, account, statement_date,
             format, file_name, file_sha256, opening, closing, debit_count, debit_total,
             credit_count, credit_total, matched, returned, returned_total, person, token_label)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19)",
    )
    .bind(s.id)
    .bind(&s.bank_code)
    .bind(&s.statement_ref)
    .bind(&s.account)
    .bind(s.statement_date)
    .bind(&s.format)
    .bind(&s.file_name)
    .bind(&s.file_sha256)
    .bind(s.opening)
    .bind(s.closing)
    .bind(s.debit_count)
    .bind(s.debit_total)
    .bind(s.credit_count)
    .bind(s.credit_total)
    .bind(s.matched)
    .bind(s.returned)
    .bind(s.returned_total)
    .bind(&s.person)
    .bind(&s.token_label)
    .execute(conn)
    .await?;
    Ok(())
}

/// One line as stored.
#[derive(Debug, Clone)]
pub struct LineRow {
    pub line_no: i32,
    pub file_line: i32,
    pub direction: &'static str,
    pub amount: Decimal,
    pub value_date: NaiveDate,
    pub end_to_end: String,
    pub bank_reference: Option<String>,
    pub return_code: Option<String>,
    pub record_id: Option<i64>,
    pub outcome: String,
}

pub async fn insert_lines(
    conn: &mut PgConnection,
    id: Uuid,
    lines: &[LineRow],
) -> sqlx::Result<()> {
    let col = |f: fn(&LineRow) -> String| lines.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO reconciliation_lines (reconciliation_id, line_no, file_line, direction,
             amount, value_date, end_to_end, bank_reference, return_code, record_id, outcome)
         SELECT $1, u.* FROM UNNEST($2::int[], $3::int[], $4::text[], $5::numeric[], $6::date[],
             $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[]) AS u",
    )
    .bind(id)
    .bind(lines.iter().map(|l| l.line_no).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.file_line).collect::<Vec<_>>())
    .bind(col(|l| l.direction.to_owned()))
    .bind(lines.iter().map(|l| l.amount).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.value_date).collect::<Vec<_>>())
    .bind(col(|l| l.end_to_end.clone()))
    .bind(
        lines
            .iter()
            .map(|l| l.bank_reference.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        lines
            .iter()
            .map(|l| l.return_code.clone())
            .collect::<Vec<_>>(),
    )
    .bind(lines.iter().map(|l| l.record_id).collect::<Vec<_>>())
    .bind(col(|l| l.outcome.clone()))
    .execute(conn)
    .await?;
    Ok(())
}

/// One exception as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ExceptionRow {
    pub kind: String,
    /// The statement line (1-based among its debits and credits); none for `missing`.
    pub line_no: Option<i32>,
    /// Where that line is in the file.
    pub file_line: Option<i32>,
    pub record_id: Option<i64>,
    pub batch_id: Option<Uuid>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub expected: Option<Decimal>,
    pub end_to_end: Option<String>,
    pub detail: String,
}

pub async fn insert_exceptions(
    conn: &mut PgConnection,
    id: Uuid,
    bank: &str,
    rows: &[ExceptionRow],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reconciliation_exceptions (reconciliation_id, bank_code, kind, line_no,
             file_line, record_id, batch_id, amount, expected, end_to_end, detail)
         SELECT $1, $2, u.* FROM UNNEST($3::text[], $4::int[], $5::int[], $6::bigint[],
             $7::uuid[], $8::numeric[], $9::numeric[], $10::text[], $11::text[]) AS u",
    )
    .bind(id)
    .bind(bank)
    .bind(rows.iter().map(|r| r.kind.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.line_no).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.file_line).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.record_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.batch_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.amount).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.expected).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.end_to_end.clone())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.detail.clone()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A return to store: the payment of a record that came back.
#[derive(Debug, Clone)]
pub struct ReturnRow {
    pub record_id: i64,
    pub payment_no: i32,
    pub batch_id: Uuid,
    pub program: String,
    pub bank_code: String,
    pub key: String,
    pub bank_reference: Option<String>,
    pub amount: Decimal,
    pub reason_code: String,
    pub returned_on: NaiveDate,
}

/// Stores returns (found by the reconciliation `reconciliation`, or announced by the bank's
/// `transfer_returned` message when `None`) and gives each record its next payment number.
pub async fn insert_returns(
    conn: &mut PgConnection,
    reconciliation: Option<Uuid>,
    rows: &[ReturnRow],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO record_returns (record_id, payment_no, batch_id, program, bank_code,
             idempotency_key, bank_reference, amount, reason_code, returned_on, reconciliation_id)
         SELECT u.*, $11 FROM UNNEST($1::bigint[], $2::int[], $3::uuid[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::numeric[], $9::text[], $10::date[]) AS u",
    )
    .bind(rows.iter().map(|r| r.record_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.payment_no).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.batch_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.program.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.bank_code.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.bank_reference.clone())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.amount).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.reason_code.clone())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.returned_on).collect::<Vec<_>>())
    .bind(reconciliation)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE records SET payment_no = payment_no + 1 WHERE id = ANY($1)")
        .bind(rows.iter().map(|r| r.record_id).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn summary(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Summary>> {
    sqlx::query_as(&format!("{SUMMARY} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The latest reconciliations first, at most `limit`, of `bank` if given.
pub async fn list(pool: &PgPool, bank: Option<&str>, limit: i64) -> sqlx::Result<Vec<Summary>> {
    sqlx::query_as(&format!(
        "{SUMMARY} WHERE ($1::text IS NULL OR c.bank_code = $1)
         ORDER BY c.at DESC, c.id LIMIT $2"
    ))
    .bind(bank)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn exceptions(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<ExceptionRow>> {
    sqlx::query_as(
        "SELECT kind, line_no, file_line, record_id, batch_id, amount, expected, end_to_end,
                detail
         FROM reconciliation_exceptions WHERE reconciliation_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Exceptions stored, by bank and kind (the gauge `salur_reconciliation_exceptions`).
pub async fn exception_counts(pool: &PgPool) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT bank_code, kind, count(*) FROM reconciliation_exceptions GROUP BY 1, 2")
        .fetch_all(pool)
        .await
}

/// IDR returned, by programme (`salur_returned_idr_total`).
pub async fn returned_by_programme(pool: &PgPool) -> sqlx::Result<Vec<(String, Decimal)>> {
    sqlx::query_as("SELECT program, sum(amount) FROM record_returns GROUP BY program")
        .fetch_all(pool)
        .await
}
