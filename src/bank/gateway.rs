//! `salur bank-gateway`: a bank integration for banks that speak SNAP BI. It consumes salur's
//! requests for one bank from RabbitMQ (`salur.bank.<code>`, as any bank integration), calls the
//! bank's SNAP API for every item, and answers on `salur.bank.replies` like any bank.
//!
//! - **Access token**: B2B, signed SHA256withRSA over `client_key|timestamp`, cached and renewed
//!   before it expires (and at once when the bank says it is invalid).
//! - **Account inquiry** (internal when the accounts are at the bank called, external when
//!   [`GatewayOptions::snap_bank`] differs) → `account_inquiry` answers; **transfer**
//!   (intrabank / interbank) → `transfer` answers. Account opening is not a SNAP service: it goes
//!   by file ([`crate::bank::files`]); the gateway acks those requests and leaves them to it.
//! - Every call is signed (HMAC-SHA512) and carries `X-EXTERNAL-ID` derived from salur's
//!   idempotency key, so the bank recognises a re-sent transfer as the same transaction.
//! - SNAP answers are read through one table ([`crate::bank::snap::codes`]).
//! - **Never a transfer twice without a status inquiry first**: before a transfer is sent its
//!   key is written to the journal (a local file, fsynced). A key already in the journal (the
//!   gateway crashed, salur re-sent the request, the last answer was ambiguous) is first asked
//!   about with a transfer status inquiry; only "not found" lets it be sent again. An ambiguous
//!   answer (5xx, network error or timeout, SNAP timeout or conflict codes) is followed by a
//!   status inquiry; if that is ambiguous too, salur is answered `error` and asks again later.
//! - Rate limit (calls per second) and concurrency (calls in flight) per gateway, i.e. per bank.

use super::contract::{
    AccountInquiryItem, BankReason, BankReply, BankRequest, ItemStatus, ReplyItem, RequestBody,
    TransferItem, VERSION,
};
use super::snap::{self, Paths, codes, codes::Outcome, service, sign};
use crate::broker::{Broker, Outgoing, Publisher, names};
use crate::config::Settings;
use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The partner's credentials at the bank.
#[derive(Clone)]
pub struct Credentials {
    /// `X-CLIENT-KEY` of the access-token request.
    pub client_key: String,
    /// HMAC-SHA512 key of transactional signatures.
    pub client_secret: String,
    /// `X-PARTNER-ID`.
    pub partner_id: String,
    /// `CHANNEL-ID`.
    pub channel_id: String,
    pub signer: sign::TokenSigner,
}

#[derive(Clone)]
pub struct GatewayOptions {
    /// The bank whose requests are served (queue `salur.bank.<bank>`): the recipients' bank.
    pub bank: String,
    /// The bank whose SNAP API is called (holding the programme's source account); when it is
    /// not [`Self::bank`], inquiries are external and transfers interbank.
    pub snap_bank: String,
    /// Base URL of the bank's SNAP API, e.g. `https://api.bank.example` (no trailing path).
    pub snap_url: String,
    pub paths: Paths,
    pub credentials: Credentials,
    /// The programme account transfers are paid from (`sourceAccountNo`).
    pub source_account: String,
    /// SNAP calls in flight at most.
    pub concurrency: usize,
    /// SNAP calls per second at most (`None`: no limit).
    pub rate_limit: Option<f64>,
    /// How long to wait for a SNAP answer; no answer is ambiguous.
    pub http_timeout: Duration,
    /// The transfer journal (one gateway process per file: it is locked).
    pub journal: PathBuf,
    /// Bank requests handled at once.
    pub prefetch: u16,
}

/// Why a call got no SNAP answer the table can read.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// No answer, or not one SNAP can read: the bank may have carried it out.
    #[error("no usable answer from the bank: {0}")]
    Ambiguous(String),
    /// The access token could not be obtained: nothing was sent.
    #[error("no access token: {0}")]
    NoToken(String),
}

/// An answer: its outcome per the table, the raw response code and message, and the body.
struct Answered<T> {
    outcome: Outcome,
    code: String,
    message: String,
    body: T,
}

/// The SNAP client: token cache, signing, rate limit, concurrency.
pub struct SnapClient {
    http: reqwest::Client,
    opts: GatewayOptions,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    permits: tokio::sync::Semaphore,
    next_slot: tokio::sync::Mutex<Instant>,
    /// Last clock skew seen (bank's `X-TIMESTAMP` minus ours), in seconds.
    pub skew_seconds: AtomicI64,
}

impl SnapClient {
    pub fn new(opts: GatewayOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(opts.http_timeout)
            .pool_max_idle_per_host(opts.concurrency.max(1))
            .build()?;
        Ok(Self {
            http,
            permits: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
            next_slot: tokio::sync::Mutex::new(Instant::now()),
            token: tokio::sync::Mutex::new(None),
            skew_seconds: AtomicI64::new(0),
            opts,
        })
    }

    fn external(&self) -> bool {
        self.opts.bank != self.opts.snap_bank
    }

    async fn pace(&self) {
        let Some(rate) = self.opts.rate_limit.filter(|r| *r > 0.0) else {
            return;
        };
        let at = {
            let mut next = self.next_slot.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + Duration::from_secs_f64(1.0 / rate);
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// The cached access token, renewed a minute (or a fifth of its life) before it expires.
    async fn access_token(&self, renew: bool) -> Result<String, CallError> {
        let mut cached = self.token.lock().await;
        if !renew
            && let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let ts = snap::timestamp(chrono::Utc::now());
        let c = &self.opts.credentials;
        let body = serde_json::to_vec(&snap::TokenRequest {
            grant_type: "client_credentials".into(),
            additional_info: None,
        })
        .expect("serializes");
        self.pace().await;
        let response = self
            .http
            .post(format!("{}{}", self.opts.snap_url, self.opts.paths.token))
            .header("content-type", "application/json")
            .header("x-timestamp", &ts)
            .header("x-client-key", &c.client_key)
            .header("x-signature", c.signer.sign(&c.client_key, &ts))
            .body(body)
            .send()
            .await
            .map_err(|e| CallError::NoToken(format!("{e}")))?;
        let answered: Answered<snap::TokenResponse> = self
            .read(response)
            .await
            .map_err(|e| CallError::NoToken(e.to_string()))?;
        match (answered.outcome, answered.body.access_token) {
            (Outcome::Ok, Some(token)) => {
                let ttl: u64 = answered
                    .body
                    .expires_in
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(900);
                let margin = (ttl / 5).min(60);
                let renew_at = Instant::now() + Duration::from_secs(ttl.saturating_sub(margin));
                *cached = Some((token.clone(), renew_at));
                tracing::info!(bank = %self.opts.snap_bank, expires_in = ttl, "SNAP access token obtained");
                Ok(token)
            }
            _ => Err(CallError::NoToken(format!(
                "{} {}",
                answered.code, answered.message
            ))),
        }
    }

    /// Reads an answer: the outcome from the table, noting the bank's clock.
    async fn read<T: DeserializeOwned + Default>(
        &self,
        response: reqwest::Response,
    ) -> Result<Answered<T>, CallError> {
        let http = response.status().as_u16();
        if let Some(bank_time) = response
            .headers()
            .get("x-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(snap::parse_timestamp)
        {
            let skew = (bank_time - chrono::Utc::now()).num_seconds();
            self.skew_seconds.store(skew, Ordering::Relaxed);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CallError::Ambiguous(format!("HTTP {http}, body unreadable: {e}")))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = value
            .get("responseCode")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let message = value
            .get("responseMessage")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let (outcome, _) = codes::classify(http, code.as_deref());
        let body = serde_json::from_value(value).unwrap_or_default();
        Ok(Answered {
            outcome,
            code: code.unwrap_or_else(|| format!("HTTP {http}")),
            message,
            body,
        })
    }

    /// A signed transactional call. A token refused as invalid is renewed once and the call
    /// made again (the bank refused it at the door: nothing was carried out).
    async fn call<B: Serialize, T: DeserializeOwned + Default>(
        &self,
        path: &str,
        external_id: &str,
        body: &B,
    ) -> Result<Answered<T>, CallError> {
        let body = serde_json::to_vec(body).expect("serializes");
        let _permit = self.permits.acquire().await.expect("never closed");
        let mut renew = false;
        loop {
            let token = self.access_token(renew).await?;
            let ts = snap::timestamp(chrono::Utc::now());
            let c = &self.opts.credentials;
            let signature = sign::transactional(&c.client_secret, "POST", path, &token, &body, &ts);
            self.pace().await;
            let response = self
                .http
                .post(format!("{}{path}", self.opts.snap_url))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .header("x-timestamp", &ts)
                .header("x-signature", signature)
                .header("x-partner-id", &c.partner_id)
                .header("x-external-id", external_id)
                .header("channel-id", &c.channel_id)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| CallError::Ambiguous(format!("{e}")))?;
            let answered: Answered<T> = self.read(response).await?;
            if answered.outcome == Outcome::RenewToken && !renew {
                renew = true;
                continue;
            }
            if answered.code.starts_with("401") {
                let skew = self.skew_seconds.load(Ordering::Relaxed);
                if answered.message.to_lowercase().contains("timestamp") {
                    tracing::error!(bank = %self.opts.snap_bank, skew_seconds = skew, message = %answered.message,
                        "the bank refused our timestamp: clock skew; check this host's clock (NTP)");
                } else {
                    tracing::error!(bank = %self.opts.snap_bank, code = %answered.code, message = %answered.message,
                        "the bank refused our credentials: check the client secret, partner id and keys");
                }
            }
            return Ok(answered);
        }
    }

    async fn inquiry(&self, request_id: uuid::Uuid, item: &AccountInquiryItem) -> ReplyItem {
        let reference = format!("{request_id}:{}", item.item_id);
        let body = snap::InquiryRequest {
            partner_reference_no: snap::external_id(&reference),
            beneficiary_account_no: item.account_number.clone(),
            beneficiary_bank_code: self.external().then(|| self.opts.bank.clone()),
            additional_info: Some(serde_json::json!({
                "itemId": item.item_id, "beneficiaryName": item.name
            })),
        };
        let path = if self.external() {
            &self.opts.paths.inquiry_external
        } else {
            &self.opts.paths.inquiry_internal
        };
        let answered: Result<Answered<snap::InquiryResponse>, _> = self
            .call(
                path,
                &snap::external_id(&format!("inquiry:{reference}")),
                &body,
            )
            .await;
        match answered {
            Ok(a) => match (a.outcome, a.body.beneficiary_account_name) {
                (Outcome::Ok, Some(name)) if !name.is_empty() => ReplyItem {
                    account_number: Some(item.account_number.clone()),
                    account_name: Some(name),
                    ..reply(&item.item_id, ItemStatus::Ok)
                },
                (Outcome::Ok, _) => error_item(
                    &item.item_id,
                    "the bank's inquiry answer has no account name",
                ),
                (Outcome::Rejected(code), _) => rejected(&item.item_id, code, &a.code, &a.message),
                _ => error_item(&item.item_id, &format!("SNAP {} {}", a.code, a.message)),
            },
            Err(e) => error_item(&item.item_id, &e.to_string()),
        }
    }

    fn transfer_service(&self) -> (&str, u8) {
        if self.external() {
            (
                &self.opts.paths.transfer_interbank,
                service::TRANSFER_INTERBANK,
            )
        } else {
            (
                &self.opts.paths.transfer_intrabank,
                service::TRANSFER_INTRABANK,
            )
        }
    }

    /// What the bank says about a transfer it may have made.
    async fn status(&self, item: &TransferItem) -> Status {
        let (_, svc) = self.transfer_service();
        let body = snap::StatusRequest {
            original_partner_reference_no: item.idempotency_key.clone(),
            original_reference_no: None,
            original_external_id: Some(snap::external_id(&item.idempotency_key)),
            service_code: format!("{svc:02}"),
            transaction_date: None,
            amount: Some(item.amount.clone()),
            additional_info: None,
        };
        let ext = snap::external_id(&format!(
            "status:{}:{}",
            item.idempotency_key,
            uuid::Uuid::new_v4()
        ));
        let answered: Result<Answered<snap::StatusResponse>, _> = self
            .call(&self.opts.paths.transfer_status, &ext, &body)
            .await;
        match answered {
            Ok(a) => match (a.outcome, a.body.latest_transaction_status.as_deref()) {
                (Outcome::Ok, Some("00")) => Status::Paid(a.body.original_reference_no),
                (Outcome::Ok, Some("04" | "05" | "06")) => Status::Failed(format!(
                    "{} {}",
                    a.code,
                    a.body.transaction_status_desc.unwrap_or_default()
                )),
                (Outcome::Ok, Some("07")) | (Outcome::NotFound, _) => Status::NotFound,
                _ => Status::Unknown(format!("SNAP {} {}", a.code, a.message)),
            },
            Err(e) => Status::Unknown(e.to_string()),
        }
    }

    /// One transfer item, never sent twice without a status inquiry first. `seen`: its key was
    /// in the journal before this request.
    async fn transfer(&self, item: &TransferItem, seen: bool) -> ReplyItem {
        let id = &item.item_id;
        if seen {
            match self.status(item).await {
                Status::Paid(reference) => return paid(id, reference),
                Status::Failed(why) => return rejected(id, "TRANSFER_REFUSED", "status", &why),
                Status::Unknown(why) => {
                    return error_item(id, &format!("transfer status unknown: {why}"));
                }
                Status::NotFound => {}
            }
        }
        let (path, _) = self.transfer_service();
        let body = snap::TransferRequest {
            partner_reference_no: item.idempotency_key.clone(),
            amount: Some(item.amount.clone()),
            beneficiary_account_no: item.account_number.clone(),
            beneficiary_account_name: Some(item.account_name.clone()),
            beneficiary_bank_code: self.external().then(|| self.opts.bank.clone()),
            source_account_no: self.opts.source_account.clone(),
            transaction_date: snap::timestamp(chrono::Utc::now()),
            remark: Some(item.description.chars().take(50).collect()),
            customer_reference: Some(item.item_id.clone()),
            additional_info: None,
        };
        let answered: Result<Answered<snap::TransferResponse>, _> = self
            .call(path, &snap::external_id(&item.idempotency_key), &body)
            .await;
        let why = match answered {
            Ok(a) => match a.outcome {
                Outcome::Ok
                    if a.body
                        .reference_no
                        .as_deref()
                        .is_some_and(|r| !r.is_empty()) =>
                {
                    return paid(id, a.body.reference_no);
                }
                Outcome::Rejected(code) => return rejected(id, code, &a.code, &a.message),
                // Refused before anything was done (credentials, limits, funds of the source
                // account): not the recipient's fault; ask again later.
                Outcome::Transient => {
                    return error_item(id, &format!("SNAP {} {}", a.code, a.message));
                }
                _ => format!("SNAP {} {}", a.code, a.message),
            },
            Err(CallError::NoToken(why)) => {
                return error_item(id, &format!("no access token: {why}"));
            }
            Err(e) => e.to_string(),
        };
        // Ambiguous: the bank may have paid. Ask, a few times, before answering.
        tracing::info!(item = %id, why = %why, "ambiguous transfer answer; asking its status");
        for wait in [200, 1000, 3000] {
            match self.status(item).await {
                Status::Paid(reference) => return paid(id, reference),
                Status::Failed(w) => return rejected(id, "TRANSFER_REFUSED", "status", &w),
                // Not (yet) there: answer transient; the next attempt asks again before sending.
                Status::NotFound => {
                    return error_item(id, &format!("{why}; the bank has no such transfer"));
                }
                Status::Unknown(_) => tokio::time::sleep(Duration::from_millis(wait)).await,
            }
        }
        error_item(id, &format!("{why}; transfer status still unknown"))
    }
}

enum Status {
    Paid(Option<String>),
    Failed(String),
    NotFound,
    Unknown(String),
}

fn reply(item_id: &str, status: ItemStatus) -> ReplyItem {
    ReplyItem {
        item_id: item_id.to_owned(),
        status,
        account_number: None,
        account_name: None,
        reference: None,
        reason: None,
    }
}

fn paid(item_id: &str, reference: Option<String>) -> ReplyItem {
    match reference.filter(|r| !r.is_empty()) {
        Some(r) => ReplyItem {
            reference: Some(r),
            ..reply(item_id, ItemStatus::Ok)
        },
        None => error_item(item_id, "the bank says paid but gives no reference"),
    }
}

fn rejected(item_id: &str, code: &str, snap_code: &str, message: &str) -> ReplyItem {
    ReplyItem {
        reason: Some(BankReason {
            code: code.to_owned(),
            message: format!("SNAP {snap_code} {message}").trim().to_owned(),
        }),
        ..reply(item_id, ItemStatus::Rejected)
    }
}

fn error_item(item_id: &str, why: &str) -> ReplyItem {
    ReplyItem {
        reason: Some(BankReason {
            code: "SNAP_UNAVAILABLE".into(),
            message: why.to_owned(),
        }),
        ..reply(item_id, ItemStatus::Error)
    }
}

/// Transfers that may have been sent: one key per line, fsynced before the transfer goes out.
pub struct Journal {
    file: std::sync::Mutex<std::fs::File>,
    keys: std::sync::Mutex<HashSet<String>>,
}

impl Journal {
    /// Opens (or creates) the journal and locks it: one gateway per journal.
    pub fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                anyhow::anyhow!("cannot open the transfer journal {}: {e}", path.display())
            })?;
        file.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "the transfer journal {} is in use by another gateway: run one gateway per bank and journal",
                path.display()
            )
        })?;
        let mut keys = HashSet::new();
        for line in std::io::BufReader::new(&file).lines() {
            let line = line?;
            if !line.trim().is_empty() {
                keys.insert(line.trim().to_owned());
            }
        }
        Ok(Self {
            file: std::sync::Mutex::new(file),
            keys: std::sync::Mutex::new(keys),
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.lock().expect("journal").contains(key)
    }

    /// Writes the keys not yet in it, and syncs to disk, before any of them is sent.
    pub fn record(&self, keys: &[&str]) -> std::io::Result<()> {
        let mut known = self.keys.lock().expect("journal");
        let new: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| !known.contains(*k))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut file = self.file.lock().expect("journal file");
        let mut buf = String::new();
        for k in &new {
            buf.push_str(k);
            buf.push('\n');
        }
        file.write_all(buf.as_bytes())?;
        file.sync_data()?;
        known.extend(new.into_iter().map(str::to_owned));
        Ok(())
    }
}

/// The gateway: SNAP client and journal.
pub struct Gateway {
    pub client: SnapClient,
    journal: Journal,
}

impl Gateway {
    pub fn new(opts: GatewayOptions) -> anyhow::Result<Self> {
        let journal = Journal::open(&opts.journal)?;
        Ok(Self {
            client: SnapClient::new(opts)?,
            journal,
        })
    }

    /// The answer to one bank request (`None` for account opening, which goes by file).
    pub async fn answer(&self, request: &BankRequest) -> anyhow::Result<Option<BankReply>> {
        let items = match &request.body {
            RequestBody::AccountOpen { .. } => return Ok(None),
            RequestBody::AccountInquiry { items } => {
                futures::future::join_all(
                    items
                        .iter()
                        .map(|i| self.client.inquiry(request.request_id, i)),
                )
                .await
            }
            RequestBody::Transfer { items } => {
                let seen: Vec<bool> = items
                    .iter()
                    .map(|i| self.journal.contains(&i.idempotency_key))
                    .collect();
                let keys: Vec<&str> = items.iter().map(|i| i.idempotency_key.as_str()).collect();
                let journal = &self.journal;
                tokio::task::block_in_place(|| journal.record(&keys))
                    .map_err(|e| anyhow::anyhow!("cannot write the transfer journal: {e}"))?;
                futures::future::join_all(
                    items
                        .iter()
                        .zip(seen)
                        .map(|(i, seen)| self.client.transfer(i, seen)),
                )
                .await
            }
        };
        Ok(Some(BankReply {
            v: VERSION,
            request_id: request.request_id,
            bank_code: request.bank_code.clone(),
            kind: request.body.kind(),
            answered_at: chrono::Utc::now(),
            items,
        }))
    }
}

/// `settings` for a gateway that answers for `bank` as that bank's own RabbitMQ user (made, or
/// given a new password, through the management API): for the demo and the tests, which run a
/// gateway next to salur. In production the bank's user comes from `salur bank add`.
pub async fn as_bank_user(
    settings: &Settings,
    pool: &sqlx::PgPool,
    bank: &str,
) -> anyhow::Result<Settings> {
    let name = crate::domain::BankCode::parse(bank)
        .map(|b| b.name())
        .unwrap_or("bank");
    crate::bank::users::add(settings, pool, bank, &format!("{name} (SNAP gateway)"))
        .await?
        .settings(settings)
}

/// Runs the gateway until `cancel`, reconnecting when RabbitMQ goes away. `settings.amqp_url`
/// is the bank's own RabbitMQ user.
pub async fn run(
    settings: Settings,
    opts: GatewayOptions,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let prefetch = opts.prefetch.max(1);
    let bank = opts.bank.clone();
    let gateway = Arc::new(Gateway::new(opts)?);
    let mut settings = settings;
    settings.prefetch = prefetch;
    loop {
        let broker = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = Broker::connect_with_retry(&settings, Duration::from_secs(3600)) => b?,
        };
        let result = serve(
            &settings,
            &broker,
            &gateway,
            &bank,
            prefetch as usize,
            &cancel,
        )
        .await;
        broker.close().await;
        if cancel.is_cancelled() {
            return Ok(());
        }
        tracing::warn!(error = ?result.err().map(|e| format!("{e:#}")), "bank-gateway lost its connection; reconnecting");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn serve(
    settings: &Settings,
    broker: &Broker,
    gateway: &Arc<Gateway>,
    bank: &str,
    in_flight: usize,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let (channel, mut consumer) = broker
        .consume(&names::bank_queue(bank), &format!("bank-gateway-{bank}"))
        .await?;
    let publisher = Arc::new(broker.publisher().await?);
    tracing::info!(bank, "bank-gateway serving");
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let result = loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            d = consumer.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => break Err(e.into()),
                None => break Err(anyhow::anyhow!("bank queue consumer closed")),
            },
        };
        let permit = permits.clone().acquire_owned().await?;
        let gateway = gateway.clone();
        let publisher = publisher.clone();
        let settings = settings.clone();
        tasks.spawn(async move {
            let r = handle(&settings, &gateway, delivery, &publisher).await;
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
    settings: &Settings,
    gateway: &Gateway,
    delivery: lapin::message::Delivery,
    publisher: &Publisher,
) -> anyhow::Result<()> {
    let request: BankRequest = match serde_json::from_slice(&delivery.data) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "bank-gateway drops a request it cannot read");
            let nack = BasicNackOptions {
                requeue: false,
                ..Default::default()
            };
            delivery.acker.nack(nack).await?;
            return Ok(());
        }
    };
    let started = Instant::now();
    let Some(reply) = gateway.answer(&request).await? else {
        tracing::info!(request_id = %request.request_id, bank = %request.bank_code,
            "account opening goes by file (salur bank export-accounts); request acknowledged");
        delivery.acker.ack(BasicAckOptions::default()).await?;
        return Ok(());
    };
    let count = |s: ItemStatus| reply.items.iter().filter(|i| i.status == s).count();
    tracing::info!(request_id = %request.request_id, kind = reply.kind.as_str(), items = reply.items.len(),
        ok = count(ItemStatus::Ok), rejected = count(ItemStatus::Rejected), error = count(ItemStatus::Error),
        seconds = started.elapsed().as_secs_f64(), "bank-gateway answered");
    for item in reply.items.iter().filter(|i| i.status == ItemStatus::Error) {
        let why = item
            .reason
            .as_ref()
            .map(|r| r.message.as_str())
            .unwrap_or_default();
        tracing::warn!(item = %item.item_id, why = %why, "item answered as a transient error");
    }
    let message = Outgoing {
        exchange: settings.name(names::BANK_REPLIES),
        routing_key: reply.kind.routing_key(&reply.bank_code),
        payload: serde_json::to_vec(&reply)?,
    };
    // As the bank's user: RabbitMQ checks `user_id`, salur checks it is the bank asked.
    publisher
        .publish_all_as(&[message], &crate::bank::users::own_user(settings))
        .await?;
    delivery.acker.ack(BasicAckOptions::default()).await?;
    Ok(())
}
