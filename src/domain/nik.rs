//! NIK (Nomor Induk Kependudukan): the 16-digit population number on every KTP and KK.

use super::region::{PrefixProblem, check_prefix};
use super::{Sex, day_exists, mask_digits, number, strip_separators};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A NIK, `PPKKCC DDMMYY SSSS`: province, regency, district; birth day (plus 40 for women),
/// month and two-digit year; a serial. Stored as its 16 digits.
///
/// `Debug` prints the masked NIK, so a NIK never reaches a log in clear by accident.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nik(String);

/// Why a NIK was refused. Messages name the part at fault, never the NIK itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NikError {
    #[error("the NIK is empty; a NIK has 16 digits")]
    Empty,
    #[error(
        "the NIK contains characters other than digits; a NIK has 16 digits (spaces, dots and dashes are ignored)"
    )]
    NotDigits,
    #[error("NIK has {0} digits; a NIK has 16 digits")]
    WrongLength(usize),
    #[error(
        "province code {0:02} at the start of the NIK does not exist; check the first two digits"
    )]
    UnknownProvince(u32),
    #[error("the regency code in the NIK (digits 3–4) is 00, which does not exist")]
    ZeroRegency,
    #[error("the district code in the NIK (digits 5–6) is 00, which does not exist")]
    ZeroDistrict,
    #[error(
        "day {0} in the NIK is not a date; the day (digits 7–8) is 01–31 for men, and women's NIKs add 40 to the day (41–71)"
    )]
    BadDay(u32),
    #[error("month {0} in the NIK is not a month; the month (digits 9–10) is 01–12")]
    BadMonth(u32),
    #[error(
        "day {day} does not exist in month {month} in the NIK (digits 7–12 are the birth date DDMMYY; women add 40 to the day)"
    )]
    NoSuchDate { day: u32, month: u32 },
    #[error("the serial number in the NIK (last 4 digits) is 0000, which is never issued")]
    ZeroSerial,
}

impl Nik {
    pub fn parse(input: &str) -> Result<Nik, NikError> {
        let digits = strip_separators(input);
        if digits.is_empty() {
            return Err(NikError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NikError::NotDigits);
        }
        if digits.len() != 16 {
            return Err(NikError::WrongLength(digits.len()));
        }
        check_prefix(&digits).map_err(|problem| match problem {
            PrefixProblem::UnknownProvince(p) => NikError::UnknownProvince(p),
            PrefixProblem::ZeroRegency => NikError::ZeroRegency,
            PrefixProblem::ZeroDistrict => NikError::ZeroDistrict,
        })?;
        let encoded_day = number(&digits[6..8]);
        let month = number(&digits[8..10]);
        let yy = number(&digits[10..12]);
        let day = match encoded_day {
            1..=31 => encoded_day,
            41..=71 => encoded_day - 40,
            _ => return Err(NikError::BadDay(encoded_day)),
        };
        if !(1..=12).contains(&month) {
            return Err(NikError::BadMonth(month));
        }
        if !day_exists(day, month, yy) {
            return Err(NikError::NoSuchDate { day, month });
        }
        if &digits[12..] == "0000" {
            return Err(NikError::ZeroSerial);
        }
        Ok(Self(digits))
    }

    /// The 16 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Female when 40 was added to the birth day.
    pub fn sex(&self) -> Sex {
        if number(&self.0[6..8]) > 40 {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// The birth date the NIK encodes: `(day, month, yy)`, the day without the +40 for women,
    /// the year as its last two digits (the century is not encoded).
    pub fn birth_day_month_yy(&self) -> (u32, u32, u32) {
        let encoded_day = number(&self.0[6..8]);
        let day = if encoded_day > 40 {
            encoded_day - 40
        } else {
            encoded_day
        };
        (day, number(&self.0[8..10]), number(&self.0[10..12]))
    }

    /// Whether `date` agrees with the NIK: same day, month and year modulo 100.
    pub fn matches_birth_date(&self, date: NaiveDate) -> bool {
        let (day, month, yy) = self.birth_day_month_yy();
        date.day() == day && date.month() == month && date.year().rem_euclid(100) as u32 == yy
    }

    /// The region part `PPKKCC` (6 digits): where the NIK was issued.
    pub fn region_prefix(&self) -> &str {
        &self.0[..6]
    }

    /// For logs and reports, e.g. `5301********0001`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

impl fmt::Debug for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Nik").field(&self.masked()).finish()
    }
}

impl AsRef<str> for Nik {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nik {
    type Error = NikError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Nik> for String {
    fn from(value: Nik) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 53 NTT, 01 regency, 23 district, born 15-08-84, serial 0001.
    const MAN: &str = "5301231508840001";
    // Same, a woman: day 15 + 40 = 55.
    const WOMAN: &str = "5301235508840002";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_valid_nik_is_accepted_with_its_parts() {
        let nik = Nik::parse(MAN).unwrap();
        assert_eq!(nik.as_str(), MAN);
        assert_eq!(nik.sex(), Sex::Male);
        assert_eq!(nik.birth_day_month_yy(), (15, 8, 84));
        assert_eq!(nik.region_prefix(), "530123");
        assert_eq!(nik.masked(), "5301********0001");
    }

    #[test]
    fn a_womans_nik_has_forty_added_to_the_day() {
        let nik = Nik::parse(WOMAN).unwrap();
        assert_eq!(nik.sex(), Sex::Female);
        assert_eq!(nik.birth_day_month_yy(), (15, 8, 84));
        // Day 41 is the 1st for a woman.
        let first = Nik::parse("3171014101900003").unwrap();
        assert_eq!(first.sex(), Sex::Female);
        assert_eq!(first.birth_day_month_yy(), (1, 1, 90));
        // Day 71 is the 31st.
        assert!(Nik::parse("3171017101900003").is_ok());
    }

    #[test]
    fn separators_are_stripped() {
        let expected = Nik::parse(MAN).unwrap();
        for input in [
            "5301 2315 0884 0001",
            "53.01.23.150884.0001",
            "530123-150884-0001",
            " 5301231508840001 ",
        ] {
            assert_eq!(Nik::parse(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn bad_niks_are_rejected_with_the_reason() {
        use NikError::*;
        let cases = [
            ("", Empty),
            (" - ", Empty),
            ("530123150884000", WrongLength(15)),
            ("53012315088400011", WrongLength(17)),
            ("5301231508840O01", NotDigits),
            ("1001231508840001", UnknownProvince(10)),
            ("0001231508840001", UnknownProvince(0)),
            ("9701231508840001", UnknownProvince(97)),
            ("5300231508840001", ZeroRegency),
            ("5301001508840001", ZeroDistrict),
            ("5301233208840001", BadDay(32)),
            ("5301230008840001", BadDay(0)),
            ("5301234008840001", BadDay(40)),
            ("5301237208840001", BadDay(72)),
            ("5301231513840001", BadMonth(13)),
            ("5301231500840001", BadMonth(0)),
            ("5301233102840001", NoSuchDate { day: 31, month: 2 }),
            ("5301233104840001", NoSuchDate { day: 31, month: 4 }),
            ("5301237102840001", NoSuchDate { day: 31, month: 2 }),
            ("5301232902850001", NoSuchDate { day: 29, month: 2 }),
            ("5301231508840000", ZeroSerial),
        ];
        for (input, expected) in cases {
            assert_eq!(Nik::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn february_29_needs_a_possible_leap_year() {
        assert!(Nik::parse("5301232902840001").is_ok());
        assert!(Nik::parse("5301236902000001").is_ok()); // 2000 was a leap year
        assert!(Nik::parse("5301232902850001").is_err());
    }

    #[test]
    fn birth_dates_match_on_day_month_and_two_digit_year() {
        let nik = Nik::parse(WOMAN).unwrap();
        assert!(nik.matches_birth_date(date(1984, 8, 15)));
        assert!(nik.matches_birth_date(date(2084, 8, 15)));
        assert!(!nik.matches_birth_date(date(1984, 8, 16)));
        assert!(!nik.matches_birth_date(date(1984, 9, 15)));
        assert!(!nik.matches_birth_date(date(1985, 8, 15)));
    }

    #[test]
    fn errors_and_debug_never_show_the_nik() {
        let nik = Nik::parse(MAN).unwrap();
        assert!(!format!("{nik:?}").contains(MAN));
        for input in ["530123150884000", "5301233208840001", "5301231508840000"] {
            let message = Nik::parse(input).unwrap_err().to_string();
            assert!(!message.contains(input), "{message}");
        }
        assert_eq!(
            Nik::parse("530123150884000").unwrap_err().to_string(),
            "NIK has 15 digits; a NIK has 16 digits"
        );
        assert!(
            Nik::parse("5301233208840001")
                .unwrap_err()
                .to_string()
                .starts_with("day 32 in the NIK is not a date")
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let nik: Nik = serde_json::from_str("\"5301 2315 0884 0001\"").unwrap();
        assert_eq!(serde_json::to_string(&nik).unwrap(), format!("\"{MAN}\""));
        assert!(serde_json::from_str::<Nik>("\"5301231508840000\"").is_err());
    }
}
