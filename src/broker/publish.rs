//! Publishing with publisher confirms, `mandatory` set and returns checked: a message is only
//! "sent" when the broker has confirmed it *and* routed it to at least one queue.

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};

/// The header carrying how many times a message's handling failed (set on messages sent to a
/// retry tier by a consumer whose handler failed; absent means 0).
pub const ATTEMPT_HEADER: &str = "x-salur-attempt";

/// The header carrying, on a bank answer sent to a retry tier by salur, the bank user that
/// published it (RabbitMQ lets salur's own user set no other `user_id` than its own). Trusted
/// only on a message whose `user_id` is salur's own user: a bank cannot publish as that user.
pub const SENDER_HEADER: &str = "x-salur-sender";

/// The user that published a delivered message: its `user_id` (which RabbitMQ validates), or,
/// on a message salur's own user (`own_user`) sent again through a retry tier, the sender it
/// noted in [`SENDER_HEADER`].
pub fn sender_of<'a>(properties: &'a BasicProperties, own_user: &str) -> Option<&'a str> {
    let user = properties.user_id().as_ref().map(|u| u.as_str())?;
    if user != own_user {
        return Some(user);
    }
    match properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(SENDER_HEADER))
    {
        Some(AMQPValue::LongString(s)) => std::str::from_utf8(s.as_bytes()).ok(),
        _ => Some(user),
    }
}

/// The attempt count a delivered message carries.
pub fn attempt_of(properties: &BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER).cloned())
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            AMQPValue::ShortShortUInt(n) => Some(u32::from(n)),
            _ => None,
        })
        .unwrap_or(0)
}

/// A message to publish: exchange and routing key as they are on the broker (namespaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker refused a message to {exchange} with routing key {routing_key} (nack)")]
    Nacked {
        exchange: String,
        routing_key: String,
    },
    #[error(
        "no queue is bound for {exchange} with routing key {routing_key}: the message was returned \
         (run `salur topology`; for a bank, is its code known?)"
    )]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("publishing failed: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker confirmed nothing in [`CONFIRM_TIMEOUT`]: the connection is taken for lost
    /// (the message stays in the outbox, or its delivery goes back to its queue, and is sent
    /// again after the reconnection).
    #[error(
        "the broker did not confirm a message to {exchange} with routing key {routing_key} within \
         {} s",
        CONFIRM_TIMEOUT.as_secs()
    )]
    NoConfirm {
        exchange: String,
        routing_key: String,
    },
}

/// How long a publisher waits for the broker's confirm of a message. A confirm that never comes
/// (the connection went away while the message was in flight) would otherwise hold the relay or
/// a consumer, and with it the worker's reconnection, for ever.
pub const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A channel in confirm mode.
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    pub async fn new(channel: Channel) -> anyhow::Result<Self> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel })
    }

    /// Publishes every message as persistent and mandatory, then waits for all confirms (the
    /// window is the whole slice, not one at a time). Ok only if every message was acked and
    /// routed.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<(), PublishError> {
        self.publish_with(messages, None, None).await
    }

    /// Publishes one message carrying its attempt count in [`ATTEMPT_HEADER`] and, for a bank
    /// answer, its original sender in [`SENDER_HEADER`] (with `user_id` set to `own_user`, the
    /// user this publisher connected as).
    pub async fn publish_attempt(
        &self,
        message: &Outgoing,
        attempt: u32,
        sender: Option<(&str, &str)>,
    ) -> Result<(), PublishError> {
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
        if let Some((sender, _)) = sender {
            headers.insert(
                SENDER_HEADER.into(),
                AMQPValue::LongString(sender.as_bytes().to_vec().into()),
            );
        }
        self.publish_with(
            std::slice::from_ref(message),
            Some(headers),
            sender.map(|(_, own)| own),
        )
        .await
    }

    async fn publish_with(
        &self,
        messages: &[Outgoing],
        headers: Option<FieldTable>,
        user_id: Option<&str>,
    ) -> Result<(), PublishError> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = self
                .channel
                .basic_publish(
                    m.exchange.as_str().into(),
                    m.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &m.payload,
                    {
                        let mut p = BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into());
                        if let Some(u) = user_id {
                            p = p.with_user_id(u.into());
                        }
                        match &headers {
                            Some(h) => p.with_headers(h.clone()),
                            None => p,
                        }
                    },
                )
                .await?;
            pending.push((m, confirm));
        }
        let mut first_error = None;
        for (m, confirm) in pending {
            let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
                .await
                .map_err(|_| PublishError::NoConfirm {
                    exchange: m.exchange.clone(),
                    routing_key: m.routing_key.clone(),
                })??;
            let outcome = match confirmed {
                Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
                Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable {
                    exchange: m.exchange.clone(),
                    routing_key: m.routing_key.clone(),
                }),
                Confirmation::Nack(_) => Err(PublishError::Nacked {
                    exchange: m.exchange.clone(),
                    routing_key: m.routing_key.clone(),
                }),
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes every message with `user_id` set to `user`, which must be the user this
    /// publisher's connection authenticated as: RabbitMQ closes the channel otherwise. A bank
    /// answers this way, so that salur knows which bank answered.
    pub async fn publish_all_as(
        &self,
        messages: &[Outgoing],
        user: &str,
    ) -> Result<(), PublishError> {
        self.publish_with(messages, None, Some(user)).await
    }

    pub async fn publish_one(&self, message: Outgoing) -> Result<(), PublishError> {
        self.publish_all(std::slice::from_ref(&message)).await
    }
}
