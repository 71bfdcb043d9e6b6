//! Names: normalisation, and the match between a recipient and a bank account name.

/// Bank account names shorter than this are never accepted as a truncation of a longer name.
const MIN_TRUNCATED_LEN: usize = 20;

/// Upper case, common Latin accents folded (`é` → `E`), letters, digits and single spaces only
/// (punctuation such as `.` `,` `'` `-` is dropped), trimmed.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.chars().flat_map(char::to_uppercase).map(fold_accent) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Whether the bank's account name is the recipient's: equal once normalised, or a prefix of
/// the recipient's name of at least 20 characters (banks truncate names, commonly to 30).
pub fn names_match(recipient: &str, bank_account_name: &str) -> bool {
    let recipient = normalise_name(recipient);
    let bank = normalise_name(bank_account_name);
    if bank.is_empty() {
        return false;
    }
    recipient == bank || (bank.chars().count() >= MIN_TRUNCATED_LEN && recipient.starts_with(&bank))
}

/// Folds an upper-case Latin-1 accented letter to its base letter.
fn fold_accent(c: char) -> char {
    match c {
        'À'..='Å' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ñ' => 'N',
        'Ò'..='Ö' | 'Ø' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' | 'Ÿ' => 'Y',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_name("  budi  santoso. "), "BUDI SANTOSO");
        assert_eq!(normalise_name("Ma'ruf  Amin"), "MARUF AMIN");
        assert_eq!(normalise_name("Nur-Aini, S.Pd."), "NURAINI SPD");
        assert_eq!(normalise_name("José Ramírez Ñoño"), "JOSE RAMIREZ NONO");
        assert_eq!(normalise_name("Hj.\tSiti\nAminah"), "HJ SITI AMINAH");
        assert_eq!(normalise_name(" . "), "");
    }

    #[test]
    fn a_truncated_bank_name_matches() {
        assert!(names_match(
            "Siti Nurhaliza binti Abdullah Rahman",
            "SITI NURHALIZA BINTI ABDULLAH R"
        ));
        // Truncated at 30 characters on a space.
        assert!(names_match(
            "Siti Nurhaliza binti Abdullah Rahman",
            "SITI NURHALIZA BINTI ABDULLAH "
        ));
    }

    #[test]
    fn equal_names_match_after_normalisation() {
        assert!(names_match("budi  santoso.", "BUDI SANTOSO"));
        assert!(names_match("Budi Santoso", "budi santoso"));
    }

    #[test]
    fn different_names_do_not_match() {
        assert!(!names_match("Budi Santoso", "BUDI SANTOSA"));
        assert!(!names_match("Budi Santoso", "BUDI"));
        assert!(!names_match("", ""));
        assert!(!names_match("Budi Santoso", "..."));
        // The bank name is longer than the recipient's.
        assert!(!names_match("Budi Santoso", "BUDI SANTOSO WIJAYA"));
        // A prefix shorter than 20 characters is not trusted as a truncation.
        assert!(!names_match(
            "Siti Nurhaliza binti Abdullah",
            "SITI NURHALIZA"
        ));
        // A 20+ character prefix of someone else's longer name still differs in the middle.
        assert!(!names_match(
            "Siti Nurhaliza binti Abdullah Rahman",
            "SITI NURHALIZA BINTI ABDULAH R"
        ));
    }
}
