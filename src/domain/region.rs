//! Kemendagri region codes: `PP.KK.CC.DDDD` (village) or `PP.KK.CC` (district).

use serde::{Deserialize, Serialize};

/// The Kemendagri province codes in use, as inclusive ranges: Sumatra 11–19, Riau Islands 21,
/// Java 31–36, Bali and Nusa Tenggara 51–53, Kalimantan 61–65, Sulawesi 71–76, Maluku 81–82,
/// the Papua provinces 91–96.
const PROVINCES: &[(u32, u32)] = &[
    (11, 19),
    (21, 21),
    (31, 36),
    (51, 53),
    (61, 65),
    (71, 76),
    (81, 82),
    (91, 96),
];

/// Whether `code` is a Kemendagri province code that exists.
pub(crate) fn is_known_province(code: u32) -> bool {
    PROVINCES
        .iter()
        .any(|(low, high)| (*low..=*high).contains(&code))
}

/// What is wrong with the `PPKKCC` prefix shared by region codes, NIKs and KK numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixProblem {
    UnknownProvince(u32),
    ZeroRegency,
    ZeroDistrict,
}

/// Checks the first six digits of `digits` (at least six ASCII digits) as province, regency
/// and district.
pub(crate) fn check_prefix(digits: &str) -> Result<(), PrefixProblem> {
    let province = super::number(&digits[0..2]);
    if !is_known_province(province) {
        return Err(PrefixProblem::UnknownProvince(province));
    }
    if &digits[2..4] == "00" {
        return Err(PrefixProblem::ZeroRegency);
    }
    if &digits[4..6] == "00" {
        return Err(PrefixProblem::ZeroDistrict);
    }
    Ok(())
}

/// A Kemendagri region code: a village (`PPKKCCDDDD`, 10 digits) or a district (`PPKKCC`,
/// 6 digits). Stored as digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionCodeError {
    #[error("the region code is empty; write the Kemendagri code, e.g. 53.01.01.2001")]
    Empty,
    #[error(
        "a region code is the Kemendagri code PP.KK.CC.DDDD for a village (10 digits) or PP.KK.CC for a district (6 digits); dots are optional, nothing else is allowed"
    )]
    Malformed,
    #[error("province code {0:02} in the region code does not exist")]
    UnknownProvince(u32),
    #[error(
        "the regency part (KK in PP.KK.CC.DDDD) of the region code is 00, which does not exist"
    )]
    ZeroRegency,
    #[error(
        "the district part (CC in PP.KK.CC.DDDD) of the region code is 00, which does not exist"
    )]
    ZeroDistrict,
    #[error(
        "the village part (DDDD in PP.KK.CC.DDDD) of the region code is 0000, which does not exist"
    )]
    ZeroVillage,
}

impl RegionCode {
    pub fn parse(input: &str) -> Result<RegionCode, RegionCodeError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RegionCodeError::Empty);
        }
        let groups: Vec<&str> = input.split('.').collect();
        let well_formed = groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
            && match groups.len() {
                1 => matches!(input.len(), 6 | 10),
                _ => {
                    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
                    lengths == [2, 2, 2] || lengths == [2, 2, 2, 4]
                }
            };
        if !well_formed {
            return Err(RegionCodeError::Malformed);
        }
        let digits: String = groups.concat();
        check_prefix(&digits).map_err(|problem| match problem {
            PrefixProblem::UnknownProvince(p) => RegionCodeError::UnknownProvince(p),
            PrefixProblem::ZeroRegency => RegionCodeError::ZeroRegency,
            PrefixProblem::ZeroDistrict => RegionCodeError::ZeroDistrict,
        })?;
        if digits.len() == 10 && &digits[6..] == "0000" {
            return Err(RegionCodeError::ZeroVillage);
        }
        Ok(Self(digits))
    }

    /// The code as digits only, e.g. `5301012001`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a village code (10 digits) rather than a district code (6 digits).
    pub fn is_village(&self) -> bool {
        self.0.len() == 10
    }

    /// The district part `PPKKCC` (6 digits).
    pub fn district(&self) -> &str {
        &self.0[..6]
    }

    /// The usual dotted spelling, e.g. `53.01.01.2001`.
    pub fn dotted(&self) -> String {
        let d = &self.0;
        let mut out = format!("{}.{}.{}", &d[0..2], &d[2..4], &d[4..6]);
        if self.is_village() {
            out.push('.');
            out.push_str(&d[6..]);
        }
        out
    }
}

impl AsRef<str> for RegionCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RegionCode {
    type Error = RegionCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RegionCode> for String {
    fn from(value: RegionCode) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn village_codes_with_and_without_dots_are_accepted() {
        let dotted = RegionCode::parse("53.01.01.2001").unwrap();
        assert_eq!(dotted.as_str(), "5301012001");
        assert!(dotted.is_village());
        assert_eq!(dotted.district(), "530101");
        assert_eq!(dotted.dotted(), "53.01.01.2001");
        assert_eq!(RegionCode::parse(" 5301012001 ").unwrap(), dotted);
    }

    #[test]
    fn district_codes_are_accepted() {
        let code = RegionCode::parse("31.71.01").unwrap();
        assert_eq!(code.as_str(), "317101");
        assert!(!code.is_village());
        assert_eq!(code.dotted(), "31.71.01");
        assert_eq!(RegionCode::parse("317101").unwrap(), code);
    }

    #[test]
    fn every_province_range_is_known_and_gaps_are_not() {
        for p in [11, 19, 21, 31, 36, 51, 53, 61, 65, 71, 76, 81, 82, 91, 96] {
            assert!(is_known_province(p), "{p}");
        }
        for p in [
            0, 10, 20, 22, 30, 37, 50, 54, 60, 66, 70, 77, 80, 83, 90, 97, 99,
        ] {
            assert!(!is_known_province(p), "{p}");
        }
    }

    #[test]
    fn bad_codes_are_rejected_with_the_reason() {
        use RegionCodeError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("10.01.01.2001", UnknownProvince(10)),
            ("53.00.01.2001", ZeroRegency),
            ("53.01.00.2001", ZeroDistrict),
            ("53.01.01.0000", ZeroVillage),
            ("53.01.01.200", Malformed),
            ("5301.01.2001", Malformed),
            ("53..01.01.2001", Malformed),
            ("530101200", Malformed),
            ("53-01-01-2001", Malformed),
            ("53.01.01.2001.", Malformed),
            ("53.01.0a.2001", Malformed),
        ];
        for (input, expected) in cases {
            assert_eq!(RegionCode::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let code: RegionCode = serde_json::from_str("\"53.01.01.2001\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"5301012001\"");
        assert!(serde_json::from_str::<RegionCode>("\"10.01.01.2001\"").is_err());
    }
}
