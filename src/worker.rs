//! `salur worker`: the stage consumers, the bank-answer consumer and the outbox relay, on one
//! connection, reconnecting when RabbitMQ goes away. Shutdown: stop consuming, finish the chunks
//! in flight, flush the relay, exit.

use crate::broker::{Broker, Outgoing, Publisher, attempt_of, names, sender_of, topology};
use crate::config::Settings;
use crate::messages::{self, PoisonMessage, Stage};
use crate::metrics::Metrics;
use crate::stages::{Input, ProcessError, Tally, process_one, via_retry_tier};
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
    let sweeper = tokio::spawn(crate::sweeper::run(
        settings.clone(),
        ctx.pool.clone(),
        ctx.metrics.clone(),
        ctx.wake.clone(),
        cancel.clone(),
    ));
    // The database-derived gauges (crate::metrics), connected or not.
    let refresher = tokio::spawn(crate::metrics::refresh_loop(
        ctx.pool.clone(),
        ctx.metrics.clone(),
        cancel.clone(),
    ));
    let result = supervise(&ctx, &settings, &opts, &inputs, &cancel).await;
    cancel.cancel();
    let _ = sweeper.await;
    let _ = refresher.await;
    result
}

/// Connects, runs, and reconnects after a connection loss, until `cancel`.
async fn supervise(
    ctx: &Arc<Ctx>,
    settings: &Settings,
    opts: &WorkerOptions,
    inputs: &[Input],
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let broker = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = Broker::connect_with_retry(settings, Duration::from_secs(3600)) => b?,
        };
        if let Err(e) = within("declaring the topology", topology::declare(&broker)).await {
            if format!("{e:#}").contains("PRECONDITION_FAILED") {
                broker.close().await;
                return Err(e); // a queue exists with other arguments: a person must act
            }
            // A broker that is still starting (or going away again) refuses declarations.
            tracing::warn!(
                error = format!("{e:#}"),
                "declaring the topology failed; reconnecting"
            );
            broker.close().await;
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            continue;
        }
        tracing::info!(stages = ?opts.stages, "worker connected");
        backoff = Duration::from_millis(200);
        ctx.metrics.broker_connected.set(1);
        let connected = run_connected(ctx, &broker, inputs, cancel).await;
        ctx.metrics.broker_connected.set(0);
        match connected {
            Ok(()) => {
                broker.close().await;
                tracing::info!("worker stopped");
                return Ok(());
            }
            Err(e) => {
                ctx.metrics.broker_reconnects.inc();
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

/// How long setting a connection up may take (declaring the topology, opening a channel or a
/// consumer). RabbitMQ that is still starting may hold such a request without answering (its
/// queues recovering); a worker that waited for ever there would never consume again.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `setup`, failing if it takes longer than [`SETUP_TIMEOUT`] (the connection is then closed
/// and made again).
async fn within<T>(
    what: &str,
    setup: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "{what} took longer than {} s",
                SETUP_TIMEOUT.as_secs()
            ))
        })
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
        let (channel, consumer) = within(
            "opening a consumer",
            broker.consume(
                &input.queue(),
                &format!("salur-{}-{}", input.label(), std::process::id()),
            ),
        )
        .await?;
        let publisher = within("opening a publisher", broker.publisher()).await?;
        let ctx = ctx.clone();
        let stop = consumers_stop.clone();
        let failed = failed.clone();
        consumers.spawn(async move {
            let r = consume(ctx, input, channel, consumer, publisher, stop).await;
            if r.is_err() {
                failed.cancel();
            }
            r
        });
    }
    let relay = tokio::spawn(crate::relay::run(
        ctx.pool.clone(),
        within("opening the relay's publisher", broker.publisher()).await?,
        ctx.metrics.clone(),
        ctx.wake.clone(),
        relay_stop.clone(),
    ));
    tokio::pin!(relay);
    let mut relay_result = None;
    let mut lost = None;
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = failed.cancelled() => {}
        r = &mut relay => { relay_result = Some(r); }
        e = watch(broker, inputs) => { lost = Some(e); }
    }
    consumers_stop.cancel();
    let mut first_error: Option<anyhow::Error> = lost;
    let stopped = tokio::time::timeout(STOP_TIMEOUT, async {
        while let Some(r) = consumers.join_next().await {
            if let Err(e) = r.context("consumer task panicked").and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
    })
    .await;
    if stopped.is_err() {
        // A consumer waiting on a connection that is gone must not keep the worker from
        // making a new one: the messages it holds go back to their queue when this
        // connection closes, and every step is idempotent.
        tracing::warn!(
            "the consumers did not stop within {} s; abandoning them",
            STOP_TIMEOUT.as_secs()
        );
        consumers.abort_all();
        first_error.get_or_insert(anyhow::anyhow!("the consumers did not stop in time"));
    }
    relay_stop.cancel();
    let relay_result = match relay_result {
        Some(r) => r,
        None => match tokio::time::timeout(STOP_TIMEOUT, &mut relay).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    "the outbox relay did not stop within {} s; abandoning it",
                    STOP_TIMEOUT.as_secs()
                );
                relay.abort();
                Ok(Err(anyhow::anyhow!("it did not stop in time")))
            }
        },
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

/// How long a connection's consumers (finishing the chunks in flight) and relay (its last
/// drain) may take to stop, before the worker abandons them and goes on (to reconnect, or to
/// exit). Each database step and broker wait they make is bounded on its own; this bounds what
/// is not.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a connected worker checks its connection (see [`watch`]).
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// Returns (with why) once the connection is no longer open, or once RabbitMQ has counted no
/// consumer on a queue this worker consumes at two checks in a row (a check that gets no
/// answer counts for neither). A consumer can be lost
/// without the client being told: after RabbitMQ was stopped and started mid-batch, a worker
/// was seen connected, consuming nothing, with messages ready on its queues. The worker then
/// makes its connection again.
async fn watch(broker: &Broker, inputs: &[Input]) -> anyhow::Error {
    let mut unconsumed = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if !broker.conn.status().connected() {
            return anyhow::anyhow!("the connection to RabbitMQ is no longer open");
        }
        for input in inputs {
            let queue = input.queue();
            match within("checking a queue's consumers", broker.queue_counts(&queue)).await {
                Ok(counts) if counts.consumers == 0 => {
                    if !unconsumed.insert(queue.clone()) {
                        return anyhow::anyhow!(
                            "RabbitMQ counts no consumer on {} ({} messages ready) at two \
                             checks {} s apart, though this worker consumes it",
                            broker.settings.name(&queue),
                            counts.ready,
                            WATCH_EVERY.as_secs()
                        );
                    }
                }
                Ok(_) => {
                    unconsumed.remove(&queue);
                }
                // No answer is no evidence: a queue without a leader for a while (a cluster
                // node down) must not make every consumer of this connection start over. A
                // connection that is gone is seen above, and by the consumers themselves.
                Err(e) => {
                    tracing::debug!(
                        error = format!("{e:#}"),
                        "a queue's consumers could not be checked"
                    );
                }
            }
        }
    }
}

async fn consume(
    ctx: Arc<Ctx>,
    input: Input,
    channel: lapin::Channel,
    mut consumer: lapin::Consumer,
    publisher: Publisher,
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
    let publisher = Arc::new(publisher);
    let ended = |next: Option<Result<Delivery, lapin::Error>>| match next {
        None => Err(anyhow::anyhow!(
            "{} consumer was closed by the broker",
            input.label()
        )),
        Some(Err(e)) => Err(anyhow::Error::new(e).context(format!("{} consumer", input.label()))),
        Some(Ok(d)) => Ok(d),
    };
    let result = loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            d = consumer.next() => d,
        };
        let delivery = match ended(next) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        let permit = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        // The messages already waiting in the prefetch are handled together, in one
        // transaction (`SALUR_GROUP`); none is waited for. A stream that ends or fails while
        // they are taken ends the loop once the group taken is handed on, as it would here.
        let mut group = vec![delivery];
        let mut failed = None;
        while group.len() < ctx.settings.group {
            use futures::FutureExt as _;
            match consumer.next().now_or_never() {
                None => break,
                Some(next) => match ended(next) {
                    Ok(d) => group.push(d),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                },
            }
        }
        let ctx = ctx.clone();
        let publisher = publisher.clone();
        tracker.spawn(async move {
            handle_group(&ctx, input, group, &publisher).await;
            drop(permit);
        });
        if let Some(e) = failed {
            break Err(e);
        }
    };
    tracker.close();
    tracker.wait().await;
    // Unacknowledged prefetched messages go back to the queue.
    let close = channel.close(200, "shutdown".into());
    let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    result
}

/// Handles the deliveries a consumer took together: several messages in one transaction
/// ([`crate::stages::process_group`]), each then settled as if handled alone; a single one, or
/// a group that could not be handled together (nothing of it written), one by one.
#[tracing::instrument(skip_all, fields(input = input.label(), messages = group.len()))]
async fn handle_group(ctx: &Ctx, input: Input, group: Vec<Delivery>, publisher: &Publisher) {
    use futures::FutureExt as _;
    if group.len() > 1 {
        let started = Instant::now();
        let own_user = crate::bank::users::own_user(&ctx.settings);
        let messages: Vec<(&[u8], Option<&str>)> = group
            .iter()
            .map(|d| (d.data.as_slice(), sender_of(&d.properties, &own_user)))
            .collect();
        let grouped = std::panic::AssertUnwindSafe(crate::stages::process_group(
            &ctx.settings,
            &ctx.pool,
            input,
            &messages,
        ))
        .catch_unwind()
        .await
        .ok()
        .flatten();
        if let Some(tallies) = grouped {
            ctx.metrics
                .messages_per_transaction
                .with_label_values(&[input.label()])
                .observe(group.len() as f64);
            ctx.metrics
                .stage_duration
                .with_label_values(&[input.label()])
                .observe(started.elapsed().as_secs_f64());
            for (delivery, tally) in group.iter().zip(tallies) {
                settle(ctx, input, delivery, tally, publisher).await;
            }
            return;
        }
    }
    for delivery in group {
        ctx.metrics
            .messages_per_transaction
            .with_label_values(&[input.label()])
            .observe(1.0);
        handle_delivery(ctx, input, delivery, publisher).await;
    }
}

#[tracing::instrument(skip_all, fields(input = input.label(), delivery = delivery.delivery_tag, batch_id = tracing::field::Empty))]
async fn handle_delivery(ctx: &Ctx, input: Input, delivery: Delivery, publisher: &Publisher) {
    use futures::FutureExt as _;
    let started = Instant::now();
    // Validated by RabbitMQ against the publishing connection's user.
    let own_user = crate::bank::users::own_user(&ctx.settings);
    let sender = sender_of(&delivery.properties, &own_user);
    let outcome = std::panic::AssertUnwindSafe(process_one(
        &ctx.settings,
        &ctx.pool,
        input,
        &delivery.data,
        sender,
    ))
    .catch_unwind()
    .await
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ProcessError::Poison(crate::stages::Poison(format!(
            "the handler panicked on this message: {what}"
        ))))
    });
    ctx.metrics
        .stage_duration
        .with_label_values(&[input.label()])
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(tally) => {
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "message handled"
            );
            settle(ctx, input, &delivery, tally, publisher).await;
        }
        Err(ProcessError::Poison(p)) => {
            if park(ctx, input, &delivery, &p.0, publisher).await {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            }
        }
        Err(ProcessError::Database(e)) => {
            let attempt = attempt_of(&delivery.properties) + 1;
            let max = match input {
                Input::Stage(stage) => ctx.settings.max_attempts(stage),
                Input::BankReplies => ctx.settings.max_attempts,
            };
            if attempt as i32 >= max {
                let reason = format!(
                    "RETRIES_EXHAUSTED: handling failed {attempt} times; last database error: {e}"
                );
                if park(ctx, input, &delivery, &reason, publisher).await {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
                return;
            }
            let (again, tier) =
                via_retry_tier(&ctx.settings, input, attempt as i32, delivery.data.clone());
            tracing::warn!(error = %e, attempt, tier, "database error; the message is tried again after a delay");
            let sender = match input {
                Input::BankReplies => sender.map(|s| (s, own_user.as_str())),
                Input::Stage(_) => None,
            };
            match publisher.publish_attempt(&again, attempt, sender).await {
                Ok(()) => {
                    ctx.metrics
                        .retries
                        .with_label_values(&[input.label(), tier])
                        .inc();
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
                Err(pe) => {
                    tracing::warn!(error = %pe, "could not send the message to a retry tier; it goes back to its queue");
                    requeue(&delivery).await;
                }
            }
        }
    }
}

/// After a message's transaction committed: its counts to the metrics, the relay woken, its
/// refused items and unknown record ids reported, and the message acknowledged.
async fn settle(ctx: &Ctx, input: Input, delivery: &Delivery, tally: Tally, publisher: &Publisher) {
    tracing::debug!(
        delivery = delivery.delivery_tag,
        outcomes = %tally
            .outcomes
            .iter()
            .map(|((stage, outcome), n)| format!("{stage}.{outcome}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        skipped = tally.skipped,
        "message settled"
    );
    tally.record(&ctx.metrics);
    record_input(&ctx.metrics, input, &tally);
    ctx.wake.notify_one();
    if !tally.refused.is_empty() && !refuse(ctx, &tally, delivery, publisher).await {
        return;
    }
    if !tally.unknown_ids.is_empty() {
        // The known records are handled (committed); the message is kept for an operator
        // because it named records that do not exist.
        let reason = unknown_records_reason(ctx, input, delivery, &tally.unknown_ids).await;
        if !park(ctx, input, delivery, &reason, publisher).await {
            return;
        }
    }
    if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
        tracing::warn!(error = %e, "ack failed; the message will be redelivered and skipped");
    }
}

/// Why a message naming records that do not exist is parked. A stage message whose batch is
/// not in this worker's database either was most likely sent by another salur deployment
/// (another `DATABASE_URL`) on the same vhost and namespace, whose workers and this one take
/// each other's messages: the reason says so, and what to do.
async fn unknown_records_reason(
    ctx: &Ctx,
    input: Input,
    delivery: &Delivery,
    unknown: &[i64],
) -> String {
    let mut reason = format!("the message names record ids that do not exist: {unknown:?}");
    let Input::Stage(_) = input else {
        return reason;
    };
    let Ok(msg) = serde_json::from_slice::<messages::StageMessage>(&delivery.data) else {
        return reason;
    };
    if let Ok(false) = crate::store::batches::visible(&ctx.pool, msg.batch_id, None).await {
        reason.push_str(&format!(
            ", and its batch {} is not in this worker's database either: if another salur \
             deployment (another DATABASE_URL) uses the same RabbitMQ vhost and \
             SALUR_NAMESPACE as this one, each takes the other's messages; give each its own \
             SALUR_NAMESPACE or vhost, and that deployment's sweeper sends its records' work \
             again",
            msg.batch_id
        ));
    }
    reason
}

/// Bank answer items that cannot be trusted: each is logged (bank and record id) and counted,
/// and the answer's refused items are parked on `salur.dead` together. False if parking failed
/// (the answer then goes back to its queue; the items it applied are not applied twice).
async fn refuse(ctx: &Ctx, tally: &Tally, delivery: &Delivery, publisher: &Publisher) -> bool {
    let bank = tally.sender.as_deref().unwrap_or("unknown");
    for r in &tally.refused {
        tracing::warn!(bank, record_id = %r.item_id, reason = r.reason, why = %r.why, "bank answer item refused: it changes nothing");
        ctx.metrics
            .bank_replies_refused
            .with_label_values(&[bank, r.reason])
            .inc();
    }
    let ids: Vec<&str> = tally.refused.iter().map(|r| r.item_id.as_str()).collect();
    // The body keeps only the refused items.
    let body = match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
        Ok(mut v) => {
            if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
                items.retain(|i| i["item_id"].as_str().is_some_and(|id| ids.contains(&id)));
            }
            serde_json::to_vec(&v).expect("serializes")
        }
        Err(_) => delivery.data.clone(),
    };
    let reason = tally
        .refused
        .iter()
        .map(|r| format!("{}: item {}: {}", r.reason, r.item_id, r.why))
        .collect::<Vec<_>>()
        .join("; ");
    park_body(ctx, Input::BankReplies, delivery, &reason, &body, publisher).await
}

/// Parks an unreadable message on `salur.dead` with its body and the reason. False if that
/// failed (the message then goes back to its queue).
async fn park(
    ctx: &Ctx,
    input: Input,
    delivery: &Delivery,
    reason: &str,
    publisher: &Publisher,
) -> bool {
    park_body(ctx, input, delivery, reason, &delivery.data, publisher).await
}

async fn park_body(
    ctx: &Ctx,
    input: Input,
    delivery: &Delivery,
    reason: &str,
    body: &[u8],
    publisher: &Publisher,
) -> bool {
    let queue = ctx.settings.name(&input.queue());
    let logged = redact_quoted(reason);
    tracing::warn!(reason = %logged, %queue, "parking a message on salur.dead");
    let parked = Outgoing {
        exchange: ctx.settings.name(names::PARKED),
        routing_key: "dead".into(),
        payload: serde_json::to_vec(&PoisonMessage {
            v: messages::VERSION,
            queue: queue.clone(),
            reason: if input == Input::BankReplies {
                logged.clone()
            } else {
                reason.to_owned()
            },
            raw: kept_body(input, body),
        })
        .expect("serializes"),
    };
    match publisher.publish_one(parked).await {
        Ok(()) => {
            ctx.metrics.poison.with_label_values(&[input.label()]).inc();
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not park the message; it goes back to its queue");
            requeue(delivery).await;
            false
        }
    }
}

/// Quoted parts of an error message (serde quotes the values it could not read, which may be a
/// name or an account number) replaced by `…`.
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

/// The body kept on `salur.dead`. Salur's own stage messages carry only ids and are kept as
/// they are; a bank's answer may carry account numbers and holders' names, which are masked
/// (or, if it is not JSON, every digit).
fn kept_body(input: Input, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).into_owned();
    if input != Input::BankReplies {
        return text;
    }
    fn mask(v: &mut serde_json::Value) {
        use crate::domain::{mask_digits, mask_words};
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let personal =
                        matches!(k.as_str(), "account_number" | "nik" | "kk" | "reference");
                    let named = matches!(k.as_str(), "account_name" | "name" | "mother_name");
                    match v {
                        serde_json::Value::String(s) if personal => *s = mask_digits(s),
                        serde_json::Value::String(s) if named => *s = mask_words(s),
                        _ => mask(v),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut v) => {
            mask(&mut v);
            v.to_string()
        }
        Err(_) => crate::domain::mask_all_digits(&text),
    }
}

async fn requeue(delivery: &Delivery) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = delivery
        .acker
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await;
}

/// Adds what one consumed message did to the metrics that depend on where it came from.
fn record_input(m: &Metrics, input: Input, t: &Tally) {
    if let Input::Stage(stage) = input {
        // Every record a stage handler took up leaves it with exactly one outcome.
        let entered: u64 = t
            .outcomes
            .iter()
            .filter(|((s, _), _)| *s == stage)
            .map(|(_, n)| n)
            .sum();
        m.entered
            .with_label_values(&[stage.as_str()])
            .inc_by(entered);
    }
    if t.skipped > 0 {
        m.skipped
            .with_label_values(&[input.label()])
            .inc_by(t.skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_leave_error_messages() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "MARIA NDOLU", expected u32 at line 1"#),
            r#"invalid type: string "…", expected u32 at line 1"#
        );
        assert_eq!(
            redact_quoted("value `0123456789` is bad"),
            "value `…` is bad"
        );
        assert_eq!(redact_quoted("unterminated \"53710"), "unterminated \"…");
    }

    #[test]
    fn a_parked_bank_answer_keeps_no_account_or_name_in_clear() {
        let body = br#"{"v":9,"items":[{"item_id":"7","account_number":"0021234567890","account_name":"MARIA GORETI NDOLU"}]}"#;
        let kept = kept_body(Input::BankReplies, body);
        assert!(
            !kept.contains("0021234567890") && !kept.contains("GORETI"),
            "{kept}"
        );
        assert!(kept.contains(r#""item_id":"7""#), "{kept}");
        assert_eq!(
            kept_body(Input::BankReplies, b"acct 0021234567890"),
            "acct *************"
        );
        let stage = br#"{"v":1,"record_ids":[1,2]}"#;
        assert_eq!(
            kept_body(Input::Stage(crate::messages::Stage::Transfer), stage),
            String::from_utf8_lossy(stage)
        );
    }
}
