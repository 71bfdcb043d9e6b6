//! Batches: storing one (its row first, its record count when it is complete), who may see it,
//! its totals, the listing of batches and of a batch's records, and the report's rows.

use super::records::shown;
use super::sealed::keyring;
use crate::domain::RawRecord;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

/// What a batch is: who submitted it, for which programme and period, from which file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Head {
    pub office: String,
    pub program: String,
    pub period: String,
    pub file_name: String,
    /// Records stored (0 until the batch is complete).
    pub record_count: i32,
}

/// Starts a batch (its record count 0 until [`set_record_count`]).
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    office: &str,
    program: &str,
    period: &str,
    file_name: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO batches (id, office, program, period, file_name, record_count)
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(id)
    .bind(office)
    .bind(program)
    .bind(period)
    .bind(file_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the number of records a complete batch holds.
pub async fn set_record_count(conn: &mut PgConnection, id: Uuid, records: i32) -> sqlx::Result<()> {
    sqlx::query("UPDATE batches SET record_count = $2 WHERE id = $1")
        .bind(id)
        .bind(records)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether batch `id` exists and belongs to `office` (any office's when `None`).
pub async fn visible(pool: &PgPool, id: Uuid, office: Option<&str>) -> sqlx::Result<bool> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM batches WHERE id = $1 AND ($2::text IS NULL OR office = $2)",
    )
    .bind(id)
    .bind(office)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Batch `id`, if there is one.
pub async fn head(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Head>> {
    sqlx::query_as(
        "SELECT office, program, period, file_name, record_count FROM batches WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// `(state, records, sum of their amounts)` of the batch's records, per state they are in.
pub async fn state_totals(
    pool: &PgPool,
    id: Uuid,
) -> sqlx::Result<Vec<(String, i64, Option<Decimal>)>> {
    sqlx::query_as(
        "SELECT state, sum(records)::bigint, sum(amount) FROM batch_totals
         WHERE batch_id = $1 GROUP BY state HAVING sum(records) <> 0",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// `(state, approved, records, sum of their amounts)` of the records of one batch (`batch`),
/// or of one programme and period (`batch` `None`), per state and whether they carry an
/// approval.
pub async fn approval_totals(
    pool: &PgPool,
    batch: Option<Uuid>,
    program_period: Option<(&str, &str)>,
) -> sqlx::Result<Vec<(String, bool, i64, Option<Decimal>)>> {
    sqlx::query_as(
        "SELECT t.state, t.approved, sum(t.records)::bigint, sum(t.amount)
         FROM batch_totals t JOIN batches b ON b.id = t.batch_id
         WHERE ($1::uuid IS NULL OR t.batch_id = $1)
           AND ($2::text IS NULL OR (b.program = $2 AND b.period = $3))
         GROUP BY 1, 2
         HAVING sum(t.records) <> 0",
    )
    .bind(batch)
    .bind(program_period.map(|p| p.0))
    .bind(program_period.map(|p| p.1))
    .fetch_all(pool)
    .await
}

/// What was requested of one batch (`batch`), or of one programme and period: `(records, sum
/// of their amounts)`, counted apart from the states: the records as intake counted them
/// (`batches.record_count`), the amounts as they stand (a correction may change one).
pub async fn requested(
    pool: &PgPool,
    batch: Option<Uuid>,
    program_period: Option<(&str, &str)>,
) -> sqlx::Result<(i64, Option<Decimal>)> {
    sqlx::query_as(
        "WITH these AS (
             SELECT id, record_count FROM batches b
             WHERE ($1::uuid IS NULL OR b.id = $1)
               AND ($2::text IS NULL OR (b.program = $2 AND b.period = $3))
         )
         SELECT (SELECT coalesce(sum(record_count), 0)::bigint FROM these),
                (SELECT sum(c.amount) FROM batch_counts c WHERE c.batch_id IN (SELECT id FROM these))",
    )
    .bind(batch)
    .bind(program_period.map(|p| p.0))
    .bind(program_period.map(|p| p.1))
    .fetch_one(pool)
    .await
}

/// `(reason code, records)` over the batch's records that are blocked, rejected, failed or dead
/// (`stopped_records`: only those are read).
pub async fn reason_counts(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT reason->>'code', count(DISTINCT r.id)
         FROM stopped_records p JOIN records r ON r.id = p.record_id,
              jsonb_array_elements(r.reasons) reason
         WHERE p.batch_id = $1
         GROUP BY 1",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Which batches to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    /// Only this office's batches (every office's when `None`).
    pub office: Option<&'a str>,
    pub program: Option<&'a str>,
    pub period: Option<&'a str>,
    /// Only batches listed after this one: its `(created_at in microseconds, id)`.
    pub after: Option<(i64, Uuid)>,
    pub limit: i64,
}

/// A batch as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub file_name: String,
    pub record_count: i32,
    pub created_at: DateTime<Utc>,
    /// `created_at` in microseconds: with the id, where the next page starts.
    pub created_micros: i64,
}

/// Batches matching `q`, newest first, at most `q.limit`.
pub async fn list(pool: &PgPool, q: &ListQuery<'_>) -> sqlx::Result<Vec<Listed>> {
    sqlx::query_as(
        "SELECT id, office, program, period, file_name, record_count, created_at,
                (extract(epoch FROM created_at) * 1000000)::bigint AS created_micros
         FROM batches
         WHERE ($1::text IS NULL OR office = $1)
           AND ($2::text IS NULL OR program = $2)
           AND ($3::text IS NULL OR period = $3)
           AND ($4::bigint IS NULL
                OR ((extract(epoch FROM created_at) * 1000000)::bigint, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC
         LIMIT $6",
    )
    .bind(q.office)
    .bind(q.program)
    .bind(q.period)
    .bind(q.after.map(|a| a.0))
    .bind(q.after.map(|a| a.1))
    .bind(q.limit)
    .fetch_all(pool)
    .await
}

/// Which of a batch's records to list, in id order.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery<'a> {
    /// Only records after this id.
    pub after: i64,
    pub state: Option<&'a str>,
    /// Only records with a current reason of this code.
    pub reason: Option<&'a str>,
    pub limit: i64,
}

/// A record as listed for an office: the office's values that identify it, masked.
#[derive(Debug, Clone)]
pub struct ListedRecord {
    pub id: i64,
    pub batch_id: Uuid,
    pub row_number: i32,
    pub state: String,
    pub reasons: serde_json::Value,
    /// The office's [`LISTED`] values, masked ([`RawRecord::mask_of`]); the others `None`.
    /// After erasure, the masked forms kept then.
    pub shown: RawRecord,
    pub amount: Option<Decimal>,
    pub bank_reference: Option<String>,
    pub attempts: i32,
    pub updated_at: DateTime<Utc>,
}

/// The office's fields a listing shows (masked).
pub const LISTED: [&str; 5] = ["nik", "kk", "name", "bank_code", "account_number"];

/// The records of `batch` matching `q`.
pub async fn records(
    pool: &PgPool,
    batch: Uuid,
    q: &RecordQuery<'_>,
) -> sqlx::Result<Vec<ListedRecord>> {
    let rows: Vec<PgRow> = sqlx::query(&format!(
        "SELECT r.id, r.batch_id, r.row_number, r.state, r.reasons, r.{}, r.amount,
                r.bank_reference, r.attempts, r.updated_at, r.masked
         FROM records_all r
         WHERE r.batch_id = $1 AND r.id > $2
           AND ($3::text IS NULL OR r.state = $3)
           AND ($4::text IS NULL OR r.reasons @> jsonb_build_array(jsonb_build_object('code', $4::text)))
         ORDER BY r.id LIMIT $5",
        LISTED.join(", r.")
    ))
    .bind(batch)
    .bind(q.after)
    .bind(q.state)
    .bind(q.reason)
    .bind(q.limit)
    .fetch_all(pool)
    .await?;
    let ring = keyring()?;
    rows.iter()
        .map(|row| -> sqlx::Result<ListedRecord> {
            let id: i64 = row.try_get("id")?;
            let masked: Option<serde_json::Value> = row.try_get("masked")?;
            let mut out = RawRecord::default();
            for key in LISTED {
                let value = if super::records::SEALED.contains(&key) {
                    let sealed: Option<Vec<u8>> = row.try_get(key)?;
                    shown(
                        &ring,
                        id,
                        key,
                        sealed.as_deref(),
                        masked.as_ref(),
                        RawRecord::mask_of(key),
                    )?
                } else {
                    row.try_get(key)?
                };
                *out.field_mut(key)
                    .expect("a listed field is an office field") = value;
            }
            let row_number: i32 = row.try_get("row_number")?;
            out.row = row_number as u32;
            Ok(ListedRecord {
                id,
                batch_id: row.try_get("batch_id")?,
                row_number,
                state: row.try_get("state")?,
                reasons: row.try_get("reasons")?,
                shown: out,
                amount: row.try_get("amount")?,
                bank_reference: row.try_get("bank_reference")?,
                attempts: row.try_get("attempts")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// One record as the report reads it: id, row, NIK (sealed), the masked forms kept after
/// erasure, state, reasons, amount, bank reference.
pub type ReportRow = (
    i64,
    i32,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
    String,
    serde_json::Value,
    Option<Decimal>,
    Option<String>,
    Option<String>,
);

/// The records of `batch` in file order, as [`ReportRow`]s, streamed (a batch of a million
/// rows is never held whole).
pub fn report_rows(pool: &PgPool, batch: Uuid) -> BoxStream<'_, sqlx::Result<ReportRow>> {
    sqlx::query_as::<_, ReportRow>(
        "SELECT id, row_number, nik, masked, state, reasons, amount, bank_reference,
                (SELECT string_agg(x, '|' ORDER BY x) FROM (
                     SELECT 'returned:' || rr.reason_code AS x FROM record_returns rr
                     WHERE rr.record_id = records.id
                     UNION
                     SELECT e.kind FROM reconciliation_exceptions e
                     WHERE e.record_id = records.id) s) AS reconciliation
         FROM records_all records WHERE batch_id = $1 ORDER BY row_number",
    )
    .bind(batch)
    .fetch(pool)
}

/// The reconciliation exceptions of a batch's records, by kind (see
/// [`crate::ops::reconcile::ExceptionKind`]).
pub async fn exception_counts(pool: &PgPool, batch: Uuid) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT kind, count(*) FROM reconciliation_exceptions WHERE batch_id = $1
         GROUP BY kind ORDER BY kind",
    )
    .bind(batch)
    .fetch_all(pool)
    .await
}
