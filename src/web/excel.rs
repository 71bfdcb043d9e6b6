//! The Excel round trip of a batch's blocked records.
//!
//! "Unduh data yang perlu diperbaiki" ([`download`]) writes an .xlsx (`rust_xlsxwriter`): one
//! row per blocked record, one column per field (named as intake names them in Indonesian),
//! the fields to fix filled yellow with a note giving the reason in Indonesian, every value a
//! Text cell (so a NIK or an account number keeps its digits), and a hidden `id_data` column.
//! The fields to fix show the office's own value (what is wrong with it is the point); the
//! others are masked, only to recognise the recipient. Only the office's makers download it.
//!
//! The filled workbook comes back through [`upload`]: the archive is checked by intake's own
//! limits ([`crate::intake::xlsx::check_archive`]), cells are read as intake reads them; a
//! cell that differs from both the record's value and its masked form is a correction. The
//! corrections are applied by [`remediate::fix_file`], the code of `salur records fix --file`:
//! all or nothing, with its rules; a refusal is reported by the sheet's row and column.
//! Replaying is a separate, confirmed step (the batch's replay button).

use super::pages::{Upload, read_multipart};
use super::text::{self, Lang, t};
use super::{Console, h};
use crate::api::AppState;
use crate::domain::{RawRecord, Reason};
use crate::intake::xlsx::{XlsxLimits, cell_text, check_archive, looks_like_xlsx};
use crate::ops::office::Role;
use crate::ops::remediate::{self, RemediateError, Scope};
use crate::store::{State as RecordState, batches, records};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use calamine::{Data, Reader as _, Xlsx};
use rust_xlsxwriter::{Color, Format, FormatBorder, FormatPattern, Note, Workbook};
use std::collections::HashMap;
use std::io::Cursor;
use uuid::Uuid;

/// The hidden column naming the record.
pub const ID_COLUMN: &str = "id_data";
/// `(English key, column header)`: headers intake accepts, in file order.
pub const COLUMNS: [(&str, &str); 13] = [
    ("nik", "nik"),
    ("kk", "no_kk"),
    ("name", "nama"),
    ("mother_name", "nama_ibu_kandung"),
    ("birth_place", "tempat_lahir"),
    ("birth_date", "tanggal_lahir"),
    ("sex", "jenis_kelamin"),
    ("address", "alamat"),
    ("region_code", "kode_wilayah"),
    ("phone", "no_hp"),
    ("bank_code", "kode_bank"),
    ("account_number", "no_rekening"),
    ("amount", "nominal"),
];
/// Columns before the fields: the hidden id, the row in the batch file, the reasons.
const FIRST_FIELD: u16 = 3;

/// `A`, `B`, …, `Z`, `AA`, … for a 0-based column.
pub fn column_letter(col: u32) -> String {
    let mut n = col + 1;
    let mut out = Vec::new();
    while n > 0 {
        let r = ((n - 1) % 26) as u8;
        out.push(b'A' + r);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// A blocked record as the workbook shows it.
pub struct Blocked {
    pub id: i64,
    pub row: i32,
    pub raw: RawRecord,
    pub reasons: Vec<Reason>,
}

/// The workbook of `blocked`, reasons in `lang`.
pub fn workbook(lang: Lang, blocked: &[Blocked]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Perbaikan")?;
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDCE6F1))
        .set_border(FormatBorder::Thin);
    let text_cell = Format::new().set_num_format("@");
    let to_fix = Format::new()
        .set_num_format("@")
        .set_pattern(FormatPattern::Solid)
        .set_background_color(Color::RGB(0xFFE699))
        .set_border(FormatBorder::Thin);
    ws.write_string_with_format(0, 0, ID_COLUMN, &header)?;
    ws.write_string_with_format(0, 1, "baris", &header)?;
    ws.write_string_with_format(0, 2, "alasan", &header)?;
    for (i, (_, name)) in COLUMNS.iter().enumerate() {
        let col = FIRST_FIELD + i as u16;
        ws.write_string_with_format(0, col, *name, &header)?;
        ws.set_column_format(col, &text_cell)?;
        ws.set_column_width(col, 20)?;
    }
    ws.set_column_hidden(0)?;
    ws.set_column_width(2, 60)?;
    ws.set_freeze_panes(1, FIRST_FIELD)?;
    for (i, b) in blocked.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_number(r, 0, b.id as f64)?;
        ws.write_number(r, 1, f64::from(b.row))?;
        let words: Vec<String> = b
            .reasons
            .iter()
            .map(|x| text::reason(lang, x.code.as_str(), &x.message))
            .collect();
        ws.write_string(r, 2, words.join(" "))?;
        for (c, (key, _)) in COLUMNS.iter().enumerate() {
            let col = FIRST_FIELD + c as u16;
            let value = b
                .raw
                .fields()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.clone());
            let why: Vec<String> = b
                .reasons
                .iter()
                .filter(|x| x.field == *key)
                .map(|x| text::reason(lang, x.code.as_str(), &x.message))
                .collect();
            if why.is_empty() {
                // Only to recognise the recipient: masked.
                if let Some(v) = value {
                    ws.write_string(r, col, RawRecord::mask_of(key)(&v))?;
                }
            } else {
                match value {
                    Some(v) => ws.write_string_with_format(r, col, v, &to_fix)?,
                    None => ws.write_blank(r, col, &to_fix)?,
                };
                let note = Note::new(why.join("\n"))
                    .set_author("Salur")
                    .set_width(320)
                    .set_height(90);
                ws.insert_note(r, col, &note)?;
            }
        }
    }
    wb.save_to_buffer()
}

/// The batch's blocked records, in file order, with their values.
async fn blocked_of(
    state: &AppState,
    office: Option<&str>,
    batch: Uuid,
) -> anyhow::Result<Vec<Blocked>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = batches::records(
            &state.pool,
            batch,
            &batches::RecordQuery {
                after,
                state: Some(RecordState::Blocked.as_str()),
                reason: None,
                limit: 500,
            },
        )
        .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<i64> = page.iter().map(|r| r.id).collect();
        let reasons: HashMap<i64, serde_json::Value> =
            page.into_iter().map(|r| (r.id, r.reasons)).collect();
        let mut conn = state.pool.acquire().await?;
        for row in records::read_scoped(&mut conn, &ids, office).await? {
            out.push(Blocked {
                id: row.id,
                row: row.row_number,
                reasons: serde_json::from_value(reasons[&row.id].clone()).unwrap_or_default(),
                raw: row.raw,
            });
        }
    }
    out.sort_by_key(|b| b.row);
    Ok(out)
}

pub async fn download(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return console.not_found();
    };
    let scope = console.person().scope().map(str::to_owned);
    // The workbook shows the fields to fix as they are: for the office's makers, who fix them.
    match batches::visible(&state.pool, id, scope.as_deref()).await {
        Ok(true) if console.person().role != Role::Maker => return console.forbidden(),
        Ok(false) => return console.not_found(),
        Err(e) => return console.internal("reading a batch failed", &e),
        Ok(true) => {}
    }
    let blocked = match blocked_of(&state, scope.as_deref(), id).await {
        Ok(b) => b,
        Err(e) => return console.internal("reading blocked records failed", &e),
    };
    let lang = console.lang;
    let bytes = match tokio::task::spawn_blocking(move || workbook(lang, &blocked)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return console.internal("writing the workbook failed", &e),
        Err(e) => return console.internal("writing the workbook failed", &e),
    };
    let mut r = bytes.into_response();
    let hdr = r.headers_mut();
    hdr.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::api::upload::XLSX_MEDIA_TYPE),
    );
    hdr.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"perbaikan-{}.xlsx\"",
        &id.to_string()[..8]
    )) {
        hdr.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// A cell of the uploaded workbook that cannot be used: its sheet row (1-based, as Excel
/// numbers rows), its column (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellProblem {
    pub row: u32,
    pub col: Option<u32>,
    pub message: String,
}

impl CellProblem {
    fn whole(message: String) -> Self {
        Self {
            row: 0,
            col: None,
            message,
        }
    }
}

/// One data row of the uploaded workbook.
#[derive(Debug, Clone)]
pub struct SheetRow {
    /// 1-based, as Excel numbers rows.
    pub line: u32,
    pub id: i64,
    /// `(English key, 0-based column, cell text)` of the field columns.
    pub cells: Vec<(&'static str, u32, String)>,
}

/// Reads the first sheet of an uploaded corrections workbook: a header row naming `id_data`
/// and field columns, then one row per record.
pub fn read_sheet(bytes: &[u8], limits: &XlsxLimits) -> Result<Vec<SheetRow>, CellProblem> {
    let whole = CellProblem::whole;
    if !looks_like_xlsx(bytes) {
        return Err(whole("the file is not an Excel workbook (.xlsx)".into()));
    }
    check_archive("perbaikan.xlsx", bytes, limits).map_err(|e| whole(e.to_string()))?;
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| whole(format!("the workbook cannot be read: {e}")))?;
    let Some(sheet) = wb.sheet_names().first().cloned() else {
        return Err(whole("the workbook has no sheet".into()));
    };
    let range = wb
        .worksheet_range(&sheet)
        .map_err(|e| whole(format!("the sheet cannot be read: {e}")))?;
    let Some((r0, c0)) = range.start() else {
        return Err(whole("the sheet is empty".into()));
    };
    let mut rows = range.rows().enumerate();
    let Some((_, header)) = rows.next() else {
        return Err(whole("the sheet is empty".into()));
    };
    let mut id_col = None;
    let mut bank_col = None;
    let mut fields: Vec<(usize, &'static str)> = Vec::new();
    for (i, cell) in header.iter().enumerate() {
        let name = cell_text(cell, 0, None);
        let name = name.trim();
        if name.eq_ignore_ascii_case(ID_COLUMN) {
            id_col = Some(i);
        } else if let Some(key) =
            crate::intake::file::set_named_field(&mut RawRecord::default(), name, None)
        {
            if fields.iter().any(|(_, k)| *k == key) {
                return Err(CellProblem {
                    row: r0 + 1,
                    col: Some(c0 + i as u32),
                    message: format!("the column {name:?} appears twice"),
                });
            }
            if key == "bank_code" {
                bank_col = Some(c0 + i as u32);
            }
            fields.push((i, key));
        }
    }
    let Some(id_col) = id_col else {
        return Err(CellProblem {
            row: r0 + 1,
            col: None,
            message: format!(
                "the header row has no {ID_COLUMN} column: upload the workbook downloaded from the batch page, with its columns as they were"
            ),
        });
    };
    let mut out = Vec::new();
    for (i, row) in rows {
        let line = r0 + i as u32 + 1;
        let text = |c: usize| {
            row.get(c)
                .map(|d| cell_text(d, c0 + c as u32, bank_col))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let id_text = text(id_col);
        let blank = row.iter().all(|d| matches!(d, Data::Empty));
        if blank {
            continue;
        }
        let id = id_text
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| CellProblem {
                row: line,
                col: Some(c0 + id_col as u32),
                message: format!(
                    "the hidden {ID_COLUMN} column is empty or changed: keep the rows as downloaded"
                ),
            })?;
        let cells = fields
            .iter()
            .map(|(c, key)| (*key, c0 + *c as u32, text(*c)))
            .collect();
        out.push(SheetRow { line, id, cells });
    }
    Ok(out)
}

/// Where a correction sits in the sheet: for each line of the corrections CSV handed to
/// `fix_file` (from 2), the sheet row and the column of each field.
struct Placed {
    line: u32,
    columns: HashMap<&'static str, u32>,
}

/// The corrections of the sheet: a CSV for [`remediate::fix_file`] (keyed by `row`), and
/// where each of its lines came from. A cell is a correction when it is not empty and differs
/// from the record's value and from its masked form.
fn corrections_csv(
    batch: Uuid,
    rows: &[SheetRow],
    current: &HashMap<i64, crate::store::RecordRow>,
) -> Result<(Vec<u8>, Vec<Placed>), CellProblem> {
    let mut wanted: Vec<(i32, &SheetRow, HashMap<&'static str, String>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        let Some(record) = current.get(&r.id).filter(|rec| rec.batch_id == batch) else {
            return Err(CellProblem {
                row: r.line,
                col: None,
                message: format!(
                    "this row names no record of this batch (hidden {ID_COLUMN} {}): keep the rows as downloaded",
                    r.id
                ),
            });
        };
        if !seen.insert(r.id) {
            return Err(CellProblem {
                row: r.line,
                col: None,
                message: "this record is on two rows: keep one".into(),
            });
        }
        let mut sets = HashMap::new();
        for (key, _, value) in &r.cells {
            if value.is_empty() {
                continue;
            }
            let now = record
                .raw
                .fields()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.clone());
            let unchanged = now
                .as_deref()
                .is_some_and(|v| v == value || RawRecord::mask_of(key)(v) == *value);
            if !unchanged {
                sets.insert(*key, value.clone());
            }
        }
        if !sets.is_empty() {
            wanted.push((record.row_number, r, sets));
        }
    }
    let keys: Vec<&'static str> = COLUMNS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| wanted.iter().any(|(_, _, s)| s.contains_key(k)))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = std::iter::once("row").chain(keys.iter().copied()).collect();
    let io = |e: csv::Error| CellProblem::whole(e.to_string());
    w.write_record(&header).map_err(io)?;
    let mut placed = Vec::new();
    for (row, sheet_row, sets) in &wanted {
        let mut line = vec![row.to_string()];
        line.extend(
            keys.iter()
                .map(|k| sets.get(k).cloned().unwrap_or_default()),
        );
        w.write_record(&line).map_err(io)?;
        placed.push(Placed {
            line: sheet_row.line,
            columns: sheet_row.cells.iter().map(|(k, c, _)| (*k, *c)).collect(),
        });
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CellProblem::whole(e.to_string()))?;
    Ok((bytes, placed))
}

/// The field a refusal of `fix_file` names (`the correction of birth_date is refused: …`).
fn refused_field(message: &str) -> Option<&'static str> {
    let rest = message.split("the correction of ").nth(1)?;
    let field = rest.split(' ').next()?;
    COLUMNS.iter().map(|(k, _)| *k).find(|k| *k == field)
}

fn problem_html(lang: Lang, p: &CellProblem, field: Option<&str>) -> String {
    let mut place = Vec::new();
    if p.row > 0 {
        place.push(format!("{} {}", t(lang, "line"), p.row));
    }
    if let Some(c) = p.col {
        place.push(format!("{} {}", t(lang, "column"), column_letter(c)));
    }
    let field = field.map(|f| {
        format!(
            "<p><strong>{}:</strong> {} — {}</p>",
            t(lang, "column"),
            h(&text::field(lang, f)),
            t(lang, "fix_column")
        )
    });
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(
            "<p><strong>{}:</strong> <span id=\"fix-cell\">{}</span></p>",
            t(lang, "where"),
            place.join(", ")
        )
    };
    format!(
        r#"<div class="error" role="alert"><p><strong>{}</strong></p>{place}{}<p class="muted">{}</p></div>"#,
        t(lang, "fixes_refused"),
        field.unwrap_or_default(),
        h(&p.message)
    )
}

pub async fn upload(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    let lang = console.lang;
    let up: Upload = match read_multipart(form).await {
        Ok(u) => u,
        Err(e) => {
            return refused(
                &console,
                None,
                &CellProblem {
                    row: 0,
                    col: None,
                    message: e,
                },
            );
        }
    };
    if let Err(r) = console.check_csrf(up.fields.get("csrf").map(String::as_str)) {
        return r;
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return console.not_found();
    };
    let office = console.person().office.clone();
    match batches::visible(&state.pool, id, console.person().scope()).await {
        Ok(true) => {}
        Ok(false) => return console.not_found(),
        Err(e) => return console.internal("reading a batch failed", &e),
    }
    if console.person().role != Role::Maker {
        return console.forbidden();
    }
    let limits = XlsxLimits::for_body(state.settings.api_xlsx_limit);
    let bytes = up.bytes;
    let rows = match tokio::task::spawn_blocking(move || read_sheet(&bytes, &limits)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(p)) => return refused(&console, Some(id), &p),
        Err(e) => return console.internal("reading the workbook failed", &e),
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let current = match state.pool.acquire().await {
        Ok(mut conn) => match records::read_scoped(&mut conn, &ids, Some(&office)).await {
            Ok(rs) => rs.into_iter().map(|r| (r.id, r)).collect::<HashMap<_, _>>(),
            Err(e) => return console.internal("reading records failed", &e),
        },
        Err(e) => return console.internal("reading records failed", &e),
    };
    let (csv, placed) = match corrections_csv(id, &rows, &current) {
        Ok(c) => c,
        Err(p) => return refused(&console, Some(id), &p),
    };
    if placed.is_empty() {
        return refused(
            &console,
            Some(id),
            &CellProblem::whole(t(lang, "nothing_changed").to_owned()),
        );
    }
    let outcome = remediate::fix_file(
        &state.settings.amount_range,
        &state.pool,
        &Scope::Office(office),
        &console.person().principal().actor(),
        id,
        "perbaikan.xlsx",
        csv.as_slice(),
    )
    .await;
    match outcome {
        Ok(outcomes) => {
            let ready = outcomes.iter().filter(|o| o.ready).count();
            let list = super::pages::outcome_list(lang, &outcomes);
            let body = format!(
                r#"<h1>{title}</h1><p class="ok" role="status" id="fixes-applied">{title}: {n} · {ready_label}: {ready}</p>{list}
<form method="post" action="/batches/{id}/replay">{csrf}<p><button type="submit" id="confirm-replay">{confirm}</button></p></form>
<p><a href="/batches/{id}">{back}</a></p>"#,
                title = t(lang, "fixes_applied"),
                n = outcomes.len(),
                ready_label = t(lang, "ready"),
                csrf = console.csrf_field(),
                confirm = t(lang, "confirm_replay"),
                back = t(lang, "back"),
            );
            console.page(t(lang, "fixes_applied"), &body)
        }
        Err(RemediateError::FixFile { line, message, .. }) => {
            let at = placed.get((line as usize).saturating_sub(2));
            let col =
                refused_field(&message).and_then(|f| at.and_then(|p| p.columns.get(f).copied()));
            let p = CellProblem {
                row: at.map_or(0, |p| p.line),
                col,
                message,
            };
            refused(&console, Some(id), &p)
        }
        Err(RemediateError::BatchNotFound(_)) => console.not_found(),
        Err(e) => console.internal("applying the fixes failed", &e),
    }
}

fn refused(console: &Console, batch: Option<Uuid>, p: &CellProblem) -> Response {
    refused_at(console, batch, p, None)
}

fn refused_at(
    console: &Console,
    batch: Option<Uuid>,
    p: &CellProblem,
    field: Option<&str>,
) -> Response {
    let lang = console.lang;
    let back = batch
        .map(|b| format!(r#"<p><a href="/batches/{b}">{}</a></p>"#, t(lang, "back")))
        .unwrap_or_default();
    let body = format!(
        "<h1>{}</h1>{}{back}",
        t(lang, "upload_fixes"),
        problem_html(lang, p, field)
    );
    let mut r = console.page(t(lang, "upload_fixes"), &body);
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_lettered_as_in_excel() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }

    #[test]
    fn every_column_header_is_one_intake_accepts() {
        for (key, name) in COLUMNS {
            assert_eq!(
                crate::intake::file::set_named_field(&mut RawRecord::default(), name, None),
                Some(key)
            );
        }
    }

    #[test]
    fn the_refused_field_is_read_from_the_refusal() {
        assert_eq!(
            refused_field("the correction of birth_date is refused: birth_date must be a date"),
            Some("birth_date")
        );
        assert_eq!(refused_field("row 3 is not in batch"), None);
    }

    #[test]
    fn a_written_workbook_reads_back() {
        let mut raw = RawRecord {
            nik: Some("5371010101800001".into()),
            name: Some("Maria Ndun".into()),
            ..Default::default()
        };
        raw.row = 4;
        let reasons = vec![Reason::new(
            crate::domain::ReasonCode::MotherNameMissing,
            "mother_name",
            "mother_name is missing",
        )];
        let bytes = workbook(
            Lang::Id,
            &[Blocked {
                id: 77,
                row: 4,
                raw,
                reasons,
            }],
        )
        .unwrap();
        let rows = read_sheet(&bytes, &XlsxLimits::for_body(64 << 20)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, 77);
        assert_eq!(rows[0].line, 2);
        let nik = rows[0].cells.iter().find(|(k, _, _)| *k == "nik").unwrap();
        assert_eq!(nik.2, "5371********0001");
        assert_eq!(column_letter(nik.1), "D");
        let mother = rows[0]
            .cells
            .iter()
            .find(|(k, _, _)| *k == "mother_name")
            .unwrap();
        assert_eq!(mother.2, "");
    }
}
