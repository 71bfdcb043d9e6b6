//! The untyped shape of one office row: the record's office fields, listed once.

use super::mask::{mask_all_digits, mask_digits, mask_words};
use serde::{Deserialize, Serialize};

/// One recipient as the office wrote it: every value is the trimmed text of its cell, `None`
/// when the cell is empty. Nothing is validated here; [`crate::domain::validate`] does that.
///
/// This is the one list of a record's office fields: intake fills it, the store seals and
/// stores it ([`RawRecord::KEYS`] are its columns), corrections set it by key, and display masks
/// it ([`RawRecord::masked`]). Adding a field means adding it here (and to intake's accepted
/// header names and a migration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// 1-based position of the recipient in the file (the first data row is 1).
    pub row: u32,
    pub nik: Option<String>,
    pub kk: Option<String>,
    pub name: Option<String>,
    pub mother_name: Option<String>,
    pub birth_place: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub address: Option<String>,
    pub region_code: Option<String>,
    pub phone: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    pub amount: Option<String>,
}

/// How a field is shown to people: masked, or as it is (codes and the amount are not personal).
pub type Mask = fn(&str) -> String;

fn as_is(value: &str) -> String {
    value.to_owned()
}

impl RawRecord {
    /// The fields' English keys in file order: the order of [`RawRecord::values`], of the
    /// office's CSV columns and of intake's field table.
    pub const KEYS: [&'static str; 13] = [
        "nik",
        "kk",
        "name",
        "mother_name",
        "birth_place",
        "birth_date",
        "sex",
        "address",
        "region_code",
        "phone",
        "bank_code",
        "account_number",
        "amount",
    ];

    /// How each field of [`RawRecord::KEYS`] is shown: masked, or as it is.
    const MASKS: [Mask; 13] = [
        mask_digits,
        mask_digits,
        mask_words,
        mask_words,
        mask_words,
        mask_all_digits,
        as_is,
        mask_words,
        as_is,
        mask_digits,
        as_is,
        mask_digits,
        as_is,
    ];

    /// The values in file order ([`RawRecord::KEYS`]).
    pub fn values(&self) -> [&Option<String>; 13] {
        [
            &self.nik,
            &self.kk,
            &self.name,
            &self.mother_name,
            &self.birth_place,
            &self.birth_date,
            &self.sex,
            &self.address,
            &self.region_code,
            &self.phone,
            &self.bank_code,
            &self.account_number,
            &self.amount,
        ]
    }

    /// The values in file order, to fill.
    pub fn values_mut(&mut self) -> [&mut Option<String>; 13] {
        [
            &mut self.nik,
            &mut self.kk,
            &mut self.name,
            &mut self.mother_name,
            &mut self.birth_place,
            &mut self.birth_date,
            &mut self.sex,
            &mut self.address,
            &mut self.region_code,
            &mut self.phone,
            &mut self.bank_code,
            &mut self.account_number,
            &mut self.amount,
        ]
    }

    /// `(key, value)` pairs in file order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &Option<String>)> {
        Self::KEYS.into_iter().zip(self.values())
    }

    /// The field named by its English key (`None`: no such field).
    pub fn field_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        let i = Self::KEYS.iter().position(|k| *k == key)?;
        self.values_mut().into_iter().nth(i)
    }

    /// How the field `key` is shown masked: `5301********0001` for a NIK, `M**** B***` for a
    /// name, `****-**-**` for a date; codes and the amount as they are. A key that is no field
    /// is masked as a name and a number at once (nothing recognisable is left).
    pub fn mask_of(key: &str) -> Mask {
        fn unknown(value: &str) -> String {
            mask_all_digits(&mask_words(value))
        }
        Self::KEYS
            .iter()
            .position(|k| *k == key)
            .map_or(unknown, |i| Self::MASKS[i])
    }

    /// The record with every personal value masked ([`RawRecord::mask`]).
    pub fn masked(&self) -> RawRecord {
        let mut out = RawRecord {
            row: self.row,
            ..Default::default()
        };
        for ((mask, value), slot) in Self::MASKS
            .into_iter()
            .zip(self.values())
            .zip(out.values_mut())
        {
            *slot = value.as_deref().map(mask);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_fields_agree() {
        let mut r = RawRecord::default();
        for (i, key) in RawRecord::KEYS.iter().enumerate() {
            *r.field_mut(key).expect("a field") = Some(i.to_string());
        }
        for (i, (key, value)) in r.fields().enumerate() {
            assert_eq!(key, RawRecord::KEYS[i]);
            assert_eq!(value.as_deref(), Some(i.to_string().as_str()));
        }
        assert_eq!(r.mother_name.as_deref(), Some("3"));
        assert_eq!(r.amount.as_deref(), Some("12"));
        assert!(r.field_mut("nama").is_none());
    }

    #[test]
    fn every_field_has_a_length_limit() {
        let limited = crate::domain::text::MAX_CHARS.map(|(k, _)| k);
        assert_eq!(limited, RawRecord::KEYS);
    }

    #[test]
    fn personal_values_are_masked_codes_are_not() {
        let r = RawRecord {
            row: 7,
            nik: Some("5301234567890001".into()),
            name: Some("Maria Bria".into()),
            birth_date: Some("1980-08-05".into()),
            sex: Some("P".into()),
            bank_code: Some("BRI".into()),
            amount: Some("600000".into()),
            ..Default::default()
        };
        let m = r.masked();
        assert_eq!(m.row, 7);
        assert_eq!(m.nik.as_deref(), Some("5301********0001"));
        assert_eq!(m.name.as_deref(), Some("M**** B***"));
        assert_eq!(m.birth_date.as_deref(), Some("****-**-**"));
        assert_eq!(m.sex.as_deref(), Some("P"));
        assert_eq!(m.bank_code.as_deref(), Some("BRI"));
        assert_eq!(m.amount.as_deref(), Some("600000"));
        assert_eq!(m.kk, None);
        assert_eq!(
            RawRecord::mask_of("account_number")("1234567890"),
            "******7890"
        );
        assert_eq!(RawRecord::mask_of("nama")("Siti 12"), "S*** **");
    }
}
