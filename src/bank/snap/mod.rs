//! SNAP BI (Standar Nasional Open API Pembayaran, Bank Indonesia): the signatures, the messages
//! salur uses (access token, account inquiry, transfer, transfer status), and the response-code
//! table. [`crate::bank::gateway`] is the client side, [`crate::bank::sim_snap`] bank-sim's
//! server side.

pub mod codes;
pub mod sign;

use crate::bank::contract::Money;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// SNAP service codes (the middle two digits of a response code).
pub mod service {
    pub const ACCESS_TOKEN: u8 = 73;
    pub const INQUIRY_INTERNAL: u8 = 15;
    pub const INQUIRY_EXTERNAL: u8 = 16;
    pub const TRANSFER_INTRABANK: u8 = 17;
    pub const TRANSFER_INTERBANK: u8 = 18;
    pub const TRANSFER_STATUS: u8 = 36;
}

/// Where a bank serves each SNAP endpoint. SNAP names the services; banks choose the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub token: String,
    pub inquiry_internal: String,
    pub inquiry_external: String,
    pub transfer_intrabank: String,
    pub transfer_interbank: String,
    pub transfer_status: String,
}

impl Paths {
    fn with(token: &str, prefix: &str) -> Self {
        Self {
            token: token.to_owned(),
            inquiry_internal: format!("{prefix}/account-inquiry-internal"),
            inquiry_external: format!("{prefix}/account-inquiry-external"),
            transfer_intrabank: format!("{prefix}/transfer-intrabank"),
            transfer_interbank: format!("{prefix}/transfer-interbank"),
            transfer_status: format!("{prefix}/transfer/status"),
        }
    }

    /// `standard`: SNAP's own paths (`/snap/v1.0/…`); `bni`: BNI's (`/snap/v1/access-token/b2b`,
    /// `/snap-service/v1/…`), as its SDK calls them.
    pub fn profile(name: &str) -> anyhow::Result<Self> {
        match name {
            "standard" => Ok(Self::with("/snap/v1.0/access-token/b2b", "/snap/v1.0")),
            "bni" => Ok(Self::with("/snap/v1/access-token/b2b", "/snap-service/v1")),
            _ => anyhow::bail!("unknown SNAP path profile {name:?}: use standard or bni"),
        }
    }
}

/// Western Indonesian Time, the offset SNAP timestamps are usually written in.
pub fn wib() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// `2026-11-30T10:00:00+07:00`
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&wib())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Reads a SNAP timestamp (ISO-8601 with offset; fractions of a second allowed).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub grant_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenResponse {
    pub response_code: String,
    pub response_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Seconds, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// Account inquiry, internal (an account of the bank called) or external (another bank's,
/// `beneficiaryBankCode` set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InquiryRequest {
    pub partner_reference_no: String,
    pub beneficiary_account_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_bank_code: Option<String>,
    /// salur sends `{"itemId": …, "beneficiaryName": …}` (the name bank-sim answers with for an
    /// account it invents; real banks ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InquiryResponse {
    pub response_code: String,
    pub response_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_account_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_account_name: Option<String>,
}

/// Transfer, intrabank or interbank (`beneficiaryBankCode` set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransferRequest {
    /// salur's idempotency key: the bank refuses a second transfer with it.
    pub partner_reference_no: String,
    pub amount: Option<Money>,
    pub beneficiary_account_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_bank_code: Option<String>,
    pub source_account_no: String,
    pub transaction_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// salur's record id (the item id of the contract).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransferResponse {
    pub response_code: String,
    pub response_message: String,
    /// The bank's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusRequest {
    pub original_partner_reference_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_external_id: Option<String>,
    /// `17` intrabank, `18` interbank.
    pub service_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<serde_json::Value>,
}

/// `latestTransactionStatus`: `00` success, `01` initiated, `02` paying, `03` pending, `04`
/// refunded, `05` canceled, `06` failed, `07` not found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusResponse {
    pub response_code: String,
    pub response_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_partner_reference_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_transaction_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_status_desc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

/// `X-EXTERNAL-ID` for a key: 32 decimal digits from its SHA-256 (SNAP: numeric, at most 36,
/// unique per day). The same key always gives the same id, so a re-sent transfer is the same
/// transaction to the bank.
pub fn external_id(key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut n = [0u8; 16];
    n.copy_from_slice(&digest[..16]);
    let v = u128::from_be_bytes(n) % 10u128.pow(32);
    format!("{v:032}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_with_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2026-11-30T10:00:00+07:00");
        assert_eq!(parse_timestamp("2026-11-30T10:00:00+07:00"), Some(at));
        assert_eq!(
            parse_timestamp("2026-11-30T10:00:00.123+07:00").map(|t| t.timestamp()),
            Some(at.timestamp())
        );
        assert_eq!(parse_timestamp("30-11-2026 10:00"), None);
    }

    #[test]
    fn external_ids_are_numeric_and_deterministic() {
        let a = external_id("6f1c3a0e-2b1d-5c8e-9f00-1234567890ab");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a, external_id("6f1c3a0e-2b1d-5c8e-9f00-1234567890ab"));
        assert_ne!(a, external_id("6f1c3a0e-2b1d-5c8e-9f00-1234567890ac"));
    }
}
