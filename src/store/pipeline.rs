//! The queries of the pipeline's own steps beyond reading and moving records
//! ([`super::records`]): verification's NIK claims, the sweeper's search for records that
//! waited too long, the relay's commit setting.

use super::RecordRow;
use super::records::State;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// A claim's key: programme, period and the keyed hash of the NIK (the claims hold no NIK).
pub type ClaimKey = (String, String, Vec<u8>);

/// The claim key of a record (its NIK hash as set at intake).
pub fn claim_key(row: &RecordRow) -> ClaimKey {
    (
        row.program.clone(),
        row.period.clone(),
        row.nik_hash.clone().unwrap_or_default(),
    )
}

/// Claims each record's NIK for its programme and period (first come, in record id order),
/// and returns the record that holds each claim afterwards: the one that is paid. The insert
/// returns the claims it made; only the keys it did not claim (held before, by another record
/// of this chunk, or by a concurrent transaction, whose commit the insert waited for, so that
/// the next statement sees it) are looked up, one primary-key probe each.
pub async fn claim(
    conn: &mut PgConnection,
    rows: &[&RecordRow],
) -> sqlx::Result<HashMap<ClaimKey, i64>> {
    let program: Vec<&str> = rows.iter().map(|r| r.program.as_str()).collect();
    let period: Vec<&str> = rows.iter().map(|r| r.period.as_str()).collect();
    let nik: Vec<&[u8]> = rows
        .iter()
        .map(|r| r.nik_hash.as_deref().unwrap_or_default())
        .collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let claimed: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
        "INSERT INTO recipient_claims (program, period, nik_hash, record_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bigint[])
             AS w(program, period, nik, record_id)
         ORDER BY record_id
         ON CONFLICT DO NOTHING
         RETURNING program, period, nik_hash, record_id",
    )
    .bind(&program)
    .bind(&period)
    .bind(&nik)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut owners: HashMap<ClaimKey, i64> = claimed
        .into_iter()
        .map(|(p, q, n, id)| ((p, q, n), id))
        .collect();
    let held: Vec<usize> = (0..rows.len())
        .filter(|&i| !owners.contains_key(&claim_key(rows[i])))
        .collect();
    if held.is_empty() {
        return Ok(owners);
    }
    let pick = |v: &[&str]| held.iter().map(|&i| v[i].to_owned()).collect::<Vec<_>>();
    let holders: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT c.program, c.period, c.nik_hash, c.record_id
         FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS w(program, period, nik)
         -- One primary-key probe per NIK, whatever the table's statistics say (a join here was
         -- planned as a sequential scan of every claim, per chunk).
         JOIN LATERAL (
             SELECT * FROM recipient_claims c
             WHERE c.program = w.program AND c.period = w.period AND c.nik_hash = w.nik
         ) c ON true",
    )
    .bind(pick(&program))
    .bind(pick(&period))
    .bind(held.iter().map(|&i| nik[i]).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    owners.extend(holders.into_iter().map(|(p, q, n, id)| ((p, q, n), id)));
    Ok(owners)
}

/// Gives up the NIK claims of these records (not paid: the NIK may be paid by a later,
/// corrected record).
pub async fn release_claims(conn: &mut PgConnection, record_ids: &[i64]) -> sqlx::Result<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM recipient_claims WHERE record_id = ANY($1)")
        .bind(record_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The office and batch of each of these records.
pub async fn offices_of_records(
    conn: &mut PgConnection,
    record_ids: &[i64],
) -> sqlx::Result<HashMap<i64, (String, Uuid)>> {
    let found: Vec<(i64, String, Uuid)> = sqlx::query_as(
        "SELECT r.id, b.office, b.id FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1)",
    )
    .bind(record_ids)
    .fetch_all(conn)
    .await?;
    Ok(found.into_iter().map(|(id, o, b)| (id, (o, b))).collect())
}

/// The office of each of these batches.
pub async fn offices_of_batches(
    conn: &mut PgConnection,
    batches: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, String>> {
    let found: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, office FROM batches WHERE id = ANY($1)")
            .bind(batches)
            .fetch_all(conn)
            .await?;
    Ok(found.into_iter().collect())
}

/// Up to `limit` records in `state` unchanged for longer than `older_than`, doubled for each
/// attempt the record already had in its stage (a bank whose queue is backed up is not flooded
/// with re-sends), oldest first, locked, skipping those another transaction holds. Only the
/// batches whose counters hold records in `state` are read (no index names a record's state).
pub async fn stale(
    conn: &mut PgConnection,
    state: State,
    older_than: Duration,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM records
         WHERE batch_id IN (SELECT batch_id FROM batch_totals WHERE state = $1 AND records > 0)
           AND state = $1 AND updated_at < now() - make_interval(secs => $2 * power(2, least(attempts, 6)))
         ORDER BY updated_at LIMIT $3
         FOR UPDATE SKIP LOCKED",
    )
    .bind(state.as_str())
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Lets this transaction's commit return before it is on disk. For a transaction whose loss
/// in a crash is harmless (the relay's deletes: the messages are published again).
pub async fn commit_without_waiting(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(conn)
        .await?;
    Ok(())
}
