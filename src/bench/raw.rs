//! The raw baseline: the least work that moves the same records through the same number of
//! durable queue hops with one database transaction per hop, and nothing else. A chunk of ids
//! is loaded with `COPY`, then passes [`HOPS`] quorum queues; at each hop a consumer updates
//! the chunk's rows guarded by their state (`UPDATE … WHERE id = ANY($1) AND state = $2`),
//! commits, publishes the chunk to the next hop (persistent, mandatory, confirmed) and acks.
//! It has no outbox, no audit rows, no validation, no bank and no JSON beyond the id list: what
//! salur adds on top of this is the cost of its guarantees and its domain.

use crate::broker::{Broker, Outgoing, Publisher};
use crate::config::Settings;
use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// Queue hops of one record through salur: account opening, bank (open), bank replies,
/// verification, transfer, bank (transfer), bank replies. Each is followed by one transaction.
pub const HOPS: usize = 7;

#[derive(Debug, Clone, Serialize)]
pub struct RawRun {
    pub recipients: u32,
    pub chunk_size: usize,
    pub hops: usize,
    pub end_to_end_seconds: f64,
    pub end_to_end_records_per_second: f64,
    /// PostgreSQL's CPU per record, µs (see [`super::SalurRun::db_cpu_us_per_record`]).
    pub db_cpu_us_per_record: Option<f64>,
}

fn queue(settings: &Settings, hop: usize) -> String {
    settings.name(&format!("raw.hop{hop}"))
}

/// Deletes the baseline's queues (best effort).
pub async fn delete_queues(broker: &Broker) {
    if let Ok(ch) = broker.channel().await {
        for hop in 0..HOPS {
            let _ = ch
                .queue_delete(
                    queue(&broker.settings, hop).as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await;
        }
        let _ = ch.close(200, "ok".into()).await;
    }
}

/// Runs `n` records through the hops on the benchmark's (fresh) database.
pub async fn run(settings: &Settings, n: u32) -> anyhow::Result<RawRun> {
    let pool = crate::store::connect(settings).await?;
    sqlx::query(
        "CREATE TABLE raw_bench (id bigint PRIMARY KEY, state int NOT NULL, amount numeric(18, 2))",
    )
    .execute(&pool)
    .await?;
    let broker = Broker::connect(settings).await?;
    delete_queues(&broker).await;
    let ch = broker.channel().await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    for hop in 0..HOPS {
        ch.queue_declare(
            queue(settings, hop).as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args.clone(),
        )
        .await?;
    }
    let _ = ch.close(200, "ok".into()).await;

    let done = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let mut consumers = tokio::task::JoinSet::new();
    for hop in 0..HOPS {
        let (channel, consumer) = broker
            .consume(&format!("raw.hop{hop}"), &format!("raw-{hop}"))
            .await?;
        let publisher = Arc::new(broker.publisher().await?);
        let ctx = Hop {
            settings: settings.clone(),
            pool: pool.clone(),
            hop,
            publisher,
            done: done.clone(),
            finished: finished.clone(),
            total: u64::from(n),
        };
        let stop = stop.clone();
        consumers.spawn(async move { ctx.consume(channel, consumer, stop).await });
    }

    let started = Instant::now();
    let db_cpu_before = super::postgres_cpu_seconds();
    // Intake: the rows in one transaction, then the first hop's work.
    let mut tx = pool.begin().await?;
    let mut copy = tx
        .copy_in_raw("COPY raw_bench (id, state, amount) FROM STDIN")
        .await?;
    let mut buf = String::with_capacity(n as usize * 16);
    for id in 1..=n {
        use std::fmt::Write as _;
        let _ = writeln!(buf, "{id}\t0\t600000.00");
    }
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    tx.commit().await?;
    let ids: Vec<i64> = (1..=i64::from(n)).collect();
    let first: Vec<Outgoing> = ids
        .chunks(settings.chunk_size)
        .map(|chunk| Outgoing {
            exchange: String::new(),
            routing_key: queue(settings, 0),
            payload: serde_json::to_vec(chunk).expect("ids serialize"),
        })
        .collect();
    let publisher = broker.publisher().await?;
    for window in first.chunks(500) {
        publisher.publish_all(window).await?;
    }

    let limit = Duration::from_secs(120 + u64::from(n) / 200);
    let waited = tokio::time::timeout(limit, async {
        while done.load(Ordering::SeqCst) < u64::from(n) {
            tokio::select! {
                _ = finished.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let db_cpu = super::postgres_cpu_seconds()
        .zip(db_cpu_before)
        .map(|(after, before)| (after - before) * 1e6 / f64::from(n));
    stop.cancel();
    while let Some(r) = consumers.join_next().await {
        r??;
    }
    delete_queues(&broker).await;
    broker.close().await;
    anyhow::ensure!(
        waited.is_ok(),
        "raw baseline: only {} of {n} records through after {limit:?}",
        done.load(Ordering::SeqCst)
    );
    let (through,): (i64,) = sqlx::query_as("SELECT count(*) FROM raw_bench WHERE state = $1")
        .bind(HOPS as i32)
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        through == i64::from(n),
        "raw baseline: {through} of {n} rows went through every hop"
    );
    pool.close().await;
    Ok(RawRun {
        recipients: n,
        chunk_size: settings.chunk_size,
        hops: HOPS,
        end_to_end_seconds: elapsed,
        end_to_end_records_per_second: f64::from(n) / elapsed,
        db_cpu_us_per_record: db_cpu,
    })
}

#[derive(Clone)]
struct Hop {
    settings: Settings,
    pool: PgPool,
    hop: usize,
    publisher: Arc<Publisher>,
    done: Arc<AtomicU64>,
    finished: Arc<Notify>,
    total: u64,
}

impl Hop {
    async fn consume(
        self,
        channel: lapin::Channel,
        mut consumer: lapin::Consumer,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let delivery = tokio::select! {
                _ = stop.cancelled() => break,
                d = consumer.next() => match d {
                    Some(d) => d?,
                    None => break,
                },
            };
            let permit = permits.clone().acquire_owned().await?;
            let ctx = self.clone();
            tasks.spawn(async move {
                let r = ctx.step(&delivery.data).await;
                if r.is_ok() {
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                }
                drop(permit);
                r
            });
            while let Some(r) = tasks.try_join_next() {
                r??;
            }
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let _ = channel.close(200, "ok".into()).await;
        Ok(())
    }

    async fn step(&self, body: &[u8]) -> anyhow::Result<()> {
        let ids: Vec<i64> = serde_json::from_slice(body)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE raw_bench SET state = $2 WHERE id = ANY($1) AND state = $2 - 1")
            .bind(&ids)
            .bind(self.hop as i32 + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.hop + 1 < HOPS {
            self.publisher
                .publish_one(Outgoing {
                    exchange: String::new(),
                    routing_key: queue(&self.settings, self.hop + 1),
                    payload: body.to_vec(),
                })
                .await?;
        } else if self.done.fetch_add(ids.len() as u64, Ordering::SeqCst) + ids.len() as u64
            >= self.total
        {
            self.finished.notify_one();
        }
        Ok(())
    }
}
