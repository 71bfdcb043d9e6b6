//! Programmes: the amounts each pays one recipient and whether its payment lists need a
//! checker's approval.

use crate::domain::AllowedAmounts;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

/// A programme as stored.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Programme {
    pub code: String,
    pub name: String,
    pub amounts: Vec<Decimal>,
    pub approval_required: bool,
    pub created_at: DateTime<Utc>,
}

/// Registers a programme; `false` when the code is taken.
pub async fn insert(
    conn: &mut PgConnection,
    code: &str,
    name: &str,
    amounts: &AllowedAmounts,
    approval_required: bool,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO programmes (code, name, amounts, approval_required)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(code)
    .bind(name)
    .bind(amounts.values())
    .bind(approval_required)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every programme, by code.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Programme>> {
    sqlx::query_as(
        "SELECT code, name, amounts, approval_required, created_at FROM programmes ORDER BY code",
    )
    .fetch_all(pool)
    .await
}

/// Programme `code`, if it exists.
pub async fn get(conn: &mut PgConnection, code: &str) -> sqlx::Result<Option<Programme>> {
    sqlx::query_as(
        "SELECT code, name, amounts, approval_required, created_at FROM programmes
         WHERE code = $1",
    )
    .bind(code)
    .fetch_optional(conn)
    .await
}

/// The codes of every programme, sorted.
pub async fn codes(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT code FROM programmes ORDER BY code")
        .fetch_all(conn)
        .await
}

/// The amounts of those of `codes` that are programmes.
pub async fn allowed_amounts(
    conn: &mut PgConnection,
    codes: &[&str],
) -> sqlx::Result<HashMap<String, AllowedAmounts>> {
    let rows: Vec<(String, Vec<Decimal>)> =
        sqlx::query_as("SELECT code, amounts FROM programmes WHERE code = ANY($1)")
            .bind(codes)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(code, amounts)| AllowedAmounts::from_values(amounts).ok().map(|a| (code, a)))
        .collect())
}
