//! The three stages and the bank-answer handler, all of one shape: take a message, lock the
//! records it names that are still in the state the lifecycle says they wait in, decide each
//! record's [`Outcome`], and write the state changes, audit rows and outgoing messages in one
//! transaction ([`Step`]). The consumer loop ([`crate::worker`]) knows nothing stage-specific;
//! it calls [`process_one`].

pub mod account_opening;
pub mod replies;
pub mod transfer;
pub mod verification;

use crate::broker::{Outgoing, names};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode};
use crate::messages::{self, ParkedRecord, Stage, StageMessage};
use crate::metrics::Metrics;
use crate::store::records::Needs;
use crate::store::{Attempt, Change, RecordRow, State};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
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

/// How one message went, for metrics and logs: records per outcome, reasons, money paid.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// `(stage, outcome) -> records`
    pub outcomes: BTreeMap<(Stage, Outcome), u64>,
    pub reasons: BTreeMap<(Stage, ReasonCode), u64>,
    /// `program -> IDR`
    pub disbursed: BTreeMap<String, Decimal>,
    /// Records named by the message that were not in the expected state (redelivery, late or
    /// duplicate answer): nothing was done to them.
    pub skipped: u64,
    /// Ids the message named that are no record at all: the message is parked on `salur.dead`
    /// (after the known records were handled).
    pub unknown_ids: Vec<i64>,
    /// `(stage, tier) -> records` sent to a retry tier.
    pub retries: BTreeMap<(Stage, String), u64>,
    /// `program -> records` taken up by account opening fresh: on their first attempt, or
    /// replayed after a fix.
    pub received: BTreeMap<String, u64>,
    /// `program -> IDR` requested for those records.
    pub requested: BTreeMap<String, Decimal>,
    /// A bank answer: `(bank code, stage, seconds since its request was committed)`.
    pub bank_round_trip: Option<(String, Stage, f64)>,
    /// A bank answer's items that changed nothing because they cannot be trusted (sent by
    /// another bank, for no request salur sent, missing a required field): parked on
    /// `salur.dead` after the others were handled.
    pub refused: Vec<RefusedItem>,
    /// A bank answer: the bank whose RabbitMQ user sent it (`unknown` if none).
    pub sender: Option<String>,
}

/// A bank answer item that changed nothing: why, as a code for the metric and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedItem {
    pub item_id: String,
    /// `WRONG_BANK`, `UNKNOWN_REQUEST`, `MISSING_FIELD`, `NO_SENDER`, `UNKNOWN_SENDER`.
    pub reason: &'static str,
    pub why: String,
}

impl Tally {
    /// Locks the records of `ids` still in `state`; counts the others as skipped and notes ids
    /// that are no record at all.
    pub async fn lock(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        state: State,
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.lock_for(conn, ids, state, Needs::of(state)).await
    }

    /// [`Tally::lock`], decrypting the personal fields `needs` says.
    pub async fn lock_for(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        state: State,
        needs: Needs,
    ) -> sqlx::Result<Vec<RecordRow>> {
        let rows = crate::store::records::lock_in_state_for(conn, ids, state, needs).await?;
        if rows.len() < ids.len() {
            self.skipped += (ids.len() - rows.len()) as u64;
            self.unknown_ids = crate::store::records::missing(conn, ids).await?;
        }
        Ok(rows)
    }

    pub fn count(&mut self, stage: Stage, outcome: Outcome, n: u64) {
        if n > 0 {
            *self.outcomes.entry((stage, outcome)).or_default() += n;
        }
    }

    pub fn reasons(&mut self, stage: Stage, reasons: &[Reason]) {
        for r in reasons {
            *self.reasons.entry((stage, r.code)).or_default() += 1;
        }
    }

    /// Adds what another message (or part of one) did.
    pub fn merge(&mut self, other: Tally) {
        fn add<K: Ord, V: std::ops::AddAssign + Default>(
            into: &mut BTreeMap<K, V>,
            from: BTreeMap<K, V>,
        ) {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        }
        add(&mut self.outcomes, other.outcomes);
        add(&mut self.reasons, other.reasons);
        add(&mut self.disbursed, other.disbursed);
        add(&mut self.retries, other.retries);
        add(&mut self.received, other.received);
        add(&mut self.requested, other.requested);
        self.skipped += other.skipped;
        self.unknown_ids.extend(other.unknown_ids);
        self.bank_round_trip = self.bank_round_trip.take().or(other.bank_round_trip);
    }

    /// Records of `stage` that ended with `outcome`.
    pub fn outcome(&self, stage: Stage, outcome: Outcome) -> u64 {
        self.outcomes.get(&(stage, outcome)).copied().unwrap_or(0)
    }

    /// Adds what one message (or sweep) did to the metrics.
    pub fn record(&self, m: &Metrics) {
        use rust_decimal::prelude::ToPrimitive as _;
        for (program, n) in &self.received {
            m.received.with_label_values(&[program]).inc_by(*n);
        }
        for (program, amount) in &self.requested {
            m.requested_idr
                .with_label_values(&[program])
                .inc_by(amount.to_f64().unwrap_or(0.0));
        }
        if let Some((bank, stage, seconds)) = &self.bank_round_trip {
            m.bank_round_trip
                .with_label_values(&[bank, stage.as_str()])
                .observe(*seconds);
        }
        for ((stage, tier), n) in &self.retries {
            m.retries
                .with_label_values(&[stage.as_str(), tier])
                .inc_by(*n);
        }
        for ((stage, outcome), n) in &self.outcomes {
            m.records
                .with_label_values(&[stage.as_str(), outcome.label()])
                .inc_by(*n);
        }
        for ((stage, reason), n) in &self.reasons {
            m.reasons
                .with_label_values(&[stage.as_str(), reason.as_str()])
                .inc_by(*n);
        }
        for (program, amount) in &self.disbursed {
            m.disbursed_idr
                .with_label_values(&[program])
                .inc_by(amount.to_f64().unwrap_or(0.0));
        }
    }
}

/// One step of a stage, in one transaction: the records it took from one state (`from`), what
/// it decided for each, and the messages it sends. [`Step::decide`] is the one place where an
/// [`Outcome`] becomes a state change (the target state from the lifecycle, with its audit
/// row), a parked message when the record parks, and a count in the [`Tally`];
/// [`Step::write`] writes it all.
pub struct Step<'s> {
    settings: &'s Settings,
    pub stage: Stage,
    pub from: State,
    pub tally: Tally,
    changes: Vec<Change>,
    out: Vec<Outgoing>,
}

impl<'s> Step<'s> {
    /// A step of `stage` on records in `from`.
    pub fn new(settings: &'s Settings, stage: Stage, from: State) -> Self {
        Self {
            settings,
            stage,
            from,
            tally: Tally::default(),
            changes: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The step of `stage`'s handler: on the records waiting for it.
    pub fn of(settings: &'s Settings, stage: Stage) -> Self {
        Self::new(settings, stage, State::waiting_for(stage))
    }

    /// Locks the records of `ids` still in `from` (see [`Tally::lock`]), reading the personal
    /// fields the stage taking them from there needs.
    pub async fn lock(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.tally.lock(conn, ids, self.from).await
    }

    /// [`Step::lock`], decrypting the personal fields `needs` says.
    pub async fn lock_for(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        needs: Needs,
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.tally.lock_for(conn, ids, self.from, needs).await
    }

    /// Decides `outcome` for `row` (with `reasons` when it stops): its change to the state the
    /// lifecycle gives for the outcome from `from`, a parked message if that state is parked,
    /// the counts. Returns the change, for what else it carries (detail, bank fields, …).
    pub fn decide(
        &mut self,
        row: &RecordRow,
        outcome: Outcome,
        reasons: Vec<Reason>,
    ) -> &mut Change {
        let to = outcome.to(self.from).unwrap_or_else(|| {
            panic!(
                "the lifecycle has no {outcome} from {}: {} decided what cannot be",
                self.from, self.stage
            )
        });
        self.decide_to(row, outcome, to, reasons)
    }

    /// [`Step::decide`] for a record that has left the state the outcome is for (`waited_in`):
    /// a bank's late answer for a record given up on while it waited.
    pub fn decide_as_if(
        &mut self,
        row: &RecordRow,
        outcome: Outcome,
        waited_in: State,
        reasons: Vec<Reason>,
    ) -> &mut Change {
        let to = outcome
            .to(waited_in)
            .unwrap_or_else(|| panic!("the lifecycle has no {outcome} from {waited_in}"));
        self.decide_to(row, outcome, to, reasons)
    }

    fn decide_to(
        &mut self,
        row: &RecordRow,
        outcome: Outcome,
        to: State,
        reasons: Vec<Reason>,
    ) -> &mut Change {
        self.tally.count(self.stage, outcome, 1);
        self.tally.reasons(self.stage, &reasons);
        let change = Change::to(row.id, to).with_reasons(reasons);
        if to.parked() {
            self.out
                .push(parked_message(self.settings, row, self.stage, &change));
        }
        self.changes.push(change);
        self.changes.last_mut().expect("just pushed")
    }

    /// Sends `message` with the step's changes (a bank request, the next stage's work).
    pub fn send(&mut self, message: Outgoing) {
        self.out.push(message);
    }

    /// Sends these records (all advanced) to the stage that takes them from the state they
    /// advanced to.
    pub fn hand_on(&mut self, batch_id: Uuid, ids: Vec<i64>) {
        let next = self
            .from
            .next()
            .and_then(State::stage)
            .expect("records advanced to a state some stage takes them from");
        let message = stage_message(self.settings, next, batch_id, ids);
        self.send(message);
    }

    /// After a transient failure: each record back to where the lifecycle sends it from `from`,
    /// with a retry through the delay tiers, or `dead` once its stage's attempts are spent.
    pub fn retry_or_dead(&mut self, rows: &[&RecordRow], why: &str) {
        let mut retry: BTreeMap<(Uuid, i32), Vec<i64>> = BTreeMap::new();
        for row in rows {
            let attempt = row.attempts + 1;
            if attempt >= self.settings.max_attempts(self.stage) {
                self.give_up(row, attempt, why);
            } else {
                let tier = self.settings.retry_tier(attempt).name.clone();
                let c = self.decide(row, Outcome::Retried, Vec::new());
                c.detail =
                    Some(serde_json::json!({"attempt": attempt, "error": why, "retry_in": tier}));
                c.attempt = Attempt::Count;
                *self.tally.retries.entry((self.stage, tier)).or_default() += 1;
                retry
                    .entry((row.batch_id, attempt))
                    .or_default()
                    .push(row.id);
            }
        }
        for ((batch_id, attempt), ids) in retry {
            let message = retry_message(self.settings, self.stage, attempt, batch_id, ids);
            self.send(message);
        }
    }

    /// `dead` with RETRIES_EXHAUSTED: `attempt` (this one included) failed, the last with `why`.
    pub fn give_up(&mut self, row: &RecordRow, attempt: i32, why: &str) {
        let stage = self.stage;
        let reasons = vec![Reason::new(
            ReasonCode::RetriesExhausted,
            "record",
            format!("{stage} failed {attempt} times, last: {why}; an operator must decide"),
        )];
        let c = self.decide(row, Outcome::Dead, reasons);
        c.detail = Some(serde_json::json!({"attempt": attempt, "error": why}));
        c.attempt = Attempt::Count;
    }

    /// Writes the changes (each with its audit row, guarded by `from`), the bank requests sent
    /// and the outgoing messages, in the caller's transaction; returns the tally.
    pub async fn write(self, conn: &mut PgConnection) -> sqlx::Result<Tally> {
        write(conn, self.from, &self.changes, &self.out).await?;
        Ok(self.tally)
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
    for row in step.lock(&mut tx, &[id]).await? {
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
            tracing::debug!(batch_id = %msg.batch_id, record_ids = ?msg.record_ids, "stage message");
            match stage {
                Stage::AccountOpening => account_opening::handle(settings, &mut tx, &msg).await?,
                Stage::Verification => verification::handle(settings, &mut tx, &msg).await?,
                Stage::Transfer => transfer::handle(settings, &mut tx, &msg).await?,
            }
        }
        Input::BankReplies => {
            let reply = replies::decode(body)?;
            tracing::debug!(
                request_id = %reply.request_id,
                bank = %crate::metrics::bank_label(&reply.bank_code),
                kind = reply.kind.as_str(),
                record_ids = ?reply.items.iter().map(|i| i.item_id.as_str()).collect::<Vec<_>>(),
                "bank answer"
            );
            replies::handle(settings, &mut tx, &reply, sender).await?
        }
    };
    tx.commit().await?;
    Ok(tally)
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

/// Applies `changes` (all from `from`) and queues `out`, in the caller's transaction.
async fn write(
    conn: &mut PgConnection,
    from: State,
    changes: &[Change],
    out: &[Outgoing],
) -> sqlx::Result<()> {
    crate::store::records::apply(conn, from, changes).await?;
    crate::store::bank_requests::insert(conn, &sent_requests(out)).await?;
    crate::store::outbox::insert(conn, out).await
}

/// The bank requests among `out` (routed `bank.<code>.<kind>`), as the bank will see them: an
/// answer is later checked against these.
fn sent_requests(out: &[Outgoing]) -> Vec<crate::store::bank_requests::SentRequest> {
    use crate::bank::contract::{BankRequest, RequestBody};
    out.iter()
        .filter(|m| m.routing_key.starts_with("bank."))
        .filter_map(|m| serde_json::from_slice::<BankRequest>(&m.payload).ok())
        .map(|r| {
            let (record_ids, keys): (Vec<i64>, Vec<String>) = match &r.body {
                RequestBody::AccountOpen { items } => items
                    .iter()
                    .map(|i| (i.item_id.parse().unwrap_or(-1), i.idempotency_key.clone()))
                    .unzip(),
                RequestBody::AccountInquiry { items } => items
                    .iter()
                    .map(|i| (i.item_id.parse().unwrap_or(-1), String::new()))
                    .unzip(),
                RequestBody::Transfer { items } => items
                    .iter()
                    .map(|i| (i.item_id.parse().unwrap_or(-1), i.idempotency_key.clone()))
                    .unzip(),
            };
            crate::store::bank_requests::SentRequest {
                request_id: r.request_id,
                bank_code: r.bank_code.clone(),
                kind: r.body.kind().as_str().to_owned(),
                record_ids,
                keys,
            }
        })
        .collect()
}
