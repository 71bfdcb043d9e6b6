//! Submitting a batch: the file is read whole or refused whole; the batch, its records (state
//! `received`, one audit row each) and the account-opening work are stored in one transaction,
//! then published by the relay.

use crate::broker::Broker;
use crate::config::Settings;
use crate::domain::Amount;
use crate::intake::{self, RawRecord};
use crate::messages::Stage;
use crate::stages::stage_message;
use crate::store::{outbox, records};
use sqlx::{PgConnection, PgPool};
use std::path::Path;
use uuid::Uuid;

/// Who submits what.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    /// The submitting office (Dinas Sosial), e.g. `DINSOS-5371`.
    pub office: String,
    /// Programme, e.g. `BPNT` or `PKH`.
    pub program: String,
    /// Period, e.g. `2026-Q4` or `2026-11`.
    pub period: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Intake(#[from] intake::IntakeError),
    #[error("{field} {value:?} is not valid: {rule}")]
    Invalid {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("storing the batch failed (nothing was stored): {0}")]
    Database(#[from] sqlx::Error),
}

fn check(
    field: &'static str,
    value: &str,
    ok: bool,
    rule: &'static str,
) -> Result<(), SubmitError> {
    if ok {
        Ok(())
    } else {
        Err(SubmitError::Invalid {
            field,
            value: value.to_owned(),
            rule,
        })
    }
}

impl BatchInfo {
    pub fn validate(&self) -> Result<(), SubmitError> {
        let code_like = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        check(
            "office",
            &self.office,
            code_like(&self.office, 64),
            "use letters, digits, '-', '_' or '.', at most 64 characters (e.g. DINSOS-5371)",
        )?;
        check(
            "program",
            &self.program,
            code_like(&self.program, 16) && !self.program.contains('.'),
            "use letters, digits, '-' or '_', at most 16 characters (e.g. BPNT, PKH)",
        )?;
        check(
            "period",
            &self.period,
            code_like(&self.period, 32),
            "use letters, digits, '-', '_' or '.', at most 32 characters (e.g. 2026-Q4, 2026-11)",
        )
    }
}

/// Reads and submits a file. Nothing is stored if the file is refused.
pub async fn submit_file(
    settings: &Settings,
    pool: &PgPool,
    path: &Path,
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    let rows = intake::parse_file(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    submit_records(settings, pool, &name, &rows, info).await
}

/// Stores a batch and its account-opening work in one transaction.
pub async fn submit_records(
    settings: &Settings,
    pool: &PgPool,
    file_name: &str,
    rows: &[RawRecord],
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    let batch_id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    insert_batch(&mut tx, batch_id, file_name, info).await?;
    const SLICE: usize = 20_000;
    for slice in rows.chunks(SLICE) {
        insert_rows(settings, &mut tx, batch_id, slice).await?;
    }
    finish_batch(&mut tx, batch_id, rows.len() as u64).await?;
    tx.commit().await?;
    tracing::info!(%batch_id, records = rows.len(), office = %info.office, "batch stored");
    Ok(batch_id)
}

/// The batch row, inside the caller's transaction, with no records yet (see [`insert_rows`]
/// and [`finish_batch`]): a caller that streams a file stores its rows as they come.
pub async fn insert_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    file_name: &str,
    info: &BatchInfo,
) -> Result<(), SubmitError> {
    info.validate()?;
    sqlx::query(
        "INSERT INTO batches (id, office, program, period, file_name, record_count)
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(batch_id)
    .bind(&info.office)
    .bind(&info.program)
    .bind(&info.period)
    .bind(file_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records (state `received`, one audit row each) and their account-opening work, in the
/// caller's transaction.
pub async fn insert_rows(
    settings: &Settings,
    conn: &mut PgConnection,
    batch_id: Uuid,
    rows: &[RawRecord],
) -> Result<(), sqlx::Error> {
    let amounts: Vec<_> = rows
        .iter()
        .map(|r| {
            r.amount
                .as_deref()
                .and_then(|a| Amount::parse(a).ok())
                .map(|a| a.value())
        })
        .collect();
    let ids = records::insert_received(&mut *conn, batch_id, rows, &amounts).await?;
    let messages: Vec<_> = ids
        .chunks(settings.chunk_size)
        .map(|chunk| stage_message(settings, Stage::AccountOpening, batch_id, chunk.to_vec()))
        .collect();
    outbox::insert(conn, &messages).await?;
    Ok(())
}

/// Sets the batch's record count once every row is stored.
pub async fn finish_batch(
    conn: &mut PgConnection,
    batch_id: Uuid,
    records: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE batches SET record_count = $2 WHERE id = $1")
        .bind(batch_id)
        .bind(i32::try_from(records).unwrap_or(i32::MAX))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records handed from the reading thread to the storing task at a time.
pub const STREAM_CHUNK: usize = 5_000;

/// Where a reading thread puts the records it parsed; see [`insert_streamed`].
pub struct RowSink {
    out: tokio::sync::mpsc::Sender<Vec<RawRecord>>,
}

impl RowSink {
    /// Hands a chunk to the storing task, waiting while it is busy (the channel holds two
    /// chunks, so memory stays flat). `false` when the storing side has stopped (it failed and
    /// says why): the reader should stop too.
    pub fn send(&mut self, chunk: Vec<RawRecord>) -> bool {
        chunk.is_empty() || self.out.blocking_send(chunk).is_ok()
    }
}

/// Stores the records `produce` reads on a blocking thread (a file, a request body) into the
/// batch, inside the caller's transaction, as they come. Returns what `produce` returned and the
/// number of records stored; a database failure wins over whatever the reader says.
pub async fn insert_streamed<T, E, F>(
    settings: &Settings,
    conn: &mut PgConnection,
    batch_id: Uuid,
    produce: F,
) -> Result<(Result<T, E>, u64), sqlx::Error>
where
    F: FnOnce(RowSink) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let (out, mut rows) = tokio::sync::mpsc::channel::<Vec<RawRecord>>(2);
    let producer = tokio::task::spawn_blocking(move || produce(RowSink { out }));
    let mut stored = 0u64;
    let mut failure = None;
    while let Some(chunk) = rows.recv().await {
        if let Err(e) = insert_rows(settings, &mut *conn, batch_id, &chunk).await {
            failure = Some(e);
            break;
        }
        stored += chunk.len() as u64;
    }
    drop(rows);
    let produced = producer.await;
    if let Some(e) = failure {
        return Err(e);
    }
    match produced {
        Ok(result) => Ok((result, stored)),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Sends the records of an intake stream to `sink` in chunks; stops at the first error.
pub fn send_records<R: std::io::Read>(
    records: intake::file::RecordStream<R>,
    sink: &mut RowSink,
) -> Result<(), intake::IntakeError> {
    let mut chunk = Vec::with_capacity(STREAM_CHUNK);
    for record in records {
        chunk.push(record?);
        if chunk.len() == STREAM_CHUNK
            && !sink.send(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(STREAM_CHUNK),
            ))
        {
            return Ok(());
        }
    }
    sink.send(chunk);
    Ok(())
}

/// Reads a batch file (CSV or JSON) from `reader` and stores it as it streams: parsing and
/// inserting run side by side in one transaction, memory stays flat whatever the size of a
/// CSV file, and nothing is stored if the file is refused, even at its last line.
pub async fn submit_reader(
    settings: &Settings,
    pool: &PgPool,
    file_name: &str,
    reader: impl std::io::Read + Send + 'static,
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    let batch_id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    insert_batch(&mut tx, batch_id, file_name, info).await?;
    let name = file_name.to_owned();
    let (read, records) = insert_streamed(settings, &mut tx, batch_id, move |mut sink| {
        send_records(intake::parse_reader(&name, reader)?, &mut sink)
    })
    .await?;
    read?;
    finish_batch(&mut tx, batch_id, records).await?;
    tx.commit().await?;
    tracing::info!(%batch_id, records, office = %info.office, "batch stored");
    Ok(batch_id)
}

/// Publishes what is waiting in the outbox now, so that a batch is on its way even before a
/// worker's relay picks it up. Failure is not an error: any worker's relay will publish it.
pub async fn publish_now(settings: &Settings, pool: &PgPool) {
    let result = async {
        let broker = Broker::connect(settings).await?;
        crate::broker::topology::declare(&broker).await?;
        let publisher = broker.publisher().await?;
        let n = crate::relay::drain(pool, &publisher, None).await?;
        broker.close().await;
        anyhow::Ok(n)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            error = format!("{e:#}"),
            "the batch is stored; a worker will enqueue it"
        );
    }
}
