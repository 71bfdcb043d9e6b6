//! Domain types: every value a recipient record carries, parsed once at the edge into a newtype
//! with a private field, so the rest of salur never sees an unchecked NIK or a float amount.
//!
//! # Layout
//! - [`Actor`] (`actor.rs`): who caused a change (person and token), for the audit trail.
//! - [`Nik`] (`nik.rs`) and [`Kk`] (`kk.rs`): the 16-digit population and family-card numbers.
//! - [`RegionCode`] (`region.rs`): Kemendagri village or district code; also the province list
//!   that NIK and KK prefixes are checked against.
//! - [`Amount`] (`amount.rs`): rupiah as a `Decimal`, never a float; [`AmountRange`], the
//!   amounts one recipient may be paid.
//! - [`date::parse_date`] (`date.rs`): the three date spellings offices use.
//! - [`Sex`] (`sex.rs`), [`BankCode`] and [`AccountNumber`] (`bank.rs`).
//! - [`name`]: name normalisation and the bank-name match used at verification.
//! - [`mask`]: masking of identifiers for logs and reports.
//! - [`RawRecord`] (`raw.rs`): an office row as written, unvalidated; the one list of a
//!   record's office fields.
//! - [`Recipient`] and [`validate`] (`recipient.rs`): a whole office row, with one [`Reason`]
//!   per problem when it cannot be accepted.
//! - [`text`]: the rules of every text value (no control characters, a length per field).
//! - [`AllowedAmounts`] and [`validate_for`] (`programme.rs`): the amounts a programme pays,
//!   and validation with them (`AMOUNT_NOT_ALLOWED`).
//! - [`Reason`] and [`ReasonCode`] (`reason.rs`): why a record stopped.
//! - [`lifecycle`]: the record's [`State`]s, the [`Stage`]s, the one table of which state waits
//!   for what and goes where, and the [`Outcome`]s a stage decides.
//!
//! Personal data: no parse error, reason message or `Debug` output of these types contains a
//! NIK, KK, account number or name in clear.

mod actor;
mod amount;
mod bank;
pub mod date;
mod kk;
pub mod lifecycle;
pub mod mask;
pub mod name;
mod nik;
mod programme;
mod raw;
mod reason;
mod recipient;
mod region;
mod sex;
pub mod text;

pub use actor::Actor;
pub use amount::{Amount, AmountError, AmountRange, HARD_MAX as AMOUNT_HARD_MAX, rupiah};
pub use bank::{AccountNumber, AccountNumberError, BankCode, BankCodeError};
pub use date::parse_date;
pub use kk::{Kk, KkError};
pub use lifecycle::{Outcome, Stage, State};
pub use mask::{mask_all_digits, mask_digits, mask_words, spreadsheet_safe};
pub use name::{names_match, normalise_name};
pub use nik::{Nik, NikError};
pub use programme::{AllowedAmounts, validate_for};
pub use raw::RawRecord;
pub use reason::{Reason, ReasonCode};
pub use recipient::{Recipient, validate};
pub use region::{RegionCode, RegionCodeError};
pub use sex::{Sex, SexError};
pub use text::{TextError, check_text};

/// Removes the separators offices type inside long numbers: whitespace, dots and dashes.
fn strip_separators(input: &str) -> String {
    input
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '.' || *c == '-'))
        .collect()
}

/// The decimal value of a run of ASCII digits (callers have checked it is one, and short).
fn number(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
}

/// Whether `day`/`month` exist in a year ending in `yy`, in the 1900s or 2000s: 29 February is
/// possible whenever `yy` is a multiple of 4 (2000 was a leap year, so `00` counts).
fn day_exists(day: u32, month: u32, yy: u32) -> bool {
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if yy.is_multiple_of(4) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=last).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_stripped() {
        assert_eq!(strip_separators(" 53.01-23 45 "), "53012345");
        assert_eq!(strip_separators("12 34.56-78"), "12345678");
    }

    #[test]
    fn days_exist_only_in_their_months() {
        assert!(day_exists(31, 1, 90));
        assert!(!day_exists(31, 4, 90));
        assert!(day_exists(29, 2, 0));
        assert!(day_exists(29, 2, 84));
        assert!(!day_exists(29, 2, 85));
        assert!(!day_exists(0, 1, 85));
        assert!(!day_exists(1, 13, 85));
    }
}
