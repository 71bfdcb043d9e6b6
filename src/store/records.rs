//! Records and their state changes. Every change is guarded by the expected current state and
//! written together with its audit row, so a redelivered message changes nothing twice.

use super::sealed::{KeyError, Keyring, keyring};
use crate::domain::{Actor, RawRecord, Reason};
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

/// Where a record is: owned, with its transition table, by [`crate::domain::lifecycle`].
pub use crate::domain::lifecycle::State;

/// The personal columns of `records`: sealed (AES-256-GCM, see [`super::sealed`]) before they
/// reach PostgreSQL, opened when a record is read.
pub const SEALED: [&str; 11] = [
    "nik",
    "kk",
    "name",
    "mother_name",
    "birth_place",
    "birth_date",
    "address",
    "phone",
    "account_number",
    "bank_account",
    "bank_account_name",
];

/// The office's field kept with the moving part of a record (`records`) rather than its
/// office data (`record_data`): the mother's maiden name, erased by the very update that moves
/// the record to `verified` (see `migrations/0015_hot_cold.sql`).
pub const MOVING_OFFICE_COLUMN: &str = "mother_name";

/// The columns of `record_data` besides the office's: the NIK's keyed hash and what an erasure
/// keeps.
const DATA_COLUMNS: [&str; 3] = ["nik_hash", "masked", "erased_at"];

/// Whether `column` is in `record_data`: the office's values as written (all but
/// [`MOVING_OFFICE_COLUMN`]) and [`DATA_COLUMNS`]. Written once by intake; the rest of a record,
/// in `records`, changes with every step.
pub fn is_cold(column: &str) -> bool {
    column != MOVING_OFFICE_COLUMN
        && (raw_columns().any(|c| c == column) || DATA_COLUMNS.contains(&column))
}

/// The alias of the table holding `column` in [`RECORD_AND_DATA`]: `d` (`record_data`) or `r`.
pub fn alias_of(column: &str) -> &'static str {
    if is_cold(column) { "d" } else { "r" }
}

/// A record's two rows, `records r` and `record_data d`, for a query that locks the moving row
/// (`FOR UPDATE OF r`) or reads a few columns of each (the view `records_all` joins them under
/// the old column names, for whole-record reads).
pub const RECORD_AND_DATA: &str = "records r JOIN record_data d ON d.id = r.id";

/// The column of `records` that holds an office field ([`RawRecord::KEYS`]): the field's key,
/// except the amount as written, which is `amount_raw` (`amount` is the parsed value).
pub fn column_of(key: &'static str) -> &'static str {
    if key == "amount" { "amount_raw" } else { key }
}

/// The office's columns in file order ([`RawRecord::KEYS`]).
pub fn raw_columns() -> impl Iterator<Item = &'static str> {
    RawRecord::KEYS.into_iter().map(column_of)
}

/// The personal columns the pipeline adds to the office's: the bank's account number and name.
const BANK_COLUMNS: [&str; 2] = ["bank_account", "bank_account_name"];

/// A record as a stage sees it: the office's values plus what the pipeline learnt, opened.
/// A personal field the reader does not need (see [`Needs`]) is `None`.
///
/// It derefs to its [`RawRecord`], so `row.name` is the office's value.
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub id: i64,
    pub batch_id: Uuid,
    pub row_number: i32,
    pub state: String,
    /// The office's values (the columns [`raw_columns`]), as intake read them or as corrected.
    pub raw: RawRecord,
    pub amount: Option<Decimal>,
    /// Keyed hash of the NIK as written ([`super::sealed::Keyring::nik_hash`]): what claims
    /// and look-ups by NIK compare.
    pub nik_hash: Option<Vec<u8>>,
    pub bank_account: Option<String>,
    pub bank_account_name: Option<String>,
    pub bank_reference: Option<String>,
    pub attempts: i32,
    pub program: String,
    pub period: String,
    /// The approval of the payment list the record was on; `None` until a checker approves
    /// it, and again whenever it waits for approval (see [`crate::ops::approval`]).
    pub approval_id: Option<Uuid>,
    /// Which payment of the record its next transfer is (0 first; one more after each return):
    /// part of the transfer's idempotency key ([`crate::stages::transfer::payment_key`]).
    pub payment_no: i32,
    /// The idempotency key of the account-opening request the record was last sent with
    /// (`None` before it was sent one, or if it was sent before salur kept it).
    pub open_key: Option<String>,
    /// Seconds since the record entered its current state, when the query says
    /// (`read_in_state` does).
    pub in_state_seconds: Option<f64>,
    /// The version of the moving row that was read (its `xmin`), when it was read without a
    /// lock ([`read_in_state`]): a change made from it applies only if the row is still that
    /// version.
    pub version: Option<i64>,
}

impl std::ops::Deref for RecordRow {
    type Target = RawRecord;

    fn deref(&self) -> &RawRecord {
        &self.raw
    }
}

impl RecordRow {
    /// A copy of the office's values, as intake read them (or as corrected); the field
    /// `raw` borrows them.
    pub fn raw(&self) -> RawRecord {
        self.raw.clone()
    }

    /// Reads a row selected with [`record_columns`], opening its sealed columns.
    fn open(row: &PgRow, ring: &Keyring) -> sqlx::Result<Self> {
        let id: i64 = row.try_get("id")?;
        let value = |column: &'static str| -> sqlx::Result<Option<String>> {
            if SEALED.contains(&column) {
                let sealed: Option<Vec<u8>> = row.try_get(column)?;
                Ok(sealed.map(|v| ring.open(column, id, &v)).transpose()?)
            } else {
                row.try_get(column)
            }
        };
        let row_number: i32 = row.try_get("row_number")?;
        let mut raw = RawRecord {
            row: row_number as u32,
            ..Default::default()
        };
        for (column, slot) in raw_columns().zip(raw.values_mut()) {
            *slot = value(column)?;
        }
        Ok(RecordRow {
            id,
            batch_id: row.try_get("batch_id")?,
            row_number,
            state: row.try_get("state")?,
            raw,
            amount: row.try_get("amount")?,
            nik_hash: row.try_get("nik_hash")?,
            bank_account: value("bank_account")?,
            bank_account_name: value("bank_account_name")?,
            bank_reference: row.try_get("bank_reference")?,
            attempts: row.try_get("attempts")?,
            program: row.try_get("program")?,
            period: row.try_get("period")?,
            approval_id: row.try_get("approval_id")?,
            payment_no: row.try_get("payment_no")?,
            open_key: row.try_get("open_key")?,
            in_state_seconds: match row.try_get("in_state_seconds") {
                Err(sqlx::Error::ColumnNotFound(_)) => None,
                other => other?,
            },
            version: match row.try_get("version") {
                Err(sqlx::Error::ColumnNotFound(_)) => None,
                other => other?,
            },
        })
    }
}

/// Which personal fields a reader needs decrypted (minimisation: the others are not even read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Everything the office wrote and the bank answered: account opening (and re-sending its
    /// request), corrections, display.
    All,
    /// The recipient's name and the bank's account name: verification.
    Names,
    /// The bank's account number and name: a transfer (and re-sending it).
    Account,
    /// The account number the office gave: an inquiry's answer, checked against the account
    /// asked about.
    OfficeAccount,
    /// No personal field: bank answers, bookkeeping.
    Nothing,
}

impl Needs {
    /// What the stage that takes records up in `state` reads (bank answers, for records
    /// waiting in `account_requested` or `transfer_requested`, read none).
    pub fn of(state: State) -> Self {
        match state {
            State::Received => Needs::All,
            State::AccountOpened => Needs::Names,
            State::Verified => Needs::Account,
            _ => Needs::Nothing,
        }
    }

    /// What sending a record's bank request again (the sweeper) reads.
    pub fn to_resend(state: State) -> Self {
        match state {
            State::AccountRequested => Needs::All,
            State::TransferRequested => Needs::Account,
            other => Needs::of(other),
        }
    }

    fn wants(self, column: &str) -> bool {
        match self {
            Needs::All => true,
            Needs::Names => matches!(column, "name" | "bank_account_name"),
            Needs::Account => matches!(column, "bank_account" | "bank_account_name"),
            Needs::OfficeAccount => column == "account_number",
            Needs::Nothing => false,
        }
    }
}

/// The select list of a [`RecordRow`] over [`RECORD_AND_DATA`] and `batches b`: every column of the record, the
/// personal ones `needs` does not name as `NULL` (not even read).
fn record_columns(needs: Needs) -> String {
    let mut out = String::from("r.id, r.batch_id, r.row_number, r.state, ");
    for column in raw_columns().chain(BANK_COLUMNS) {
        if SEALED.contains(&column) && !needs.wants(column) {
            out.push_str(&format!("NULL::bytea AS {column}, "));
        } else {
            out.push_str(&format!("{}.{column}, ", alias_of(column)));
        }
    }
    out.push_str(
        "r.amount, d.nik_hash, r.bank_reference, r.attempts, r.approval_id, r.payment_no, \
         r.open_key, b.program, b.period",
    );
    out
}

fn open_all(rows: Vec<PgRow>) -> sqlx::Result<Vec<RecordRow>> {
    let ring = keyring()?;
    rows.iter().map(|r| RecordRow::open(r, &ring)).collect()
}

/// A personal value for display, masked with `mask`: opened when it is stored, else the masked
/// form kept when the record's personal fields were erased (retention, an erasure request).
pub fn shown(
    ring: &Keyring,
    id: i64,
    column: &'static str,
    sealed: Option<&[u8]>,
    kept: Option<&serde_json::Value>,
    mask: fn(&str) -> String,
) -> Result<Option<String>, KeyError> {
    match sealed {
        Some(v) => Ok(Some(mask(&ring.open(column, id, v)?))),
        None => Ok(kept
            .and_then(|k| k.get(column))
            .and_then(|v| v.as_str())
            .map(str::to_owned)),
    }
}

/// Returns those of `ids` that are in `state` (others were already handled: a redelivery, or a
/// late answer), with the version of each row that was read and without locking them: the
/// changes decided from them are applied by [`apply`] only to rows still at that version, and
/// the step that made them is refused as a serialization failure ([`conflict`]) otherwise, to be
/// tried again on what is there then. Another transaction changes these rows only when a message
/// is handled twice at once (a redelivery, a duplicate answer) or the sweeper or an operator
/// takes a record at that moment, so a lock per row and step (`FOR UPDATE`: a WAL record and a
/// page write per row, before the update writes both again) is paid for nothing almost always.
/// Only the personal fields the stage of `state` needs are read ([`Needs::of`]).
pub async fn read_in_state(
    conn: &mut PgConnection,
    ids: &[i64],
    state: State,
) -> sqlx::Result<Vec<RecordRow>> {
    read_in_state_for(conn, ids, state, Needs::of(state)).await
}

/// [`read_in_state`], reading the personal fields `needs` names.
pub async fn read_in_state_for(
    conn: &mut PgConnection,
    ids: &[i64],
    state: State,
    needs: Needs,
) -> sqlx::Result<Vec<RecordRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {},
                EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at)::float8 AS in_state_seconds,
                r.xmin::text::int8 AS version
         FROM {RECORD_AND_DATA} JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND r.state = $2
         ORDER BY r.id",
        record_columns(needs)
    ))
    .bind(ids)
    .bind(state.as_str())
    .fetch_all(conn)
    .await?;
    open_all(rows)
}

/// Refuses the caller's transaction as a serialization failure (SQLSTATE 40001): records it
/// read ([`read_in_state`]) were changed by another transaction before it changed them. The
/// handler tries the whole message again ([`crate::stages::transient`]).
pub async fn conflict(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query(
        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
             MESSAGE = 'records changed by another transaction since this one read them'; END $$",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A record's attempt count is per stage: counted on each try that failed for a while, reset
/// when the record moves on to the next stage (or is sent back by an operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Keep,
    Count,
    Reset,
}

/// Locks and returns those of `ids` (any state) whose batch belongs to `office` (every office
/// when `None`).
pub async fn lock_scoped(
    conn: &mut PgConnection,
    ids: &[i64],
    office: Option<&str>,
) -> sqlx::Result<Vec<RecordRow>> {
    scoped(conn, ids, office, "FOR UPDATE OF r").await
}

/// Like [`lock_scoped`], without locking: for display.
pub async fn read_scoped(
    conn: &mut PgConnection,
    ids: &[i64],
    office: Option<&str>,
) -> sqlx::Result<Vec<RecordRow>> {
    scoped(conn, ids, office, "").await
}

async fn scoped(
    conn: &mut PgConnection,
    ids: &[i64],
    office: Option<&str>,
    lock: &str,
) -> sqlx::Result<Vec<RecordRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {}
         FROM {RECORD_AND_DATA} JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND ($2::text IS NULL OR b.office = $2)
         ORDER BY r.id
         {lock}",
        record_columns(Needs::All)
    ))
    .bind(ids)
    .bind(office)
    .fetch_all(conn)
    .await?;
    open_all(rows)
}

/// The bank code (as the office gave it) of each of `ids` that is a record.
pub async fn bank_codes(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, Option<String>)>> {
    sqlx::query_as("SELECT id, bank_code FROM record_data WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Those of `ids` that are records in `state`.
pub async fn ids_in_state(
    conn: &mut PgConnection,
    ids: &[i64],
    state: State,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM records WHERE id = ANY($1) AND state = $2")
        .bind(ids)
        .bind(state.as_str())
        .fetch_all(conn)
        .await
}

/// Those of `ids` that are no record at all.
pub async fn missing(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT i FROM UNNEST($1::bigint[]) AS i
         WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = i) ORDER BY i",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// One state change of one record. `None` fields keep their current value.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: i64,
    pub to: State,
    pub reasons: Vec<Reason>,
    pub amount: Option<Decimal>,
    pub bank_account: Option<String>,
    pub bank_account_name: Option<String>,
    pub bank_reference: Option<String>,
    /// The idempotency key of the account-opening request the record is sent with.
    pub open_key: Option<String>,
    /// What happens to the record's attempt count (tries in its current stage).
    pub attempt: Attempt,
    /// Extra facts for the audit row (request id, bank reason, attempt number …).
    pub detail: Option<serde_json::Value>,
    /// The version of the record the change was decided from ([`RecordRow::version`]): the
    /// change applies only to that version (`None`: to the record as it is, locked by the
    /// caller).
    pub version: Option<i64>,
}

impl Change {
    pub fn to(id: i64, to: State) -> Self {
        Self {
            id,
            to,
            reasons: Vec::new(),
            amount: None,
            bank_account: None,
            bank_account_name: None,
            bank_reference: None,
            open_key: None,
            attempt: Attempt::Keep,
            detail: None,
            version: None,
        }
    }

    pub fn with_reasons(mut self, reasons: Vec<Reason>) -> Self {
        self.reasons = reasons;
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn with_attempt(mut self, attempt: Attempt) -> Self {
        self.attempt = attempt;
        self
    }
}

/// Applies changes to records that are still in `from` (and, for a change that names the
/// version it was decided from, still at that version: see [`read_in_state`]), with their
/// audit: one `audit_chunks` row per target state, naming the records (reasons and details per
/// record where any record has some; `record_events` reads one row per record from it);
/// returns the ids that changed. Reasons replace the record's reasons (empty clears them). The
/// bank's account number and name are sealed here. A record that becomes `verified` or
/// `awaiting_approval` (its account open and confirmed to be the recipient's) loses its
/// mother's maiden name, which only account opening needs; its audit row says it was provided
/// and erased. A record that comes to wait for approval loses any approval it had: a list is
/// approved as it stands, and this record is on a new one.
pub async fn apply(
    conn: &mut PgConnection,
    from: State,
    changes: &[Change],
) -> sqlx::Result<Vec<i64>> {
    apply_as(conn, from, changes, None).await
}

/// [`apply`], the audit rows naming the person who caused the changes (`None`: the system).
pub async fn apply_as(
    conn: &mut PgConnection,
    from: State,
    changes: &[Change],
    actor: Option<&Actor>,
) -> sqlx::Result<Vec<i64>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ring = keyring()?;
    let n = changes.len();
    let mut ids = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut account = Vec::with_capacity(n);
    let mut account_name = Vec::with_capacity(n);
    let mut reference = Vec::with_capacity(n);
    let mut open_key = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    for c in changes {
        ids.push(c.id);
        to.push(c.to.as_str());
        reasons.push(serde_json::to_value(&c.reasons).expect("reasons serialize"));
        amount.push(c.amount);
        account.push(
            c.bank_account
                .as_deref()
                .map(|v| ring.seal("bank_account", c.id, v)),
        );
        account_name.push(
            c.bank_account_name
                .as_deref()
                .map(|v| ring.seal("bank_account_name", c.id, v)),
        );
        reference.push(c.bank_reference.as_deref());
        open_key.push(c.open_key.as_deref());
        attempt.push(match c.attempt {
            Attempt::Keep => 0,
            Attempt::Count => 1,
            Attempt::Reset => -1,
        });
        detail.push(c.detail.clone());
        version.push(c.version);
    }
    sqlx::query_scalar(
        "WITH u AS (
             -- Whether a mother's name is erased, for the audit: looked up (in the statement's
             -- snapshot, so before the update) only for the records that lose it, not by a
             -- second join of every record.
             SELECT u.*,
                    CASE WHEN u.to_state IN ('verified', 'awaiting_approval')
                         THEN EXISTS (SELECT FROM records m
                                      WHERE m.id = u.id AND m.mother_name IS NOT NULL)
                         ELSE false END AS erase_mother
             FROM UNNEST($2::bigint[], $3::text[], $4::jsonb[], $5::numeric[], $6::bytea[],
                         $7::bytea[], $8::text[], $9::int[], $10::jsonb[], $13::text[],
                         $14::int8[])
                 AS u(id, to_state, reasons, amount, account, account_name, reference,
                      attempt, detail, open_key, version)
         ), changed AS (
             UPDATE records r SET
                 state = u.to_state,
                 reasons = u.reasons,
                 amount = COALESCE(u.amount, r.amount),
                 bank_account = COALESCE(u.account, r.bank_account),
                 bank_account_name = COALESCE(u.account_name, r.bank_account_name),
                 bank_reference = COALESCE(u.reference, r.bank_reference),
                 open_key = COALESCE(u.open_key, r.open_key),
                 mother_name = CASE WHEN u.to_state IN ('verified', 'awaiting_approval')
                                    THEN NULL ELSE r.mother_name END,
                 attempts = CASE WHEN u.attempt < 0 THEN 0 ELSE r.attempts + u.attempt END,
                 approval_id = CASE WHEN u.to_state = 'awaiting_approval' THEN NULL
                                    ELSE r.approval_id END,
                 updated_at = now()
             FROM u
             WHERE r.id = u.id AND r.state = $1
               AND (u.version IS NULL OR r.xmin::text::int8 = u.version)
             RETURNING r.id, u.to_state, u.reasons,
                 CASE WHEN u.erase_mother
                      THEN COALESCE(u.detail, '{}') || '{\"mother_name\": \"provided; erased once the account was opened and verified\"}'
                      ELSE u.detail END AS detail
         ), audit AS (
             INSERT INTO audit_chunks (from_state, to_state, record_ids, record_range,
                                       reasons, details, actor_person, actor_token)
             SELECT $1, to_state, array_agg(id ORDER BY id),
                    -- A run of consecutive ids (a chunk, as intake gives its ids) is indexed as
                    -- a range, not id by id (migrations/0017_intake_audit_ranges.sql).
                    CASE WHEN max(id) - min(id) + 1 = count(*)
                         THEN int8range(min(id), max(id), '[]') END,
                    CASE WHEN bool_and(reasons = '[]') THEN NULL
                         ELSE array_agg(reasons ORDER BY id) END,
                    CASE WHEN bool_and(detail IS NULL) THEN NULL
                         ELSE array_agg(detail ORDER BY id) END,
                    $11, $12
             FROM changed GROUP BY to_state
         )
         SELECT id FROM changed",
    )
    .bind(from.as_str())
    .bind(&ids)
    .bind(&to)
    .bind(&reasons)
    .bind(&amount)
    .bind(&account)
    .bind(&account_name)
    .bind(&reference)
    .bind(&attempt)
    .bind(&detail)
    .bind(actor.and_then(|a| a.person.as_deref()))
    .bind(actor.map(|a| a.token.as_str()))
    .bind(&open_key)
    .bind(&version)
    .fetch_all(conn)
    .await
}

/// Records per audit row of intake (`audit_chunks`): one row names this many records.
const AUDIT_CHUNK: usize = 10_000;

/// The next `n` ids of the records' identity sequence, in order. Intake takes a slice's ids
/// before it prepares ([`prepare_received`]) and stores ([`copy_prepared`]) the slice, so that
/// the personal values can be sealed to their record, and the audit rows and the stage messages
/// can name them without reading back. A sequence is not transactional, so they may be taken on any connection: the batch's transaction need not wait
/// for them (see [`prepare_received`]). One statement advances the sequence by `n` under a
/// transaction lock that every caller takes (intake is the only writer of records), instead of
/// `n` calls of `nextval`.
pub async fn take_ids(conn: &mut PgConnection, n: usize) -> sqlx::Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let n = n as i64;
    let last: i64 = sqlx::query_scalar(
        "WITH lock AS (SELECT pg_advisory_xact_lock(hashtextextended('records.id', 0)))
         SELECT setval(pg_get_serial_sequence('records', 'id'),
                       nextval(pg_get_serial_sequence('records', 'id')) + $1 - 1)
         FROM lock",
    )
    .bind(n)
    .fetch_one(conn)
    .await?;
    Ok((last - n + 1..=last).collect())
}

/// Records in state `received` as `COPY … FROM STDIN` data: the office's data for
/// `record_data` and the moving part for `records` in PostgreSQL's binary format (a sealed value
/// goes as its bytes, not as twice as many hex digits for the server to decode), and their
/// audit rows (`audit_chunks`, one row per [`AUDIT_CHUNK`] records) as text; the personal values
/// sealed to their record and the NIK hashed: what [`copy_prepared`] sends. Made without a
/// connection, so that a slice is prepared (on another thread) while the one before it is being
/// copied.
pub struct PreparedRecords {
    cold: Vec<u8>,
    hot: Vec<u8>,
    audit: String,
}

/// Prepares `rows` as records of `batch_id` with the ids `ids` (from [`take_ids`], one per row
/// of `rows`, in its order: intake sorts a slice by bank request first) for [`copy_prepared`].
pub fn prepare_received(
    batch_id: Uuid,
    ids: &[i64],
    rows: &[RawRecord],
    actor: Option<&Actor>,
) -> sqlx::Result<PreparedRecords> {
    use std::fmt::Write as _;
    assert_eq!(ids.len(), rows.len(), "one id per row");
    let ring = keyring()?;
    let cold_columns = raw_columns().filter(|c| is_cold(c)).count();
    // The moving part (`records`) and the office's data (`record_data`), one row each.
    let mut hot = BinaryCopy::with_capacity(rows.len() * 120);
    let mut cold = BinaryCopy::with_capacity(rows.len() * 560);
    let seal = |copy: &mut BinaryCopy, column: &'static str, id: i64, value: Option<&str>| {
        if SEALED.contains(&column) {
            copy.field(value.map(|v| ring.seal(column, id, v)).as_deref());
        } else {
            copy.field(value.map(str::as_bytes));
        }
    };
    let mut amount = sqlx::postgres::PgArgumentBuffer::default();
    for (id, r) in ids.iter().zip(rows) {
        let row = i32::try_from(r.row).map_err(|_| {
            sqlx::Error::Encode(
                format!(
                    "row {}: a batch holds at most {} rows; split the file",
                    r.row,
                    i32::MAX
                )
                .into(),
            )
        })?;
        hot.row(6);
        hot.field(Some(&id.to_be_bytes()));
        hot.field(Some(batch_id.as_bytes()));
        hot.field(Some(&row.to_be_bytes()));
        hot.field(Some(b"received"));
        seal(&mut hot, "mother_name", *id, r.mother_name.as_deref());
        match r
            .amount
            .as_deref()
            .and_then(|a| crate::domain::Amount::parse(a).ok())
        {
            Some(a) => {
                amount.clear();
                let null = sqlx::Encode::<sqlx::Postgres>::encode_by_ref(&a.value(), &mut amount)
                    .map_err(sqlx::Error::Encode)?;
                hot.field(if null.is_null() { None } else { Some(&amount) });
            }
            None => hot.field(None),
        }
        cold.row(cold_columns + 2);
        cold.field(Some(&id.to_be_bytes()));
        for (column, value) in raw_columns().zip(r.values()) {
            if is_cold(column) {
                seal(&mut cold, column, *id, value.as_deref());
            }
        }
        cold.field(r.nik.as_deref().and_then(|n| ring.nik_hash(n)).as_deref());
    }
    let mut who = String::new();
    for value in [
        actor.and_then(|a| a.person.as_deref()),
        actor.map(|a| a.token.as_str()),
    ] {
        who.push('\t');
        copy_text(&mut who, value);
    }
    let mut audit = String::with_capacity(ids.len() * 12);
    for chunk in ids.chunks(AUDIT_CHUNK) {
        audit.push_str("received\t{");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                audit.push(',');
            }
            let _ = write!(audit, "{id}");
        }
        audit.push_str("}\t");
        // One range of ids (as `take_ids` gives them) is indexed as a range, not id by id
        // (`migrations/0017_intake_audit_ranges.sql`).
        match (chunk.first(), chunk.last()) {
            (Some(first), Some(last)) if chunk.windows(2).all(|w| w[1] == w[0] + 1) => {
                let _ = write!(audit, "[{first},{last}]");
            }
            _ => audit.push_str("\\N"),
        }
        let _ = writeln!(audit, "{who}");
    }
    Ok(PreparedRecords {
        cold: cold.finish(),
        hot: hot.finish(),
        audit,
    })
}

/// Notes a slice's ids as an intake in progress for `batch_id` (`intake_pending`, see
/// `migrations/0016_parallel_intake.sql`), in the transaction that copies their office data on
/// a connection of its own ([`copy_prepared_data`]); that transaction commits before the
/// batch's, which then calls [`intake_stored`].
pub async fn intake_pending(
    conn: &mut PgConnection,
    batch_id: Uuid,
    ids: &[i64],
) -> sqlx::Result<()> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(());
    };
    debug_assert_eq!(
        last - first + 1,
        ids.len() as i64,
        "a slice's ids are one range"
    );
    sqlx::query("INSERT INTO intake_pending (batch_id, first_id, last_id) VALUES ($1, $2, $3)")
        .bind(batch_id)
        .bind(first)
        .bind(last)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores prepared records' office data (`record_data`) with `COPY`.
pub async fn copy_prepared_data(
    conn: &mut PgConnection,
    prepared: &PreparedRecords,
) -> sqlx::Result<()> {
    let cold = raw_columns()
        .filter(|c| is_cold(c))
        .collect::<Vec<_>>()
        .join(", ");
    copy_in(
        conn,
        &format!("COPY record_data (id, {cold}, nik_hash) FROM STDIN (FORMAT binary)"),
        &prepared.cold,
    )
    .await
}

/// Stores prepared records (state `received`, their moving part) and their audit rows with
/// `COPY`, in the batch's transaction.
pub async fn copy_prepared(
    conn: &mut PgConnection,
    prepared: &PreparedRecords,
) -> sqlx::Result<()> {
    copy_in(
        conn,
        "COPY records (id, batch_id, row_number, state, mother_name, amount) \
         FROM STDIN (FORMAT binary)",
        &prepared.hot,
    )
    .await?;
    copy_in(
        conn,
        "COPY audit_chunks (to_state, record_ids, record_range, actor_person, actor_token) \
         FROM STDIN",
        prepared.audit.as_bytes(),
    )
    .await
}

async fn copy_in(conn: &mut PgConnection, statement: &str, data: &[u8]) -> sqlx::Result<()> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// Takes, in the batch's transaction, the lock that marks `batch_id`'s intake as in progress
/// until that transaction ends (see [`remove_abandoned_intake`]).
pub async fn lock_intake(conn: &mut PgConnection, batch_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('intake ' || $1::text, 0))")
        .bind(batch_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// In the batch's transaction, once the office data has committed: the batch's records are
/// whole, nothing of its intake is pending any more.
pub async fn intake_stored(conn: &mut PgConnection, batch_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM intake_pending WHERE batch_id = $1")
        .bind(batch_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes the office data that intakes stored for batches that were never stored (their
/// transaction failed or their process died after the office data committed): what
/// `intake_pending` still lists for a batch that does not exist and whose intake is not in
/// progress. Returns how many rows of office data it removed. Run by intake when its batch's
/// commit fails, and by the sweeper.
pub async fn remove_abandoned_intake(pool: &sqlx::PgPool) -> sqlx::Result<u64> {
    let batches: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT batch_id FROM intake_pending")
        .fetch_all(pool)
        .await?;
    let mut removed = 0;
    for batch_id in batches {
        let mut tx = pool.begin().await?;
        let free: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('intake ' || $1::text, 0))",
        )
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
        if !free {
            continue;
        }
        let gone = sqlx::query(
            "DELETE FROM record_data d USING intake_pending p
             WHERE p.batch_id = $1 AND d.id BETWEEN p.first_id AND p.last_id
               AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = $1)",
        )
        .bind(batch_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM intake_pending WHERE batch_id = $1")
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if gone > 0 {
            tracing::warn!(%batch_id, records = gone, "removed the office data of an intake that did not complete");
        }
        removed += gone;
    }
    Ok(removed)
}

/// Rows in PostgreSQL's binary `COPY` format: a header, then per row its field count and each
/// field as a length (-1 for NULL) and the value's bytes as the type's binary form (`bigint`
/// and `integer` big-endian, `uuid` its 16 bytes, `text` its UTF-8, `bytea` itself), then a
/// trailer.
struct BinaryCopy(Vec<u8>);

impl BinaryCopy {
    fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 21);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self(buf)
    }

    fn row(&mut self, fields: usize) {
        let fields = i16::try_from(fields).expect("a table has fewer than 32,768 columns");
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => {
                let len = i32::try_from(v.len()).expect("a field is shorter than 2 GiB");
                self.0.extend_from_slice(&len.to_be_bytes());
                self.0.extend_from_slice(v);
            }
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }
}

/// Appends a value in `COPY … FROM STDIN` text format (`\N` for NULL).
fn copy_text(buf: &mut String, value: Option<&str>) {
    let Some(value) = value else {
        buf.push_str("\\N");
        return;
    };
    for c in value.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

/// The ids of a batch's records in `state`.
pub async fn batch_ids_in_state(
    conn: &mut PgConnection,
    batch: Uuid,
    state: State,
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 AND state = $2 ORDER BY id")
        .bind(batch)
        .bind(state.as_str())
        .fetch_all(conn)
        .await
}

/// The stored reasons of those of `ids` that are records (read under the caller's lock).
pub async fn reasons(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, serde_json::Value)>> {
    sqlx::query_as("SELECT id, reasons FROM records WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// The states of those of `ids` whose batch belongs to `office` (every office when `None`).
pub async fn states_scoped(
    conn: &mut PgConnection,
    ids: &[i64],
    office: Option<&str>,
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT r.id, r.state FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND ($2::text IS NULL OR b.office = $2)",
    )
    .bind(ids)
    .bind(office)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::{BinaryCopy, copy_text};

    #[test]
    fn binary_copy_frames_rows_as_postgresql_reads_them() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(2);
        copy.field(Some(&7i64.to_be_bytes()));
        copy.field(None);
        let bytes = copy.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn copy_text_escapes_what_copy_would_misread() {
        let mut buf = String::new();
        copy_text(&mut buf, Some("a\\b\tc\nd\re"));
        buf.push('|');
        copy_text(&mut buf, None);
        assert_eq!(buf, "a\\\\b\\tc\\nd\\re|\\N");
    }

    #[test]
    fn every_sealed_column_is_an_office_or_a_bank_column() {
        use super::{BANK_COLUMNS, SEALED, raw_columns};
        let known: Vec<&str> = raw_columns().chain(BANK_COLUMNS).collect();
        for c in SEALED {
            assert!(known.contains(&c), "{c}");
        }
        assert_eq!(raw_columns().last(), Some("amount_raw"));
    }

    #[test]
    fn every_office_column_but_the_mothers_name_is_cold_and_only_those() {
        use super::{SEALED, is_cold, raw_columns};
        let moving: Vec<&str> = raw_columns().filter(|c| !is_cold(c)).collect();
        assert_eq!(moving, ["mother_name"]);
        for c in ["nik_hash", "masked", "erased_at", "amount_raw", "bank_code"] {
            assert!(is_cold(c), "{c}");
        }
        for c in [
            "bank_account",
            "bank_account_name",
            "state",
            "reasons",
            "amount",
        ] {
            assert!(!is_cold(c), "{c}");
        }
        assert!(SEALED.iter().any(|c| is_cold(c)) && SEALED.iter().any(|c| !is_cold(c)));
    }
}
