//! The untyped shape of one office row.

use serde::{Deserialize, Serialize};

/// One recipient as the office wrote it: every value is the trimmed text of its cell, `None`
/// when the cell is empty. Nothing is validated here; [`crate::domain::validate`] does that.
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

impl RawRecord {
    /// The values in file order: the order of [`crate::intake::file::field_keys`] and of the
    /// office's CSV columns.
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
}
