//! Following batches: list, status (counts and amounts by state, counts by reason), records
//! (paginated, masked) and the CSV report.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt as _;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Caller;
use super::{AppState, Problem, Query};
use crate::domain::ReasonCode;
use crate::ops::batch;
use crate::store::State as RecordState;
use crate::store::batches;

/// A path id that is not a UUID names no batch: 404, like any id the caller cannot see.
pub fn batch_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("batch"))
}

/// Checks that the batch exists and the caller may see it.
pub async fn visible_batch(state: &AppState, caller: &Caller, id: Uuid) -> Result<(), Problem> {
    if batches::visible(&state.pool, id, caller.scope()).await? {
        Ok(())
    } else {
        Err(Problem::not_found("batch"))
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    program: Option<String>,
    period: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BatchItem {
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub file_name: String,
    pub records: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn limit(raw: Option<&str>) -> Result<i64, Problem> {
    match raw {
        None => Ok(50),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(Problem::bad_parameter(
                "limit",
                format!("limit {v:?} is not a number from 1 to 500"),
                "ask for 1 to 500 items per page",
            )),
        },
    }
}

fn bad_cursor() -> Problem {
    Problem::bad_parameter(
        "cursor",
        "the cursor is not one this API gave out",
        "pass the next_cursor of the previous page unchanged, or leave it out for the first page",
    )
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<BatchItem>>, Problem> {
    let limit = limit(params.limit.as_deref())?;
    // Newest first; the cursor is the (created_at, id) of the last item seen.
    let after: Option<(i64, Uuid)> = match params.cursor.as_deref() {
        None => None,
        Some(c) => {
            let (micros, id) = c.split_once('_').ok_or_else(bad_cursor)?;
            Some((
                micros.parse().map_err(|_| bad_cursor())?,
                Uuid::parse_str(id).map_err(|_| bad_cursor())?,
            ))
        }
    };
    let rows = batches::list(
        &state.pool,
        &batches::ListQuery {
            office: caller.scope(),
            program: params.program.as_deref(),
            period: params.period.as_deref(),
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut next_cursor = None;
    for b in rows.into_iter().take(limit as usize) {
        next_cursor = Some(format!("{}_{}", b.created_micros, b.id));
        items.push(BatchItem {
            batch_id: b.id,
            office: b.office,
            program: b.program,
            period: b.period,
            file_name: b.file_name,
            records: i64::from(b.record_count),
            created_at: b.created_at,
        });
    }
    Ok(Json(Page {
        items,
        next_cursor: if more { next_cursor } else { None },
    }))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<batch::BatchStatus>, Problem> {
    let id = batch_id(&id)?;
    visible_batch(&state, &caller, id).await?;
    match batch::status(&state.pool, id).await {
        Ok(s) => Ok(Json(s)),
        Err(batch::BatchError::NotFound(_)) => Err(Problem::not_found("batch")),
        Err(e) => Err(Problem::internal("reading the batch failed", &e)),
    }
}

/// One record as an office sees it in a list: personal data masked.
#[derive(Debug, Serialize)]
pub struct RecordItem {
    pub record_id: i64,
    pub batch_id: Uuid,
    /// 1-based position in the office's file.
    pub row: i32,
    pub state: String,
    pub reasons: serde_json::Value,
    pub nik: Option<String>,
    pub kk: Option<String>,
    pub name: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    /// IDR, as a decimal string.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    pub bank_reference: Option<String>,
    pub attempts: i32,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<batches::ListedRecord> for RecordItem {
    fn from(r: batches::ListedRecord) -> Self {
        RecordItem {
            record_id: r.id,
            batch_id: r.batch_id,
            row: r.row_number,
            state: r.state,
            reasons: r.reasons,
            nik: r.shown.nik,
            kk: r.shown.kk,
            name: r.shown.name,
            bank_code: r.shown.bank_code,
            account_number: r.shown.account_number,
            amount: r.amount,
            bank_reference: r.bank_reference,
            attempts: r.attempts,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RecordParams {
    state: Option<String>,
    reason: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<RecordParams>,
) -> Result<Json<Page<RecordItem>>, Problem> {
    let id = batch_id(&id)?;
    let limit = limit(params.limit.as_deref())?;
    if let Some(s) = params.state.as_deref()
        && RecordState::parse(s).is_none()
    {
        let all: Vec<_> = RecordState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(Problem::bad_parameter(
            "state",
            format!("{s:?} is not a record state"),
            &format!("use one of {}", all.join(", ")),
        ));
    }
    if let Some(r) = params.reason.as_deref()
        && ReasonCode::parse(r).is_none()
    {
        return Err(Problem::bad_parameter(
            "reason",
            format!("{r:?} is not a reason code"),
            "use a code from the README's reason table, e.g. MOTHER_NAME_MISSING",
        ));
    }
    let after: i64 = match params.cursor.as_deref() {
        None => 0,
        Some(c) => c.parse().ok().filter(|n| *n >= 0).ok_or_else(bad_cursor)?,
    };
    visible_batch(&state, &caller, id).await?;
    let rows = batches::records(
        &state.pool,
        id,
        &batches::RecordQuery {
            after,
            state: params.state.as_deref(),
            reason: params.reason.as_deref(),
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<RecordItem> = rows
        .into_iter()
        .take(limit as usize)
        .map(RecordItem::from)
        .collect();
    let next_cursor = if more {
        items.last().map(|r| r.record_id.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

/// The report, streamed from the database (a batch of a million rows is never held whole).
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = batch_id(&id)?;
    visible_batch(&state, &caller, id).await?;
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let mut tx = tx;
        let result: anyhow::Result<()> = async {
            use futures::SinkExt as _;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(batch::REPORT_HEADER)?;
            let mut rows = batches::report_rows(&pool, id);
            while let Some(row) = rows.try_next().await? {
                w.write_record(batch::report_fields(row)?)?;
                if w.get_ref().len() >= 64 * 1024 {
                    let full = std::mem::replace(&mut w, csv::Writer::from_writer(Vec::new()));
                    let chunk = full.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
                    tx.send(Ok(Bytes::from(chunk))).await?;
                }
            }
            w.flush()?;
            let rest = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.send(Ok(Bytes::from(rest))).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(batch_id = %id, error = format!("{e:#}"), "report stream ended early");
            let _ = tx.try_send(Err(std::io::Error::other("report failed")));
        }
    });
    let mut response = Body::from_stream(rx).into_response();
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"report-{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
