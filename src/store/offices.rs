//! Offices (and auditors) that may use the HTTP API, and their bearer tokens, stored as
//! SHA-256 hashes with a short label.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Registers an office; `false` when the code is taken.
pub async fn insert(
    conn: &mut PgConnection,
    code: &str,
    name: &str,
    role: &str,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO offices (code, name, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(code)
    .bind(name)
    .bind(role)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Whether office `code` exists.
pub async fn exists(conn: &mut PgConnection, code: &str) -> sqlx::Result<bool> {
    Ok(kind(conn, code).await?.is_some())
}

/// What office `code` is (`office` or `auditor`), if it exists.
pub async fn kind(conn: &mut PgConnection, code: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT role FROM offices WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await
}

/// A token to store: its hash, its beginning, its role, person and label.
pub struct NewToken<'a> {
    pub office: &'a str,
    pub token_sha256: &'a [u8],
    pub prefix: &'a str,
    pub role: &'a str,
    pub person: Option<&'a str>,
    pub label: &'a str,
}

/// Stores a token of an office.
pub async fn insert_token(conn: &mut PgConnection, t: &NewToken<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (office, token_sha256, prefix, role, person, label)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.office)
    .bind(t.token_sha256)
    .bind(t.prefix)
    .bind(t.role)
    .bind(t.person)
    .bind(t.label)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes the office's active tokens: all of them, or the one given whole or by its label.
/// Returns how many were revoked.
pub async fn revoke(pool: &PgPool, code: &str, token_or_label: Option<&str>) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now()
         WHERE office = $1 AND revoked_at IS NULL
           AND ($2::text IS NULL OR prefix = $2 OR label = $2 OR token_sha256 = sha256(convert_to($2, 'UTF8')))",
    )
    .bind(code)
    .bind(token_or_label)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// An office as listed, with its tokens counted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub code: String,
    pub name: String,
    pub role: String,
    pub active_tokens: i64,
    pub revoked_tokens: i64,
    /// Labels of the active tokens, oldest first.
    pub tokens: Vec<String>,
    /// Their roles, in the same order.
    pub token_roles: Vec<String>,
    /// Their people, in the same order.
    pub token_people: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
}

/// Every office, by code.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Listed>> {
    sqlx::query_as(
        "SELECT o.code, o.name, o.role,
                count(t.id) FILTER (WHERE t.revoked_at IS NULL) AS active_tokens,
                count(t.id) FILTER (WHERE t.revoked_at IS NOT NULL) AS revoked_tokens,
                coalesce(array_agg(coalesce(t.label, t.prefix) ORDER BY t.id)
                    FILTER (WHERE t.revoked_at IS NULL), '{}') AS tokens,
                coalesce(array_agg(t.role ORDER BY t.id) FILTER (WHERE t.revoked_at IS NULL), '{}')
                    AS token_roles,
                coalesce(array_agg(t.person ORDER BY t.id) FILTER (WHERE t.revoked_at IS NULL), '{}')
                    AS token_people,
                o.created_at
         FROM offices o LEFT JOIN api_tokens t ON t.office = o.code
         GROUP BY o.code ORDER BY o.code",
    )
    .fetch_all(pool)
    .await
}

/// The holder of an active token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenHolder {
    pub code: String,
    pub role: String,
    pub person: Option<String>,
    pub label: String,
}

/// The holder of the active token with this hash, noting when it was last used (at most once
/// a minute, so that busy tokens do not write on every request).
pub async fn authenticate(pool: &PgPool, token_sha256: &[u8]) -> sqlx::Result<Option<TokenHolder>> {
    sqlx::query_as(
        "WITH t AS (
             SELECT t.id, o.code, t.role, t.person, coalesce(t.label, t.prefix) AS label,
                    t.last_used_at
             FROM api_tokens t
             JOIN offices o ON o.code = t.office
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL
         ), used AS (
             UPDATE api_tokens SET last_used_at = now()
             WHERE id = (SELECT id FROM t)
               AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
         )
         SELECT code, role, person, label FROM t",
    )
    .bind(token_sha256)
    .fetch_optional(pool)
    .await
}
