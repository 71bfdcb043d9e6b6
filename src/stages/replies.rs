//! Bank answers. An answer is applied only to records still waiting for it (`account_requested`
//! or `transfer_requested`): a late, duplicated or out-of-order answer changes nothing.

use super::{Poison, Tally, parked_message, retry_or_dead, stage_message, write};
use crate::bank::contract::{BankReply, ItemStatus, ReplyItem, RequestKind, VERSION};
use crate::config::Settings;
use crate::domain::{Reason, ReasonCode};
use crate::messages::Stage;
use crate::store::{Attempt, Change, RecordRow, State, records};
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
) -> Result<Tally, super::ProcessError> {
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
    let ids: Vec<i64> = items.keys().copied().collect();
    let (stage, waiting) = match reply.kind {
        RequestKind::AccountOpen | RequestKind::AccountInquiry => {
            (Stage::AccountOpening, State::AccountRequested)
        }
        RequestKind::Transfer => (Stage::Transfer, State::TransferRequested),
    };
    let mut tally = Tally::default();
    let rows = tally.lock(conn, &ids, waiting).await?;
    // The records of one request went to their waiting state in one transaction.
    tally.bank_round_trip = rows
        .iter()
        .filter_map(|r| r.in_state_seconds)
        .reduce(f64::max)
        .map(|s| (crate::metrics::bank_label(&reply.bank_code), stage, s));
    let mut changes = Vec::with_capacity(rows.len());
    let mut out = Vec::new();
    let mut opened: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
    let mut transient: Vec<&RecordRow> = Vec::new();
    let mut released: Vec<i64> = Vec::new();
    let detail = serde_json::json!({"request_id": reply.request_id, "bank": reply.bank_code});

    for row in &rows {
        let item = items[&row.id];
        match (item.status, reply.kind) {
            (ItemStatus::Ok, RequestKind::AccountOpen | RequestKind::AccountInquiry) => {
                let mut c = Change::to(row.id, State::AccountOpened)
                    .with_detail(detail.clone())
                    .with_attempt(Attempt::Reset);
                c.bank_account = item.account_number.clone();
                c.bank_account_name = item.account_name.clone();
                if c.bank_account.is_none() {
                    // An "ok" without an account is a broken answer: ask again.
                    transient.push(row);
                    continue;
                }
                changes.push(c);
                opened.entry(row.batch_id).or_default().push(row.id);
                tally.count(stage, "account_opened", 1);
            }
            (ItemStatus::Ok, RequestKind::Transfer) => {
                let mut c = Change::to(row.id, State::Disbursed).with_detail(detail.clone());
                c.bank_reference = item.reference.clone();
                changes.push(c);
                tally.count(stage, "disbursed", 1);
                *tally.disbursed.entry(row.program.clone()).or_default() +=
                    row.amount.unwrap_or_default();
            }
            (ItemStatus::Rejected, kind) => {
                let reason = bank_reason(kind, item);
                let to = if kind == RequestKind::Transfer {
                    released.push(row.id);
                    State::Failed
                } else {
                    State::Blocked
                };
                let reasons = vec![reason];
                tally.reasons(stage, &reasons);
                tally.count(
                    stage,
                    if to == State::Failed {
                        "failed"
                    } else {
                        "blocked"
                    },
                    1,
                );
                let c = Change::to(row.id, to)
                    .with_reasons(reasons)
                    .with_detail(detail.clone());
                if to == State::Blocked {
                    out.push(parked_message(settings, row, stage, &c));
                }
                changes.push(c);
            }
            (ItemStatus::Error, _) => transient.push(row),
        }
    }
    if !transient.is_empty() {
        let back_to = match stage {
            Stage::Transfer => State::Verified,
            _ => State::Received,
        };
        let why = "the bank answered with a transient error";
        let (c, o) = retry_or_dead(settings, stage, &transient, back_to, why, &mut tally);
        changes.extend(c);
        out.extend(o);
    }
    for (batch_id, ids) in opened {
        out.push(stage_message(settings, Stage::Verification, batch_id, ids));
    }
    write(conn, waiting, &changes, &out).await?;
    if reply.kind == RequestKind::Transfer && rows.len() < ids.len() {
        late_transfer_answers(conn, reply, &items, &rows, &mut tally, &mut released).await?;
    }
    if !released.is_empty() {
        // Not paid: the NIK may be paid by a later, corrected record.
        sqlx::query("DELETE FROM recipient_claims WHERE record_id = ANY($1)")
            .bind(&released)
            .execute(&mut *conn)
            .await?;
    }
    Ok(tally)
}

/// A transfer answer for a record that went `dead` waiting for it (the bank was down or backed
/// up longer than the retries): the bank's word decides. Paid is `disbursed`, refused is
/// `failed`; a transient error leaves it dead. Otherwise a payment the bank made would never
/// be recorded, and the totals would not reconcile.
async fn late_transfer_answers(
    conn: &mut PgConnection,
    reply: &BankReply,
    items: &HashMap<i64, &ReplyItem>,
    handled: &[RecordRow],
    tally: &mut Tally,
    released: &mut Vec<i64>,
) -> sqlx::Result<()> {
    let rest: Vec<i64> = items
        .keys()
        .copied()
        .filter(|id| !handled.iter().any(|r| r.id == *id))
        .collect();
    let dead = records::lock_in_state(conn, &rest, State::Dead).await?;
    let detail = serde_json::json!({
        "request_id": reply.request_id, "bank": reply.bank_code, "late_answer": true
    });
    let mut changes = Vec::new();
    for row in &dead {
        let item = items[&row.id];
        match item.status {
            ItemStatus::Ok => {
                let mut c = Change::to(row.id, State::Disbursed).with_detail(detail.clone());
                c.bank_reference = item.reference.clone();
                changes.push(c);
                tally.count(Stage::Transfer, "disbursed", 1);
                *tally.disbursed.entry(row.program.clone()).or_default() +=
                    row.amount.unwrap_or_default();
            }
            ItemStatus::Rejected => {
                let reasons = vec![bank_reason(RequestKind::Transfer, item)];
                tally.reasons(Stage::Transfer, &reasons);
                tally.count(Stage::Transfer, "failed", 1);
                released.push(row.id);
                changes.push(
                    Change::to(row.id, State::Failed)
                        .with_reasons(reasons)
                        .with_detail(detail.clone()),
                );
            }
            ItemStatus::Error => {}
        }
    }
    tally.skipped = tally.skipped.saturating_sub(changes.len() as u64);
    records::apply(conn, State::Dead, &changes).await?;
    Ok(())
}

/// The reason a bank refused, as one of salur's codes with the bank's words kept.
fn bank_reason(kind: RequestKind, item: &ReplyItem) -> Reason {
    let (bank_code, bank_message) = item
        .reason
        .as_ref()
        .map(|r| (r.code.as_str(), r.message.as_str()))
        .unwrap_or(("UNSPECIFIED", "no reason given"));
    let code = match (kind, ReasonCode::parse(bank_code)) {
        (RequestKind::Transfer, _) => ReasonCode::TransferRejected,
        (_, Some(code)) => code,
        (RequestKind::AccountOpen, None) => ReasonCode::NikNotFound,
        (RequestKind::AccountInquiry, None) => ReasonCode::AccountNotFound,
    };
    let field = match code {
        ReasonCode::NikNotFound => "nik",
        _ => "account_number",
    };
    Reason::new(
        code,
        field,
        format!("the bank refused: {bank_code}: {bank_message}"),
    )
}
