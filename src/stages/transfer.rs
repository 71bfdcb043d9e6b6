//! Transfer: ask each record's bank to pay it, with an idempotency key derived from the record,
//! so that a request sent twice (a crash, a retry, a timeout) is paid once.

use super::account_opening::bank_request;
use super::{Step, Tally, group_by};
use crate::bank::contract::{Money, RequestBody, TransferItem};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::messages::{Stage, StageMessage};
use crate::store::{RecordRow, approvals};
use sqlx::PgConnection;
use uuid::Uuid;

const STAGE: Stage = Stage::Transfer;

/// Namespace of the idempotency keys (a fixed, random UUID).
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6b0f_4f0e_5a1c_4c4e_9d2b_8a6f_3e21_7c55);

/// The same for every request that pays this record: UUIDv5 of its batch and record id.
pub fn idempotency_key(batch_id: Uuid, record_id: i64) -> String {
    Uuid::new_v5(&KEY_NAMESPACE, format!("{batch_id}/{record_id}").as_bytes()).to_string()
}

/// The key of one payment of a record: its first payment's is [`idempotency_key`]; a record
/// paid again after its money came back (`returned`) is a new payment (`payment_no` 1, 2, …)
/// with a key of its own, or the bank would answer with the old, returned payment.
pub fn payment_key(batch_id: Uuid, record_id: i64, payment_no: i32) -> String {
    if payment_no == 0 {
        return idempotency_key(batch_id, record_id);
    }
    Uuid::new_v5(
        &KEY_NAMESPACE,
        format!("{batch_id}/{record_id}/{payment_no}").as_bytes(),
    )
    .to_string()
}

/// Every record advances (its bank is asked to pay it), except one of a programme that
/// requires approval that no checker approved: it goes back to wait for one, and nothing is
/// sent for it.
pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    msg: &StageMessage,
) -> sqlx::Result<Tally> {
    let mut step = Step::of(settings, STAGE);
    let rows = step.read(conn, &msg.record_ids).await?;
    let unapproved: Vec<&str> = rows
        .iter()
        .filter(|r| r.approval_id.is_none())
        .map(|r| r.program.as_str())
        .collect();
    let approval = if unapproved.is_empty() {
        Default::default()
    } else {
        approvals::requiring_approval(conn, &unapproved).await?
    };
    let (pay, hold): (Vec<RecordRow>, Vec<RecordRow>) = rows
        .into_iter()
        .partition(|r| r.approval_id.is_some() || !approval.contains(&r.program));
    for row in &hold {
        tracing::warn!(record_id = row.id, batch_id = %row.batch_id, "a record reached the transfer without an approval; it waits for one");
        step.decide(row, Outcome::HeldForApproval, Vec::new());
    }
    for row in &pay {
        step.decide(row, Outcome::Advanced, Vec::new());
    }
    for request in requests(settings, &pay) {
        step.send(request);
    }
    step.write(conn).await
}

/// One transfer request per bank for these records.
pub fn requests(settings: &Settings, rows: &[RecordRow]) -> Vec<crate::broker::Outgoing> {
    group_by(rows, |r| r.bank_code.clone().unwrap_or_default())
        .into_values()
        .map(|group| {
            let bank_code =
                crate::domain::BankCode::parse(group[0].bank_code.as_deref().unwrap_or_default())
                    .map(|b| b.as_str().to_owned())
                    .unwrap_or_default();
            let items = group
                .iter()
                .map(|r| TransferItem {
                    item_id: r.id.to_string(),
                    idempotency_key: payment_key(r.batch_id, r.id, r.payment_no),
                    account_number: r.bank_account.clone().unwrap_or_default(),
                    account_name: r.bank_account_name.clone().unwrap_or_default(),
                    amount: Money {
                        value: format!("{:.2}", r.amount.unwrap_or_default()),
                        currency: "IDR".into(),
                    },
                    description: format!("{} {}", r.program, r.period),
                })
                .collect();
            bank_request(settings, &bank_code, RequestBody::Transfer { items })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_is_deterministic_per_record() {
        let b = Uuid::from_u128(7);
        assert_eq!(idempotency_key(b, 1), idempotency_key(b, 1));
        assert_ne!(idempotency_key(b, 1), idempotency_key(b, 2));
        assert_ne!(
            idempotency_key(b, 1),
            idempotency_key(Uuid::from_u128(8), 1)
        );
    }
}
