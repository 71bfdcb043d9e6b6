//! The three stages and the bank-answer handler, all of one shape: take a message, read the
//! records it names that are still in the state the lifecycle says they wait in, decide each
//! record's [`Outcome`], and write the state changes (each guarded by the version of the
//! record it was decided from), audit rows and outgoing messages in one transaction
//! ([`Step`]). The consumer loop ([`crate::worker`]) knows nothing stage-specific;
//! it calls [`process_one`].

pub mod account_opening;
pub mod replies;
pub mod returns;
mod step;
mod tally;
pub mod transfer;
pub mod verification;

pub use step::Step;
use step::{deferring, write_deferred};
pub use tally::{RefusedItem, Tally};

use crate::broker::{Outgoing, names};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode};
use crate::messages::{self, ParkedRecord, Stage, StageMessage};
use crate::store::{Change, RecordRow, State};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a consumer reads: a stage's work, or the banks' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Stage(Stage),
    BankReplies,
}

impl Input {
    /// The queue (base name) this input is consumed from.
    pub fn queue(self) -> String {
        match self {
            Input::Stage(s) => names::stage_queue(s.as_str()),
            Input::BankReplies => names::BANK_REPLIES.to_owned(),
        }
    }

    /// The label used in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Input::Stage(s) => s.as_str(),
            Input::BankReplies => "bank_replies",
        }
    }
}

/// A message that cannot be processed, ever: it is parked on `salur.dead` with its body.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Poison(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("unreadable message: {0}")]
    Poison(#[from] Poison),
    /// The database failed; the message is put back and tried again.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Handles one message in one transaction. Redelivery-safe: records already past the expected
/// state are skipped. A transaction that failed for a passing reason (a serialization failure,
/// a deadlock, a dropped connection) is tried again at once, a few times, with jittered backoff;
/// what still fails is returned for the consumer to send through a retry tier.
///
/// A stage message whose transaction fails for a reason that will not pass (the database
/// refuses what the stage writes for one record) is handled again record by record
/// ([`isolate`]): the others go on, the record at fault is parked `dead` with
/// `RECORD_UNPROCESSABLE` and what the database said.
///
/// `sender` is the AMQP `user_id` of the message (validated by RabbitMQ): for a bank answer,
/// the bank's user.
pub async fn process_one(
    settings: &Settings,
    pool: &PgPool,
    input: Input,
    body: &[u8],
    sender: Option<&str>,
) -> Result<Tally, ProcessError> {
    match process_retrying(settings, pool, input, body, sender).await {
        Err(ProcessError::Database(e)) if !transient(&e) => match input {
            Input::Stage(stage) => {
                let msg = decode_stage(body, stage)?;
                isolate(settings, pool, stage, &msg, &e).await
            }
            Input::BankReplies => Err(e.into()),
        },
        other => other,
    }
}

/// Handles each record of `msg` in its own transaction, after the chunk as a whole failed with
/// `error`; parks the records that fail alone.
async fn isolate(
    settings: &Settings,
    pool: &PgPool,
    stage: Stage,
    msg: &StageMessage,
    error: &sqlx::Error,
) -> Result<Tally, ProcessError> {
    tracing::warn!(
        %error,
        batch_id = %msg.batch_id,
        records = msg.record_ids.len(),
        stage = stage.as_str(),
        "a chunk failed for good; handling its records one by one"
    );
    let mut total = Tally::default();
    for &id in &msg.record_ids {
        let one = json(&StageMessage {
            record_ids: vec![id],
            ..msg.clone()
        });
        let tally = match process_retrying(settings, pool, Input::Stage(stage), &one, None).await {
            Err(ProcessError::Database(e)) if !transient(&e) => {
                park_unprocessable(settings, pool, stage, id, &e).await?
            }
            other => other?,
        };
        total.merge(tally);
    }
    Ok(total)
}

/// Parks one record that its stage cannot handle: `dead`, with `RECORD_UNPROCESSABLE` and the
/// database's message (which names a type or constraint, never a value).
async fn park_unprocessable(
    settings: &Settings,
    pool: &PgPool,
    stage: Stage,
    id: i64,
    error: &sqlx::Error,
) -> Result<Tally, ProcessError> {
    let why = match error {
        sqlx::Error::Database(db) => format!(
            "{} (SQLSTATE {})",
            db.message(),
            db.code().unwrap_or_default()
        ),
        other => other.to_string(),
    };
    let mut tx = pool.begin().await?;
    let mut step = Step::of(settings, stage);
    for row in step.read(&mut tx, &[id]).await? {
        let reasons = vec![Reason::new(
            ReasonCode::RecordUnprocessable,
            "record",
            format!(
                "{stage} failed on this record and cannot succeed by trying again: {why}; the other records of its chunk went on. Correct the record's data, or ask an operator to discard it"
            ),
        )];
        step.decide(&row, Outcome::Dead, reasons).detail =
            Some(serde_json::json!({ "error": why }));
    }
    let tally = step.write(&mut tx).await?;
    tx.commit().await?;
    tracing::warn!(record_id = id, stage = stage.as_str(), error = %why, "record parked: its stage cannot handle it");
    Ok(tally)
}

async fn process_retrying(
    settings: &Settings,
    pool: &PgPool,
    input: Input,
    body: &[u8],
    sender: Option<&str>,
) -> Result<Tally, ProcessError> {
    use backon::{ExponentialBuilder, Retryable as _};
    (|| process_once(settings, pool, input, body, sender))
        .retry(
            ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(std::time::Duration::from_millis(50))
                .with_max_delay(std::time::Duration::from_secs(2))
                .with_max_times(4),
        )
        .when(|e| matches!(e, ProcessError::Database(e) if transient(e)))
        .notify(|e, after| {
            tracing::debug!(error = %e, ?after, input = input.label(), "transaction failed; trying again")
        })
        .await
}

/// A database error that may pass if the same transaction is tried again.
pub fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // serialization failure, deadlock, connection exceptions, server shutting down or
            // starting, too many connections
            matches!(
                c.as_ref(),
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
            ) || c.starts_with("08")
        }),
        _ => false,
    }
}

async fn process_once(
    settings: &Settings,
    pool: &PgPool,
    input: Input,
    body: &[u8],
    sender: Option<&str>,
) -> Result<Tally, ProcessError> {
    let mut tx = pool.begin().await?;
    let tally = match input {
        Input::Stage(stage) => {
            let msg = decode_stage(body, stage)?;
            tracing::Span::current().record("batch_id", tracing::field::display(msg.batch_id));
            log_stage_message(&msg);
            handle_stage(settings, &mut tx, stage, &msg).await?
        }
        Input::BankReplies if returns::is_return(body) => {
            let msg = returns::decode(body)?;
            returns::handle(settings, &mut tx, &msg, sender).await?
        }
        Input::BankReplies => {
            let reply = replies::decode(body)?;
            log_bank_answer(&reply);
            replies::handle(settings, &mut tx, &reply, sender).await?
        }
    };
    tx.commit().await?;
    Ok(tally)
}

fn log_stage_message(msg: &StageMessage) {
    tracing::debug!(batch_id = %msg.batch_id, record_ids = ?msg.record_ids, "stage message");
}

fn log_bank_answer(reply: &crate::bank::contract::BankReply) {
    tracing::debug!(
        request_id = %reply.request_id,
        bank = %crate::metrics::bank_label(&reply.bank_code),
        kind = reply.kind.as_str(),
        record_ids = ?reply.items.iter().map(|i| i.item_id.as_str()).collect::<Vec<_>>(),
        "bank answer"
    );
}

/// Runs `stage`'s handler on `msg` in the caller's transaction.
pub async fn handle_stage(
    settings: &Settings,
    conn: &mut sqlx::PgConnection,
    stage: Stage,
    msg: &StageMessage,
) -> sqlx::Result<Tally> {
    match stage {
        Stage::AccountOpening => account_opening::handle(settings, conn, msg).await,
        Stage::Verification => verification::handle(settings, conn, msg).await,
        Stage::Transfer => transfer::handle(settings, conn, msg).await,
    }
}

/// Handles several messages of one input in one transaction (`SALUR_GROUP`): each message's
/// handler (a stage's, or the bank-answer handler with the message's own sender, trust checks
/// included) reads and decides its records as it would alone, and their writes are made
/// together ([`step::write_deferred`]): one update, audit row, bank-request insert and outbox
/// insert per state, where one message at a time makes one set each. The outgoing messages are
/// each message's own (its bank requests, its next stage's chunk, its retries). Returns each
/// message's tally, in order.
///
/// `messages` are each message's body and its AMQP sender (as for [`process_one`]).
///
/// `None` when the group cannot be handled so: a message that does not decode, a record named
/// twice, a bank's return of a payment, a message its handler refuses as poison, a database
/// error. Nothing of the group is then written, and the caller handles the messages one by one
/// ([`process_one`]), with its retries, isolation and parking.
pub async fn process_group(
    settings: &Settings,
    pool: &PgPool,
    input: Input,
    messages: &[(&[u8], Option<&str>)],
) -> Option<Vec<Tally>> {
    enum Decoded {
        Stage(Stage, StageMessage),
        Reply(crate::bank::contract::BankReply),
    }
    let mut decoded = Vec::with_capacity(messages.len());
    let mut named = std::collections::HashSet::new();
    for (body, _) in messages {
        let (msg, ids) = match input {
            Input::Stage(stage) => {
                let msg = decode_stage(body, stage).ok()?;
                let ids = msg.record_ids.clone();
                (Decoded::Stage(stage, msg), ids)
            }
            Input::BankReplies if returns::is_return(body) => return None,
            Input::BankReplies => {
                let reply = replies::decode(body).ok()?;
                let ids = reply
                    .items
                    .iter()
                    .map(|i| i.item_id.parse::<i64>().ok())
                    .collect::<Option<Vec<i64>>>()?;
                (Decoded::Reply(reply), ids)
            }
        };
        if !ids.into_iter().all(|id| named.insert(id)) {
            return None;
        }
        decoded.push(msg);
    }
    let handled = async {
        let mut tx = pool.begin().await?;
        let (tallies, deferred) = deferring(async {
            let mut tallies = Vec::with_capacity(decoded.len());
            for (msg, (_, sender)) in decoded.iter().zip(messages) {
                tallies.push(match msg {
                    Decoded::Stage(stage, msg) => {
                        log_stage_message(msg);
                        handle_stage(settings, &mut tx, *stage, msg).await?
                    }
                    Decoded::Reply(reply) => {
                        log_bank_answer(reply);
                        replies::handle(settings, &mut tx, reply, *sender).await?
                    }
                });
            }
            Ok::<_, ProcessError>(tallies)
        })
        .await;
        let tallies = tallies?;
        write_deferred(&mut tx, deferred).await?;
        tx.commit().await?;
        Ok::<_, ProcessError>(tallies)
    };
    match handled.await {
        Ok(tallies) => Some(tallies),
        Err(e) => {
            tracing::debug!(error = %e, input = input.label(), messages = messages.len(), "a group of messages failed together; handling them one by one");
            None
        }
    }
}

fn decode_stage(body: &[u8], stage: Stage) -> Result<StageMessage, Poison> {
    let msg: StageMessage =
        serde_json::from_slice(body).map_err(|e| Poison(format!("not a stage message: {e}")))?;
    if msg.v != messages::VERSION {
        return Err(Poison(format!(
            "stage message version {} is not supported (expected {})",
            msg.v,
            messages::VERSION
        )));
    }
    if msg.stage != stage {
        return Err(Poison(format!(
            "a {} message arrived on the {} queue",
            msg.stage, stage
        )));
    }
    Ok(msg)
}

fn json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("messages serialize")
}

/// The next stage's work for these records.
pub fn stage_message(settings: &Settings, stage: Stage, batch_id: Uuid, ids: Vec<i64>) -> Outgoing {
    Outgoing {
        exchange: settings.name(names::WORK),
        routing_key: stage.as_str().to_owned(),
        payload: json(&StageMessage {
            v: messages::VERSION,
            stage,
            batch_id,
            record_ids: ids,
            attempt: None,
        }),
    }
}

/// `payload` again after the delay of the retry tier for this attempt (1-based): published to
/// `salur.retry` as `<tier>.<input>`, dead-lettered back to `salur.work` when the tier's TTL
/// ends, and from there to the input's queue.
pub fn via_retry_tier(
    settings: &Settings,
    input: Input,
    attempt: i32,
    payload: Vec<u8>,
) -> (Outgoing, &str) {
    let tier = settings.retry_tier(attempt);
    (
        Outgoing {
            exchange: settings.name(names::RETRY),
            routing_key: format!("{}.{}", tier.name, input.label()),
            payload,
        },
        tier.name.as_str(),
    )
}

/// Work for `stage` again, after the delay of the tier for this attempt (1-based).
pub fn retry_message(
    settings: &Settings,
    stage: Stage,
    attempt: i32,
    batch_id: Uuid,
    ids: Vec<i64>,
) -> Outgoing {
    let payload = json(&StageMessage {
        v: messages::VERSION,
        stage,
        batch_id,
        record_ids: ids,
        attempt: u32::try_from(attempt).ok(),
    });
    via_retry_tier(settings, Input::Stage(stage), attempt, payload).0
}

/// A record parked on `salur.blocked` (state blocked) or `salur.dead` (state dead).
pub fn parked_message(
    settings: &Settings,
    row: &RecordRow,
    stage: Stage,
    change: &Change,
) -> Outgoing {
    parked_record(
        settings,
        ParkedRecord {
            v: messages::VERSION,
            record_id: row.id,
            batch_id: row.batch_id,
            row: row.row_number,
            stage,
            state: change.to.as_str().to_owned(),
            reasons: change.reasons.clone(),
        },
    )
}

/// The message that parks a record: routed `dead` or `blocked` by its state.
pub fn parked_record(settings: &Settings, parked: ParkedRecord) -> Outgoing {
    let routing_key = if parked.state == State::Dead.as_str() {
        "dead"
    } else {
        "blocked"
    };
    tracing::debug!(
        record_id = parked.record_id,
        batch_id = %parked.batch_id,
        row = parked.row,
        stage = %parked.stage,
        queue = routing_key,
        reasons = ?parked.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
        "record parked"
    );
    Outgoing {
        exchange: settings.name(names::PARKED),
        routing_key: routing_key.to_owned(),
        payload: json(&parked),
    }
}

/// Groups rows by a key, keeping first-seen order of the keys.
pub fn group_by<'a, K: Ord + Clone>(
    rows: impl IntoIterator<Item = &'a RecordRow>,
    key: impl Fn(&RecordRow) -> K,
) -> BTreeMap<K, Vec<&'a RecordRow>> {
    let mut groups: BTreeMap<K, Vec<&RecordRow>> = BTreeMap::new();
    for r in rows {
        groups.entry(key(r)).or_default().push(r);
    }
    groups
}
