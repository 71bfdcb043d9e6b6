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
//! one XML token (a tag, one text) or one string element (rich-text runs joined) is longer
//! than [`XlsxLimits::token`], when elements nest deeper than [`XlsxLimits::depth`] (the XML
//! reader keeps every open element's name), when the shared strings, the cells or the cell
//! formats are more than their limits, when the formats times the longest token of
//! `styles.xml` pass [`XlsxLimits::format_copies`] (the reader copies a font name and a
//! number-format code into every format), or when `uniqueCount` or the sheet's declared
//! dimension claims more than the limits. The sheet is then read cell by cell (calamine's
//! streaming cell reader): a cell under a known column goes straight into its record, checked
//! like any value, and nothing is kept of the others, so one row costs one record however wide
//! it is. Records are handed on in slices, so memory holds the archive, the shared strings
//! (bounded above), the formats (bounded above) and one slice of records, never the sheet.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader as _, Xlsx};

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
    /// Bytes of one XML token (one tag, or the text between two tags), and of one string
    /// element (a shared string `<si>` or an inline `<is>`, whose rich-text runs the reader
    /// joins into one string): 1 MiB.
    pub token: u64,
    /// Parts in the archive: 1,000 (a workbook has a dozen).
    pub parts: u64,
    /// Elements open inside one another in any part: 100 (Excel's parts nest a dozen deep; the
    /// XML reader keeps the name of every open element).
    pub depth: u64,
    /// Cell formats (`<xf>`) in `styles.xml`: 64,000, Excel's own maximum.
    pub formats: u64,
    /// The cell formats times the longest XML token of `styles.xml`: 16 MiB. The reader gives
    /// every format its own copy of its font's name and number-format code (each at most one
    /// token), so this bounds those copies.
    pub format_copies: u64,
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
            depth: 100,
            formats: 64_000,
            format_copies: 16 << 20,
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

    // Cells are handed on one at a time and nothing of a row is kept but the record being
    // filled (a data row) or the truncated header candidates (a title or header row): a row
    // of 16,384 cells that all show one 1 MiB string costs no more than one cell.
    let mut rows = Rows::new(file.clone(), slice, emit);
    let mut row_at: Option<u32> = None;
    loop {
        let cell = cells.next_cell().map_err(|e| unreadable(e.to_string()))?;
        let Some(cell) = cell else { break };
        let (row, col) = cell.get_position();
        if col > MAX_COLUMN || row > MAX_ROW {
            return Err(unreadable(
                "a cell lies beyond column XFD or row 1048576, where Excel's sheets end".into(),
            ));
        }
        if row_at != Some(row) {
            if let Some(r) = row_at
                && !rows.end_row(u64::from(r) + 1)?
            {
                return Ok(());
            }
            row_at = Some(row);
        }
        rows.cell(u64::from(row) + 1, col, cell.get_value())?;
    }
    if let Some(r) = row_at
        && !rows.end_row(u64::from(r) + 1)?
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

/// Characters of a cell kept while looking for the header: a column name is short, and a
/// longer text is no column name (it is kept, cut, only to be named in an error).
const HEADER_CELL_CHARS: usize = 256;

/// Turns sheet cells into records: finds the header, then maps every later row, cell by cell.
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
    /// The current row's cells while no header is found: column → text, each cut to
    /// [`HEADER_CELL_CHARS`].
    candidates: BTreeMap<u32, String>,
    /// The current data row's record, once one of its cells is not blank.
    record: Option<RawRecord>,
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
            candidates: BTreeMap::new(),
            record: None,
            records: Vec::new(),
            count: 0,
        }
    }

    /// One cell of sheet row `line` (as Excel numbers it). A data cell goes into the row's
    /// record at once, checked like any value of its field; a cell under no known column is
    /// only looked at (whether it is blank).
    fn cell(&mut self, line: u64, col: u32, value: &DataRef<'_>) -> Result<(), IntakeError> {
        let text = cell_ref_text(value, col, self.bank_column);
        if text.trim().is_empty() {
            return Ok(());
        }
        let Some(columns) = &self.columns else {
            let mut kept: String = text.trim().chars().take(HEADER_CELL_CHARS).collect();
            if kept.len() < text.trim().len() {
                kept.push('…');
            }
            self.candidates.insert(col, kept);
            return Ok(());
        };
        let column = columns.get(col as usize).copied().flatten();
        let record = self.record.get_or_insert_with(|| {
            self.count += 1;
            RawRecord {
                row: self.count,
                ..RawRecord::default()
            }
        });
        fill(record, column, &text).map_err(|BadValue(field, error)| IntakeError::InvalidValue {
            file: self.file.clone(),
            line: Some(line),
            row: u64::from(self.count),
            field,
            error,
        })
    }

    /// The end of sheet row `line`; `false` when the receiver stopped.
    fn end_row(&mut self, line: u64) -> Result<bool, IntakeError> {
        if self.columns.is_some() {
            let Some(record) = self.record.take() else {
                return Ok(true);
            };
            self.records.push(record);
            if self.records.len() >= self.slice {
                let full = std::mem::take(&mut self.records);
                return Ok((self.emit)(full));
            }
            return Ok(true);
        }
        let cells = std::mem::take(&mut self.candidates);
        let Some(width) = cells.keys().next_back().map(|c| *c as usize + 1) else {
            return Ok(true);
        };
        let mut headers = vec![String::new(); width];
        for (c, t) in cells {
            headers[c as usize] = t;
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

/// [`cell_text`] of a cell as the reader hands it over, without copying a string cell.
fn cell_ref_text<'v>(cell: &'v DataRef<'_>, col: u32, bank_column: Option<u32>) -> Cow<'v, str> {
    match cell {
        DataRef::Empty => Cow::Borrowed(""),
        DataRef::SharedString(s) => Cow::Borrowed(s),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cow::Borrowed(s),
        other => Cow::Owned(cell_text(&Data::from(other.clone()), col, bank_column)),
    }
}

/// The text an office sees in a cell; a number in the bank-code column keeps its leading zeros.
pub fn cell_text(cell: &Data, col: u32, bank_column: Option<u32>) -> String {
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
        let styles = lower.ends_with("styles.xml");
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
            if scan.string > limits.token {
                return Err(over(
                    format!("one string (shared or inline) in part {}", printable(&name)),
                    limits.token,
                    "bytes",
                ));
            }
            if scan.depth > limits.depth {
                return Err(over(
                    format!("the nesting of XML elements in part {}", printable(&name)),
                    limits.depth,
                    "levels",
                ));
            }
            if styles && scan.formats > limits.formats {
                return Err(over(
                    format!("the cell formats in part {}", printable(&name)),
                    limits.formats,
                    "formats",
                ));
            }
            if styles && scan.formats.saturating_mul(scan.token) > limits.format_copies {
                return Err(over(
                    format!(
                        "the cell formats in part {} ({}) times its longest XML token ({} bytes)",
                        printable(&name),
                        scan.formats,
                        scan.token
                    ),
                    limits.format_copies,
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

/// A streaming look at XML bytes: the longest token so far, the longest string element
/// (`<si>`, `<is>`), the deepest nesting, the `<c>`, `<si>` and `<xf>` elements, and the
/// `uniqueCount` of `<sst>`; refuses `<!` (DOCTYPE, comments, CDATA) and `<?` after the
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
    /// The byte before the current one inside a tag, outside quotes (`/` before `>`: the
    /// element closes itself).
    prev: u8,
    /// Elements open now, and the most at once.
    open: u64,
    depth: u64,
    /// Bytes since the current `<si>` or `<is>` opened (`None` outside one), and the most.
    in_string: Option<u64>,
    string: u64,
    cells: u64,
    strings: u64,
    formats: u64,
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
            prev: 0,
            open: 0,
            depth: 0,
            in_string: None,
            string: 0,
            cells: 0,
            strings: 0,
            formats: 0,
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
            if let Some(n) = &mut self.in_string {
                *n += 1;
                self.string = self.string.max(*n);
            }
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
                if self.quote.is_none() {
                    self.prev = b;
                }
            } else if b == b'<' {
                self.in_tag = true;
                self.run = 1;
                self.tag.clear();
                self.prev = b'<';
            }
        }
        Ok(())
    }

    /// Counts the element whose tag just ended (`prev` is the byte before its `>`).
    fn end_tag(&mut self) {
        let tag = &self.tag;
        let closing = tag.first() == Some(&b'/');
        let declaration = tag.first() == Some(&b'?');
        let tag = if closing { &tag[1..] } else { &tag[..] };
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        let string_element = matches!(local, b"si" | b"is");
        if closing {
            self.open = self.open.saturating_sub(1);
            if string_element {
                self.in_string = None;
            }
            return;
        }
        if declaration {
            return;
        }
        let empty = self.prev == b'/';
        if !empty {
            self.open += 1;
            self.depth = self.depth.max(self.open);
            if string_element {
                self.in_string = Some(0);
            }
        }
        match local {
            b"c" => self.cells += 1,
            b"si" => self.strings += 1,
            b"xf" => self.formats += 1,
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

    #[test]
    fn the_scan_sees_nesting_string_elements_and_formats() {
        let mut scan = Scan::new(true);
        scan.feed(br#"<?xml version="1.0"?><a><b/><c x="/"><d></d></c></a>"#)
            .unwrap();
        assert_eq!((scan.depth, scan.open), (3, 0));
        // A rich-text string is as long as its runs together: the reader joins them.
        let mut scan = Scan::new(true);
        scan.feed(b"<sst><si><r><t>abc</t></r><r><t>def</t></r></si><si/><si><t>x</t></si></sst>")
            .unwrap();
        assert_eq!((scan.string, scan.strings), (39, 3));
        let mut scan = Scan::new(true);
        scan.feed(br#"<cellXfs><xf numFmtId="0"></xf><xf/></cellXfs>"#)
            .unwrap();
        assert_eq!(scan.formats, 2);
    }

    /// A workbook of `sheet` (the XML inside `<sheetData>`) and `extra` parts.
    fn workbook(sheet: &str, extra: &[(&str, String)]) -> Vec<u8> {
        use std::io::Write as _;
        let ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        let mut parts = vec![
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.to_owned()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned()),
            ("xl/workbook.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{ns}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Penerima" sheetId="1" r:id="rId1"/></sheets></workbook>"#)),
            ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned()),
            ("xl/worksheets/sheet1.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{ns}"><sheetData>{sheet}</sheetData></worksheet>"#)),
        ];
        parts.extend(extra.iter().map(|(n, c)| (*n, c.clone())));
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in parts {
            w.start_file(name, options).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const HEADER: [&str; 13] = crate::demo::generate::CSV_HEADER;
    const ROW: [&str; 13] = [
        "5301011203850001",
        "5301010101100003",
        "Yohanes Ndun",
        "Maria Bria",
        "Kupang",
        "12-03-1985",
        "L",
        "Jl. Timor Raya No. 5",
        "53.01.01.2001",
        "081234567890",
        "002",
        "",
        "600000",
    ];

    /// Row `r`: `cells` as inline strings from column A, then `shared` cells (no `r`, each in
    /// the next column) showing shared string 0.
    fn row(r: u32, cells: &[&str], shared: usize) -> String {
        let mut out = format!(r#"<row r="{r}">"#);
        for (i, c) in cells.iter().enumerate() {
            let col = (b'A' + i as u8) as char;
            out.push_str(&format!(
                r#"<c r="{col}{r}" t="inlineStr"><is><t>{c}</t></is></c>"#
            ));
        }
        out.push_str(&r#"<c t="s"><v>0</v></c>"#.repeat(shared));
        out.push_str("</row>");
        out
    }

    fn sst(one: &str) -> (&'static str, String) {
        (
            "xl/sharedStrings.xml",
            format!(r#"<sst uniqueCount="1"><si><t>{one}</t></si></sst>"#),
        )
    }

    #[test]
    fn a_row_as_wide_as_excel_keeps_only_its_record() {
        // Every cell beyond M shows one 100 KiB string, in the header row and in both records:
        // the records are read as if those columns were not there, and title rows before the
        // header are looked at cut short.
        let big = "x".repeat(100 << 10);
        let title = row(1, &[], 16_384);
        let sheet = title + &row(2, &HEADER, 16_371) + &row(3, &ROW, 16_371) + &row(4, &ROW, 100);
        let bytes = workbook(&sheet, &[sst(&big)]);
        let records = parse_xlsx("wide.xlsx", bytes).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].row, 2);
        assert_eq!(records[1].name.as_deref(), Some("Yohanes Ndun"));
        assert_eq!(records[1].amount.as_deref(), Some("600000"));
    }

    #[test]
    fn a_long_string_under_a_known_column_is_refused_at_its_cell() {
        let big = "x".repeat(100 << 10);
        // The address column (H) shows the 100 KiB shared string.
        let mut sheet = row(1, &HEADER, 0) + &row(2, &ROW, 0);
        sheet.push_str(r#"<row r="3"><c r="A3" t="inlineStr"><is><t>5301011203850002</t></is></c><c r="H3" t="s"><v>0</v></c></row>"#);
        let err = parse_xlsx("long.xlsx", workbook(&sheet, &[sst(&big)])).unwrap_err();
        match err {
            IntakeError::InvalidValue {
                line, row, field, ..
            } => assert_eq!((line, row, field), (Some(3), 2, "address")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nesting_rich_strings_and_format_copies_over_their_limits_are_refused() {
        let limits = XlsxLimits::for_body(1 << 20);
        let valid = row(1, &HEADER, 0) + &row(2, &ROW, 0);
        let refused = |bytes: Vec<u8>, what: &str| {
            let err = check_archive("w.xlsx", &bytes, &limits).unwrap_err();
            match &err {
                IntakeError::XlsxLimit { what: w, .. } => assert!(w.contains(what), "{err:?}"),
                other => panic!("{other:?}"),
            }
        };
        refused(
            workbook(&(valid.clone() + &"<x>".repeat(101)), &[]),
            "nesting",
        );
        let half = "a".repeat(600 << 10);
        refused(
            workbook(
                &(valid.clone()
                    + &format!(
                        r#"<row r="3"><c r="A3" t="inlineStr"><is><r><t>{half}</t></r><r><t>{half}</t></r></is></c></row>"#
                    )),
                &[],
            ),
            "one string",
        );
        let font = "F".repeat(100 << 10);
        let styles = format!(
            r#"<styleSheet><fonts count="1"><font><name val="{font}"/></font></fonts><cellXfs count="200">{}</cellXfs></styleSheet>"#,
            r#"<xf fontId="0"></xf>"#.repeat(200)
        );
        refused(
            workbook(&valid, &[("xl/styles.xml", styles)]),
            "cell formats",
        );
        // Just under each limit, the same workbooks pass.
        let ok = workbook(&(valid.clone() + &"<x>".repeat(95)), &[]);
        assert!(check_archive("w.xlsx", &ok, &limits).is_ok());
        let styles = format!(
            r#"<styleSheet><fonts count="1"><font><name val="{font}"/></font></fonts><cellXfs count="100">{}</cellXfs></styleSheet>"#,
            r#"<xf fontId="0"></xf>"#.repeat(100)
        );
        let ok = workbook(&valid, &[("xl/styles.xml", styles)]);
        assert!(check_archive("w.xlsx", &ok, &limits).is_ok());
    }
}
