//! Records and their state changes. Every change is guarded by the expected current state and
//! written together with its audit row, so a redelivered message changes nothing twice.

use crate::domain::Reason;
use crate::intake::RawRecord;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// Where a record is. Exactly one at a time; `blocked`, `rejected`, `failed`, `dead` and
/// `disbursed` are final until a person acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Received,
    AccountRequested,
    AccountOpened,
    Verified,
    TransferRequested,
    Disbursed,
    Blocked,
    Rejected,
    Failed,
    Dead,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Received,
        State::AccountRequested,
        State::AccountOpened,
        State::Verified,
        State::TransferRequested,
        State::Disbursed,
        State::Blocked,
        State::Rejected,
        State::Failed,
        State::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::AccountRequested => "account_requested",
            State::AccountOpened => "account_opened",
            State::Verified => "verified",
            State::TransferRequested => "transfer_requested",
            State::Disbursed => "disbursed",
            State::Blocked => "blocked",
            State::Rejected => "rejected",
            State::Failed => "failed",
            State::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The stage a record in this state is in (waiting for it, or for its bank's answer);
    /// `None` for a final or parked state.
    pub fn stage(self) -> Option<crate::messages::Stage> {
        use crate::messages::Stage;
        match self {
            State::Received | State::AccountRequested => Some(Stage::AccountOpening),
            State::AccountOpened => Some(Stage::Verification),
            State::Verified | State::TransferRequested => Some(Stage::Transfer),
            _ => None,
        }
    }

    /// Still moving through the pipeline (not waiting for a person).
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            State::Received
                | State::AccountRequested
                | State::AccountOpened
                | State::Verified
                | State::TransferRequested
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record as a stage sees it: the office's values plus what the pipeline learnt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordRow {
    pub id: i64,
    pub batch_id: Uuid,
    pub row_number: i32,
    pub state: String,
    pub nik: Option<String>,
    pub kk: Option<String>,
    pub name: Option<String>,
    pub mother_name: Option<String>,
    pub birth_place: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub address: Option<String>,
    pub region_code: Option<String>,
    pub phone: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    pub amount_raw: Option<String>,
    pub amount: Option<Decimal>,
    pub nik_valid: Option<String>,
    pub bank_account: Option<String>,
    pub bank_account_name: Option<String>,
    pub bank_reference: Option<String>,
    pub attempts: i32,
    pub program: String,
    pub period: String,
    /// Seconds since the record entered its current state, when the query says
    /// (`lock_in_state` does).
    #[sqlx(default)]
    pub in_state_seconds: Option<f64>,
}

impl RecordRow {
    /// The office's values, as intake read them.
    pub fn raw(&self) -> RawRecord {
        RawRecord {
            row: self.row_number as u32,
            nik: self.nik.clone(),
            kk: self.kk.clone(),
            name: self.name.clone(),
            mother_name: self.mother_name.clone(),
            birth_place: self.birth_place.clone(),
            birth_date: self.birth_date.clone(),
            sex: self.sex.clone(),
            address: self.address.clone(),
            region_code: self.region_code.clone(),
            phone: self.phone.clone(),
            bank_code: self.bank_code.clone(),
            account_number: self.account_number.clone(),
            amount: self.amount_raw.clone(),
        }
    }
}

/// Locks and returns those of `ids` that are in `state` (others were already handled: a
/// redelivery, or a late answer). Ordered by id so that concurrent chunks lock in one order.
pub async fn lock_in_state(
    conn: &mut PgConnection,
    ids: &[i64],
    state: State,
) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(
        "SELECT r.id, r.batch_id, r.row_number, r.state, r.nik, r.kk, r.name, r.mother_name,
                r.birth_place, r.birth_date, r.sex, r.address, r.region_code, r.phone,
                r.bank_code, r.account_number, r.amount_raw, r.amount, r.nik_valid,
                r.bank_account, r.bank_account_name, r.bank_reference, r.attempts,
                b.program, b.period,
                EXTRACT(EPOCH FROM clock_timestamp() - r.updated_at)::float8 AS in_state_seconds
         FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND r.state = $2
         ORDER BY r.id
         FOR UPDATE OF r",
    )
    .bind(ids)
    .bind(state.as_str())
    .fetch_all(conn)
    .await
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
    sqlx::query_as(&format!(
        "SELECT r.id, r.batch_id, r.row_number, r.state, r.nik, r.kk, r.name, r.mother_name,
                r.birth_place, r.birth_date, r.sex, r.address, r.region_code, r.phone,
                r.bank_code, r.account_number, r.amount_raw, r.amount, r.nik_valid,
                r.bank_account, r.bank_account_name, r.bank_reference, r.attempts,
                b.program, b.period
         FROM records r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = ANY($1) AND ($2::text IS NULL OR b.office = $2)
         ORDER BY r.id
         {lock}"
    ))
    .bind(ids)
    .bind(office)
    .fetch_all(conn)
    .await
}

/// The bank code (as the office gave it) of each of `ids` that is a record.
pub async fn bank_codes(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, Option<String>)>> {
    sqlx::query_as("SELECT id, bank_code FROM records WHERE id = ANY($1)")
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
    pub nik_valid: Option<String>,
    pub bank_account: Option<String>,
    pub bank_account_name: Option<String>,
    pub bank_reference: Option<String>,
    /// What happens to the record's attempt count (tries in its current stage).
    pub attempt: Attempt,
    /// Extra facts for the audit row (request id, bank reason, attempt number …).
    pub detail: Option<serde_json::Value>,
}

impl Change {
    pub fn to(id: i64, to: State) -> Self {
        Self {
            id,
            to,
            reasons: Vec::new(),
            amount: None,
            nik_valid: None,
            bank_account: None,
            bank_account_name: None,
            bank_reference: None,
            attempt: Attempt::Keep,
            detail: None,
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

/// Applies changes to records that are still in `from`, with one audit row each; returns the
/// ids that changed. Reasons replace the record's reasons (empty clears them).
pub async fn apply(
    conn: &mut PgConnection,
    from: State,
    changes: &[Change],
) -> sqlx::Result<Vec<i64>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let n = changes.len();
    let mut ids = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut nik_valid = Vec::with_capacity(n);
    let mut account = Vec::with_capacity(n);
    let mut account_name = Vec::with_capacity(n);
    let mut reference = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    for c in changes {
        ids.push(c.id);
        to.push(c.to.as_str());
        reasons.push(serde_json::to_value(&c.reasons).expect("reasons serialize"));
        amount.push(c.amount);
        nik_valid.push(c.nik_valid.as_deref());
        account.push(c.bank_account.as_deref());
        account_name.push(c.bank_account_name.as_deref());
        reference.push(c.bank_reference.as_deref());
        attempt.push(match c.attempt {
            Attempt::Keep => 0,
            Attempt::Count => 1,
            Attempt::Reset => -1,
        });
        detail.push(c.detail.clone());
    }
    sqlx::query_scalar(
        "WITH u AS (
             SELECT * FROM UNNEST($2::bigint[], $3::text[], $4::jsonb[], $5::numeric[], $6::text[],
                                  $7::text[], $8::text[], $9::text[], $10::int[], $11::jsonb[])
                 AS u(id, to_state, reasons, amount, nik_valid, account, account_name, reference,
                      attempt, detail)
         ), changed AS (
             UPDATE records r SET
                 state = u.to_state,
                 reasons = u.reasons,
                 amount = COALESCE(u.amount, r.amount),
                 nik_valid = COALESCE(u.nik_valid, r.nik_valid),
                 bank_account = COALESCE(u.account, r.bank_account),
                 bank_account_name = COALESCE(u.account_name, r.bank_account_name),
                 bank_reference = COALESCE(u.reference, r.bank_reference),
                 attempts = CASE WHEN u.attempt < 0 THEN 0 ELSE r.attempts + u.attempt END,
                 updated_at = now()
             FROM u
             WHERE r.id = u.id AND r.state = $1
             RETURNING r.id, u.to_state, u.reasons, u.detail
         ), audit AS (
             INSERT INTO record_events (record_id, from_state, to_state, reasons, detail)
             SELECT id, $1, to_state, reasons, detail FROM changed
         )
         SELECT id FROM changed",
    )
    .bind(from.as_str())
    .bind(&ids)
    .bind(&to)
    .bind(&reasons)
    .bind(&amount)
    .bind(&nik_valid)
    .bind(&account)
    .bind(&account_name)
    .bind(&reference)
    .bind(&attempt)
    .bind(&detail)
    .fetch_all(conn)
    .await
}

/// Stores a batch's records in state `received` (one audit row each) and returns their ids in
/// row order.
pub async fn insert_received(
    conn: &mut PgConnection,
    batch_id: Uuid,
    rows: &[RawRecord],
    amounts: &[Option<Decimal>],
) -> sqlx::Result<Vec<i64>> {
    let col = |f: fn(&RawRecord) -> &Option<String>| -> Vec<Option<&str>> {
        rows.iter().map(|r| f(r).as_deref()).collect()
    };
    let row_numbers: Vec<i32> = rows.iter().map(|r| r.row as i32).collect();
    sqlx::query_scalar(
        "WITH inserted AS (
             INSERT INTO records (batch_id, row_number, state, nik, kk, name, mother_name,
                 birth_place, birth_date, sex, address, region_code, phone, bank_code,
                 account_number, amount_raw, amount)
             SELECT $1, u.row_number, 'received', u.nik, u.kk, u.name, u.mother_name,
                    u.birth_place, u.birth_date, u.sex, u.address, u.region_code, u.phone,
                    u.bank_code, u.account_number, u.amount_raw, u.amount
             FROM UNNEST($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                         $14::text[], $15::text[], $16::numeric[])
                 AS u(row_number, nik, kk, name, mother_name, birth_place, birth_date, sex,
                      address, region_code, phone, bank_code, account_number, amount_raw, amount)
             RETURNING id, row_number
         ), audit AS (
             INSERT INTO record_events (record_id, from_state, to_state)
             SELECT id, NULL, 'received' FROM inserted
         )
         SELECT id FROM inserted ORDER BY row_number",
    )
    .bind(batch_id)
    .bind(&row_numbers)
    .bind(col(|r| &r.nik))
    .bind(col(|r| &r.kk))
    .bind(col(|r| &r.name))
    .bind(col(|r| &r.mother_name))
    .bind(col(|r| &r.birth_place))
    .bind(col(|r| &r.birth_date))
    .bind(col(|r| &r.sex))
    .bind(col(|r| &r.address))
    .bind(col(|r| &r.region_code))
    .bind(col(|r| &r.phone))
    .bind(col(|r| &r.bank_code))
    .bind(col(|r| &r.account_number))
    .bind(col(|r| &r.amount))
    .bind(amounts)
    .fetch_all(conn)
    .await
}

/// Stores a batch's records in state `received` with `COPY` (one audit row each, also copied)
/// and returns their ids in row order. The ids are taken from the records' identity sequence
/// first, so that the audit rows and the stage messages can name them without reading back.
pub async fn copy_received(
    conn: &mut PgConnection,
    batch_id: Uuid,
    rows: &[RawRecord],
) -> sqlx::Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('records', 'id')) FROM generate_series(1, $1)",
    )
    .bind(rows.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    let batch = batch_id.to_string();
    let mut buf = String::with_capacity(rows.len() * 256);
    for (id, r) in ids.iter().zip(rows) {
        use std::fmt::Write as _;
        let _ = write!(buf, "{id}\t{batch}\t{}\treceived", r.row);
        for value in r.values() {
            buf.push('\t');
            copy_text(&mut buf, value.as_deref());
        }
        buf.push('\t');
        match r
            .amount
            .as_deref()
            .and_then(|a| crate::domain::Amount::parse(a).ok())
        {
            Some(a) => {
                let _ = write!(buf, "{}", a.value());
            }
            None => buf.push_str("\\N"),
        }
        buf.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(
            "COPY records (id, batch_id, row_number, state, nik, kk, name, mother_name,
                 birth_place, birth_date, sex, address, region_code, phone, bank_code,
                 account_number, amount_raw, amount) FROM STDIN",
        )
        .await?;
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;

    buf.clear();
    for id in &ids {
        use std::fmt::Write as _;
        let _ = writeln!(buf, "{id}\treceived");
    }
    let mut copy = conn
        .copy_in_raw("COPY record_events (record_id, to_state) FROM STDIN")
        .await?;
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    Ok(ids)
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

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copy_text_escapes_what_copy_would_misread() {
        let mut buf = String::new();
        copy_text(&mut buf, Some("a\\b\tc\nd\re"));
        buf.push('|');
        copy_text(&mut buf, None);
        assert_eq!(buf, "a\\\\b\\tc\\nd\\re|\\N");
    }
}
