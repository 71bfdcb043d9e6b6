//! Remediation: what an office does with its blocked records and an operator with dead ones.
//!
//! - [`show`]: a record with its personal data masked, its state, reasons and audit history.
//! - [`fix`] / [`fix_file`]: correct the office's values of blocked records; each is validated at
//!   once and the answer lists the reasons that remain.
//! - [`replay`]: send parked records back: a blocked record whose data is now complete restarts
//!   at account opening (corrected data must be checked by the bank again); a dead record
//!   resumes at the stage where its retries ran out (a transfer keeps its idempotency key, so
//!   the bank still pays once). A blocked record that is still incomplete stays parked.
//! - [`discard`]: close a parked record for good (`rejected`, DISCARDED, the why in the audit).
//! - [`dlq_list`]: what is parked, why, since when.
//!
//! The database decides; the queues follow: replay reads the records from PostgreSQL (a purged
//! queue loses nothing), and [`reconcile`] afterwards removes from `salur.blocked` and
//! `salur.dead` every message whose record is no longer parked (and duplicates), and puts back
//! a message for a parked record that has none.
//!
//! Every operation takes a [`Scope`]: an office sees and changes only its own batches' records;
//! another office's record is [`RemediateError::NotFound`], exactly like a record that does not
//! exist.

use crate::broker::{Broker, Outgoing, names};
use crate::config::Settings;
use crate::domain::{
    AmountRange, Reason, ReasonCode, check_text, mask_all_digits, mask_digits, mask_words, validate,
};
use crate::intake::RawRecord;
use crate::intake::file::set_named_field;
use crate::messages::{self, ParkedRecord, Stage};
use crate::stages::{parked_record, stage_message};
use crate::store::{Attempt, Change, RecordRow, State, outbox, records};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Whose records an operation may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every office's (the CLI on the server, an operator, an auditor reading).
    All,
    /// Only the records of batches this office submitted.
    Office(String),
}

impl Scope {
    fn office(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Office(o) => Some(o),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    #[error("no record {0}: check the id in `salur dlq list` or in the batch report")]
    NotFound(i64),
    #[error("no batch {0}: check the id printed by `salur submit`")]
    BatchNotFound(Uuid),
    #[error("record {id} is {state}: only blocked records can be corrected ({hint})")]
    NotFixable {
        id: i64,
        state: String,
        hint: &'static str,
    },
    #[error("record {id} is {state}: only blocked or dead records can be discarded")]
    NotParked { id: i64, state: String },
    /// A correction that intake would have refused, or that could never be paid: refused at
    /// the fix, so a fix never produces a record that fails later. The message never carries
    /// the value.
    #[error("the correction of {field} is refused: {field} {message}")]
    InvalidValue {
        field: &'static str,
        message: String,
    },
    #[error("unknown field {field:?}: use one of {}", crate::intake::file::field_keys().collect::<Vec<_>>().join(", "))]
    UnknownField { field: String },
    /// Carries only the argument's position: its text may be personal data.
    #[error(
        "--set argument {0} is not a correction: write field=value, e.g. mother_name=\"Siti Aminah\""
    )]
    BadAssignment(usize),
    #[error("{file} line {line}: {message}")]
    FixFile {
        file: String,
        line: u64,
        message: String,
    },
    #[error(
        "record {0} went dead waiting for its transfer: the bank may have paid it. Replay it \
         (`salur dlq replay --id {0}`): the bank answers for its idempotency key, paid or not, \
         and pays at most once"
    )]
    TransferMayBePaid(i64),
    #[error("say why the record is discarded (--why), for the audit trail")]
    NoReason,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A record as an office may see it: personal data masked.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub id: i64,
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub row: i32,
    pub state: String,
    pub reasons: Vec<Reason>,
    /// Tries in the current stage that failed for a while.
    pub attempts: i32,
    pub updated_at: DateTime<Utc>,
    /// The office's values, masked (NIK `5301********0001`, names `M**** B***`, dates `****-**-**`).
    pub fields: BTreeMap<&'static str, Option<String>>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    pub bank_reference: Option<String>,
    /// Every state change, oldest first.
    pub history: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: String,
    pub reasons: Vec<Reason>,
    pub detail: Option<serde_json::Value>,
}

/// The office's values of a record, masked for display.
pub fn masked_fields(raw: &RawRecord) -> BTreeMap<&'static str, Option<String>> {
    let m = |v: &Option<String>, f: fn(&str) -> String| v.as_deref().map(f);
    BTreeMap::from([
        ("nik", m(&raw.nik, mask_digits)),
        ("kk", m(&raw.kk, mask_digits)),
        ("name", m(&raw.name, mask_words)),
        ("mother_name", m(&raw.mother_name, mask_words)),
        ("birth_place", m(&raw.birth_place, mask_words)),
        ("birth_date", m(&raw.birth_date, mask_all_digits)),
        ("sex", raw.sex.clone()),
        ("address", m(&raw.address, mask_words)),
        ("region_code", raw.region_code.clone()),
        ("phone", m(&raw.phone, mask_digits)),
        ("bank_code", raw.bank_code.clone()),
        ("account_number", m(&raw.account_number, mask_digits)),
        ("amount", raw.amount.clone()),
    ])
}

fn reasons_of(value: serde_json::Value) -> Vec<Reason> {
    serde_json::from_value(value).unwrap_or_default()
}

/// A record with its audit history.
pub async fn show(pool: &PgPool, scope: &Scope, id: i64) -> Result<RecordView, RemediateError> {
    let mut conn = pool.acquire().await?;
    let head: Option<(String, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "SELECT b.office, r.updated_at, r.reasons FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = $1 AND ($2::text IS NULL OR b.office = $2)",
    )
    .bind(id)
    .bind(scope.office())
    .fetch_optional(&mut *conn)
    .await?;
    let (office, updated_at, reasons) = head.ok_or(RemediateError::NotFound(id))?;
    let row = one(&mut conn, id).await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT at, from_state, to_state, reasons, detail FROM record_events
         WHERE record_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(RecordView {
        id,
        batch_id: row.batch_id,
        office,
        program: row.program.clone(),
        period: row.period.clone(),
        row: row.row_number,
        state: row.state.clone(),
        reasons: reasons_of(reasons),
        attempts: row.attempts,
        updated_at,
        fields: masked_fields(&row.raw()),
        amount: row.amount,
        bank_reference: row.bank_reference.clone(),
        history: events
            .into_iter()
            .map(|(at, from, to, reasons, detail)| EventView {
                at,
                from,
                to,
                reasons: reasons_of(reasons),
                detail,
            })
            .collect(),
    })
}

/// `(at, from, to, reasons, detail)` of an audit row.
type EventRow = (
    DateTime<Utc>,
    Option<String>,
    String,
    serde_json::Value,
    Option<serde_json::Value>,
);

/// One record, for display (no lock).
async fn one(conn: &mut PgConnection, id: i64) -> Result<RecordRow, RemediateError> {
    records::read_scoped(conn, &[id], None)
        .await?
        .into_iter()
        .next()
        .ok_or(RemediateError::NotFound(id))
}

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

/// Corrects fields of one blocked record and validates it at once; amounts against `range`.
pub async fn fix(
    range: &AmountRange,
    pool: &PgPool,
    scope: &Scope,
    id: i64,
    sets: &[(String, String)],
) -> Result<FixOutcome, RemediateError> {
    let mut tx = pool.begin().await?;
    let row = records::lock_scoped(&mut tx, &[id], scope.office())
        .await?
        .into_iter()
        .next()
        .ok_or(RemediateError::NotFound(id))?;
    let sets: Vec<(String, Option<String>)> =
        sets.iter().map(|(k, v)| (k.clone(), cell(v))).collect();
    let reasons = current_reasons(&mut tx, &[id]).await?;
    let (outcome, raw) = fix_row(range, &row, &reasons[&id], &sets)?;
    store_fix(&mut tx, &outcome, &raw).await?;
    tx.commit().await?;
    Ok(outcome)
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
    let rows: Vec<(i64, serde_json::Value)> =
        sqlx::query_as("SELECT id, reasons FROM records WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Applies corrections to a blocked record's values (in memory) and validates the result.
fn fix_row(
    range: &AmountRange,
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
    let mut raw = row.raw();
    let mut changed = Vec::new();
    for (field, value) in sets {
        let key = set_named_field(&mut raw, field, value.clone()).ok_or_else(|| {
            RemediateError::UnknownField {
                field: field.clone(),
            }
        })?;
        check_correction(range, key, value.as_deref())?;
        if !changed.contains(&key) {
            changed.push(key);
        }
    }
    let mut reasons = validate(&raw, range).err().unwrap_or_default();
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
/// length), and for an amount, the range it must lie in.
fn check_correction(
    range: &AmountRange,
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
        range.parse(value).map_err(|e| refuse(e.to_string()))?;
    }
    Ok(())
}

/// Writes the corrected values and the remaining reasons, with an audit row naming the fields
/// (never their values).
async fn store_fix(
    conn: &mut PgConnection,
    outcome: &FixOutcome,
    raw: &RawRecord,
) -> Result<(), RemediateError> {
    let reasons = serde_json::to_value(&outcome.reasons).expect("reasons serialize");
    let ring = crate::store::sealed::keyring().map_err(sqlx::Error::from)?;
    let seal =
        |column: &str, v: &Option<String>| v.as_deref().map(|v| ring.seal(column, outcome.id, v));
    sqlx::query(
        "WITH fixed AS (
             UPDATE records SET nik = $2, kk = $3, name = $4, mother_name = $5, birth_place = $6,
                 birth_date = $7, sex = $8, address = $9, region_code = $10, phone = $11,
                 bank_code = $12, account_number = $13, amount_raw = $14, reasons = $15,
                 nik_hash = $17, updated_at = now()
             WHERE id = $1 AND state = 'blocked'
             RETURNING id
         )
         INSERT INTO record_events (record_id, from_state, to_state, reasons, detail)
         SELECT id, 'blocked', 'blocked', $15, $16 FROM fixed",
    )
    .bind(outcome.id)
    .bind(seal("nik", &raw.nik))
    .bind(seal("kk", &raw.kk))
    .bind(seal("name", &raw.name))
    .bind(seal("mother_name", &raw.mother_name))
    .bind(seal("birth_place", &raw.birth_place))
    .bind(seal("birth_date", &raw.birth_date))
    .bind(&raw.sex)
    .bind(seal("address", &raw.address))
    .bind(&raw.region_code)
    .bind(seal("phone", &raw.phone))
    .bind(&raw.bank_code)
    .bind(seal("account_number", &raw.account_number))
    .bind(&raw.amount)
    .bind(&reasons)
    .bind(serde_json::json!({"action": "fix", "fields": outcome.changed, "ready": outcome.ready}))
    .bind(raw.nik.as_deref().and_then(|n| ring.nik_hash(n)))
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        sqlx::query_as(
            "SELECT id, row_number::text FROM records WHERE batch_id = $1 AND row_number = ANY($2)",
        )
        .bind(batch_id)
        .bind(&rows)
        .fetch_all(&mut *tx)
        .await?
    } else {
        // By the keyed hash of the NIK: the records hold no NIK in clear.
        let ring = crate::store::sealed::keyring().map_err(sqlx::Error::from)?;
        let by_hash: HashMap<Vec<u8>, &String> = keys
            .iter()
            .filter_map(|k| ring.nik_hash(k).map(|h| (h, k)))
            .collect();
        let hashes: Vec<&Vec<u8>> = by_hash.keys().collect();
        let found: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, nik_hash FROM records WHERE batch_id = $1 AND nik_hash = ANY($2)",
        )
        .bind(batch_id)
        .bind(&hashes)
        .fetch_all(&mut *tx)
        .await?;
        found
            .into_iter()
            .filter_map(|(id, h)| by_hash.get(&h).map(|k| (id, (*k).clone())))
            .collect()
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
        let (outcome, raw) =
            fix_row(range, row, &reasons[&id], sets).map_err(|e| bad(*line, e.to_string()))?;
        store_fix(&mut tx, &outcome, &raw).await?;
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
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
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM batches WHERE id = $1 AND ($2::text IS NULL OR office = $2)",
    )
    .bind(batch_id)
    .bind(scope.office())
    .fetch_optional(pool)
    .await?;
    found
        .map(|_| ())
        .ok_or(RemediateError::BatchNotFound(batch_id))
}

/// Which parked records to act on. Empty filters select every parked record in scope. A reason
/// matches the record's current reasons or the ones it was parked with (a corrected record has
/// none left, and is still replayed by `--reason` of what blocked it).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub batch_id: Option<Uuid>,
    pub reason: Option<ReasonCode>,
    pub ids: Vec<i64>,
    /// `blocked` or `dead`; both when `None`.
    pub state: Option<State>,
}

/// The `WHERE` clause of a [`Filter`] over `records r JOIN batches b`, parameters $1–$5 bound
/// by [`bind_filter!`].
const FILTER_WHERE: &str = "WHERE r.state = ANY($1)
           AND ($2::text IS NULL OR b.office = $2)
           AND ($3::uuid IS NULL OR r.batch_id = $3)
           AND ($4::text IS NULL OR r.reasons @> jsonb_build_array(jsonb_build_object('code', $4::text))
                OR EXISTS (SELECT 1 FROM record_events e
                           WHERE e.record_id = r.id AND e.to_state = r.state AND e.from_state <> r.state
                             AND e.reasons @> jsonb_build_array(jsonb_build_object('code', $4::text))))
           AND (cardinality($5::bigint[]) = 0 OR r.id = ANY($5))";

/// Binds $1–$5 of [`FILTER_WHERE`].
macro_rules! bind_filter {
    ($query:expr, $scope:expr, $filter:expr) => {
        $query
            .bind($filter.states())
            .bind($scope.office())
            .bind($filter.batch_id)
            .bind($filter.reason.map(|r| r.as_str()))
            .bind(&$filter.ids)
    };
}

impl Filter {
    /// The parked states the filter covers.
    fn states(&self) -> Vec<&'static str> {
        match self.state {
            Some(s) => vec![s.as_str()],
            None => vec![State::Blocked.as_str(), State::Dead.as_str()],
        }
    }
}

/// Parked records matching `filter`, oldest first.
async fn parked(
    conn: &mut PgConnection,
    scope: &Scope,
    filter: &Filter,
    limit: Option<i64>,
) -> Result<Vec<ParkedRow>, RemediateError> {
    let sql = format!(
        "SELECT r.id, r.batch_id, r.row_number, r.state, r.reasons, r.attempts, r.updated_at,
                (SELECT e.from_state FROM record_events e
                 WHERE e.record_id = r.id AND e.to_state = r.state AND e.from_state <> r.state
                 ORDER BY e.id DESC LIMIT 1) AS parked_from
         FROM records r JOIN batches b ON b.id = r.batch_id
         {FILTER_WHERE}
         ORDER BY r.updated_at, r.id
         LIMIT $6"
    );
    let rows: Vec<ParkedRow> = bind_filter!(sqlx::query_as(&sql), scope, filter)
        .bind(limit.unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows)
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ParkedRow {
    id: i64,
    batch_id: Uuid,
    row_number: i32,
    state: String,
    reasons: serde_json::Value,
    attempts: i32,
    updated_at: DateTime<Utc>,
    /// The state the record was in when it was parked: tells the stage where it stopped.
    parked_from: Option<String>,
}

/// The stage a record stopped at, from the state it was parked from.
fn stopped_at(parked_from: Option<&str>) -> Stage {
    crate::domain::lifecycle::stopped_at(parked_from)
}

/// One parked record in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedView {
    pub id: i64,
    pub batch_id: Uuid,
    pub row: i32,
    /// `blocked` (salur.blocked) or `dead` (salur.dead).
    pub state: String,
    pub stage: Stage,
    pub reasons: Vec<Reason>,
    pub attempts: i32,
    pub since: DateTime<Utc>,
}

/// What is parked and why.
#[derive(Debug, Clone, Serialize)]
pub struct DlqList {
    /// Parked records per state (`blocked`, `dead`) matching the filter.
    pub totals: BTreeMap<String, i64>,
    /// Records per state and reason code (a record with two reasons counts under both).
    pub by_reason: BTreeMap<String, BTreeMap<String, i64>>,
    /// The oldest parked record's age in seconds, per state.
    pub oldest_seconds: BTreeMap<String, i64>,
    /// The records, oldest first (at most the limit asked for).
    pub records: Vec<ParkedView>,
}

pub async fn dlq_list(
    pool: &PgPool,
    scope: &Scope,
    filter: &Filter,
    limit: i64,
) -> Result<DlqList, RemediateError> {
    let mut conn = pool.acquire().await?;
    let by_reason_sql = format!(
        "SELECT r.state, reason->>'code', count(*)
         FROM records r JOIN batches b ON b.id = r.batch_id
              CROSS JOIN LATERAL jsonb_array_elements(r.reasons) AS reason
         {FILTER_WHERE}
         GROUP BY 1, 2"
    );
    let counts: Vec<(String, String, i64)> =
        bind_filter!(sqlx::query_as(&by_reason_sql), scope, filter)
            .fetch_all(&mut *conn)
            .await?;
    let totals_sql = format!(
        "SELECT r.state, count(*), extract(epoch FROM now() - min(r.updated_at))::bigint
         FROM records r JOIN batches b ON b.id = r.batch_id
         {FILTER_WHERE}
         GROUP BY 1"
    );
    let totals_rows: Vec<(String, i64, i64)> =
        bind_filter!(sqlx::query_as(&totals_sql), scope, filter)
            .fetch_all(&mut *conn)
            .await?;
    let mut by_reason: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (state, code, n) in counts {
        by_reason.entry(state).or_default().insert(code, n);
    }
    let records = parked(&mut conn, scope, filter, Some(limit))
        .await?
        .into_iter()
        .map(|p| ParkedView {
            id: p.id,
            batch_id: p.batch_id,
            row: p.row_number,
            stage: stopped_at(p.parked_from.as_deref()),
            state: p.state,
            reasons: reasons_of(p.reasons),
            attempts: p.attempts,
            since: p.updated_at,
        })
        .collect();
    Ok(DlqList {
        totals: totals_rows
            .iter()
            .map(|(s, n, _)| (s.clone(), *n))
            .collect(),
        oldest_seconds: totals_rows
            .iter()
            .map(|(s, _, a)| (s.clone(), *a))
            .collect(),
        by_reason,
        records,
    })
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayOutcome {
    /// Records sent back, per stage they restart at.
    pub replayed: BTreeMap<String, u64>,
    pub replayed_ids: Vec<i64>,
    /// Blocked records still incomplete: they stay parked, with these reasons.
    pub still_blocked: Vec<FixOutcome>,
    /// Ids asked for by `--id` that were not replayed, with why (their state, or `not found`).
    pub not_parked: Vec<(i64, String)>,
    /// Messages removed from / put back on the parked queues afterwards.
    pub queues: Option<Reconciled>,
}

/// Sends parked records back to the pipeline (see the module documentation), then brings the
/// parked queues in line with the database.
pub async fn replay(
    settings: &Settings,
    pool: &PgPool,
    scope: &Scope,
    filter: &Filter,
) -> Result<ReplayOutcome, RemediateError> {
    let mut tx = pool.begin().await?;
    let found = parked(&mut tx, scope, filter, None).await?;
    let ids: Vec<i64> = found.iter().map(|p| p.id).collect();
    let rows: HashMap<i64, RecordRow> = records::lock_scoped(&mut tx, &ids, scope.office())
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut outcome = ReplayOutcome::default();
    let mut changes: BTreeMap<State, Vec<Change>> = BTreeMap::new();
    let mut work: BTreeMap<(Stage, Uuid), Vec<i64>> = BTreeMap::new();
    for p in &found {
        // Re-read under the lock: another replay may have moved it meanwhile.
        let Some(row) = rows.get(&p.id).filter(|r| r.state == p.state) else {
            continue;
        };
        let from = State::parse(&row.state).expect("parked state");
        let stage = if from == State::Blocked {
            if let Err(reasons) = validate(&row.raw(), &settings.amount_range) {
                outcome.still_blocked.push(FixOutcome {
                    id: row.id,
                    row: row.row_number,
                    changed: Vec::new(),
                    ready: false,
                    reasons,
                });
                continue;
            }
            Stage::AccountOpening
        } else {
            stopped_at(p.parked_from.as_deref())
        };
        changes.entry(from).or_default().push(
            Change::to(row.id, State::waiting_for(stage))
                .with_attempt(Attempt::Reset)
                .with_detail(serde_json::json!({"action": "replay", "stage": stage})),
        );
        work.entry((stage, row.batch_id)).or_default().push(row.id);
        *outcome
            .replayed
            .entry(stage.as_str().to_owned())
            .or_default() += 1;
        outcome.replayed_ids.push(row.id);
    }
    if !filter.ids.is_empty() {
        let states: HashMap<i64, String> = rows_states(&mut tx, scope, &filter.ids).await?;
        for id in &filter.ids {
            if !outcome.replayed_ids.contains(id)
                && !outcome.still_blocked.iter().any(|o| o.id == *id)
            {
                let why = states
                    .get(id)
                    .map_or_else(|| "not found".to_owned(), |s| format!("is {s}, not parked"));
                outcome.not_parked.push((*id, why));
            }
        }
    }
    let mut out = Vec::new();
    for ((stage, batch_id), ids) in work {
        for chunk in ids.chunks(settings.chunk_size) {
            out.push(stage_message(settings, stage, batch_id, chunk.to_vec()));
        }
    }
    for (from, changes) in &changes {
        records::apply(&mut tx, *from, changes).await?;
    }
    outbox::insert(&mut tx, &out).await?;
    tx.commit().await?;
    if !outcome.replayed_ids.is_empty() {
        crate::ops::submit::publish_now(settings, pool).await;
        outcome.queues = reconcile_quietly(settings, pool).await;
    }
    Ok(outcome)
}

/// The states of those of `ids` the scope may see.
async fn rows_states(
    conn: &mut PgConnection,
    scope: &Scope,
    ids: &[i64],
) -> Result<HashMap<i64, String>, RemediateError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT r.id, r.state FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND ($2::text IS NULL OR b.office = $2)",
    )
    .bind(ids)
    .bind(scope.office())
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// What a discard did.
#[derive(Debug, Clone, Serialize)]
pub struct Discarded {
    pub id: i64,
    pub was: String,
    pub queues: Option<Reconciled>,
}

/// Closes a parked record for good: `rejected` with DISCARDED; the why is kept in the audit row.
/// A NIK claimed for the programme and period stays claimed (a transfer that went dead may have
/// been paid; the bank's ledger decides, not a second record).
pub async fn discard(
    settings: &Settings,
    pool: &PgPool,
    scope: &Scope,
    id: i64,
    why: &str,
) -> Result<Discarded, RemediateError> {
    let why = why.trim();
    if why.is_empty() {
        return Err(RemediateError::NoReason);
    }
    let mut tx = pool.begin().await?;
    let row = records::lock_scoped(&mut tx, &[id], scope.office())
        .await?
        .into_iter()
        .next()
        .ok_or(RemediateError::NotFound(id))?;
    let from = State::parse(&row.state).expect("known state");
    if !matches!(from, State::Blocked | State::Dead) {
        return Err(RemediateError::NotParked {
            id,
            state: row.state,
        });
    }
    if from == State::Dead {
        let parked_from: Option<String> = sqlx::query_scalar(
            "SELECT from_state FROM record_events WHERE record_id = $1 AND to_state = 'dead'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        if stopped_at(parked_from.as_deref()) == Stage::Transfer {
            return Err(RemediateError::TransferMayBePaid(id));
        }
    }
    let reasons = vec![Reason::new(
        ReasonCode::Discarded,
        "record",
        "closed for good by an operator; the audit trail says why",
    )];
    let change = Change::to(id, State::Rejected)
        .with_reasons(reasons)
        .with_detail(serde_json::json!({"action": "discard", "why": why}));
    records::apply(&mut tx, from, &[change]).await?;
    tx.commit().await?;
    Ok(Discarded {
        id,
        was: from.as_str().to_owned(),
        queues: reconcile_quietly(settings, pool).await,
    })
}

/// What reconciling the parked queues with the database did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Reconciled {
    /// Messages kept (their record is still parked, or the message is not a record's).
    pub kept: u64,
    /// Messages removed: their record is no longer parked, or it had another message.
    pub removed: u64,
    /// Messages put back for parked records that had none (a purged queue).
    pub restored: u64,
}

async fn reconcile_quietly(settings: &Settings, pool: &PgPool) -> Option<Reconciled> {
    use backon::{ExponentialBuilder, Retryable as _};
    let tried = (|| reconcile(settings, pool))
        .retry(
            ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(std::time::Duration::from_millis(500))
                .with_max_times(4),
        )
        .await;
    match tried {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "the parked queues could not be brought in line with the database now; run `salur dlq reconcile` later"
            );
            None
        }
    }
}

/// Brings `salur.blocked` and `salur.dead` in line with the database: one message per parked
/// record, none for a record that is no longer parked. Messages that are not a record's (an
/// unreadable message parked on `salur.dead`) are kept as they are.
pub async fn reconcile(settings: &Settings, pool: &PgPool) -> anyhow::Result<Reconciled> {
    // One reconcile at a time, across processes: a second one would find the queues emptied
    // by the first (its messages held unacked) and put back duplicates.
    let mut lock = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(RECONCILE_LOCK)
        .execute(&mut *lock)
        .await?;
    let result = async {
        let broker = Broker::connect(settings).await?;
        let result = reconcile_with(&broker, pool).await;
        broker.close().await;
        result
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RECONCILE_LOCK)
        .execute(&mut *lock)
        .await;
    result
}

/// Whether parked messages wait in the outbox.
async fn parked_on_the_way(settings: &Settings, pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE exchange = $1)")
        .bind(settings.name(names::PARKED))
        .fetch_one(pool)
        .await
}

/// The parked records in `state`, and of those the ones whose message has certainly been
/// published: their outbox row is gone. The records are read before the outbox, so a record
/// parked in between counts as on its way.
async fn parked_and_published(
    settings: &Settings,
    pool: &PgPool,
    state: State,
) -> anyhow::Result<(Vec<ParkedRow>, HashSet<i64>)> {
    let mut conn = pool.acquire().await?;
    let all = parked(
        &mut conn,
        &Scope::All,
        &Filter {
            state: Some(state),
            ..Default::default()
        },
        None,
    )
    .await?;
    let on_the_way: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT (convert_from(payload, 'UTF8')::jsonb ->> 'record_id')::bigint
         FROM outbox WHERE exchange = $1 AND convert_from(payload, 'UTF8')::jsonb ? 'record_id'",
    )
    .bind(settings.name(names::PARKED))
    .fetch_all(&mut *conn)
    .await?;
    let on_the_way: HashSet<i64> = on_the_way.into_iter().collect();
    let published = all
        .iter()
        .map(|p| p.id)
        .filter(|id| !on_the_way.contains(id))
        .collect();
    Ok((all, published))
}

/// How the parked queues compare with the database.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueuesAgree {
    /// Records parked in the database (blocked and dead).
    pub parked: u64,
    /// Record messages on the parked queues.
    pub messages: u64,
    /// Parked records without a message.
    pub missing: u64,
    /// Messages beyond the first for a record.
    pub duplicates: u64,
    /// Messages of records that are not parked (or not in that state).
    pub strays: u64,
}

impl QueuesAgree {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.strays == 0
    }
}

impl std::fmt::Display for QueuesAgree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} parked, {} messages: {} missing, {} duplicates, {} strays",
            self.parked, self.messages, self.missing, self.duplicates, self.strays
        )
    }
}

/// Reads `salur.blocked` and `salur.dead` without changing them (the messages go back when the
/// channel closes) and compares them with the parked records.
pub async fn parked_queues_agree(
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<QueuesAgree> {
    let broker = Broker::connect(settings).await?;
    let mut out = QueuesAgree::default();
    for (queue, state) in [
        (names::BLOCKED_QUEUE, State::Blocked),
        (names::DEAD_QUEUE, State::Dead),
    ] {
        let (all, _) = parked_and_published(settings, pool, state).await?;
        let (channel, taken) = broker.take_all(queue).await?;
        let _ = channel.close(200, "read".into()).await;
        let parked: HashSet<i64> = all.iter().map(|p| p.id).collect();
        let mut seen = HashSet::new();
        for d in &taken {
            let Ok(p) = serde_json::from_slice::<ParkedRecord>(&d.data) else {
                continue;
            };
            out.messages += 1;
            if !parked.contains(&p.record_id) {
                out.strays += 1;
            } else if !seen.insert(p.record_id) {
                out.duplicates += 1;
            }
        }
        out.parked += parked.len() as u64;
        out.missing += parked.difference(&seen).count() as u64;
    }
    broker.close().await;
    Ok(out)
}

/// The advisory lock key that serialises [`reconcile`].
const RECONCILE_LOCK: i64 = 0x5a1_u64 as i64 * 1_000_003;

async fn reconcile_with(broker: &Broker, pool: &PgPool) -> anyhow::Result<Reconciled> {
    let settings = &broker.settings;
    let publisher = broker.publisher().await?;
    let mut done = Reconciled::default();
    // Parked messages still in the outbox (a relay publishing them right now) would reach the
    // queue after it was reconciled: let them arrive first, for up to 10 s.
    for _ in 0..100 {
        if !parked_on_the_way(settings, pool).await? {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (queue, state) in [
        (names::BLOCKED_QUEUE, State::Blocked),
        (names::DEAD_QUEUE, State::Dead),
    ] {
        // Parked before the queue is read, with the message published: if the queue does not
        // hold it, it was lost (a purge) and is put back. A record parked later may have its
        // message on the way; it is left alone this time rather than given two.
        let (_, published_before) = parked_and_published(settings, pool, state).await?;
        let taken = broker.remove_all(queue).await?;
        let (all_parked, _) = parked_and_published(settings, pool, state).await?;
        let still: HashSet<i64> = all_parked.iter().map(|p| p.id).collect();
        let mut keep = Vec::new();
        let mut seen = BTreeSet::new();
        let mut removed = 0;
        for d in taken {
            match serde_json::from_slice::<ParkedRecord>(&d.data) {
                Ok(p) if still.contains(&p.record_id) && seen.insert(p.record_id) => keep.push(d),
                Ok(_) => removed += 1,
                Err(_) => keep.push(d), // not a record's message: an operator's to read
            }
        }
        let restore: Vec<Outgoing> = all_parked
            .iter()
            .filter(|p| !seen.contains(&p.id) && published_before.contains(&p.id))
            .map(|p| {
                parked_record(
                    settings,
                    ParkedRecord {
                        v: messages::VERSION,
                        record_id: p.id,
                        batch_id: p.batch_id,
                        row: p.row_number,
                        stage: stopped_at(p.parked_from.as_deref()),
                        state: p.state.clone(),
                        reasons: reasons_of(p.reasons.clone()),
                    },
                )
            })
            .collect();
        // The kept messages go back as they were, then the missing ones. A crash before this
        // publish loses kept messages of records, which the next reconcile puts back from the
        // database (an unreadable message on salur.dead would be lost: it was logged when
        // parked).
        let copies: Vec<Outgoing> = keep
            .iter()
            .map(|d| Outgoing {
                exchange: settings.name(names::PARKED),
                routing_key: if state == State::Dead {
                    "dead"
                } else {
                    "blocked"
                }
                .into(),
                payload: d.data.clone(),
            })
            .collect();
        publisher.publish_all(&copies).await?;
        publisher.publish_all(&restore).await?;
        done.kept += keep.len() as u64;
        done.removed += removed;
        done.restored += restore.len() as u64;
    }
    Ok(done)
}
