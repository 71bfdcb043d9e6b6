//! Corrections of blocked records: finding them in a batch by row or by NIK, and writing the
//! corrected office values (sealed) with an audit row that names the fields, never the values.

use super::records::{State, is_cold, raw_columns};
use super::sealed::keyring;
use crate::domain::{Actor, RawRecord};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// `(id, row number as text)` of the records of `batch` at one of `rows`.
pub async fn ids_by_row(
    conn: &mut PgConnection,
    batch: Uuid,
    rows: &[i32],
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT id, row_number::text FROM records WHERE batch_id = $1 AND row_number = ANY($2)",
    )
    .bind(batch)
    .bind(rows)
    .fetch_all(conn)
    .await
}

/// The `SET` lists of a correction's office values, bound from `$2` in [`raw_columns`] order:
/// those of `records` (the mother's maiden name) and those of `record_data` (the rest).
fn sets() -> (String, String) {
    let (hot, cold): (Vec<_>, Vec<_>) = raw_columns()
        .enumerate()
        .map(|(i, c)| (c, format!("{c} = ${}", i + 2)))
        .partition(|(c, _)| !is_cold(c));
    let join = |v: Vec<(&str, String)>| {
        v.into_iter()
            .map(|(_, set)| set)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (join(hot), join(cold))
}

/// `(id, NIK as asked)` of the records of `batch` whose NIK is one of `niks`: found by the keyed
/// hash of the NIK, since the records hold no NIK in clear.
pub async fn ids_by_nik(
    conn: &mut PgConnection,
    batch: Uuid,
    niks: &[String],
) -> sqlx::Result<Vec<(i64, String)>> {
    let ring = keyring()?;
    let by_hash: HashMap<Vec<u8>, &String> = niks
        .iter()
        .filter_map(|k| ring.nik_hash(k).map(|h| (h, k)))
        .collect();
    let hashes: Vec<&Vec<u8>> = by_hash.keys().collect();
    let found: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT id, nik_hash FROM records_all WHERE batch_id = $1 AND nik_hash = ANY($2)",
    )
    .bind(batch)
    .bind(&hashes)
    .fetch_all(conn)
    .await?;
    Ok(found
        .into_iter()
        .filter_map(|(id, h)| by_hash.get(&h).map(|k| (id, (*k).clone())))
        .collect())
}

/// Writes a blocked record's corrected office values and its remaining `reasons`, with an
/// audit row (`blocked` → `blocked`) carrying `detail`. A record no longer blocked is left as
/// it is. The personal values are sealed and the NIK's keyed hash recomputed here.
pub async fn write(
    conn: &mut PgConnection,
    id: i64,
    raw: &RawRecord,
    reasons: &serde_json::Value,
    detail: serde_json::Value,
    actor: &Actor,
) -> sqlx::Result<()> {
    let ring = keyring()?;
    let n = RawRecord::KEYS.len();
    let (reasons_at, detail_at, hash_at) = (n + 2, n + 3, n + 4);
    let (person_at, token_at) = (n + 5, n + 6);
    let (hot, cold) = sets();
    let sql = format!(
        "WITH fixed AS (
             UPDATE records SET {hot}, reasons = ${reasons_at}, updated_at = now()
             WHERE id = $1 AND state = 'blocked'
             RETURNING id
         ), data AS (
             UPDATE record_data SET {cold}, nik_hash = ${hash_at}
             WHERE id = (SELECT id FROM fixed)
         )
         INSERT INTO audit_chunks (from_state, to_state, record_ids, reasons, details,
                                   actor_person, actor_token)
         SELECT 'blocked', 'blocked', ARRAY[id],
                CASE WHEN ${reasons_at} = '[]'::jsonb THEN NULL
                     ELSE ARRAY[${reasons_at}::jsonb] END,
                ARRAY[${detail_at}::jsonb], ${person_at}, ${token_at}
         FROM fixed"
    );
    let mut query = sqlx::query(&sql).bind(id);
    for (column, value) in raw_columns().zip(raw.values()) {
        query = if super::records::SEALED.contains(&column) {
            query.bind(value.as_deref().map(|v| ring.seal(column, id, v)))
        } else {
            query.bind(value.clone())
        };
    }
    query
        .bind(reasons)
        .bind(detail)
        .bind(raw.nik.as_deref().and_then(|n| ring.nik_hash(n)))
        .bind(actor.person.as_deref())
        .bind(actor.token.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// A correction of a record that left the blocked state's fixing (waiting for approval, or
/// approved and not yet sent to its bank): its values corrected, moved from `from` to `to`
/// with `reasons`, its parsed amount set to `amount` (when given), the bank's account number
/// and name forgotten when `forget_account` (the bank must confirm a changed bank or account
/// again), its approval dropped; one audit row with `detail`. Returns whether the record was
/// still in `from`.
#[allow(clippy::too_many_arguments)]
pub async fn write_moving(
    conn: &mut PgConnection,
    id: i64,
    from: State,
    to: State,
    raw: &RawRecord,
    reasons: &serde_json::Value,
    amount: Option<Decimal>,
    forget_account: bool,
    detail: serde_json::Value,
    actor: &Actor,
) -> sqlx::Result<bool> {
    let ring = keyring()?;
    let n = RawRecord::KEYS.len();
    let at = |k: usize| n + 2 + k;
    let (hot, cold) = sets();
    let sql = format!(
        "WITH fixed AS (
             UPDATE records SET {hot}, reasons = ${r}, state = ${to},
                 amount = COALESCE(${amount}, amount),
                 bank_account = CASE WHEN ${forget} THEN NULL ELSE bank_account END,
                 bank_account_name = CASE WHEN ${forget} THEN NULL ELSE bank_account_name END,
                 approval_id = NULL, attempts = 0, updated_at = now()
             WHERE id = $1 AND state = ${from}
             RETURNING id
         ), data AS (
             UPDATE record_data SET {cold}, nik_hash = ${h}
             WHERE id = (SELECT id FROM fixed)
         ), audit AS (
             INSERT INTO audit_chunks (from_state, to_state, record_ids, reasons, details,
                                       actor_person, actor_token)
             SELECT ${from}, ${to}, ARRAY[id],
                    CASE WHEN ${r} = '[]'::jsonb THEN NULL ELSE ARRAY[${r}::jsonb] END,
                    ARRAY[${d}::jsonb], ${person}, ${token}
             FROM fixed
         )
         SELECT count(*) FROM fixed",
        r = at(0),
        d = at(1),
        h = at(2),
        from = at(3),
        to = at(4),
        amount = at(5),
        forget = at(6),
        person = at(7),
        token = at(8),
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(id);
    for (column, value) in raw_columns().zip(raw.values()) {
        query = if super::records::SEALED.contains(&column) {
            query.bind(value.as_deref().map(|v| ring.seal(column, id, v)))
        } else {
            query.bind(value.clone())
        };
    }
    let changed = query
        .bind(reasons)
        .bind(detail)
        .bind(raw.nik.as_deref().and_then(|n| ring.nik_hash(n)))
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(amount)
        .bind(forget_account)
        .bind(actor.person.as_deref())
        .bind(actor.token.as_str())
        .fetch_one(conn)
        .await?;
    Ok(changed == 1)
}
