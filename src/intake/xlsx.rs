//! Reading the first sheet of an Excel workbook (`.xlsx`) into [`RawRecord`]s, with the same
//! columns (and the same header mapping) as a CSV file: the header is the first row that names
//! a known column (title rows above it, as offices write them, are skipped), and every later
//! non-empty row is a recipient.
//!
//! A workbook is a zip archive, which cannot be read front to back: it is read whole from
//! memory. Cells become the text an office sees: whole numbers without a decimal point, dates as
//! `YYYY-MM-DD`, error cells as their `#N/A`-style text (so the record is blocked with a
//! reason, not dropped). Excel keeps only 15 significant digits of a number, so NIK, KK and
//! account numbers must be formatted as Text in the workbook (a 16-digit NIK typed as a number
//! has already lost its last digit when it reaches salur).

use std::io::Cursor;

use calamine::{Data, Reader as _};

use super::RawRecord;
use super::file::{IntakeError, fill, is_known_column, map_header};

/// The ZIP signature every `.xlsx` file starts with.
pub fn looks_like_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Reads the first sheet of a workbook held in memory. `file_name` only labels errors.
pub fn parse_xlsx(file_name: &str, bytes: Vec<u8>) -> Result<Vec<RawRecord>, IntakeError> {
    let file = file_name.to_owned();
    let unreadable = |message: String| IntakeError::Xlsx {
        file: file.clone(),
        message,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::Empty { file });
    }
    if !looks_like_xlsx(&bytes) {
        return Err(unreadable("it is not a zip archive".into()));
    }
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| unreadable(e.to_string()))?;
    let range = match workbook.worksheet_range_at(0) {
        None => return Err(IntakeError::Empty { file }),
        Some(r) => r.map_err(|e| unreadable(e.to_string()))?,
    };
    // Sheet row numbers as Excel shows them (1-based), whatever the used range starts at.
    let first_row = range.start().map_or(0, |(r, _)| u64::from(r)) + 1;
    let non_empty: Vec<(u64, &[Data])> = range
        .rows()
        .enumerate()
        .map(|(i, cells)| (first_row + i as u64, cells))
        .filter(|(_, cells)| cells.iter().any(|c| !cell_text(c).trim().is_empty()))
        .collect();
    if non_empty.is_empty() {
        return Err(IntakeError::Empty { file });
    }
    // The header: the first row naming a known column; failing that, the first row (whose
    // missing columns the error then lists).
    let start = non_empty
        .iter()
        .position(|(_, cells)| cells.iter().any(|c| is_known_column(cell_text(c).trim())))
        .unwrap_or(0);
    let (header_line, header) = non_empty[start];
    let rows = non_empty[start + 1..].iter().copied();
    let headers: Vec<String> = header
        .iter()
        .map(|c| cell_text(c).trim().to_owned())
        .collect();
    let columns = map_header(&file, &headers, Some(header_line))?;
    let bank_column = headers.iter().position(|h| {
        matches!(
            h.to_lowercase().replace([' ', '-'], "_").as_str(),
            "bank_code" | "kode_bank"
        )
    });

    let mut records = Vec::new();
    for (_, cells) in rows {
        let mut record = RawRecord {
            row: records.len() as u32 + 1,
            ..RawRecord::default()
        };
        for (col, c) in cells.iter().enumerate() {
            let mut text = cell_text(c);
            // Excel drops the leading zeros of a bank code typed as a number (002 → 2).
            if Some(col) == bank_column && matches!(c, Data::Int(_) | Data::Float(_)) {
                text = format!("{text:0>3}");
            }
            fill(&mut record, columns[col], &text);
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(IntakeError::NoDataRows { file });
    }
    Ok(records)
}

/// The text an office sees in a cell.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => {
                t.date().format("%Y-%m-%d").to_string()
            }
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => dt.as_f64().to_string(),
        },
        Data::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_an_office_sees_them() {
        assert_eq!(cell_text(&Data::Float(600000.0)), "600000");
        assert_eq!(cell_text(&Data::Float(600000.5)), "600000.5");
        assert_eq!(cell_text(&Data::Int(2)), "2");
        assert_eq!(cell_text(&Data::String(" Kupang ".into())), " Kupang ");
        assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
    }

    #[test]
    fn what_is_not_a_workbook_is_refused() {
        let err = parse_xlsx("b.xlsx", b"nik,kk\n1,2\n".to_vec()).unwrap_err();
        assert!(matches!(err, IntakeError::Xlsx { .. }), "{err:?}");
        assert!(err.to_string().contains("b.xlsx"));
        let err = parse_xlsx("b.xlsx", b"PK\x03\x04garbage".to_vec()).unwrap_err();
        assert!(matches!(err, IntakeError::Xlsx { .. }), "{err:?}");
        let err = parse_xlsx("b.xlsx", Vec::new()).unwrap_err();
        assert!(matches!(err, IntakeError::Empty { .. }), "{err:?}");
    }
}
