//! The outbox relay: publishes what stage transactions wrote to `outbox`, with publisher
//! confirms, and deletes it only once confirmed and routed. A crash between publish and delete
//! publishes again (at-least-once); every consumer is idempotent.

use crate::broker::Publisher;
use crate::metrics::Metrics;
use crate::store::outbox;
use crate::store::sealed::{KeyError, keyring};
use backon::{BackoffBuilder as _, ExponentialBuilder, Retryable as _};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Messages published per transaction (and per confirm window).
pub const BATCH: i64 = 500;

/// Publishes one batch from the outbox, bank requests opened just before (see
/// [`outbox`]'s "Personal data"). Returns how many rows it took.
///
/// A payload that does not open (altered, or moved to another row) is never published: it is
/// logged and dropped, and the sweeper sends its records' request again after the bank timeout,
/// from the records. One sealed with a key this process does not have stays in the outbox and
/// the batch ends with [`KeyError::Missing`] (after publishing the others), which [`run`] waits
/// out like a database outage until the key is added back.
pub async fn flush_once(
    pool: &PgPool,
    publisher: &Publisher,
    metrics: Option<&Metrics>,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    // This transaction only deletes what the broker has confirmed. If a crash loses the delete
    // (the commit is not waited for), the messages are published again: at-least-once, which
    // every consumer handles. Not waiting saves a WAL flush per batch on the relay's path.
    crate::store::pipeline::commit_without_waiting(&mut tx).await?;
    let rows = outbox::take(&mut tx, BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let taken = rows.len();
    let ring = if rows.iter().any(|(_, m)| outbox::is_sealed(&m.payload)) {
        Some(keyring()?)
    } else {
        None
    };
    let mut ids = Vec::with_capacity(taken);
    let mut messages = Vec::with_capacity(taken);
    let mut missing = None;
    for (id, m) in rows {
        let opened = match &ring {
            Some(ring) => outbox::open(ring, id, m),
            None => Ok(m),
        };
        match opened {
            Ok(m) => {
                ids.push(id);
                messages.push(m);
            }
            Err(e @ KeyError::Missing(_)) => {
                missing.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(
                    outbox_id = id,
                    error = %e,
                    "an outbox message does not open: dropped, not published (the sweeper sends \
                     its records' request again after the bank timeout)"
                );
                ids.push(id);
            }
        }
    }
    if !messages.is_empty() {
        publisher.publish_all(&messages).await?;
    }
    outbox::delete(&mut tx, &ids).await?;
    tx.commit().await?;
    if let Some(m) = metrics {
        for msg in &messages {
            m.published.with_label_values(&[&msg.exchange]).inc();
        }
    }
    if let Some(e) = missing {
        return Err(e.into());
    }
    Ok(taken)
}

/// Publishes until the outbox is empty.
pub async fn drain(
    pool: &PgPool,
    publisher: &Publisher,
    metrics: Option<&Metrics>,
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = flush_once(pool, publisher, metrics).await?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Runs until `cancel`, woken by `wake` (this process committed something), by PostgreSQL
/// notifications (another process did), or every second. Drains once more before returning.
/// A database outage is waited out (jittered backoff); a broker failure ends the relay with an
/// error (the worker reconnects and starts a new one). A message the broker refused (nack, e.g.
/// a full queue) is tried again a few times with jittered backoff first.
pub async fn run(
    pool: PgPool,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut listener = None;
    let mut db_backoff = backoff();
    loop {
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let drained = (|| drain(&pool, &publisher, Some(&metrics)))
            .retry(
                ExponentialBuilder::default()
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_times(3),
            )
            .when(|e| {
                matches!(
                    e.downcast_ref::<crate::broker::PublishError>(),
                    Some(crate::broker::PublishError::Nacked { .. })
                )
            })
            .await;
        match drained {
            Ok(_) => db_backoff = backoff(),
            Err(e) if e.downcast_ref::<sqlx::Error>().is_some() => {
                let wait = db_backoff.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, ?wait, "outbox relay cannot reach the database; waiting");
                listener = None;
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            Err(e) if e.downcast_ref::<KeyError>().is_some() => {
                let wait = db_backoff.next().unwrap_or(Duration::from_secs(5));
                tracing::error!(
                    error = %e,
                    ?wait,
                    "outbox relay cannot open a message: add the data key back to the key ring \
                     (`salur keys status`); waiting"
                );
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            Err(e) => return Err(e),
        }
        // The backlog gauges are read by the worker's gauge refresher (crate::metrics).
        if cancel.is_cancelled() {
            return Ok(());
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = wake.notified() => {}
            n = notified => {
                if n.is_err() {
                    listener = None;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build()
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen("salur_outbox").await.ok()?;
    Some(l)
}
