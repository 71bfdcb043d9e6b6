//! Why a record stopped: a stable machine code, the field at fault, and a sentence for people.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable reason codes. These strings are a public interface (reports, the DLQ, metrics labels,
/// the README): never rename one, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    // Incomplete or invalid administrative data, found by account opening (fixable: `blocked`).
    NikMissing,
    NikInvalid,
    NikBirthDateMismatch,
    NikSexMismatch,
    KkMissing,
    KkInvalid,
    NameMissing,
    MotherNameMissing,
    BirthPlaceMissing,
    BirthDateMissing,
    BirthDateInvalid,
    SexMissing,
    SexInvalid,
    AddressMissing,
    RegionCodeMissing,
    RegionCodeInvalid,
    BankUnknown,
    AccountNumberInvalid,
    AmountInvalid,
    /// The amount is not one its programme pays (`salur programme list`); the message lists
    /// the allowed amounts.
    AmountNotAllowed,
    // Answers from the bank (account opening / inquiry).
    NikNotFound,
    AccountNotFound,
    NikDataMismatch,
    CustomerBlacklisted,
    AccountClosed,
    AccountDormant,
    AccountBlocked,
    /// An inquiry answered for another account number than the one asked.
    AccountMismatch,
    // Verification.
    NameMismatch,
    DoubleRecipient,
    // Transfer.
    TransferRejected,
    AmountLimitExceeded,
    /// A bank refusal code salur does not know; the bank's code and text are kept.
    BankRefused,
    // Operations.
    RetriesExhausted,
    /// Closed for good by an operator (`salur dlq discard`), the why in the audit table.
    Discarded,
    /// A stage failed on this record for a reason that trying again cannot change (the
    /// database refused what the stage wrote); the record is `dead`, the others of its chunk
    /// went on.
    RecordUnprocessable,
    /// A checker rejected the payment list the record was on (the why in the message and in
    /// the `approvals` table): the office corrects it, or discards it, and replays it; it then
    /// waits on a new list for a new approval.
    ApprovalRejected,
}

impl ReasonCode {
    pub const ALL: &'static [ReasonCode] = &[
        Self::NikMissing,
        Self::NikInvalid,
        Self::NikBirthDateMismatch,
        Self::NikSexMismatch,
        Self::KkMissing,
        Self::KkInvalid,
        Self::NameMissing,
        Self::MotherNameMissing,
        Self::BirthPlaceMissing,
        Self::BirthDateMissing,
        Self::BirthDateInvalid,
        Self::SexMissing,
        Self::SexInvalid,
        Self::AddressMissing,
        Self::RegionCodeMissing,
        Self::RegionCodeInvalid,
        Self::BankUnknown,
        Self::AccountNumberInvalid,
        Self::AmountInvalid,
        Self::AmountNotAllowed,
        Self::NikNotFound,
        Self::AccountNotFound,
        Self::NikDataMismatch,
        Self::CustomerBlacklisted,
        Self::AccountClosed,
        Self::AccountDormant,
        Self::AccountBlocked,
        Self::AccountMismatch,
        Self::NameMismatch,
        Self::DoubleRecipient,
        Self::TransferRejected,
        Self::AmountLimitExceeded,
        Self::BankRefused,
        Self::RetriesExhausted,
        Self::Discarded,
        Self::RecordUnprocessable,
        Self::ApprovalRejected,
    ];

    /// The stable code, e.g. `NIK_MISSING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NikMissing => "NIK_MISSING",
            Self::NikInvalid => "NIK_INVALID",
            Self::NikBirthDateMismatch => "NIK_BIRTH_DATE_MISMATCH",
            Self::NikSexMismatch => "NIK_SEX_MISMATCH",
            Self::KkMissing => "KK_MISSING",
            Self::KkInvalid => "KK_INVALID",
            Self::NameMissing => "NAME_MISSING",
            Self::MotherNameMissing => "MOTHER_NAME_MISSING",
            Self::BirthPlaceMissing => "BIRTH_PLACE_MISSING",
            Self::BirthDateMissing => "BIRTH_DATE_MISSING",
            Self::BirthDateInvalid => "BIRTH_DATE_INVALID",
            Self::SexMissing => "SEX_MISSING",
            Self::SexInvalid => "SEX_INVALID",
            Self::AddressMissing => "ADDRESS_MISSING",
            Self::RegionCodeMissing => "REGION_CODE_MISSING",
            Self::RegionCodeInvalid => "REGION_CODE_INVALID",
            Self::BankUnknown => "BANK_UNKNOWN",
            Self::AccountNumberInvalid => "ACCOUNT_NUMBER_INVALID",
            Self::AmountInvalid => "AMOUNT_INVALID",
            Self::AmountNotAllowed => "AMOUNT_NOT_ALLOWED",
            Self::NikNotFound => "NIK_NOT_FOUND",
            Self::AccountNotFound => "ACCOUNT_NOT_FOUND",
            Self::NikDataMismatch => "NIK_DATA_MISMATCH",
            Self::CustomerBlacklisted => "CUSTOMER_BLACKLISTED",
            Self::AccountClosed => "ACCOUNT_CLOSED",
            Self::AccountDormant => "ACCOUNT_DORMANT",
            Self::AccountBlocked => "ACCOUNT_BLOCKED",
            Self::AccountMismatch => "ACCOUNT_MISMATCH",
            Self::NameMismatch => "NAME_MISMATCH",
            Self::DoubleRecipient => "DOUBLE_RECIPIENT",
            Self::TransferRejected => "TRANSFER_REJECTED",
            Self::AmountLimitExceeded => "AMOUNT_LIMIT_EXCEEDED",
            Self::BankRefused => "BANK_REFUSED",
            Self::RetriesExhausted => "RETRIES_EXHAUSTED",
            Self::Discarded => "DISCARDED",
            Self::RecordUnprocessable => "RECORD_UNPROCESSABLE",
            Self::ApprovalRejected => "APPROVAL_REJECTED",
        }
    }

    /// For a reason found by the bank or by verification (not by reading the record): the
    /// fields whose correction clears it. A fix that changes none of them keeps the reason.
    pub fn fixed_by(self) -> Option<&'static [&'static str]> {
        Some(match self {
            Self::NikNotFound => &["nik", "bank_code"],
            Self::NikDataMismatch => &["nik", "name", "birth_date", "bank_code"],
            Self::CustomerBlacklisted => &["bank_code"],
            Self::AccountNotFound
            | Self::AccountClosed
            | Self::AccountDormant
            | Self::AccountBlocked
            | Self::AccountMismatch => &["account_number", "bank_code"],
            Self::NameMismatch => &["name", "account_number", "bank_code"],
            _ => return None,
        })
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one record: `{code, field, message}`. The message never repeats the
/// offending personal data (it says "NIK has 15 digits", not the NIK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    /// The intake column at fault (English key, e.g. `mother_name`), or `record` when the
    /// reason concerns the record as a whole.
    pub field: String,
    pub message: String,
}

impl Reason {
    pub fn new(code: ReasonCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_strings_and_serde() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
