//! Publishing with publisher confirms, `mandatory` set and returns checked: a message is only
//! "sent" when the broker has confirmed it *and* routed it to at least one queue.

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel};

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
}

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
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into()),
                )
                .await?;
            pending.push((m, confirm));
        }
        let mut first_error = None;
        for (m, confirm) in pending {
            let outcome = match confirm.await? {
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

    pub async fn publish_one(&self, message: Outgoing) -> Result<(), PublishError> {
        self.publish_all(std::slice::from_ref(&message)).await
    }
}
