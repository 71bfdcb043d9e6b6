//! Banks salur pays through (by Bank Indonesia code) and the account numbers they hold.

use super::{mask_digits, strip_separators};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Bank Indonesia 3-digit bank code that salur knows, e.g. `002` for BRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct BankCode(&'static str);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankCodeError {
    #[error(
        "the bank code is empty; write the 3-digit Bank Indonesia code of the recipient's bank, e.g. 002 for BRI"
    )]
    Empty,
    #[error(
        "the bank code is not a number; write the 3-digit Bank Indonesia code, e.g. 002 for BRI, not the bank's name"
    )]
    NotACode,
    #[error("bank code {0} is not a bank salur pays through; known codes: {known}", known = BankCode::known_list())]
    Unknown(String),
}

impl BankCode {
    /// The banks salur pays through: `(code, name)`.
    pub const KNOWN: &'static [(&'static str, &'static str)] = &[
        ("002", "BRI"),
        ("008", "Mandiri"),
        ("009", "BNI"),
        ("011", "Danamon"),
        ("013", "Permata"),
        ("014", "BCA"),
        ("022", "CIMB Niaga"),
        ("110", "BJB"),
        ("111", "Bank DKI"),
        ("113", "Bank Jateng"),
        ("114", "Bank Jatim"),
        ("200", "BTN"),
        ("451", "BSI"),
    ];

    /// Accepts a known code of 1 to 3 digits after trimming; shorter codes are zero-padded
    /// (`2` and `02` are `002`).
    pub fn parse(input: &str) -> Result<BankCode, BankCodeError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(BankCodeError::Empty);
        }
        if text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BankCodeError::NotACode);
        }
        let code = format!("{text:0>3}");
        Self::KNOWN
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, _)| Self(known))
            .ok_or(BankCodeError::Unknown(code))
    }

    /// The 3-digit code, e.g. `002`.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The bank's usual name, e.g. `BRI`.
    pub fn name(&self) -> &'static str {
        Self::KNOWN
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| *name)
            .expect("a BankCode is always one of KNOWN")
    }

    fn known_list() -> String {
        Self::KNOWN
            .iter()
            .map(|(code, name)| format!("{code} {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl AsRef<str> for BankCode {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl TryFrom<String> for BankCode {
    type Error = BankCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

// Written by hand: a derived impl would require `'de: 'static` because of the `&'static str`.
impl<'de> Deserialize<'de> for BankCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl From<BankCode> for String {
    fn from(value: BankCode) -> Self {
        value.0.to_owned()
    }
}

/// A bank account number: 6 to 20 digits, stored without separators.
///
/// `Debug` prints the masked number, so it never reaches a log in clear by accident.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNumberError {
    #[error("the account number is empty")]
    Empty,
    #[error(
        "the account number contains characters other than digits (spaces, dots and dashes are ignored)"
    )]
    NotDigits,
    #[error("account number has {0} digits; an account number has 6 to 20 digits")]
    WrongLength(usize),
}

impl AccountNumber {
    pub fn parse(input: &str) -> Result<AccountNumber, AccountNumberError> {
        let digits = strip_separators(input);
        if digits.is_empty() {
            return Err(AccountNumberError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountNumberError::NotDigits);
        }
        if !(6..=20).contains(&digits.len()) {
            return Err(AccountNumberError::WrongLength(digits.len()));
        }
        Ok(Self(digits))
    }

    /// The digits, without separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and reports, e.g. `******7890`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AccountNumber")
            .field(&self.masked())
            .finish()
    }
}

impl AsRef<str> for AccountNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountNumber {
    type Error = AccountNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountNumber> for String {
    fn from(value: AccountNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_are_accepted_with_their_names() {
        let bri = BankCode::parse("002").unwrap();
        assert_eq!(bri.as_str(), "002");
        assert_eq!(bri.name(), "BRI");
        assert_eq!(BankCode::parse(" 451 ").unwrap().name(), "BSI");
        assert_eq!(BankCode::parse("200").unwrap().name(), "BTN");
        for (code, name) in BankCode::KNOWN {
            let parsed = BankCode::parse(code).unwrap();
            assert_eq!((parsed.as_str(), parsed.name()), (*code, *name));
        }
    }

    #[test]
    fn short_codes_are_zero_padded() {
        assert_eq!(BankCode::parse("2").unwrap().as_str(), "002");
        assert_eq!(BankCode::parse("02").unwrap().as_str(), "002");
        assert_eq!(BankCode::parse("14").unwrap().name(), "BCA");
    }

    #[test]
    fn unknown_or_malformed_codes_are_rejected() {
        assert_eq!(BankCode::parse(""), Err(BankCodeError::Empty));
        assert_eq!(BankCode::parse("BRI"), Err(BankCodeError::NotACode));
        assert_eq!(BankCode::parse("0002"), Err(BankCodeError::NotACode));
        assert_eq!(BankCode::parse("-2"), Err(BankCodeError::NotACode));
        assert_eq!(
            BankCode::parse("999"),
            Err(BankCodeError::Unknown("999".into()))
        );
        assert_eq!(
            BankCode::parse("0"),
            Err(BankCodeError::Unknown("000".into()))
        );
        let message = BankCode::parse("999").unwrap_err().to_string();
        assert!(message.contains("bank code 999 is not"), "{message}");
        assert!(message.contains("002 BRI"), "{message}");
    }

    #[test]
    fn account_numbers_keep_digits_only() {
        let account = AccountNumber::parse("0123-4567 89.0").unwrap();
        assert_eq!(account.as_str(), "01234567890");
        assert_eq!(account.masked(), "*******7890");
        assert!(!format!("{account:?}").contains("01234567890"));
        assert!(AccountNumber::parse("123456").is_ok());
        assert!(AccountNumber::parse(&"1".repeat(20)).is_ok());
    }

    #[test]
    fn bad_account_numbers_are_rejected() {
        use AccountNumberError::*;
        assert_eq!(AccountNumber::parse(" "), Err(Empty));
        assert_eq!(AccountNumber::parse("12345"), Err(WrongLength(5)));
        assert_eq!(AccountNumber::parse(&"1".repeat(21)), Err(WrongLength(21)));
        assert_eq!(AccountNumber::parse("12345a789"), Err(NotDigits));
    }

    #[test]
    fn serde_goes_through_parse() {
        let bank: BankCode = serde_json::from_str("\"2\"").unwrap();
        assert_eq!(serde_json::to_string(&bank).unwrap(), "\"002\"");
        assert!(serde_json::from_str::<BankCode>("\"999\"").is_err());
    }
}
