//! A whole office row, validated: the administrative data account opening needs.

use super::{
    AccountNumber, Amount, AmountRange, BankCode, BankCodeError, Kk, Nik, RawRecord, Reason,
    ReasonCode, RegionCode, Sex, SexError, parse_date,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One recipient with complete, valid administrative data. Text fields are trimmed and never
/// empty.
///
/// `Debug` shows only masked identifiers and non-personal fields, so a `Recipient` can be
/// logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub nik: Nik,
    pub kk: Kk,
    pub name: String,
    pub mother_name: String,
    pub birth_place: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub address: String,
    pub region: RegionCode,
    /// Not validated beyond trimming; `None` when empty or `-`.
    pub phone: Option<String>,
    pub bank: BankCode,
    /// Optional: an account may be opened for the recipient.
    pub account_number: Option<AccountNumber>,
    pub amount: Amount,
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("nik", &self.nik)
            .field("region", &self.region)
            .field("bank", &self.bank)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// The trimmed value of a cell, `None` when it is absent, blank or only dashes (how offices
/// write "nothing").
fn present(cell: &Option<String>) -> Option<&str> {
    let text = cell.as_deref()?.trim();
    if text.is_empty() || text.chars().all(|c| c == '-') {
        None
    } else {
        Some(text)
    }
}

/// Validates every field of `raw`. On failure returns one [`Reason`] per problem, all of them,
/// so the office can fix the row in one go. Messages never contain the offending values. The
/// amount must lie in `range` (see [`AmountRange`]).
pub fn validate(raw: &RawRecord, range: &AmountRange) -> Result<Recipient, Vec<Reason>> {
    let mut reasons = Vec::new();
    let mut problem = |code: ReasonCode, field: &str, message: String| {
        reasons.push(Reason::new(code, field, message));
    };

    let nik = match present(&raw.nik) {
        None => {
            problem(
                ReasonCode::NikMissing,
                "nik",
                "NIK is missing; enter the recipient's 16-digit NIK from the KTP or family card"
                    .into(),
            );
            None
        }
        Some(text) => Nik::parse(text)
            .map_err(|e| problem(ReasonCode::NikInvalid, "nik", capitalise(&e.to_string())))
            .ok(),
    };

    let kk = match present(&raw.kk) {
        None => {
            problem(
                ReasonCode::KkMissing,
                "kk",
                "KK number is missing; enter the 16-digit number of the recipient's family card (Kartu Keluarga)".into(),
            );
            None
        }
        Some(text) => Kk::parse(text)
            .map_err(|e| problem(ReasonCode::KkInvalid, "kk", capitalise(&e.to_string())))
            .ok(),
    };

    let name = required_text(
        &mut problem,
        &raw.name,
        ReasonCode::NameMissing,
        "name",
        "The recipient's name",
    );
    let mother_name = required_text(
        &mut problem,
        &raw.mother_name,
        ReasonCode::MotherNameMissing,
        "mother_name",
        "The mother's maiden name",
    );
    let birth_place = required_text(
        &mut problem,
        &raw.birth_place,
        ReasonCode::BirthPlaceMissing,
        "birth_place",
        "The birth place",
    );

    let birth_date = match present(&raw.birth_date) {
        None => {
            problem(
                ReasonCode::BirthDateMissing,
                "birth_date",
                "Birth date is missing; write it as YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY".into(),
            );
            None
        }
        Some(text) => {
            let date = parse_date(text);
            if date.is_none() {
                problem(
                    ReasonCode::BirthDateInvalid,
                    "birth_date",
                    "Birth date is not a real date in a known format; write it as YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY with a 4-digit year".into(),
                );
            }
            date
        }
    };

    let sex = match present(&raw.sex).map(Sex::parse) {
        None | Some(Err(SexError::Empty)) => {
            problem(
                ReasonCode::SexMissing,
                "sex",
                "Sex is missing; write L (laki-laki) or P (perempuan)".into(),
            );
            None
        }
        Some(Err(e)) => {
            problem(ReasonCode::SexInvalid, "sex", capitalise(&e.to_string()));
            None
        }
        Some(Ok(sex)) => Some(sex),
    };

    let address = required_text(
        &mut problem,
        &raw.address,
        ReasonCode::AddressMissing,
        "address",
        "The address",
    );

    let region = match present(&raw.region_code) {
        None => {
            problem(
                ReasonCode::RegionCodeMissing,
                "region_code",
                "Region code is missing; write the Kemendagri village code, e.g. 53.01.01.2001"
                    .into(),
            );
            None
        }
        Some(text) => RegionCode::parse(text)
            .map_err(|e| {
                problem(
                    ReasonCode::RegionCodeInvalid,
                    "region_code",
                    capitalise(&e.to_string()),
                )
            })
            .ok(),
    };

    let bank = match present(&raw.bank_code).map(BankCode::parse) {
        None | Some(Err(BankCodeError::Empty)) => {
            problem(
                ReasonCode::BankUnknown,
                "bank_code",
                "Bank code is missing; write the 3-digit Bank Indonesia code of the recipient's bank, e.g. 002 for BRI".into(),
            );
            None
        }
        Some(Err(e)) => {
            problem(
                ReasonCode::BankUnknown,
                "bank_code",
                capitalise(&e.to_string()),
            );
            None
        }
        Some(Ok(bank)) => Some(bank),
    };

    let account_number = match present(&raw.account_number) {
        None => Some(None),
        Some(text) => match AccountNumber::parse(text) {
            Ok(account) => Some(Some(account)),
            Err(e) => {
                problem(
                    ReasonCode::AccountNumberInvalid,
                    "account_number",
                    format!(
                        "{}; leave it empty if the recipient has no account yet",
                        capitalise(&e.to_string())
                    ),
                );
                None
            }
        },
    };

    let amount = match present(&raw.amount) {
        None => {
            problem(
                ReasonCode::AmountInvalid,
                "amount",
                "Amount is missing; write the rupiah amount like 600000, 600000.00, 600.000 or Rp 600.000,00".into(),
            );
            None
        }
        Some(text) => range
            .parse(text)
            .map_err(|e| {
                problem(
                    ReasonCode::AmountInvalid,
                    "amount",
                    capitalise(&e.to_string()),
                )
            })
            .ok(),
    };

    if let (Some(nik), Some(date)) = (&nik, birth_date)
        && !nik.matches_birth_date(date)
    {
        problem(
                ReasonCode::NikBirthDateMismatch,
                "birth_date",
                "Birth date does not match the date in the NIK (digits 7–12, DDMMYY, with 40 added to the day for women); check both against the KTP".into(),
            );
    }
    if let (Some(nik), Some(sex)) = (&nik, sex)
        && nik.sex() != sex
    {
        problem(
                ReasonCode::NikSexMismatch,
                "sex",
                "Sex does not match the NIK (women's NIKs have 40 added to the birth day, digits 7–8); check both against the KTP".into(),
            );
    }

    match (
        nik,
        kk,
        name,
        mother_name,
        birth_place,
        birth_date,
        sex,
        address,
        region,
        bank,
        account_number,
        amount,
    ) {
        (
            Some(nik),
            Some(kk),
            Some(name),
            Some(mother_name),
            Some(birth_place),
            Some(birth_date),
            Some(sex),
            Some(address),
            Some(region),
            Some(bank),
            Some(account_number),
            Some(amount),
        ) if reasons.is_empty() => Ok(Recipient {
            nik,
            kk,
            name,
            mother_name,
            birth_place,
            birth_date,
            sex,
            address,
            region,
            phone: present(&raw.phone).map(str::to_owned),
            bank,
            account_number,
            amount,
        }),
        _ => Err(reasons),
    }
}

/// The trimmed text of a required cell, or a `*_MISSING` reason.
fn required_text(
    problem: &mut impl FnMut(ReasonCode, &str, String),
    cell: &Option<String>,
    code: ReasonCode,
    field: &str,
    what: &str,
) -> Option<String> {
    let value = present(cell).map(str::to_owned);
    if value.is_none() {
        problem(
            code,
            field,
            format!("{what} is missing; the bank needs it to open the recipient's account"),
        );
    }
    value
}

/// Error messages start in lower case (they compose into sentences); a reason message is a
/// sentence on its own.
fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIK: &str = "5301235508840002"; // a woman born 15-08-84
    const KK: &str = "5301231203150001";

    fn cell(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    fn complete() -> RawRecord {
        RawRecord {
            row: 1,
            nik: cell(NIK),
            kk: cell(KK),
            name: cell("  Siti Aminah "),
            mother_name: cell("Maria Goreti"),
            birth_place: cell("Kupang"),
            birth_date: cell("15/08/1984"),
            sex: cell("P"),
            address: cell("Jl. El Tari No. 5, RT 01 RW 02"),
            region_code: cell("53.01.01.2001"),
            phone: cell(" 081234567890 "),
            bank_code: cell("002"),
            account_number: None,
            amount: cell("Rp 600.000,00"),
        }
    }

    fn codes(raw: &RawRecord) -> Vec<ReasonCode> {
        validate(raw, &AmountRange::DEFAULT)
            .unwrap_err()
            .iter()
            .map(|r| r.code)
            .collect()
    }

    #[test]
    fn a_complete_record_is_accepted() {
        let recipient = validate(&complete(), &AmountRange::DEFAULT).unwrap();
        assert_eq!(recipient.nik.as_str(), NIK);
        assert_eq!(recipient.kk.as_str(), KK);
        assert_eq!(recipient.name, "Siti Aminah");
        assert_eq!(
            recipient.birth_date,
            NaiveDate::from_ymd_opt(1984, 8, 15).unwrap()
        );
        assert_eq!(recipient.sex, Sex::Female);
        assert_eq!(recipient.region.as_str(), "5301012001");
        assert_eq!(recipient.phone.as_deref(), Some("081234567890"));
        assert_eq!(recipient.bank.name(), "BRI");
        assert_eq!(recipient.account_number, None);
        assert_eq!(recipient.amount.to_snap_string(), "600000.00");
    }

    #[test]
    fn an_optional_account_number_and_phone_are_kept_or_left_out() {
        let mut raw = complete();
        raw.account_number = cell("0123 4567 890");
        raw.phone = cell("-");
        let recipient = validate(&raw, &AmountRange::DEFAULT).unwrap();
        assert_eq!(recipient.account_number.unwrap().as_str(), "01234567890");
        assert_eq!(recipient.phone, None);
    }

    #[test]
    fn every_missing_field_gets_its_own_reason() {
        let raw = RawRecord {
            row: 7,
            nik: None,
            kk: cell("   "),
            name: cell("-"),
            mother_name: None,
            birth_place: cell("Kupang"),
            birth_date: None,
            sex: None,
            address: cell(" - "),
            region_code: None,
            phone: None,
            bank_code: None,
            account_number: None,
            amount: None,
        };
        let reasons = validate(&raw, &AmountRange::DEFAULT).unwrap_err();
        let got: Vec<(ReasonCode, &str)> =
            reasons.iter().map(|r| (r.code, r.field.as_str())).collect();
        use ReasonCode::*;
        assert_eq!(
            got,
            vec![
                (NikMissing, "nik"),
                (KkMissing, "kk"),
                (NameMissing, "name"),
                (MotherNameMissing, "mother_name"),
                (BirthDateMissing, "birth_date"),
                (SexMissing, "sex"),
                (AddressMissing, "address"),
                (RegionCodeMissing, "region_code"),
                (BankUnknown, "bank_code"),
                (AmountInvalid, "amount"),
            ]
        );
        assert!(reasons.iter().all(|r| !r.message.is_empty()));
    }

    #[test]
    fn an_empty_record_lists_every_required_field() {
        let reasons = validate(&RawRecord::default(), &AmountRange::DEFAULT).unwrap_err();
        let fields: Vec<&str> = reasons.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "nik",
                "kk",
                "name",
                "mother_name",
                "birth_place",
                "birth_date",
                "sex",
                "address",
                "region_code",
                "bank_code",
                "amount",
            ]
        );
    }

    #[test]
    fn invalid_values_get_invalid_codes() {
        let raw = RawRecord {
            nik: cell("530123550884000"),
            kk: cell("5301233202150001"),
            birth_date: cell("31/02/1984"),
            sex: cell("X"),
            region_code: cell("10.01.01.2001"),
            bank_code: cell("999"),
            account_number: cell("12-34"),
            amount: cell("-5"),
            ..complete()
        };
        use ReasonCode::*;
        assert_eq!(
            codes(&raw),
            vec![
                NikInvalid,
                KkInvalid,
                BirthDateInvalid,
                SexInvalid,
                RegionCodeInvalid,
                BankUnknown,
                AccountNumberInvalid,
                AmountInvalid,
            ]
        );
    }

    #[test]
    fn birth_date_and_sex_must_agree_with_the_nik() {
        let raw = RawRecord {
            birth_date: cell("1984-08-16"),
            sex: cell("Laki-laki"),
            ..complete()
        };
        let reasons = validate(&raw, &AmountRange::DEFAULT).unwrap_err();
        let got: Vec<(ReasonCode, &str)> =
            reasons.iter().map(|r| (r.code, r.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (ReasonCode::NikBirthDateMismatch, "birth_date"),
                (ReasonCode::NikSexMismatch, "sex"),
            ]
        );
    }

    #[test]
    fn mismatches_are_not_reported_when_either_side_is_invalid() {
        let raw = RawRecord {
            nik: cell("5301235508840000"),
            birth_date: cell("1984-08-16"),
            sex: cell("L"),
            ..complete()
        };
        assert_eq!(codes(&raw), vec![ReasonCode::NikInvalid]);
        let raw = RawRecord {
            birth_date: cell("1984-02-30"),
            sex: cell("?"),
            ..complete()
        };
        assert_eq!(
            codes(&raw),
            vec![ReasonCode::BirthDateInvalid, ReasonCode::SexInvalid]
        );
    }

    #[test]
    fn messages_never_contain_the_offending_personal_data() {
        let bad_nik = "5301233208840001";
        let bad_kk = "5301233202150001";
        let bad_account = "12345678901234567890123";
        let raw = RawRecord {
            nik: cell(bad_nik),
            kk: cell(bad_kk),
            account_number: cell(bad_account),
            ..complete()
        };
        let reasons = validate(&raw, &AmountRange::DEFAULT).unwrap_err();
        assert_eq!(reasons.len(), 3);
        for reason in &reasons {
            for secret in [bad_nik, bad_kk, bad_account, "Siti Aminah", "Maria Goreti"] {
                assert!(!reason.message.contains(secret), "{}", reason.message);
            }
            assert!(
                reason.message.starts_with(char::is_uppercase),
                "{}",
                reason.message
            );
        }
        assert_eq!(
            reasons[0].message,
            "Day 32 in the NIK is not a date; the day (digits 7–8) is 01–31 for men, and women's NIKs add 40 to the day (41–71)"
        );
        let short = RawRecord {
            nik: cell("530123550884000"),
            ..complete()
        };
        assert_eq!(
            validate(&short, &AmountRange::DEFAULT).unwrap_err()[0].message,
            "NIK has 15 digits; a NIK has 16 digits"
        );
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let shown = format!(
            "{:?}",
            validate(&complete(), &AmountRange::DEFAULT).unwrap()
        );
        for secret in [NIK, KK, "Siti", "Maria", "Kupang", "El Tari", "0812"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
