//! Nomor KK (Kartu Keluarga): the 16-digit family-card number.

use super::region::{PrefixProblem, check_prefix};
use super::{day_exists, mask_digits, number, strip_separators};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A family-card number, `PPKKCC DDMMYY SSSS`: the region prefix as in a NIK, the issue date
/// (no +40), a serial of at least 1. Stored as its 16 digits.
///
/// `Debug` prints the masked number, so a KK never reaches a log in clear by accident.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kk(String);

/// Why a KK number was refused. Messages name the part at fault, never the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KkError {
    #[error("the KK number is empty; a KK number has 16 digits")]
    Empty,
    #[error(
        "the KK number contains characters other than digits; a KK number has 16 digits (spaces, dots and dashes are ignored)"
    )]
    NotDigits,
    #[error("KK number has {0} digits; a KK number has 16 digits")]
    WrongLength(usize),
    #[error(
        "province code {0:02} at the start of the KK number does not exist; check the first two digits"
    )]
    UnknownProvince(u32),
    #[error("the regency code in the KK number (digits 3–4) is 00, which does not exist")]
    ZeroRegency,
    #[error("the district code in the KK number (digits 5–6) is 00, which does not exist")]
    ZeroDistrict,
    #[error(
        "digits 7–12 of the KK number are not a real issue date (DDMMYY: day {day}, month {month}); check that the family card number, not a NIK, was entered"
    )]
    BadIssueDate { day: u32, month: u32 },
    #[error("the serial number in the KK number (last 4 digits) is 0000, which is never issued")]
    ZeroSerial,
}

impl Kk {
    pub fn parse(input: &str) -> Result<Kk, KkError> {
        let digits = strip_separators(input);
        if digits.is_empty() {
            return Err(KkError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KkError::NotDigits);
        }
        if digits.len() != 16 {
            return Err(KkError::WrongLength(digits.len()));
        }
        check_prefix(&digits).map_err(|problem| match problem {
            PrefixProblem::UnknownProvince(p) => KkError::UnknownProvince(p),
            PrefixProblem::ZeroRegency => KkError::ZeroRegency,
            PrefixProblem::ZeroDistrict => KkError::ZeroDistrict,
        })?;
        let day = number(&digits[6..8]);
        let month = number(&digits[8..10]);
        let yy = number(&digits[10..12]);
        if !day_exists(day, month, yy) {
            return Err(KkError::BadIssueDate { day, month });
        }
        if &digits[12..] == "0000" {
            return Err(KkError::ZeroSerial);
        }
        Ok(Self(digits))
    }

    /// The 16 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and reports, e.g. `5301********0001`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

impl fmt::Debug for Kk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Kk").field(&self.masked()).finish()
    }
}

impl AsRef<str> for Kk {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Kk {
    type Error = KkError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Kk> for String {
    fn from(value: Kk) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 53 NTT, 01 regency, 23 district, issued 12-03-15, serial 0001.
    const KK: &str = "5301231203150001";

    #[test]
    fn a_valid_kk_is_accepted() {
        let kk = Kk::parse(KK).unwrap();
        assert_eq!(kk.as_str(), KK);
        assert_eq!(kk.masked(), "5301********0001");
        assert_eq!(Kk::parse("5301.2312.0315.0001").unwrap(), kk);
        assert_eq!(Kk::parse("5301 2312 0315 0001").unwrap(), kk);
        assert!(Kk::parse("3171012902160009").is_ok()); // 29-02-16
    }

    #[test]
    fn bad_kks_are_rejected_with_the_reason() {
        use KkError::*;
        let cases = [
            ("", Empty),
            ("530123120315000", WrongLength(15)),
            ("53012312031500a1", NotDigits),
            ("1001231203150001", UnknownProvince(10)),
            ("5300231203150001", ZeroRegency),
            ("5301001203150001", ZeroDistrict),
            // No +40 in a KK: day 52 is not an issue date.
            ("5301235203150001", BadIssueDate { day: 52, month: 3 }),
            ("5301233202150001", BadIssueDate { day: 32, month: 2 }),
            ("5301233102150001", BadIssueDate { day: 31, month: 2 }),
            ("5301232902150001", BadIssueDate { day: 29, month: 2 }),
            ("5301231213150001", BadIssueDate { day: 12, month: 13 }),
            ("5301230003150001", BadIssueDate { day: 0, month: 3 }),
            ("5301231203150000", ZeroSerial),
        ];
        for (input, expected) in cases {
            assert_eq!(Kk::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        assert!(!format!("{:?}", Kk::parse(KK).unwrap()).contains(KK));
        let bad = "5301233202150001";
        assert!(!Kk::parse(bad).unwrap_err().to_string().contains(bad));
    }
}
