//! Account opening: records with incomplete administrative data are blocked with every reason
//! found; complete ones are sent to their bank to open an account (or, when the office gave an
//! account number, to confirm it).

use super::{Step, Tally, group_by};
use crate::bank::contract::{
    AccountInquiryItem, AccountOpenItem, BankRequest, RequestBody, RequestKind, VERSION,
};
use crate::broker::{Outgoing, names};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Recipient, validate_for};
use crate::messages::{Stage, StageMessage};
use crate::store::RecordRow;
use sqlx::PgConnection;
use uuid::Uuid;

const STAGE: Stage = Stage::AccountOpening;

/// Complete records advance (their bank is asked to open or confirm the account); the others
/// are blocked with one reason per problem, an amount their programme does not pay among them
/// (`AMOUNT_NOT_ALLOWED`).
pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    msg: &StageMessage,
) -> sqlx::Result<Tally> {
    let mut step = Step::of(settings, STAGE);
    let rows = step.read(conn, &msg.record_ids).await?;
    let programs: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.program.as_str()).collect();
    let amounts =
        crate::store::programmes::allowed_amounts(conn, &programs.into_iter().collect::<Vec<_>>())
            .await?;
    let mut complete: Vec<(&RecordRow, Recipient)> = Vec::new();
    for row in &rows {
        if row.attempts == 0 {
            *step.tally.received.entry(row.program.clone()).or_default() += 1;
            *step.tally.requested.entry(row.program.clone()).or_default() +=
                row.amount.unwrap_or_default();
        }
        let programme = amounts.get(&row.program).map(|a| (row.program.as_str(), a));
        match validate_for(&row.raw, &settings.amount_range, programme) {
            Ok(recipient) => {
                let c = step.decide(row, Outcome::Advanced, Vec::new());
                c.amount = Some(recipient.amount.value());
                // What its answer is checked against, without opening a personal field.
                if recipient.account_number.is_none() {
                    c.open_key = Some(open_key(row, &recipient));
                }
                complete.push((row, recipient));
            }
            Err(reasons) => {
                step.decide(row, Outcome::Blocked, reasons);
            }
        }
    }
    for request in requests(settings, &complete) {
        step.send(request);
    }
    step.write(conn).await
}

/// One request per bank and kind (open, or confirm an account the office gave) for these
/// complete records.
pub fn requests(settings: &Settings, complete: &[(&RecordRow, Recipient)]) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let by_bank = group_by(complete.iter().map(|(r, _)| *r), |r| {
        (r.bank_code.clone(), r.account_number.is_some())
    });
    let recipients: std::collections::HashMap<i64, &Recipient> =
        complete.iter().map(|(r, rec)| (r.id, rec)).collect();
    for ((_, has_account), group) in by_bank {
        let first = recipients[&group[0].id];
        let bank_code = first.bank.as_str().to_owned();
        let body = if has_account {
            RequestBody::AccountInquiry {
                items: group
                    .iter()
                    .map(|r| {
                        let rec = recipients[&r.id];
                        AccountInquiryItem {
                            item_id: r.id.to_string(),
                            account_number: rec
                                .account_number
                                .as_ref()
                                .map(|a| a.as_str().to_owned())
                                .unwrap_or_default(),
                            nik: rec.nik.as_str().to_owned(),
                            name: rec.name.clone(),
                        }
                    })
                    .collect(),
            }
        } else {
            RequestBody::AccountOpen {
                items: group
                    .iter()
                    .map(|r| open_item(r, recipients[&r.id]))
                    .collect(),
            }
        };
        out.push(bank_request(settings, &bank_code, body));
    }
    out
}

/// Namespace of the account-opening idempotency keys (a fixed, random UUID).
const OPEN_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x3c7e_91a2_5b04_4f6d_8e1a_d2c9_47b0_6a13);

/// The same for every request that opens this record's account with these data: UUIDv5 of the
/// batch, the record id and every value the bank is given. A re-send (timeout, retry) carries
/// the same key, so the bank opens one account; a record corrected by its office (a fixed NIK or
/// name) is a new request for the bank, with a new key.
pub fn open_key(row: &RecordRow, rec: &Recipient) -> String {
    let item = open_item_values(row.id, rec);
    let values = [
        &item.nik,
        &item.kk,
        &item.name,
        &item.mother_name,
        &item.birth_place,
        &item.birth_date,
        &item.sex,
        &item.address,
        &item.region_code,
    ];
    let mut text = format!("{}/{}/{}", row.batch_id, row.id, rec.bank.as_str());
    for v in values {
        text.push('\u{1f}');
        text.push_str(v);
    }
    Uuid::new_v5(&OPEN_KEY_NAMESPACE, text.as_bytes()).to_string()
}

/// The account-opening item for a complete record (also written to collective account-opening
/// files by [`crate::bank::files`]).
pub fn open_item(row: &RecordRow, rec: &Recipient) -> AccountOpenItem {
    AccountOpenItem {
        idempotency_key: open_key(row, rec),
        ..open_item_values(row.id, rec)
    }
}

fn open_item_values(id: i64, rec: &Recipient) -> AccountOpenItem {
    AccountOpenItem {
        item_id: id.to_string(),
        idempotency_key: String::new(),
        nik: rec.nik.as_str().to_owned(),
        kk: rec.kk.as_str().to_owned(),
        name: rec.name.clone(),
        mother_name: rec.mother_name.clone(),
        birth_place: rec.birth_place.clone(),
        birth_date: rec.birth_date.format("%Y-%m-%d").to_string(),
        sex: rec.sex.as_code().to_owned(),
        address: rec.address.clone(),
        region_code: rec.region.as_str().to_owned(),
        phone: rec.phone.clone(),
    }
}

/// A request to a bank, routed `bank.<code>.<kind>` on `salur.bank`.
pub fn bank_request(settings: &Settings, bank_code: &str, body: RequestBody) -> Outgoing {
    let kind: RequestKind = body.kind();
    Outgoing {
        exchange: settings.name(names::BANK),
        routing_key: kind.routing_key(bank_code),
        payload: serde_json::to_vec(&BankRequest {
            v: VERSION,
            request_id: Uuid::new_v4(),
            bank_code: bank_code.to_owned(),
            sent_at: chrono::Utc::now(),
            body,
        })
        .expect("requests serialize"),
    }
}
