//! PostgreSQL: connecting, migrating, and every query of the pipeline, the API and the
//! operations (bench, bank-sim and the fault campaign's invariant checks keep their own). Query
//! functions take a `&mut PgConnection` (a transaction derefs to one) so that the caller decides
//! what commits together.
//!
//! # Layout
//! - [`records`]: a record's shape ([`RecordRow`], its columns derived from
//!   [`crate::domain::RawRecord`]), reading, locking, storing and changing records.
//! - [`batches`]: batches, their totals, listings and the report's rows; [`counts`]: the
//!   per-batch counters those totals come from.
//! - [`parked`]: blocked and dead records (the `dlq` filter and counts).
//! - [`corrections`]: finding and correcting blocked records.
//! - [`approvals`]: payment lists waiting for a checker, and the checkers' decisions.
//! - [`events`]: the audit trail as people read it.
//! - [`programmes`] and [`budgets`]: the programmes (their amounts) and budget ceilings per
//!   programme, period and office, with the one definition of what a budget has used.
//! - [`offices`]: offices and their API tokens (role, person, label); [`idempotency`]: the API's idempotency keys;
//!   [`banks`]: the registered banks.
//! - [`personal`] and [`sealed`]: sealing personal fields, retention, erasure.
//! - [`outbox`], [`bank_requests`], [`stats`], [`locks`]: the outbox, bank request
//!   bookkeeping, figures, advisory locks.

pub mod approvals;
pub mod bank_requests;
pub mod banks;
pub mod batches;
pub mod budgets;
pub mod corrections;
pub mod counts;
pub mod events;
pub mod idempotency;
pub mod locks;
pub mod offices;
pub mod outbox;
pub mod parked;
pub mod personal;
pub mod pipeline;
pub mod programmes;
pub mod reconciliations;
pub mod records;
pub mod sealed;
pub mod stats;

pub use records::{Attempt, Change, RecordRow, State};

use crate::config::{Settings, redact_url};
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr as _;
use std::time::Duration;

/// Whether the database answers (a trivial query).
/// Ends an operation's transaction: commits what succeeded; rolls back a refusal at once. (A
/// transaction merely dropped is rolled back only when its pooled connection is next used,
/// keeping the rows it locked until then: a refused fix or approval would block the next one.)
pub async fn end<T, E: From<sqlx::Error>>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

pub async fn ping(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Ends the caller's transaction (and its session) when it stays idle longer than `limit`
/// (at least a second), so that a client that stops sending cannot hold locks for long.
pub async fn set_idle_timeout(conn: &mut sqlx::PgConnection, limit: Duration) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "SET LOCAL idle_in_transaction_session_timeout = {}",
        (limit.as_millis() as u64).max(1_000)
    ))
    .execute(conn)
    .await?;
    Ok(())
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn unreachable_error(settings: &Settings, e: &sqlx::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach PostgreSQL at {} ({e}): start it with \
         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
         (or `scripts/services.sh`), or set DATABASE_URL",
        redact_url(&settings.database_url)
    )
}

/// A pool on `DATABASE_URL`, with the data keys loaded and checked against the database (a
/// missing or wrong key is an error here, at start-up). The error says whether the server is
/// down or the database is missing, and what to run.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = connect_pool(settings).await?;
    sealed::check(&mut *pool.acquire().await?).await?;
    Ok(pool)
}

async fn connect_pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&settings.database_url).map_err(|e| {
        anyhow::anyhow!(
            "DATABASE_URL {} is not a PostgreSQL URL: {e}",
            redact_url(&settings.database_url)
        )
    })?;
    PgPoolOptions::new()
        .max_connections(settings.db_pool)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => anyhow::anyhow!(
                "database in {} does not exist: run `salur migrate` to create it",
                redact_url(&settings.database_url)
            ),
            _ => unreachable_error(settings, &e),
        })
}

/// Creates the database if it is missing, then applies `migrations/`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let exists = Postgres::database_exists(&settings.database_url)
        .await
        .map_err(|e| unreachable_error(settings, &e))?;
    if !exists {
        match Postgres::create_database(&settings.database_url).await {
            Ok(()) => {}
            // Another process created it at the same moment.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(anyhow::anyhow!("cannot create the database: {e}")),
        }
        tracing::info!(url = %redact_url(&settings.database_url), "created database");
    }
    let pool = connect(settings).await?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("applying migrations failed: {e}"))?;
    sealed::check(&mut *pool.acquire().await?).await?;
    personal::seal_legacy(&pool).await?;
    Ok(pool)
}
