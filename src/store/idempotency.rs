//! Idempotency keys of the HTTP API: an upload with a key an office used before answers with
//! the batch that key made, when the body is the same.

use super::locks;
use sqlx::PgConnection;
use uuid::Uuid;

/// What an earlier request with the key made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Earlier {
    /// SHA-256 of the earlier request's body and parameters.
    pub body_sha256: Vec<u8>,
    pub batch_id: Uuid,
    pub record_count: i32,
}

/// Serialises requests with the same key of one office until the caller's transaction ends.
pub async fn lock(conn: &mut PgConnection, office: &str, key: &str) -> sqlx::Result<()> {
    locks::lock_xact_named(conn, &format!("salur-idempotency\n{office}\n{key}")).await
}

/// What the key made before, if it was used.
pub async fn earlier(
    conn: &mut PgConnection,
    office: &str,
    key: &str,
) -> sqlx::Result<Option<Earlier>> {
    sqlx::query_as(
        "SELECT k.body_sha256, k.batch_id, b.record_count
         FROM idempotency_keys k JOIN batches b ON b.id = k.batch_id
         WHERE k.office = $1 AND k.key = $2",
    )
    .bind(office)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Remembers that the key made `batch_id` from a body hashing to `body_sha256`.
pub async fn remember(
    conn: &mut PgConnection,
    office: &str,
    key: &str,
    body_sha256: &[u8],
    batch_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (office, key, body_sha256, batch_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(office)
    .bind(key)
    .bind(body_sha256)
    .bind(batch_id)
    .execute(conn)
    .await?;
    Ok(())
}
