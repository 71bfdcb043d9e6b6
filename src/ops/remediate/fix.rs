//! `salur records fix` and `salur dlq fix --file`: correct the office's values of blocked
//! records; each is validated at once and the answer lists the reasons that remain.

use super::{RemediateError, Scope, reasons_of};
use crate::config::Settings;
use crate::domain::{
    Actor, AllowedAmounts, AmountRange, RawRecord, Reason, check_text, mask_digits, validate_for,
};
use crate::intake::file::set_named_field;
use crate::messages::Stage;
use crate::stages::parked_message;
use crate::store::end;
use crate::store::{Change, RecordRow, State, batches, corrections, outbox, programmes, records};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// What a correction left.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FixOutcome {
    pub id: i64,
    pub row: i32,
    /// The fields that were set (English keys).
    pub changed: Vec<&'static str>,
    /// The reasons that remain after validating the corrected values; empty means the record
    /// is complete and can be replayed.
    pub reasons: Vec<Reason>,
    pub ready: bool,
}

/// Parses `field=value` corrections (`--set`).
pub fn parse_assignments(sets: &[String]) -> Result<Vec<(String, String)>, RemediateError> {
    sets.iter()
        .enumerate()
        .map(|(i, s)| {
            s.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or(RemediateError::BadAssignment(i + 1))
        })
        .collect()
}

/// Corrects fields of one blocked record and validates it at once; amounts against `range`
/// and the programme's amounts (an amount it does not pay is refused). `actor` is named on
/// the audit row.
///
/// A record waiting for approval, or approved and not yet sent to its bank, may be corrected
/// too (a payee change): it loses its approval and never reaches a bank on the list a checker
/// approved (see `payee_change`).
pub async fn fix(
    settings: &Settings,
    pool: &PgPool,
    scope: &Scope,
    actor: &Actor,
    id: i64,
    sets: &[(String, String)],
) -> Result<FixOutcome, RemediateError> {
    let range = &settings.amount_range;
    let mut tx = pool.begin().await?;
    let result = async {
        let row = records::lock_scoped(&mut tx, &[id], scope.office())
            .await?
            .into_iter()
            .next()
            .ok_or(RemediateError::NotFound(id))?;
        let sets: Vec<(String, Option<String>)> =
            sets.iter().map(|(k, v)| (k.clone(), cell(v))).collect();
        let amounts = programmes::allowed_amounts(&mut tx, &[row.program.as_str()]).await?;
        if let Some(from) = State::parse(&row.state).filter(|s| PAYEE_CHANGE_FROM.contains(s)) {
            let programme = amounts.get(&row.program).map(|a| (row.program.as_str(), a));
            return payee_change(settings, programme, &mut tx, &row, from, &sets, actor).await;
        }
        let reasons = current_reasons(&mut tx, &[id]).await?;
        let (outcome, raw) = fix_row(range, &amounts, &row, &reasons[&id], &sets)?;
        store_fix(&mut tx, &outcome, &raw, actor).await?;
        Ok(outcome)
    }
    .await;
    end(tx, result).await
}

fn cell(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The stored reasons of records (read under the caller's lock).
async fn current_reasons(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, serde_json::Value>, RemediateError> {
    Ok(records::reasons(conn, ids).await?.into_iter().collect())
}

/// Applies corrections to a blocked record's values (in memory) and validates the result;
/// `amounts` holds the amounts of the record's programme.
fn fix_row(
    range: &AmountRange,
    amounts: &HashMap<String, AllowedAmounts>,
    row: &RecordRow,
    row_reasons: &serde_json::Value,
    sets: &[(String, Option<String>)],
) -> Result<(FixOutcome, RawRecord), RemediateError> {
    if row.state != State::Blocked.as_str() {
        return Err(RemediateError::NotFixable {
            id: row.id,
            state: row.state.clone(),
            hint: if row.state == State::Dead.as_str() {
                "a dead record's data is complete: replay it with `salur dlq replay --id`"
            } else {
                "it is not waiting for a correction"
            },
        });
    }
    let programme = amounts.get(&row.program).map(|a| (row.program.as_str(), a));
    let (raw, changed) = corrected(range, programme, &row.raw, sets)?;
    let mut reasons = validate_for(&raw, range, programme)
        .err()
        .unwrap_or_default();
    // What the bank or verification found stays until a field it concerns is corrected.
    for r in reasons_of(row_reasons.clone()) {
        let Some(concerns) = r.code.fixed_by() else {
            continue;
        };
        if !concerns.iter().any(|f| changed.contains(f)) {
            reasons.push(r);
        }
    }
    let outcome = FixOutcome {
        id: row.id,
        row: row.row_number,
        changed,
        ready: reasons.is_empty(),
        reasons,
    };
    Ok((outcome, raw))
}

/// The edge rules of intake for one corrected value: its text (no control characters, its
/// length), and for an amount, the range it must lie in and the programme's amounts.
fn check_correction(
    range: &AmountRange,
    programme: Option<(&str, &AllowedAmounts)>,
    key: &'static str,
    value: Option<&str>,
) -> Result<(), RemediateError> {
    let Some(value) = value else { return Ok(()) };
    let refuse = |message: String| RemediateError::InvalidValue {
        field: key,
        message,
    };
    check_text(key, value).map_err(|e| refuse(e.to_string()))?;
    if key == "amount" {
        let amount = range.parse(value).map_err(|e| refuse(e.to_string()))?;
        if let Some((program, allowed)) = programme
            && !allowed.allows(amount.value())
        {
            return Err(refuse(format!(
                "is not one that programme {program} pays: write {}",
                allowed.describe()
            )));
        }
    }
    Ok(())
}

/// Writes the corrected values and the remaining reasons, with an audit row naming the fields
/// (never their values).
async fn store_fix(
    conn: &mut PgConnection,
    outcome: &FixOutcome,
    raw: &RawRecord,
    actor: &Actor,
) -> Result<(), RemediateError> {
    let reasons = serde_json::to_value(&outcome.reasons).expect("reasons serialize");
    let detail =
        serde_json::json!({"action": "fix", "fields": outcome.changed, "ready": outcome.ready});
    corrections::write(conn, outcome.id, raw, &reasons, detail, actor).await?;
    Ok(())
}

/// The states a record may be corrected in after verification: waiting for approval, or
/// approved and not yet sent to its bank (`verified`); or paid and its money come back
/// (`returned`). In between, the money is on its way.
const PAYEE_CHANGE_FROM: [State; 3] = [State::AwaitingApproval, State::Verified, State::Returned];

/// The fields that say who is paid, where and how much: a change of any needs approval again.
const PAYEE_FIELDS: [&str; 4] = ["amount", "bank_code", "account_number", "name"];

/// A payee's field as the audit row shows it: the amount and bank code in clear, the account
/// number and name masked.
fn audit_value(key: &str, value: Option<&str>) -> serde_json::Value {
    match value {
        None => serde_json::Value::Null,
        Some(v) => serde_json::Value::String(match key {
            "account_number" => mask_digits(v),
            "name" => crate::domain::mask_words(v),
            _ => v.to_owned(),
        }),
    }
}

/// A correction of a record waiting for approval or approved (`from`): it loses its approval.
/// A change of the amount alone sends it back to `awaiting_approval`, on the batch's next list
/// (the bank's check of the account still stands). Any other change (bank, account number,
/// name, …) must be checked by the bank again: the record goes to `blocked`, with the reasons
/// that remain (the mother's maiden name, erased after verification, must be given again for
/// a new account), for the office to replay; it then passes account opening or verification
/// again, and waits for approval on a new list. The audit row shows each payee field before and
/// after, masked.
async fn payee_change(
    settings: &Settings,
    programme: Option<(&str, &AllowedAmounts)>,
    conn: &mut PgConnection,
    row: &RecordRow,
    from: State,
    sets: &[(String, Option<String>)],
    actor: &Actor,
) -> Result<FixOutcome, RemediateError> {
    let range = &settings.amount_range;
    let (raw, set_keys) = corrected(range, programme, &row.raw, sets)?;
    let value_of = |r: &RawRecord, key: &str| {
        r.fields()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.clone())
    };
    let changed: Vec<&'static str> = set_keys
        .into_iter()
        .filter(|k| value_of(&raw, k) != value_of(&row.raw, k))
        .collect();
    // A returned record is parked by any correction, even of nothing (the same account, its
    // aid not collected in time): the office replays it, and it is paid again.
    if changed.is_empty() && from != State::Returned {
        return Ok(FixOutcome {
            id: row.id,
            row: row.row_number,
            changed,
            reasons: Vec::new(),
            ready: true,
        });
    }
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for key in changed.iter().filter(|k| PAYEE_FIELDS.contains(k)) {
        before.insert(
            (*key).to_owned(),
            audit_value(key, value_of(&row.raw, key).as_deref()),
        );
        after.insert(
            (*key).to_owned(),
            audit_value(key, value_of(&raw, key).as_deref()),
        );
    }
    let detail = serde_json::json!({
        "action": "payee_change",
        "fields": changed,
        "before": before,
        "after": after,
        "approval_id": row.approval_id,
    });
    let amount_only = changed == ["amount"] && from != State::Returned;
    let (to, reasons, amount) = if amount_only {
        let amount = raw
            .amount
            .as_deref()
            .map(|a| range.parse(a))
            .transpose()
            .map_err(|e| RemediateError::InvalidValue {
                field: "amount",
                message: e.to_string(),
            })?
            .ok_or(RemediateError::InvalidValue {
                field: "amount",
                message: "must not be empty: a payee is paid an amount".into(),
            })?;
        (State::AwaitingApproval, Vec::new(), Some(amount.value()))
    } else {
        let reasons = validate_for(&raw, range, programme)
            .err()
            .unwrap_or_default();
        (State::Blocked, reasons, None)
    };
    let forget_account = changed
        .iter()
        .any(|k| matches!(*k, "bank_code" | "account_number"));
    let moved = corrections::write_moving(
        conn,
        row.id,
        from,
        to,
        &raw,
        &serde_json::to_value(&reasons).expect("reasons serialize"),
        amount,
        forget_account,
        detail,
        actor,
    )
    .await?;
    debug_assert!(moved, "the record is locked");
    if to == State::Blocked {
        // Parked like any blocked record: its message on `salur.blocked`, in this transaction
        // (`dlq list`, replay and reconcile find it there as for the others).
        let parked = Change::to(row.id, State::Blocked).with_reasons(reasons.clone());
        let message = parked_message(settings, row, Stage::Transfer, &parked);
        outbox::insert(conn, &[message]).await?;
    }
    Ok(FixOutcome {
        id: row.id,
        row: row.row_number,
        changed,
        ready: reasons.is_empty(),
        reasons,
    })
}

/// `raw` with the corrections `sets` applied, each checked as the fix path checks it (an amount
/// its programme does not pay is refused), and the fields set (English keys, each once).
fn corrected(
    range: &AmountRange,
    programme: Option<(&str, &AllowedAmounts)>,
    raw: &RawRecord,
    sets: &[(String, Option<String>)],
) -> Result<(RawRecord, Vec<&'static str>), RemediateError> {
    let mut raw = raw.clone();
    let mut keys = Vec::new();
    for (field, value) in sets {
        let key = set_named_field(&mut raw, field, value.clone()).ok_or_else(|| {
            RemediateError::UnknownField {
                field: field.clone(),
            }
        })?;
        check_correction(range, programme, key, value.as_deref())?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok((raw, keys))
}

/// `(field, value)` pairs to set; `None` empties the field.
type Corrections = Vec<(String, Option<String>)>;

/// The column names that key a corrections file by row number.
/// (Not `no`: offices' spreadsheets number their lines in a `No` column that need not be the
/// row of the submitted file.)
const ROW_KEYS: [&str; 3] = ["row", "row_number", "baris"];

/// Bulk corrections for one batch from a CSV file (comma or semicolon): a key column — `row`
/// (the record's row in the batch file) or, when there is none, `nik` — and one column per field
/// to correct (names as in the batch file, Indonesian or English). An empty cell leaves the
/// field as it is. All or nothing: a row that names no blocked record of the batch refuses the
/// whole file, with its line.
pub async fn fix_file(
    range: &AmountRange,
    pool: &PgPool,
    scope: &Scope,
    actor: &Actor,
    batch_id: Uuid,
    file_name: &str,
    mut reader: impl std::io::Read,
) -> Result<Vec<FixOutcome>, RemediateError> {
    let bad = |line: u64, message: String| RemediateError::FixFile {
        file: file_name.to_owned(),
        line,
        message,
    };
    batch_in_scope(pool, scope, batch_id).await?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| bad(0, format!("cannot read it: {e}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad(0, "is not UTF-8 text: save it as CSV UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| bad(1, format!("the header cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let row_col = headers.iter().position(|h| ROW_KEYS.contains(&h.as_str()));
    let nik_col = headers.iter().position(|h| h == "nik");
    let key_col = row_col.or(nik_col).ok_or_else(|| {
        bad(
            1,
            "no key column: add a `row` column (the record's row in the batch file) or a `nik` column"
                .into(),
        )
    })?;
    for (i, h) in headers.iter().enumerate() {
        if i != key_col && set_named_field(&mut RawRecord::default(), h, None).is_none() {
            return Err(bad(
                1,
                format!(
                    "unknown column {h:?}: use the batch file's column names ({})",
                    crate::intake::file::field_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let mut wanted: Vec<(u64, String, Corrections)> = Vec::new(); // (line, key, corrections)
    for (i, rec) in csv.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, format!("cannot be read: {e}")))?;
        let key = rec.get(key_col).unwrap_or_default().trim().to_owned();
        if key.is_empty() {
            return Err(bad(
                line,
                format!("the key column {:?} is empty", headers[key_col]),
            ));
        }
        let sets = headers
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != key_col)
            .filter_map(|(c, h)| cell(rec.get(c).unwrap_or_default()).map(|v| (h.clone(), Some(v))))
            .collect();
        wanted.push((line, key, sets));
    }

    let mut tx = pool.begin().await?;
    let result = async {
        let by_row = row_col.is_some();
        let keys: Vec<String> = wanted
            .iter()
            .map(|(_, k, _)| digits_or_self(k, by_row))
            .collect();
        let found: Vec<(i64, String)> = if by_row {
            let rows: Vec<i32> = keys
                .iter()
                .zip(&wanted)
                .map(|(k, (line, _, _))| {
                    k.parse::<i32>()
                        .map_err(|_| bad(*line, format!("row {k:?} is not a row number")))
                })
                .collect::<Result<_, _>>()?;
            corrections::ids_by_row(&mut tx, batch_id, &rows).await?
        } else {
            corrections::ids_by_nik(&mut tx, batch_id, &keys).await?
        };
        let mut ids_by_key: HashMap<String, Vec<i64>> = HashMap::new();
        for (id, key) in found {
            ids_by_key.entry(key).or_default().push(id);
        }
        let all_ids: Vec<i64> = ids_by_key.values().flatten().copied().collect();
        let rows: HashMap<i64, RecordRow> = records::lock_scoped(&mut tx, &all_ids, scope.office())
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let reasons = current_reasons(&mut tx, &all_ids).await?;
        let programs: BTreeSet<&str> = rows.values().map(|r| r.program.as_str()).collect();
        let amounts =
            programmes::allowed_amounts(&mut tx, &programs.into_iter().collect::<Vec<_>>()).await?;
        let mut outcomes = Vec::with_capacity(wanted.len());
        let mut seen = BTreeSet::new();
        for ((line, shown, sets), key) in wanted.iter().zip(&keys) {
            let what = if by_row {
                format!("row {shown}")
            } else {
                format!("NIK {}", mask_digits(shown))
            };
            let id = match ids_by_key.get(key).map(Vec::as_slice) {
                Some([id]) => *id,
                Some(_) => {
                    return Err(bad(
                        *line,
                        format!("{what} is on several records of the batch: key the file by `row`"),
                    ));
                }
                None => return Err(bad(*line, format!("{what} is not in batch {batch_id}"))),
            };
            if !seen.insert(id) {
                return Err(bad(
                    *line,
                    format!("{what} is corrected twice in this file"),
                ));
            }
            let row = &rows[&id];
            let (outcome, raw) = fix_row(range, &amounts, row, &reasons[&id], sets)
                .map_err(|e| bad(*line, e.to_string()))?;
            store_fix(&mut tx, &outcome, &raw, actor).await?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
    .await;
    end(tx, result).await
}

fn digits_or_self(key: &str, by_row: bool) -> String {
    if by_row {
        key.to_owned()
    } else {
        key.chars().filter(char::is_ascii_digit).collect()
    }
}

async fn batch_in_scope(
    pool: &PgPool,
    scope: &Scope,
    batch_id: Uuid,
) -> Result<(), RemediateError> {
    if batches::visible(pool, batch_id, scope.office()).await? {
        Ok(())
    } else {
        Err(RemediateError::BatchNotFound(batch_id))
    }
}
