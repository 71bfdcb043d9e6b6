//! One record: show (masked, with its audit history), fix (PATCH), replay; and a batch's replay.
//! These use the remediation operations of [`crate::ops`], shared with the CLI.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::Caller;
use super::{AppState, Problem};

fn pending() -> Problem {
    Problem::new(
        StatusCode::NOT_IMPLEMENTED,
        "not-implemented",
        "Not implemented yet",
        "remediation lands with src/ops/remediate.rs",
    )
}

pub async fn show(
    State(_state): State<AppState>,
    _caller: Caller,
    Path(_id): Path<String>,
) -> Result<Response, Problem> {
    Err(pending())
}

pub async fn fix(
    State(_state): State<AppState>,
    _caller: Caller,
    Path(_id): Path<String>,
) -> Result<Response, Problem> {
    Err(pending())
}

pub async fn replay_one(
    State(_state): State<AppState>,
    _caller: Caller,
    Path(_id): Path<String>,
) -> Result<Response, Problem> {
    Err(pending())
}

pub async fn replay_batch(
    State(_state): State<AppState>,
    _caller: Caller,
    Path(_id): Path<String>,
) -> Result<Response, Problem> {
    Err(pending())
}
