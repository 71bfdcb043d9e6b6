//! The bank requests salur sent, so that an answer is applied only if it answers one of them
//! (see `migrations/0007_bank_trust.sql`).

use sqlx::PgConnection;
use uuid::Uuid;

/// One request as sent: the bank, the kind, and per record its idempotency key (empty for an
/// inquiry).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentRequest {
    pub request_id: Uuid,
    pub bank_code: String,
    pub kind: String,
    pub record_ids: Vec<i64>,
    pub keys: Vec<String>,
}

impl SentRequest {
    /// The key this request carried for `record_id`, if it named that record.
    pub fn key_of(&self, record_id: i64) -> Option<&str> {
        self.record_ids
            .iter()
            .position(|id| *id == record_id)
            .map(|i| self.keys.get(i).map_or("", String::as_str))
    }
}

/// Notes requests as sent, in the transaction that queues them.
pub async fn insert(conn: &mut PgConnection, sent: &[SentRequest]) -> sqlx::Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = sent.iter().map(|s| s.request_id).collect();
    let banks: Vec<&str> = sent.iter().map(|s| s.bank_code.as_str()).collect();
    let kinds: Vec<&str> = sent.iter().map(|s| s.kind.as_str()).collect();
    // Arrays of arrays must be rectangular in PostgreSQL: one JSON document per request.
    let records: Vec<serde_json::Value> =
        sent.iter().map(|s| s.record_ids.clone().into()).collect();
    let keys: Vec<serde_json::Value> = sent.iter().map(|s| s.keys.clone().into()).collect();
    sqlx::query(
        "INSERT INTO bank_requests (request_id, bank_code, kind, record_ids, keys)
         SELECT u.id, u.bank, u.kind,
                ARRAY(SELECT jsonb_array_elements_text(u.records)::bigint),
                ARRAY(SELECT jsonb_array_elements_text(u.keys))
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
             AS u(id, bank, kind, records, keys)
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&banks)
    .bind(&kinds)
    .bind(&records)
    .bind(&keys)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request with this id, if salur sent it.
pub async fn find(conn: &mut PgConnection, request_id: Uuid) -> sqlx::Result<Option<SentRequest>> {
    sqlx::query_as(
        "SELECT request_id, bank_code, kind, record_ids, keys FROM bank_requests
         WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// The latest request of `kind` that named each of `record_ids`: `(record id, request id)`.
/// For answers that arrive by another path than the replies exchange (a bank's result file),
/// which must answer a request salur sent like any other answer.
pub async fn latest_for(
    conn: &mut PgConnection,
    kind: &str,
    record_ids: &[i64],
) -> sqlx::Result<Vec<(i64, Uuid)>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (r.id) r.id, b.request_id
         FROM bank_requests b, UNNEST(b.record_ids) AS r(id)
         WHERE b.kind = $1 AND r.id = ANY($2)
         ORDER BY r.id, b.sent_at DESC",
    )
    .bind(kind)
    .bind(record_ids)
    .fetch_all(conn)
    .await
}
