//! `POST /v1/batches`: a CSV, JSON or Excel upload becomes a batch, in one transaction.
//!
//! A CSV or JSON body is streamed: a blocking thread reads it through
//! [`SyncIoBridge`] with intake's own reader ([`crate::intake::parse_reader`]) and hands
//! chunks of records over a bounded channel to the task that stores them, so memory holds a
//! few thousand records whatever the size of the file (a JSON array is read whole by intake; an
//! Excel workbook, a zip archive, is read whole under its own, smaller limit). The body is
//! hashed (SHA-256) as it streams. The batch, its records, their work, and the
//! `Idempotency-Key` with the body's hash all commit together, or nothing does: a file refused
//! at its millionth line leaves no trace.
//!
//! `Idempotency-Key`: the same key (per office) with the same programme, period, format and body
//! answers with the batch made the first time; with anything else, 409. Concurrent requests
//! with one key are serialised by a transaction-scoped advisory lock.

use std::io::{self, BufRead as _, BufReader, Read};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};
use uuid::Uuid;

use super::auth::Caller;
use super::{AppState, Problem, Query};
use crate::domain::RawRecord;
use crate::intake::{self, IntakeError};
use crate::ops::submit::{BatchInfo, BatchWriter, SLICE};
use crate::store::{self, idempotency};

/// What the body is, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xlsx,
}

pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
        }
    }

    fn from_headers(headers: &HeaderMap) -> Result<Self, Problem> {
        let unsupported = |detail: String| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                detail,
            )
            .with("field", "Content-Type")
            .with(
                "fix",
                format!("send Content-Type: text/csv, application/json or {XLSX_MEDIA_TYPE}"),
            )
        };
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Err(unsupported("the request has no Content-Type".into()));
        };
        let value = value
            .to_str()
            .map_err(|_| unsupported("the Content-Type is not text".into()))?;
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        for param in parts {
            if let Some((name, v)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("charset")
            {
                let v = v.trim().trim_matches('"').to_ascii_lowercase();
                if v != "utf-8" && v != "utf8" {
                    return Err(unsupported(format!(
                        "charset {v} is not supported: batches are UTF-8 (in Excel: Save As → CSV UTF-8)"
                    )));
                }
            }
        }
        match essence.as_str() {
            "text/csv" | "application/csv" => Ok(Format::Csv),
            "application/json" => Ok(Format::Json),
            XLSX_MEDIA_TYPE => Ok(Format::Xlsx),
            other => Err(unsupported(format!("{other:?} is not a batch format"))),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SubmitParams {
    program: Option<String>,
    period: Option<String>,
    file_name: Option<String>,
}

/// The answer to a stored (or idempotently repeated) submission.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub batch_id: Uuid,
    pub records: u64,
    pub program: String,
    pub period: String,
    /// True when an earlier request with the same `Idempotency-Key` made this batch.
    pub replayed: bool,
    pub links: Links,
}

#[derive(Debug, Serialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub records: String,
    pub report: String,
}

impl Links {
    pub fn for_batch(id: Uuid) -> Self {
        Self {
            this: format!("/v1/batches/{id}"),
            records: format!("/v1/batches/{id}/records"),
            report: format!("/v1/batches/{id}/report.csv"),
        }
    }
}

pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SubmitParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let office = caller.office_for_change()?.to_owned();
    let format = Format::from_headers(&headers)?;
    let required = |value: Option<String>, name: &str, example: &str| {
        value.ok_or_else(|| {
            Problem::bad_parameter(
                name,
                format!("the query parameter `{name}` is missing"),
                &format!("add ?{name}={example} to the URL"),
            )
        })
    };
    let info = BatchInfo {
        office,
        program: required(params.program, "program", "BPNT")?,
        period: required(params.period, "period", "2026-Q4")?,
        submitted_by: Some(caller.actor()),
    };
    info.validate()?;
    crate::ops::submit::check_programme(&mut *state.pool.acquire().await?, &info.program).await?;
    let file_name = match params.file_name {
        Some(name) if !safe_file_name(&name) => {
            return Err(Problem::bad_parameter(
                "file_name",
                "file_name must be 1 to 128 characters of letters, digits, spaces, '.', '-', '_', '(' and ')', not starting with '.' and without '..'",
                "give the name of the office's file, e.g. penerima-2026-q4.csv",
            ));
        }
        Some(name) => name,
        None => format!("upload.{}", format.as_str()),
    };
    let key = idempotency_key(&headers)?;
    let limit = match format {
        Format::Xlsx => state.settings.api_xlsx_limit,
        _ => state.settings.api_body_limit,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit, format));
    }

    let Some(_slot) = state.start_upload(&info.office) else {
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-uploads",
            "Too many uploads at once",
            format!(
                "this office already has {} uploads in progress (API_UPLOADS_PER_OFFICE)",
                state.settings.api_uploads_per_office
            ),
        )
        .with("limit", state.settings.api_uploads_per_office)
        .with(
            "fix",
            "wait for the uploads in progress to finish, then send this one again",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return Ok(response);
    };
    let stored = store(&state, &info, format, &file_name, key, body, limit).await?;
    let accepted = Accepted {
        batch_id: stored.batch_id,
        records: stored.records,
        program: info.program,
        period: info.period,
        replayed: stored.replayed,
        links: Links::for_batch(stored.batch_id),
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(accepted)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/batches/{}", stored.batch_id)) {
        h.insert(header::LOCATION, v);
    }
    if stored.replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// A file name that is only a label: no path (`/`, `\\`, `..`), no markup, no invisible or
/// direction-changing characters, whatever screen or file system it is shown on.
pub fn safe_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-_()".contains(c))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(Problem::bad_parameter(
            "Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            "use a fresh UUID per batch, and the same one when sending that batch again",
        )),
    }
}

fn too_large(limit: u64, format: Format) -> Problem {
    let variable = match format {
        Format::Xlsx => "API_XLSX_LIMIT",
        _ => "API_BODY_LIMIT",
    };
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "The upload is too large",
        format!(
            "a {} upload may be at most {limit} bytes",
            format.as_str().to_uppercase()
        ),
    )
    .with("limit_bytes", limit)
    .with(
        "fix",
        format!(
            "split the batch into several files (or, for Excel, send it as CSV); the operator sets the limit with {variable}"
        ),
    )
}

/// The marker error of a body that went past its limit while streaming.
#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_labels_only() {
        for ok in [
            "penerima-2026-q4.csv",
            "Daftar Penerima (revisi 2).xlsx",
            "a",
        ] {
            assert!(super::safe_file_name(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "../etc/passwd",
            "a/b.csv",
            "a\\b.csv",
            ".hidden",
            "<script>alert(1)</script>.csv",
            "invoice\u{202E}vsc.exe",
            "nul\u{0}.csv",
            long.as_str(),
        ] {
            assert!(!super::safe_file_name(bad), "{bad:?}");
        }
    }
}

#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body is larger than the limit")
    }
}

impl std::error::Error for TooLarge {}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
}

/// The marker error of a body that sent nothing for longer than the idle limit.
#[derive(Debug)]
struct Idle;

impl std::fmt::Display for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client sent nothing for longer than the idle limit")
    }
}

impl std::error::Error for Idle {}

fn is_idle(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Idle>())
}

pub(crate) struct Stored {
    pub(crate) batch_id: Uuid,
    pub(crate) records: u64,
    pub(crate) replayed: bool,
}

/// A reader that hashes what passes through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The body as a stream of bytes that fails with [`TooLarge`] past `limit` bytes and with
/// [`Idle`] when the client sends nothing for `idle`.
fn bounded_body(
    body: Body,
    limit: u64,
    idle: std::time::Duration,
) -> impl futures::Stream<Item = io::Result<axum::body::Bytes>> + Send + 'static {
    let start = Some((body.into_data_stream(), 0u64));
    futures::stream::unfold(start, move |state| async move {
        let (mut stream, mut seen) = state?;
        let item = match tokio::time::timeout(idle, futures::StreamExt::next(&mut stream)).await {
            Err(_) => Err(io::Error::other(Idle)),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(io::Error::other(e)),
            Ok(Some(Ok(chunk))) => {
                seen += chunk.len() as u64;
                if seen > limit {
                    Err(io::Error::other(TooLarge))
                } else {
                    Ok(chunk)
                }
            }
        };
        // After an error the stream ends.
        let next = item.is_ok().then_some((stream, seen));
        Some((item, next))
    })
}

/// Stores a batch from `body` (the API's upload, and the console's through the same path).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store(
    state: &AppState,
    info: &BatchInfo,
    format: Format,
    file_name: &str,
    key: Option<String>,
    body: Body,
    limit: u64,
) -> Result<Stored, Problem> {
    let idle = state.settings.api_body_idle_timeout;
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(bounded_body(body, limit, idle))));
    // The request is told apart by its programme, period and format as well as its body.
    let mut hasher = Sha256::new();
    for part in [&info.program, &info.period, format.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }

    let (out, mut chunks) = tokio::sync::mpsc::channel::<Vec<RawRecord>>(2);
    let name = file_name.to_owned();
    let producer = tokio::task::spawn_blocking(move || {
        let reader = Hashing {
            inner: reader,
            hasher: &mut hasher,
        };
        let mut sink = RowSink { out };
        read_records(format, &name, reader, &mut sink, limit)?;
        Ok::<_, Problem>(hasher.finalize().to_vec())
    });
    let finished = |producer: tokio::task::JoinHandle<Result<Vec<u8>, Problem>>| async move {
        producer
            .await
            .map_err(|e| Problem::internal("reading the upload failed", &e))?
    };
    // The first slice is parsed before any database connection is taken: a client that sends
    // slowly (or not at all) holds nothing but its own socket.
    let Some(first) = chunks.recv().await else {
        finished(producer).await?;
        return Err(Problem::internal(
            "reading the upload failed",
            &"the reader ended without records or an error",
        ));
    };

    let mut tx = state.pool.begin().await?;
    // Past the first slice the transaction waits on the client at most the body idle limit
    // (see `bounded_body`); the database enforces a limit of its own on top.
    store::set_idle_timeout(&mut tx, idle.saturating_mul(2)).await?;
    if let Some(key) = &key {
        idempotency::lock(&mut tx, &info.office, key).await?;
        let earlier = idempotency::earlier(&mut tx, &info.office, key).await?;
        if let Some(idempotency::Earlier {
            body_sha256: earlier_hash,
            batch_id,
            record_count: records,
        }) = earlier
        {
            tx.rollback().await?;
            // Read (and hash) the rest of the body without a transaction.
            drop(first);
            while chunks.recv().await.is_some() {}
            let hash = finished(producer).await?;
            if hash != earlier_hash {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency-key-reused",
                    "Idempotency-Key already used for another request",
                    format!(
                        "this Idempotency-Key made batch {batch_id} from a different body, programme or period"
                    ),
                )
                .with("field", "Idempotency-Key")
                .with("batch_id", batch_id.to_string())
                .with(
                    "fix",
                    "use a new Idempotency-Key for a new batch; to repeat a request, send exactly the same body and parameters",
                ));
            }
            return Ok(Stored {
                batch_id,
                records: u64::try_from(records).unwrap_or_default(),
                replayed: true,
            });
        }
    }

    let batch_id = Uuid::new_v4();
    let mut writer =
        BatchWriter::begin_in(&state.settings, &state.pool, tx, batch_id, file_name, info).await?;
    let mut failure = writer.write(first).await.err();
    while failure.is_none()
        && let Some(chunk) = chunks.recv().await
    {
        failure = writer.write(chunk).await.err();
    }
    drop(chunks);
    let produced = finished(producer).await;
    // A refused file is the office's answer, even when the database then failed too.
    let hash = produced?;
    if let Some(e) = failure {
        return Err(e.into()); // the transaction rolls back when the writer is dropped
    }
    if let Some(key) = &key {
        idempotency::remember(writer.tx(), &info.office, key, &hash, batch_id).await?;
    }
    let records = writer.finish().await? as u64;
    state
        .metrics
        .uploaded_records
        .with_label_values(&[format.as_str()])
        .inc_by(records);
    tracing::info!(%batch_id, records, office = %info.office, format = format.as_str(), "batch stored from an upload");
    Ok(Stored {
        batch_id,
        records,
        replayed: false,
    })
}

fn io_problem(e: &io::Error, limit: u64, format: Format) -> Problem {
    if is_too_large(e) {
        too_large(limit, format)
    } else if is_idle(e) {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "upload-timeout",
            "The upload stalled",
            "the client sent nothing for longer than the idle limit (API_BODY_IDLE_TIMEOUT); nothing was stored",
        )
        .with("limit_setting", "API_BODY_IDLE_TIMEOUT")
        .with("fix", "send the file again over a steady connection")
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The upload could not be read",
            format!("the request body could not be read to its end ({e}); nothing was stored"),
        )
        .with("fix", "send the request again")
    }
}

fn intake_problem(e: IntakeError, limit: u64, format: Format) -> Problem {
    match &e {
        IntakeError::Io { source, .. } => io_problem(source, limit, format),
        _ => e.into(),
    }
}

/// Reads the body on a blocking thread and sends its records in chunks to the storing task.
fn read_records<R: Read>(
    format: Format,
    file_name: &str,
    reader: R,
    sink: &mut RowSink,
    limit: u64,
) -> Result<(), Problem> {
    if format == Format::Xlsx {
        let mut bytes = Vec::new();
        let mut reader = reader;
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| io_problem(&e, limit, format))?;
        let limits = intake::xlsx::XlsxLimits::for_body(limit);
        intake::xlsx::read_xlsx(file_name, bytes, &limits, SLICE, &mut |chunk| {
            sink.send(chunk)
        })
        .map_err(|e| intake_problem(e, limit, format))?;
        return Ok(());
    }
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    check_format(format, &mut reader).map_err(|e| match e {
        Ok(p) => p,
        Err(io) => io_problem(&io, limit, format),
    })?;
    let records =
        intake::parse_reader(file_name, reader).map_err(|e| intake_problem(e, limit, format))?;
    let mut chunk = Vec::with_capacity(SLICE);
    for record in records {
        chunk.push(record.map_err(|e| intake_problem(e, limit, format))?);
        if chunk.len() == SLICE
            && !sink.send(std::mem::replace(&mut chunk, Vec::with_capacity(SLICE)))
        {
            return Ok(());
        }
    }
    sink.send(chunk);
    Ok(())
}

/// Where the reading thread puts the records it parsed, for the storing task.
struct RowSink {
    out: tokio::sync::mpsc::Sender<Vec<RawRecord>>,
}

impl RowSink {
    /// Hands a chunk over, waiting while the storing task is busy (two chunks in flight at most,
    /// so memory stays flat). `false` when the storing side stopped (it failed and says why).
    fn send(&mut self, chunk: Vec<RawRecord>) -> bool {
        chunk.is_empty() || self.out.blocking_send(chunk).is_ok()
    }
}

/// Refuses a body that is plainly not what its `Content-Type` says (a JSON array sent as CSV,
/// or CSV sent as JSON), looking only at its first meaningful byte.
fn check_format<R: Read>(
    format: Format,
    reader: &mut BufReader<R>,
) -> Result<(), Result<Problem, io::Error>> {
    let buf = reader.fill_buf().map_err(Err)?;
    if intake::file::looks_like_utf16(buf) {
        // Said as it is, whatever the Content-Type (a UTF-16 JSON body is not "not JSON").
        return Err(Ok(IntakeError::Utf16 {
            file: "the upload".into(),
        }
        .into()));
    }
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let Some(&first) = buf.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(());
    };
    let json_like = first == b'[' || first == b'{';
    let mismatch = |detail: &str, fix: &str| {
        Err(Ok(Problem::new(
            StatusCode::BAD_REQUEST,
            "content-type-mismatch",
            "The body is not what its Content-Type says",
            detail,
        )
        .with("field", "Content-Type")
        .with("line", 1)
        .with("fix", fix)))
    };
    match format {
        Format::Json if !json_like => mismatch(
            "the body is not JSON: a JSON batch is an array of recipient objects, `[{...}, ...]`",
            "send CSV with Content-Type: text/csv, or send a JSON array",
        ),
        Format::Csv if json_like => mismatch(
            "the body is JSON, but Content-Type says CSV",
            "send it with Content-Type: application/json",
        ),
        Format::Csv if intake::xlsx::looks_like_xlsx(buf) => mismatch(
            "the body is an Excel workbook (or another zip archive), but Content-Type says CSV",
            "send it with Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        _ => Ok(()),
    }
}
