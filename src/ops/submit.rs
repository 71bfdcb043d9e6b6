//! Submitting a batch: the file is read whole or refused whole; the batch, its records (state
//! `received`, one audit row each) and the account-opening work are stored in one transaction,
//! then published by the relay.

use crate::broker::Broker;
use crate::config::Settings;
use crate::domain::{Actor, RawRecord};
use crate::intake;
use crate::messages::Stage;
use crate::stages::stage_message;
use crate::store::{batches, outbox, records};
use sqlx::PgPool;
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
    /// The person submitting, named on the records' first audit rows (`None`: the system,
    /// e.g. the benchmark).
    pub submitted_by: Option<Actor>,
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
    #[error(
        "programme {program:?} is not known: submit for one of {} (an admin adds programmes with `salur programme add`)",
        if known.is_empty() { "the programmes, once an admin has added one".to_owned() } else { known.join(", ") }
    )]
    UnknownProgramme { program: String, known: Vec<String> },
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

/// Refuses a batch for a programme that is not on file (`salur programme list`), with the
/// programmes that are.
pub async fn check_programme(
    conn: &mut sqlx::PgConnection,
    program: &str,
) -> Result<(), SubmitError> {
    if crate::store::programmes::get(&mut *conn, program)
        .await?
        .is_some()
    {
        return Ok(());
    }
    Err(SubmitError::UnknownProgramme {
        program: program.to_owned(),
        known: crate::store::programmes::codes(conn).await?,
    })
}

/// Reads and submits a file, streaming it (see [`submit_reader`]). Nothing is stored if the
/// file is refused.
pub async fn submit_file(
    settings: &Settings,
    pool: &PgPool,
    path: &Path,
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    check_programme(&mut *pool.acquire().await?, &info.program).await?;
    let label = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| intake::IntakeError::Io {
        file: label.clone(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    submit_stream(settings, pool, &label, &name, file, info).await
}

/// Records stored per statement (and parsed ahead of the database by at most two of these).
pub const SLICE: usize = 10_000;

/// Reads a batch (CSV or JSON, see [`intake::parse_reader`]) from a stream and stores it with its
/// account-opening work in one transaction, without holding the file in memory: a blocking
/// thread parses slices of records while the previous slice is written with `COPY`. A row that
/// refuses the file (with its line, column and fix), even the last, rolls everything back:
/// nothing of the batch is stored.
pub async fn submit_reader<R: std::io::Read + Send + 'static>(
    settings: &Settings,
    pool: &PgPool,
    file_name: &str,
    reader: R,
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    submit_stream(settings, pool, file_name, file_name, reader, info).await
}

/// `label` names the file in errors (a path), `file_name` is stored with the batch.
async fn submit_stream<R: std::io::Read + Send + 'static>(
    settings: &Settings,
    pool: &PgPool,
    label: &str,
    file_name: &str,
    reader: R,
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    let (tx_slices, mut slices) =
        tokio::sync::mpsc::channel::<Result<Vec<RawRecord>, intake::IntakeError>>(2);
    let label_owned = label.to_owned();
    let parser = tokio::task::spawn_blocking(move || {
        let stream = match intake::parse_reader(&label_owned, reader) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx_slices.blocking_send(Err(e));
                return;
            }
        };
        let mut slice = Vec::with_capacity(SLICE);
        for row in stream {
            match row {
                Ok(r) => {
                    slice.push(r);
                    if slice.len() == SLICE {
                        let full = std::mem::replace(&mut slice, Vec::with_capacity(SLICE));
                        if tx_slices.blocking_send(Ok(full)).is_err() {
                            return; // the writer gave up
                        }
                    }
                }
                Err(e) => {
                    let _ = tx_slices.blocking_send(Err(e));
                    return;
                }
            }
        }
        if !slice.is_empty() {
            let _ = tx_slices.blocking_send(Ok(slice));
        }
    });

    let batch_id = Uuid::new_v4();
    let mut writer = BatchWriter::begin(settings, pool, batch_id, file_name, info).await?;
    let mut failure = None;
    while let Some(slice) = slices.recv().await {
        match slice {
            Ok(rows) => {
                if let Err(e) = writer.write(rows).await {
                    failure = Some(e);
                    break;
                }
            }
            Err(e) => {
                failure = Some(SubmitError::Intake(e));
                break;
            }
        }
    }
    drop(slices);
    let _ = parser.await;
    if let Some(e) = failure {
        return Err(e); // the transaction rolls back when dropped
    }
    let stored = writer.finish().await?;
    tracing::info!(%batch_id, records = stored, office = %info.office, "batch stored");
    Ok(batch_id)
}

/// Stores a batch already in memory and its account-opening work in one transaction.
pub async fn submit_records(
    settings: &Settings,
    pool: &PgPool,
    file_name: &str,
    rows: &[RawRecord],
    info: &BatchInfo,
) -> Result<Uuid, SubmitError> {
    info.validate()?;
    let batch_id = Uuid::new_v4();
    if rows.is_empty() {
        return Err(SubmitError::Intake(intake::IntakeError::NoDataRows {
            file: file_name.to_owned(),
        }));
    }
    let mut writer = BatchWriter::begin(settings, pool, batch_id, file_name, info).await?;
    for slice in rows.chunks(SLICE) {
        writer.write(slice.to_vec()).await?;
    }
    writer.finish().await?;
    tracing::info!(%batch_id, records = rows.len(), office = %info.office, "batch stored");
    Ok(batch_id)
}

/// One batch being stored: the open transaction and how many records it holds so far. Callers
/// that need more in the batch's transaction (the HTTP API's idempotency key) use
/// [`BatchWriter::begin_in`] and [`BatchWriter::tx`].
///
/// Writing is pipelined: [`BatchWriter::write`] prepares its slice (ids from the sequence on
/// another connection, personal values sealed and `COPY` data built on a blocking thread) while
/// the slice before it is copied, so that PostgreSQL and the preparation work at the same time.
/// The slices before the last copy their office data (`record_data`) on a second connection, in
/// a transaction that commits just before the batch's, while the batch's transaction copies the
/// rest: two PostgreSQL backends at work (see `migrations/0016_parallel_intake.sql`). The last
/// slice is copied by [`BatchWriter::finish`], all of it in the batch's transaction (a batch of
/// one slice never takes a second connection).
pub struct BatchWriter<'a> {
    settings: &'a Settings,
    pool: &'a PgPool,
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// The office data's transaction, from the first slice copied before the last.
    data_tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    batch_id: Uuid,
    records: usize,
    actor: Option<Actor>,
    /// Ids waiting for a full chunk, per bank request they will make (see [`chunk_key`]).
    pending: std::collections::HashMap<(String, bool), Vec<i64>>,
    /// The slice prepared last, not copied yet.
    ready: Option<Ready>,
}

/// A slice prepared for `COPY`: its records, their ids and chunk keys, in id order (the rows
/// grouped by bank request, see [`BatchWriter::write`]).
struct Ready {
    prepared: records::PreparedRecords,
    ids: Vec<i64>,
    keys: Vec<(String, bool)>,
}

/// Which bank request a record's account opening makes: its bank, and whether it names an
/// account (an inquiry) or not (an opening). Chunks of one key make one bank request each, so
/// a chunk stays whole through the bank and every stage after it (records of mixed banks
/// would split into one small request, answer and next-stage message per bank).
fn chunk_key(r: &RawRecord) -> (String, bool) {
    (
        r.bank_code.as_deref().unwrap_or_default().trim().to_owned(),
        r.account_number.is_some(),
    )
}

impl<'a> BatchWriter<'a> {
    async fn begin(
        settings: &'a Settings,
        pool: &'a PgPool,
        batch_id: Uuid,
        file_name: &str,
        info: &BatchInfo,
    ) -> Result<Self, SubmitError> {
        let tx = pool.begin().await?;
        Self::begin_in(settings, pool, tx, batch_id, file_name, info).await
    }

    /// Starts the batch inside a transaction the caller opened (and may have used already).
    pub async fn begin_in(
        settings: &'a Settings,
        pool: &'a PgPool,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        batch_id: Uuid,
        file_name: &str,
        info: &BatchInfo,
    ) -> Result<Self, SubmitError> {
        info.validate()?;
        check_programme(&mut tx, &info.program).await?;
        records::lock_intake(&mut tx, batch_id).await?;
        batches::insert(
            &mut tx,
            batch_id,
            &info.office,
            &info.program,
            &info.period,
            file_name,
        )
        .await?;
        // Who submitted it: a checker may not approve their own submission.
        if let Some(actor) = &info.submitted_by {
            crate::store::approvals::set_submitter(
                &mut tx,
                batch_id,
                actor.person.as_deref(),
                Some(&actor.token),
            )
            .await?;
        }
        Ok(Self {
            settings,
            pool,
            tx,
            data_tx: None,
            batch_id,
            records: 0,
            actor: info.submitted_by.clone(),
            pending: Default::default(),
            ready: None,
        })
    }

    /// The batch's transaction, for what must commit with it.
    pub fn tx(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Stores records (state `received`, with their audit) and their account-opening messages:
    /// prepares them while the slice written before is copied (see [`BatchWriter`]).
    pub async fn write(&mut self, mut rows: Vec<RawRecord>) -> Result<(), SubmitError> {
        if rows.is_empty() {
            return Ok(());
        }
        // The records of one bank request take consecutive ids (each keeps its row number):
        // a chunk is then one run of ids, stored side by side, so a step touches a few pages
        // of `records` rather than one per record, and its audit row names its ids as a range
        // (`store::records::apply`) instead of putting each into the GIN index. The sort is
        // stable: within a bank request, ids follow the rows.
        rows.sort_by_cached_key(chunk_key);
        self.records += rows.len();
        let (pool, batch_id, actor) = (self.pool, self.batch_id, self.actor.clone());
        let prepare = async move {
            let started = std::time::Instant::now();
            let ids = records::take_ids(&mut *pool.acquire().await?, rows.len()).await?;
            let took_ids = started.elapsed();
            let keys = rows.iter().map(chunk_key).collect();
            let (prepared, ids) = tokio::task::spawn_blocking(move || {
                records::prepare_received(batch_id, &ids, &rows, actor.as_ref()).map(|p| (p, ids))
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            tracing::debug!(
                records = ids.len(),
                ids_ms = took_ids.as_millis() as u64,
                prepare_ms = (started.elapsed() - took_ids).as_millis() as u64,
                "intake slice prepared"
            );
            Ok::<_, SubmitError>(Ready {
                prepared,
                ids,
                keys,
            })
        };
        let previous = self.ready.take();
        if previous.is_some() && self.data_tx.is_none() {
            self.data_tx = Some(pool.begin().await?);
        }
        let store = store_ready(
            &mut self.tx,
            self.data_tx.as_deref_mut(),
            self.settings,
            batch_id,
            &mut self.pending,
            previous,
        );
        let (stored, prepared) = tokio::join!(store, prepare);
        stored?;
        self.ready = Some(prepared?);
        Ok(())
    }

    /// Writes the last slice, the last messages and the record count, and commits.
    pub async fn finish(mut self) -> Result<usize, SubmitError> {
        let last = self.ready.take();
        store_ready(
            &mut self.tx,
            None,
            self.settings,
            self.batch_id,
            &mut self.pending,
            last,
        )
        .await?;
        let mut rest: Vec<Vec<i64>> = self
            .pending
            .drain()
            .map(|(_, ids)| ids)
            .filter(|ids| !ids.is_empty())
            .collect();
        rest.sort();
        let messages: Vec<_> = rest
            .into_iter()
            .map(|ids| stage_message(self.settings, Stage::AccountOpening, self.batch_id, ids))
            .collect();
        outbox::insert(&mut self.tx, &messages).await?;
        batches::set_record_count(&mut self.tx, self.batch_id, self.records as i32).await?;
        if let Some(data_tx) = self.data_tx.take() {
            // The office data first; then the batch, which takes its ranges off the pending list.
            data_tx.commit().await?;
            let stored = async {
                records::intake_stored(&mut self.tx, self.batch_id).await?;
                self.tx.commit().await
            };
            if let Err(e) = stored.await {
                if let Err(cleanup) = records::remove_abandoned_intake(self.pool).await {
                    tracing::warn!(batch_id = %self.batch_id, error = %cleanup,
                        "could not remove the office data of a batch not stored; the sweeper will");
                }
                return Err(e.into());
            }
        } else {
            self.tx.commit().await?;
        }
        // Wake the workers' relays now rather than at their next poll; the batch is stored
        // either way.
        if let Ok(mut conn) = self.pool.acquire().await {
            let _ = outbox::notify(&mut conn).await;
        }
        Ok(self.records)
    }
}

/// Copies a prepared slice, its office data on `data_tx` if given (at the same time) and the
/// rest in the batch's transaction, and writes the account-opening messages of the chunks it
/// fills.
async fn store_ready(
    tx: &mut sqlx::PgConnection,
    data_tx: Option<&mut sqlx::PgConnection>,
    settings: &Settings,
    batch_id: Uuid,
    pending: &mut std::collections::HashMap<(String, bool), Vec<i64>>,
    ready: Option<Ready>,
) -> Result<(), SubmitError> {
    let Some(Ready {
        prepared,
        ids,
        keys,
    }) = ready
    else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    match data_tx {
        Some(data_tx) => {
            let data = async {
                records::intake_pending(&mut *data_tx, batch_id, &ids).await?;
                records::copy_prepared_data(data_tx, &prepared).await
            };
            let (data, rest) = tokio::join!(data, records::copy_prepared(&mut *tx, &prepared));
            data?;
            rest?;
        }
        None => {
            records::copy_prepared_data(&mut *tx, &prepared).await?;
            records::copy_prepared(&mut *tx, &prepared).await?;
        }
    }
    let copied = started.elapsed();
    drop(prepared);
    let size = settings.chunk_size;
    let mut messages = Vec::new();
    for (id, key) in ids.iter().zip(keys) {
        let chunk = pending.entry(key).or_default();
        chunk.push(*id);
        if chunk.len() == size {
            let ids = std::mem::replace(chunk, Vec::with_capacity(size));
            messages.push(stage_message(
                settings,
                Stage::AccountOpening,
                batch_id,
                ids,
            ));
        }
    }
    outbox::insert(tx, &messages).await?;
    tracing::debug!(
        records = ids.len(),
        copy_ms = copied.as_millis() as u64,
        outbox_ms = (started.elapsed() - copied).as_millis() as u64,
        "intake slice copied"
    );
    Ok(())
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
