//! Reading the first sheet of an Excel workbook (`.xlsx`) into [`RawRecord`]s, with the same
//! columns (and the same header mapping) as a CSV file: the header is the first row that names
//! a known column (up to [`HEADER_SEARCH_ROWS`] title rows above it, as offices write them, are
//! skipped), and every later non-empty row is a recipient.
//!
//! Cells become the text an office sees: whole numbers without a decimal point, dates as
//! `YYYY-MM-DD`, error cells as their `#N/A`-style text (so the record is blocked with a
//! reason, not dropped). Excel keeps only 15 significant digits of a number, so NIK, KK and
//! account numbers must be formatted as Text in the workbook (a 16-digit NIK typed as a number
//! has already lost its last digit when it reaches salur).
//!
//! # Bounded
//! A workbook is a zip archive of XML parts that can unpack to a thousand times its size, and
//! its XML declares counts a reader may trust. Nothing here does: before anything is parsed,
//! [`check_archive`] unpacks every part into nothing, counting, and refuses the workbook
//! ([`IntakeError::XlsxLimit`]) when a part or the whole unpacks to more than its limit, when
//! one XML token (a tag, one text) is longer than [`XlsxLimits::token`], when the shared
//! strings or the cells are more than their limits, or when `uniqueCount` or the sheet's
//! declared dimension claims more than that. The sheet is then read cell by cell (calamine's
//! streaming cell reader) and handed on in slices, so memory holds the archive, the shared
//! strings (bounded above) and one slice of records, never the sheet.

use std::io::{Cursor, Read};

use calamine::{Data, Reader as _, Xlsx};

use super::RawRecord;
use super::file::{BadValue, IntakeError, fill, is_known_column, map_header};

/// The ZIP signature every `.xlsx` file starts with.
pub fn looks_like_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Title rows looked through for the header before the first row is taken as the header.
pub const HEADER_SEARCH_ROWS: usize = 20;

/// Excel's last column (XFD) and row (1,048,576), 0-based.
const MAX_COLUMN: u32 = 16_383;
const MAX_ROW: u32 = 1_048_575;

/// What a workbook may unpack to, all derived from `API_XLSX_LIMIT` (the compressed size) so one
/// setting scales them together. With the default 64 MiB: 1 GiB unpacked in all, 64 MiB of shared
/// strings, 4 Mi strings, 16 Mi cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XlsxLimits {
    /// `API_XLSX_LIMIT`: bytes of the workbook itself.
    pub body: u64,
    /// Bytes of all parts unpacked together: 16 × `body`.
    pub unpacked: u64,
    /// Bytes of the shared-strings part unpacked: 1 × `body`.
    pub shared_strings_part: u64,
    /// Bytes of any other part that is not a worksheet (styles, workbook, relationships …):
    /// 8 MiB (a real one is a few KiB).
    pub other_part: u64,
    /// Shared strings, counted and as declared by `uniqueCount`: `body` / 16.
    pub strings: u64,
    /// Cells of all worksheets, counted and as declared by a sheet's dimension: `body` / 4.
    pub cells: u64,
    /// Bytes of one XML token (one tag, or the text between two tags): 1 MiB.
    pub token: u64,
    /// Parts in the archive: 1,000 (a workbook has a dozen).
    pub parts: u64,
}

impl XlsxLimits {
    pub fn for_body(body: u64) -> Self {
        Self {
            body,
            unpacked: body.saturating_mul(16),
            shared_strings_part: body,
            other_part: 8 << 20,
            strings: body / 16,
            cells: body / 4,
            token: 1 << 20,
            parts: 1_000,
        }
    }
}

/// Reads the first sheet of a workbook held in memory, handing its records on in slices of
/// `slice` to `emit` (which answers `false` to stop reading). `file_name` only labels errors.
pub fn read_xlsx(
    file_name: &str,
    bytes: Vec<u8>,
    limits: &XlsxLimits,
    slice: usize,
    emit: &mut dyn FnMut(Vec<RawRecord>) -> bool,
) -> Result<(), IntakeError> {
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
    check_archive(&file, &bytes, limits)?;
    let over = |what: String, limit: u64, unit: &'static str| IntakeError::XlsxLimit {
        file: file.clone(),
        what,
        limit,
        unit,
        setting: "API_XLSX_LIMIT",
    };

    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| unreadable(e.to_string()))?;
    let Some(sheet) = workbook.sheet_names().first().cloned() else {
        return Err(IntakeError::Empty { file });
    };
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|e| unreadable(e.to_string()))?;
    let dims = cells.dimensions();
    let area = (u64::from(dims.end.0.saturating_sub(dims.start.0)) + 1)
        * (u64::from(dims.end.1.saturating_sub(dims.start.1)) + 1);
    if area > limits.cells {
        return Err(over(
            format!("the dimension the sheet declares ({area} cells)"),
            limits.cells,
            "cells",
        ));
    }

    let mut rows = Rows::new(file.clone(), slice, emit);
    let mut current: Option<(u32, Vec<(u32, String)>)> = None;
    loop {
        let cell = cells.next_cell().map_err(|e| unreadable(e.to_string()))?;
        let Some(cell) = cell else { break };
        let (row, col) = cell.get_position();
        if col > MAX_COLUMN || row > MAX_ROW {
            return Err(unreadable(
                "a cell lies beyond column XFD or row 1048576, where Excel's sheets end".into(),
            ));
        }
        let value = Data::from(cell.get_value().clone());
        if current.as_ref().is_some_and(|(r, _)| *r != row)
            && let Some((r, done)) = current.take()
            && !rows.row(u64::from(r) + 1, done)?
        {
            return Ok(());
        }
        current
            .get_or_insert_with(|| (row, Vec::new()))
            .1
            .push((col, cell_text(&value, col, rows.bank_column)));
    }
    if let Some((r, done)) = current.take()
        && !rows.row(u64::from(r) + 1, done)?
    {
        return Ok(());
    }
    rows.finish()
}

/// Reads a whole workbook into memory (default limits for `API_XLSX_LIMIT` = its own size).
pub fn parse_xlsx(file_name: &str, bytes: Vec<u8>) -> Result<Vec<RawRecord>, IntakeError> {
    let limits = XlsxLimits::for_body(64 << 20);
    let mut all = Vec::new();
    read_xlsx(file_name, bytes, &limits, 10_000, &mut |chunk| {
        all.extend(chunk);
        true
    })?;
    Ok(all)
}

/// Turns sheet rows into records: finds the header, then maps every later row.
struct Rows<'a> {
    file: String,
    slice: usize,
    emit: &'a mut dyn FnMut(Vec<RawRecord>) -> bool,
    /// The first non-empty row and its line, kept while no header is found (its missing
    /// columns are the error when none is).
    first: Option<(u64, Vec<String>)>,
    skipped: usize,
    columns: Option<Vec<Option<usize>>>,
    /// Excel drops the leading zeros of a bank code typed as a number (002 → 2).
    bank_column: Option<u32>,
    records: Vec<RawRecord>,
    count: u32,
}

impl<'a> Rows<'a> {
    fn new(file: String, slice: usize, emit: &'a mut dyn FnMut(Vec<RawRecord>) -> bool) -> Self {
        Self {
            file,
            slice,
            emit,
            first: None,
            skipped: 0,
            columns: None,
            bank_column: None,
            records: Vec::new(),
            count: 0,
        }
    }

    /// One sheet row (`line` as Excel numbers it); `false` when the receiver stopped.
    fn row(&mut self, line: u64, cells: Vec<(u32, String)>) -> Result<bool, IntakeError> {
        if cells.iter().all(|(_, t)| t.trim().is_empty()) {
            return Ok(true);
        }
        let Some(columns) = &self.columns else {
            let width = cells
                .iter()
                .map(|(c, _)| *c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut headers = vec![String::new(); width];
            for (c, t) in cells {
                headers[c as usize] = t.trim().to_owned();
            }
            if headers.iter().any(|h| is_known_column(h)) {
                self.columns = Some(map_header(&self.file, &headers, Some(line))?);
                self.bank_column = headers
                    .iter()
                    .position(|h| {
                        matches!(
                            h.to_lowercase().replace([' ', '-'], "_").as_str(),
                            "bank_code" | "kode_bank"
                        )
                    })
                    .map(|c| c as u32);
                return Ok(true);
            }
            if self.first.is_none() {
                self.first = Some((line, headers));
            }
            self.skipped += 1;
            if self.skipped >= HEADER_SEARCH_ROWS {
                return Err(self.no_header());
            }
            return Ok(true);
        };
        self.count += 1;
        let mut record = RawRecord {
            row: self.count,
            ..RawRecord::default()
        };
        for (col, text) in &cells {
            if let Some(&column) = columns.get(*col as usize) {
                fill(&mut record, column, text).map_err(|BadValue(field, error)| {
                    IntakeError::InvalidValue {
                        file: self.file.clone(),
                        line: Some(line),
                        row: u64::from(self.count),
                        field,
                        error,
                    }
                })?;
            }
        }
        self.records.push(record);
        if self.records.len() >= self.slice {
            let full = std::mem::take(&mut self.records);
            return Ok((self.emit)(full));
        }
        Ok(true)
    }

    fn no_header(&mut self) -> IntakeError {
        match self.first.take() {
            None => IntakeError::Empty {
                file: self.file.clone(),
            },
            Some((line, headers)) => match map_header(&self.file, &headers, Some(line)) {
                Err(e) => e,
                Ok(_) => IntakeError::NoDataRows {
                    file: self.file.clone(),
                },
            },
        }
    }

    fn finish(mut self) -> Result<(), IntakeError> {
        if self.columns.is_none() {
            return Err(self.no_header());
        }
        if self.count == 0 {
            return Err(IntakeError::NoDataRows { file: self.file });
        }
        if !self.records.is_empty() {
            (self.emit)(std::mem::take(&mut self.records));
        }
        Ok(())
    }
}

/// The text an office sees in a cell; a number in the bank-code column keeps its leading zeros.
fn cell_text(cell: &Data, col: u32, bank_column: Option<u32>) -> String {
    let text = match cell {
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
    };
    if Some(col) == bank_column && matches!(cell, Data::Int(_) | Data::Float(_)) {
        format!("{text:0>3}")
    } else {
        text
    }
}

/// Checks the archive against `limits` without keeping anything of it: see the module docs.
pub fn check_archive(file: &str, bytes: &[u8], limits: &XlsxLimits) -> Result<(), IntakeError> {
    let over = |what: String, limit: u64, unit: &'static str| IntakeError::XlsxLimit {
        file: file.to_owned(),
        what,
        limit,
        unit,
        setting: "API_XLSX_LIMIT",
    };
    let unreadable = |message: String| IntakeError::Xlsx {
        file: file.to_owned(),
        message,
    };
    if let Some(parts) = declared_parts(bytes)
        && parts > limits.parts
    {
        return Err(over(
            format!("the number of parts in the archive ({parts})"),
            limits.parts,
            "parts",
        ));
    }
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let mut unpacked = 0u64;
    let mut cells = 0u64;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| unreadable(e.to_string()))?;
        let name = part
            .name()
            .map_err(|e| unreadable(e.to_string()))?
            .into_owned();
        let lower = name.to_ascii_lowercase();
        let xml = lower.ends_with(".xml") || lower.ends_with(".rels") || lower.ends_with(".vml");
        let shared_strings = lower.ends_with("sharedstrings.xml");
        let worksheet = lower.contains("worksheets/") && xml;
        let limit = if worksheet {
            limits.unpacked
        } else if shared_strings {
            limits.shared_strings_part
        } else {
            limits.other_part
        };
        let mut scan = Scan::new(xml);
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = part.read(&mut buf).map_err(|e| unreadable(e.to_string()))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            unpacked += n as u64;
            if size > limit {
                return Err(over(
                    format!("the unpacked size of part {}", printable(&name)),
                    limit,
                    "bytes",
                ));
            }
            if unpacked > limits.unpacked {
                return Err(over(
                    "the unpacked size of the workbook".into(),
                    limits.unpacked,
                    "bytes",
                ));
            }
            scan.feed(&buf[..n]).map_err(|ScanError::Markup| {
                unreadable(format!(
                    "part {} holds a DOCTYPE, comment, CDATA or processing instruction, which Excel never writes",
                    printable(&name)
                ))
            })?;
            if worksheet && cells + scan.cells > limits.cells {
                return Err(over(
                    "the number of cells in the worksheets".into(),
                    limits.cells,
                    "cells",
                ));
            }
            if shared_strings && scan.strings > limits.strings {
                return Err(over(
                    "the number of shared strings".into(),
                    limits.strings,
                    "strings",
                ));
            }
            if let Some(declared) = scan.unique_count.filter(|_| shared_strings)
                && declared > limits.strings
            {
                return Err(over(
                    format!("the shared-string count the workbook declares ({declared})"),
                    limits.strings,
                    "strings",
                ));
            }
            if scan.token > limits.token {
                return Err(over(
                    format!("one XML token in part {}", printable(&name)),
                    limits.token,
                    "bytes",
                ));
            }
        }
        if worksheet {
            cells += scan.cells;
        }
    }
    Ok(())
}

/// A part name fit for a message: printable ASCII, at most 100 characters.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(100)
        .collect()
}

/// The number of parts the end of the archive declares (its end-of-central-directory record),
/// read before the directory itself is (whose size follows it). `None` when there is none: the
/// zip reader then says what is wrong.
fn declared_parts(bytes: &[u8]) -> Option<u64> {
    const EOCD: &[u8] = b"PK\x05\x06";
    let from = bytes.len().saturating_sub(22 + 65_535);
    let at = bytes[from..].windows(4).rposition(|w| w == EOCD)? + from;
    let entries = bytes.get(at + 10..at + 12)?;
    let n = u16::from_le_bytes([entries[0], entries[1]]);
    // 0xFFFF means a ZIP64 count follows elsewhere: more parts than any workbook has.
    Some(if n == u16::MAX {
        u64::MAX
    } else {
        u64::from(n)
    })
}

#[derive(Debug)]
enum ScanError {
    Markup,
}

/// A streaming look at XML bytes: the longest token so far, the `<c>` and `<si>` elements, and
/// the `uniqueCount` of `<sst>`; refuses `<!` (DOCTYPE, comments, CDATA) and `<?` after the
/// declaration, whose single tokens could grow without a bound a tag scan sees.
struct Scan {
    xml: bool,
    in_tag: bool,
    quote: Option<u8>,
    /// Bytes of the current token.
    run: u64,
    /// Longest token seen.
    token: u64,
    /// The start of the current tag (its name and first attributes), up to 256 bytes.
    tag: Vec<u8>,
    offset: u64,
    /// Tags closed so far: a `<?` is the XML declaration only before the first.
    closed: u64,
    cells: u64,
    strings: u64,
    unique_count: Option<u64>,
}

impl Scan {
    fn new(xml: bool) -> Self {
        Self {
            xml,
            in_tag: false,
            quote: None,
            run: 0,
            token: 0,
            tag: Vec::with_capacity(256),
            offset: 0,
            closed: 0,
            cells: 0,
            strings: 0,
            unique_count: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        if !self.xml {
            return Ok(());
        }
        for &b in bytes {
            self.offset += 1;
            self.run += 1;
            self.token = self.token.max(self.run);
            if self.in_tag {
                if self.tag.len() < 256 {
                    self.tag.push(b);
                }
                if self.tag.len() == 1 && (b == b'!' || (b == b'?' && self.closed > 0)) {
                    return Err(ScanError::Markup);
                }
                match (self.quote, b) {
                    (Some(q), _) if b == q => self.quote = None,
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => self.quote = Some(b),
                    (None, b'>') => {
                        self.closed += 1;
                        self.in_tag = false;
                        self.run = 0;
                        self.end_tag();
                    }
                    _ => {}
                }
            } else if b == b'<' {
                self.in_tag = true;
                self.run = 1;
                self.tag.clear();
            }
        }
        Ok(())
    }

    /// Counts the element whose start tag just ended.
    fn end_tag(&mut self) {
        let tag = &self.tag;
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        match local {
            b"c" => self.cells += 1,
            b"si" => self.strings += 1,
            b"sst" => {
                let text = String::from_utf8_lossy(tag);
                if let Some(i) = text.find("uniqueCount=") {
                    let rest = &text[i + 12..];
                    let digits: String = rest
                        .trim_start_matches(['"', '\''])
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    // A count too long to parse is over any limit.
                    self.unique_count = Some(digits.parse().unwrap_or(u64::MAX));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_an_office_sees_them() {
        assert_eq!(cell_text(&Data::Float(600000.0), 0, None), "600000");
        assert_eq!(cell_text(&Data::Float(600000.5), 0, None), "600000.5");
        assert_eq!(cell_text(&Data::Int(2), 0, None), "2");
        assert_eq!(cell_text(&Data::Int(2), 3, Some(3)), "002");
        assert_eq!(
            cell_text(&Data::String(" Kupang ".into()), 0, None),
            " Kupang "
        );
        assert_eq!(
            cell_text(&Data::Error(calamine::CellErrorType::NA), 0, None),
            "#N/A"
        );
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

    #[test]
    fn the_scan_sees_tokens_cells_strings_and_declared_counts() {
        let mut scan = Scan::new(true);
        scan.feed(br#"<?xml version="1.0"?><sst uniqueCount="10000000000" count="2"><si><t>a</t></si><x:si/>"#)
            .unwrap();
        assert_eq!(scan.unique_count, Some(10_000_000_000));
        assert_eq!(scan.strings, 2);
        let mut scan = Scan::new(true);
        scan.feed(b"<row><c r=\"A1\"><v>1</v></c><c r='B1' t=\"s\"><v>0</v></c><col/></row>")
            .unwrap();
        assert_eq!(scan.cells, 2);
        // A quoted '>' does not end a tag: the token is the whole tag.
        let mut scan = Scan::new(true);
        scan.feed(b"<c a=\">>>>>>>>>>\">").unwrap();
        assert_eq!(scan.token, 18);
        for bad in [
            &b"<a><!-- x --></a>"[..],
            b"<!DOCTYPE x>",
            b"<a><![CDATA[x]]></a>",
            b"<a><?pi?></a>",
        ] {
            assert!(
                Scan::new(true).feed(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
