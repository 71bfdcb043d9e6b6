//! Bank answers. An answer is applied only to records still waiting for it (`account_requested`
//! or `transfer_requested`): a late, duplicated or out-of-order answer changes nothing.

use super::account_opening::open_key;
use super::{Poison, RefusedItem, Step, Tally};
use crate::bank::contract::{BankReply, ItemStatus, ReplyItem, RequestKind, VERSION};
use crate::bank::{refusals, users};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode};
use crate::messages::Stage;
use crate::store::bank_requests::{self, SentRequest};
use crate::store::{Attempt, RecordRow, State, pipeline, records};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};

pub fn decode(body: &[u8]) -> Result<BankReply, Poison> {
    let reply: BankReply =
        serde_json::from_slice(body).map_err(|e| Poison(format!("not a bank reply: {e}")))?;
    if reply.v != VERSION {
        return Err(Poison(format!(
            "bank reply version {} is not supported (expected {VERSION})",
            reply.v
        )));
    }
    Ok(reply)
}

pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    reply: &BankReply,
    sender: Option<&str>,
) -> Result<Tally, super::ProcessError> {
    let stage = match reply.kind {
        RequestKind::AccountOpen | RequestKind::AccountInquiry => Stage::AccountOpening,
        RequestKind::Transfer => Stage::Transfer,
    };
    let waiting = stage
        .awaits_bank_in()
        .expect("a stage that sends bank requests has a state that waits for the answer");
    let mut step = Step::new(settings, stage, waiting);
    let mut items: HashMap<i64, &ReplyItem> = HashMap::new();
    for item in &reply.items {
        let id = item.item_id.parse::<i64>().map_err(|_| {
            Poison(format!(
                "bank reply item_id {:?} is not a record id",
                item.item_id
            ))
        })?;
        items.insert(id, item);
    }
    let Some(bank) = trust(settings, conn, reply, sender, &mut items, &mut step.tally).await?
    else {
        return Ok(step.tally);
    };
    let ids: Vec<i64> = items.keys().copied().collect();
    // An account answer is checked against what was asked: an opening against the
    // idempotency key of the data last sent (kept on the record), an inquiry against the
    // account number asked about (the one personal field it opens); a transfer answer reads
    // no personal field.
    let needs = match reply.kind {
        RequestKind::AccountInquiry => records::Needs::OfficeAccount,
        _ => records::Needs::Nothing,
    };
    let mut rows = step.read_for(conn, &ids, needs).await?;
    if reply.kind == RequestKind::AccountOpen {
        // Records sent before salur kept the key: recompute it from their fields.
        let legacy: Vec<i64> = rows
            .iter()
            .filter(|r| r.open_key.is_none())
            .map(|r| r.id)
            .collect();
        if !legacy.is_empty() {
            let opened = step.read_for(conn, &legacy, records::Needs::All).await?;
            rows.retain(|r| r.open_key.is_some());
            rows.extend(opened);
        }
    }
    let (rows, asked) = current(rows, reply.kind, &bank.request, &mut step.tally);
    // The records of one request went to their waiting state in one transaction.
    step.tally.bank_round_trip = rows
        .iter()
        .filter_map(|r| r.in_state_seconds)
        .reduce(f64::max)
        .map(|s| (crate::metrics::bank_label(&reply.bank_code), stage, s));
    let mut opened: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
    let mut transient: Vec<&RecordRow> = Vec::new();
    let mut released: Vec<i64> = Vec::new();
    let detail = serde_json::json!({"request_id": reply.request_id, "bank": reply.bank_code});

    for row in &rows {
        let item = items[&row.id];
        match (item.status, reply.kind) {
            (ItemStatus::Ok, RequestKind::AccountInquiry)
                if item
                    .account_number
                    .as_deref()
                    .is_some_and(|n| Some(n) != asked.get(&row.id).map(String::as_str)) =>
            {
                // The bank answered for another account than the one asked: the payee is
                // not changed.
                let reasons = vec![Reason::new(
                    ReasonCode::AccountMismatch,
                    "account_number",
                    "the bank confirmed another account number than the one asked, so the \
                     payee was not changed: check the account number with the recipient and \
                     the bank, correct it and replay",
                )];
                step.decide(row, Outcome::Blocked, reasons).detail = Some(detail.clone());
            }
            (ItemStatus::Ok, RequestKind::AccountOpen | RequestKind::AccountInquiry) => {
                let c = step.decide(row, Outcome::AccountOpened, Vec::new());
                c.detail = Some(detail.clone());
                c.attempt = Attempt::Reset;
                c.bank_account = match reply.kind {
                    // The account asked about, never one the bank names instead.
                    RequestKind::AccountInquiry => asked.get(&row.id).cloned(),
                    _ => item.account_number.clone(),
                };
                c.bank_account_name = item.account_name.clone();
                opened.entry(row.batch_id).or_default().push(row.id);
            }
            (ItemStatus::Ok, RequestKind::Transfer) => {
                let c = step.decide(row, Outcome::Disbursed, Vec::new());
                c.detail = Some(detail.clone());
                c.bank_reference = item.reference.clone();
                *step.tally.disbursed.entry(row.program.clone()).or_default() +=
                    row.amount.unwrap_or_default();
            }
            (ItemStatus::Rejected, kind) => {
                // A refused transfer has failed for good (and is not paid: its NIK's claim is
                // given up); a refused account is blocked, for the office to fix.
                let outcome = if kind == RequestKind::Transfer {
                    released.push(row.id);
                    Outcome::Failed
                } else {
                    Outcome::Blocked
                };
                step.decide(row, outcome, vec![bank_reason(kind, item)])
                    .detail = Some(detail.clone());
            }
            (ItemStatus::Error, _) => transient.push(row),
        }
    }
    if !transient.is_empty() {
        step.retry_or_dead(&transient, "the bank answered with a transient error");
    }
    for (batch_id, ids) in opened {
        step.hand_on(batch_id, ids);
    }
    let mut tally = step.write(conn).await?;
    if reply.kind == RequestKind::Transfer && rows.len() < ids.len() {
        let late =
            late_transfer_answers(settings, conn, reply, &items, &rows, &mut released).await?;
        let settled: u64 = late.outcomes.values().sum();
        tally.skipped = tally.skipped.saturating_sub(settled);
        tally.merge(late);
    }
    // Not paid: the NIK may be paid by a later, corrected record.
    pipeline::release_claims(conn, &released).await?;
    Ok(tally)
}

/// A transfer answer for a record that went `dead` waiting for it (the bank was down or backed
/// up longer than the retries): the bank's word decides. Paid is `disbursed`, refused is
/// `failed`; a transient error leaves it dead. Otherwise a payment the bank made would never
/// be recorded, and the totals would not reconcile.
async fn late_transfer_answers(
    settings: &Settings,
    conn: &mut PgConnection,
    reply: &BankReply,
    items: &HashMap<i64, &ReplyItem>,
    handled: &[RecordRow],
    released: &mut Vec<i64>,
) -> sqlx::Result<Tally> {
    let rest: Vec<i64> = items
        .keys()
        .copied()
        .filter(|id| !handled.iter().any(|r| r.id == *id))
        .collect();
    let waited_in = Stage::Transfer
        .awaits_bank_in()
        .expect("a transfer waits for its bank");
    let mut step = Step::new(settings, Stage::Transfer, State::Dead);
    let dead = records::read_in_state(conn, &rest, State::Dead).await?;
    let detail = serde_json::json!({
        "request_id": reply.request_id, "bank": reply.bank_code, "late_answer": true
    });
    for row in &dead {
        let item = items[&row.id];
        match item.status {
            ItemStatus::Ok => {
                let c = step.decide_as_if(row, Outcome::Disbursed, waited_in, Vec::new());
                c.detail = Some(detail.clone());
                c.bank_reference = item.reference.clone();
                *step.tally.disbursed.entry(row.program.clone()).or_default() +=
                    row.amount.unwrap_or_default();
            }
            ItemStatus::Rejected => {
                let reasons = vec![bank_reason(RequestKind::Transfer, item)];
                released.push(row.id);
                step.decide_as_if(row, Outcome::Failed, waited_in, reasons)
                    .detail = Some(detail.clone());
            }
            ItemStatus::Error => {}
        }
    }
    step.write(conn).await
}

/// The reason a bank refused, mapped by the contract's refusal table with the bank's words kept.
fn bank_reason(kind: RequestKind, item: &ReplyItem) -> Reason {
    let r = item.reason.as_ref();
    refusals::reason(
        kind,
        r.map(|r| r.code.as_str()),
        r.map(|r| r.message.as_str()),
    )
}

/// Who sent the answer, and the request it answers.
struct Trusted {
    request: SentRequest,
}

/// Checks the answer against the broker-authenticated sender and the request it names. Items
/// that cannot be trusted are taken out of `items` into `tally.refused` (they change nothing);
/// `None` when no item can be.
async fn trust(
    settings: &Settings,
    conn: &mut PgConnection,
    reply: &BankReply,
    sender: Option<&str>,
    items: &mut HashMap<i64, &ReplyItem>,
    tally: &mut Tally,
) -> sqlx::Result<Option<Trusted>> {
    let bank = sender.and_then(|u| users::bank_of(settings, u));
    tally.sender = Some(bank.unwrap_or("unknown").to_owned());
    let refuse_all = |tally: &mut Tally, reason: &'static str, why: String| {
        tally
            .refused
            .extend(reply.items.iter().map(|i| RefusedItem {
                item_id: i.item_id.clone(),
                reason,
                why: why.clone(),
            }));
    };
    let Some(bank) = bank else {
        let (reason, why) = match sender {
            None => (
                "NO_SENDER",
                "the answer carries no AMQP user_id: a bank must publish with user_id set to its \
                 RabbitMQ user"
                    .to_owned(),
            ),
            Some(_) => (
                "UNKNOWN_SENDER",
                "the answer was published by a RabbitMQ user that is no bank's user (see \
                 `salur bank add`)"
                    .to_owned(),
            ),
        };
        refuse_all(tally, reason, why);
        return Ok(None);
    };
    if reply.bank_code != bank {
        refuse_all(
            tally,
            "WRONG_BANK",
            format!(
                "sent by bank {bank}'s user but claims to be bank {}",
                crate::metrics::bank_label(&reply.bank_code)
            ),
        );
        return Ok(None);
    }
    let request = records_banks(conn, items).await?;
    let sent = bank_requests::find(conn, reply.request_id).await?;
    let mut refused = Vec::new();
    for (&id, item) in items.iter() {
        let refusal = match request.get(&id) {
            // salur never asked a bank about a record that does not exist.
            None => Some(("UNKNOWN_REQUEST", format!("there is no record {id}"))),
            Some(record_bank) if record_bank.as_deref() != Some(bank) => Some((
                "WRONG_BANK",
                format!("record {id} is not a bank {bank} record"),
            )),
            Some(_) => match &sent {
                Some(s)
                    if s.bank_code == bank
                        && s.kind == reply.kind.as_str()
                        && s.key_of(id).is_some() =>
                {
                    item.missing_field(reply.kind).map(|field| {
                        (
                            "MISSING_FIELD",
                            format!(
                                "an ok {} answer must carry {field}; record {id} was left as it was",
                                reply.kind.as_str()
                            ),
                        )
                    })
                }
                _ => Some((
                    "UNKNOWN_REQUEST",
                    format!(
                        "request {} is no {} request salur sent to bank {bank} for record {id}",
                        reply.request_id,
                        reply.kind.as_str()
                    ),
                )),
            },
        };
        if let Some((reason, why)) = refusal {
            refused.push(id);
            tally.refused.push(RefusedItem {
                item_id: id.to_string(),
                reason,
                why,
            });
        }
    }
    for id in refused {
        items.remove(&id);
    }
    Ok(sent.map(|request| Trusted { request }))
}

/// Each named record's bank (its code as the office gave it, normalised; `None` if unknown).
async fn records_banks(
    conn: &mut PgConnection,
    items: &HashMap<i64, &ReplyItem>,
) -> sqlx::Result<HashMap<i64, Option<String>>> {
    let ids: Vec<i64> = items.keys().copied().collect();
    Ok(records::bank_codes(conn, &ids)
        .await?
        .into_iter()
        .map(|(id, code)| {
            let code = code.and_then(|c| {
                crate::domain::BankCode::parse(&c)
                    .ok()
                    .map(|b| b.as_str().to_owned())
            });
            (id, code)
        })
        .collect())
}

/// The rows whose answer is for their current request: an account-opening answer for a request
/// carrying another idempotency key (the record was corrected and asked again since) is
/// stale and skipped. Also returns, for an inquiry, the account number each record asked about.
fn current(
    rows: Vec<RecordRow>,
    kind: RequestKind,
    sent: &SentRequest,
    tally: &mut Tally,
) -> (Vec<RecordRow>, HashMap<i64, String>) {
    let mut asked = HashMap::new();
    let mut keep = Vec::with_capacity(rows.len());
    for row in rows {
        match kind {
            RequestKind::Transfer => {
                // A transfer answer for an earlier payment of the record (paid, returned, and
                // paid again since under a new key) is stale.
                let current =
                    crate::stages::transfer::payment_key(row.batch_id, row.id, row.payment_no);
                if sent
                    .key_of(row.id)
                    .is_some_and(|k| !k.is_empty() && k != current)
                {
                    tally.skipped += 1;
                    continue;
                }
            }
            RequestKind::AccountOpen => {
                let current = match &row.open_key {
                    Some(key) => Some(key.clone()),
                    None => {
                        crate::domain::validate(&row.raw(), &crate::domain::AmountRange::WIDEST)
                            .ok()
                            .map(|recipient| open_key(&row, &recipient))
                    }
                };
                if current.is_none() || sent.key_of(row.id) != current.as_deref() {
                    tally.skipped += 1;
                    continue;
                }
            }
            RequestKind::AccountInquiry => {
                if let Some(a) = row
                    .account_number
                    .as_deref()
                    .filter(|a| !a.trim().is_empty())
                {
                    let Ok(account) = crate::domain::AccountNumber::parse(a) else {
                        tally.skipped += 1;
                        continue;
                    };
                    asked.insert(row.id, account.as_str().to_owned());
                }
            }
        }
        keep.push(row);
    }
    (keep, asked)
}
