//! `salur bank-sim`: a bank integration for the demo and the tests. It opens accounts (a
//! generated account number; the holder's name upper-cased and cut to 30 characters, as banks
//! do), answers inquiries, and settles transfers, never paying one idempotency key twice: a
//! repeated request gets the first answer. Its ledger lives in a database of its own (a bank
//! does not live in salur's database): [`Settings::bank_ledger_url`], `<salur's database>_bank`
//! unless `SALUR_BANK_LEDGER_URL` names another, created by [`connect_ledger`] if missing. Its
//! tables are in the `bank_sim` schema there (so the ledger may also share a database).
//!
//! Faults for tests: transient errors, rejections, duplicated or lost answers, delay, all seeded.

use crate::bank::contract::*;
use crate::bank::users::{self, Credentials};
use crate::broker::{Broker, Outgoing, Publisher, names, topology};
use crate::config::Settings;
use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the simulated bank behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Bank codes served (their queues are consumed); empty means every known bank.
    pub banks: Vec<String>,
    /// Share of items answered with a transient error (nothing stored; ask again).
    pub transient_error_rate: f64,
    /// Share of new items refused for good (NIK not found, account not found, transfer refused).
    pub reject_rate: f64,
    /// Share of answers sent twice.
    pub duplicate_rate: f64,
    /// Share of answers never sent: the request is carried out (an account opened, a transfer
    /// paid) but the answer is lost, so salur must ask again after its bank timeout.
    pub lost_answer_rate: f64,
    /// Wait before answering.
    pub delay: Duration,
    pub seed: u64,
    /// Requests answered at once per bank queue.
    pub concurrency: usize,
    /// The banks' RabbitMQ users to answer as (from `salur bank add`); a bank served without
    /// one gets a user made by bank-sim.
    pub credentials: Vec<Credentials>,
    /// The refusal code of rejected items (for tests), instead of each kind's usual one
    /// (NIK_NOT_FOUND, ACCOUNT_NOT_FOUND, ACCOUNT_DORMANT).
    pub reject_code: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            banks: Vec::new(),
            transient_error_rate: 0.0,
            reject_rate: 0.0,
            duplicate_rate: 0.0,
            lost_answer_rate: 0.0,
            delay: Duration::ZERO,
            seed: 1,
            concurrency: 8,
            credentials: Vec::new(),
            reject_code: None,
        }
    }
}

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS bank_sim;
CREATE SEQUENCE IF NOT EXISTS bank_sim.numbers;
CREATE TABLE IF NOT EXISTS bank_sim.accounts (
    bank_code      text NOT NULL,
    nik            text NOT NULL,
    account_number text,
    account_name   text,
    status         text NOT NULL,
    reason         text,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_code, nik)
);
CREATE TABLE IF NOT EXISTS bank_sim.inquiries (
    bank_code      text NOT NULL,
    account_number text NOT NULL,
    account_name   text,
    status         text NOT NULL,
    reason         text,
    PRIMARY KEY (bank_code, account_number)
);
CREATE TABLE IF NOT EXISTS bank_sim.transfers (
    idempotency_key text PRIMARY KEY,
    bank_code       text NOT NULL,
    item_id         text NOT NULL,
    account_number  text NOT NULL,
    amount          numeric(18, 2) NOT NULL,
    status          text NOT NULL,
    reason          text,
    reference       text,
    settled_at      timestamptz NOT NULL DEFAULT now()
);
";

/// A pool on bank-sim's ledger database ([`Settings::bank_ledger_url`]), creating the database
/// and the ledger's tables if they are missing.
pub async fn connect_ledger(settings: &Settings) -> anyhow::Result<PgPool> {
    use sqlx::migrate::MigrateDatabase as _;
    let url = settings.bank_ledger_url();
    let shown = crate::config::redact_url(&url);
    let options =
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url).map_err(|e| {
            anyhow::anyhow!("bank-sim's ledger URL {shown} is not a PostgreSQL URL: {e}")
        })?;
    let exists = sqlx::Postgres::database_exists(&url).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach bank-sim's ledger database at {shown} ({e}): start PostgreSQL \
             (`scripts/services.sh`) or set SALUR_BANK_LEDGER_URL"
        )
    })?;
    if !exists {
        match sqlx::Postgres::create_database(&url).await {
            Ok(()) => tracing::info!(url = %shown, "created bank-sim's ledger database"),
            // Another process created it at the same moment.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
            Err(e) => anyhow::bail!("cannot create bank-sim's ledger database {shown}: {e}"),
        }
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(settings.db_pool)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to bank-sim's ledger at {shown}: {e}"))?;
    ensure_schema(&pool).await?;
    Ok(pool)
}

/// Creates the simulator's ledger if it is missing.
pub async fn ensure_schema(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7450211)")
        .execute(&mut *tx)
        .await?;
    for statement in SCHEMA.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets every customer and inquiry (not the transfer ledger). The demo starts from here:
/// its generated recipients reuse NIKs across runs under other generated names, which a bank
/// that remembers its customers would rightly answer with the old name (NAME_MISMATCH).
pub async fn forget_customers(pool: &PgPool) -> anyhow::Result<()> {
    ensure_schema(pool).await?;
    sqlx::query("TRUNCATE bank_sim.accounts, bank_sim.inquiries")
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs the simulator until `cancel`, reconnecting when RabbitMQ goes away.
///
/// Each bank it serves answers over its own connection, as that bank's RabbitMQ user (a real
/// bank has its own credentials, and salur trusts an answer only from the bank that was
/// asked): the users given in [`SimOptions::credentials`], and for any other bank a user it
/// makes itself through the management API with the administrator's credentials of
/// `AMQP_URL` (giving an existing user of that bank a new password), registered in salur's
/// database as `salur bank add` does. `ledger` is the pool of [`connect_ledger`].
pub async fn run(
    settings: Settings,
    ledger: PgPool,
    opts: SimOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    ensure_schema(&ledger).await?;
    let banks: Vec<String> = if opts.banks.is_empty() {
        crate::domain::BankCode::KNOWN
            .iter()
            .map(|(code, _)| (*code).to_owned())
            .collect()
    } else {
        opts.banks.clone()
    };
    // salur declares the banks' queues (a bank's user may declare nothing).
    let broker = tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        b = Broker::connect_with_retry(&settings, Duration::from_secs(3600)) => b?,
    };
    topology::declare(&broker).await?;
    broker.close().await;
    let mut logins = Vec::new();
    // salur's database, only to register the users bank-sim makes (as `salur bank add`).
    let mut salur_db: Option<PgPool> = None;
    for code in &banks {
        let creds = match opts.credentials.iter().find(|c| &c.bank == code) {
            Some(c) => c.clone(),
            None => {
                let name = crate::domain::BankCode::parse(code)
                    .map(|b| b.name())
                    .unwrap_or("bank-sim");
                let db = match &salur_db {
                    Some(db) => db,
                    None => salur_db.insert(crate::store::connect(&settings).await?),
                };
                users::add(&settings, db, code, &format!("{name} (bank-sim)")).await?
            }
        };
        logins.push((code.clone(), creds.settings(&settings)?, creds.user));
    }
    if let Some(db) = salur_db {
        db.close().await;
    }
    let sim = Arc::new(Sim::new(settings.clone(), ledger, opts));
    let mut tasks = tokio::task::JoinSet::new();
    for (code, bank_settings, user) in logins {
        let sim = sim.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move { sim.serve_bank(code, bank_settings, user, cancel).await });
    }
    tracing::info!(banks = ?banks, "bank-sim serving");
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
            cancel.cancel();
            result = Err(e);
        }
    }
    result
}

/// `(nik, account_number, account_name, status, reason)` as the ledger keeps it.
type StoredAccount = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// The simulated bank's decisions and ledger; [`crate::bank::sim_snap`] serves it over SNAP BI.
pub struct Sim {
    settings: Settings,
    /// The ledger ([`connect_ledger`]), never salur's database.
    pool: PgPool,
    opts: SimOptions,
    rng: Mutex<StdRng>,
}

impl Sim {
    pub fn new(settings: Settings, pool: PgPool, opts: SimOptions) -> Self {
        Self {
            settings,
            pool,
            rng: Mutex::new(StdRng::seed_from_u64(opts.seed)),
            opts,
        }
    }

    /// One bank's connection (as its user) and consumer, reconnecting until `cancel`.
    async fn serve_bank(
        self: Arc<Self>,
        code: String,
        bank_settings: Settings,
        user: String,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            let broker = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                b = Broker::connect_with_retry(&bank_settings, Duration::from_secs(3600)) => b?,
            };
            let served = async {
                let (channel, consumer) = broker
                    .consume(&names::bank_queue(&code), &format!("bank-sim-{code}"))
                    .await?;
                let publisher = broker.publisher().await?;
                self.clone()
                    .serve(channel, consumer, publisher, &user, cancel.clone())
                    .await
            }
            .await;
            broker.close().await;
            if cancel.is_cancelled() {
                return Ok(());
            }
            tracing::warn!(bank = %code, error = ?served.err().map(|e| format!("{e:#}")), "bank-sim lost its connection; reconnecting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The code of a rejection: [`SimOptions::reject_code`], or this kind's usual one.
    fn reject_code<'a>(&'a self, usual: &'a str) -> &'a str {
        self.opts.reject_code.as_deref().unwrap_or(usual)
    }

    fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && self.rng.lock().expect("rng").random_bool(rate.min(1.0))
    }

    /// Answers the requests of one bank queue, up to [`SimOptions::concurrency`] at a time (a
    /// bank answers in any order; the contract allows it).
    async fn serve(
        self: Arc<Self>,
        channel: lapin::Channel,
        mut consumer: lapin::Consumer,
        publisher: Publisher,
        user: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let publisher = Arc::new(publisher);
        let user: Arc<str> = user.into();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let result = loop {
            let delivery = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                d = consumer.next() => match d {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => break Err(e.into()),
                    None => break Err(anyhow::anyhow!("bank queue consumer closed")),
                },
            };
            let permit = permits.clone().acquire_owned().await?;
            let sim = self.clone();
            let publisher = publisher.clone();
            let user = user.clone();
            tasks.spawn(async move {
                let r = sim.handle(delivery, &publisher, &user).await;
                drop(permit);
                r
            });
            while let Some(r) = tasks.try_join_next() {
                r??;
            }
        };
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let _ = channel.close(200, "bye".into()).await;
        result
    }

    async fn handle(
        &self,
        delivery: lapin::message::Delivery,
        publisher: &Publisher,
        user: &str,
    ) -> anyhow::Result<()> {
        let request: BankRequest = match serde_json::from_slice(&delivery.data) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "bank-sim drops a request it cannot read");
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: false,
                        ..Default::default()
                    })
                    .await?;
                return Ok(());
            }
        };
        if !self.opts.delay.is_zero() {
            tokio::time::sleep(self.opts.delay).await;
        }
        let reply = match self.answer(&request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "bank-sim failed; the request goes back to its queue");
                tokio::time::sleep(Duration::from_millis(500)).await;
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
                return Ok(());
            }
        };
        let message = Outgoing {
            exchange: self.settings.name(names::BANK_REPLIES),
            routing_key: reply.kind.routing_key(&reply.bank_code),
            payload: serde_json::to_vec(&reply)?,
        };
        let times = if self.roll(self.opts.lost_answer_rate) {
            0
        } else if self.roll(self.opts.duplicate_rate) {
            2
        } else {
            1
        };
        let messages = vec![message; times];
        publisher.publish_all_as(&messages, user).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// The answer to one request; what was decided before is answered the same way.
    pub async fn answer(&self, request: &BankRequest) -> anyhow::Result<BankReply> {
        let bank = request.bank_code.as_str();
        let items = match &request.body {
            RequestBody::AccountOpen { items } => self.open(bank, items).await?,
            RequestBody::AccountInquiry { items } => self.inquire(bank, items).await?,
            RequestBody::Transfer { items } => self.transfer(bank, items).await?,
        };
        Ok(BankReply {
            v: VERSION,
            request_id: request.request_id,
            bank_code: request.bank_code.clone(),
            kind: request.body.kind(),
            answered_at: chrono::Utc::now(),
            items,
        })
    }

    /// Splits items into transient errors (answered now, nothing stored) and the rest, each
    /// with a fresh decision whether to reject it (used only if it is new).
    fn decide<'a, T>(
        &self,
        items: &'a [T],
        id: impl Fn(&T) -> &str,
    ) -> (Vec<ReplyItem>, Vec<(&'a T, bool)>) {
        let mut errors = Vec::new();
        let mut rest = Vec::new();
        for item in items {
            if self.roll(self.opts.transient_error_rate) {
                errors.push(ReplyItem {
                    item_id: id(item).to_owned(),
                    status: ItemStatus::Error,
                    account_number: None,
                    account_name: None,
                    reference: None,
                    reason: Some(BankReason {
                        code: "SERVICE_UNAVAILABLE".into(),
                        message: "core banking timed out, try again".into(),
                    }),
                });
            } else {
                rest.push((item, self.roll(self.opts.reject_rate)));
            }
        }
        (errors, rest)
    }

    async fn open(&self, bank: &str, items: &[AccountOpenItem]) -> anyhow::Result<Vec<ReplyItem>> {
        let (mut out, rest) = self.decide(items, |i| &i.item_id);
        let nik: Vec<&str> = rest.iter().map(|(i, _)| i.nik.as_str()).collect();
        let name: Vec<String> = rest.iter().map(|(i, _)| bank_name(&i.name)).collect();
        let status: Vec<&str> = rest
            .iter()
            .map(|(_, rej)| if *rej { "rejected" } else { "ok" })
            .collect();
        let mut stored: Vec<StoredAccount> = sqlx::query_as(
            "INSERT INTO bank_sim.accounts (bank_code, nik, account_number, account_name, status, reason)
             SELECT $1, u.nik,
                    CASE WHEN u.status = 'ok' THEN $1 || lpad(nextval('bank_sim.numbers')::text, 10, '0') END,
                    CASE WHEN u.status = 'ok' THEN u.name END,
                    u.status,
                    CASE WHEN u.status = 'rejected' THEN $5 END
             FROM UNNEST($2::text[], $3::text[], $4::text[]) AS u(nik, name, status)
             ON CONFLICT DO NOTHING
             RETURNING nik, account_number, account_name, status, reason",
        )
        .bind(bank)
        .bind(&nik)
        .bind(&name)
        .bind(&status)
        .bind(self.reject_code("NIK_NOT_FOUND"))
        .fetch_all(&self.pool)
        .await?;
        add_not_inserted(
            &mut stored,
            &nik,
            |r| &r.0,
            |known| async move {
                sqlx::query_as(
                    "SELECT a.nik, a.account_number, a.account_name, a.status, a.reason
                 FROM UNNEST($2::text[]) AS k(nik)
                 JOIN LATERAL (
                     SELECT * FROM bank_sim.accounts a WHERE a.bank_code = $1 AND a.nik = k.nik
                 ) a ON true",
                )
                .bind(bank)
                .bind(known)
                .fetch_all(&self.pool)
                .await
            },
        )
        .await?;
        let by_nik: HashMap<String, _> = stored.into_iter().map(|r| (r.0.clone(), r)).collect();
        for (item, _) in rest {
            let (_, account, holder, status, reason) = &by_nik.get(&item.nik).ok_or_else(|| {
                anyhow::anyhow!("a concurrent request decided this item; ask again")
            })?;
            out.push(stored_item(
                &item.item_id,
                status,
                account.clone(),
                holder.clone(),
                None,
                reason.as_deref(),
                "NIK not found at the civil registry (Dukcapil)",
            ));
        }
        Ok(out)
    }

    async fn inquire(
        &self,
        bank: &str,
        items: &[AccountInquiryItem],
    ) -> anyhow::Result<Vec<ReplyItem>> {
        let (mut out, rest) = self.decide(items, |i| &i.item_id);
        let account: Vec<&str> = rest
            .iter()
            .map(|(i, _)| i.account_number.as_str())
            .collect();
        let name: Vec<String> = rest.iter().map(|(i, _)| bank_name(&i.name)).collect();
        let status: Vec<&str> = rest
            .iter()
            .map(|(_, rej)| if *rej { "rejected" } else { "ok" })
            .collect();
        type Stored = (String, Option<String>, String, Option<String>);
        let mut stored: Vec<Stored> = sqlx::query_as(
            "INSERT INTO bank_sim.inquiries (bank_code, account_number, account_name, status, reason)
             SELECT $1, u.account, CASE WHEN u.status = 'ok' THEN u.name END, u.status,
                    CASE WHEN u.status = 'rejected' THEN $5 END
             FROM UNNEST($2::text[], $3::text[], $4::text[]) AS u(account, name, status)
             ON CONFLICT DO NOTHING
             RETURNING account_number, account_name, status, reason",
        )
        .bind(bank)
        .bind(&account)
        .bind(&name)
        .bind(&status)
        .bind(self.reject_code("ACCOUNT_NOT_FOUND"))
        .fetch_all(&self.pool)
        .await?;
        add_not_inserted(
            &mut stored,
            &account,
            |r| &r.0,
            |known| async move {
                sqlx::query_as(
                    "SELECT i.account_number, i.account_name, i.status, i.reason
                 FROM UNNEST($2::text[]) AS k(account)
                 JOIN LATERAL (
                     SELECT * FROM bank_sim.inquiries i
                     WHERE i.bank_code = $1 AND i.account_number = k.account
                 ) i ON true",
                )
                .bind(bank)
                .bind(known)
                .fetch_all(&self.pool)
                .await
            },
        )
        .await?;
        let by_account: HashMap<String, _> = stored.into_iter().map(|r| (r.0.clone(), r)).collect();
        for (item, _) in rest {
            let (number, holder, status, reason) =
                &by_account.get(&item.account_number).ok_or_else(|| {
                    anyhow::anyhow!("a concurrent request decided this item; ask again")
                })?;
            out.push(stored_item(
                &item.item_id,
                status,
                Some(number.clone()),
                holder.clone(),
                None,
                reason.as_deref(),
                "no such account at this bank",
            ));
        }
        Ok(out)
    }

    async fn transfer(&self, bank: &str, items: &[TransferItem]) -> anyhow::Result<Vec<ReplyItem>> {
        let (mut out, rest) = self.decide(items, |i| &i.item_id);
        let mut keys = Vec::new();
        let mut ids = Vec::new();
        let mut accounts = Vec::new();
        let mut amounts = Vec::new();
        let mut status = Vec::new();
        let mut reason = Vec::new();
        for (item, reject) in &rest {
            let amount = Decimal::from_str(&item.amount.value)
                .ok()
                .filter(|a| *a > Decimal::ZERO && item.amount.currency == "IDR");
            let (s, r) = match (amount, reject) {
                (None, _) => ("rejected", Some("TRANSFER_REFUSED")),
                (Some(_), true) => ("rejected", Some(self.reject_code("ACCOUNT_DORMANT"))),
                (Some(_), false) => ("ok", None),
            };
            keys.push(item.idempotency_key.as_str());
            ids.push(item.item_id.as_str());
            accounts.push(item.account_number.as_str());
            amounts.push(amount.unwrap_or_default());
            status.push(s);
            reason.push(r);
        }
        type Stored = (String, String, Option<String>, Option<String>);
        let mut stored: Vec<Stored> = sqlx::query_as(
            "INSERT INTO bank_sim.transfers
                 (idempotency_key, bank_code, item_id, account_number, amount, status, reason, reference)
             SELECT u.key, $1, u.item_id, u.account, u.amount, u.status, u.reason,
                    CASE WHEN u.status = 'ok'
                         THEN 'SIM' || $1 || lpad(nextval('bank_sim.numbers')::text, 12, '0') END
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::text[])
                 AS u(key, item_id, account, amount, status, reason)
             ON CONFLICT DO NOTHING
             RETURNING idempotency_key, status, reason, reference",
        )
        .bind(bank)
        .bind(&keys)
        .bind(&ids)
        .bind(&accounts)
        .bind(&amounts)
        .bind(&status)
        .bind(&reason)
        .fetch_all(&self.pool)
        .await?;
        add_not_inserted(
            &mut stored,
            &keys,
            |r| &r.0,
            |known| async move {
                sqlx::query_as(
                    "SELECT t.idempotency_key, t.status, t.reason, t.reference
                 FROM UNNEST($1::text[]) AS k(key)
                 -- A primary-key probe per key: `= ANY($1)` was planned as a sequential scan of
                 -- the whole ledger (no statistics on a young table), per request.
                 JOIN LATERAL (
                     SELECT * FROM bank_sim.transfers t WHERE t.idempotency_key = k.key
                 ) t ON true",
                )
                .bind(known)
                .fetch_all(&self.pool)
                .await
            },
        )
        .await?;
        let by_key: HashMap<String, _> = stored.into_iter().map(|r| (r.0.clone(), r)).collect();
        for (item, _) in rest {
            let (_, status, reason, reference) =
                &by_key.get(&item.idempotency_key).ok_or_else(|| {
                    anyhow::anyhow!("a concurrent request decided this item; ask again")
                })?;
            out.push(stored_item(
                &item.item_id,
                status,
                None,
                None,
                reference.clone(),
                reason.as_deref(),
                "the transfer was refused",
            ));
        }
        Ok(out)
    }
}

/// Adds to `stored` (what the ledger's insert returned, keyed by `key`) the ledger's rows for
/// those of `asked` it did not return, read by `look_up`: asked before (a request sent again),
/// or decided by a concurrent request (the insert waited for it to commit, so a statement after
/// it sees it). Only these are looked up: a second probe of the ledger's key per item, for the
/// ones just inserted, found nothing new.
async fn add_not_inserted<'a, T, F>(
    stored: &mut Vec<T>,
    asked: &[&'a str],
    key: impl Fn(&T) -> &String,
    look_up: impl FnOnce(Vec<&'a str>) -> F,
) -> sqlx::Result<()>
where
    F: std::future::Future<Output = sqlx::Result<Vec<T>>>,
{
    let inserted: std::collections::HashSet<&str> =
        stored.iter().map(|r| key(r).as_str()).collect();
    let rest: Vec<&'a str> = asked
        .iter()
        .copied()
        .filter(|k| !inserted.contains(k))
        .collect();
    if !rest.is_empty() {
        let found = look_up(rest).await?;
        stored.extend(found);
    }
    Ok(())
}

fn stored_item(
    item_id: &str,
    status: &str,
    account_number: Option<String>,
    account_name: Option<String>,
    reference: Option<String>,
    reason: Option<&str>,
    message: &str,
) -> ReplyItem {
    let ok = status == "ok";
    ReplyItem {
        item_id: item_id.to_owned(),
        status: if ok {
            ItemStatus::Ok
        } else {
            ItemStatus::Rejected
        },
        account_number: if ok { account_number } else { None },
        account_name: if ok { account_name } else { None },
        reference: if ok { reference } else { None },
        reason: reason.map(|code| BankReason {
            code: code.to_owned(),
            message: message.to_owned(),
        }),
    }
}

/// How a bank writes a holder's name: upper case, cut to 30 characters.
pub fn bank_name(name: &str) -> String {
    name.trim().to_uppercase().chars().take(30).collect()
}

/// The simulator's ledger, for tests and the demo: settled transfers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Settlement {
    pub idempotency_key: String,
    pub item_id: String,
    pub amount: Decimal,
    pub reference: Option<String>,
}

pub async fn settlements(pool: &PgPool) -> sqlx::Result<Vec<Settlement>> {
    sqlx::query_as(
        "SELECT idempotency_key, item_id, amount, reference FROM bank_sim.transfers
         WHERE status = 'ok' ORDER BY item_id",
    )
    .fetch_all(pool)
    .await
}
