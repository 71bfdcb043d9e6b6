//! `salur programme add | list`: the programmes batches are submitted for, the amounts each
//! pays one recipient, and whether a checker must approve a payment list before money moves.

use crate::domain::AllowedAmounts;
use crate::store::programmes::{self, Programme};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum ProgrammeError {
    #[error(
        "programme code {0:?} is not valid: use letters, digits, '-' or '_', at most 16 characters (e.g. BPNT, PKH)"
    )]
    InvalidCode(String),
    #[error("the programme name must not be empty: give --name \"Program Sembako\"")]
    EmptyName,
    #[error("the programme name is not valid: {0}")]
    BadName(String),
    #[error("--amounts: {0}")]
    Amounts(String),
    #[error("programme {0} already exists: see `salur programme list`")]
    Exists(String),
    #[error("no programme {0}: see `salur programme list`, or add it with `salur programme add`")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A programme code as batches carry it (the rule of [`crate::ops::submit::BatchInfo`]).
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 16
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// Registers a programme paying one of `amounts` (`200000,600000`) per recipient.
pub async fn add(
    pool: &PgPool,
    code: &str,
    name: &str,
    amounts: &str,
    approval_required: bool,
) -> Result<Programme, ProgrammeError> {
    if !valid_code(code) {
        return Err(ProgrammeError::InvalidCode(code.to_owned()));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(ProgrammeError::EmptyName);
    }
    crate::domain::check_text("name", name).map_err(|e| ProgrammeError::BadName(e.to_string()))?;
    let amounts = AllowedAmounts::parse(amounts).map_err(ProgrammeError::Amounts)?;
    let mut tx = pool.begin().await?;
    if !programmes::insert(&mut tx, code, name, &amounts, approval_required).await? {
        return Err(ProgrammeError::Exists(code.to_owned()));
    }
    let added = programmes::get(&mut tx, code)
        .await?
        .ok_or_else(|| ProgrammeError::NotFound(code.to_owned()))?;
    tx.commit().await?;
    Ok(added)
}

/// Programme `code` as stored, added first with these values if it is missing (the demo, the
/// benchmark and the fault campaign make the programme they submit for).
pub async fn ensure(
    pool: &PgPool,
    code: &str,
    name: &str,
    amounts: &str,
    approval_required: bool,
) -> Result<Programme, ProgrammeError> {
    match add(pool, code, name, amounts, approval_required).await {
        Ok(p) => Ok(p),
        Err(ProgrammeError::Exists(_)) => get(pool, code).await,
        Err(e) => Err(e),
    }
}

/// Every programme, by code.
pub async fn list(pool: &PgPool) -> Result<Vec<Programme>, ProgrammeError> {
    Ok(programmes::list(pool).await?)
}

/// Programme `code`.
pub async fn get(pool: &PgPool, code: &str) -> Result<Programme, ProgrammeError> {
    programmes::get(&mut *pool.acquire().await?, code)
        .await?
        .ok_or_else(|| ProgrammeError::NotFound(code.to_owned()))
}
