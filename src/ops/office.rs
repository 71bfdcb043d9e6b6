//! `salur office add|token|revoke|list`: the offices (and auditors) that may use the HTTP API,
//! and their bearer tokens.
//!
//! A token is `salur_` followed by 64 hex digits (32 random bytes). It is shown once, when it
//! is made; only its SHA-256 is stored, so a stolen database does not give working tokens.
//! With 256 random bits a plain (unsalted, fast) hash is enough: nothing can be guessed.

use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits, follows, fixes and replays its own batches; sees nothing else.
    Office,
    /// Reads every office's batches and records; changes nothing.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Office => "office",
            Role::Auditor => "auditor",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "office" => Some(Role::Office),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// Who is calling, once their token is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub code: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct OfficeRow {
    pub code: String,
    pub name: String,
    pub role: Role,
    pub active_tokens: i64,
    pub revoked_tokens: i64,
    /// Labels (beginnings) of the active tokens.
    pub tokens: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error(
        "office code {0:?} is not valid: use letters, digits, '-', '_' or '.', at most 64 characters (e.g. DINSOS-5371)"
    )]
    InvalidCode(String),
    #[error("the office name must not be empty: give --name \"Dinas Sosial Kota Kupang\"")]
    EmptyName,
    #[error(
        "office {0} already exists: make it a new token with `salur office token {0}`, or choose another code"
    )]
    Exists(String),
    #[error("no office {0}: list the offices with `salur office list`")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const TOKEN_PREFIX: &str = "salur_";

/// A fresh token: `salur_` and 64 hex digits.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The first characters of a token, enough to tell tokens apart in `salur office list`.
fn token_label(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 8).collect()
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Registers an office (or an auditor) and returns its first token, which is not stored.
pub async fn add(pool: &PgPool, code: &str, name: &str, role: Role) -> Result<String, OfficeError> {
    if !valid_code(code) {
        return Err(OfficeError::InvalidCode(code.to_owned()));
    }
    if name.trim().is_empty() {
        return Err(OfficeError::EmptyName);
    }
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO offices (code, name, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(code)
    .bind(name.trim())
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(OfficeError::Exists(code.to_owned()));
    }
    let token = insert_token(&mut tx, code).await?;
    tx.commit().await?;
    Ok(token)
}

async fn insert_token(conn: &mut sqlx::PgConnection, code: &str) -> Result<String, OfficeError> {
    let token = new_token();
    sqlx::query("INSERT INTO api_tokens (office, token_sha256, prefix) VALUES ($1, $2, $3)")
        .bind(code)
        .bind(token_hash(&token))
        .bind(token_label(&token))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Another token for an existing office (e.g. to rotate: make a new one, then revoke the old).
pub async fn issue_token(pool: &PgPool, code: &str) -> Result<String, OfficeError> {
    let mut tx = pool.begin().await?;
    let exists: Option<String> = sqlx::query_scalar("SELECT code FROM offices WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(OfficeError::NotFound(code.to_owned()));
    }
    let token = insert_token(&mut tx, code).await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes the office's tokens: all of them, or the one given whole or by its label (the
/// `salur_xxxxxxxx` beginning `salur office list` shows). Returns how many were revoked.
pub async fn revoke(pool: &PgPool, code: &str, prefix: Option<&str>) -> Result<u64, OfficeError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT code FROM offices WHERE code = $1")
        .bind(code)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Err(OfficeError::NotFound(code.to_owned()));
    }
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now()
         WHERE office = $1 AND revoked_at IS NULL
           AND ($2::text IS NULL OR prefix = $2 OR token_sha256 = sha256(convert_to($2, 'UTF8')))",
    )
    .bind(code)
    .bind(prefix)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn list(pool: &PgPool) -> Result<Vec<OfficeRow>, OfficeError> {
    type Row = (
        String,
        String,
        String,
        i64,
        i64,
        Vec<String>,
        chrono::DateTime<chrono::Utc>,
    );
    let rows: Vec<Row> =
        sqlx::query_as(
            "SELECT o.code, o.name, o.role,
                    count(t.id) FILTER (WHERE t.revoked_at IS NULL),
                    count(t.id) FILTER (WHERE t.revoked_at IS NOT NULL),
                    coalesce(array_agg(t.prefix ORDER BY t.id) FILTER (WHERE t.revoked_at IS NULL), '{}'),
                    o.created_at
             FROM offices o LEFT JOIN api_tokens t ON t.office = o.code
             GROUP BY o.code ORDER BY o.code",
        )
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(code, name, role, active_tokens, revoked_tokens, tokens, created_at)| OfficeRow {
                code,
                name,
                role: Role::parse(&role).unwrap_or(Role::Office),
                active_tokens,
                revoked_tokens,
                tokens,
                created_at,
            },
        )
        .collect())
}

/// The principal a bearer token stands for; `None` for an unknown or revoked token.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Principal>, sqlx::Error> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let row: Option<(String, String)> = sqlx::query_as(
        "WITH t AS (
             SELECT t.id, o.code, o.role, t.last_used_at FROM api_tokens t
             JOIN offices o ON o.code = t.office
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL
         ), used AS (
             UPDATE api_tokens SET last_used_at = now()
             WHERE id = (SELECT id FROM t)
               AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
         )
         SELECT code, role FROM t",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(code, role)| Role::parse(&role).map(|role| Principal { code, role })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(a.starts_with(&token_label(&a)));
    }

    #[test]
    fn codes_are_checked() {
        assert!(valid_code("DINSOS-5371"));
        assert!(!valid_code(""));
        assert!(!valid_code("a b"));
        assert!(!valid_code(&"x".repeat(65)));
    }
}
