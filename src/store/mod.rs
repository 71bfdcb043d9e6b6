//! PostgreSQL: connecting, migrating, and the set-based queries of the pipeline. Query
//! functions take a `&mut PgConnection` (a transaction derefs to one) so that the caller decides
//! what commits together.

pub mod bank_requests;
pub mod outbox;
pub mod personal;
pub mod pipeline;
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
