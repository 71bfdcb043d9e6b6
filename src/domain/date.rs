//! Dates as offices write them: `YYYY-MM-DD`, `DD-MM-YYYY` or `DD/MM/YYYY`.

use chrono::NaiveDate;

/// Parses `YYYY-MM-DD`, `DD-MM-YYYY` or `DD/MM/YYYY` (day and month may have one digit, the
/// year must have four). `None` unless it is a real calendar date.
pub fn parse_date(input: &str) -> Option<NaiveDate> {
    let input = input.trim();
    let separator = if input.contains('/') { '/' } else { '-' };
    let parts: Vec<&str> = input.split(separator).collect();
    let [a, b, c] = parts[..] else {
        return None;
    };
    let digits = |s: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let (year, month, day) = if separator == '-' && digits(a, 4..=4) {
        (a, b, c)
    } else {
        (c, b, a)
    };
    if !(digits(year, 4..=4) && digits(month, 1..=2) && digits(day, 1..=2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn the_three_office_formats_are_accepted() {
        assert_eq!(parse_date("1984-08-15"), date(1984, 8, 15));
        assert_eq!(parse_date("15-08-1984"), date(1984, 8, 15));
        assert_eq!(parse_date("15/08/1984"), date(1984, 8, 15));
        assert_eq!(parse_date(" 15/08/1984 "), date(1984, 8, 15));
    }

    #[test]
    fn single_digit_day_and_month_are_accepted() {
        assert_eq!(parse_date("1/2/1980"), date(1980, 2, 1));
        assert_eq!(parse_date("1-2-1980"), date(1980, 2, 1));
        assert_eq!(parse_date("1980-2-1"), date(1980, 2, 1));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for text in [
            "1984-02-30",
            "31/04/1984",
            "29-02-1985",
            "1984-13-01",
            "00/01/1984",
            "32/01/1984",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
        assert_eq!(parse_date("29/02/2000"), date(2000, 2, 29));
    }

    #[test]
    fn other_spellings_are_rejected() {
        for text in [
            "",
            "-",
            "15/08/84",
            "1984/08/15",
            "15-08/1984",
            "15.08.1984",
            "15 Agustus 1984",
            "1984-08-15T00:00:00",
            "+1984-08-15",
            "015/08/1984",
            "15/08/1984/1",
        ] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }
}
