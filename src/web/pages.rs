//! The console's pages: batches, upload, batch, record, approval. Each calls the operations
//! `/v1` calls, within the person's office ([`super::people::Person::scope`]).

use super::text::{self, Lang, rupiah, t};
use super::{Console, h};
use crate::api::AppState;
use crate::api::upload::{Format, store};
use crate::domain::{Reason, ReasonCode};
use crate::ops::approval::{self, ApprovalError, Checker};
use crate::ops::batch;
use crate::ops::office::Role;
use crate::ops::remediate::{self, Filter, RemediateError, Scope};
use crate::ops::submit::BatchInfo;
use crate::store::State as RecordState;
use crate::store::batches;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// The progress of a batch: records per part of the bar.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    pub disbursed: i64,
    pub moving: i64,
    pub approval: i64,
    pub blocked: i64,
    pub closed: i64,
}

impl Progress {
    pub fn of<'a>(states: impl IntoIterator<Item = (&'a str, i64)>) -> Self {
        let mut p = Progress::default();
        for (s, n) in states {
            match RecordState::parse(s) {
                Some(RecordState::Disbursed) => p.disbursed += n,
                Some(RecordState::Blocked) => p.blocked += n,
                Some(RecordState::AwaitingApproval) => p.approval += n,
                Some(s) if s.in_flight() => p.moving += n,
                _ => p.closed += n,
            }
        }
        p
    }

    fn total(&self) -> i64 {
        self.disbursed + self.moving + self.approval + self.blocked + self.closed
    }

    /// The bar: one coloured part per group (an SVG: the page's CSP allows no inline style),
    /// with a text alternative.
    pub fn bar(&self, lang: Lang) -> String {
        let total = self.total().max(1);
        let parts = [
            ("s-disbursed", self.disbursed),
            ("s-moving", self.moving),
            ("s-approval", self.approval),
            ("s-blocked", self.blocked),
            ("s-closed", self.closed),
        ];
        let mut x = 0i64;
        let mut rects = String::new();
        for (class, n) in parts {
            if n == 0 {
                continue;
            }
            let w = n * 1000 / total;
            rects.push_str(&format!(
                r#"<rect class="{class}" x="{x}" y="0" width="{w}" height="18" data-n="{n}"></rect>"#
            ));
            x += w;
        }
        let label = format!(
            "{} {} · {} {} · {} {} · {} {}",
            t(lang, "f_disbursed"),
            self.disbursed,
            t(lang, "in_flight"),
            self.moving,
            t(lang, "approval"),
            self.approval,
            text::state(lang, "blocked"),
            self.blocked,
        );
        format!(
            r#"<svg class="bar" viewBox="0 0 1000 18" preserveAspectRatio="none" role="img" aria-label="{label}"><title>{label}</title>{rects}</svg><div class="muted">{label}</div>"#,
            label = h(&label)
        )
    }
}

fn legend(lang: Lang) -> String {
    format!(
        r#"<div class="legend"><span><i class="s-disbursed"></i>{}</span><span><i class="s-moving"></i>{}</span><span><i class="s-approval"></i>{}</span><span><i class="s-blocked"></i>{}</span><span><i class="s-closed"></i>{}</span></div>"#,
        text::state(lang, "disbursed"),
        t(lang, "in_flight"),
        text::state(lang, "awaiting_approval"),
        text::state(lang, "blocked"),
        text::state(lang, "rejected"),
    )
}

/// The batch id of a path, if the person may see that batch; otherwise the 404 page.
async fn visible_batch(state: &AppState, console: &Console, raw: &str) -> Result<Uuid, Response> {
    let Ok(id) = Uuid::parse_str(raw) else {
        return Err(console.not_found());
    };
    match batches::visible(&state.pool, id, console.person().scope()).await {
        Ok(true) => Ok(id),
        Ok(false) => Err(console.not_found()),
        Err(e) => Err(console.internal("reading a batch failed", &e)),
    }
}

fn scope(console: &Console) -> Scope {
    match console.person().scope() {
        Some(o) => Scope::Office(o.to_owned()),
        None => Scope::All,
    }
}

/// The office of a maker (who may change records), or the 403 page.
fn maker_office(console: &Console) -> Result<String, Response> {
    if console.person().role == Role::Maker {
        Ok(console.person().office.clone())
    } else {
        Err(console.forbidden())
    }
}

#[derive(Deserialize)]
pub struct BatchesQuery {
    password: Option<String>,
}

pub async fn batches(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<BatchesQuery>,
) -> Response {
    let lang = console.lang;
    let rows = match batches::list(
        &state.pool,
        &batches::ListQuery {
            office: console.person().scope(),
            limit: 50,
            ..Default::default()
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return console.internal("listing batches failed", &e),
    };
    let mut body = format!("<h1>{}</h1>", t(lang, "batches"));
    if q.password.is_some() {
        body.push_str(&format!(
            r#"<p class="ok" role="status">{}</p>"#,
            t(lang, "pw_changed")
        ));
    }
    let mut moving = false;
    let mut table = String::new();
    for b in &rows {
        let totals = match batches::state_totals(&state.pool, b.id).await {
            Ok(t) => t,
            Err(e) => return console.internal("reading batch totals failed", &e),
        };
        let p = Progress::of(totals.iter().map(|(s, n, _)| (s.as_str(), *n)));
        moving |= p.moving > 0;
        table.push_str(&format!(
            r#"<tr><td><a href="/batches/{id}">{file}</a></td><td>{office}</td><td>{program} {period}</td><td class="num">{n}</td><td>{at}</td><td>{bar}</td></tr>"#,
            id = b.id,
            file = h(&b.file_name),
            office = h(&b.office),
            program = h(&b.program),
            period = h(&b.period),
            n = b.record_count,
            at = text::time(lang, b.created_at),
            bar = p.bar(lang),
        ));
    }
    if rows.is_empty() {
        body.push_str(&format!("<p>{}</p>", t(lang, "no_batches")));
    } else {
        body.push_str(&format!(
            r#"<div id="progress" data-done="{done}">{legend}<table><thead><tr><th scope="col">{file}</th><th scope="col">{office}</th><th scope="col">{program}</th><th scope="col" class="num">{records}</th><th scope="col">{at}</th><th scope="col">{progress}</th></tr></thead><tbody>{table}</tbody></table></div>"#,
            done = if moving { "0" } else { "1" },
            legend = legend(lang),
            file = t(lang, "file"),
            office = t(lang, "office"),
            program = t(lang, "program"),
            records = t(lang, "records"),
            at = t(lang, "uploaded_at"),
            progress = t(lang, "progress"),
        ));
    }
    console.page(t(lang, "batches"), &body)
}

fn upload_form(console: &Console, programmes: &[String], problem: Option<&str>) -> String {
    let lang = console.lang;
    let options: String = programmes
        .iter()
        .map(|p| format!(r#"<option value="{0}">{0}</option>"#, h(p)))
        .collect();
    format!(
        r#"<h1>{title}</h1>{problem}<p>{help}</p>
<form method="post" action="/upload" enctype="multipart/form-data" class="narrow">{csrf}
<p><label for="program">{program}</label><select id="program" name="program" required>{options}</select></p>
<p><label for="period">{period}</label><input id="period" name="period" required placeholder="2026-Q4" pattern="[0-9A-Za-z-]+"></p>
<p><label for="file">{file}</label><input id="file" name="file" type="file" accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required></p>
<p><button type="submit">{upload}</button></p></form>"#,
        title = t(lang, "upload"),
        problem = problem.unwrap_or_default(),
        help = t(lang, "upload_help"),
        csrf = console.csrf_field(),
        program = t(lang, "program"),
        period = t(lang, "period"),
        file = t(lang, "file"),
        upload = t(lang, "upload_button"),
    )
}

async fn programme_codes(state: &AppState) -> sqlx::Result<Vec<String>> {
    let mut conn = state.pool.acquire().await?;
    crate::store::programmes::codes(&mut conn).await
}

pub async fn upload_page(State(state): State<AppState>, console: Console) -> Response {
    if let Err(r) = maker_office(&console) {
        return r;
    }
    match programme_codes(&state).await {
        Ok(codes) => console.page(
            t(console.lang, "upload"),
            &upload_form(&console, &codes, None),
        ),
        Err(e) => console.internal("listing programmes failed", &e),
    }
}

/// A refused upload in words: what is wrong, where (line, column), what to do.
pub fn problem_in_words(lang: Lang, p: &crate::api::Problem) -> String {
    let slug = p.kind.trim_start_matches("/problems/");
    let (what_id, what_en, todo_id, todo_en) = match slug {
        "missing-columns" => (
            "Kolom wajib tidak ada pada baris judul.",
            "Required columns are missing from the header row.",
            "Tambahkan kolom yang disebut di rincian pada baris pertama (nama kolom boleh bahasa Indonesia atau Inggris).",
            "Add the columns the details name to the first row (Indonesian or English names).",
        ),
        "duplicate-column" => (
            "Ada kolom yang muncul dua kali.",
            "A column appears twice.",
            "Hapus salah satu kolom yang sama.",
            "Delete one of the two columns.",
        ),
        "invalid-value" => (
            "Ada isian yang tidak dapat diterima.",
            "A value cannot be accepted.",
            "Perbaiki sel pada baris dan kolom yang disebut, lalu unggah lagi.",
            "Correct the cell at the line and column given, then upload again.",
        ),
        "not-utf8" => (
            "Berkas bukan teks UTF-8.",
            "The file is not UTF-8 text.",
            "Di Excel: Simpan Sebagai → CSV UTF-8 (Comma delimited), atau unggah berkas .xlsx.",
            "In Excel: Save As → CSV UTF-8, or upload the .xlsx file.",
        ),
        "empty-file" => (
            "Berkas kosong.",
            "The file is empty.",
            "Pilih berkas yang berisi daftar penerima.",
            "Pick the file with the recipients.",
        ),
        "no-data-rows" => (
            "Berkas hanya berisi baris judul, tanpa penerima.",
            "The file has a header but no recipients.",
            "Isi satu baris per penerima di bawah baris judul.",
            "Add one row per recipient under the header.",
        ),
        "malformed-csv" => (
            "Berkas CSV rusak: jumlah kolom tidak sama pada setiap baris.",
            "The CSV is malformed: the rows have different numbers of columns.",
            "Periksa baris yang disebut (tanda kutip atau pemisah yang berlebih).",
            "Check the line given (a stray quote or separator).",
        ),
        "malformed-xlsx" => (
            "Berkas Excel tidak dapat dibaca.",
            "The Excel workbook cannot be read.",
            "Simpan ulang sebagai Excel Workbook (.xlsx) lalu unggah lagi.",
            "Save it again as an Excel Workbook (.xlsx) and upload it again.",
        ),
        "workbook-too-large" | "body-too-large" => (
            "Berkas terlalu besar.",
            "The file is too large.",
            "Bagi daftar menjadi beberapa berkas.",
            "Split the list into several files.",
        ),
        "unknown-programme" => (
            "Program tidak dikenal.",
            "Unknown programme.",
            "Pilih program dari daftar.",
            "Pick a programme from the list.",
        ),
        "invalid-parameter" => (
            "Isian formulir tidak sah.",
            "A form value is not valid.",
            "Periksa program dan periode (mis. 2026-Q4).",
            "Check the programme and the period (e.g. 2026-Q4).",
        ),
        "unsupported-media-type" | "content-type-mismatch" => (
            "Jenis berkas tidak didukung.",
            "This kind of file is not supported.",
            "Unggah berkas CSV (UTF-8) atau Excel (.xlsx).",
            "Upload a CSV (UTF-8) or Excel (.xlsx) file.",
        ),
        "too-many-uploads" => (
            "Terlalu banyak unggahan bersamaan dari kantor ini.",
            "Too many uploads at once from this office.",
            "Tunggu sebentar lalu unggah lagi.",
            "Wait a moment, then upload again.",
        ),
        _ => (
            "Berkas tidak dapat diterima.",
            "The file cannot be accepted.",
            "Baca rincian di bawah, perbaiki berkas, lalu unggah lagi.",
            "Read the details below, correct the file, then upload again.",
        ),
    };
    let (what, todo) = match lang {
        Lang::Id => (what_id, todo_id),
        Lang::En => (what_en, todo_en),
    };
    let mut place = Vec::new();
    if let Some(line) = p.extensions.get("line").and_then(|v| v.as_u64()) {
        place.push(format!("{} {line}", t(lang, "line")));
    }
    if let Some(row) = p.extensions.get("row").and_then(|v| v.as_u64()) {
        place.push(format!("{} {row}", t(lang, "row")));
    }
    if let Some(field) = p.extensions.get("field").and_then(|v| v.as_str()) {
        place.push(format!(
            "{} {} ({})",
            t(lang, "column"),
            h(field),
            h(&text::field(lang, field))
        ));
    }
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(
            "<p><strong>{}:</strong> {}</p>",
            t(lang, "where"),
            place.join(", ")
        )
    };
    let fix = p
        .extensions
        .get("fix")
        .and_then(|v| v.as_str())
        .map(|f| format!(" {}", h(f)))
        .unwrap_or_default();
    format!(
        r#"<div class="error" role="alert"><p><strong>{refused}</strong> {what}</p>{place}<p><strong>{todo_label}:</strong> {todo}</p><p class="muted">{details_label}: {detail}{fix}</p></div>"#,
        refused = t(lang, "upload_refused"),
        todo_label = t(lang, "what_to_do"),
        details_label = t(lang, "details"),
        detail = h(&p.detail),
    )
}

/// The multipart form of an upload: its text fields and its one file.
pub struct Upload {
    pub fields: HashMap<String, String>,
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

pub async fn read_multipart(mut form: Multipart) -> Result<Upload, String> {
    let mut up = Upload {
        fields: HashMap::new(),
        file_name: None,
        bytes: Vec::new(),
    };
    while let Some(field) = form.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            up.file_name = field.file_name().map(str::to_owned);
            up.bytes = field.bytes().await.map_err(|e| e.body_text())?.to_vec();
        } else {
            let value = field.text().await.map_err(|e| e.body_text())?;
            if value.len() > 4096 {
                return Err(format!("the form field {name} is too long"));
            }
            up.fields.insert(name, value);
        }
    }
    Ok(up)
}

/// A file name fit to label a batch: the browser's name if it is plain, else `upload.<ext>`.
fn label_of(name: Option<&str>, format: Format) -> String {
    let base = name
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .unwrap_or_default();
    if crate::api::upload::safe_file_name(base) {
        base.to_owned()
    } else {
        format!("upload.{}", format.as_str())
    }
}

pub async fn upload(State(state): State<AppState>, console: Console, form: Multipart) -> Response {
    let lang = console.lang;
    let office = match maker_office(&console) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let codes = match programme_codes(&state).await {
        Ok(c) => c,
        Err(e) => return console.internal("listing programmes failed", &e),
    };
    let refuse = |p: crate::api::Problem| {
        let status = p.status();
        let html = upload_form(&console, &codes, Some(&problem_in_words(lang, &p)));
        let mut r = console.page(t(lang, "upload"), &html);
        *r.status_mut() = if status.is_client_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        };
        r
    };
    let unreadable = |e: String| {
        crate::api::Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The upload could not be read",
            e,
        )
    };
    // The form's fields come in its order: the CSRF token, programme and period, then the file,
    // which is streamed into the upload's own code path (never held whole).
    let mut form = form;
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file = loop {
        match form.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_owned();
                match f.text().await {
                    Ok(v) if v.len() <= 4096 => {
                        fields.insert(name, v);
                    }
                    Ok(_) => {
                        return refuse(unreadable(format!("the form field {name} is too long")));
                    }
                    Err(e) => return refuse(unreadable(e.body_text())),
                }
            }
            Ok(None) => {
                if let Err(r) = console.check_csrf(fields.get("csrf").map(String::as_str)) {
                    return r;
                }
                return refuse(unreadable("the form has no file".into()));
            }
            Err(e) => return refuse(unreadable(e.body_text())),
        }
    };
    if let Err(r) = console.check_csrf(fields.get("csrf").map(String::as_str)) {
        return r;
    }
    let file_name = file.file_name().map(str::to_owned);
    let info = BatchInfo {
        office: office.clone(),
        program: fields.get("program").cloned().unwrap_or_default(),
        period: fields
            .get("period")
            .map(|p| p.trim().to_owned())
            .unwrap_or_default(),
        submitted_by: Some(console.person().principal().actor()),
    };
    if let Err(e) = info.validate() {
        return refuse(e.into());
    }
    match state.pool.acquire().await {
        Ok(mut conn) => {
            if let Err(e) = crate::ops::submit::check_programme(&mut conn, &info.program).await {
                return refuse(e.into());
            }
        }
        Err(e) => return console.internal("checking the programme failed", &e),
    }
    let Some(_slot) = state.start_upload(&office) else {
        return refuse(crate::api::Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-uploads",
            "Too many uploads at once",
            "this office already has uploads in progress",
        ));
    };
    // The first bytes say whether it is a workbook (a zip archive) or text.
    let mut head = Vec::new();
    while head.len() < 8 {
        match file.chunk().await {
            Ok(Some(c)) => head.extend_from_slice(&c),
            Ok(None) => break,
            Err(e) => return refuse(unreadable(e.body_text())),
        }
    }
    let format = if crate::intake::xlsx::looks_like_xlsx(&head) {
        Format::Xlsx
    } else {
        Format::Csv
    };
    let limit = match format {
        Format::Xlsx => state.settings.api_xlsx_limit,
        _ => state.settings.api_body_limit,
    };
    let name = label_of(file_name.as_deref(), format);
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    let feed = async move {
        use futures::SinkExt as _;
        if tx.send(Ok(head.into())).await.is_err() {
            return;
        }
        loop {
            let next = match file.chunk().await {
                Ok(Some(c)) => Ok(c),
                Ok(None) => return,
                Err(e) => Err(std::io::Error::other(e.body_text())),
            };
            let failed = next.is_err();
            // The storing side stopped (it refused the file and says why): stop reading.
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    };
    let (stored, ()) = tokio::join!(
        store(
            &state,
            &info,
            format,
            &name,
            None,
            Body::from_stream(rx),
            limit,
        ),
        feed
    );
    match stored {
        Ok(stored) => {
            Redirect::to(&format!("/batches/{}?uploaded=1", stored.batch_id)).into_response()
        }
        Err(p) => refuse(p),
    }
}

#[derive(Deserialize, Default)]
pub struct BatchQuery {
    state: Option<String>,
    reason: Option<String>,
    after: Option<String>,
    uploaded: Option<String>,
}

fn sum_of(status: &batch::BatchStatus, states: &[&str]) -> (i64, Decimal) {
    states.iter().fold((0, Decimal::ZERO), |(n, a), s| {
        status
            .states
            .get(*s)
            .map_or((n, a), |t| (n + t.records, a + t.amount))
    })
}

pub async fn batch(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<BatchQuery>,
) -> Response {
    let lang = console.lang;
    let id = match visible_batch(&state, &console, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let status = match batch::status(&state.pool, id).await {
        Ok(s) => s,
        Err(e) => return console.internal("reading a batch failed", &e),
    };
    let mut body = format!(
        "<h1>{} — {}</h1><p class=\"muted\">{} {} · {} · {} {}</p>",
        t(lang, "batch"),
        h(&status.file_name),
        h(&status.program),
        h(&status.period),
        h(&status.office),
        status.records,
        t(lang, "records").to_lowercase(),
    );
    if q.uploaded.is_some() {
        body.push_str(&format!(
            r#"<p class="ok" role="status">{}: {} {}.</p>"#,
            t(lang, "uploaded"),
            status.records,
            t(lang, "records").to_lowercase()
        ));
    }
    // The funnel: how far the records got.
    let received = (status.records, status.totals.requested.amount);
    let opened = sum_of(
        &status,
        &[
            "account_opened",
            "awaiting_approval",
            "verified",
            "transfer_requested",
            "disbursed",
            "returned",
        ],
    );
    let verified = sum_of(
        &status,
        &[
            "awaiting_approval",
            "verified",
            "transfer_requested",
            "disbursed",
            "returned",
        ],
    );
    let disbursed = sum_of(&status, &["disbursed"]);
    let step = |key: &str, (n, a): (i64, Decimal), id: &str| {
        format!(
            r#"<div id="{id}"><span>{}</span><strong>{n}</strong><span class="muted">{}</span></div>"#,
            t(lang, key),
            rupiah(a)
        )
    };
    let p = Progress::of(status.states.iter().map(|(s, t)| (s.as_str(), t.records)));
    let mut blocked: Vec<(&String, &i64)> =
        status.reasons.iter().filter(|(_, n)| **n > 0).collect();
    // The most frequent reason first: it is where fixing starts.
    blocked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut reasons = String::new();
    for (code, n) in &blocked {
        reasons.push_str(&format!(
            r#"<tr data-reason="{code}"><td><a href="/batches/{id}?state=blocked&amp;reason={code}">{words}</a> <span class="muted">{code}</span></td><td class="num">{n}</td></tr>"#,
            code = h(code),
            words = h(&text::reason(lang, code, code)),
        ));
    }
    let reasons = if reasons.is_empty() {
        format!("<p>{}</p>", t(lang, "no_blocked"))
    } else {
        // The counts are of records per reason: a record with two problems is under both.
        let counted: i64 = blocked.iter().map(|(_, n)| **n).sum();
        let note = if counted > p.blocked {
            format!(r#"<p class="muted">{}</p>"#, t(lang, "counted_under_each"))
        } else {
            String::new()
        };
        format!(
            r#"<table id="reasons"><thead><tr><th scope="col">{}</th><th scope="col" class="num">{}</th></tr></thead><tbody>{reasons}</tbody><tfoot><tr><th scope="row">{}</th><td class="num" id="blocked-total">{}</td></tr></tfoot></table>{note}"#,
            t(lang, "reason"),
            t(lang, "count"),
            t(lang, "blocked_total"),
            p.blocked,
        )
    };
    body.push_str(&format!(
        r#"<div id="progress" data-done="{done}"><h2>{funnel}</h2><div class="funnel">{s1}{s2}{s3}{s4}</div>
<h2>{progress}</h2>{legend}{bar}
<h2>{blocked_title}</h2>{reasons}</div>"#,
        done = if status.in_flight > 0 { "0" } else { "1" },
        funnel = t(lang, "funnel"),
        s1 = step("f_received", received, "f-received"),
        s2 = step("f_opened", opened, "f-opened"),
        s3 = step("f_verified", verified, "f-verified"),
        s4 = step("f_disbursed", disbursed, "f-disbursed"),
        progress = t(lang, "progress"),
        legend = legend(lang),
        bar = p.bar(lang),
        blocked_title = t(lang, "blocked_by_reason"),
    ));
    body.push_str(&super::reconciliation::batch_section(lang, id, &status));
    // Actions.
    let maker = console.person().role == Role::Maker;
    let mut actions = String::new();
    if p.blocked > 0 && maker {
        actions.push_str(&format!(
            r#"<p><a href="/batches/{id}/fixes.xlsx" download>{}</a></p>"#,
            t(lang, "download_fixes")
        ));
        {
            actions.push_str(&format!(
                r#"<form method="post" action="/batches/{id}/fixes" enctype="multipart/form-data" class="narrow">{csrf}<p><label for="fixes">{label}</label><input id="fixes" name="file" type="file" accept=".xlsx" required></p><p class="muted">{help}</p><p><button type="submit">{upload}</button></p></form>
<form method="post" action="/batches/{id}/replay">{csrf}<p><button type="submit">{replay}</button></p></form>"#,
                csrf = console.csrf_field(),
                label = t(lang, "upload_fixes"),
                help = t(lang, "upload_fixes_help"),
                upload = t(lang, "upload_button"),
                replay = t(lang, "replay_batch"),
            ));
        }
    }
    if p.approval > 0 {
        actions.push_str(&format!(
            r#"<p><a href="/batches/{id}/approval">{} ({})</a></p>"#,
            t(lang, "approval"),
            p.approval
        ));
    }
    body.push_str(&actions);
    body.push_str(&records_table(&state, &console, id, &q).await);
    console.page(&status.file_name, &body)
}

async fn records_table(state: &AppState, console: &Console, id: Uuid, q: &BatchQuery) -> String {
    let lang = console.lang;
    let state_filter = q
        .state
        .as_deref()
        .filter(|s| RecordState::parse(s).is_some());
    let reason_filter = q
        .reason
        .as_deref()
        .filter(|r| ReasonCode::parse(r).is_some());
    let after = q
        .after
        .as_deref()
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(0);
    const PAGE: i64 = 50;
    let rows = match batches::records(
        &state.pool,
        id,
        &batches::RecordQuery {
            after,
            state: state_filter,
            reason: reason_filter,
            limit: PAGE + 1,
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "console: listing records failed");
            return format!("<p class=\"error\">{}</p>", t(lang, "error_text"));
        }
    };
    let states: String = RecordState::ALL
        .iter()
        .map(|s| {
            format!(
                r#"<option value="{v}"{sel}>{label}</option>"#,
                v = s.as_str(),
                sel = if state_filter == Some(s.as_str()) {
                    " selected"
                } else {
                    ""
                },
                label = h(&text::state(lang, s.as_str()))
            )
        })
        .collect();
    let reasons: String = ReasonCode::ALL
        .iter()
        .map(|r| {
            format!(
                r#"<option value="{v}"{sel}>{v}</option>"#,
                v = r.as_str(),
                sel = if reason_filter == Some(r.as_str()) {
                    " selected"
                } else {
                    ""
                },
            )
        })
        .collect();
    let mut out = format!(
        r#"<h2 id="records">{title}</h2><form method="get" action="/batches/{id}#records" class="filters">
<p><label for="f-state">{state}</label><select id="f-state" name="state"><option value="">{all}</option>{states}</select></p>
<p><label for="f-reason">{reason}</label><select id="f-reason" name="reason"><option value="">{all}</option>{reasons}</select></p>
<p><button type="submit">{filter}</button></p></form>
<table><thead><tr><th scope="col">{row}</th><th scope="col">NIK</th><th scope="col">{name}</th><th scope="col">{bank}</th><th scope="col" class="num">{amount}</th><th scope="col">{state}</th><th scope="col">{reason}</th></tr></thead><tbody>"#,
        title = t(lang, "records"),
        state = t(lang, "state"),
        reason = t(lang, "reason"),
        all = t(lang, "all"),
        filter = t(lang, "filter"),
        row = t(lang, "row"),
        name = text::field(lang, "name"),
        bank = t(lang, "bank"),
        amount = t(lang, "amount"),
    );
    for r in rows.iter().take(PAGE as usize) {
        let reasons: Vec<Reason> = serde_json::from_value(r.reasons.clone()).unwrap_or_default();
        let words: Vec<String> = reasons
            .iter()
            .map(|x| h(&text::reason(lang, x.code.as_str(), &x.message)))
            .collect();
        out.push_str(&format!(
            r#"<tr><td><a href="/records/{rid}">{row}</a></td><td>{nik}</td><td>{name}</td><td>{bank}</td><td class="num">{amount}</td><td>{state}</td><td class="reason">{reasons}</td></tr>"#,
            rid = r.id,
            row = r.row_number,
            nik = h(r.shown.nik.as_deref().unwrap_or("—")),
            name = h(r.shown.name.as_deref().unwrap_or("—")),
            bank = h(r.shown.bank_code.as_deref().unwrap_or("—")),
            amount = r.amount.map(rupiah).unwrap_or_else(|| "—".into()),
            state = h(&text::state(lang, &r.state)),
            reasons = words.join("<br>"),
        ));
    }
    out.push_str("</tbody></table>");
    let mut query = String::new();
    if let Some(s) = state_filter {
        query.push_str(&format!("&amp;state={s}"));
    }
    if let Some(r) = reason_filter {
        query.push_str(&format!("&amp;reason={r}"));
    }
    let mut nav = Vec::new();
    if after > 0 {
        nav.push(format!(
            r##"<a href="/batches/{id}?{q}#records">{}</a>"##,
            t(lang, "first_page"),
            q = query.trim_start_matches("&amp;")
        ));
    }
    if rows.len() as i64 > PAGE
        && let Some(last) = rows.get(PAGE as usize - 1)
    {
        nav.push(format!(
            r##"<a href="/batches/{id}?after={}{query}#records" rel="next">{}</a>"##,
            last.id,
            t(lang, "next_page")
        ));
    }
    if !nav.is_empty() {
        out.push_str(&format!("<p>{}</p>", nav.join(" · ")));
    }
    out
}

/// The fixes applied, one line each: ready, or the reasons still standing.
pub(crate) fn outcome_list(lang: Lang, outcomes: &[remediate::FixOutcome]) -> String {
    let mut out = String::from("<ul>");
    for o in outcomes {
        let status = if o.ready {
            t(lang, "ready").to_owned()
        } else {
            format!(
                "{}: {}",
                t(lang, "still_reasons"),
                o.reasons
                    .iter()
                    .map(|r| h(&text::reason(lang, r.code.as_str(), &r.message)))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        out.push_str(&format!(
            r#"<li><a href="/records/{}">{} {}</a>: {}</li>"#,
            o.id,
            t(lang, "row"),
            o.row,
            status
        ));
    }
    out.push_str("</ul>");
    out
}

/// The answer to a replay, as a page.
fn replay_page(console: &Console, back: &str, outcome: &remediate::ReplayOutcome) -> Response {
    let lang = console.lang;
    let n: u64 = outcome.replayed.values().sum();
    let mut body = format!(
        r#"<h1>{}</h1><p class="ok" role="status">{}: {n}.</p>"#,
        t(lang, "replayed"),
        t(lang, "replayed")
    );
    if !outcome.still_blocked.is_empty() {
        body.push_str(&format!(
            "<h2>{} ({})</h2>{}",
            t(lang, "still_blocked"),
            outcome.still_blocked.len(),
            outcome_list(lang, &outcome.still_blocked)
        ));
    }
    body.push_str(&format!(
        r#"<p><a href="{}">{}</a></p>"#,
        h(back),
        t(lang, "back")
    ));
    console.page(t(lang, "replayed"), &body)
}

pub async fn replay_batch(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    let id = match visible_batch(&state, &console, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let office = match maker_office(&console) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let filter = Filter {
        batch_id: Some(id),
        reason: None,
        ids: Vec::new(),
        state: Some(RecordState::Blocked),
    };
    match remediate::replay(
        &state.settings,
        &state.pool,
        &Scope::Office(office),
        &console.person().principal().actor(),
        &filter,
    )
    .await
    {
        Ok(outcome) => replay_page(&console, &format!("/batches/{id}"), &outcome),
        Err(e) => console.internal("replaying a batch failed", &e),
    }
}

fn record_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn record_page(
    state: &AppState,
    console: &Console,
    id: i64,
    message: Option<String>,
) -> Response {
    let lang = console.lang;
    let view = match remediate::show(&state.pool, &scope(console), id).await {
        Ok(v) => v,
        Err(RemediateError::NotFound(_)) => return console.not_found(),
        Err(e) => return console.internal("reading a record failed", &e),
    };
    let problems: BTreeMap<&str, Vec<&Reason>> =
        view.reasons.iter().fold(BTreeMap::new(), |mut m, r| {
            m.entry(r.field.as_str()).or_insert_with(Vec::new).push(r);
            m
        });
    let mut body = format!(
        r#"<h1>{title} — {row_label} {row}</h1><p class="muted"><a href="/batches/{batch}">{file_label}</a> · {program} {period} · {office}</p>{message}
<p><strong>{state_label}:</strong> {state}</p>"#,
        title = t(lang, "record"),
        row_label = t(lang, "row"),
        row = view.row,
        batch = view.batch_id,
        file_label = t(lang, "batches"),
        program = h(&view.program),
        period = h(&view.period),
        office = h(&view.office),
        message = message.unwrap_or_default(),
        state_label = t(lang, "state"),
        state = h(&text::state(lang, &view.state)),
    );
    if !view.reasons.is_empty() {
        body.push_str(&format!("<h2>{}</h2><ul>", t(lang, "problem")));
        for r in &view.reasons {
            body.push_str(&format!(
                r#"<li class="reason"><strong>{}</strong>: {} <span class="muted">({})</span></li>"#,
                h(&text::field(lang, &r.field)),
                h(&text::reason(lang, r.code.as_str(), &r.message)),
                r.code
            ));
        }
        body.push_str("</ul>");
    }
    let fixable =
        view.state == RecordState::Blocked.as_str() && console.person().role == Role::Maker;
    let mut rows = String::new();
    for key in crate::intake::RawRecord::KEYS {
        let shown = view.fields.get(key).cloned().flatten();
        let problem = problems.get(key);
        let words = problem
            .map(|rs| {
                rs.iter()
                    .map(|r| h(&text::reason(lang, r.code.as_str(), &r.message)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .unwrap_or_default();
        let input = if fixable {
            format!(
                r#"<td><label class="visually-hidden" for="fix-{key}">{label}</label><input id="fix-{key}" name="{key}" autocomplete="off"{focus}></td>"#,
                label = h(&text::field(lang, key)),
                focus = if problem.is_some() {
                    r#" aria-describedby="why-"#.to_owned() + key + "\""
                } else {
                    String::new()
                },
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            r#"<tr{class}><th scope="row">{label}</th><td>{value}</td><td class="reason" id="why-{key}">{words}</td>{input}</tr>"#,
            class = if problem.is_some() {
                r#" class="problem""#
            } else {
                ""
            },
            label = h(&text::field(lang, key)),
            value = h(shown.as_deref().unwrap_or("—")),
        ));
    }
    let table = format!(
        r#"<table><thead><tr><th scope="col">{field}</th><th scope="col">{value}</th><th scope="col">{problem}</th>{fixcol}</tr></thead><tbody>{rows}</tbody></table>"#,
        field = t(lang, "fields"),
        value = t(lang, "value"),
        problem = t(lang, "problem"),
        fixcol = if fixable {
            format!(r#"<th scope="col">{}</th>"#, t(lang, "fix_form"))
        } else {
            String::new()
        },
    );
    if fixable {
        body.push_str(&format!(
            r#"<h2>{fix}</h2><p class="muted">{help}</p><form method="post" action="/records/{id}/fix">{csrf}{table}<p><button type="submit">{save}</button></p></form>
<form method="post" action="/records/{id}/replay">{csrf}<p><button type="submit">{replay}</button></p></form>"#,
            fix = t(lang, "fix_form"),
            help = t(lang, "fix_help"),
            csrf = console.csrf_field(),
            save = t(lang, "save"),
            replay = t(lang, "replay_record"),
        ));
    } else {
        body.push_str(&format!("<h2>{}</h2>{table}", t(lang, "fields")));
    }
    if let Some(a) = view.amount {
        body.push_str(&format!(
            "<p><strong>{}:</strong> {}</p>",
            t(lang, "amount"),
            rupiah(a)
        ));
    }
    if let Some(b) = &view.bank_reference {
        body.push_str(&format!(
            "<p><strong>{}:</strong> {}</p>",
            t(lang, "bank_reference"),
            h(b)
        ));
    }
    body.push_str(&format!(
        r#"<h2>{}</h2><table><thead><tr><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>"#,
        t(lang, "history"),
        t(lang, "when"),
        t(lang, "state"),
        t(lang, "reason"),
        t(lang, "by")
    ));
    for e in &view.history {
        let by =
            e.by.as_ref()
                .map(|a| h(a.person.as_deref().unwrap_or(&a.token)))
                .unwrap_or_else(|| t(lang, "system").to_owned());
        body.push_str(&format!(
            "<tr><td>{}</td><td>{} → {}</td><td class=\"reason\">{}</td><td>{}</td></tr>",
            text::time(lang, e.at),
            h(&e.from
                .as_deref()
                .map(|s| text::state(lang, s))
                .unwrap_or_else(|| "—".into())),
            h(&text::state(lang, &e.to)),
            e.reasons
                .iter()
                .map(|r| h(&text::reason(lang, r.code.as_str(), &r.message)))
                .collect::<Vec<_>>()
                .join("<br>"),
            by
        ));
    }
    body.push_str("</tbody></table>");
    console.page(t(lang, "record"), &body)
}

pub async fn record(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    match record_id(&id) {
        Some(id) => record_page(&state, &console, id, None).await,
        None => console.not_found(),
    }
}

/// The English sentence of a refused fix, said in the person's language where it can be.
fn fix_refusal(lang: Lang, e: &RemediateError) -> String {
    let field = match e {
        RemediateError::InvalidValue { field, .. } => Some(*field),
        _ => None,
    };
    let head = match field {
        Some(f) => format!("{} — {}:", t(lang, "fix_refused"), h(&text::field(lang, f))),
        None => format!("{}:", t(lang, "fix_refused")),
    };
    format!(
        r#"<div class="error" role="alert"><p>{head} {}</p></div>"#,
        h(&e.to_string())
    )
}

pub async fn fix(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let lang = console.lang;
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    let Some(id) = record_id(&id) else {
        return console.not_found();
    };
    let office = match maker_office(&console) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let sets: Vec<(String, String)> = crate::intake::RawRecord::KEYS
        .iter()
        .filter_map(|k| {
            form.get(*k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| ((*k).to_owned(), v.to_owned()))
        })
        .collect();
    if sets.is_empty() {
        return record_page(&state, &console, id, None).await;
    }
    match remediate::fix(
        &state.settings,
        &state.pool,
        &Scope::Office(office),
        &console.person().principal().actor(),
        id,
        &sets,
    )
    .await
    {
        Ok(outcome) => {
            let msg = format!(
                r#"<div class="ok" role="status"><p>{}</p>{}</div>"#,
                t(lang, "fix_saved"),
                outcome_list(lang, std::slice::from_ref(&outcome))
            );
            record_page(&state, &console, id, Some(msg)).await
        }
        Err(RemediateError::NotFound(_)) => console.not_found(),
        Err(
            e @ (RemediateError::InvalidValue { .. }
            | RemediateError::UnknownField { .. }
            | RemediateError::NotFixable { .. }),
        ) => {
            let mut r = record_page(&state, &console, id, Some(fix_refusal(lang, &e))).await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => console.internal("fixing a record failed", &e),
    }
}

pub async fn replay_record(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    let Some(id) = record_id(&id) else {
        return console.not_found();
    };
    let office = match maker_office(&console) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let scope = Scope::Office(office);
    let view = match remediate::show(&state.pool, &scope, id).await {
        Ok(v) => v,
        Err(RemediateError::NotFound(_)) => return console.not_found(),
        Err(e) => return console.internal("reading a record failed", &e),
    };
    let filter = Filter {
        batch_id: None,
        reason: None,
        ids: vec![id],
        state: Some(RecordState::Blocked),
    };
    match remediate::replay(
        &state.settings,
        &state.pool,
        &scope,
        &console.person().principal().actor(),
        &filter,
    )
    .await
    {
        Ok(outcome) => replay_page(&console, &format!("/batches/{}", view.batch_id), &outcome),
        Err(e) => console.internal("replaying a record failed", &e),
    }
}

fn approval_error(console: &Console, e: ApprovalError) -> Response {
    let lang = console.lang;
    match e {
        ApprovalError::BatchNotFound(_) => console.not_found(),
        ApprovalError::NotAChecker | ApprovalError::OwnSubmission(_) | ApprovalError::NoPerson => {
            let body = format!(
                r#"<h1>{}</h1><p class="error" role="alert">{}</p><p class="muted">{}</p><p><a href="/batches">{}</a></p>"#,
                t(lang, "forbidden"),
                t(lang, "maker_no_approve"),
                h(&e.to_string()),
                t(lang, "back")
            );
            let mut r = console.page(t(lang, "forbidden"), &body);
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
        ApprovalError::Database(e) => console.internal("an approval failed", &e),
        other => {
            let body = format!(
                r#"<h1>{}</h1><div class="error" role="alert"><p><strong>{}</strong></p><p>{}</p></div><p><a href="/batches">{}</a></p>"#,
                t(lang, "approval"),
                t(lang, "approval_refused"),
                h(&other.to_string()),
                t(lang, "back")
            );
            let mut r = console.page(t(lang, "approval"), &body);
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
    }
}

pub async fn approval(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let lang = console.lang;
    let id = match visible_batch(&state, &console, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let list = match approval::list(&state.pool, id, console.person().scope()).await {
        Ok(l) => l,
        Err(e) => return approval_error(&console, e),
    };
    let mut body = format!(
        r#"<h1>{title}</h1><p class="muted"><a href="/batches/{id}">{program} {period}</a> · {office}{by}</p>"#,
        title = t(lang, "approval_list"),
        program = h(&list.program),
        period = h(&list.period),
        office = h(&list.office),
        by = list
            .submitted_by
            .as_deref()
            .map(|p| format!(" · {}: {}", t(lang, "submitted_by"), h(p)))
            .unwrap_or_default(),
    );
    if list.records == 0 {
        body.push_str(&format!("<p>{}</p>", t(lang, "nothing_to_approve")));
        return console.page(t(lang, "approval"), &body);
    }
    let sums = |title: &str, key: &str, m: &BTreeMap<String, approval::Sum>, money: bool| {
        let rows: String = m
            .iter()
            .map(|(k, s)| {
                let key = if money {
                    k.parse::<Decimal>().map(rupiah).unwrap_or_else(|_| h(k))
                } else {
                    h(k)
                };
                format!(
                    r#"<tr><td>{key}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                    s.records,
                    rupiah(s.amount)
                )
            })
            .collect();
        format!(
            r#"<div><h2>{title}</h2><table><thead><tr><th scope="col">{key}</th><th scope="col" class="num">{}</th><th scope="col" class="num">{}</th></tr></thead><tbody>{rows}</tbody></table></div>"#,
            t(lang, "records"),
            t(lang, "total")
        )
    };
    body.push_str(&format!(
        r#"<p id="approval-summary"><strong>{records_label}:</strong> {n} · <strong>{total_label}:</strong> {total}</p>
<div class="grid2">{banks}{amounts}</div>
<table><tbody><tr><th scope="row">{alloc}</th><td class="num">{a}</td></tr><tr><th scope="row">{used}</th><td class="num">{u}</td></tr><tr><th scope="row">{left}</th><td class="num" id="budget-left">{l}</td></tr></tbody></table>"#,
        records_label = t(lang, "records"),
        n = list.records,
        total_label = t(lang, "total"),
        total = rupiah(list.total),
        banks = sums(t(lang, "per_bank"), t(lang, "bank"), &list.per_bank, false),
        amounts = sums(t(lang, "per_amount"), t(lang, "amount"), &list.per_amount, true),
        alloc = t(lang, "budget_allocated"),
        a = rupiah(list.budget.allocated),
        used = t(lang, "budget_used"),
        u = rupiah(list.budget.used),
        left = t(lang, "budget_left"),
        l = rupiah(list.budget.left_after),
    ));
    if console.person().role == Role::Checker {
        body.push_str(&format!(
            r#"<div class="grid2"><form method="post" action="/batches/{id}/approval">{csrf}<input type="hidden" name="decision" value="approve"><input type="hidden" name="list_hash" value="{hash}"><p><button type="submit" id="approve">{approve}</button></p></form>
<form method="post" action="/batches/{id}/approval">{csrf}<input type="hidden" name="decision" value="reject"><p><label for="why">{why}</label><input id="why" name="why" required></p><p><button type="submit" class="danger">{reject}</button></p></form></div>"#,
            csrf = console.csrf_field(),
            hash = h(&list.list_hash),
            approve = t(lang, "approve"),
            why = t(lang, "reject_why"),
            reject = t(lang, "reject"),
        ));
    } else {
        body.push_str(&format!(
            r#"<p class="notice">{}</p>"#,
            t(lang, "maker_no_approve")
        ));
    }
    console.page(t(lang, "approval"), &body)
}

pub async fn decide(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let lang = console.lang;
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    let id = match visible_batch(&state, &console, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let p = console.person();
    if p.role != Role::Checker {
        return approval_error(&console, ApprovalError::NotAChecker);
    }
    let checker = Checker {
        person: p.name.clone(),
        token_label: Some(p.principal().token_label),
        office: Some(p.office.clone()),
    };
    let decided = match form.get("decision").map(String::as_str) {
        Some("approve") => {
            approval::approve(
                &state.settings,
                &state.pool,
                id,
                form.get("list_hash")
                    .map(String::as_str)
                    .unwrap_or_default(),
                &checker,
            )
            .await
        }
        Some("reject") => {
            approval::reject(
                &state.settings,
                &state.pool,
                id,
                form.get("why").map(String::as_str).unwrap_or_default(),
                &checker,
            )
            .await
        }
        _ => return console.error(StatusCode::UNPROCESSABLE_ENTITY, "error", "error_text"),
    };
    match decided {
        Ok(d) => {
            let key = if d.decision == "approved" {
                "approved"
            } else {
                "rejected"
            };
            let body = format!(
                r#"<h1>{}</h1><p class="ok" role="status">{} {} · {}</p><p><a href="/batches/{id}">{}</a></p>"#,
                t(lang, "approval"),
                t(lang, key),
                d.records,
                rupiah(d.total),
                t(lang, "back")
            );
            console.page(t(lang, "approval"), &body)
        }
        Err(e) => approval_error(&console, e),
    }
}
