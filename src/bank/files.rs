//! Collective account opening by file (*buka rekening kolektif*): the bank receives a file of
//! the recipients to open accounts for, and sends back a file of results.
//!
//! **Request file** (`salur bank export-accounts`): CSV, comma-separated, UTF-8, a header line,
//! one line per record of the batch waiting for an account at that bank (state
//! `account_requested`, no account number given):
//! `item_id,nik,kk,name,mother_name,birth_place,birth_date,sex,address,region_code,phone`
//! (`birth_date` `YYYY-MM-DD`, `sex` `L`/`P`).
//!
//! **Result file** (`salur bank import-accounts`): CSV with the header
//! `item_id,status,account_number,account_name,reason_code,reason_message`; `status` is
//! `opened` (account number and name required) or `refused` (a refusal code required, e.g.
//! `NIK_NOT_FOUND`, `NIK_DATA_MISMATCH`, `CUSTOMER_BLACKLISTED`). It is applied as the bank's
//! account-opening answer, through the same code as an answer over AMQP, in one transaction:
//! a file with any error (its line and field are named) changes nothing. A line for a record
//! already answered is skipped, so importing a file twice changes nothing the second time.

use crate::bank::contract::{BankReason, BankReply, ItemStatus, ReplyItem, RequestKind, VERSION};
use crate::config::Settings;
use crate::domain::{AmountRange, validate};
use crate::stages::account_opening::open_item;
use crate::store::{State, records};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

pub const REQUEST_HEADER: [&str; 11] = [
    "item_id",
    "nik",
    "kk",
    "name",
    "mother_name",
    "birth_place",
    "birth_date",
    "sex",
    "address",
    "region_code",
    "phone",
];
pub const RESULT_HEADER: [&str; 6] = [
    "item_id",
    "status",
    "account_number",
    "account_name",
    "reason_code",
    "reason_message",
];

/// Writes the batch's account-opening requests for `bank`; returns how many.
pub async fn export_accounts(
    pool: &PgPool,
    bank: &str,
    batch: Uuid,
    out: &Path,
) -> anyhow::Result<usize> {
    let mut conn = pool.acquire().await?;
    let ids = records::batch_ids_in_state(&mut conn, batch, State::AccountRequested).await?;
    let rows = records::read_scoped(&mut conn, &ids, None).await?;
    // Write next to the target and rename, so a failed export leaves no half-written file.
    let tmp = out.with_extension("partial");
    let mut w = csv::Writer::from_path(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    w.write_record(REQUEST_HEADER)?;
    let mut n = 0;
    for row in &rows {
        let Ok(rec) = validate(&row.raw(), &AmountRange::WIDEST) else {
            continue;
        };
        if rec.bank.as_str() != bank || rec.account_number.is_some() {
            continue;
        }
        let i = open_item(row, &rec);
        w.write_record([
            &i.item_id,
            &i.nik,
            &i.kk,
            &i.name,
            &i.mother_name,
            &i.birth_place,
            &i.birth_date,
            &i.sex,
            &i.address,
            &i.region_code,
            i.phone.as_deref().unwrap_or(""),
        ])?;
        n += 1;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, out)?;
    Ok(n)
}

/// A result file that cannot be applied; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{file} line {line}, field `{field}`: {message}")]
    Line {
        file: String,
        line: u64,
        field: &'static str,
        message: String,
    },
}

#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub opened: u64,
    pub refused: u64,
    /// Lines for records no longer waiting for an account (already answered).
    pub skipped: u64,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} opened, {} refused, {} skipped (already answered)",
            self.opened, self.refused, self.skipped
        )
    }
}

struct Line {
    number: u64,
    item: ReplyItem,
}

/// Reads a result file whole; the first error names its line and field.
fn read_results(path: &Path) -> Result<Vec<Line>, FileError> {
    let file = path.display().to_string();
    let ferr = |message: String| FileError::File {
        file: file.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| ferr(format!("cannot read it: {e}")))?;
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes))
        .map_err(|_| ferr("is not UTF-8: save it as CSV UTF-8".into()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ferr(format!("unreadable header: {e}")))?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let missing: Vec<&str> = RESULT_HEADER[..4]
        .iter()
        .copied()
        .filter(|c| col(c).is_none())
        .collect();
    if !missing.is_empty() || col("reason_code").is_none() {
        return Err(ferr(format!(
            "the header lacks {}: a result file has the columns {}",
            if missing.is_empty() {
                "reason_code".to_owned()
            } else {
                missing.join(", ")
            },
            RESULT_HEADER.join(",")
        )));
    }
    let mut lines = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            FileError::Line {
                file: file.clone(),
                line,
                field: "*",
                message: format!("{e}: check for a missing or extra comma"),
            }
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let get = |name: &str| {
            col(name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .to_owned()
        };
        let err = |field: &'static str, message: String| FileError::Line {
            file: file.clone(),
            line,
            field,
            message,
        };
        let item_id = get("item_id");
        if item_id.parse::<i64>().is_err() {
            return Err(err(
                "item_id",
                format!("{item_id:?} is not an item id of the request file"),
            ));
        }
        if let Some(first) = seen.insert(item_id.clone(), line) {
            return Err(err(
                "item_id",
                format!("item {item_id} is also on line {first}: one line per item"),
            ));
        }
        let item = match get("status").to_lowercase().as_str() {
            "opened" => {
                let number = get("account_number");
                if number.len() < 6
                    || number.len() > 20
                    || !number.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(err(
                        "account_number",
                        "an opened account needs its number (6 to 20 digits)".into(),
                    ));
                }
                let name = get("account_name");
                if name.is_empty() {
                    return Err(err(
                        "account_name",
                        "an opened account needs its holder's name".into(),
                    ));
                }
                ReplyItem {
                    item_id,
                    status: ItemStatus::Ok,
                    account_number: Some(number),
                    account_name: Some(name),
                    reference: None,
                    reason: None,
                }
            }
            "refused" => {
                let code = get("reason_code").to_uppercase();
                if code.is_empty()
                    || !code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(err(
                        "reason_code",
                        "a refused line needs a refusal code such as NIK_NOT_FOUND, NIK_DATA_MISMATCH or CUSTOMER_BLACKLISTED".into(),
                    ));
                }
                let message = get("reason_message");
                ReplyItem {
                    item_id,
                    status: ItemStatus::Rejected,
                    account_number: None,
                    account_name: None,
                    reference: None,
                    reason: Some(BankReason {
                        code,
                        message: if message.is_empty() {
                            "refused by the bank (result file)".into()
                        } else {
                            message
                        },
                    }),
                }
            }
            other => return Err(err("status", format!("{other:?}: use opened or refused"))),
        };
        lines.push(Line { number: line, item });
    }
    if lines.is_empty() {
        return Err(ferr("has no result lines".into()));
    }
    Ok(lines)
}

/// Applies a result file of `bank` as its account-opening answers, all or nothing.
pub async fn import_accounts(
    settings: &Settings,
    pool: &PgPool,
    bank: &str,
    path: &Path,
) -> anyhow::Result<ImportSummary> {
    let lines = read_results(path)?;
    let file = path.display().to_string();
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l.item.item_id.parse().expect("checked"))
        .collect();
    let mut tx = pool.begin().await?;
    let rows = records::lock_scoped(&mut tx, &ids, None).await?;
    let by_id: HashMap<i64, _> = rows.iter().map(|r| (r.id, r)).collect();
    let mut waiting = Vec::new();
    let mut summary = ImportSummary::default();
    for (line, id) in lines.iter().zip(&ids) {
        let Some(row) = by_id.get(id) else {
            return Err(FileError::Line {
                file,
                line: line.number,
                field: "item_id",
                message: format!(
                    "no record {id}: is this the result of a request file salur wrote?"
                ),
            }
            .into());
        };
        // The bank code is not personal data (and a record past verification no longer has
        // every field it was validated with: the mother's name is erased).
        let row_bank = row
            .bank_code
            .as_deref()
            .and_then(|c| crate::domain::BankCode::parse(c).ok())
            .map(|b| b.as_str().to_owned());
        if row_bank.as_deref() != Some(bank) {
            return Err(FileError::Line {
                file,
                line: line.number,
                field: "item_id",
                message: format!("record {id} is not an account opening at bank {bank}: a bank answers only for its own"),
            }
            .into());
        }
        if row.state == State::AccountRequested.as_str() {
            waiting.push(line.item.clone());
        } else {
            summary.skipped += 1;
        }
    }
    for item in &waiting {
        match item.status {
            ItemStatus::Ok => summary.opened += 1,
            _ => summary.refused += 1,
        }
    }
    if !waiting.is_empty() {
        // The file answers the account-opening requests salur sent this bank: each item goes
        // with the request that asked for it, checked like any answer, as the bank's user
        // (the operator vouches for the file by naming its bank).
        let ids: Vec<i64> = waiting
            .iter()
            .filter_map(|i| i.item_id.parse().ok())
            .collect();
        let asked: HashMap<i64, Uuid> = crate::store::bank_requests::latest_for(
            &mut tx,
            RequestKind::AccountOpen.as_str(),
            &ids,
        )
        .await?
        .into_iter()
        .collect();
        let mut by_request: std::collections::BTreeMap<Uuid, Vec<ReplyItem>> = Default::default();
        for item in waiting {
            let request = item
                .item_id
                .parse()
                .ok()
                .and_then(|id: i64| asked.get(&id).copied())
                .unwrap_or_else(Uuid::nil);
            by_request.entry(request).or_default().push(item);
        }
        let user = crate::bank::users::user_name(settings, bank);
        for (request_id, items) in by_request {
            let reply = BankReply {
                v: VERSION,
                request_id,
                bank_code: bank.to_owned(),
                kind: RequestKind::AccountOpen,
                answered_at: chrono::Utc::now(),
                items,
            };
            crate::stages::replies::handle(settings, &mut tx, &reply, Some(&user))
                .await
                .map_err(|e| anyhow::anyhow!("applying {file}: {e}"))?;
        }
    }
    tx.commit().await?;
    Ok(summary)
}

/// bank-sim as a bank that opens accounts by file: reads a request file, decides every line as
/// bank-sim decides an account opening over AMQP (same ledger, same faults), and writes the
/// result file. Returns `(opened, refused)`.
pub async fn simulate_results(
    sim: &crate::bank::sim::Sim,
    bank: &str,
    request: &Path,
    result: &Path,
) -> anyhow::Result<(usize, usize)> {
    use crate::bank::contract::{AccountOpenItem, BankRequest, RequestBody};
    let mut reader = csv::Reader::from_path(request)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", request.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    anyhow::ensure!(
        header == REQUEST_HEADER,
        "{} is not a request file: its header is not {}",
        request.display(),
        REQUEST_HEADER.join(",")
    );
    let mut items = Vec::new();
    for record in reader.records() {
        let r = record?;
        let f = |i: usize| r.get(i).unwrap_or("").to_owned();
        items.push(AccountOpenItem {
            item_id: f(0),
            idempotency_key: String::new(),
            nik: f(1),
            kk: f(2),
            name: f(3),
            mother_name: f(4),
            birth_place: f(5),
            birth_date: f(6),
            sex: f(7),
            address: f(8),
            region_code: f(9),
            phone: Some(f(10)).filter(|p| !p.is_empty()),
        });
    }
    let mut w = csv::Writer::from_path(result)?;
    w.write_record(RESULT_HEADER)?;
    let (mut opened, mut refused) = (0, 0);
    for chunk in items.chunks(100) {
        let request = BankRequest {
            v: VERSION,
            request_id: Uuid::new_v4(),
            bank_code: bank.to_owned(),
            sent_at: chrono::Utc::now(),
            body: RequestBody::AccountOpen {
                items: chunk.to_vec(),
            },
        };
        for item in sim.answer(&request).await?.items {
            let reason = item.reason.clone().unwrap_or(BankReason {
                code: String::new(),
                message: String::new(),
            });
            let status = match item.status {
                ItemStatus::Ok => {
                    opened += 1;
                    "opened"
                }
                ItemStatus::Rejected => {
                    refused += 1;
                    "refused"
                }
                // A bank's file has no "try again": such a line is left out, to come in a
                // later file.
                ItemStatus::Error => continue,
            };
            w.write_record([
                item.item_id.as_str(),
                status,
                item.account_number.as_deref().unwrap_or(""),
                item.account_name.as_deref().unwrap_or(""),
                if status == "refused" {
                    &reason.code
                } else {
                    ""
                },
                if status == "refused" {
                    &reason.message
                } else {
                    ""
                },
            ])?;
        }
    }
    w.flush()?;
    Ok((opened, refused))
}
