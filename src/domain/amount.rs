//! Amounts in rupiah, as offices write them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A positive amount of rupiah with at most 2 decimals. Always a `Decimal`, never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount(Decimal);

const ACCEPTED: &str = "write it like 600000, 600000.00, 600.000, Rp600.000 or Rp 600.000,00";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty; {ACCEPTED}")]
    Empty,
    #[error("the amount is not a number of rupiah; {ACCEPTED}")]
    NotANumber,
    #[error("the amount is negative; it must be more than Rp 0")]
    Negative,
    #[error("the amount is zero; it must be more than Rp 0")]
    Zero,
    #[error(
        "the amount has more than 2 decimals; a comma is the decimal separator and dots separate thousands ({ACCEPTED})"
    )]
    TooManyDecimals,
    #[error("the amount is too large to be a payment")]
    TooLarge,
}

impl Amount {
    /// Accepts an optional leading `Rp`/`Rp.` (any case) then:
    /// - with a comma: the comma is the decimal separator and dots separate thousands
    ///   (`600.000,00`);
    /// - else dots between groups of exactly 3 digits after a first group of 1–3 digits are
    ///   thousands separators (`600.000`, `1.500.000`);
    /// - else a single dot is the decimal point (`600000.00`).
    pub fn parse(input: &str) -> Result<Amount, AmountError> {
        let mut text = input.trim();
        if text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("rp")) {
            text = text[2..]
                .strip_prefix('.')
                .unwrap_or(&text[2..])
                .trim_start();
        }
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let negative = text.starts_with('-');
        if negative {
            text = text[1..].trim_start();
        }
        // `decimal` is whether a decimal separator was written (then digits must follow it).
        let (whole, fraction, decimal) = if let Some((whole, fraction)) = text.split_once(',') {
            let whole = thousands(whole).ok_or(AmountError::NotANumber)?;
            (whole, fraction, true)
        } else if let Some(whole) = thousands(text).filter(|_| text.contains('.')) {
            (whole, "", false)
        } else if let Some((whole, fraction)) = text.split_once('.') {
            (whole.to_owned(), fraction, true)
        } else {
            (text.to_owned(), "", false)
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(&whole)
            || !all_digits(fraction)
            || (decimal && fraction.is_empty())
        {
            return Err(AmountError::NotANumber);
        }
        if negative {
            return Err(AmountError::Negative);
        }
        if fraction.len() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        let literal = if fraction.is_empty() {
            whole
        } else {
            format!("{whole}.{fraction}")
        };
        let value = Decimal::from_str(&literal).map_err(|_| AmountError::TooLarge)?;
        Self::try_from(value)
    }

    /// The amount as a decimal number of rupiah.
    pub fn value(&self) -> Decimal {
        self.0
    }

    /// The bank-contract spelling: always 2 decimals, dot separator, e.g. `600000.00`.
    pub fn to_snap_string(&self) -> String {
        let mut value = self.0;
        value.rescale(2);
        value.to_string()
    }
}

/// `text` with its thousands dots removed, if it is digits grouped by dots as `1.500.000`
/// (first group 1–3 digits not starting with 0, then groups of exactly 3), or plain digits.
fn thousands(text: &str) -> Option<String> {
    let groups: Vec<&str> = text.split('.').collect();
    let all_digits = groups
        .iter()
        .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
    if !all_digits {
        return None;
    }
    if groups.len() > 1
        && !((1..=3).contains(&groups[0].len())
            && !groups[0].starts_with('0')
            && groups[1..].iter().all(|g| g.len() == 3))
    {
        return None;
    }
    Some(groups.concat())
}

impl TryFrom<Decimal> for Amount {
    type Error = AmountError;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        if value.is_zero() {
            return Err(AmountError::Zero);
        }
        if value.normalize().scale() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        Ok(Self(value))
    }
}

impl TryFrom<String> for Amount {
    type Error = AmountError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Amount> for String {
    fn from(value: Amount) -> Self {
        value.to_snap_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Decimal {
        Amount::parse(text).unwrap().value()
    }

    #[test]
    fn every_office_spelling_is_accepted() {
        let six_hundred_thousand = Decimal::from(600_000);
        for text in [
            "600000",
            "600000.00",
            "600.000",
            "Rp600.000",
            "Rp 600.000,00",
            "rp 600.000",
            "Rp.600.000",
            "RP. 600.000,00",
            "600000,00",
            "600000,0",
            " 600000 ",
        ] {
            assert_eq!(amount(text), six_hundred_thousand, "{text:?}");
        }
    }

    #[test]
    fn dots_are_thousands_only_between_groups_of_three() {
        assert_eq!(amount("1.500.000"), Decimal::from(1_500_000));
        assert_eq!(amount("1.500.000,50"), Decimal::new(150_000_050, 2));
        assert_eq!(amount("600.5"), Decimal::new(6005, 1));
        assert_eq!(amount("600000.5"), Decimal::new(6_000_005, 1));
        assert_eq!(amount("1.50"), Decimal::new(150, 2));
        assert_eq!(amount("1.500"), Decimal::from(1500));
    }

    #[test]
    fn bad_amounts_are_rejected_with_the_reason() {
        use AmountError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("Rp", Empty),
            ("Rp. ", Empty),
            ("0", Zero),
            ("0,00", Zero),
            ("Rp 0", Zero),
            ("-5", Negative),
            ("-600.000", Negative),
            ("1.2.3", NotANumber),
            ("600000.001", TooManyDecimals),
            ("600,000", TooManyDecimals),
            ("0.500", TooManyDecimals),
            ("abc", NotANumber),
            ("600000abc", NotANumber),
            ("IDR 600,000", NotANumber),
            ("600 000", NotANumber),
            ("600000.", NotANumber),
            (".50", NotANumber),
            ("600,", NotANumber),
            ("600.000,00,0", NotANumber),
            ("60.00.000", NotANumber),
            ("1e5", NotANumber),
            ("€600", NotANumber),
            ("é", NotANumber),
            ("Rp€", NotANumber),
            ("+600000", NotANumber),
            ("99999999999999999999999999999999", TooLarge),
        ];
        for (text, expected) in cases {
            assert_eq!(Amount::parse(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn the_snap_string_always_has_two_decimals() {
        assert_eq!(
            Amount::parse("600.000").unwrap().to_snap_string(),
            "600000.00"
        );
        assert_eq!(
            Amount::parse("600000.5").unwrap().to_snap_string(),
            "600000.50"
        );
        assert_eq!(
            Amount::parse("Rp 600.000,00").unwrap().to_snap_string(),
            "600000.00"
        );
    }

    #[test]
    fn decimals_are_checked_like_text() {
        assert!(Amount::try_from(Decimal::new(600_000_001, 3)).is_err());
        assert_eq!(
            Amount::try_from(Decimal::new(-1, 0)),
            Err(AmountError::Negative)
        );
        // Trailing zeros beyond 2 decimals are still at most 2 decimals.
        assert!(Amount::try_from(Decimal::new(600_000_000, 3)).is_ok());
    }

    #[test]
    fn serde_uses_the_snap_string() {
        let amount = Amount::parse("600.000").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"600000.00\"");
        let back: Amount = serde_json::from_str("\"600000.00\"").unwrap();
        assert_eq!(back, amount);
    }
}
