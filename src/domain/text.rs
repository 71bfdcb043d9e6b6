//! The rules every text value of a record obeys before it is stored, wherever it comes from (an
//! uploaded file, a fix): no control characters, no bidirectional overrides, and a length limit
//! per field. A value that breaks one is refused at the edge with its row and field, so nothing
//! later (the database, a bank, a report) ever sees it.

/// The longest value, in characters, each field may hold. Generous for real data (a KTP name is
/// at most about 60 characters, an address about 150), far below what could hurt.
pub const MAX_CHARS: [(&str, usize); 13] = [
    ("nik", 32),
    ("kk", 32),
    ("name", 100),
    ("mother_name", 100),
    ("birth_place", 100),
    ("birth_date", 32),
    ("sex", 16),
    ("address", 300),
    ("region_code", 32),
    ("phone", 32),
    ("bank_code", 16),
    ("account_number", 40),
    ("amount", 40),
];

/// The limit for a field key (`nik`, `address`, …); unknown keys get the smallest text limit.
pub fn max_chars(field: &str) -> usize {
    MAX_CHARS
        .iter()
        .find(|(k, _)| *k == field)
        .map_or(32, |(_, n)| *n)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error(
        "contains the control character U+{0:04X} (NUL, a line break or another invisible character): retype the value without it"
    )]
    Control(u32),
    #[error(
        "contains the invisible direction override U+{0:04X}, which makes text display differently from what it is: retype the value without it"
    )]
    BidiOverride(u32),
    #[error("is {found} characters long; at most {max} are allowed: shorten it")]
    TooLong { max: usize, found: usize },
}

/// Checks one value of `field`. Tab and line breaks are allowed in an address (a quoted CSV
/// cell may span lines), nowhere else.
pub fn check_text(field: &str, value: &str) -> Result<(), TextError> {
    let multiline = field == "address";
    for c in value.chars() {
        if c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')) {
            return Err(TextError::Control(u32::from(c)));
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            return Err(TextError::BidiOverride(u32::from(c)));
        }
    }
    let max = max_chars(field);
    // Bytes bound characters from above: count characters only when the bytes are too many.
    if value.len() > max {
        let found = value.chars().count();
        if found > max {
            return Err(TextError::TooLong { max, found });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_overrides_are_refused() {
        assert_eq!(check_text("name", "Siti\0"), Err(TextError::Control(0)));
        assert_eq!(check_text("name", "a\u{7f}"), Err(TextError::Control(0x7f)));
        assert_eq!(check_text("name", "a\nb"), Err(TextError::Control(10)));
        assert_eq!(check_text("address", "Jl. A\nRT 1"), Ok(()));
        assert_eq!(check_text("address", "Jl. A\0"), Err(TextError::Control(0)));
        assert_eq!(
            check_text("name", "abc\u{202E}fed"),
            Err(TextError::BidiOverride(0x202E))
        );
        assert_eq!(check_text("name", "Ñoño Śiti"), Ok(()));
    }

    #[test]
    fn every_field_has_a_length_limit_counted_in_characters() {
        assert_eq!(check_text("address", &"a".repeat(300)), Ok(()));
        assert_eq!(
            check_text("address", &"a".repeat(301)),
            Err(TextError::TooLong {
                max: 300,
                found: 301
            })
        );
        // 100 two-byte characters are 100 characters.
        assert_eq!(check_text("name", &"é".repeat(100)), Ok(()));
        assert!(check_text("nik", &"1".repeat(33)).is_err());
        assert!(check_text("unknown", &"1".repeat(33)).is_err());
    }
}
