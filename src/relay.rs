//! The outbox relay: publishes what stage transactions wrote to `outbox`, with publisher
//! confirms, and deletes it only once confirmed and routed. A crash between publish and delete
//! publishes again (at-least-once); every consumer is idempotent.

use crate::broker::{Outgoing, Publisher};
use crate::metrics::Metrics;
use crate::store::outbox;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Messages published per transaction (and per confirm window).
pub const BATCH: i64 = 500;

/// Publishes one batch from the outbox. Returns how many were published.
pub async fn flush_once(
    pool: &PgPool,
    publisher: &Publisher,
    metrics: Option<&Metrics>,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    // This transaction only deletes what the broker has confirmed. If a crash loses the delete
    // (the commit is not waited for), the messages are published again: at-least-once, which
    // every consumer handles. Not waiting saves a WAL flush per batch on the relay's path.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let rows = outbox::take(&mut tx, BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (ids, messages): (Vec<i64>, Vec<Outgoing>) = rows.into_iter().unzip();
    publisher.publish_all(&messages).await?;
    outbox::delete(&mut tx, &ids).await?;
    tx.commit().await?;
    if let Some(m) = metrics {
        for msg in &messages {
            m.published.with_label_values(&[&msg.exchange]).inc();
        }
    }
    Ok(messages.len())
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
pub async fn run(
    pool: PgPool,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen("salur_outbox").await?;
    loop {
        drain(&pool, &publisher, Some(&metrics)).await?;
        let mut conn = pool.acquire().await?;
        metrics
            .outbox_backlog
            .set(outbox::backlog(&mut conn).await.unwrap_or(0));
        drop(conn);
        if cancel.is_cancelled() {
            return Ok(());
        }
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = wake.notified() => {}
            n = listener.recv() => { n?; }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
