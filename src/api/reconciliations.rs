//! Bank statements reconciled: `POST /v1/reconciliations?bank=CODE` (the statement as the
//! body: MT940 or the CSV export), `GET /v1/reconciliations` (the latest) and `GET
//! /v1/reconciliations/{id}` (one, with its exceptions). Admin and auditor tokens only: a
//! statement covers every office's payments.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::{AppState, Problem, Query};
use crate::ops::office::Role;
use crate::ops::reconcile::{self, ReconcileError};

/// The largest statement accepted (a day of a large programme at one bank: ~150 bytes a line).
const LIMIT: usize = 256 * 1024 * 1024;

fn allowed(caller: &Caller) -> Result<(), Problem> {
    match caller.0.role {
        Role::Admin | Role::Auditor => Ok(()),
        role => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not-allowed",
            "Not allowed",
            format!(
                "bank statements are reconciled and read with an admin or auditor token; this is \
                 a {role} token"
            ),
        )
        .with("role", role.as_str())),
    }
}

fn problem(e: ReconcileError) -> Problem {
    let detail = e.to_string();
    match e {
        ReconcileError::Malformed(s) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "statement-refused",
            "The statement is refused",
            detail,
        )
        .with("line", s.line as u64)
        .with(
            "fix",
            "ask the bank for the statement again, or correct the line named",
        ),
        ReconcileError::Conflict { id, .. } => Problem::new(
            StatusCode::CONFLICT,
            "statement-reconciled",
            "The statement was reconciled from another file",
            detail,
        )
        .with("reconciliation_id", id.to_string()),
        ReconcileError::Bank(..) => {
            Problem::bad_parameter("bank", detail, "give the bank's BI code, e.g. ?bank=002")
        }
        ReconcileError::NotFound(_) => Problem::not_found("reconciliation"),
        ReconcileError::Database(e) => e.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Upload {
    bank: String,
    /// A name for the file in reports (default `statement`).
    file_name: Option<String>,
}

/// Reconciles the statement in the body: 201 with the report, or 200 with the stored one when
/// the same statement was reconciled before.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<Upload>,
    body: Body,
) -> Result<Response, Problem> {
    allowed(&caller)?;
    let bytes = axum::body::to_bytes(body, LIMIT).await.map_err(|e| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The statement is too large",
            format!("the body could not be read whole (at most {LIMIT} bytes): {e}"),
        )
    })?;
    let name = q
        .file_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("statement");
    let report = reconcile::reconcile(&state.pool, &q.bank, name, &bytes, &caller.actor())
        .await
        .map_err(problem)?;
    let status = if report.already_reconciled {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(report)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    bank: Option<String>,
    limit: Option<String>,
}

/// The latest reconciliations (at most `limit`, default 100), of `bank` if given.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    allowed(&caller)?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l.trim().parse::<i64>().unwrap_or(0),
    };
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_parameter(
            "limit",
            "limit must be between 1 and 1000",
            "e.g. ?limit=100",
        ));
    }
    let items = reconcile::list(&state.pool, q.bank.as_deref(), limit)
        .await
        .map_err(problem)?;
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

/// One reconciliation with its exceptions.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    allowed(&caller)?;
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found("reconciliation"))?;
    let report = reconcile::show(&state.pool, id).await.map_err(problem)?;
    Ok(axum::Json(report).into_response())
}
