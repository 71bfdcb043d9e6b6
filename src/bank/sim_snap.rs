//! `salur bank-sim --snap ADDR`: bank-sim's ledger served over SNAP BI, so the whole path salur →
//! RabbitMQ → `salur bank-gateway` → SNAP → bank-sim runs in the demo and the tests.
//!
//! It serves the access token and, for the one partner it knows, the internal and external
//! account inquiries, intrabank and interbank transfers and the transfer status, at SNAP's own
//! paths (`/snap/v1.0/…`) and at BNI's (`/snap/v1/access-token/b2b`, `/snap-service/v1/…`). It
//! checks what a bank checks: the token signature against the partner's public key, the
//! access token (and its expiry), the partner id, `X-EXTERNAL-ID`, the timestamp (within
//! [`SnapOptions::max_skew`] of its clock), and every call's HMAC signature. A transfer whose
//! `partnerReferenceNo` it has seen is answered `409…01` (duplicate) and never paid twice.
//!
//! Faults (besides [`super::sim::SimOptions`]' transient errors, rejections and delay, answered
//! as SNAP codes): `timeout_rate` (carried out, then `504 Timeout`), `lost_answer_rate`
//! (carried out, then no answer before [`SnapOptions::lost_delay`]), `duplicate_rate` (carried
//! out, then `409 Duplicate`, as when a proxy sent it twice). Every token, transfer and status
//! call, and every call refused at the door, is written to `bank_sim.snap_calls`, so tests can
//! check that no transfer was sent again without a status inquiry in between.

use super::contract::{
    AccountInquiryItem, BankRequest, ItemStatus, Money, ReplyItem, RequestBody, TransferItem,
    VERSION,
};
use super::sim::Sim;
use super::snap::{self, Paths, codes, service, sign};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::de::DeserializeOwned;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How bank-sim's SNAP server behaves, and the partner it knows.
#[derive(Clone)]
pub struct SnapOptions {
    pub addr: SocketAddr,
    /// The bank this server is (its internal accounts and intrabank transfers).
    pub bank_code: String,
    /// The partner's `X-CLIENT-KEY`, the HMAC secret, `X-PARTNER-ID`, and its public key.
    pub client_key: String,
    pub client_secret: String,
    pub partner_id: String,
    pub public_key: sign::TokenVerifier,
    /// How long an access token lives.
    pub token_ttl: Duration,
    /// Timestamps further than this from the bank's clock are refused.
    pub max_skew: Duration,
    /// The bank's clock is this far off (tests of clock skew).
    pub clock_offset: chrono::Duration,
    pub timeout_rate: f64,
    pub lost_answer_rate: f64,
    pub duplicate_rate: f64,
    /// How long a "lost" answer keeps the caller waiting (longer than its timeout).
    pub lost_delay: Duration,
    /// Wait before answering a transfer (keeps transfers in flight, e.g. for crash tests).
    pub delay: Duration,
    pub seed: u64,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS bank_sim.snap_calls (
    id                   bigserial PRIMARY KEY,
    kind                 text NOT NULL,
    partner_reference_no text NOT NULL,
    external_id          text,
    response_code        text NOT NULL,
    at                   timestamptz NOT NULL DEFAULT clock_timestamp()
)";

/// Serves SNAP BI on `opts.addr` until `cancel`. Returns the address bound (port 0 picks one).
pub async fn serve(
    sim: Arc<Sim>,
    pool: PgPool,
    opts: SnapOptions,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    super::sim::ensure_schema(&pool).await?;
    sqlx::query(SCHEMA).execute(&pool).await?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} for SNAP: {e}", opts.addr))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Server {
        sim,
        pool,
        rng: Mutex::new(StdRng::seed_from_u64(opts.seed ^ 0x5a4a_5a4a)),
        tokens: Mutex::new(HashMap::new()),
        routes: [Paths::profile("standard")?, Paths::profile("bni")?],
        opts,
    });
    let app = axum::Router::new().fallback(handle).with_state(state);
    // Without TCP_NODELAY a response written in two pieces waits for the caller's delayed ACK
    // (about 40 ms a call).
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!(%addr, "bank-sim serving SNAP BI");
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await?;
        Ok(())
    });
    Ok((addr, task))
}

struct Server {
    sim: Arc<Sim>,
    pool: PgPool,
    opts: SnapOptions,
    rng: Mutex<StdRng>,
    /// access token → expiry (bank clock)
    tokens: Mutex<HashMap<String, chrono::DateTime<Utc>>>,
    routes: [Paths; 2],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Token,
    InquiryInternal,
    InquiryExternal,
    Intrabank,
    Interbank,
    Status,
}

impl Endpoint {
    fn service(self) -> u8 {
        match self {
            Self::Token => service::ACCESS_TOKEN,
            Self::InquiryInternal => service::INQUIRY_INTERNAL,
            Self::InquiryExternal => service::INQUIRY_EXTERNAL,
            Self::Intrabank => service::TRANSFER_INTRABANK,
            Self::Interbank => service::TRANSFER_INTERBANK,
            Self::Status => service::TRANSFER_STATUS,
        }
    }
}

/// A SNAP answer: HTTP status, `responseCode` from status + service + case, and fields.
struct Answer {
    http: u16,
    service: u8,
    case: u8,
    message: String,
    fields: serde_json::Value,
}

impl Answer {
    fn new(http: u16, service: u8, case: u8, message: impl Into<String>) -> Self {
        Self {
            http,
            service,
            case,
            message: message.into(),
            fields: json!({}),
        }
    }

    fn ok(service: u8, fields: serde_json::Value) -> Self {
        Self {
            fields,
            ..Self::new(200, service, 0, "Successful")
        }
    }

    fn code(&self) -> String {
        codes::format(self.http, self.service, self.case)
    }
}

impl Server {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now() + self.opts.clock_offset
    }

    fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && self.rng.lock().expect("rng").random_bool(rate.min(1.0))
    }

    fn endpoint(&self, path: &str) -> Option<Endpoint> {
        self.routes.iter().find_map(|p| {
            [
                (&p.token, Endpoint::Token),
                (&p.inquiry_internal, Endpoint::InquiryInternal),
                (&p.inquiry_external, Endpoint::InquiryExternal),
                (&p.transfer_intrabank, Endpoint::Intrabank),
                (&p.transfer_interbank, Endpoint::Interbank),
                (&p.transfer_status, Endpoint::Status),
            ]
            .into_iter()
            .find(|(p, _)| p.as_str() == path)
            .map(|(_, e)| e)
        })
    }

    /// The timestamp header, checked against the bank's clock.
    fn check_timestamp(&self, headers: &HeaderMap, svc: u8) -> Result<String, Answer> {
        let ts = header(headers, "x-timestamp")
            .ok_or_else(|| Answer::new(400, svc, 2, "Invalid Mandatory Field [X-TIMESTAMP]"))?;
        let at = snap::parse_timestamp(&ts)
            .ok_or_else(|| Answer::new(400, svc, 1, "Invalid Field Format [X-TIMESTAMP]"))?;
        let skew = (at - self.now()).num_seconds();
        if skew.unsigned_abs() > self.opts.max_skew.as_secs() {
            return Err(Answer::new(
                401,
                svc,
                0,
                format!(
                    "Unauthorized. [X-TIMESTAMP is {skew} s away from the bank's clock, more than {} s]",
                    self.opts.max_skew.as_secs()
                ),
            ));
        }
        Ok(ts)
    }

    fn token(&self, headers: &HeaderMap) -> Answer {
        let svc = service::ACCESS_TOKEN;
        let ts = match self.check_timestamp(headers, svc) {
            Ok(ts) => ts,
            Err(a) => return a,
        };
        if header(headers, "x-client-key").as_deref() != Some(self.opts.client_key.as_str()) {
            return Answer::new(401, svc, 0, "Unauthorized. [Unknown client]");
        }
        let signature = header(headers, "x-signature").unwrap_or_default();
        if !self
            .opts
            .public_key
            .verify(&self.opts.client_key, &ts, &signature)
        {
            return Answer::new(401, svc, 0, "Unauthorized. [Signature]");
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let expires =
            self.now() + chrono::Duration::from_std(self.opts.token_ttl).unwrap_or_default();
        self.tokens
            .lock()
            .expect("tokens")
            .insert(token.clone(), expires);
        Answer::ok(
            svc,
            json!({"accessToken": token, "tokenType": "Bearer", "expiresIn": self.opts.token_ttl.as_secs().to_string()}),
        )
    }

    /// The checks of a transactional call: token, partner, external id, timestamp, signature.
    fn authorize(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        svc: u8,
    ) -> Result<(), Answer> {
        let auth = header(headers, "authorization").unwrap_or_default();
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or_else(|| Answer::new(401, svc, 3, "Token Not Found (B2B)"))?;
        let expires = self.tokens.lock().expect("tokens").get(token).copied();
        match expires {
            None => return Err(Answer::new(401, svc, 1, "Invalid Token (B2B) [unknown]")),
            Some(at) if at <= self.now() => {
                return Err(Answer::new(401, svc, 1, "Invalid Token (B2B) [expired]"));
            }
            Some(_) => {}
        }
        if header(headers, "x-partner-id").as_deref() != Some(self.opts.partner_id.as_str()) {
            return Err(Answer::new(401, svc, 0, "Unauthorized. [Unknown partner]"));
        }
        if header(headers, "x-external-id").is_none_or(|s| s.is_empty()) {
            return Err(Answer::new(
                400,
                svc,
                2,
                "Invalid Mandatory Field [X-EXTERNAL-ID]",
            ));
        }
        let ts = self.check_timestamp(headers, svc)?;
        let signature = header(headers, "x-signature").unwrap_or_default();
        if !sign::verify_transactional(
            &self.opts.client_secret,
            method.as_str(),
            path,
            token,
            body,
            &ts,
            &signature,
        ) {
            return Err(Answer::new(401, svc, 0, "Unauthorized. [Signature]"));
        }
        Ok(())
    }

    async fn call(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let svc = endpoint.service();
        let external_id = header(headers, "x-external-id");
        match endpoint {
            Endpoint::Token => {
                let answer = self.token(headers);
                let client = header(headers, "x-client-key").unwrap_or_default();
                self.log("token", &client, None, &answer).await?;
                Ok(answer)
            }
            Endpoint::InquiryInternal | Endpoint::InquiryExternal => {
                let req: snap::InquiryRequest = match parse(body, svc) {
                    Ok(r) => r,
                    Err(a) => return Ok(a),
                };
                self.inquiry(endpoint, req).await
            }
            Endpoint::Intrabank | Endpoint::Interbank => {
                let req: snap::TransferRequest = match parse(body, svc) {
                    Ok(r) => r,
                    Err(a) => return Ok(a),
                };
                let key = req.partner_reference_no.clone();
                let (answer, lost) = self.transfer(endpoint, req).await?;
                // Logged when decided: a lost answer is still on its way when the caller asks.
                self.log("transfer", &key, external_id.as_deref(), &answer)
                    .await?;
                if lost {
                    tokio::time::sleep(self.opts.lost_delay).await;
                }
                Ok(answer)
            }
            Endpoint::Status => {
                let req: snap::StatusRequest = match parse(body, svc) {
                    Ok(r) => r,
                    Err(a) => return Ok(a),
                };
                let answer = self.status(&req).await?;
                self.log(
                    "status",
                    &req.original_partner_reference_no,
                    external_id.as_deref(),
                    &answer,
                )
                .await?;
                Ok(answer)
            }
        }
    }

    async fn log(
        &self,
        kind: &str,
        key: &str,
        external_id: Option<&str>,
        answer: &Answer,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO bank_sim.snap_calls (kind, partner_reference_no, external_id, response_code)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(kind)
        .bind(key)
        .bind(external_id)
        .bind(answer.code())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn one(&self, bank_code: &str, body: RequestBody) -> anyhow::Result<ReplyItem> {
        let request = BankRequest {
            v: VERSION,
            request_id: uuid::Uuid::new_v4(),
            bank_code: bank_code.to_owned(),
            sent_at: Utc::now(),
            body,
        };
        let mut reply = self.sim.answer(&request).await?;
        reply
            .items
            .pop()
            .ok_or_else(|| anyhow::anyhow!("bank-sim answered no item"))
    }

    async fn inquiry(
        &self,
        endpoint: Endpoint,
        req: snap::InquiryRequest,
    ) -> anyhow::Result<Answer> {
        let svc = endpoint.service();
        if req.beneficiary_account_no.is_empty() {
            return Ok(Answer::new(
                400,
                svc,
                2,
                "Invalid Mandatory Field [beneficiaryAccountNo]",
            ));
        }
        let bank = match (endpoint, &req.beneficiary_bank_code) {
            (Endpoint::InquiryExternal, Some(code)) if !code.is_empty() => code.clone(),
            (Endpoint::InquiryExternal, _) => {
                return Ok(Answer::new(
                    400,
                    svc,
                    2,
                    "Invalid Mandatory Field [beneficiaryBankCode]",
                ));
            }
            _ => self.opts.bank_code.clone(),
        };
        let info = req.additional_info.clone().unwrap_or_default();
        let name = match info.get("beneficiaryName").and_then(|v| v.as_str()) {
            Some(n) => n.to_owned(),
            None => self.holder(&bank, &req.beneficiary_account_no).await?,
        };
        let item_id = info
            .get("itemId")
            .and_then(|v| v.as_str())
            .unwrap_or(&req.partner_reference_no)
            .to_owned();
        let reply = self
            .one(
                &bank,
                RequestBody::AccountInquiry {
                    items: vec![AccountInquiryItem {
                        item_id,
                        account_number: req.beneficiary_account_no.clone(),
                        nik: String::new(),
                        name,
                    }],
                },
            )
            .await?;
        Ok(match reply.status {
            ItemStatus::Ok => Answer::ok(
                svc,
                json!({
                    "referenceNo": uuid::Uuid::new_v4().simple().to_string(),
                    "partnerReferenceNo": req.partner_reference_no,
                    "beneficiaryAccountNo": req.beneficiary_account_no,
                    "beneficiaryAccountName": reply.account_name,
                }),
            ),
            ItemStatus::Rejected => refusal(svc, &reply),
            ItemStatus::Error => Answer::new(500, svc, 0, "General Error"),
        })
    }

    /// The holder of an account bank-sim opened, else a made-up one.
    async fn holder(&self, bank: &str, account: &str) -> sqlx::Result<String> {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT account_name FROM bank_sim.accounts WHERE bank_code = $1 AND account_number = $2",
        )
        .bind(bank)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        let tail: String = account
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Ok(name.unwrap_or_else(|| format!("NASABAH {tail}")))
    }

    /// The answer to a transfer, and whether it is to be lost (delayed past the caller's
    /// patience).
    async fn transfer(
        &self,
        endpoint: Endpoint,
        req: snap::TransferRequest,
    ) -> anyhow::Result<(Answer, bool)> {
        let svc = endpoint.service();
        let Some(amount) = req.amount.clone() else {
            return Ok((
                Answer::new(400, svc, 2, "Invalid Mandatory Field [amount]"),
                false,
            ));
        };
        for (field, value) in [
            ("partnerReferenceNo", &req.partner_reference_no),
            ("beneficiaryAccountNo", &req.beneficiary_account_no),
            ("sourceAccountNo", &req.source_account_no),
        ] {
            if value.is_empty() {
                return Ok((
                    Answer::new(400, svc, 2, format!("Invalid Mandatory Field [{field}]")),
                    false,
                ));
            }
        }
        let bank = match (endpoint, &req.beneficiary_bank_code) {
            (Endpoint::Interbank, Some(code)) if !code.is_empty() => code.clone(),
            (Endpoint::Interbank, _) => {
                return Ok((
                    Answer::new(400, svc, 2, "Invalid Mandatory Field [beneficiaryBankCode]"),
                    false,
                ));
            }
            _ => self.opts.bank_code.clone(),
        };
        if !self.opts.delay.is_zero() {
            tokio::time::sleep(self.opts.delay).await;
        }
        if self.known(&req.partner_reference_no).await? {
            return Ok((
                Answer::new(409, svc, 1, "Duplicate partnerReferenceNo"),
                false,
            ));
        }
        let item_id = req
            .customer_reference
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| req.partner_reference_no.clone());
        let reply = self
            .one(
                &bank,
                RequestBody::Transfer {
                    items: vec![TransferItem {
                        item_id,
                        idempotency_key: req.partner_reference_no.clone(),
                        account_number: req.beneficiary_account_no.clone(),
                        account_name: req.beneficiary_account_name.clone().unwrap_or_default(),
                        amount: amount.clone(),
                        description: req.remark.clone().unwrap_or_default(),
                    }],
                },
            )
            .await?;
        let answer = match reply.status {
            ItemStatus::Ok => Answer::ok(
                svc,
                json!({
                    "referenceNo": reply.reference,
                    "partnerReferenceNo": req.partner_reference_no,
                    "amount": amount,
                    "beneficiaryAccountNo": req.beneficiary_account_no,
                }),
            ),
            ItemStatus::Rejected => refusal(svc, &reply),
            // Nothing was stored: a 500 the gateway must resolve by a status inquiry.
            ItemStatus::Error => return Ok((Answer::new(500, svc, 0, "General Error"), false)),
        };
        // Carried out; now the faults of the way back.
        if self.roll(self.opts.lost_answer_rate) {
            return Ok((Answer::new(504, svc, 0, "Timeout"), true));
        }
        if self.roll(self.opts.timeout_rate) {
            return Ok((Answer::new(504, svc, 0, "Timeout"), false));
        }
        if self.roll(self.opts.duplicate_rate) {
            return Ok((
                Answer::new(409, svc, 1, "Duplicate partnerReferenceNo"),
                false,
            ));
        }
        Ok((answer, false))
    }

    async fn known(&self, key: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM bank_sim.transfers WHERE idempotency_key = $1)",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await
    }

    async fn status(&self, req: &snap::StatusRequest) -> anyhow::Result<Answer> {
        let svc = service::TRANSFER_STATUS;
        if self.roll(self.opts.timeout_rate) {
            return Ok(Answer::new(504, svc, 0, "Timeout"));
        }
        let row: Option<(String, Option<String>, Option<String>, rust_decimal::Decimal)> = sqlx::query_as(
            "SELECT status, reason, reference, amount FROM bank_sim.transfers WHERE idempotency_key = $1",
        )
        .bind(&req.original_partner_reference_no)
        .fetch_optional(&self.pool)
        .await?;
        let Some((status, reason, reference, amount)) = row else {
            return Ok(Answer::new(404, svc, 1, "Transaction Not Found"));
        };
        let (latest, desc) = if status == "ok" {
            ("00", "Success".to_owned())
        } else {
            ("06", format!("Failed: {}", reason.unwrap_or_default()))
        };
        Ok(Answer::ok(
            svc,
            json!({
                "originalReferenceNo": reference,
                "originalPartnerReferenceNo": req.original_partner_reference_no,
                "serviceCode": req.service_code,
                "latestTransactionStatus": latest,
                "transactionStatusDesc": desc,
                "amount": Money { value: format!("{amount:.2}"), currency: "IDR".into() },
            }),
        ))
    }
}

/// A refusal as SNAP answers it, from the contract's refusal code.
fn refusal(svc: u8, reply: &ReplyItem) -> Answer {
    let code = reply
        .reason
        .as_ref()
        .map(|r| r.code.as_str())
        .unwrap_or("TRANSFER_REFUSED");
    let row = codes::for_refusal(code);
    Answer::new(row.http, svc, row.case, row.message)
}

fn parse<T: DeserializeOwned>(body: &[u8], svc: u8) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| Answer::new(400, svc, 0, format!("Bad Request [{e}]")))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(endpoint) = server.endpoint(path) else {
        return (StatusCode::NOT_FOUND, "no such SNAP endpoint").into_response();
    };
    let svc = endpoint.service();
    let answer = if method != Method::POST {
        Answer::new(405, svc, 0, "Requested Function Is Not Supported")
    } else if endpoint != Endpoint::Token
        && let Err(refused) = server.authorize(&method, path, &headers, &body, svc)
    {
        // Refused at the door (kind `refused`, keyed by path): tests count them.
        if let Err(e) = server.log("refused", path, None, &refused).await {
            tracing::warn!(error = %e, "bank-sim could not log a refused call");
        }
        refused
    } else {
        match server.call(endpoint, &headers, &body).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "bank-sim SNAP failed");
                Answer::new(500, svc, 1, "Internal Server Error")
            }
        }
    };
    let mut fields = answer.fields.clone();
    if let Some(map) = fields.as_object_mut() {
        map.insert("responseCode".into(), answer.code().into());
        map.insert("responseMessage".into(), answer.message.clone().into());
    }
    let status = StatusCode::from_u16(answer.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(fields)).into_response();
    if let Ok(v) = snap::timestamp(server.now()).parse() {
        response.headers_mut().insert("x-timestamp", v);
    }
    response
}
