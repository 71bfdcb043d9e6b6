//! One step of a stage: the outcomes it decided, turned into state changes, audit rows,
//! outgoing messages and the tally, written in the caller's transaction.

use super::{Tally, parked_message, retry_message, stage_message};
use crate::broker::Outgoing;
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode};
use crate::messages::Stage;
use crate::store::records::Needs;
use crate::store::{Attempt, Change, RecordRow, State};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

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

    /// Reads the records of `ids` still in `from` (see [`Tally::read`]), with the personal
    /// fields the stage taking them from there needs.
    pub async fn read(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.tally.read(conn, ids, self.from).await
    }

    /// [`Step::read`], decrypting the personal fields `needs` says.
    pub async fn read_for(
        &mut self,
        conn: &mut PgConnection,
        ids: &[i64],
        needs: Needs,
    ) -> sqlx::Result<Vec<RecordRow>> {
        self.tally.read_for(conn, ids, self.from, needs).await
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
        let mut change = Change::to(row.id, to).with_reasons(reasons);
        change.version = row.version;
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

    /// Writes the changes (each with its audit row, guarded by `from` and by the version of the
    /// record it was decided from), the bank requests sent and the outgoing messages, in the
    /// caller's transaction; returns the tally. When a record changed since the step read it
    /// (another transaction handled it at the same time), nothing is written: the transaction
    /// fails as a serialization failure, and the message is handled again on what is there.
    ///
    /// Inside [`deferring`] the writes are held back instead, to be written with those of the
    /// other messages of the group ([`write_deferred`]).
    pub async fn write(self, conn: &mut PgConnection) -> sqlx::Result<Tally> {
        if DEFERRED.try_with(|_| ()).is_ok() {
            DEFERRED.with(|held| {
                held.borrow_mut().push(Deferred {
                    from: self.from,
                    changes: self.changes,
                    out: self.out,
                })
            });
        } else {
            write(conn, self.from, &self.changes, &self.out).await?;
        }
        Ok(self.tally)
    }
}

/// What a step decided, held back while several messages are handled in one transaction.
pub struct Deferred {
    from: State,
    changes: Vec<Change>,
    out: Vec<Outgoing>,
}

tokio::task_local! {
    static DEFERRED: std::cell::RefCell<Vec<Deferred>>;
}

/// Runs `handling` (the handlers of several messages, in one transaction) with every
/// [`Step::write`] in it held back; returns its result and what the steps decided, for
/// [`write_deferred`].
pub async fn deferring<T>(handling: impl std::future::Future<Output = T>) -> (T, Vec<Deferred>) {
    DEFERRED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let out = handling.await;
            (out, DEFERRED.with(|d| d.take()))
        })
        .await
}

/// Writes what [`deferring`] held back, in the caller's transaction: one update (with its audit
/// rows), one insert of bank requests and one of outgoing messages per state the records move
/// from, for all the messages together. The records of the messages are distinct (the caller
/// checks), so a record that did not take its change refuses the transaction as in
/// [`Step::write`].
pub async fn write_deferred(conn: &mut PgConnection, deferred: Vec<Deferred>) -> sqlx::Result<()> {
    let mut by_from: BTreeMap<&'static str, Deferred> = BTreeMap::new();
    for d in deferred {
        let held = by_from.entry(d.from.as_str()).or_insert_with(|| Deferred {
            from: d.from,
            changes: Vec::new(),
            out: Vec::new(),
        });
        held.changes.extend(d.changes);
        held.out.extend(d.out);
    }
    for d in by_from.into_values() {
        write(conn, d.from, &d.changes, &d.out).await?;
    }
    Ok(())
}

/// Applies `changes` (all from `from`) and queues `out`, in the caller's transaction; refuses
/// the transaction ([`crate::store::records::conflict`]) if a record did not take its change.
async fn write(
    conn: &mut PgConnection,
    from: State,
    changes: &[Change],
    out: &[Outgoing],
) -> sqlx::Result<()> {
    let changed = crate::store::records::apply(conn, from, changes).await?;
    let decided: std::collections::HashSet<i64> = changes.iter().map(|c| c.id).collect();
    if changed.len() < decided.len() {
        return crate::store::records::conflict(conn).await;
    }
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
