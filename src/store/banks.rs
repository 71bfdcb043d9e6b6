//! The banks registered with salur (`salur bank add|list|remove`) and their broker users.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Registers a bank, or renames it and names its broker user anew.
pub async fn upsert(pool: &PgPool, code: &str, name: &str, amqp_user: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO banks (code, name, amqp_user) VALUES ($1, $2, $3)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, amqp_user = EXCLUDED.amqp_user",
    )
    .bind(code)
    .bind(name)
    .bind(amqp_user)
    .execute(pool)
    .await?;
    Ok(())
}

/// A registered bank.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bank {
    pub code: String,
    pub name: String,
    pub amqp_user: String,
    pub created_at: DateTime<Utc>,
}

/// Every registered bank, by code.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Bank>> {
    sqlx::query_as("SELECT code, name, amqp_user, created_at FROM banks ORDER BY code")
        .fetch_all(pool)
        .await
}

/// Removes bank `code`; `false` when there was none.
pub async fn remove(pool: &PgPool, code: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM banks WHERE code = $1")
        .bind(code)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
