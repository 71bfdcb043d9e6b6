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
    #[error(
        "the amount is too large to be a payment (salur never pays more than Rp1.000.000.000.000 to one recipient)"
    )]
    TooLarge,
    #[error("the amount is below the minimum of {} per recipient; check it (the operator sets the range with SALUR_AMOUNT_MIN)", rupiah_of(.min))]
    BelowMinimum { min: Decimal },
    #[error("the amount is above the maximum of {} per recipient; check it (the operator sets the range with SALUR_AMOUNT_MAX)", rupiah_of(.max))]
    AboveMaximum { max: Decimal },
}

/// The largest amount salur ever takes for one recipient, whatever the configuration: Rp 1
/// trillion. It fits the `numeric(18, 2)` columns (up to 10^16) with room for sums.
pub const HARD_MAX: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// The amounts one recipient may be paid: a record whose amount is outside is blocked with
/// `AMOUNT_INVALID` and the limit in its message. Today one range for every programme, from
/// `SALUR_AMOUNT_MIN` / `SALUR_AMOUNT_MAX`; per-programme ranges plug in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountRange {
    min: Decimal,
    max: Decimal,
}

impl AmountRange {
    /// Rp 10.000 to Rp 10.000.000: above any rounding error or test payment, below a year of
    /// every PKH component together.
    pub const DEFAULT: AmountRange = AmountRange {
        min: Decimal::from_parts(10_000, 0, 0, false, 0),
        max: Decimal::from_parts(10_000_000, 0, 0, false, 0),
    };

    /// Every amount salur ever takes (Rp 0,01 to [`HARD_MAX`]): for reading back a record that
    /// already passed the configured range when it entered account opening.
    pub const WIDEST: AmountRange = AmountRange {
        min: Decimal::from_parts(1, 0, 0, false, 2),
        max: HARD_MAX,
    };

    /// A range with `0 < min <= max <= HARD_MAX`, both with at most 2 decimals.
    pub fn new(min: Decimal, max: Decimal) -> Result<Self, String> {
        let min_ok = Amount::try_from(min).is_ok();
        let max_ok = Amount::try_from(max).is_ok();
        if !min_ok || !max_ok || min > max {
            return Err(format!(
                "the amount range {min}..{max} is not valid: both must be more than 0 with at most 2 decimals, the minimum at most the maximum, the maximum at most {}",
                rupiah(HARD_MAX)
            ));
        }
        Ok(Self { min, max })
    }

    pub fn min(&self) -> Decimal {
        self.min
    }

    pub fn max(&self) -> Decimal {
        self.max
    }

    /// Parses an amount as offices write it and checks it against the range: the one check
    /// of an amount, used by intake's typed column, the stages and the fix path alike.
    pub fn parse(&self, text: &str) -> Result<Amount, AmountError> {
        let amount = Amount::parse(text)?;
        if amount.0 < self.min {
            return Err(AmountError::BelowMinimum { min: self.min });
        }
        if amount.0 > self.max {
            return Err(AmountError::AboveMaximum { max: self.max });
        }
        Ok(amount)
    }
}

impl Default for AmountRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `Rp1.542.000.000` (with `,50` when there are cents), as offices write it.
pub fn rupiah(amount: Decimal) -> String {
    let rounded = amount.round_dp(2);
    let whole = rounded.trunc().abs().to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let cents = ((rounded.fract().abs()) * Decimal::from(100)).trunc();
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    if cents.is_zero() {
        format!("{sign}Rp{grouped}")
    } else {
        format!("{sign}Rp{grouped},{cents:0>2}")
    }
}

fn rupiah_of(amount: &Decimal) -> String {
    rupiah(*amount)
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
        if value > HARD_MAX {
            return Err(AmountError::TooLarge);
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
    fn nothing_above_the_hard_maximum_is_an_amount() {
        assert_eq!(HARD_MAX, Decimal::from(1_000_000_000_000i64));
        assert!(Amount::parse("1000000000000").is_ok());
        for text in [
            "1000000000000.01",
            "9999999999999999.99",
            "100000000000000000",
        ] {
            assert_eq!(Amount::parse(text), Err(AmountError::TooLarge), "{text}");
        }
    }

    #[test]
    fn the_range_refuses_rp_1_and_one_cent_by_default_and_names_its_limit() {
        let range = AmountRange::DEFAULT;
        assert!(range.parse("600.000").is_ok());
        assert!(range.parse("10000").is_ok());
        assert!(range.parse("10000000").is_ok());
        for text in ["1", "0.01", "9999.99"] {
            let e = range.parse(text).unwrap_err();
            assert_eq!(e, AmountError::BelowMinimum { min: range.min() });
            assert!(e.to_string().contains("Rp10.000 "), "{e}");
        }
        let e = range.parse("10000000.01").unwrap_err();
        assert!(e.to_string().contains("Rp10.000.000 "), "{e}");
        assert!(AmountRange::new(Decimal::ONE, HARD_MAX).is_ok());
        assert!(AmountRange::new(Decimal::ONE, HARD_MAX + Decimal::ONE).is_err());
        assert!(AmountRange::new(Decimal::TEN, Decimal::ONE).is_err());
        assert!(AmountRange::new(Decimal::ZERO, Decimal::ONE).is_err());
        assert_eq!(rupiah(Decimal::new(150000050, 2)), "Rp1.500.000,50");
        assert_eq!(rupiah(Decimal::from(999)), "Rp999");
    }

    #[test]
    fn serde_uses_the_snap_string() {
        let amount = Amount::parse("600.000").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"600000.00\"");
        let back: Amount = serde_json::from_str("\"600000.00\"").unwrap();
        assert_eq!(back, amount);
    }
}
