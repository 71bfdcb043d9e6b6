//! `salur office add|token|revoke|list`: the offices (and auditors) that may use the HTTP API,
//! and their bearer tokens.
//!
//! A token is `salur_` followed by 64 hex digits (32 random bytes). It is shown once, when it
//! is made; only its SHA-256 is stored, so a stolen database does not give working tokens.
//! With 256 random bits a plain (unsalted, fast) hash is enough: nothing can be guessed.

use crate::store::offices;
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
    if !offices::insert(&mut tx, code, name.trim(), role.as_str()).await? {
        return Err(OfficeError::Exists(code.to_owned()));
    }
    let token = insert_token(&mut tx, code).await?;
    tx.commit().await?;
    Ok(token)
}

async fn insert_token(conn: &mut sqlx::PgConnection, code: &str) -> Result<String, OfficeError> {
    let token = new_token();
    offices::insert_token(conn, code, &token_hash(&token), &token_label(&token)).await?;
    Ok(token)
}

/// Another token for an existing office (e.g. to rotate: make a new one, then revoke the old).
pub async fn issue_token(pool: &PgPool, code: &str) -> Result<String, OfficeError> {
    let mut tx = pool.begin().await?;
    if !offices::exists(&mut tx, code).await? {
        return Err(OfficeError::NotFound(code.to_owned()));
    }
    let token = insert_token(&mut tx, code).await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes the office's tokens: all of them, or the one given whole or by its label (the
/// `salur_xxxxxxxx` beginning `salur office list` shows). Returns how many were revoked.
pub async fn revoke(pool: &PgPool, code: &str, prefix: Option<&str>) -> Result<u64, OfficeError> {
    if !offices::exists(&mut *pool.acquire().await?, code).await? {
        return Err(OfficeError::NotFound(code.to_owned()));
    }
    Ok(offices::revoke(pool, code, prefix).await?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<OfficeRow>, OfficeError> {
    Ok(offices::list(pool)
        .await?
        .into_iter()
        .map(|o| OfficeRow {
            code: o.code,
            name: o.name,
            role: Role::parse(&o.role).unwrap_or(Role::Office),
            active_tokens: o.active_tokens,
            revoked_tokens: o.revoked_tokens,
            tokens: o.tokens,
            created_at: o.created_at,
        })
        .collect())
}

/// The principal a bearer token stands for; `None` for an unknown or revoked token.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Principal>, sqlx::Error> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let row = offices::authenticate(pool, &token_hash(token)).await?;
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
