//! Parked records (`blocked` and `dead`): the filter an office or an operator selects them by,
//! the listing and its counts, the state a record was parked from, and the parked messages
//! still waiting in the outbox.

use super::State;
use crate::domain::ReasonCode;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

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

impl Filter {
    /// The parked states the filter covers.
    fn states(&self) -> Vec<&'static str> {
        match self.state {
            Some(s) => vec![s.as_str()],
            None => vec![State::Blocked.as_str(), State::Dead.as_str()],
        }
    }
}

/// The stopped records with their record and batch (a [`Filter`]'s states pick the parked
/// ones): `stopped_records p` (kept by the records table's trigger,
/// `migrations/0013_counters.sql`) `JOIN records r JOIN batches b`.
const PARKED_FROM: &str = "FROM stopped_records p
         JOIN records r ON r.id = p.record_id
         JOIN batches b ON b.id = p.batch_id";

/// The `WHERE` clause of a [`Filter`] over [`PARKED_FROM`], parameters $1–$5 bound by
/// [`bind_filter!`].
const FILTER_WHERE: &str = "WHERE p.state = ANY($1)
           AND ($2::text IS NULL OR b.office = $2)
           AND ($3::uuid IS NULL OR p.batch_id = $3)
           AND ($4::text IS NULL OR r.reasons @> jsonb_build_array(jsonb_build_object('code', $4::text))
                OR p.reasons @> jsonb_build_array(jsonb_build_object('code', $4::text)))
           AND (cardinality($5::bigint[]) = 0 OR p.record_id = ANY($5))";

/// Binds $1–$5 of [`FILTER_WHERE`]: the filter, and the office whose batches it may see
/// (every office's when `None`).
macro_rules! bind_filter {
    ($query:expr, $office:expr, $filter:expr) => {
        $query
            .bind($filter.states())
            .bind($office)
            .bind($filter.batch_id)
            .bind($filter.reason.map(|r| r.as_str()))
            .bind(&$filter.ids)
    };
}

/// A parked record as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParkedRow {
    pub id: i64,
    pub batch_id: Uuid,
    pub row_number: i32,
    pub state: String,
    pub reasons: serde_json::Value,
    pub attempts: i32,
    pub updated_at: DateTime<Utc>,
    /// The state the record was in when it was parked: tells the stage where it stopped.
    pub parked_from: Option<String>,
}

/// Parked records matching `filter` in `office`'s batches (every office's when `None`), oldest
/// first, at most `limit`.
pub async fn find(
    conn: &mut PgConnection,
    office: Option<&str>,
    filter: &Filter,
    limit: Option<i64>,
) -> sqlx::Result<Vec<ParkedRow>> {
    let sql = format!(
        "SELECT r.id, r.batch_id, r.row_number, r.state, r.reasons, r.attempts, r.updated_at,
                p.from_state AS parked_from
         {PARKED_FROM}
         {FILTER_WHERE}
         ORDER BY r.updated_at, r.id
         LIMIT $6"
    );
    bind_filter!(sqlx::query_as(&sql), office, filter)
        .bind(limit.unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await
}

/// `(state, reason code, records)` of the parked records matching `filter` (a record with two
/// reasons counts under both).
pub async fn count_by_reason(
    conn: &mut PgConnection,
    office: Option<&str>,
    filter: &Filter,
) -> sqlx::Result<Vec<(String, String, i64)>> {
    let sql = format!(
        "SELECT r.state, reason->>'code', count(*)
         {PARKED_FROM}
              CROSS JOIN LATERAL jsonb_array_elements(r.reasons) AS reason
         {FILTER_WHERE}
         GROUP BY 1, 2"
    );
    bind_filter!(sqlx::query_as(&sql), office, filter)
        .fetch_all(conn)
        .await
}

/// `(state, records, age of the oldest in seconds)` of the parked records matching `filter`.
pub async fn totals(
    conn: &mut PgConnection,
    office: Option<&str>,
    filter: &Filter,
) -> sqlx::Result<Vec<(String, i64, i64)>> {
    let sql = format!(
        "SELECT r.state, count(*), extract(epoch FROM now() - min(r.updated_at))::bigint
         {PARKED_FROM}
         {FILTER_WHERE}
         GROUP BY 1"
    );
    bind_filter!(sqlx::query_as(&sql), office, filter)
        .fetch_all(conn)
        .await
}

/// The state a dead record was in when it went dead (its latest move to `dead`).
pub async fn dead_from(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT from_state FROM record_events_of($1) WHERE to_state = 'dead'
         ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Whether messages for `exchange` (the parked exchange) wait in the outbox.
pub async fn any_on_the_way(pool: &PgPool, exchange: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM outbox WHERE exchange = $1)")
        .bind(exchange)
        .fetch_one(pool)
        .await
}

/// The records whose parked message (for `exchange`) still waits in the outbox.
pub async fn on_the_way(conn: &mut PgConnection, exchange: &str) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT DISTINCT (convert_from(payload, 'UTF8')::jsonb ->> 'record_id')::bigint
         FROM outbox WHERE exchange = $1 AND convert_from(payload, 'UTF8')::jsonb ? 'record_id'",
    )
    .bind(exchange)
    .fetch_all(conn)
    .await
}
