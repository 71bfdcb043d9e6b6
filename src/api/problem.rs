//! Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, and
//! extension members that say where the fault is (`line`, `row`, `field`, `fields`) and how to
//! fix it (`fix`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::intake::IntakeError;
use crate::ops::submit::SubmitError;

/// One problem. `type` is a relative URI `/problems/<slug>`, stable and listed in the README.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid bearer token",
            detail,
        )
        .with(
            "fix",
            "send `Authorization: Bearer <token>` with the token `salur office add` printed",
        )
    }

    pub fn forbidden(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("there is no {what} here for this office"),
        )
    }

    pub fn bad_parameter(name: &str, detail: impl Into<String>, fix: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            detail,
        )
        .with("field", name)
        .with("fix", fix)
    }

    /// A failure of ours; the cause is logged, never sent.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            format!("{context}; nothing was changed by this request, try again later"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"salur\""),
            );
        }
        response
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Problem::internal("the database failed", &e)
    }
}

/// A file that cannot be read as a batch: 400 when it is malformed, 422 when it is well-formed
/// but not a batch. `detail` is intake's sentence (it names the line or column and the fix).
impl From<IntakeError> for Problem {
    fn from(e: IntakeError) -> Self {
        use IntakeError as E;
        let detail = e.to_string();
        let line = e.line();
        let (status, slug, title) = match &e {
            E::Io { .. } => (
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "The upload could not be read",
            ),
            E::Empty { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty-file",
                "The file is empty",
            ),
            E::NotUtf8 { .. } => (
                StatusCode::BAD_REQUEST,
                "not-utf8",
                "The file is not UTF-8 text",
            ),
            E::JsonSyntax { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The JSON is malformed",
            ),
            E::JsonNotArray { .. } | E::JsonNotObject { .. } | E::JsonNotText { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "json-not-a-batch",
                "The JSON is not an array of recipient objects",
            ),
            E::MissingColumns { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-columns",
                "Required columns are missing",
            ),
            E::DuplicateColumn { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "duplicate-column",
                "A column appears twice",
            ),
            E::NoDataRows { .. } | E::JsonEmptyArray { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "no-data-rows",
                "The file has no recipient rows",
            ),
            E::DuplicateKey { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "duplicate-column",
                "A column appears twice",
            ),
            E::InvalidValue { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-value",
                "A value cannot be accepted",
            ),
            E::Utf16 { .. } => (
                StatusCode::BAD_REQUEST,
                "not-utf8",
                "The file is not UTF-8 text",
            ),
            E::XlsxLimit { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "workbook-too-large",
                "The Excel workbook is over a limit",
            ),
            E::FieldCount { .. } | E::Csv { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-csv",
                "The CSV is malformed",
            ),
            E::Xlsx { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-xlsx",
                "The Excel workbook cannot be read",
            ),
        };
        let mut p = Problem::new(status, slug, title, detail);
        if let Some(line) = line {
            p = p.with("line", line);
        }
        match e {
            E::NotUtf8 {
                column: Some(c), ..
            } => p = p.with("field", c),
            E::JsonSyntax { column, .. } => p = p.with("column", column),
            E::JsonNotObject { index, .. } => p = p.with("row", index),
            E::JsonNotText { index, field, .. } => p = p.with("row", index).with("field", field),
            E::MissingColumns { missing, .. } => {
                let fields: Vec<Value> = missing
                    .iter()
                    .map(|m| serde_json::json!({ "field": m.column, "accepted_names": m.accepted }))
                    .collect();
                p = p
                    .with(
                        "field",
                        missing.first().map(|m| m.column).unwrap_or_default(),
                    )
                    .with("missing", fields);
            }
            E::DuplicateKey { index, column, .. } => p = p.with("row", index).with("field", column),
            E::InvalidValue { row, field, .. } => p = p.with("row", row).with("field", field),
            E::Utf16 { .. } => p = p.with("encoding", "UTF-16"),
            E::XlsxLimit {
                limit,
                unit,
                setting,
                what,
                ..
            } => {
                p = p
                    .with("limit", limit)
                    .with("unit", unit)
                    .with("limit_setting", setting)
                    .with("over", what)
            }
            E::DuplicateColumn { column, index, .. } => {
                p = p.with("field", column);
                if let Some(i) = index {
                    p = p.with("row", i);
                }
            }
            E::FieldCount {
                expected, found, ..
            } => {
                p = p
                    .with("expected_fields", expected)
                    .with("found_fields", found)
            }
            _ => {}
        }
        p
    }
}

impl From<SubmitError> for Problem {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Intake(e) => e.into(),
            SubmitError::Invalid { field, value, rule } => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-parameter",
                "Invalid parameter",
                format!("{field} {value:?} is not valid"),
            )
            .with("field", field)
            .with("fix", rule),
            SubmitError::UnknownProgramme { program, known } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-programme",
                "Unknown programme",
                format!("programme {program:?} is not known; nothing was stored"),
            )
            .with("field", "program")
            .with("known_programmes", known)
            .with(
                "fix",
                "submit for one of known_programmes (?program=...), or ask an admin to add the programme (POST /v1/programmes)",
            ),
            SubmitError::Database(e) => e.into(),
        }
    }
}
