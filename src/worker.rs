//! `salur worker`: the stage consumers, the bank-answer consumer and the outbox relay, on one
//! connection, reconnecting when RabbitMQ goes away. Shutdown: stop consuming, finish the chunks
//! in flight, flush the relay, exit.

use crate::broker::{Broker, Outgoing, Publisher, names, topology};
use crate::config::Settings;
use crate::messages::{self, PoisonMessage, Stage};
use crate::metrics::Metrics;
use crate::stages::{Input, ProcessError, Tally, process_one};
use anyhow::Context as _;
use futures::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub stages: Vec<Stage>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            stages: Stage::ALL.to_vec(),
        }
    }
}

struct Ctx {
    settings: Settings,
    pool: PgPool,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

/// Runs until `cancel` fires. Connection losses are retried; only a configuration problem ends
/// it early with an error.
pub async fn run(
    settings: Settings,
    pool: PgPool,
    opts: WorkerOptions,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let ctx = Arc::new(Ctx {
        settings: settings.clone(),
        pool,
        metrics,
        wake: Arc::new(Notify::new()),
    });
    let mut inputs: Vec<Input> = opts.stages.iter().map(|s| Input::Stage(*s)).collect();
    if opts
        .stages
        .iter()
        .any(|s| matches!(s, Stage::AccountOpening | Stage::Transfer))
    {
        inputs.push(Input::BankReplies);
    }
    let mut backoff = Duration::from_millis(200);
    loop {
        let broker = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = Broker::connect_with_retry(&settings, Duration::from_secs(3600)) => b?,
        };
        topology::declare(&broker).await?;
        tracing::info!(stages = ?opts.stages, "worker connected");
        match run_connected(&ctx, &broker, &inputs, &cancel).await {
            Ok(()) => {
                broker.close().await;
                tracing::info!("worker stopped");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "worker lost its connection; reconnecting"
                );
                broker.close().await;
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One connection's life: consumers and relay until cancel (Ok) or a failure (Err).
async fn run_connected(
    ctx: &Arc<Ctx>,
    broker: &Broker,
    inputs: &[Input],
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let consumers_stop = cancel.child_token();
    let relay_stop = CancellationToken::new();
    let failed = CancellationToken::new();
    let mut consumers = tokio::task::JoinSet::new();
    for &input in inputs {
        let (channel, consumer) = broker
            .consume(
                &input.queue(),
                &format!("salur-{}-{}", input.label(), std::process::id()),
            )
            .await?;
        let poison_publisher = broker.publisher().await?;
        let ctx = ctx.clone();
        let stop = consumers_stop.clone();
        let failed = failed.clone();
        consumers.spawn(async move {
            let r = consume(ctx, input, channel, consumer, poison_publisher, stop).await;
            if r.is_err() {
                failed.cancel();
            }
            r
        });
    }
    let relay = tokio::spawn(crate::relay::run(
        ctx.pool.clone(),
        broker.publisher().await?,
        ctx.metrics.clone(),
        ctx.wake.clone(),
        relay_stop.clone(),
    ));
    tokio::pin!(relay);
    let mut relay_result = None;
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = failed.cancelled() => {}
        r = &mut relay => { relay_result = Some(r); }
    }
    consumers_stop.cancel();
    let mut first_error: Option<anyhow::Error> = None;
    while let Some(r) = consumers.join_next().await {
        if let Err(e) = r.context("consumer task panicked").and_then(|r| r) {
            first_error.get_or_insert(e);
        }
    }
    relay_stop.cancel();
    let relay_result = match relay_result {
        Some(r) => r,
        None => relay.await,
    };
    if let Err(e) = relay_result.context("relay task panicked").and_then(|r| r) {
        first_error.get_or_insert(e.context("outbox relay"));
    }
    match first_error {
        Some(e) => Err(e),
        None if cancel.is_cancelled() => Ok(()),
        None => Err(anyhow::anyhow!("relay stopped")),
    }
}

async fn consume(
    ctx: Arc<Ctx>,
    input: Input,
    channel: lapin::Channel,
    mut consumer: lapin::Consumer,
    poison_publisher: Publisher,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // The bank-answer consumer carries two messages per chunk (the account and the transfer
    // answers) where each stage carries one: it gets twice the chunks in flight, or it is the
    // queue that backs up (measured with `salur bench`).
    let concurrency = match input {
        Input::BankReplies => ctx.settings.concurrency * 2,
        Input::Stage(_) => ctx.settings.concurrency,
    };
    let permits = Arc::new(Semaphore::new(concurrency));
    let tracker = TaskTracker::new();
    let poison_publisher = Arc::new(poison_publisher);
    let result = loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            d = consumer.next() => d,
        };
        let delivery = match next {
            None => {
                break Err(anyhow::anyhow!(
                    "{} consumer was closed by the broker",
                    input.label()
                ));
            }
            Some(Err(e)) => {
                break Err(anyhow::Error::new(e).context(format!("{} consumer", input.label())));
            }
            Some(Ok(d)) => d,
        };
        let permit = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let ctx = ctx.clone();
        let publisher = poison_publisher.clone();
        tracker.spawn(async move {
            handle_delivery(&ctx, input, delivery, &publisher).await;
            drop(permit);
        });
    };
    tracker.close();
    tracker.wait().await;
    // Unacknowledged prefetched messages go back to the queue.
    let close = channel.close(200, "shutdown".into());
    let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    result
}

#[tracing::instrument(skip_all, fields(input = input.label(), delivery = delivery.delivery_tag))]
async fn handle_delivery(
    ctx: &Ctx,
    input: Input,
    delivery: Delivery,
    poison_publisher: &Publisher,
) {
    let started = Instant::now();
    let outcome = process_one(&ctx.settings, &ctx.pool, input, &delivery.data).await;
    ctx.metrics
        .stage_duration
        .with_label_values(&[input.label()])
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(tally) => {
            record(&ctx.metrics, &tally);
            ctx.wake.notify_one();
            if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "ack failed; the message will be redelivered and skipped");
            }
        }
        Err(ProcessError::Poison(p)) => {
            let queue = ctx.settings.name(&input.queue());
            tracing::warn!(reason = %p, %queue, "parking an unreadable message on salur.dead");
            let parked = Outgoing {
                exchange: ctx.settings.name(names::PARKED),
                routing_key: "dead".into(),
                payload: serde_json::to_vec(&PoisonMessage {
                    v: messages::VERSION,
                    queue: queue.clone(),
                    reason: p.0.clone(),
                    raw: String::from_utf8_lossy(&delivery.data).into_owned(),
                })
                .expect("serializes"),
            };
            match poison_publisher.publish_one(parked).await {
                Ok(()) => {
                    ctx.metrics.poison.with_label_values(&[input.label()]).inc();
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not park the message; it goes back to its queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await;
                }
            }
        }
        Err(ProcessError::Database(e)) => {
            tracing::warn!(error = %e, "database error; the message goes back to its queue");
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await;
        }
    }
}

fn record(m: &Metrics, t: &Tally) {
    for ((stage, outcome), n) in &t.outcomes {
        m.records
            .with_label_values(&[stage.as_str(), outcome])
            .inc_by(*n);
    }
    for ((stage, reason), n) in &t.reasons {
        m.reasons
            .with_label_values(&[stage.as_str(), reason.as_str()])
            .inc_by(*n);
    }
    for (program, amount) in &t.disbursed {
        use rust_decimal::prelude::ToPrimitive as _;
        m.disbursed_idr
            .with_label_values(&[program])
            .inc_by(amount.to_f64().unwrap_or(0.0));
    }
}
