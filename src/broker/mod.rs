//! The only module that speaks AMQP: connecting, declaring the topology, publishing with
//! confirms and consuming with manual acks. Everything else sees [`Broker`], [`Publisher`] and
//! [`Outgoing`].

mod publish;
pub mod topology;

pub use publish::{
    ATTEMPT_HEADER, Outgoing, PublishError, Publisher, SENDER_HEADER, attempt_of, sender_of,
};

use crate::config::{Settings, redact_url};
use anyhow::Context as _;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};

/// Base names of the exchanges and queues in `queues/topology.json`. Use
/// [`Settings::name`] to get the name in the configured namespace.
pub mod names {
    pub const WORK: &str = "salur.work";
    pub const RETRY: &str = "salur.retry";
    pub const BANK: &str = "salur.bank";
    pub const BANK_REPLIES: &str = "salur.bank.replies";
    pub const PARKED: &str = "salur.parked";
    pub const BLOCKED_QUEUE: &str = "salur.blocked";
    pub const DEAD_QUEUE: &str = "salur.dead";

    /// The queue a stage consumes.
    pub fn stage_queue(stage: &str) -> String {
        format!("salur.stage.{stage}")
    }

    /// The queue holding one bank's requests, consumed by that bank's integration.
    pub fn bank_queue(bank_code: &str) -> String {
        format!("salur.bank.{bank_code}")
    }
}

/// What a passive declare says of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages ready for delivery.
    pub ready: u32,
    /// Consumers subscribed to it, of every connection.
    pub consumers: u32,
}

/// An open connection to RabbitMQ, and the settings that name things in it.
pub struct Broker {
    pub conn: Connection,
    pub settings: Settings,
}

impl Broker {
    /// Connects once, to the first node of `AMQP_URL` that answers, starting at a random one so
    /// that several workers spread over a cluster. The error says where and how to start
    /// RabbitMQ.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let addresses = crate::config::amqp_addresses(&settings.amqp_url);
        anyhow::ensure!(
            !addresses.is_empty(),
            "AMQP_URL is empty: set it to amqp://user:password@host:5672/vhost"
        );
        let start = rand::random_range(0..addresses.len());
        let mut failures = Vec::new();
        for i in 0..addresses.len() {
            let address = &addresses[(start + i) % addresses.len()];
            match connect_to(address).await {
                Ok(conn) => {
                    if addresses.len() > 1 {
                        tracing::info!(node = %redact_url(address), "connected to RabbitMQ");
                    }
                    return Ok(Self {
                        conn,
                        settings: settings.clone(),
                    });
                }
                Err(e) => failures.push(e),
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0));
        }
        Err(anyhow::anyhow!(
            "no RabbitMQ node of AMQP_URL answered: {}",
            failures
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }

    /// Connects, retrying with jittered exponential backoff for up to about `max_wait`.
    pub async fn connect_with_retry(
        settings: &Settings,
        max_wait: std::time::Duration,
    ) -> anyhow::Result<Self> {
        use backon::{ExponentialBuilder, Retryable};
        (|| Self::connect(settings))
            .retry(
                ExponentialBuilder::default()
                    .with_jitter()
                    .with_min_delay(std::time::Duration::from_millis(200))
                    .with_max_delay(std::time::Duration::from_secs(5))
                    .with_total_delay(Some(max_wait))
                    .without_max_times(),
            )
            .notify(|e, after| tracing::warn!(error = %e, ?after, "RabbitMQ not reachable yet, retrying"))
            .await
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        self.conn
            .create_channel()
            .await
            .context("cannot open a RabbitMQ channel")
    }

    /// A channel in confirm mode, for publishing.
    pub async fn publisher(&self) -> anyhow::Result<Publisher> {
        Publisher::new(self.channel().await?).await
    }

    /// A consumer on `queue` (a base name) with manual acks and the configured prefetch.
    pub async fn consume(&self, queue: &str, tag: &str) -> anyhow::Result<(Channel, Consumer)> {
        let ch = self.channel().await?;
        ch.basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await
            .context("basic.qos")?;
        let name = self.settings.name(queue);
        let consumer = ch
            .basic_consume(
                name.as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| {
                format!("cannot consume from queue {name}: run `salur topology` first")
            })?;
        Ok((ch, consumer))
    }

    /// Messages ready on a queue (a base name), by passive declare.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.queue_counts(queue).await?.ready)
    }

    /// Messages ready on a queue (a base name) and the consumers RabbitMQ counts on it, by
    /// passive declare.
    pub async fn queue_counts(&self, queue: &str) -> anyhow::Result<QueueCounts> {
        let ch = self.channel().await?;
        let q = ch
            .queue_declare(
                self.settings.name(queue).as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = ch.close(200, "ok".into()).await;
        Ok(QueueCounts {
            ready: q.message_count(),
            consumers: q.consumer_count(),
        })
    }

    /// Takes every message ready on `queue` (a base name) without acknowledging it. The caller
    /// acks each one it removes; closing the returned channel puts the others back.
    pub async fn take_all(
        &self,
        queue: &str,
    ) -> anyhow::Result<(Channel, Vec<lapin::message::Delivery>)> {
        let ch = self.channel().await?;
        let name = self.settings.name(queue);
        let mut taken = Vec::new();
        while let Some(m) = ch
            .basic_get(
                name.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: false },
            )
            .await
            .with_context(|| format!("reading queue {name}"))?
        {
            taken.push(m.delivery);
        }
        Ok((ch, taken))
    }

    /// Removes every message ready on `queue` (a base name) and returns them: each `basic.get`
    /// with `no_ack` takes its message off the queue in the same step, so nothing can come
    /// back. (Acknowledging later is not safe on a quorum queue: RabbitMQ 3.10 holds back a
    /// channel's settlements beyond 32 in flight and drops them when the channel closes, so the
    /// acknowledged messages return.) A message the caller wants to keep, it publishes again.
    pub async fn remove_all(&self, queue: &str) -> anyhow::Result<Vec<lapin::message::Delivery>> {
        let ch = self.channel().await?;
        let name = self.settings.name(queue);
        let mut removed = Vec::new();
        while let Some(m) = ch
            .basic_get(
                name.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .with_context(|| format!("reading queue {name}"))?
        {
            removed.push(m.delivery);
        }
        let _ = ch.close(200, "removed".into()).await;
        Ok(removed)
    }

    /// Closes the connection; gives up waiting for the broker's answer after 5 s.
    pub async fn close(&self) {
        let close = self.conn.close(200, "bye".into());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), close).await;
    }
}

/// One address, with a 15 s limit.
async fn connect_to(address: &str) -> anyhow::Result<Connection> {
    let connect = Connection::connect(address, ConnectionProperties::default());
    tokio::time::timeout(std::time::Duration::from_secs(15), connect)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "RabbitMQ at {} did not answer within 15 s: is it starting or overloaded?",
                redact_url(address)
            )
        })?
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach RabbitMQ at {} ({e}): start it with `rabbitmq-server -detached` \
                 (or `scripts/services.sh`, or `scripts/cluster.sh up` for a cluster), or set AMQP_URL",
                redact_url(address)
            )
        })
}
