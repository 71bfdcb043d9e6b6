//! A bank's `transfer_returned` message ([`TransferReturned`]): transfers it paid whose money
//! came back, applied like a statement's credit lines ([`crate::ops::reconcile`]): each
//! disbursed record named, for its amount, moves to `returned` with the bank's reason and date.
//! Trusted only from the bank's own RabbitMQ user, and only for transfers salur asked that bank
//! for; an item already applied (the message sent twice) changes nothing.

use super::{Poison, RefusedItem, Tally};
use crate::bank::contract::{TRANSFER_RETURNED, TransferReturned, VERSION};
use crate::bank::statement::ReturnReason;
use crate::bank::users;
use crate::config::Settings;
use crate::stages::transfer::payment_key;
use crate::store::State;
use crate::store::reconciliations::{self as store, ReturnRow};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::HashSet;
use std::str::FromStr as _;

/// Whether a message on the bank replies queue is a `transfer_returned` notice.
pub fn is_return(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    serde_json::from_slice::<Kind>(body)
        .ok()
        .and_then(|k| k.kind)
        .is_some_and(|k| k == TRANSFER_RETURNED)
}

pub fn decode(body: &[u8]) -> Result<TransferReturned, Poison> {
    let msg: TransferReturned = serde_json::from_slice(body)
        .map_err(|e| Poison(format!("not a transfer_returned message: {e}")))?;
    if msg.v != VERSION {
        return Err(Poison(format!(
            "transfer_returned version {} is not supported (expected {VERSION})",
            msg.v
        )));
    }
    Ok(msg)
}

pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    msg: &TransferReturned,
    sender: Option<&str>,
) -> sqlx::Result<Tally> {
    let mut tally = Tally::default();
    let bank = sender.and_then(|u| users::bank_of(settings, u));
    tally.sender = Some(bank.unwrap_or("unknown").to_owned());
    let refuse = |tally: &mut Tally, key: &str, reason: &'static str, why: String| {
        tally.refused.push(RefusedItem {
            item_id: key.to_owned(),
            reason,
            why,
        });
    };
    let Some(bank) = bank.filter(|b| *b == msg.bank_code) else {
        for item in &msg.items {
            refuse(
                &mut tally,
                &item.idempotency_key,
                if sender.is_none() {
                    "NO_SENDER"
                } else {
                    "WRONG_BANK"
                },
                format!(
                    "a transfer_returned message for bank {} must be published by that bank's \
                     RabbitMQ user, with user_id set",
                    crate::metrics::bank_label(&msg.bank_code)
                ),
            );
        }
        return Ok(tally);
    };
    let keys: Vec<String> = msg
        .items
        .iter()
        .map(|i| i.idempotency_key.clone())
        .collect();
    let (by_key, transfers) = store::lock_transfers_by_key(conn, bank, &keys, &[]).await?;
    let mut seen = HashSet::new();
    let mut returns = Vec::new();
    for item in &msg.items {
        let key = &item.idempotency_key;
        let Some(t) = by_key.get(key).and_then(|id| transfers.get(id)) else {
            refuse(
                &mut tally,
                key,
                "UNKNOWN_REQUEST",
                format!("salur asked bank {bank} for no transfer with this idempotency key"),
            );
            continue;
        };
        let Some(reason) = ReturnReason::from_code(&item.reason_code) else {
            refuse(
                &mut tally,
                key,
                "MISSING_FIELD",
                format!(
                    "reason_code {:?} is not AC04, MD07 or NOCO",
                    item.reason_code
                ),
            );
            continue;
        };
        let amount = Decimal::from_str(&item.amount.value).ok();
        let current = payment_key(t.batch_id, t.id, t.payment_no) == *key;
        if !current || t.state != State::Disbursed.as_str() || !seen.insert(t.id) {
            // Applied before (sent twice), or the record is not paid under this key.
            tally.skipped += 1;
            continue;
        }
        if amount != t.amount || item.amount.currency != "IDR" {
            refuse(
                &mut tally,
                key,
                "MISSING_FIELD",
                format!(
                    "the amount returned ({} {}) is not the amount paid",
                    item.amount.value, item.amount.currency
                ),
            );
            continue;
        }
        returns.push(ReturnRow {
            record_id: t.id,
            payment_no: t.payment_no,
            batch_id: t.batch_id,
            program: t.program.clone(),
            bank_code: bank.to_owned(),
            key: key.clone(),
            bank_reference: item.reference.clone(),
            amount: t.amount.unwrap_or_default(),
            reason_code: reason.as_str().to_owned(),
            returned_on: item.returned_on,
        });
    }
    crate::ops::reconcile::apply_returns(conn, None, &returns, None).await?;
    if !returns.is_empty() {
        tracing::info!(bank = %bank, returned = returns.len(), "transfers returned by the bank");
    }
    Ok(tally)
}
