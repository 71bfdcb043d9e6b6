//! The bank refusal codes of the contract (`queues/refusal-codes.md`) and what salur makes of
//! each: the reason code the record carries, the field at fault, and a sentence that tells the
//! office what to do. One table, read by the reply handler, `salur bank-check` and the docs
//! test.

use super::contract::RequestKind;
use crate::domain::{Reason, ReasonCode};

/// One refusal code a bank may answer with.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// The code as the bank sends it in `reason.code`.
    pub bank_code: &'static str,
    /// The request kinds it may answer.
    pub kinds: &'static [RequestKind],
    /// What the record carries.
    pub reason: ReasonCode,
    /// The field at fault (`record` when no field is).
    pub field: &'static str,
    /// What the office should do.
    pub advice: &'static str,
}

use RequestKind::{AccountInquiry as Inquiry, AccountOpen as Open, Transfer};

/// Every refusal code of the contract. Anything else is [`ReasonCode::BankRefused`], with the
/// bank's code and text kept.
pub const REFUSALS: &[Refusal] = &[
    Refusal {
        bank_code: "NIK_NOT_FOUND",
        kinds: &[Open],
        reason: ReasonCode::NikNotFound,
        field: "nik",
        advice: "the civil registry (Dukcapil) has no such NIK: check the NIK against the \
                 recipient's KTP and KK and correct it",
    },
    Refusal {
        bank_code: "NIK_DATA_MISMATCH",
        kinds: &[Open],
        reason: ReasonCode::NikDataMismatch,
        field: "name",
        advice: "the civil registry's data for this NIK disagrees with the record (name or \
                 birth date): correct them as the KTP has them, or have the recipient update \
                 their data at Dukcapil",
    },
    Refusal {
        bank_code: "CUSTOMER_BLACKLISTED",
        kinds: &[Open],
        reason: ReasonCode::CustomerBlacklisted,
        field: "bank_code",
        advice: "the bank will not open an account for this person (its customer screening); \
                 the data is not at fault, do not change the NIK: take it up with the bank's \
                 branch, or pay through another bank (change bank_code)",
    },
    Refusal {
        bank_code: "ACCOUNT_NOT_FOUND",
        kinds: &[Inquiry, Transfer],
        reason: ReasonCode::AccountNotFound,
        field: "account_number",
        advice: "the bank has no such account: correct the account number, or remove it so \
                 that the bank opens a new account",
    },
    Refusal {
        bank_code: "ACCOUNT_CLOSED",
        kinds: &[Inquiry, Transfer],
        reason: ReasonCode::AccountClosed,
        field: "account_number",
        advice: "the account is closed: the name is not at fault; give the recipient's new \
                 account number, or remove it so that the bank opens a new account",
    },
    Refusal {
        bank_code: "ACCOUNT_DORMANT",
        kinds: &[Inquiry, Transfer],
        reason: ReasonCode::AccountDormant,
        field: "account_number",
        advice: "the account is dormant: the recipient must reactivate it at the bank, or give \
                 a new account number (or remove it so that the bank opens a new account)",
    },
    Refusal {
        bank_code: "ACCOUNT_BLOCKED",
        kinds: &[Inquiry, Transfer],
        reason: ReasonCode::AccountBlocked,
        field: "account_number",
        advice: "the bank has frozen the account: the recipient must settle it with the bank, \
                 or give another account number",
    },
    Refusal {
        bank_code: "AMOUNT_LIMIT_EXCEEDED",
        kinds: &[Transfer],
        reason: ReasonCode::AmountLimitExceeded,
        field: "amount",
        advice: "the amount exceeds what the account may receive (a basic savings account's \
                 limit): ask the bank to lift the limit, or give another account",
    },
    Refusal {
        bank_code: "TRANSFER_REFUSED",
        kinds: &[Transfer],
        reason: ReasonCode::TransferRejected,
        field: "record",
        advice: "the bank refused the transfer for good; ask the bank why before paying this \
                 recipient another way",
    },
];

/// The refusal with this bank code, if the contract lists it.
pub fn find(bank_code: &str) -> Option<&'static Refusal> {
    REFUSALS.iter().find(|r| r.bank_code == bank_code)
}

/// The reason a record carries when its bank refused it: the mapped code and advice with the
/// bank's own code and text kept, or `BANK_REFUSED` for a code the contract does not list (or
/// one listed for another kind of request).
pub fn reason(kind: RequestKind, bank_code: Option<&str>, bank_message: Option<&str>) -> Reason {
    let code = bank_code.unwrap_or("UNSPECIFIED");
    let said = format!(
        "the bank said {code}: {}",
        bank_message.unwrap_or("no reason given")
    );
    match find(code).filter(|r| r.kinds.contains(&kind)) {
        Some(r) => Reason::new(r.reason, r.field, format!("{} ({said})", r.advice)),
        None => Reason::new(
            ReasonCode::BankRefused,
            "record",
            format!(
                "the bank refused with a code salur does not know; ask the bank what it means \
                 ({said})"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_code_maps_to_its_own_reason_and_unknown_codes_keep_the_banks_words() {
        for r in REFUSALS {
            let got = reason(r.kinds[0], Some(r.bank_code), Some("x"));
            assert_eq!(got.code, r.reason, "{}", r.bank_code);
            assert!(got.message.contains(r.bank_code), "{}", got.message);
        }
        let blacklisted = reason(Open, Some("CUSTOMER_BLACKLISTED"), None);
        assert_ne!(blacklisted.field, "nik");
        let other = reason(Transfer, Some("XYZ_42"), Some("core says no"));
        assert_eq!(other.code, ReasonCode::BankRefused);
        assert!(other.message.contains("XYZ_42") && other.message.contains("core says no"));
        // A code listed for another kind is not trusted to mean the same thing.
        assert_eq!(
            reason(Open, Some("ACCOUNT_CLOSED"), None).code,
            ReasonCode::BankRefused
        );
    }

    #[test]
    fn the_published_table_lists_every_code() {
        let doc = include_str!("../../queues/refusal-codes.md");
        for r in REFUSALS {
            assert!(
                doc.contains(&format!("`{}`", r.bank_code)) && doc.contains(r.reason.as_str()),
                "queues/refusal-codes.md lacks {}",
                r.bank_code
            );
        }
    }
}
