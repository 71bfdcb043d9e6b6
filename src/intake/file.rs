//! Reading one office batch file (CSV exported from Excel, or a JSON array) into [`RawRecord`]s.
//!
//! The format is told by the first byte that is not whitespace (after an optional UTF-8 BOM):
//! `[` is a JSON array of objects, `{` is refused (a batch must be an array), anything else is
//! CSV with a header line. Header names and JSON keys are matched case-insensitively, in
//! Indonesian or English (see `FIELDS` for the accepted names); unknown columns are ignored.
//!
//! CSV is streamed ([`parse_reader`] holds one row at a time, so a file of a million rows needs
//! no more memory than a file of ten); a JSON batch is read whole.
//!
//! Only a file that cannot be read as a batch is refused ([`IntakeError`]); every error names the
//! file, the line and the column where that applies, and says how to fix it. Missing or invalid
//! *values* are not intake's business: they travel on as `None` or as written, and the
//! account-opening stage blocks the record with reasons.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::path::Path;

use serde_json::Value;

use super::RawRecord;

/// Why a file could not be read as a batch. `Display` is one sentence a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(
        "cannot read `{file}`: {source}; check that the file exists and is readable, then submit it again"
    )]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "`{file}` is empty: submit a CSV file with a header line and one row per recipient, or a JSON array of recipient objects"
    )]
    Empty { file: String },

    #[error("`{file}` line {line}{} is not valid UTF-8 text: in Excel use \"Save As → CSV UTF-8 (Comma delimited)\" (or convert the file to UTF-8) and submit it again", in_column(.column))]
    NotUtf8 {
        file: String,
        line: u64,
        /// The column's header, when the bad bytes are in a data row.
        column: Option<String>,
    },

    #[error(
        "`{file}` is not valid JSON at line {line}, column {column} ({message}): fix the syntax there and submit it again"
    )]
    JsonSyntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error(
        "`{file}` is a single JSON object, but a JSON batch must be an array of recipient objects: wrap the records in `[` … `]` and submit it again"
    )]
    JsonNotArray { file: String },

    #[error(
        "`{file}`: element {index} of the JSON array is {found}, not an object: make every element an object such as {{\"nik\": \"…\", \"nama\": \"…\"}} and submit it again"
    )]
    JsonNotObject {
        file: String,
        /// 1-based position in the array.
        index: u64,
        found: &'static str,
    },

    #[error(
        "`{file}`: element {index} of the JSON array has {found} in `{field}` where text was expected: write the value as a string (or a number, or null when unknown) and submit it again"
    )]
    JsonNotText {
        file: String,
        /// 1-based position in the array.
        index: u64,
        /// The key as the file wrote it.
        field: String,
        found: &'static str,
    },

    #[error("`{file}` is missing required {} {}{}: add {} to the {} and submit the file again", plural(.missing.len(), "column", "columns"), list_missing(.missing), at_line(.line), plural(.missing.len(), "it", "them"), header_or_keys(.line))]
    MissingColumns {
        file: String,
        missing: Vec<MissingColumn>,
        /// The header line (CSV); `None` for JSON, where the keys of all objects count.
        line: Option<u64>,
    },

    #[error("`{file}` has both `{first}` and `{second}`{}, which are the same column `{column}`: keep one of them and submit the file again", at_line_or_element(.line, .index))]
    DuplicateColumn {
        file: String,
        /// The field both names map to (English key, e.g. `nik`).
        column: &'static str,
        first: String,
        second: String,
        /// The header line (CSV).
        line: Option<u64>,
        /// The 1-based array element (JSON).
        index: Option<u64>,
    },

    #[error(
        "`{file}` has a header but no recipient rows: add one row per recipient below the header and submit it again"
    )]
    NoDataRows { file: String },

    #[error(
        "`{file}` is an empty JSON array: put one object per recipient between `[` and `]` and submit it again"
    )]
    JsonEmptyArray { file: String },

    #[error(
        "`{file}`: element {index} of the JSON array has the key `{key}` twice: keep one of them and submit the file again"
    )]
    DuplicateKey {
        file: String,
        /// 1-based position in the array.
        index: u64,
        /// The key as the file wrote it.
        key: String,
        /// The field it stands for (English key).
        column: &'static str,
    },

    #[error("`{file}` {}row {row}, field `{field}`: the value {error}; then submit the file again", at_line_comma(.line))]
    InvalidValue {
        file: String,
        /// The physical line (CSV) or sheet row (Excel); `None` for JSON.
        line: Option<u64>,
        /// 1-based recipient row (the JSON array element).
        row: u64,
        /// English key of the field.
        field: &'static str,
        error: crate::domain::TextError,
    },

    #[error(
        "`{file}` is UTF-16 text, not UTF-8: in Excel use \"Save As → CSV UTF-8 (Comma delimited)\" (or convert the file to UTF-8) and submit it again"
    )]
    Utf16 { file: String },

    #[error(
        "`{file}` is over a limit of the Excel reader: {what} is more than {limit} {unit} ({setting}): split the batch into smaller workbooks, or send it as CSV"
    )]
    XlsxLimit {
        file: String,
        /// What went over, e.g. "the unpacked size of part xl/worksheets/sheet1.xml".
        what: String,
        limit: u64,
        unit: &'static str,
        /// The setting the limit derives from.
        setting: &'static str,
    },

    #[error(
        "`{file}` line {line} has {found} fields but the header has {expected}: check for a missing or extra delimiter, or a quote (\") that is not closed, on that line and submit the file again"
    )]
    FieldCount {
        file: String,
        line: u64,
        expected: u64,
        found: u64,
    },

    #[error(
        "`{file}` cannot be read as an Excel workbook ({message}): save it from Excel as \"Excel Workbook (.xlsx)\" or as \"CSV UTF-8\" and submit it again"
    )]
    Xlsx { file: String, message: String },

    #[error(
        "`{file}` cannot be read as CSV at line {line} ({message}): fix that line and submit the file again"
    )]
    Csv {
        file: String,
        line: u64,
        message: String,
    },
}

impl IntakeError {
    /// The 1-based physical line of the file the error is about (the CSV header is line 1),
    /// when there is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::NotUtf8 { line, .. }
            | Self::JsonSyntax { line, .. }
            | Self::FieldCount { line, .. }
            | Self::Csv { line, .. } => Some(*line),
            Self::MissingColumns { line, .. }
            | Self::DuplicateColumn { line, .. }
            | Self::InvalidValue { line, .. } => *line,
            Self::Io { .. }
            | Self::Empty { .. }
            | Self::JsonNotArray { .. }
            | Self::JsonNotObject { .. }
            | Self::JsonNotText { .. }
            | Self::Xlsx { .. }
            | Self::XlsxLimit { .. }
            | Self::Utf16 { .. }
            | Self::JsonEmptyArray { .. }
            | Self::DuplicateKey { .. }
            | Self::NoDataRows { .. } => None,
        }
    }
}

/// A required column the file lacks, with every header name that would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingColumn {
    /// English key, e.g. `mother_name`.
    pub column: &'static str,
    /// Accepted header names (case-insensitive; spaces and dashes count as underscores).
    pub accepted: &'static [&'static str],
}

fn in_column(column: &Option<String>) -> String {
    column
        .as_deref()
        .map(|c| format!(" (column `{c}`)"))
        .unwrap_or_default()
}

fn at_line(line: &Option<u64>) -> String {
    line.map(|l| format!(" (header on line {l})"))
        .unwrap_or_default()
}

fn at_line_comma(line: &Option<u64>) -> String {
    line.map(|l| format!("line {l}, ")).unwrap_or_default()
}

fn at_line_or_element(line: &Option<u64>, index: &Option<u64>) -> String {
    match (line, index) {
        (Some(l), _) => format!(" in the header on line {l}"),
        (None, Some(i)) => format!(" in element {i} of the JSON array"),
        (None, None) => String::new(),
    }
}

fn header_or_keys(line: &Option<u64>) -> &'static str {
    if line.is_some() {
        "header line"
    } else {
        "objects"
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn list_missing(missing: &[MissingColumn]) -> String {
    let mut out = String::new();
    for (i, m) in missing.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == missing.len() {
                " and "
            } else {
                ", "
            });
        }
        let _ = write!(
            out,
            "`{}` ({}: {})",
            m.column,
            plural(m.accepted.len(), "accepted name", "accepted names"),
            m.accepted.join(" or ")
        );
    }
    out
}

/// A column intake knows (everything else in a file is ignored): the field of [`RawRecord`] it
/// fills, at the same index in [`RawRecord::KEYS`].
struct FieldSpec {
    /// English key: the name used in reasons and error messages.
    key: &'static str,
    /// Accepted header names after [`normalize_header`].
    accepted: &'static [&'static str],
    required: bool,
}

const FIELDS: [FieldSpec; 13] = [
    FieldSpec {
        key: "nik",
        accepted: &["nik"],
        required: true,
    },
    FieldSpec {
        key: "kk",
        accepted: &["kk", "no_kk"],
        required: true,
    },
    FieldSpec {
        key: "name",
        accepted: &["name", "nama"],
        required: true,
    },
    FieldSpec {
        key: "mother_name",
        accepted: &["mother_name", "nama_ibu_kandung"],
        required: true,
    },
    FieldSpec {
        key: "birth_place",
        accepted: &["birth_place", "tempat_lahir"],
        required: true,
    },
    FieldSpec {
        key: "birth_date",
        accepted: &["birth_date", "tanggal_lahir"],
        required: true,
    },
    FieldSpec {
        key: "sex",
        accepted: &["sex", "jenis_kelamin"],
        required: true,
    },
    FieldSpec {
        key: "address",
        accepted: &["address", "alamat"],
        required: true,
    },
    FieldSpec {
        key: "region_code",
        accepted: &["region_code", "kode_wilayah"],
        required: true,
    },
    FieldSpec {
        key: "phone",
        accepted: &["phone", "no_hp"],
        required: false,
    },
    FieldSpec {
        key: "bank_code",
        accepted: &["bank_code", "kode_bank"],
        required: true,
    },
    FieldSpec {
        key: "account_number",
        accepted: &["account_number", "no_rekening"],
        required: false,
    },
    FieldSpec {
        key: "amount",
        accepted: &["amount", "nominal"],
        required: true,
    },
];

/// `" No-KK "` → `no_kk`: trimmed, lower-case, spaces and dashes as underscores.
fn normalize_header(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The index in [`FIELDS`] of the field a header name or JSON key stands for.
fn field_index(name: &str) -> Option<usize> {
    let name = normalize_header(name);
    FIELDS
        .iter()
        .position(|f| f.accepted.contains(&name.as_str()))
}

/// Sets the field of `FIELDS[i]` (the record's field at the same index).
fn set_field(record: &mut RawRecord, i: usize, value: Option<String>) {
    if let Some(slot) = record.values_mut().into_iter().nth(i) {
        *slot = value;
    }
}

/// The English keys of the fields of a record, in file order (`nik`, `kk`, `name`, …).
pub fn field_keys() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|f| f.key)
}

/// Sets the field a header name or key stands for (Indonesian or English, any case) and
/// returns its English key; `None` if no field has that name.
pub fn set_named_field(
    record: &mut RawRecord,
    name: &str,
    value: Option<String>,
) -> Option<&'static str> {
    let i = field_index(name)?;
    set_field(record, i, value);
    Some(FIELDS[i].key)
}

/// Trimmed cell text, `None` when nothing is left.
fn cell(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn missing_columns(present: &[bool; FIELDS.len()]) -> Vec<MissingColumn> {
    FIELDS
        .iter()
        .zip(present)
        .filter(|(spec, present)| spec.required && !**present)
        .map(|(spec, _)| MissingColumn {
            column: spec.key,
            accepted: spec.accepted,
        })
        .collect()
}

/// For each column of a header row (CSV, or the first row of a spreadsheet), the index in
/// [`FIELDS`] it fills; refuses a header that names one field twice or lacks a required one.
pub(super) fn map_header(
    file: &str,
    headers: &[String],
    line: Option<u64>,
) -> Result<Vec<Option<usize>>, IntakeError> {
    let mut seen: [Option<usize>; FIELDS.len()] = [None; FIELDS.len()];
    let mut columns = Vec::with_capacity(headers.len());
    for (col, header) in headers.iter().enumerate() {
        let index = field_index(header);
        if let Some(i) = index {
            if let Some(prev) = seen[i] {
                return Err(IntakeError::DuplicateColumn {
                    file: file.to_owned(),
                    column: FIELDS[i].key,
                    first: headers[prev].clone(),
                    second: header.clone(),
                    line,
                    index: None,
                });
            }
            seen[i] = Some(col);
        }
        columns.push(index);
    }
    let missing = missing_columns(&seen.map(|s| s.is_some()));
    if !missing.is_empty() {
        return Err(IntakeError::MissingColumns {
            file: file.to_owned(),
            missing,
            line,
        });
    }
    Ok(columns)
}

/// Whether a header cell names a column intake knows.
pub(super) fn is_known_column(name: &str) -> bool {
    field_index(name).is_some()
}

/// A value that breaks [`crate::domain::check_text`]: its field and what is wrong.
#[derive(Debug)]
pub(super) struct BadValue(pub &'static str, pub crate::domain::TextError);

/// Sets the field a mapped column stands for (see [`map_header`]) from a cell's text, once the
/// text passes the rules of every value (see [`crate::domain::text`]).
pub(super) fn fill(
    record: &mut RawRecord,
    column: Option<usize>,
    text: &str,
) -> Result<(), BadValue> {
    if let Some(i) = column {
        let value = checked_cell(i, text)?;
        set_field(record, i, value);
    }
    Ok(())
}

/// [`cell`], checked against the rules of field `FIELDS[i]`.
fn checked_cell(i: usize, text: &str) -> Result<Option<String>, BadValue> {
    let value = cell(text);
    if let Some(v) = &value {
        crate::domain::check_text(FIELDS[i].key, v).map_err(|e| BadValue(FIELDS[i].key, e))?;
    }
    Ok(value)
}

/// Whether the start of a file is UTF-16 text: a UTF-16 byte-order mark, or ASCII letters
/// alternating with NUL bytes (UTF-16 without a mark, as some exports write it).
pub fn looks_like_utf16(start: &[u8]) -> bool {
    if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") {
        return true;
    }
    let head = &start[..start.len().min(64) & !1];
    if head.len() < 4 {
        return false;
    }
    let zeros = |offset: usize| {
        head.iter()
            .skip(offset)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let half = head.len() / 2;
    zeros(1) * 4 >= half * 3 || zeros(0) * 4 >= half * 3
}

/// Reads a batch file from disk. See [`parse_reader`] for the formats.
pub fn parse_file(path: &Path) -> Result<Vec<RawRecord>, IntakeError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| IntakeError::Io {
        file: name.clone(),
        source,
    })?;
    parse_reader(&name, file)?.collect()
}

/// Reads a batch already in memory (an HTTP upload). `file_name` only labels errors.
pub fn parse_bytes(file_name: &str, bytes: &[u8]) -> Result<Vec<RawRecord>, IntakeError> {
    parse_reader(file_name, bytes)?.collect()
}

/// Opens a batch for reading record by record. The header (CSV) or the whole array (JSON) is
/// checked here, and so is the presence of at least one data row, so an `Ok` stream yields at
/// least one record; later rows may still fail (a wrong field count, bytes that are not UTF-8).
/// The stream ends after its first error.
pub fn parse_reader<R: Read>(file_name: &str, reader: R) -> Result<RecordStream<R>, IntakeError> {
    let file = file_name.to_owned();
    let io_err = |source| IntakeError::Io {
        file: file.clone(),
        source,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);

    // Skip the BOM and leading whitespace, counting the lines skipped.
    let mut skipped_lines = 0u64;
    let mut bom_checked = false;
    if looks_like_utf16(reader.fill_buf().map_err(io_err)?) {
        return Err(IntakeError::Utf16 { file });
    }
    let first = loop {
        let buf = reader.fill_buf().map_err(io_err)?;
        if buf.is_empty() {
            return Err(IntakeError::Empty { file });
        }
        let mut start = 0;
        if !bom_checked {
            // A BOM split across reads is not worth handling: buffers are 64 KiB.
            if buf.starts_with(b"\xEF\xBB\xBF") {
                start = 3;
            }
            bom_checked = true;
        }
        let rest = &buf[start..];
        match rest.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                skipped_lines += bytecount(&rest[..i], b'\n');
                let first = rest[i];
                reader.consume(start + i);
                break first;
            }
            None => {
                skipped_lines += bytecount(rest, b'\n');
                let n = buf.len();
                reader.consume(n);
            }
        }
    };

    match first {
        b'{' => Err(IntakeError::JsonNotArray { file }),
        b'[' => {
            // Lines before the array were skipped; put them back so serde_json counts from line 1.
            let mut bytes = vec![b'\n'; skipped_lines as usize];
            reader.read_to_end(&mut bytes).map_err(io_err)?;
            let records = parse_json(&file, &bytes)?;
            Ok(RecordStream {
                inner: Inner::Json(records.into_iter()),
            })
        }
        _ => {
            let rows = CsvRows::open(file, reader, skipped_lines)?;
            Ok(RecordStream {
                inner: Inner::Csv(Box::new(rows)),
            })
        }
    }
}

fn bytecount(bytes: &[u8], needle: u8) -> u64 {
    bytes.iter().filter(|&&b| b == needle).count() as u64
}

/// Records of one batch, in file order. Created by [`parse_reader`].
pub struct RecordStream<R: Read> {
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Csv(Box<CsvRows<R>>),
    Json(std::vec::IntoIter<RawRecord>),
}

impl<R: Read> Iterator for RecordStream<R> {
    type Item = Result<RawRecord, IntakeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv(rows) => rows.next(),
            Inner::Json(records) => records.next().map(Ok),
        }
    }
}

impl<R: Read> std::fmt::Debug for RecordStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.inner {
            Inner::Csv(_) => "csv",
            Inner::Json(_) => "json",
        };
        f.debug_struct("RecordStream")
            .field("format", &format)
            .finish_non_exhaustive()
    }
}

/// The header line is at most this long when looking for the delimiter; past it, the delimiter
/// is guessed from what was read.
const MAX_HEADER_SCAN: usize = 1024 * 1024;

type CsvSource<R> = Chain<Cursor<Vec<u8>>, BufReader<R>>;

struct CsvRows<R: Read> {
    file: String,
    reader: csv::Reader<CsvSource<R>>,
    /// For each data column, the index in [`FIELDS`] it fills.
    columns: Vec<Option<usize>>,
    /// Header text per data column, for error messages.
    headers: Vec<String>,
    /// Physical lines before the header (blank lines skipped at the top of the file).
    line_offset: u64,
    /// `row` of the next record.
    next_row: u32,
    /// The first record, read ahead by `open` to refuse a file without data rows.
    pending: Option<RawRecord>,
    record: csv::ByteRecord,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    fn open(file: String, mut reader: BufReader<R>, line_offset: u64) -> Result<Self, IntakeError> {
        // Read the header line (a quoted header may span lines) to choose the delimiter, then
        // hand it back to the CSV reader in front of the rest of the stream.
        let mut head = Vec::new();
        let mut quotes = 0usize;
        loop {
            let start = head.len();
            let n = reader
                .read_until(b'\n', &mut head)
                .map_err(|source| IntakeError::Io {
                    file: file.clone(),
                    source,
                })?;
            quotes += bytecount(&head[start..], b'"') as usize;
            if n == 0 || quotes.is_multiple_of(2) || head.len() > MAX_HEADER_SCAN {
                break;
            }
        }
        let delimiter = detect_delimiter(&head);

        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(Cursor::new(head).chain(reader));
        let mut rows = CsvRows {
            file,
            reader,
            columns: Vec::new(),
            headers: Vec::new(),
            line_offset,
            next_row: 1,
            pending: None,
            record: csv::ByteRecord::new(),
            done: false,
        };
        rows.read_header()?;
        match rows.next_record() {
            Some(Ok(first)) => rows.pending = Some(first),
            Some(Err(e)) => return Err(e),
            None => return Err(IntakeError::NoDataRows { file: rows.file }),
        }
        Ok(rows)
    }

    fn read_header(&mut self) -> Result<(), IntakeError> {
        if !self.read_byte_record()? {
            return Err(IntakeError::Empty {
                file: self.file.clone(),
            });
        }
        let line = self.line();
        let mut headers = Vec::with_capacity(self.record.len());
        for field in &self.record {
            match std::str::from_utf8(field) {
                Ok(text) => headers.push(text.trim().to_owned()),
                Err(_) => {
                    return Err(IntakeError::NotUtf8 {
                        file: self.file.clone(),
                        line,
                        column: None,
                    });
                }
            }
        }
        let columns = map_header(&self.file, &headers, Some(line))?;
        self.columns = columns;
        self.headers = headers;
        Ok(())
    }

    /// The physical line the current byte record starts on.
    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line()) + self.line_offset
    }

    fn read_byte_record(&mut self) -> Result<bool, IntakeError> {
        self.reader.read_byte_record(&mut self.record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line()) + self.line_offset;
            match e.into_kind() {
                csv::ErrorKind::Io(source) => IntakeError::Io {
                    file: self.file.clone(),
                    source,
                },
                kind => IntakeError::Csv {
                    file: self.file.clone(),
                    line,
                    message: format!("{kind:?}"),
                },
            }
        })
    }

    /// The next data record, skipping rows whose cells are all empty.
    fn next_record(&mut self) -> Option<Result<RawRecord, IntakeError>> {
        loop {
            match self.read_byte_record() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
            let blank = |f: &[u8]| std::str::from_utf8(f).is_ok_and(|s| s.trim().is_empty());
            if self.record.iter().all(blank) {
                continue;
            }
            return Some(self.convert());
        }
    }

    fn convert(&mut self) -> Result<RawRecord, IntakeError> {
        let line = self.line();
        if self.record.len() != self.columns.len() {
            return Err(IntakeError::FieldCount {
                file: self.file.clone(),
                line,
                expected: self.columns.len() as u64,
                found: self.record.len() as u64,
            });
        }
        let mut out = RawRecord {
            row: self.next_row,
            ..RawRecord::default()
        };
        let mut newlines_before = 0;
        for (col, bytes) in self.record.iter().enumerate() {
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    let within = bytecount(&bytes[..e.valid_up_to()], b'\n');
                    return Err(IntakeError::NotUtf8 {
                        file: self.file.clone(),
                        line: line + newlines_before + within,
                        column: Some(self.headers[col].clone()),
                    });
                }
            };
            fill(&mut out, self.columns[col], text).map_err(|BadValue(field, error)| {
                IntakeError::InvalidValue {
                    file: self.file.clone(),
                    line: Some(line + newlines_before),
                    row: u64::from(self.next_row),
                    field,
                    error,
                }
            })?;
            newlines_before += bytecount(bytes, b'\n');
        }
        self.next_row += 1;
        Ok(out)
    }

    fn next(&mut self) -> Option<Result<RawRecord, IntakeError>> {
        if let Some(first) = self.pending.take() {
            return Some(Ok(first));
        }
        if self.done {
            return None;
        }
        let next = self.next_record();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

/// Comma or semicolon, whichever appears more often outside quotes in the header line
/// (Excel writes semicolons where the decimal separator is a comma, as in Indonesia).
fn detect_delimiter(head: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// One element of a JSON batch: an object with its keys in file order, repeated keys kept (so
/// that they can be refused), or any other value.
enum Element {
    Object(Vec<(String, Value)>),
    Other(Value),
}

impl<'de> serde::Deserialize<'de> for Element {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Element;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a recipient object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Element, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    entries.push((k, v));
                }
                Ok(Element::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                let v = serde::Deserialize::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Element::Other(Value::Array(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Element, E> {
                Ok(Element::Other(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Element, E> {
                Ok(Element::Other(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Element, E> {
                Ok(Element::Other(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Element, E> {
                Ok(Element::Other(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Element, E> {
                Ok(Element::Other(Value::String(v.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Element, E> {
                Ok(Element::Other(Value::Null))
            }
        }
        d.deserialize_any(Visit)
    }
}

fn parse_json(file: &str, bytes: &[u8]) -> Result<Vec<RawRecord>, IntakeError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = 1 + bytecount(&bytes[..e.valid_up_to()], b'\n');
        return Err(IntakeError::NotUtf8 {
            file: file.to_owned(),
            line,
            column: None,
        });
    }
    let elements: Vec<Element> =
        serde_json::from_slice(bytes).map_err(|e| IntakeError::JsonSyntax {
            file: file.to_owned(),
            line: e.line() as u64,
            column: e.column() as u64,
            message: json_message(&e),
        })?;
    if elements.is_empty() {
        return Err(IntakeError::JsonEmptyArray {
            file: file.to_owned(),
        });
    }

    let mut present = [false; FIELDS.len()];
    let mut records = Vec::with_capacity(elements.len());
    for (i, element) in elements.into_iter().enumerate() {
        let index = i as u64 + 1;
        let object = match element {
            Element::Object(entries) => entries,
            Element::Other(other) => {
                return Err(IntakeError::JsonNotObject {
                    file: file.to_owned(),
                    index,
                    found: json_kind(&other),
                });
            }
        };
        let mut record = RawRecord {
            row: (i + 1) as u32,
            ..RawRecord::default()
        };
        let mut seen: [Option<&str>; FIELDS.len()] = [None; FIELDS.len()];
        for (key, value) in &object {
            let Some(f) = field_index(key) else { continue };
            if let Some(prev) = seen[f] {
                if prev == key {
                    return Err(IntakeError::DuplicateKey {
                        file: file.to_owned(),
                        index,
                        key: key.clone(),
                        column: FIELDS[f].key,
                    });
                }
                return Err(IntakeError::DuplicateColumn {
                    file: file.to_owned(),
                    column: FIELDS[f].key,
                    first: prev.to_owned(),
                    second: key.clone(),
                    line: None,
                    index: Some(index),
                });
            }
            seen[f] = Some(key);
            present[f] = true;
            let text = match value {
                Value::Null => None,
                Value::String(s) => checked_cell(f, s).map_err(|BadValue(field, error)| {
                    IntakeError::InvalidValue {
                        file: file.to_owned(),
                        line: None,
                        row: index,
                        field,
                        error,
                    }
                })?,
                Value::Number(n) => Some(n.to_string()),
                other => {
                    return Err(IntakeError::JsonNotText {
                        file: file.to_owned(),
                        index,
                        field: key.clone(),
                        found: json_kind(other),
                    });
                }
            };
            set_field(&mut record, f, text);
        }
        records.push(record);
    }
    let missing = missing_columns(&present);
    if !missing.is_empty() {
        return Err(IntakeError::MissingColumns {
            file: file.to_owned(),
            missing,
            line: None,
        });
    }
    Ok(records)
}

/// serde_json's message without its trailing " at line L column C" (the error adds its own).
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn intake_fields_are_the_records_fields_in_order() {
        let keys: Vec<&str> = super::field_keys().collect();
        assert_eq!(keys, super::RawRecord::KEYS);
    }

    use super::*;

    const HEADER: &str = "nik,no_kk,nama,nama_ibu_kandung,tempat_lahir,tanggal_lahir,jenis_kelamin,alamat,kode_wilayah,no_hp,kode_bank,no_rekening,nominal";
    const ROW1: &str = "5301011203850001,5301010101100003,Yohanes Ndun,Maria Bria,Kupang,12-03-1985,L,\"Jl. Timor Raya No. 5, RT 003/RW 005\",53.01.01.2001,081234567890,002,,600000";
    const ROW2: &str = "3578015507900002,3578010202150001,Siti Aminah,Sumiati,Surabaya,1990-07-15,P,Jl. Merdeka No. 12,35.78.01.1001,,009,0123456789,\"Rp 600.000,00\"";

    fn csv(rows: &[&str]) -> String {
        rows.join("\n")
    }

    fn parse(text: &str) -> Result<Vec<RawRecord>, IntakeError> {
        parse_bytes("batch.csv", text.as_bytes())
    }

    #[test]
    fn comma_separated_file_is_read_with_leading_zeros_and_quoted_delimiters() {
        let records = parse(&csv(&[HEADER, ROW1])).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.row, 1);
        assert_eq!(r.nik.as_deref(), Some("5301011203850001"));
        assert_eq!(r.bank_code.as_deref(), Some("002"));
        assert_eq!(
            r.address.as_deref(),
            Some("Jl. Timor Raya No. 5, RT 003/RW 005")
        );
        assert_eq!(r.account_number, None);
        assert_eq!(r.amount.as_deref(), Some("600000"));
    }

    #[test]
    fn semicolon_separated_file_keeps_commas_in_values() {
        let text = "NIK;No KK;Nama;Nama Ibu Kandung;Tempat Lahir;Tanggal Lahir;Jenis Kelamin;Alamat;Kode Wilayah;No HP;Kode Bank;No Rekening;Nominal\n\
            3578015507900002;3578010202150001;Siti Aminah;Sumiati;Surabaya;15/07/1990;P;Jl. Merdeka No. 12, RT 001/RW 002;3578011001;;009;;Rp 600.000,00\n";
        let records = parse(text).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].amount.as_deref(), Some("Rp 600.000,00"));
        assert_eq!(
            records[0].address.as_deref(),
            Some("Jl. Merdeka No. 12, RT 001/RW 002")
        );
        assert_eq!(records[0].phone, None);
    }

    #[test]
    fn quoted_delimiter_and_newline_in_a_header_do_not_fool_detection() {
        // Two semicolons outside quotes against one comma inside: semicolon wins.
        let text = "\"nik\";\"no_kk\";nama;nama_ibu_kandung;tempat_lahir;tanggal_lahir;jenis_kelamin;\"alamat, lengkap\";kode_wilayah;kode_bank;nominal\n\
            1;2;3;4;5;6;7;\"a;b\nc\";9;10;11\n";
        let err = parse(text).unwrap_err();
        // `alamat, lengkap` is an unknown column, so `address` is missing.
        assert!(
            matches!(&err, IntakeError::MissingColumns { missing, .. } if missing.len() == 1 && missing[0].column == "address"),
            "{err}"
        );

        let text = text.replace("\"alamat, lengkap\"", "alamat");
        let records = parse(&text).unwrap();
        assert_eq!(records[0].address.as_deref(), Some("a;b\nc"));
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let text = format!("\u{feff}{HEADER}\r\n{ROW1}\r\n{ROW2}\r\n\r\n\r\n");
        let records = parse(&text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].nik.as_deref(), Some("5301011203850001"));
        assert_eq!(records[1].amount.as_deref(), Some("Rp 600.000,00"));
        assert_eq!(records[1].row, 2);
    }

    #[test]
    fn indonesian_and_english_headers_in_mixed_case_with_extra_columns() {
        let text = "No,NIK,No-KK,NAMA,Mother Name,tempat_lahir,Tanggal Lahir,SEX,Alamat,Kode-Wilayah,Bank Code,Amount,Keterangan\n\
            1, 5301011203850001 ,5301010101100003,Yohanes Ndun,Maria Bria,Kupang,12-03-1985,L,Jl. X,5301012001,002,600000,baru\n";
        let records = parse(text).unwrap();
        let r = &records[0];
        assert_eq!(r.nik.as_deref(), Some("5301011203850001"));
        assert_eq!(r.kk.as_deref(), Some("5301010101100003"));
        assert_eq!(r.mother_name.as_deref(), Some("Maria Bria"));
        assert_eq!(r.sex.as_deref(), Some("L"));
        assert_eq!(r.region_code.as_deref(), Some("5301012001"));
        assert_eq!(r.phone, None);
        assert_eq!(r.account_number, None);
    }

    #[test]
    fn missing_required_columns_are_all_named_with_their_accepted_headers() {
        let text = "nik,nama,tempat_lahir,tanggal_lahir,jenis_kelamin,alamat,kode_wilayah,nominal\n1,2,3,4,5,6,7,8\n";
        let err = parse(text).unwrap_err();
        let IntakeError::MissingColumns { missing, line, .. } = &err else {
            panic!("{err}")
        };
        let names: Vec<_> = missing.iter().map(|m| m.column).collect();
        assert_eq!(names, ["kk", "mother_name", "bank_code"]);
        assert_eq!(*line, Some(1));
        let message = err.to_string();
        for accepted in [
            "no_kk",
            "nama_ibu_kandung",
            "mother_name",
            "kode_bank",
            "bank_code",
        ] {
            assert!(message.contains(accepted), "{message}");
        }
        assert!(message.contains("batch.csv"), "{message}");
    }

    #[test]
    fn wrong_field_count_names_the_physical_line() {
        // The quoted newline in row 1 makes row 2 start on line 4.
        let text = format!(
            "{HEADER}\n{}\n{}\n",
            ROW1.replace("Jl. Timor Raya No. 5", "Jl. Timor Raya\nNo. 5"),
            "3578015507900002,3578010202150001,Siti Aminah"
        );
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(
                err,
                IntakeError::FieldCount {
                    line: 4,
                    expected: 13,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.line(), Some(4));
        assert!(err.to_string().contains("line 4"), "{err}");
    }

    #[test]
    fn header_without_rows_is_refused() {
        for text in [format!("{HEADER}\n"), format!("{HEADER}\n,,,,,,,,,,,,\n\n")] {
            let err = parse(&text).unwrap_err();
            assert!(matches!(err, IntakeError::NoDataRows { .. }), "{err:?}");
        }
        assert!(matches!(
            parse(" \n\n").unwrap_err(),
            IntakeError::Empty { .. }
        ));
        assert!(matches!(parse("").unwrap_err(), IntakeError::Empty { .. }));
        let err = parse_bytes("b.json", b"[]").unwrap_err();
        assert!(matches!(err, IntakeError::JsonEmptyArray { .. }), "{err:?}");
        assert!(!err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn control_characters_and_long_values_are_refused_with_line_row_and_field() {
        let text = format!(
            "{HEADER}\n{ROW1}\n{}\n",
            ROW2.replace("Siti Aminah", "Siti\u{0}Aminah")
        );
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(
                &err,
                IntakeError::InvalidValue {
                    line: Some(3),
                    row: 2,
                    field: "name",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("U+0000"), "{err}");
        let long = "a".repeat(301);
        let text = format!(
            "{HEADER}\n{}\n",
            ROW1.replace("Jl. Timor Raya No. 5, RT 003/RW 005", &long)
        );
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(
                &err,
                IntakeError::InvalidValue {
                    line: Some(2),
                    row: 1,
                    field: "address",
                    ..
                }
            ),
            "{err:?}"
        );
        let json = br#"[{"nik":"1","no_kk":"2","nama":"A\u0000","nama_ibu_kandung":"x","tempat_lahir":"x","tanggal_lahir":"x","jenis_kelamin":"L","alamat":"x","kode_wilayah":"x","kode_bank":"002","nominal":"1"}]"#;
        let err = parse_bytes("b.json", json).unwrap_err();
        assert!(
            matches!(
                &err,
                IntakeError::InvalidValue {
                    line: None,
                    row: 1,
                    field: "name",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_repeated_json_key_or_two_aliases_are_refused_with_the_element() {
        let base = r#""no_kk":"2","nama":"A","nama_ibu_kandung":"x","tempat_lahir":"x","tanggal_lahir":"x","jenis_kelamin":"L","alamat":"x","kode_wilayah":"x","kode_bank":"002""#;
        let json = format!(
            r#"[{{"nik":"1",{base},"nominal":"1"}},{{"nik":"1","nik":"2",{base},"nominal":"1"}}]"#
        );
        let err = parse_bytes("b.json", json.as_bytes()).unwrap_err();
        assert!(
            matches!(
                &err,
                IntakeError::DuplicateKey {
                    index: 2,
                    column: "nik",
                    ..
                }
            ),
            "{err:?}"
        );
        let json = format!(r#"[{{"nik":"1",{base},"nominal":"1","amount":"2"}}]"#);
        let err = parse_bytes("b.json", json.as_bytes()).unwrap_err();
        assert!(
            matches!(
                &err,
                IntakeError::DuplicateColumn {
                    index: Some(1),
                    column: "amount",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn utf16_is_named_as_such() {
        let utf16le: Vec<u8> = HEADER.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = HEADER.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let mut bom = vec![0xFF, 0xFE];
        bom.extend(&utf16le);
        for bytes in [utf16le, utf16be, bom] {
            let err = parse_bytes("b.csv", &bytes).unwrap_err();
            assert!(matches!(err, IntakeError::Utf16 { .. }), "{err:?}");
            assert!(err.to_string().contains("UTF-16"), "{err}");
        }
        assert!(!looks_like_utf16(HEADER.as_bytes()));
        assert!(!looks_like_utf16("Nama Ibu Kandung Ñ".as_bytes()));
    }

    #[test]
    fn rows_of_empty_cells_are_skipped_but_partial_rows_are_kept() {
        let text = format!(
            "{HEADER}\n{ROW1}\n,,,,,,,,,,,,\n \n\n,,Budi,,,,,,,,,,\n{ROW2}\n,,,,,,,,,,,,\n"
        );
        let records = parse(&text).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].name.as_deref(), Some("Budi"));
        assert_eq!(records[1].nik, None);
        assert_eq!(records.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn not_utf8_names_the_line_and_column() {
        let mut bytes = format!("{HEADER}\n{ROW1}\n").into_bytes();
        bytes.extend_from_slice(b"3578015507900002,3578010202150001,Siti Aminah,Sum\xE9ati,Surabaya,1990-07-15,P,Jl. Merdeka,3578011001,,009,,600000\n");
        let err = parse_bytes("batch.csv", &bytes).unwrap_err();
        assert!(
            matches!(&err, IntakeError::NotUtf8 { line: 3, column: Some(c), .. } if c == "nama_ibu_kandung"),
            "{err:?}"
        );
        assert!(err.to_string().contains("UTF-8"));

        let err = parse_bytes("b.json", b"[\n{\"nik\": \"\xFF\"}]").unwrap_err();
        assert!(
            matches!(err, IntakeError::NotUtf8 { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_column_is_refused() {
        let text = format!("{HEADER},NIK\n{ROW1},1\n");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(&err, IntakeError::DuplicateColumn { column: "nik", first, second, line: Some(1), .. } if first == "nik" && second == "NIK"),
            "{err:?}"
        );
        let text = HEADER.replace("no_hp", "name");
        let err = parse(&format!("{text}\n{ROW1}\n")).unwrap_err();
        assert!(
            matches!(err, IntakeError::DuplicateColumn { column: "name", .. }),
            "{err:?}"
        );
    }

    const JSON: &str = r#"[
        {"NIK": 5301011203850001, "no_kk": "5301010101100003", "nama": "Yohanes Ndun",
         "Nama Ibu Kandung": "Maria Bria", "tempat_lahir": "Kupang", "tanggal_lahir": "12-03-1985",
         "jenis_kelamin": "L", "alamat": "Jl. X", "kode_wilayah": "53.01.01.2001",
         "kode_bank": "002", "nominal": 600000, "catatan": {"x": true}},
        {"nik": "3578015507900002", "kk": null, "name": " Siti ", "mother_name": "",
         "birth_place": "Surabaya", "birth_date": "1990-07-15", "sex": "P", "address": "Jl. Y",
         "region_code": "3578011001", "bank_code": "009", "amount": "600.000", "phone": "0812"}
    ]"#;

    #[test]
    fn json_array_is_read_with_aliases_union_of_keys_and_exact_numbers() {
        let records = parse_bytes("b.json", JSON.as_bytes()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].nik.as_deref(), Some("5301011203850001"));
        assert_eq!(records[0].amount.as_deref(), Some("600000"));
        assert_eq!(records[0].phone, None);
        assert_eq!(records[1].row, 2);
        assert_eq!(records[1].kk, None);
        assert_eq!(records[1].name.as_deref(), Some("Siti"));
        assert_eq!(records[1].mother_name, None);
        assert_eq!(records[1].phone.as_deref(), Some("0812"));

        // A required key absent from every object refuses the file.
        let err = parse_bytes("b.json", br#"[{"nik": "1"}, {"nama": "x"}]"#).unwrap_err();
        let IntakeError::MissingColumns {
            missing,
            line: None,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(missing.len(), 9);
    }

    #[test]
    fn json_that_is_not_an_array_of_text_valued_objects_is_refused() {
        let err = parse_bytes("b.json", b"\xEF\xBB\xBF  {\"nik\": \"1\"}").unwrap_err();
        assert!(matches!(err, IntakeError::JsonNotArray { .. }), "{err:?}");
        assert!(err.to_string().contains("array"));

        let err = parse_bytes("b.json", br#"[{"nik": "1"}, 5]"#).unwrap_err();
        assert!(
            matches!(err, IntakeError::JsonNotObject { index: 2, .. }),
            "{err:?}"
        );

        for value in ["true", "{\"a\": 1}", "[\"1\"]"] {
            let text = format!("[{{\"nik\": {value}}}]");
            let err = parse_bytes("b.json", text.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, IntakeError::JsonNotText { index: 1, field, .. } if field == "nik"),
                "{err:?}"
            );
        }

        let err = parse_bytes("b.json", b"[\n  {\"nik\": \"1\",}\n]").unwrap_err();
        assert!(
            matches!(err, IntakeError::JsonSyntax { line: 2, .. }),
            "{err:?}"
        );
        assert_eq!(err.line(), Some(2));

        let err = parse_bytes("b.json", br#"[{"nik": "1", "NIK": "2"}]"#).unwrap_err();
        assert!(
            matches!(err, IntakeError::DuplicateColumn { index: Some(1), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn streaming_reader_yields_what_parse_bytes_returns() {
        let mut text = format!("{HEADER}\r\n");
        for i in 0..2_000 {
            text.push_str(if i % 2 == 0 { ROW1 } else { ROW2 });
            text.push_str(if i % 7 == 0 {
                "\r\n,,,,,,,,,,,,\r\n"
            } else {
                "\r\n"
            });
        }
        let whole = parse(&text).unwrap();
        // A reader that hands out a few bytes at a time, as a socket would.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let streamed: Vec<_> = parse_reader("batch.csv", Trickle(text.as_bytes()))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(streamed.len(), 2_000);
        assert_eq!(streamed, whole);
        assert_eq!(streamed.last().unwrap().row, 2_000);
    }

    #[test]
    fn stream_stops_after_its_first_error() {
        let text = format!("{HEADER}\n{ROW1}\n1,2\n{ROW2}\n");
        let results: Vec<_> = parse_reader("batch.csv", text.as_bytes())
            .unwrap()
            .collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(IntakeError::FieldCount { line: 3, .. })
        ));
    }

    #[test]
    fn parse_file_names_the_file_it_cannot_open() {
        let err = parse_file(Path::new("/nonexistent/salur/batch.csv")).unwrap_err();
        assert!(matches!(err, IntakeError::Io { .. }));
        assert!(
            err.to_string().contains("/nonexistent/salur/batch.csv"),
            "{err}"
        );
    }

    #[test]
    fn every_message_is_one_sentence_naming_the_file() {
        let errors = [
            parse("").unwrap_err(),
            parse(&format!("{HEADER}\n")).unwrap_err(),
            parse("nik\n1\n").unwrap_err(),
            parse(&format!("{HEADER}\n1\n")).unwrap_err(),
            parse_bytes("batch.csv", b"{}").unwrap_err(),
            parse_bytes("batch.csv", b"[1]").unwrap_err(),
        ];
        for err in errors {
            let message = err.to_string();
            assert!(message.contains("batch.csv"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
