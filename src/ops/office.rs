//! `salur office add|token|revoke|list`: the offices (and auditors) that may use the HTTP API,
//! and their bearer tokens.
//!
//! A token is `salur_` followed by 64 hex digits (32 random bytes). It is shown once, when it
//! is made; only its SHA-256 is stored, so a stolen database does not give working tokens.
//! With 256 random bits a plain (unsalted, fast) hash is enough: nothing can be guessed.

use crate::domain::{Actor, check_text};
use crate::store::offices;
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;

/// What a token may do. A token belongs to a person with one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits, follows, fixes, replays and discards its office's batches; sees nothing else.
    Maker,
    /// Approves or rejects its office's payment lists; changes no record.
    Checker,
    /// Reads every office's batches and records; changes nothing.
    Auditor,
    /// Manages programmes, budgets and offices; submits and approves nothing.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Maker, Role::Checker, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Maker => "maker",
            Role::Checker => "checker",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("no role {s:?}: use maker, checker, auditor or admin"))
    }
}

/// Who is calling, once their token is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The office (or auditor) the token belongs to.
    pub code: String,
    pub role: Role,
    /// The person the token was made for (`None` for tokens made without one).
    pub person: Option<String>,
    /// The token's label: what audit rows name it by.
    pub token_label: String,
}

impl Principal {
    /// Who this caller is, for the audit trail.
    pub fn actor(&self) -> Actor {
        Actor::new(self.person.clone(), self.token_label.clone())
    }
}

/// What to make a token for (see [`issue`]).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub role: Role,
    /// The person who will hold it: required for checkers and admins, whose decisions are
    /// signed with it.
    pub person: Option<String>,
    /// What audit rows name the token by; the token's beginning when not given.
    pub label: Option<String>,
}

/// One token of an office, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub label: String,
    pub role: String,
    pub person: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OfficeRow {
    pub code: String,
    pub name: String,
    /// `office` (has batches) or `auditor` (reads only).
    pub kind: String,
    pub active_tokens: i64,
    pub revoked_tokens: i64,
    /// The active tokens, oldest first.
    pub tokens: Vec<TokenView>,
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
    #[error("a {0} token is signed by a person: give --person \"NAME\"")]
    PersonRequired(Role),
    #[error(
        "{code} is an auditor: its tokens read and change nothing, so it cannot have a {role} token; give the role to a token of an office"
    )]
    AuditorOnly { code: String, role: Role },
    #[error("the {field} is not valid: {rule}")]
    BadText { field: &'static str, rule: String },
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

/// Registers an office (or, for [`Role::Auditor`], an auditor) and returns its first token,
/// of that role (a maker's for an office), which is not stored.
pub async fn add(pool: &PgPool, code: &str, name: &str, role: Role) -> Result<String, OfficeError> {
    add_for(
        pool,
        code,
        name,
        &NewToken {
            role,
            person: None,
            label: None,
        },
    )
    .await
}

/// [`add`] with the first token's person and label.
pub async fn add_for(
    pool: &PgPool,
    code: &str,
    name: &str,
    token: &NewToken,
) -> Result<String, OfficeError> {
    if !valid_code(code) {
        return Err(OfficeError::InvalidCode(code.to_owned()));
    }
    if name.trim().is_empty() {
        return Err(OfficeError::EmptyName);
    }
    let kind = if token.role == Role::Auditor {
        "auditor"
    } else {
        "office"
    };
    let mut tx = pool.begin().await?;
    if !offices::insert(&mut tx, code, name.trim(), kind).await? {
        return Err(OfficeError::Exists(code.to_owned()));
    }
    let token = insert_token(&mut tx, code, kind, token).await?;
    tx.commit().await?;
    Ok(token)
}

async fn insert_token(
    conn: &mut sqlx::PgConnection,
    code: &str,
    kind: &str,
    spec: &NewToken,
) -> Result<String, OfficeError> {
    if kind == "auditor" && spec.role != Role::Auditor {
        return Err(OfficeError::AuditorOnly {
            code: code.to_owned(),
            role: spec.role,
        });
    }
    let person = spec
        .person
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if person.is_none() && matches!(spec.role, Role::Checker | Role::Admin) {
        return Err(OfficeError::PersonRequired(spec.role));
    }
    for (field, value) in [("person", person), ("label", spec.label.as_deref())] {
        if let Some(v) = value {
            check_text("name", v).map_err(|e| OfficeError::BadText {
                field,
                rule: e.to_string(),
            })?;
        }
    }
    let token = new_token();
    let prefix = token_label(&token);
    let label = spec
        .label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or(&prefix);
    offices::insert_token(
        conn,
        &offices::NewToken {
            office: code,
            token_sha256: &token_hash(&token),
            prefix: &prefix,
            role: spec.role.as_str(),
            person,
            label,
        },
    )
    .await?;
    Ok(token)
}

/// The role of a token made without one: an auditor's for an auditor, a maker's otherwise.
pub async fn default_role(pool: &PgPool, code: &str) -> Result<Role, OfficeError> {
    match offices::kind(&mut *pool.acquire().await?, code)
        .await?
        .as_deref()
    {
        None => Err(OfficeError::NotFound(code.to_owned())),
        Some("auditor") => Ok(Role::Auditor),
        Some(_) => Ok(Role::Maker),
    }
}

/// Another token for an existing office, of its [`default_role`], e.g. to rotate: make a new
/// one, then revoke the old.
pub async fn issue_token(pool: &PgPool, code: &str) -> Result<String, OfficeError> {
    let role = default_role(pool, code).await?;
    issue(
        pool,
        code,
        &NewToken {
            role,
            person: None,
            label: None,
        },
    )
    .await
}

/// A new token of office `code` for a person with a role (`salur office token CODE --role
/// checker --person NAME`).
pub async fn issue(pool: &PgPool, code: &str, spec: &NewToken) -> Result<String, OfficeError> {
    let mut tx = pool.begin().await?;
    let Some(kind) = offices::kind(&mut tx, code).await? else {
        return Err(OfficeError::NotFound(code.to_owned()));
    };
    let token = insert_token(&mut tx, code, &kind, spec).await?;
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
            kind: o.role,
            active_tokens: o.active_tokens,
            revoked_tokens: o.revoked_tokens,
            tokens: o
                .tokens
                .into_iter()
                .zip(o.token_roles)
                .zip(o.token_people)
                .map(|((label, role), person)| TokenView {
                    label,
                    role,
                    person,
                })
                .collect(),
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
    Ok(row.and_then(|t| {
        Role::parse(&t.role).map(|role| Principal {
            code: t.code,
            role,
            person: t.person,
            token_label: t.label,
        })
    }))
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
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("office".parse::<Role>().is_err());
    }

    #[test]
    fn codes_are_checked() {
        assert!(valid_code("DINSOS-5371"));
        assert!(!valid_code(""));
        assert!(!valid_code("a b"));
        assert!(!valid_code(&"x".repeat(65)));
    }
}
