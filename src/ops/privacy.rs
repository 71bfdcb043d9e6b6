//! Personal data, as UU PDP (Law 27/2022) asks: data keys and their rotation, retention after a
//! batch is closed, and a person's access and erasure requests. The SQL is in
//! [`crate::store::personal`]; the cipher in [`crate::store::sealed`].

use crate::store::personal::{self, Reseal};
use crate::store::sealed::{self, KeySource, Keyring, keyring};
use crate::store::{RecordRow, locks, records};
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

/// Records re-sealed or erased per transaction.
const CHUNK: i64 = 1000;

/// The advisory lock key that lets one worker at a time run retention.
const RETENTION_LOCK: i64 = 7450219;

/// `salur keys rotate`: adds a data key (to the key file; with `SALUR_DATA_KEYS` the operator
/// adds it to every process's environment first and passes `no_new_key`), waits for running
/// processes to read it, re-seals every value under it in chunks while the pipeline runs, and
/// retires the old keys. Returns `(new key, values re-sealed, retired keys)`.
pub async fn rotate(
    pool: &PgPool,
    no_new_key: bool,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u16, u64, Vec<i32>)> {
    let source = KeySource::from_env();
    if !no_new_key {
        let Some(path) = source.file() else {
            anyhow::bail!(
                "the keys come from SALUR_DATA_KEYS, which salur cannot change: add a new key \
                 `<next id>:<base64 of 32 bytes>` (`salur keys generate` prints one) to every \
                 process's SALUR_DATA_KEYS, restart them, then run `salur keys rotate --no-new-key`"
            );
        };
        let ring = keyring()?.with_new_key();
        sealed::replace_key_file(path, &ring)?;
        sealed::load(&source, false)?;
        // Register the new key before anything is sealed with it.
        sealed::check(&mut *pool.acquire().await?).await?;
        // Running workers re-read the key file every 2 s; give them time to encrypt with the
        // new key before the pass starts (a value sealed with the old key afterwards is taken
        // by the next round of the pass).
        tokio::time::sleep(Duration::from_secs(3)).await;
    } else {
        sealed::check(&mut *pool.acquire().await?).await?;
    }
    let current = keyring()?.current();
    let n = personal::reseal_all(pool, Reseal::ToCurrentKey, CHUNK, &mut progress).await?;
    let retired = personal::retire_keys_except(pool, current).await?;
    Ok((current, n, retired))
}

/// `salur keys status`: the keys in the ring, those the database knows, and how many values
/// each key seals.
pub async fn key_status(pool: &PgPool) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let ring = keyring()?;
    let mut s = String::new();
    writeln!(
        s,
        "key ring: {} (keys {:?}; key {} encrypts)",
        ring.source,
        ring.ids(),
        ring.current()
    )?;
    for (id, created, retired) in personal::registered_keys(pool).await? {
        let what = if id == sealed::HASH_KEY_ID {
            "hash".to_owned()
        } else {
            format!("key {id}")
        };
        match retired {
            Some(r) => writeln!(
                s,
                "  {what}: added {created}, retired {r} (may be removed from the key ring)"
            )?,
            None => writeln!(s, "  {what}: added {created}, in use")?,
        }
    }
    for (key, n) in personal::values_per_key(pool).await? {
        match key {
            Some(k) => writeln!(s, "  values sealed with key {k}: {n}")?,
            None => writeln!(s, "  values still in clear: {n} (run `salur migrate`)")?,
        }
    }
    for (key, n) in personal::messages_per_key(pool).await? {
        match key {
            Some(k) => writeln!(s, "  bank requests in the outbox sealed with key {k}: {n}")?,
            None => writeln!(s, "  bank requests in the outbox in clear: {n}")?,
        }
    }
    Ok(s)
}

/// What `salur retention apply` did (or, with `dry_run`, would do).
#[derive(Debug, Serialize)]
pub struct RetentionRun {
    pub dry_run: bool,
    pub default_days: i32,
    pub batches: Vec<personal::Expired>,
    pub records_erased: u64,
}

/// Erases the personal fields of every batch past its programme's retention period.
pub async fn apply_retention(
    pool: &PgPool,
    default_days: i32,
    dry_run: bool,
    actor: &str,
) -> anyhow::Result<RetentionRun> {
    let batches = personal::expired_batches(pool, default_days).await?;
    let mut records_erased = 0;
    if !dry_run {
        for b in &batches {
            records_erased += personal::erase_batch(pool, b.batch_id, actor, CHUNK).await?;
        }
    }
    Ok(RetentionRun {
        dry_run,
        default_days,
        batches,
        records_erased,
    })
}

/// Sets a programme's retention period.
pub async fn set_retention(pool: &PgPool, program: &str, days: i32) -> anyhow::Result<()> {
    anyhow::ensure!(days > 0, "a retention period is at least one day");
    personal::set_retention(pool, program, days).await?;
    Ok(())
}

/// The daily retention run of a worker: one worker at a time (an advisory lock), failures
/// logged and tried again the next day.
pub async fn retention_loop(
    pool: PgPool,
    default_days: i32,
    cancel: tokio_util::sync::CancellationToken,
) {
    // First run a minute after start, then daily.
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = Duration::from_secs(24 * 3600);
        let run = async {
            let mut lock = pool.acquire().await?;
            let got = locks::try_lock(&mut lock, RETENTION_LOCK).await?;
            if !got {
                return Ok(None);
            }
            let r = apply_retention(&pool, default_days, false, "worker").await;
            let _ = locks::unlock(&mut lock, RETENTION_LOCK).await;
            r.map(Some)
        };
        match run.await {
            Ok(Some(r)) if r.records_erased > 0 => tracing::info!(
                batches = r.batches.len(),
                records = r.records_erased,
                "retention: erased the personal fields of closed batches past their period"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "retention run failed; trying tomorrow"
                )
            }
        }
    }
}

/// Everything salur holds about one person, decrypted (an access request).
#[derive(Debug, Serialize)]
pub struct PersonData {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub records: Vec<PersonRecord>,
    /// Set when the records' personal fields were erased after the export (`--erase`).
    pub erased: bool,
}

#[derive(Debug, Serialize)]
pub struct PersonRecord {
    pub record_id: i64,
    pub batch_id: uuid::Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub row: i32,
    pub state: String,
    /// The values the office sent (decrypted).
    pub submitted: crate::domain::RawRecord,
    pub bank_account: Option<String>,
    pub bank_account_name: Option<String>,
    pub bank_reference: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<rust_decimal::Decimal>,
    pub reasons: serde_json::Value,
    /// Masked forms kept after an erasure (retention), when the values are gone.
    pub masked: Option<serde_json::Value>,
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Every state change: `{at, from, to, reasons, detail}`.
    pub history: Vec<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    #[error("no record holds this NIK")]
    NotFound,
    #[error(
        "records {0:?} of this person are being paid (in flight): an erasure waits until they are \
         disbursed, failed, rejected or parked"
    )]
    InFlight(Vec<i64>),
}

/// `salur person-data export --nik NIK [--erase]`: every record of this NIK (by its keyed hash,
/// in every batch of every office), decrypted, with its history; logged with `actor` in
/// `personal_data_log`. With `erase`, the personal fields are then erased (refused while a
/// payment is in flight), in the same transaction as the log line.
pub async fn person_data(
    pool: &PgPool,
    nik: &str,
    actor: &str,
    erase: bool,
) -> anyhow::Result<PersonData> {
    let ring: std::sync::Arc<Keyring> = keyring()?;
    let mut tx = pool.begin().await?;
    let (hash, ids) = personal::records_of(&mut tx, &ring, nik, erase).await?;
    if ids.is_empty() {
        return Err(PersonError::NotFound.into());
    }
    let rows: Vec<RecordRow> = records::read_scoped(&mut tx, &ids, None).await?;
    let mut extra: std::collections::HashMap<i64, personal::ExportDetail> =
        personal::export_details(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
    let records: Vec<PersonRecord> = rows
        .into_iter()
        .map(|r| {
            let e = extra.remove(&r.id).expect("read together");
            PersonRecord {
                record_id: r.id,
                batch_id: r.batch_id,
                office: e.office,
                program: r.program.clone(),
                period: r.period.clone(),
                row: r.row_number,
                state: r.state.clone(),
                submitted: r.raw.clone(),
                bank_account: r.bank_account.clone(),
                bank_account_name: r.bank_account_name.clone(),
                bank_reference: r.bank_reference.clone(),
                amount: r.amount,
                reasons: e.reasons,
                masked: e.masked,
                erased_at: e.erased_at,
                history: e.history.as_array().cloned().unwrap_or_default(),
            }
        })
        .collect();
    personal::log(
        &mut tx,
        "export",
        actor,
        Some(&hash),
        None,
        &ids,
        serde_json::json!({}),
    )
    .await?;
    if erase {
        let in_flight: Vec<i64> = records
            .iter()
            .filter(|r| {
                crate::store::State::parse(&r.state).is_some_and(crate::store::State::in_flight)
            })
            .map(|r| r.record_id)
            .collect();
        if !in_flight.is_empty() {
            return Err(PersonError::InFlight(in_flight).into());
        }
        let n = personal::erase(&mut tx, &ids).await?;
        personal::log(
            &mut tx,
            "erase",
            actor,
            Some(&hash),
            None,
            &ids,
            serde_json::json!({ "records": n, "why": "erasure request" }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(PersonData {
        generated_at: chrono::Utc::now(),
        records,
        erased: erase,
    })
}
