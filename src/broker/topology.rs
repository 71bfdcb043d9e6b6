//! The topology in `queues/topology.json` (RabbitMQ's definitions format, importable with
//! `rabbitmqctl import_definitions`), declared idempotently, in the configured namespace.

use super::Broker;
use anyhow::Context as _;
use lapin::ExchangeKind;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The definitions file, compiled into the binary.
pub const DEFINITIONS: &str = include_str!("../../queues/topology.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Definitions {
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub durable: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub durable: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BindingDef {
    pub source: String,
    pub destination: String,
    pub routing_key: String,
}

pub fn definitions() -> Definitions {
    serde_json::from_str(DEFINITIONS).expect("queues/topology.json is valid (checked by tests)")
}

/// Queues of the retry delay tiers are named `salur.retry.<tier>`.
const RETRY_QUEUE_PREFIX: &str = "salur.retry.";

/// The definitions with the retry tiers of `settings` (`SALUR_RETRY_TIERS`) instead of the
/// file's default ones: one queue per tier, its TTL the tier's delay, arguments as the file's.
pub fn definitions_for(settings: &crate::config::Settings) -> Definitions {
    let mut defs = definitions();
    let template = defs
        .queues
        .iter()
        .find(|q| q.name.starts_with(RETRY_QUEUE_PREFIX))
        .cloned()
        .expect("queues/topology.json has retry tier queues");
    let exchange = defs
        .bindings
        .iter()
        .find(|b| b.destination.starts_with(RETRY_QUEUE_PREFIX))
        .map(|b| b.source.clone())
        .expect("retry tier queues are bound");
    defs.queues
        .retain(|q| !q.name.starts_with(RETRY_QUEUE_PREFIX));
    defs.bindings
        .retain(|b| !b.destination.starts_with(RETRY_QUEUE_PREFIX));
    for tier in &settings.retry_tiers {
        let mut q = template.clone();
        q.name = format!("{RETRY_QUEUE_PREFIX}{}", tier.name);
        q.arguments.insert(
            "x-message-ttl".into(),
            serde_json::Value::from(tier.delay.as_millis() as u64),
        );
        defs.bindings.push(BindingDef {
            source: exchange.clone(),
            destination: q.name.clone(),
            routing_key: format!("{}.*", tier.name),
        });
        defs.queues.push(q);
    }
    defs
}

/// Arguments whose value names an exchange, and so takes the namespace too.
const NAMED_ARGUMENTS: &[&str] = &["x-dead-letter-exchange"];

fn arguments(
    broker: &Broker,
    args: &BTreeMap<String, serde_json::Value>,
) -> anyhow::Result<FieldTable> {
    let mut table = FieldTable::default();
    for (k, v) in args {
        let value = match v {
            serde_json::Value::String(s) if NAMED_ARGUMENTS.contains(&k.as_str()) => {
                AMQPValue::LongString(LongString::from(broker.settings.name(s)))
            }
            serde_json::Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
            serde_json::Value::Number(n) => AMQPValue::LongLongInt(
                n.as_i64()
                    .with_context(|| format!("argument {k} must be an integer"))?,
            ),
            serde_json::Value::Bool(b) => AMQPValue::Boolean(*b),
            other => anyhow::bail!("argument {k} has an unsupported value {other}"),
        };
        table.insert(k.as_str().into(), value);
    }
    Ok(table)
}

/// Declares every exchange, queue and binding. Safe to run any number of times, by any number
/// of processes.
pub async fn declare(broker: &Broker) -> anyhow::Result<()> {
    let defs = definitions_for(&broker.settings);
    let ch = broker.channel().await?;
    for e in &defs.exchanges {
        let kind = match e.kind.as_str() {
            "topic" => ExchangeKind::Topic,
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            other => anyhow::bail!("exchange {} has unsupported type {other}", e.name),
        };
        let name = broker.settings.name(&e.name);
        ch.exchange_declare(
            name.as_str().into(),
            kind,
            ExchangeDeclareOptions {
                durable: e.durable,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declaring exchange {name}"))?;
    }
    for q in &defs.queues {
        let name = broker.settings.name(&q.name);
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: q.durable,
                ..Default::default()
            },
            arguments(broker, &q.arguments)?,
        )
        .await
        .with_context(|| {
            format!("declaring queue {name} (if it exists with other arguments, delete it first)")
        })?;
    }
    for b in &defs.bindings {
        ch.queue_bind(
            broker.settings.name(&b.destination).as_str().into(),
            broker.settings.name(&b.source).as_str().into(),
            b.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("binding {} to {}", b.destination, b.source))?;
    }
    let _ = ch.close(200, "ok".into()).await;
    Ok(())
}

/// Deletes every queue and exchange of the namespace (tests clean up with this).
pub async fn delete(broker: &Broker) -> anyhow::Result<()> {
    let defs = definitions_for(&broker.settings);
    let ch = broker.channel().await?;
    for q in &defs.queues {
        ch.queue_delete(
            broker.settings.name(&q.name).as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await?;
    }
    for e in &defs.exchanges {
        ch.exchange_delete(
            broker.settings.name(&e.name).as_str().into(),
            Default::default(),
        )
        .await?;
    }
    let _ = ch.close(200, "ok".into()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_tiers_come_from_the_settings() {
        let mut settings = crate::config::Settings::default();
        let defaults = definitions_for(&settings);
        let file = definitions();
        assert_eq!(defaults.queues.len(), file.queues.len());
        settings.retry_tiers = crate::config::RetryTier::parse_list("1s,3s").unwrap();
        let defs = definitions_for(&settings);
        let retry: Vec<_> = defs
            .queues
            .iter()
            .filter(|q| q.name.starts_with(RETRY_QUEUE_PREFIX))
            .map(|q| (q.name.as_str(), q.arguments["x-message-ttl"].as_u64()))
            .collect();
        assert_eq!(
            retry,
            [
                ("salur.retry.1s", Some(1000)),
                ("salur.retry.3s", Some(3000))
            ]
        );
        assert!(
            defs.bindings
                .iter()
                .any(|b| b.destination == "salur.retry.3s" && b.routing_key == "3s.*")
        );
        assert!(
            !defs
                .bindings
                .iter()
                .any(|b| b.destination == "salur.retry.5s")
        );
    }

    #[test]
    fn definitions_parse_and_every_queue_is_quorum() {
        let defs = definitions();
        assert!(defs.queues.len() >= 10);
        for q in &defs.queues {
            assert!(q.durable, "{} must be durable", q.name);
            assert_eq!(
                q.arguments.get("x-queue-type").and_then(|v| v.as_str()),
                Some("quorum"),
                "{} must be a quorum queue",
                q.name
            );
        }
        for b in &defs.bindings {
            assert!(
                defs.exchanges.iter().any(|e| e.name == b.source),
                "{}",
                b.source
            );
            assert!(
                defs.queues.iter().any(|q| q.name == b.destination),
                "{}",
                b.destination
            );
        }
    }
}
