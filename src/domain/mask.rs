//! Masking of identifiers (NIK, KK, account numbers) for logs and reports.

/// Masks `input` character by character, keeping only enough to recognise it:
/// - 16 characters or more (a NIK or KK): the first 4 and the last 4, e.g. `5301********0001`;
/// - 8 to 15 characters: the last 4 only;
/// - fewer than 8: nothing.
///
/// Works the same on raw, invalid input (letters, separators), so it is safe to call on any
/// value an office typed. An input of 8 characters or more is never returned in clear.
pub fn mask_digits(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let len = chars.len();
    let (head, tail) = match len {
        16.. => (4, 4),
        8..=15 => (0, 4),
        _ => (0, 0),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= len - tail { *c } else { '*' })
        .collect()
}

/// Masks text such as a name, a place or an address: each word keeps its first character,
/// e.g. `Maria Goreti Ndolu` → `M**** G***** N****`.
pub fn mask_words(input: &str) -> String {
    input
        .split_whitespace()
        .map(|w| {
            w.chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { c } else { '*' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Masks every digit (a birth date keeps only its shape: `****-**-**`).
pub fn mask_all_digits(input: &str) -> String {
    input
        .chars()
        .map(|c| if c.is_ascii_digit() { '*' } else { c })
        .collect()
}

/// A cell that no spreadsheet reads as a formula (the OWASP CSV-injection rule): text starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`. Every CSV or
/// workbook salur writes for people passes its cells through here.
pub fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_neutralised() {
        use super::spreadsheet_safe as safe;
        for f in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "=(\"a*********aa\")",
        ] {
            assert_eq!(safe(f.into()), format!("'{f}"));
        }
        for ok in [
            "600000.00",
            "5301********0001",
            "",
            "RETRIES_EXHAUSTED",
            "a=1",
        ] {
            assert_eq!(safe(ok.into()), ok);
        }
    }

    use super::*;

    #[test]
    fn words_keep_only_their_first_letter() {
        assert_eq!(mask_words("Maria  Goreti Ndolu"), "M**** G***** N****");
        assert_eq!(mask_words(""), "");
        assert_eq!(mask_all_digits("05-08-1980"), "**-**-****");
    }

    #[test]
    fn a_nik_keeps_its_first_and_last_four_digits() {
        assert_eq!(mask_digits("5301234567890001"), "5301********0001");
    }

    #[test]
    fn a_long_account_number_keeps_first_and_last_four() {
        assert_eq!(mask_digits("12345678901234567890"), "1234************7890");
    }

    #[test]
    fn medium_values_keep_only_the_last_four() {
        assert_eq!(mask_digits("1234567890"), "******7890");
        assert_eq!(mask_digits("12345678"), "****5678");
        assert_eq!(mask_digits("530123456789000"), "***********9000");
    }

    #[test]
    fn short_values_are_fully_masked() {
        assert_eq!(mask_digits("1234567"), "*******");
        assert_eq!(mask_digits(""), "");
    }

    #[test]
    fn raw_invalid_input_is_masked_by_character() {
        assert_eq!(mask_digits("53012345678900x1"), "5301********00x1");
        assert_eq!(mask_digits("abcdefghij"), "******ghij");
    }

    #[test]
    fn nothing_of_eight_characters_or_more_comes_back_in_clear() {
        for len in 8..40 {
            let input: String = "9".repeat(len);
            assert_ne!(mask_digits(&input), input);
            assert_eq!(mask_digits(&input).chars().count(), len);
        }
    }
}
