//! Personal data beyond the pipeline: re-sealing under a new key (rotation, and clear values
//! written before encryption), erasure (retention, an erasure request) and finding a person's
//! records by the keyed hash of their NIK. Every pass works in short chunks, each its own
//! transaction taking only rows nobody holds (`SKIP LOCKED`), so the pipeline keeps running.

use super::outbox;
use super::records::{RECORD_AND_DATA, SEALED, alias_of, is_cold};
use super::sealed::{KeyError, KeyId, Keyring, keyring};
use crate::domain::{mask_digits, mask_words};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What a re-seal pass looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseal {
    /// Every value not sealed with the current key (a key rotation).
    ToCurrentKey,
    /// Only values written in clear before encryption existed (`salur migrate`).
    LegacyOnly,
}

impl Reseal {
    /// SQL that is true for a record holding a value this pass re-seals (`$2` = current key).
    fn condition(self) -> String {
        let per_column = SEALED.iter().map(|c| {
            let t = alias_of(c);
            match self {
                Reseal::ToCurrentKey => {
                    format!("({t}.{c} IS NOT NULL AND salur_key_id({t}.{c}) IS DISTINCT FROM $2)")
                }
                Reseal::LegacyOnly => format!("get_byte({t}.{c}, 0) = 0"),
            }
        });
        let mut all: Vec<String> = per_column.collect();
        all.push("(d.nik IS NOT NULL AND d.nik_hash IS NULL)".into());
        all.join(" OR ")
    }
}

/// Re-seals up to `limit` records with an id above `after` (one transaction); returns the last
/// id it looked at and how many records it changed, or `None` when no record is left above
/// `after`. Records another transaction holds are skipped: [`pending`] finds them later.
pub async fn reseal_chunk(
    pool: &PgPool,
    how: Reseal,
    after: i64,
    limit: i64,
) -> anyhow::Result<Option<(i64, u64)>> {
    let ring = keyring()?;
    let mut tx = pool.begin().await?;
    let cols = SEALED.map(|c| format!("{}.{c}", alias_of(c))).join(", ");
    let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(&format!(
        "SELECT r.id, {cols} FROM {RECORD_AND_DATA}
         WHERE r.id > $1 AND ({})
         ORDER BY r.id LIMIT $3
         FOR UPDATE OF r SKIP LOCKED",
        how.condition()
    ))
    .bind(after)
    .bind(i32::from(ring.current()))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(|r| sqlx::Row::get::<i64, _>(r, 0)) else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(rows.len());
    let mut columns: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::with_capacity(rows.len()); SEALED.len()];
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        use sqlx::Row as _;
        let id: i64 = row.get(0);
        ids.push(id);
        let mut nik_hash = None;
        for (i, column) in SEALED.iter().enumerate() {
            let v: Option<Vec<u8>> = row.get(i + 1);
            let resealed = match v {
                Some(v) if Keyring::key_of(&v) != Some(ring.current()) => {
                    let clear = ring.open(column, id, &v)?;
                    if *column == "nik" {
                        nik_hash = ring.nik_hash(&clear);
                    }
                    Some(ring.seal(column, id, &clear))
                }
                Some(v) => {
                    if *column == "nik" {
                        nik_hash = ring.nik_hash(&ring.open(column, id, &v)?);
                    }
                    Some(v)
                }
                None => None,
            };
            columns[i].push(resealed);
        }
        hashes.push(nik_hash);
    }
    let sets = |cold: bool| {
        SEALED
            .iter()
            .enumerate()
            .filter(|(_, c)| is_cold(c) == cold)
            .map(|(i, c)| format!("{c} = u.c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let arrays = (0..SEALED.len())
        .map(|i| format!("${}::bytea[]", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let names = (0..SEALED.len())
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH u AS (
             SELECT * FROM UNNEST($1::bigint[], $2::bytea[], {arrays}) AS u(id, nik_hash, {names})
         ), data AS (
             UPDATE record_data d SET {}, nik_hash = u.nik_hash FROM u WHERE d.id = u.id
         )
         UPDATE records r SET {} FROM u WHERE r.id = u.id",
        sets(true),
        sets(false)
    );
    let mut q = sqlx::query(&sql).bind(&ids).bind(&hashes);
    for c in &columns {
        q = q.bind(c);
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some((last, ids.len() as u64)))
}

impl Reseal {
    /// SQL that is true for an outbox row this pass re-seals (`$2` = current key): a bank
    /// request sealed with another key, or (both passes) one still in clear, written before
    /// outbox payloads were sealed.
    fn outbox_condition(self) -> &'static str {
        match self {
            Reseal::ToCurrentKey => {
                "CASE WHEN substring(o.payload FROM 1 FOR 1) = '\\x01'::bytea
                      THEN salur_key_id(o.payload) IS DISTINCT FROM $2
                      ELSE o.routing_key LIKE 'bank.%' END"
            }
            Reseal::LegacyOnly => {
                "(substring(o.payload FROM 1 FOR 1) <> '\\x01'::bytea
                  AND o.routing_key LIKE 'bank.%' AND $2::int IS NOT NULL)"
            }
        }
    }
}

/// Re-seals up to `limit` outbox messages with an id above `after` under the current key, in one
/// transaction, like [`reseal_chunk`] (rows a relay is publishing are skipped; [`pending`]
/// finds them later, or they are gone).
pub async fn reseal_outbox_chunk(
    pool: &PgPool,
    how: Reseal,
    after: i64,
    limit: i64,
) -> anyhow::Result<Option<(i64, u64)>> {
    let ring = keyring()?;
    let mut tx = pool.begin().await?;
    let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT o.id, o.exchange, o.routing_key, o.payload FROM outbox o
         WHERE o.id > $1 AND {}
         ORDER BY o.id LIMIT $3
         FOR UPDATE SKIP LOCKED",
        how.outbox_condition()
    ))
    .bind(after)
    .bind(i32::from(ring.current()))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    for (id, exchange, routing_key, payload) in rows {
        let clear = outbox::open(
            &ring,
            id,
            crate::broker::Outgoing {
                exchange,
                routing_key,
                payload,
            },
        )?;
        payloads.push(outbox::seal(
            &ring,
            id,
            &clear.exchange,
            &clear.routing_key,
            &clear.payload,
        ));
        ids.push(id);
    }
    sqlx::query(
        "UPDATE outbox o SET payload = u.payload
         FROM UNNEST($1::bigint[], $2::bytea[]) AS u(id, payload) WHERE o.id = u.id",
    )
    .bind(&ids)
    .bind(&payloads)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((last, ids.len() as u64)))
}

/// Records and outbox messages still holding a value a [`Reseal`] pass would change.
pub async fn pending(pool: &PgPool, how: Reseal) -> anyhow::Result<i64> {
    let ring = keyring()?;
    Ok(sqlx::query_scalar(&format!(
        "SELECT (SELECT count(*) FROM {RECORD_AND_DATA}
                 WHERE $1::int IS NULL AND ({}))
              + (SELECT count(*) FROM outbox o WHERE {})",
        how.condition(),
        how.outbox_condition()
    ))
    .bind(None::<i32>)
    .bind(i32::from(ring.current()))
    .fetch_one(pool)
    .await?)
}

/// Re-seals in chunks until no record or outbox message is left to change (rows busy in a stage
/// or a relay are taken on the next round). `progress` gets the rows changed so far.
pub async fn reseal_all(
    pool: &PgPool,
    how: Reseal,
    chunk: i64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let mut after = 0;
        while let Some((last, n)) = reseal_chunk(pool, how, after, chunk).await? {
            after = last;
            total += n;
            progress(total);
        }
        // Bank requests waiting in the outbox: the relay must open them once the old key is
        // gone.
        let mut after = 0;
        while let Some((last, n)) = reseal_outbox_chunk(pool, how, after, chunk).await? {
            after = last;
            total += n;
            progress(total);
        }
        if pending(pool, how).await? == 0 {
            return Ok(total);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Seals what was written before encryption existed (migration 0006): clear record values and
/// the NIKs of double-recipient claims, which become keyed hashes. Runs once, from `salur
/// migrate`: afterwards the claims' NIK column is dropped.
pub async fn seal_legacy(pool: &PgPool) -> anyhow::Result<()> {
    let legacy: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                        WHERE table_name = 'recipient_claims' AND column_name = 'nik'
                          AND table_schema = current_schema())",
    )
    .fetch_one(pool)
    .await?;
    if !legacy {
        return Ok(());
    }
    let n = reseal_all(pool, Reseal::LegacyOnly, 1000, |_| {}).await?;
    let ring = keyring()?;
    let claims: Vec<(String, String, String)> =
        sqlx::query_as("SELECT program, period, nik FROM recipient_claims WHERE nik IS NOT NULL")
            .fetch_all(pool)
            .await?;
    let mut tx = pool.begin().await?;
    for (program, period, nik) in &claims {
        sqlx::query(
            "UPDATE recipient_claims SET nik_hash = $4, nik = NULL
             WHERE program = $1 AND period = $2 AND nik = $3",
        )
        .bind(program)
        .bind(period)
        .bind(nik)
        .bind(ring.nik_hash(nik))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("ALTER TABLE recipient_claims DROP COLUMN nik")
        .execute(&mut *tx)
        .await?;
    sqlx::query("ALTER TABLE recipient_claims ALTER COLUMN nik_hash SET NOT NULL")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if n > 0 || !claims.is_empty() {
        tracing::info!(
            records = n,
            claims = claims.len(),
            "sealed personal data written before encryption"
        );
    }
    Ok(())
}

/// `(key id, values)` sealed with each key, and the values still in clear (`None`).
pub async fn values_per_key(pool: &PgPool) -> sqlx::Result<Vec<(Option<i32>, i64)>> {
    let cols = SEALED.map(|c| format!("{}.{c}", alias_of(c))).join(", ");
    sqlx::query_as(&format!(
        "SELECT salur_key_id(v), count(*)
         FROM {RECORD_AND_DATA}, LATERAL unnest(ARRAY[{cols}]) v
         WHERE v IS NOT NULL GROUP BY 1 ORDER BY 1"
    ))
    .fetch_all(pool)
    .await
}

/// `(key id, messages)` of the outbox's sealed bank requests, and those in clear (`None`).
pub async fn messages_per_key(pool: &PgPool) -> sqlx::Result<Vec<(Option<i32>, i64)>> {
    sqlx::query_as(
        "SELECT salur_key_id(payload), count(*) FROM outbox
         WHERE routing_key LIKE 'bank.%' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// The keys the database knows: `(id, created, retired)`; id 0 is the NIK hash key.
pub async fn registered_keys(
    pool: &PgPool,
) -> sqlx::Result<
    Vec<(
        i32,
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    )>,
> {
    sqlx::query_as("SELECT key_id, created_at, retired_at FROM data_keys ORDER BY key_id")
        .fetch_all(pool)
        .await
}

/// Marks every encryption key but `current` retired: nothing is sealed with them any more, so
/// they may be removed from the key ring.
pub async fn retire_keys_except(pool: &PgPool, current: KeyId) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar(
        "UPDATE data_keys SET retired_at = now()
         WHERE key_id <> 0 AND key_id <> $1 AND retired_at IS NULL RETURNING key_id",
    )
    .bind(i32::from(current))
    .fetch_all(pool)
    .await
}

/// `(id, nik, name, account_number, bank_account)`, sealed: what an erasure keeps masked.
type ToMask = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// Masked fields for display (`field -> masked value`), with the masked forms an erasure kept
/// (`records.masked`: NIK, name, account number) in place of the values it erased.
pub fn with_kept_masks(
    mut fields: std::collections::BTreeMap<&'static str, Option<String>>,
    kept: Option<&serde_json::Value>,
) -> std::collections::BTreeMap<&'static str, Option<String>> {
    let Some(kept) = kept else {
        return fields;
    };
    for (field, value) in fields.iter_mut() {
        if value.is_none()
            && let Some(k) = kept.get(*field).and_then(|v| v.as_str())
        {
            *value = Some(k.to_owned());
        }
    }
    fields
}

/// Erases the personal fields of `ids` (which the caller holds locked): every sealed value and
/// the NIK hash become NULL; the masked NIK, name and account numbers are kept for display, and
/// ids, states, amounts, bank references and the audit stay, so totals still add up.
/// Returns how many records were erased.
pub async fn erase(conn: &mut PgConnection, ids: &[i64]) -> anyhow::Result<u64> {
    let ring = keyring()?;
    let rows: Vec<ToMask> = sqlx::query_as(
        "SELECT id, nik, name, account_number, bank_account FROM records_all
             WHERE id = ANY($1) AND erased_at IS NULL",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut erased = Vec::with_capacity(rows.len());
    let mut masked = Vec::with_capacity(rows.len());
    for (id, nik, name, account, bank_account) in rows {
        let m = |column: &'static str, v: Option<Vec<u8>>, f: fn(&str) -> String| {
            v.map(|v| ring.open(column, id, &v).map(|c| f(&c)))
                .transpose()
        };
        masked.push(serde_json::json!({
            "nik": m("nik", nik, mask_digits)?,
            "name": m("name", name, mask_words)?,
            "account_number": m("account_number", account, mask_digits)?,
            "bank_account": m("bank_account", bank_account, mask_digits)?,
        }));
        erased.push(id);
    }
    let nulls = |cold: bool| {
        SEALED
            .iter()
            .filter(|c| is_cold(c) == cold)
            .map(|c| format!("{c} = NULL"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    sqlx::query(&format!(
        "WITH u AS (
             SELECT * FROM UNNEST($1::bigint[], $2::jsonb[]) AS u(id, masked)
         ), data AS (
             UPDATE record_data d SET {}, nik_hash = NULL, masked = u.masked, erased_at = now()
             FROM u WHERE d.id = u.id
         )
         UPDATE records r SET {} FROM u WHERE r.id = u.id",
        nulls(true),
        nulls(false)
    ))
    .bind(&erased)
    .bind(&masked)
    .execute(&mut *conn)
    .await?;
    Ok(erased.len() as u64)
}

/// One line of `personal_data_log`: who read or erased whose data.
pub async fn log(
    conn: &mut PgConnection,
    action: &str,
    actor: &str,
    nik_hash: Option<&[u8]>,
    batch_id: Option<Uuid>,
    ids: &[i64],
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO personal_data_log (action, actor, nik_hash, batch_id, record_ids, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(action)
    .bind(actor)
    .bind(nik_hash)
    .bind(batch_id)
    .bind(ids)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// The ids of every record of the person whose NIK (as written, any separators) hashes to
/// the same keyed hash, in any batch of any office, locked when `lock`.
pub async fn records_of(
    conn: &mut PgConnection,
    ring: &Keyring,
    nik: &str,
    lock: bool,
) -> sqlx::Result<(Vec<u8>, Vec<i64>)> {
    let hash = ring
        .nik_hash(nik)
        .ok_or_else(|| sqlx::Error::from(KeyError::Config("the NIK has no digits".into())))?;
    let ids = sqlx::query_scalar(&format!(
        "SELECT r.id FROM {RECORD_AND_DATA}
         WHERE d.nik_hash = $1 ORDER BY r.id {}",
        if lock { "FOR UPDATE OF r" } else { "" }
    ))
    .bind(&hash)
    .fetch_all(conn)
    .await?;
    Ok((hash, ids))
}

/// A batch whose retention has passed: no record in flight, and its last change older than its
/// programme's retention period (`default_days` when the programme has none).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Expired {
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub closed_at: chrono::DateTime<chrono::Utc>,
    pub retention_days: i32,
    pub records: i64,
}

/// Batches past their retention whose personal fields are not erased yet.
pub async fn expired_batches(pool: &PgPool, default_days: i32) -> sqlx::Result<Vec<Expired>> {
    sqlx::query_as(
        "SELECT b.id AS batch_id, b.office, b.program, b.period, s.closed_at,
                COALESCE(p.days, $1) AS retention_days, s.records
         FROM batches b
         LEFT JOIN retention_policies p ON p.program = b.program
         JOIN LATERAL (
             SELECT max(t.last_change) AS closed_at, sum(t.records)::bigint AS records,
                    bool_or(t.records > 0 AND t.state IN (
                        'received', 'account_requested', 'account_opened', 'awaiting_approval',
                        'verified', 'transfer_requested')) AS in_flight
             FROM batch_totals t WHERE t.batch_id = b.id
         ) s ON true
         WHERE b.personal_erased_at IS NULL AND s.records > 0 AND NOT s.in_flight
           AND s.closed_at < now() - make_interval(days => COALESCE(p.days, $1))
         ORDER BY s.closed_at",
    )
    .bind(default_days)
    .fetch_all(pool)
    .await
}

/// Erases the personal fields of one expired batch, in chunks of `chunk` records (each its own
/// transaction), then marks the batch and logs it. A record that came back in flight (replayed
/// meanwhile) stops the batch: it is no longer closed.
pub async fn erase_batch(
    pool: &PgPool,
    batch_id: Uuid,
    actor: &str,
    chunk: i64,
) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT r.id FROM {RECORD_AND_DATA}
             WHERE r.batch_id = $1 AND d.erased_at IS NULL
             ORDER BY r.id LIMIT $2 FOR UPDATE OF r"
        ))
        .bind(batch_id)
        .bind(chunk)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            sqlx::query("UPDATE batches SET personal_erased_at = now() WHERE id = $1")
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
            log(
                &mut tx,
                "retention",
                actor,
                None,
                Some(batch_id),
                &[],
                serde_json::json!({ "records": total }),
            )
            .await?;
            tx.commit().await?;
            return Ok(total);
        }
        let in_flight: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM records WHERE batch_id = $1 AND state IN
                 ('received', 'account_requested', 'account_opened', 'awaiting_approval',
                  'verified', 'transfer_requested'))",
        )
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
        anyhow::ensure!(
            !in_flight,
            "batch {batch_id} has records in flight again; it is not closed"
        );
        total += erase(&mut tx, &ids).await?;
        tx.commit().await?;
    }
}

/// Sets a programme's retention period (days after its batches close).
pub async fn set_retention(pool: &PgPool, program: &str, days: i32) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO retention_policies (program, days) VALUES ($1, $2)
         ON CONFLICT (program) DO UPDATE SET days = $2, updated_at = now()",
    )
    .bind(program)
    .bind(days)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a person's data export shows of a record besides its values.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportDetail {
    pub id: i64,
    pub office: String,
    pub reasons: serde_json::Value,
    /// Masked forms kept after an erasure.
    pub masked: Option<serde_json::Value>,
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Every state change: `[{at, from, to, reasons, detail}]`, oldest first.
    pub history: serde_json::Value,
}

/// The [`ExportDetail`] of each of `ids`.
pub async fn export_details(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<ExportDetail>> {
    sqlx::query_as(
        "SELECT r.id, b.office, r.reasons, r.masked, r.erased_at,
                COALESCE((SELECT jsonb_agg(jsonb_build_object('at', e.at, 'from', e.from_state,
                              'to', e.to_state, 'reasons', e.reasons, 'detail', e.detail)
                              ORDER BY e.id)
                          FROM record_events_of(r.id) e), '[]') AS history
         FROM records_all r JOIN batches b ON b.id = r.batch_id WHERE r.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}
