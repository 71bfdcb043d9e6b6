//! The audit trail (`record_events`: one row per record, over `audit_chunks`) as people read
//! it, and a record's head facts for display.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// One state change of a record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reasons: serde_json::Value,
    pub detail: Option<serde_json::Value>,
    /// Who caused it (`None`: the system).
    pub actor_person: Option<String>,
    pub actor_token: Option<String>,
}

/// Every state change of record `id`, oldest first.
pub async fn history(conn: &mut PgConnection, id: i64) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT at, from_state, to_state, reasons, detail, actor_person, actor_token
         FROM record_events_of($1) ORDER BY id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// What display shows of a record besides its values.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Head {
    pub office: String,
    pub updated_at: DateTime<Utc>,
    pub reasons: serde_json::Value,
    /// The masked forms an erasure kept of the values it removed (`None` if never erased).
    pub masked: Option<serde_json::Value>,
}

/// The office, last change and current reasons of record `id`, when its batch belongs to
/// `office` (any office's when `None`).
pub async fn head(
    conn: &mut PgConnection,
    id: i64,
    office: Option<&str>,
) -> sqlx::Result<Option<Head>> {
    sqlx::query_as(
        "SELECT b.office, r.updated_at, r.reasons, r.masked
         FROM records_all r JOIN batches b ON b.id = r.batch_id
         WHERE r.id = $1 AND ($2::text IS NULL OR b.office = $2)",
    )
    .bind(id)
    .bind(office)
    .fetch_optional(conn)
    .await
}
