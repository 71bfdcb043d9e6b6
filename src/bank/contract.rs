//! The bank contract: what salur asks of a bank and what the bank answers. Specified for
//! outsiders in `queues/asyncapi.yaml` with JSON schemas in `queues/schemas/`.
//!
//! Requests go to the topic exchange `salur.bank` with routing key
//! `bank.<bank_code>.<kind>` and wait on the queue `salur.bank.<bank_code>`; answers go to the
//! topic exchange `salur.bank.replies` with the same routing key. A bank may answer late,
//! twice, or out of order: salur applies an answer only to a record still waiting for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    AccountOpen,
    AccountInquiry,
    Transfer,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountOpen => "account_open",
            Self::AccountInquiry => "account_inquiry",
            Self::Transfer => "transfer",
        }
    }

    /// `bank.<code>.<kind>`
    pub fn routing_key(self, bank_code: &str) -> String {
        format!("bank.{bank_code}.{}", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRequest {
    pub v: u32,
    pub request_id: Uuid,
    pub bank_code: String,
    pub sent_at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: RequestBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestBody {
    AccountOpen { items: Vec<AccountOpenItem> },
    AccountInquiry { items: Vec<AccountInquiryItem> },
    Transfer { items: Vec<TransferItem> },
}

impl RequestBody {
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::AccountOpen { .. } => RequestKind::AccountOpen,
            Self::AccountInquiry { .. } => RequestKind::AccountInquiry,
            Self::Transfer { .. } => RequestKind::Transfer,
        }
    }
}

/// Open a savings account for a recipient (the bank checks the NIK at the civil registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOpenItem {
    /// salur's record id; the answer carries it back.
    pub item_id: String,
    /// The same for every request that opens this record's account with these data (a re-send
    /// after a timeout, a retry): a bank that sees it again answers with the account it opened
    /// the first time, and never opens a second one. A corrected record gets a new key.
    pub idempotency_key: String,
    pub nik: String,
    pub kk: String,
    pub name: String,
    pub mother_name: String,
    pub birth_place: String,
    /// `YYYY-MM-DD`
    pub birth_date: String,
    /// `L` or `P`
    pub sex: String,
    pub address: String,
    pub region_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Confirm an account the recipient already has, and tell its holder's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInquiryItem {
    pub item_id: String,
    pub account_number: String,
    pub nik: String,
    pub name: String,
}

/// SNAP BI amount: `{"value": "600000.00", "currency": "IDR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub value: String,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferItem {
    pub item_id: String,
    /// Deterministic per record: a bank that sees it twice pays once.
    pub idempotency_key: String,
    pub account_number: String,
    pub account_name: String,
    pub amount: Money,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankReply {
    pub v: u32,
    pub request_id: Uuid,
    pub bank_code: String,
    pub kind: RequestKind,
    pub answered_at: DateTime<Utc>,
    pub items: Vec<ReplyItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Done: account opened / found, or transfer settled.
    Ok,
    /// Refused for good (NIK not found at the civil registry, account closed, …).
    Rejected,
    /// Not done this time (timeout, maintenance): ask again later with the same item.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyItem {
    pub item_id: String,
    pub status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The bank's transfer reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<BankReason>,
}

impl ReplyItem {
    /// The field an `ok` answer of this kind must carry and this one lacks (account opening:
    /// account number and holder's name; inquiry: holder's name; transfer: the bank's
    /// reference). An empty string counts as missing.
    pub fn missing_field(&self, kind: RequestKind) -> Option<&'static str> {
        if self.status != ItemStatus::Ok {
            return None;
        }
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        let required: &[(&'static str, &Option<String>)] = match kind {
            RequestKind::AccountOpen => &[
                ("account_number", &self.account_number),
                ("account_name", &self.account_name),
            ],
            RequestKind::AccountInquiry => &[("account_name", &self.account_name)],
            RequestKind::Transfer => &[("reference", &self.reference)],
        };
        required
            .iter()
            .find(|(_, v)| blank(v))
            .map(|(name, _)| *name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankReason {
    pub code: String,
    pub message: String,
}

/// The `kind` of a [`TransferReturned`] message.
pub const TRANSFER_RETURNED: &str = "transfer_returned";

/// A bank's notice that transfers it paid came back (account closed, recipient deceased, not
/// collected), published on `salur.bank.replies` with routing key
/// `bank.<bank_code>.transfer_returned`, as the bank's RabbitMQ user. Not an answer to a
/// request: each item names the transfer by its idempotency key. The same return is applied
/// once, however often it is sent, and a statement's credit line for it is then a confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReturned {
    pub v: u32,
    /// Always [`TRANSFER_RETURNED`].
    pub kind: String,
    pub bank_code: String,
    pub sent_at: DateTime<Utc>,
    pub items: Vec<ReturnedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedItem {
    /// The idempotency key of the transfer returned.
    pub idempotency_key: String,
    /// The bank's reference of the transfer returned.
    pub reference: Option<String>,
    pub amount: Money,
    /// `AC04` (account closed), `MD07` (recipient deceased), `NOCO` (not collected).
    pub reason_code: String,
    /// The day the money came back, `YYYY-MM-DD`.
    pub returned_on: chrono::NaiveDate,
}
