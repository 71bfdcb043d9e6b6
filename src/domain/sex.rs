//! Sex as offices write it (Indonesian or English, full or abbreviated).

use serde::{Deserialize, Serialize};

/// Sex as recorded on the KTP. Serialised as the KTP code `L` (laki-laki) or `P` (perempuan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SexError {
    #[error("sex is empty; write L (laki-laki) or P (perempuan)")]
    Empty,
    #[error("sex is not recognised; write L (laki-laki) or P (perempuan)")]
    Unknown,
}

impl Sex {
    /// Accepts, in any case: `L`/`P`, `M`/`F`, `LK`/`PR`, `Laki-laki`/`Perempuan` (also
    /// `Laki laki`, `Laki`), `Pria`/`Wanita`, `Male`/`Female`.
    pub fn parse(input: &str) -> Result<Sex, SexError> {
        let text = input.trim().to_lowercase();
        match text.as_str() {
            "" => Err(SexError::Empty),
            "l" | "m" | "lk" | "laki-laki" | "laki laki" | "lakilaki" | "laki" | "pria"
            | "male" => Ok(Sex::Male),
            "p" | "f" | "pr" | "perempuan" | "wanita" | "female" => Ok(Sex::Female),
            _ => Err(SexError::Unknown),
        }
    }

    /// The KTP code: `L` or `P`.
    pub fn as_code(self) -> &'static str {
        match self {
            Sex::Male => "L",
            Sex::Female => "P",
        }
    }
}

impl TryFrom<String> for Sex {
    type Error = SexError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sex> for String {
    fn from(value: Sex) -> Self {
        value.as_code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_accepted_in_any_case() {
        for text in [
            "L",
            "l",
            "M",
            "Laki-laki",
            "LAKI-LAKI",
            "laki laki",
            "Pria",
            "male",
            " Male ",
        ] {
            assert_eq!(Sex::parse(text), Ok(Sex::Male), "{text}");
        }
        for text in [
            "P",
            "p",
            "F",
            "Perempuan",
            "PEREMPUAN",
            "Wanita",
            "female",
            "FEMALE",
        ] {
            assert_eq!(Sex::parse(text), Ok(Sex::Female), "{text}");
        }
    }

    #[test]
    fn other_values_are_rejected() {
        assert_eq!(Sex::parse(""), Err(SexError::Empty));
        assert_eq!(Sex::parse("  "), Err(SexError::Empty));
        for text in ["X", "LP", "1", "laki-perempuan", "-"] {
            assert_eq!(Sex::parse(text), Err(SexError::Unknown), "{text}");
        }
    }

    #[test]
    fn codes_are_l_and_p() {
        assert_eq!(Sex::Male.as_code(), "L");
        assert_eq!(Sex::Female.as_code(), "P");
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"P\"");
        assert_eq!(
            serde_json::from_str::<Sex>("\"Laki-laki\"").unwrap(),
            Sex::Male
        );
    }
}
