//! Approvals of payment lists: which programmes require one, a batch's list as it stands (the
//! records waiting for approval, their payee fields opened), and the decisions, each written
//! with the records it moves and their audit rows naming the checker.

use super::State;
use super::records::RECORD_AND_DATA;
use super::sealed::keyring;
use rust_decimal::Decimal;
use sqlx::{PgConnection, Row as _};
use std::collections::HashSet;
use uuid::Uuid;

/// Of `programs`, those whose records wait for a checker's approval before the transfer: every
/// programme except those registered with `approval none`. A programme salur does not know
/// requires approval: the safe side.
pub async fn requiring_approval(
    conn: &mut PgConnection,
    programs: &[&str],
) -> sqlx::Result<HashSet<String>> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT p FROM UNNEST($1::text[]) AS p
         WHERE NOT EXISTS (SELECT 1 FROM programmes g WHERE g.code = p AND NOT g.approval_required)",
    )
    .bind(programs)
    .fetch_all(conn)
    .await?;
    Ok(found.into_iter().collect())
}

/// A batch, as an approval sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchHead {
    pub office: String,
    pub program: String,
    pub period: String,
    /// The person who submitted it (NULL for batches submitted before people had roles).
    pub submitted_person: Option<String>,
}

/// Batch `id` if `office` may see it (any office's when `None`); locked with `lock` (so that
/// two decisions on one batch take turns).
pub async fn batch(
    conn: &mut PgConnection,
    id: Uuid,
    office: Option<&str>,
    lock: bool,
) -> sqlx::Result<Option<BatchHead>> {
    sqlx::query_as(&format!(
        "SELECT office, program, period, submitted_person FROM batches
         WHERE id = $1 AND ($2::text IS NULL OR office = $2) {}",
        if lock { "FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .bind(office)
    .fetch_optional(conn)
    .await
}

/// One record of a payment list: what the hash covers, opened, and its row for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: i64,
    pub row_number: i32,
    /// The NIK as stored (the office's, as corrected).
    pub nik: String,
    /// The bank code as the office gave it.
    pub bank_code: String,
    /// The account the transfer pays: the one the bank opened or confirmed.
    pub account: String,
    pub amount: Decimal,
}

/// The records of `batch` waiting for approval, in id order, their payee fields opened;
/// locked when `lock` (an approval moves exactly these).
pub async fn awaiting(
    conn: &mut PgConnection,
    batch: Uuid,
    lock: bool,
) -> sqlx::Result<Vec<ListRow>> {
    let rows = sqlx::query(&format!(
        "SELECT r.id, r.row_number, d.nik, d.bank_code, r.bank_account, d.account_number,
                r.amount
         FROM {RECORD_AND_DATA}
         WHERE r.batch_id = $1 AND r.state = $2 ORDER BY r.id {}",
        if lock { "FOR UPDATE OF r" } else { "" }
    ))
    .bind(batch)
    .bind(State::AwaitingApproval.as_str())
    .fetch_all(conn)
    .await?;
    let ring = keyring()?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let open = |column: &'static str| -> sqlx::Result<Option<String>> {
                let sealed: Option<Vec<u8>> = row.try_get(column)?;
                Ok(sealed.map(|v| ring.open(column, id, &v)).transpose()?)
            };
            Ok(ListRow {
                id,
                row_number: row.try_get("row_number")?,
                nik: open("nik")?.unwrap_or_default(),
                bank_code: row
                    .try_get::<Option<String>, _>("bank_code")?
                    .unwrap_or_default(),
                account: open("bank_account")?
                    .or(open("account_number")?)
                    .unwrap_or_default(),
                amount: row
                    .try_get::<Option<Decimal>, _>("amount")?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A checker's decision on a list, as stored.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub head: &'a BatchHead,
    pub list_hash: &'a str,
    /// `approved` or `rejected`.
    pub decision: &'a str,
    pub why: Option<&'a str>,
    pub person: &'a str,
    pub token_label: Option<&'a str>,
    pub record_count: i32,
    pub total: Decimal,
}

/// Stores a decision.
pub async fn insert(conn: &mut PgConnection, d: &Decision<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO approvals (id, batch_id, program, period, office, list_hash, decision, why,
                                person, token_label, record_count, total)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(d.id)
    .bind(d.batch_id)
    .bind(&d.head.program)
    .bind(&d.head.period)
    .bind(&d.head.office)
    .bind(d.list_hash)
    .bind(d.decision)
    .bind(d.why)
    .bind(d.person)
    .bind(d.token_label)
    .bind(d.record_count)
    .bind(d.total)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves those of `ids` still waiting for approval as decision `d` says (approved: `verified`
/// with the approval's id; rejected: `blocked` with `reasons`), with their audit (one row for
/// them all) naming the checker and the decision. Returns the ids moved.
pub async fn decide(
    conn: &mut PgConnection,
    ids: &[i64],
    d: &Decision<'_>,
    reasons: &serde_json::Value,
) -> sqlx::Result<Vec<i64>> {
    let approved = d.decision == "approved";
    let to = if approved {
        State::Verified
    } else {
        State::Blocked
    };
    sqlx::query_scalar(
        "WITH changed AS (
             UPDATE records SET state = $2,
                 approval_id = CASE WHEN $4 THEN $3 ELSE NULL END,
                 reasons = $5, attempts = 0, updated_at = now()
             WHERE id = ANY($1) AND state = $6
             RETURNING id
         ), audit AS (
             INSERT INTO audit_chunks (from_state, to_state, record_ids, reasons, details,
                                       actor_person, actor_token)
             SELECT $6, $2, array_agg(id ORDER BY id),
                    CASE WHEN $5 = '[]'::jsonb THEN NULL
                         ELSE array_agg($5::jsonb ORDER BY id) END,
                    array_agg(jsonb_build_object(
                                  'action', CASE WHEN $4 THEN 'approve' ELSE 'reject' END,
                                  'approval_id', $3::text) ORDER BY id),
                    $7, $8
             FROM changed HAVING count(*) > 0
         )
         SELECT id FROM changed ORDER BY id",
    )
    .bind(ids)
    .bind(to.as_str())
    .bind(d.id)
    .bind(approved)
    .bind(reasons)
    .bind(State::AwaitingApproval.as_str())
    .bind(d.person)
    .bind(d.token_label)
    .fetch_all(conn)
    .await
}

/// Records the person who submitted a batch.
pub async fn set_submitter(
    conn: &mut PgConnection,
    batch: Uuid,
    person: Option<&str>,
    token_label: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE batches SET submitted_person = $2, submitted_token = $3 WHERE id = $1")
        .bind(batch)
        .bind(person)
        .bind(token_label)
        .execute(conn)
        .await?;
    Ok(())
}

/// The decisions on a batch's lists, oldest first: `(id, decision, person, records, total,
/// why, at)`.
pub type DecisionRow = (
    Uuid,
    String,
    String,
    i32,
    Decimal,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
);

pub async fn decisions(conn: &mut PgConnection, batch: Uuid) -> sqlx::Result<Vec<DecisionRow>> {
    sqlx::query_as(
        "SELECT id, decision, person, record_count, total, why, at FROM approvals
         WHERE batch_id = $1 ORDER BY at, id",
    )
    .bind(batch)
    .fetch_all(conn)
    .await
}
