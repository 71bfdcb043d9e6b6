//! Typed settings from environment variables, with defaults that work on a local machine.

use crate::domain::AmountRange;
use crate::messages::Stage;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Where the services are and how the pipeline is tuned. Every field can be set from the
/// environment (see [`Settings::from_env`]); the defaults reach the local PostgreSQL and
/// RabbitMQ as a fresh Debian install sets them up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`. The database is created by `salur migrate` if it does not exist.
    pub database_url: String,
    /// `SALUR_BANK_LEDGER_URL` (or `salur bank-sim --ledger-url`): where `salur bank-sim` keeps
    /// its ledger (accounts, transfers, returns, SNAP calls). A bank does not live in salur's
    /// database: unset, it is a database of its own next to salur's, named `<dbname>_bank`
    /// ([`Settings::bank_ledger_url`]), which bank-sim creates if it is missing.
    pub bank_ledger_url: Option<String>,
    /// `AMQP_URL`: one broker, or the nodes of a cluster separated by commas
    /// (`amqp://guest:guest@10.0.0.1:5672/%2f,10.0.0.2:5672,10.0.0.3:5672`). An address after the
    /// first may be a bare `host:port`: it takes the first one's scheme, user and vhost. A
    /// process connects to any node that answers and, when its node goes away, to another.
    pub amqp_url: String,
    /// `SALUR_NAMESPACE`: a prefix for every exchange and queue name (`<ns>.salur.work`), so that
    /// tests, or two environments on one broker, never see each other's messages. Empty by default.
    pub namespace: String,
    /// `RABBITMQ_MANAGEMENT_URL`: RabbitMQ's management HTTP API, used by `salur bank add` (and
    /// bank-sim, the demo and the bench) to create banks' users, with an administrator's
    /// credentials (`http://user:password@host:15672`). Unset: port 15672 on the host of
    /// `AMQP_URL`, with its credentials.
    pub management_url: Option<String>,
    /// `METRICS_ADDR`: where `/metrics` is served while workers run; `off` disables it.
    pub metrics_addr: Option<SocketAddr>,
    /// `SALUR_CHUNK_SIZE`: record ids per stage message (tens to hundreds).
    pub chunk_size: usize,
    /// `SALUR_PREFETCH`: unacknowledged messages a consumer may hold.
    pub prefetch: u16,
    /// `SALUR_CONCURRENCY`: chunks a stage handles at once (each in its own transaction).
    pub concurrency: usize,
    /// `SALUR_GROUP`: at most this many messages already waiting in a consumer's prefetch (a
    /// stage's, or the banks' answers) are handled in one transaction, their writes together
    /// (1: each message in its own transaction).
    pub group: usize,
    /// `SALUR_MAX_ATTEMPTS`: tries per record and stage before it is `dead` (a transient bank
    /// error, a bank answer that never came, a failed handler each count as one).
    pub max_attempts: i32,
    /// `SALUR_MAX_ATTEMPTS_<STAGE>` (e.g. `SALUR_MAX_ATTEMPTS_TRANSFER=8`): a stage's own limit.
    pub stage_max_attempts: BTreeMap<Stage, i32>,
    /// `SALUR_RETRY_TIERS`: the delays between tries, shortest first (`5s,30s,2m,10m,1h`). Each
    /// tier is a queue `salur.retry.<tier>` whose message TTL dead-letters back to the stage; the
    /// n-th retry waits in the n-th tier (the last one repeats).
    pub retry_tiers: Vec<RetryTier>,
    /// `SALUR_BANK_TIMEOUT`: how long a bank request may stay unanswered before it is sent again
    /// with the same idempotency key (and counted as an attempt).
    pub bank_timeout: Duration,
    /// `SALUR_STALE_AFTER`: a record waiting for a stage (no bank request out) longer than this
    /// has lost its message (a purged queue, a handler that gave up while the database was
    /// down) and is sent again. Longer than the longest retry tier by default.
    pub stale_after: Duration,
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
    /// `SALUR_RETENTION_DAYS`: how long the personal fields of a closed batch (no record in
    /// flight) are kept, for programmes without their own period (`salur retention set`).
    pub retention_days: i32,
    /// `API_HEADER_TIMEOUT`: how long a client may take to send a request's headers (10s).
    pub api_header_timeout: Duration,
    /// `API_BODY_IDLE_TIMEOUT`: how long an upload may send nothing before it is answered 408
    /// and rolled back (15s). No database transaction waits on a client longer than this.
    pub api_body_idle_timeout: Duration,
    /// `API_UPLOADS_PER_OFFICE`: uploads one office may have in progress at once (2); more are
    /// answered 429 with `Retry-After`, so one office cannot take every database connection.
    pub api_uploads_per_office: usize,
    /// `SALUR_AMOUNT_MIN` / `SALUR_AMOUNT_MAX`: the amounts one recipient may be paid
    /// (Rp 10.000 to Rp 10.000.000); a record outside is blocked `AMOUNT_INVALID`. The maximum
    /// can never exceed Rp 1.000.000.000.000 ([`crate::domain::AMOUNT_HARD_MAX`]).
    pub amount_range: AmountRange,
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/salur";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8080";
/// Five years after a batch is closed (see the README, "Personal data").
pub const DEFAULT_RETENTION_DAYS: i32 = 1826;
pub const DEFAULT_RETRY_TIERS: &str = "5s,30s,2m,10m,1h";
/// Record ids a stage message may carry (`SALUR_CHUNK_SIZE`, `salur bench --chunk-size`).
pub const CHUNK_SIZES: std::ops::RangeInclusive<usize> = 1..=10_000;

/// One delay tier of the retry queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTier {
    /// As written (`30s`): the queue is `salur.retry.<name>`, the routing key `<name>.<stage>`.
    pub name: String,
    pub delay: Duration,
}

impl RetryTier {
    /// `5s,30s,2m` → tiers; names must be distinct and delays grow.
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<RetryTier>> {
        let mut tiers: Vec<RetryTier> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let delay = parse_duration(name)?;
            anyhow::ensure!(
                !delay.is_zero(),
                "retry tier {name:?} must be longer than 0"
            );
            if let Some(last) = tiers.last() {
                anyhow::ensure!(
                    delay > last.delay,
                    "retry tiers must grow: {name} is not longer than {}",
                    last.name
                );
            }
            tiers.push(RetryTier {
                name: name.to_owned(),
                delay,
            });
        }
        anyhow::ensure!(
            !tiers.is_empty(),
            "give at least one retry tier, e.g. 5s,30s,2m"
        );
        Ok(tiers)
    }
}

/// `500ms`, `5s`, `2m`, `1h`, or plain seconds (`90`).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "{s:?} is not a duration: write a whole number with ms, s, m or h (e.g. 30s, 2m)"
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    })
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            bank_ledger_url: None,
            amqp_url: DEFAULT_AMQP_URL.into(),
            namespace: String::new(),
            management_url: None,
            metrics_addr: DEFAULT_METRICS_ADDR.parse().ok(),
            chunk_size: 100,
            prefetch: 50,
            concurrency: 4,
            group: 5,
            max_attempts: 5,
            stage_max_attempts: BTreeMap::new(),
            retry_tiers: RetryTier::parse_list(DEFAULT_RETRY_TIERS).expect("default tiers parse"),
            bank_timeout: Duration::from_secs(300),
            stale_after: Duration::from_secs(2 * 3600),
            db_pool: 32,
            api_addr: DEFAULT_API_ADDR.parse().expect("a valid default address"),
            api_body_limit: 512 * 1024 * 1024,
            api_xlsx_limit: 64 * 1024 * 1024,
            retention_days: DEFAULT_RETENTION_DAYS,
            api_header_timeout: Duration::from_secs(10),
            api_body_idle_timeout: Duration::from_secs(15),
            api_uploads_per_office: 2,
            amount_range: AmountRange::DEFAULT,
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
        if let Some(v) = var("SALUR_BANK_LEDGER_URL") {
            s.bank_ledger_url = Some(v);
        }
        if let Some(v) = var("AMQP_URL") {
            s.amqp_url = v;
        }
        if let Some(v) = var("SALUR_NAMESPACE") {
            s.namespace = v;
        }
        if let Some(v) = var("RABBITMQ_MANAGEMENT_URL") {
            s.management_url = Some(v);
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
        num("SALUR_GROUP", var("SALUR_GROUP"), &mut s.group)?;
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
        num(
            "SALUR_RETENTION_DAYS",
            var("SALUR_RETENTION_DAYS"),
            &mut s.retention_days,
        )?;
        anyhow::ensure!(
            s.retention_days > 0,
            "SALUR_RETENTION_DAYS must be at least 1"
        );
        for stage in Stage::ALL {
            let name = format!("SALUR_MAX_ATTEMPTS_{}", stage.as_str().to_uppercase());
            let mut n = 0;
            if let Some(v) = var(&name) {
                num(&name, Some(v), &mut n)?;
                anyhow::ensure!(n >= 1, "{name} must be at least 1");
                s.stage_max_attempts.insert(stage, n);
            }
        }
        if let Some(v) = var("SALUR_RETRY_TIERS") {
            s.retry_tiers = RetryTier::parse_list(&v)
                .map_err(|e| anyhow::anyhow!("SALUR_RETRY_TIERS={v:?}: {e}"))?;
        }
        num(
            "API_UPLOADS_PER_OFFICE",
            var("API_UPLOADS_PER_OFFICE"),
            &mut s.api_uploads_per_office,
        )?;
        anyhow::ensure!(
            s.api_uploads_per_office >= 1,
            "API_UPLOADS_PER_OFFICE must be at least 1"
        );
        let (mut min, mut max) = (s.amount_range.min(), s.amount_range.max());
        num("SALUR_AMOUNT_MIN", var("SALUR_AMOUNT_MIN"), &mut min)?;
        num("SALUR_AMOUNT_MAX", var("SALUR_AMOUNT_MAX"), &mut max)?;
        s.amount_range = AmountRange::new(min, max)
            .map_err(|e| anyhow::anyhow!("SALUR_AMOUNT_MIN / SALUR_AMOUNT_MAX: {e}"))?;
        for (name, into) in [
            ("SALUR_BANK_TIMEOUT", &mut s.bank_timeout),
            ("SALUR_STALE_AFTER", &mut s.stale_after),
            ("API_HEADER_TIMEOUT", &mut s.api_header_timeout),
            ("API_BODY_IDLE_TIMEOUT", &mut s.api_body_idle_timeout),
        ] {
            if let Some(v) = var(name) {
                *into = parse_duration(&v).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                anyhow::ensure!(!into.is_zero(), "{name} must be longer than 0");
            }
        }
        anyhow::ensure!(
            CHUNK_SIZES.contains(&s.chunk_size),
            "SALUR_CHUNK_SIZE must be between 1 and 10000"
        );
        anyhow::ensure!(s.concurrency >= 1, "SALUR_CONCURRENCY must be at least 1");
        anyhow::ensure!(
            (1..=100).contains(&s.group),
            "SALUR_GROUP must be between 1 and 100"
        );
        anyhow::ensure!(s.max_attempts >= 1, "SALUR_MAX_ATTEMPTS must be at least 1");
        Ok(s)
    }

    /// bank-sim's ledger database: [`Settings::bank_ledger_url`] if set, else salur's URL with
    /// the database `<dbname>_bank` (`.../salur` → `.../salur_bank`).
    pub fn bank_ledger_url(&self) -> String {
        match &self.bank_ledger_url {
            Some(url) => url.clone(),
            None => sibling_database_url(&self.database_url, "_bank"),
        }
    }

    /// The attempts a record gets in `stage` before it is `dead`.
    pub fn max_attempts(&self, stage: Stage) -> i32 {
        self.stage_max_attempts
            .get(&stage)
            .copied()
            .unwrap_or(self.max_attempts)
    }

    /// The tier the `attempt`-th retry (1-based) waits in; the last tier repeats.
    pub fn retry_tier(&self, attempt: i32) -> &RetryTier {
        let i = (attempt.max(1) as usize - 1).min(self.retry_tiers.len() - 1);
        &self.retry_tiers[i]
    }

    /// The namespace whose queues, exchanges and bank users may be torn down (`salur topology
    /// --delete`): refused when it is empty, so the production topology is never deleted.
    pub fn namespace_to_tear_down(&self) -> anyhow::Result<&str> {
        anyhow::ensure!(
            !self.namespace.is_empty(),
            "refusing to delete the production topology: set SALUR_NAMESPACE to the namespace to tear down"
        );
        Ok(&self.namespace)
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

/// A PostgreSQL URL with `suffix` appended to its database name, the query string kept
/// (`postgres://h/salur?sslmode=require` → `postgres://h/salur_bank?sslmode=require`). A URL
/// that names no database gets `salur` + `suffix` (the name of [`DEFAULT_DATABASE_URL`]).
pub fn sibling_database_url(url: &str, suffix: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let authority_at = base.find("://").map_or(0, |i| i + 3);
    let (root, name) = match base[authority_at..].find('/') {
        Some(i) => (&base[..authority_at + i], &base[authority_at + i + 1..]),
        None => (base, ""),
    };
    let name = if name.is_empty() { "salur" } else { name };
    format!("{root}/{name}{suffix}{query}")
}

/// The broker addresses in an `AMQP_URL` (see [`Settings::amqp_url`]), each a complete URL.
pub fn amqp_addresses(url: &str) -> Vec<String> {
    let mut parts = url.split(',').map(str::trim).filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let (scheme, rest) = first.split_once("://").unwrap_or(("amqp", first));
    let (userinfo, hostpath) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    // "/vhost?query" of the first address, for the bare ones after it.
    let tail = hostpath.find(['/', '?']).map_or("", |i| &hostpath[i..]);
    let mut out = vec![first.to_owned()];
    for p in parts {
        if p.contains("://") {
            out.push(p.to_owned());
        } else {
            let user = userinfo.map_or(String::new(), |u| format!("{u}@"));
            out.push(format!("{scheme}://{user}{p}{tail}"));
        }
    }
    out
}

/// `url` (one or several addresses) with every address on virtual host `vhost`.
pub fn amqp_url_on_vhost(url: &str, vhost: &str) -> String {
    let vhost = vhost.replace('%', "%25").replace('/', "%2f");
    amqp_addresses(url)
        .iter()
        .map(|a| {
            let (scheme, rest) = a.split_once("://").unwrap_or(("amqp", a));
            let host_end = rest.rfind('@').map_or(0, |i| i + 1);
            let path_at = rest[host_end..].find(['/', '?']).map(|i| i + host_end);
            let (authority, after) = match path_at {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let query = after.find('?').map_or("", |i| &after[i..]);
            format!("{scheme}://{authority}/{vhost}{query}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A URL (or several, comma-separated) with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
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
            redact_url("amqp://a:b@h1/%2f,amqp://c:d@h2/%2f,h3:5"),
            "amqp://a:***@h1/%2f,amqp://c:***@h2/%2f,h3:5"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/salur"),
            "postgres://postgres@127.0.0.1/salur"
        );
    }

    #[test]
    fn retry_tiers_parse_grow_and_repeat_the_last() {
        let tiers = RetryTier::parse_list("500ms, 5s,2m,1h").unwrap();
        assert_eq!(
            tiers.iter().map(|t| t.delay).collect::<Vec<_>>(),
            [
                Duration::from_millis(500),
                Duration::from_secs(5),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ]
        );
        assert!(RetryTier::parse_list("30s,5s").is_err());
        assert!(RetryTier::parse_list("5x").is_err());
        assert!(RetryTier::parse_list("").is_err());
        let s = Settings::default();
        assert_eq!(s.retry_tier(1).name, "5s");
        assert_eq!(s.retry_tier(5).name, "1h");
        assert_eq!(s.retry_tier(9).name, "1h");
    }

    #[test]
    fn stage_limits_fall_back_to_the_default() {
        let mut s = Settings::default();
        s.stage_max_attempts.insert(Stage::Transfer, 8);
        assert_eq!(s.max_attempts(Stage::Transfer), 8);
        assert_eq!(s.max_attempts(Stage::Verification), 5);
    }

    #[test]
    fn several_amqp_addresses_share_the_first_ones_user_and_vhost() {
        assert_eq!(
            amqp_addresses("amqp://u:p@h1:5701/v1?heartbeat=5, h2:5702 ,amqp://x@h3/%2f"),
            [
                "amqp://u:p@h1:5701/v1?heartbeat=5",
                "amqp://u:p@h2:5702/v1?heartbeat=5",
                "amqp://x@h3/%2f"
            ]
        );
        assert_eq!(amqp_addresses(DEFAULT_AMQP_URL), [DEFAULT_AMQP_URL]);
        assert_eq!(
            amqp_url_on_vhost("amqp://u:p@h1:5701/%2f,h2:5702", "salur_test_1"),
            "amqp://u:p@h1:5701/salur_test_1,amqp://u:p@h2:5702/salur_test_1"
        );
        assert_eq!(
            amqp_url_on_vhost("amqp://h1?heartbeat=5", "a/b"),
            "amqp://h1/a%2fb?heartbeat=5"
        );
    }

    #[test]
    fn the_bank_ledger_is_a_database_next_to_salurs_unless_set() {
        let mut s = Settings::default();
        assert_eq!(
            s.bank_ledger_url(),
            "postgres://postgres@127.0.0.1:5432/salur_bank"
        );
        s.database_url = "postgres://u:p@db:5433/pay?sslmode=require".into();
        assert_eq!(
            s.bank_ledger_url(),
            "postgres://u:p@db:5433/pay_bank?sslmode=require"
        );
        s.database_url = "postgres://u@db".into();
        assert_eq!(s.bank_ledger_url(), "postgres://u@db/salur_bank");
        s.bank_ledger_url = Some("postgres://bank@elsewhere/ledger".into());
        assert_eq!(s.bank_ledger_url(), "postgres://bank@elsewhere/ledger");
    }

    #[test]
    fn namespace_prefixes_names() {
        let mut s = Settings::default();
        assert_eq!(s.name("salur.work"), "salur.work");
        s.namespace = "t1".into();
        assert_eq!(s.name("salur.work"), "t1.salur.work");
    }

    #[test]
    fn only_a_namespace_is_torn_down() {
        let mut s = Settings::default();
        let refused = s.namespace_to_tear_down().unwrap_err().to_string();
        assert!(refused.contains("production topology"), "{refused}");
        s.namespace = "t1".into();
        assert_eq!(s.namespace_to_tear_down().unwrap(), "t1");
    }
}
