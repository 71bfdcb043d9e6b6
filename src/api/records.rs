//! One record: show (masked, with its audit history), fix (`PATCH`), replay; and the replay of
//! a batch's blocked records. These are the remediation operations of
//! [`crate::ops::remediate`], the same the CLI uses, scoped to the caller's office.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::batches::{batch_id, visible_batch};
use super::{AppState, Json, Problem, Query};
use crate::domain::ReasonCode;
use crate::ops::remediate::{
    self, Filter, FixOutcome, RecordView, RemediateError, ReplayOutcome, Scope,
};
use crate::store::State as RecordState;

fn scope(caller: &Caller) -> Scope {
    match caller.scope() {
        Some(office) => Scope::Office(office.to_owned()),
        None => Scope::All,
    }
}

/// A path id that is not a record id names no record: 404, like one the caller cannot see.
fn record_id(raw: &str) -> Result<i64, Problem> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Problem::not_found("record"))
}

fn remediate_problem(e: RemediateError) -> Problem {
    match e {
        RemediateError::NotFound(_) => Problem::not_found("record"),
        RemediateError::BatchNotFound(_) => Problem::not_found("batch"),
        e @ RemediateError::NotFixable { .. } => Problem::new(
            StatusCode::CONFLICT,
            "not-fixable",
            "Only blocked records can be corrected",
            e.to_string(),
        )
        .with(
            "fix",
            "look at the record's state and reasons with GET /v1/records/{id}",
        ),
        RemediateError::UnknownField { field } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-field",
            "Unknown field",
            format!("{field:?} is not a field of a record"),
        )
        .with("field", field)
        .with(
            "fix",
            format!(
                "use one of {} (or their Indonesian names)",
                crate::intake::file::field_keys()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        e @ RemediateError::InvalidValue { field, .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A corrected value is refused",
            e.to_string(),
        )
        .with("field", field)
        .with(
            "fix",
            "correct the value as the detail says and send the fix again",
        ),
        RemediateError::Database(e) => e.into(),
        other => Problem::internal("the remediation failed", &other),
    }
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<RecordView>, Problem> {
    let id = record_id(&id)?;
    remediate::show(&state.pool, &scope(&caller), id)
        .await
        .map(axum::Json)
        .map_err(remediate_problem)
}

/// `{"mother_name": "Yohana Bili", "birth_date": "1980-08-05"}`: values are text (a number is
/// taken as written); `null` or `""` clears a field.
pub async fn fix(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Map<String, Value>>,
) -> Result<axum::Json<FixOutcome>, Problem> {
    let id = record_id(&id)?;
    let office = caller.office_for_change()?.to_owned();
    if body.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing-to-fix",
            "Nothing to correct",
            "the body names no field",
        )
        .with(
            "fix",
            "send the fields to correct, e.g. {\"mother_name\": \"Yohana Bili\"}",
        ));
    }
    let mut sets = Vec::with_capacity(body.len());
    for (field, value) in body {
        let text = match value {
            Value::Null => String::new(),
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not-text",
                    "A value is not text",
                    format!("the value of {field:?} is not text, a number or null"),
                )
                .with("field", field)
                .with(
                    "fix",
                    "write every value as a string, or null to clear the field",
                ));
            }
        };
        sets.push((field, text));
    }
    let outcome = remediate::fix(
        &state.settings,
        &state.pool,
        &Scope::Office(office),
        &caller.actor(),
        id,
        &sets,
    )
    .await
    .map_err(remediate_problem)?;
    Ok(axum::Json(outcome))
}

/// Sends one blocked record back to account opening once its data is complete; a record that
/// is still incomplete stays blocked and is listed under `still_blocked` with its reasons.
pub async fn replay_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ReplayOutcome>, Problem> {
    let id = record_id(&id)?;
    let office = caller.office_for_change()?.to_owned();
    let scope = Scope::Office(office);
    let record = remediate::show(&state.pool, &scope, id)
        .await
        .map_err(remediate_problem)?;
    if record.state != RecordState::Blocked.as_str() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not-replayable",
            "Only blocked records can be replayed",
            format!("record {id} is {}", record.state),
        )
        .with(
            "fix",
            "nothing to do for this record: see its state with GET /v1/records/{id}",
        ));
    }
    let filter = Filter {
        batch_id: None,
        reason: None,
        ids: vec![id],
        state: Some(RecordState::Blocked),
    };
    remediate::replay(
        &state.settings,
        &state.pool,
        &scope,
        &caller.actor(),
        &filter,
    )
    .await
    .map(axum::Json)
    .map_err(remediate_problem)
}

#[derive(Debug, Deserialize)]
pub struct ReplayParams {
    reason: Option<String>,
}

/// Replays the batch's blocked records (optionally only those with one reason): the complete
/// ones go back to account opening, the others stay blocked and are listed with their reasons.
pub async fn replay_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ReplayParams>,
) -> Result<axum::Json<ReplayOutcome>, Problem> {
    let id = batch_id(&id)?;
    let reason = match params.reason.as_deref() {
        None => None,
        Some(r) => Some(ReasonCode::parse(r).ok_or_else(|| {
            Problem::bad_parameter(
                "reason",
                format!("{r:?} is not a reason code"),
                "use a code from the README's reason table, e.g. MOTHER_NAME_MISSING",
            )
        })?),
    };
    visible_batch(&state, &caller, id).await?;
    let office = caller.office_for_change()?.to_owned();
    let filter = Filter {
        batch_id: Some(id),
        reason,
        ids: Vec::new(),
        state: Some(RecordState::Blocked),
    };
    remediate::replay(
        &state.settings,
        &state.pool,
        &Scope::Office(office),
        &caller.actor(),
        &filter,
    )
    .await
    .map(axum::Json)
    .map_err(remediate_problem)
}
