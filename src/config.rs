//! Typed settings from environment variables, with defaults that work on a local machine.

use std::net::SocketAddr;

/// Where the services are and how the pipeline is tuned. Every field can be set from the
/// environment (see [`Settings::from_env`]); the defaults reach the local PostgreSQL and
/// RabbitMQ as a fresh Debian install sets them up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`. The database is created by `salur migrate` if it does not exist.
    pub database_url: String,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `SALUR_NAMESPACE`: a prefix for every exchange and queue name (`<ns>.salur.work`), so that
    /// tests, or two environments on one broker, never see each other's messages. Empty by default.
    pub namespace: String,
    /// `METRICS_ADDR`: where `/metrics` is served while workers run; `off` disables it.
    pub metrics_addr: Option<SocketAddr>,
    /// `SALUR_CHUNK_SIZE`: record ids per stage message (tens to hundreds).
    pub chunk_size: usize,
    /// `SALUR_PREFETCH`: unacknowledged messages a consumer may hold.
    pub prefetch: u16,
    /// `SALUR_CONCURRENCY`: chunks a stage handles at once (each in its own transaction).
    pub concurrency: usize,
    /// `SALUR_MAX_ATTEMPTS`: bank requests per record and stage before it is `dead`.
    pub max_attempts: i32,
    /// `SALUR_DB_POOL`: database connections per process.
    pub db_pool: u32,
    /// `API_ADDR`: where `salur api` listens.
    pub api_addr: SocketAddr,
    /// `API_BODY_LIMIT`: the largest CSV or JSON upload `salur api` takes, in bytes (413 above).
    /// A CSV upload is streamed, so this bounds disk and time, not memory.
    pub api_body_limit: u64,
    /// `API_XLSX_LIMIT`: the largest Excel upload, in bytes. A workbook is a zip archive that
    /// is read whole in memory (and unpacks to several times its size), hence its own limit.
    pub api_xlsx_limit: u64,
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/salur";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8080";

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            amqp_url: DEFAULT_AMQP_URL.into(),
            namespace: String::new(),
            metrics_addr: DEFAULT_METRICS_ADDR.parse().ok(),
            chunk_size: 100,
            prefetch: 50,
            concurrency: 4,
            max_attempts: 5,
            db_pool: 32,
            api_addr: DEFAULT_API_ADDR.parse().expect("a valid default address"),
            api_body_limit: 512 * 1024 * 1024,
            api_xlsx_limit: 64 * 1024 * 1024,
        }
    }
}

impl Settings {
    /// Reads the environment; an unset variable keeps its default, a malformed one is an error
    /// that names the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut s = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("DATABASE_URL") {
            s.database_url = v;
        }
        if let Some(v) = var("AMQP_URL") {
            s.amqp_url = v;
        }
        if let Some(v) = var("SALUR_NAMESPACE") {
            s.namespace = v;
        }
        if let Some(v) = var("METRICS_ADDR") {
            s.metrics_addr = if v == "off" {
                None
            } else {
                Some(v.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "METRICS_ADDR={v:?} is not an address like 127.0.0.1:9464 (or `off`)"
                    )
                })?)
            };
        }
        if let Some(v) = var("API_ADDR") {
            s.api_addr = v.parse().map_err(|_| {
                anyhow::anyhow!("API_ADDR={v:?} is not an address like 127.0.0.1:8080")
            })?;
        }
        fn num<T: std::str::FromStr>(
            name: &str,
            v: Option<String>,
            into: &mut T,
        ) -> anyhow::Result<()> {
            if let Some(v) = v {
                *into = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid number"))?;
            }
            Ok(())
        }
        num(
            "SALUR_CHUNK_SIZE",
            var("SALUR_CHUNK_SIZE"),
            &mut s.chunk_size,
        )?;
        num("SALUR_PREFETCH", var("SALUR_PREFETCH"), &mut s.prefetch)?;
        num(
            "SALUR_CONCURRENCY",
            var("SALUR_CONCURRENCY"),
            &mut s.concurrency,
        )?;
        num(
            "SALUR_MAX_ATTEMPTS",
            var("SALUR_MAX_ATTEMPTS"),
            &mut s.max_attempts,
        )?;
        num("SALUR_DB_POOL", var("SALUR_DB_POOL"), &mut s.db_pool)?;
        num(
            "API_BODY_LIMIT",
            var("API_BODY_LIMIT"),
            &mut s.api_body_limit,
        )?;
        num(
            "API_XLSX_LIMIT",
            var("API_XLSX_LIMIT"),
            &mut s.api_xlsx_limit,
        )?;
        anyhow::ensure!(
            (1..=10_000).contains(&s.chunk_size),
            "SALUR_CHUNK_SIZE must be between 1 and 10000"
        );
        anyhow::ensure!(s.concurrency >= 1, "SALUR_CONCURRENCY must be at least 1");
        anyhow::ensure!(s.max_attempts >= 1, "SALUR_MAX_ATTEMPTS must be at least 1");
        Ok(s)
    }

    /// The name of an exchange or queue in this namespace.
    pub fn name(&self, base: &str) -> String {
        if self.namespace.is_empty() {
            base.to_owned()
        } else {
            format!("{}.{}", self.namespace, base)
        }
    }
}

/// A URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/salur"),
            "postgres://postgres@127.0.0.1/salur"
        );
    }

    #[test]
    fn namespace_prefixes_names() {
        let mut s = Settings::default();
        assert_eq!(s.name("salur.work"), "salur.work");
        s.namespace = "t1".into();
        assert_eq!(s.name("salur.work"), "t1.salur.work");
    }
}
