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
    sqlx::query(
        "INSERT INTO batches (id, office, program, period, file_name, record_count)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(batch_id)
    .bind(&info.office)
    .bind(&info.program)
    .bind(&info.period)
    .bind(file_name)
    .bind(rows.len() as i32)
    .execute(&mut *tx)
    .await?;
    const SLICE: usize = 20_000;
    for slice in rows.chunks(SLICE) {
        let amounts: Vec<_> = slice
            .iter()
            .map(|r| {
                r.amount
                    .as_deref()
                    .and_then(|a| Amount::parse(a).ok())
                    .map(|a| a.value())
            })
            .collect();
        let ids = records::insert_received(&mut tx, batch_id, slice, &amounts).await?;
        let messages: Vec<_> = ids
            .chunks(settings.chunk_size)
            .map(|chunk| stage_message(settings, Stage::AccountOpening, batch_id, chunk.to_vec()))
            .collect();
        outbox::insert(&mut tx, &messages).await?;
    }
    tx.commit().await?;
    tracing::info!(%batch_id, records = rows.len(), office = %info.office, "batch stored");
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
