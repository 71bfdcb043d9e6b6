//! Banks' RabbitMQ users: the broker authenticates each bank, and the AMQP `user_id` of an
//! answer (which RabbitMQ checks against the connection's user) says which bank sent it.
//!
//! A bank's user is named `salur.bank.<code>` (in a namespace `<ns>.salur.bank.<code>`; on a
//! vhost other than `/`, `…@<vhost>`), so that the worker knows from the name alone which bank
//! a user is. It may read only its own request queue (`salur.bank.<code>`) and write only to
//! the replies exchange (`salur.bank.replies`), with routing keys `bank.<code>.*` only; it may
//! configure nothing. Users are created through RabbitMQ's management HTTP API
//! ([`Settings::management_url`]); `salur bank add` also notes the bank in the `banks` table.

use crate::broker::names;
use crate::config::{Settings, redact_url};
use crate::domain::BankCode;
use crate::store::banks;
use anyhow::Context as _;
use lapin::uri::AMQPUri;
use rand::Rng as _;
use serde::Serialize;
use sqlx::PgPool;
use std::str::FromStr as _;

/// What a bank connects with. The password is shown once, when the user is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub bank: String,
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `AMQP_URL` for this bank: the configured broker and vhost, with the bank's user.
    /// Every node of a cluster's `AMQP_URL` is kept, each with the bank's user.
    pub fn amqp_url(&self, settings: &Settings) -> anyhow::Result<String> {
        let mut urls = Vec::new();
        for address in crate::config::amqp_addresses(&settings.amqp_url) {
            let mut uri = AMQPUri::from_str(&address).map_err(|e| {
                anyhow::anyhow!("AMQP_URL {} is not an AMQP URL: {e}", redact_url(&address))
            })?;
            uri.authority.userinfo.username = self.user.clone();
            uri.authority.userinfo.password = self.password.clone();
            urls.push(uri.to_string());
        }
        Ok(urls.join(","))
    }

    /// `settings` with `AMQP_URL` set to connect as this bank.
    pub fn settings(&self, settings: &Settings) -> anyhow::Result<Settings> {
        let mut s = settings.clone();
        s.amqp_url = self.amqp_url(settings)?;
        Ok(s)
    }
}

/// The first address of `AMQP_URL` (a cluster's nodes share users, vhosts and permissions).
fn amqp_uri(settings: &Settings) -> anyhow::Result<AMQPUri> {
    let first = crate::config::amqp_addresses(&settings.amqp_url)
        .into_iter()
        .next()
        .unwrap_or_default();
    AMQPUri::from_str(&first).map_err(|e| {
        anyhow::anyhow!(
            "AMQP_URL {} is not an AMQP URL: {e}",
            redact_url(&settings.amqp_url)
        )
    })
}

/// Bank credentials from a file of `salur bank add --json` lines (blank lines skipped): the
/// banks' users bank-sim answers as (`--bank-credentials`).
pub fn read_credentials(file: &std::path::Path) -> anyhow::Result<Vec<Credentials>> {
    #[derive(serde::Deserialize)]
    struct Line {
        bank: String,
        user: String,
        password: String,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let l: Line = serde_json::from_str(l).with_context(|| {
                format!(
                    "{} line {}: not a `salur bank add --json` line",
                    file.display(),
                    n + 1
                )
            })?;
            Ok(Credentials {
                bank: l.bank,
                user: l.user,
                password: l.password,
            })
        })
        .collect()
}

/// The vhost of `AMQP_URL` (`/` when it names none).
pub fn vhost(settings: &Settings) -> String {
    amqp_uri(settings)
        .map(|u| u.vhost)
        .unwrap_or_else(|_| "/".into())
}

/// The RabbitMQ user of a bank in this namespace and vhost.
pub fn user_name(settings: &Settings, bank_code: &str) -> String {
    let mut user = settings.name(&names::bank_queue(bank_code));
    let vhost = vhost(settings);
    if vhost != "/" {
        user.push('@');
        user.push_str(&vhost);
    }
    user
}

/// The RabbitMQ user salur itself connects as (the user of `AMQP_URL`).
pub fn own_user(settings: &Settings) -> String {
    amqp_uri(settings)
        .map(|u| u.authority.userinfo.username)
        .unwrap_or_default()
}

/// The bank a RabbitMQ user is, if it is a bank's user of this namespace and vhost.
pub fn bank_of(settings: &Settings, user: &str) -> Option<&'static str> {
    let prefix = settings.name(&names::bank_queue(""));
    let code = user.strip_prefix(&prefix)?.get(..3)?;
    let bank = BankCode::parse(code).ok()?;
    (user_name(settings, bank.as_str()) == user).then_some(bank.as_str())
}

/// RabbitMQ's management HTTP API, with an administrator's credentials.
pub struct Management {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

impl Management {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let (base, user, password) = match &settings.management_url {
            Some(url) => {
                let parsed = reqwest::Url::parse(url).with_context(|| {
                    format!("RABBITMQ_MANAGEMENT_URL {} is not a URL", redact_url(url))
                })?;
                let mut base = parsed.clone();
                let _ = base.set_username("");
                let _ = base.set_password(None);
                let amqp = amqp_uri(settings)?;
                let user = if parsed.username().is_empty() {
                    amqp.authority.userinfo.username.clone()
                } else {
                    parsed.username().to_owned()
                };
                let password = parsed
                    .password()
                    .map(str::to_owned)
                    .unwrap_or(amqp.authority.userinfo.password.clone());
                (
                    base.as_str().trim_end_matches('/').to_owned(),
                    user,
                    password,
                )
            }
            None => {
                let amqp = amqp_uri(settings)?;
                (
                    format!("http://{}:15672", amqp.authority.host),
                    amqp.authority.userinfo.username.clone(),
                    amqp.authority.userinfo.password.clone(),
                )
            }
        };
        Ok(Self {
            base,
            user,
            password,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()?,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/api/{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.user, Some(&self.password));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach RabbitMQ's management API at {} ({e}): enable it with \
                 `rabbitmq-plugins enable rabbitmq_management` (scripts/services.sh does), or \
                 set RABBITMQ_MANAGEMENT_URL",
                self.base
            )
        })?;
        let status = resp.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!(
            "RabbitMQ's management API refused {method} {path} ({status}): {text}{}",
            if status == reqwest::StatusCode::UNAUTHORIZED {
                " (the user of AMQP_URL, or of RABBITMQ_MANAGEMENT_URL, must be an administrator)"
            } else {
                ""
            }
        )
    }

    /// Creates the user (or gives an existing one a new password) with these permissions.
    pub async fn put_bank_user(
        &self,
        settings: &Settings,
        bank_code: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let user = user_name(settings, bank_code);
        let vhost = vhost(settings);
        let u = encode(&user);
        let v = encode(&vhost);
        self.call(
            reqwest::Method::PUT,
            &format!("users/{u}"),
            Some(serde_json::json!({"password": password, "tags": ""})),
        )
        .await?;
        let replies = regex_escape(&settings.name(names::BANK_REPLIES));
        self.call(
            reqwest::Method::PUT,
            &format!("permissions/{v}/{u}"),
            Some(serde_json::json!({
                "configure": "^$",
                "write": format!("^{replies}$"),
                "read": format!("^{}$", regex_escape(&settings.name(&names::bank_queue(bank_code)))),
            })),
        )
        .await?;
        self.call(
            reqwest::Method::PUT,
            &format!("topic-permissions/{v}/{u}"),
            Some(serde_json::json!({
                "exchange": settings.name(names::BANK_REPLIES),
                "write": format!("^bank\\.{}\\.", regex_escape(bank_code)),
                "read": "^$",
            })),
        )
        .await?;
        Ok(user)
    }

    /// Deletes a user; false if there was none.
    pub async fn delete_user(&self, user: &str) -> anyhow::Result<bool> {
        let resp = self
            .call(
                reqwest::Method::DELETE,
                &format!("users/{}", encode(user)),
                None,
            )
            .await?;
        Ok(resp.status().is_success())
    }

    /// Every user name on the broker.
    pub async fn user_names(&self) -> anyhow::Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct User {
            name: String,
        }
        let users: Vec<User> = self
            .call(reqwest::Method::GET, "users", None)
            .await?
            .json()
            .await
            .context("reading RabbitMQ's list of users")?;
        Ok(users.into_iter().map(|u| u.name).collect())
    }
}

/// A fresh random password (32 letters and digits).
pub fn new_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// `salur bank add`: the bank's user with a new password (an existing user gets a new one, and
/// its old password stops working), noted in the `banks` table.
pub async fn add(
    settings: &Settings,
    pool: &PgPool,
    bank_code: &str,
    name: &str,
) -> anyhow::Result<Credentials> {
    let bank = BankCode::parse(bank_code).map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = new_password();
    let user = Management::new(settings)?
        .put_bank_user(settings, bank.as_str(), &password)
        .await?;
    banks::upsert(pool, bank.as_str(), name, &user).await?;
    tracing::info!(bank = bank.as_str(), %user, "bank user created");
    Ok(Credentials {
        bank: bank.as_str().to_owned(),
        user,
        password,
    })
}

/// A registered bank, and whether its user exists on the broker.
#[derive(Debug, Clone, Serialize)]
pub struct BankEntry {
    pub bank: String,
    pub name: String,
    pub user: String,
    pub user_exists: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `salur bank list`: one line per bank under a header.
pub struct BankTable<'a>(pub &'a [BankEntry]);

impl std::fmt::Display for BankTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<6} {:<34} {:<6} name", "bank", "user", "exists")?;
        for b in self.0 {
            writeln!(
                f,
                "{:<6} {:<34} {:<6} {}",
                b.bank,
                b.user,
                if b.user_exists { "yes" } else { "NO" },
                b.name
            )?;
        }
        Ok(())
    }
}

/// `salur bank list`.
pub async fn list(settings: &Settings, pool: &PgPool) -> anyhow::Result<Vec<BankEntry>> {
    let rows = banks::list(pool).await?;
    let users = Management::new(settings)?.user_names().await?;
    Ok(rows
        .into_iter()
        .map(|b| BankEntry {
            user_exists: users.contains(&b.amqp_user),
            bank: b.code,
            name: b.name,
            user: b.amqp_user,
            created_at: b.created_at,
        })
        .collect())
}

/// `salur bank remove`: deletes the bank's user (its connections are closed by RabbitMQ) and
/// its row. False if there was neither.
pub async fn remove(settings: &Settings, pool: &PgPool, bank_code: &str) -> anyhow::Result<bool> {
    let user = user_name(settings, bank_code);
    let deleted = Management::new(settings)?.delete_user(&user).await?;
    let removed = banks::remove(pool, bank_code).await?;
    Ok(deleted || removed)
}

/// Deletes every bank user of this namespace and vhost (tearing down a test or staging
/// namespace); returns how many.
pub async fn remove_namespace_users(settings: &Settings) -> anyhow::Result<usize> {
    let api = Management::new(settings)?;
    let mut n = 0;
    for user in api.user_names().await? {
        if bank_of(settings, &user).is_some() && api.delete_user(&user).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// A path segment, percent-encoded (`/` becomes `%2F`).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A literal for a RabbitMQ permission regex.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_user_names_its_bank_in_its_namespace_and_vhost() {
        let mut s = Settings::default();
        assert_eq!(user_name(&s, "002"), "salur.bank.002");
        assert_eq!(bank_of(&s, "salur.bank.002"), Some("002"));
        s.namespace = "t1".into();
        assert_eq!(user_name(&s, "009"), "t1.salur.bank.009");
        assert_eq!(bank_of(&s, "t1.salur.bank.009"), Some("009"));
        assert_eq!(bank_of(&s, "salur.bank.009"), None);
        assert_eq!(bank_of(&s, "t1.salur.bank.999"), None);
        assert_eq!(bank_of(&s, "guest"), None);
        s.amqp_url = "amqp://guest:guest@127.0.0.1:5672/v1".into();
        assert_eq!(user_name(&s, "002"), "t1.salur.bank.002@v1");
        assert_eq!(bank_of(&s, "t1.salur.bank.002@v1"), Some("002"));
        assert_eq!(bank_of(&s, "t1.salur.bank.002"), None);
    }

    #[test]
    fn credentials_give_an_amqp_url_on_the_same_broker_and_vhost() {
        let s = Settings {
            amqp_url: "amqp://guest:guest@10.0.0.5:5673/v1".into(),
            ..Default::default()
        };
        let c = Credentials {
            bank: "002".into(),
            user: "salur.bank.002@v1".into(),
            password: "pw".into(),
        };
        let url = c.amqp_url(&s).unwrap();
        let back = AMQPUri::from_str(&url).unwrap();
        assert_eq!(back.authority.userinfo.username, "salur.bank.002@v1");
        assert_eq!(back.authority.host, "10.0.0.5");
        assert_eq!(back.authority.port, 5673);
        assert_eq!(back.vhost, "v1");
    }

    #[test]
    fn names_are_escaped_for_urls_and_regexes() {
        assert_eq!(encode("/"), "%2F");
        assert_eq!(encode("a.b@c"), "a.b%40c");
        assert_eq!(regex_escape("t1.salur.bank.002"), "t1\\.salur\\.bank\\.002");
    }
}
