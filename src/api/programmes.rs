//! Programmes and their budgets: `GET/POST /v1/programmes`, `GET
//! /v1/programmes/{code}/budgets/{period}` and `PUT
//! /v1/programmes/{code}/budgets/{period}/{office}`. Programmes and budgets are changed with an
//! admin token only; any token reads the programmes; a budget is read whole by an admin or an
//! auditor, and by an office's makers and checkers for their own office.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::{AppState, Json, Problem};
use crate::ops::budget::{self, BudgetError, BudgetShow};
use crate::ops::office::Role;
use crate::ops::programme::{self, ProgrammeError};
use crate::store::programmes::Programme;

fn programme_problem(e: ProgrammeError) -> Problem {
    let detail = e.to_string();
    match e {
        ProgrammeError::InvalidCode(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A value cannot be accepted",
            detail,
        )
        .with("field", "code"),
        ProgrammeError::EmptyName | ProgrammeError::BadName(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A value cannot be accepted",
            detail,
        )
        .with("field", "name"),
        ProgrammeError::Amounts(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A value cannot be accepted",
            detail,
        )
        .with("field", "amounts")
        .with(
            "fix",
            "give the amounts as rupiah strings, e.g. [\"200000\", \"600000\"]",
        ),
        ProgrammeError::Exists(_) => Problem::new(
            StatusCode::CONFLICT,
            "programme-exists",
            "The programme exists",
            detail,
        )
        .with("field", "code"),
        ProgrammeError::NotFound(_) => Problem::not_found("programme"),
        ProgrammeError::Database(e) => e.into(),
    }
}

fn budget_problem(e: BudgetError) -> Problem {
    let detail = e.to_string();
    let invalid = |field: &str| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "A value cannot be accepted",
            detail.clone(),
        )
        .with("field", field)
    };
    match e {
        BudgetError::UnknownProgramme(_) => Problem::not_found("programme"),
        BudgetError::UnknownOffice(_) => invalid("office"),
        BudgetError::InvalidPeriod(_) => invalid("period"),
        BudgetError::InvalidAmount(_) => invalid("amount"),
        BudgetError::Database(e) => e.into(),
    }
}

/// Every programme (any token).
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<axum::Json<Vec<Programme>>, Problem> {
    programme::list(&state.pool)
        .await
        .map(axum::Json)
        .map_err(programme_problem)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProgramme {
    code: String,
    name: String,
    /// Rupiah amounts, as strings (`"600000"`) or numbers.
    amounts: Vec<Value>,
    /// `required` (the default) or `none`.
    approval: Option<String>,
}

/// Registers a programme (admin tokens).
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewProgramme>,
) -> Result<Response, Problem> {
    caller.admin()?;
    let approval_required = match body.approval.as_deref() {
        None | Some("required") => true,
        Some("none") => false,
        Some(_) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-value",
                "A value cannot be accepted",
                "approval must be \"required\" or \"none\"",
            )
            .with("field", "approval"));
        }
    };
    let mut amounts = Vec::with_capacity(body.amounts.len());
    for v in &body.amounts {
        match v {
            Value::String(s) if !s.contains(',') => amounts.push(s.clone()),
            Value::Number(n) => amounts.push(n.to_string()),
            _ => {
                return Err(programme_problem(ProgrammeError::Amounts(
                    "every amount is a rupiah string like \"600000\" (no commas)".into(),
                )));
            }
        }
    }
    let added = programme::add(
        &state.pool,
        &body.code,
        &body.name,
        &amounts.join(","),
        approval_required,
    )
    .await
    .map_err(programme_problem)?;
    Ok((StatusCode::CREATED, axum::Json(added)).into_response())
}

/// A programme's budget for a period, per office.
pub async fn show_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, period)): Path<(String, String)>,
) -> Result<axum::Json<BudgetShow>, Problem> {
    let mut show = budget::show(&state.pool, &code, &period)
        .await
        .map_err(budget_problem)?;
    if !matches!(caller.0.role, Role::Admin | Role::Auditor) {
        show.offices.retain(|l| l.office == caller.0.code);
        show.total = show.offices.first().cloned().unwrap_or(budget::BudgetLine {
            office: caller.0.code.clone(),
            allocated: None,
            approved_not_paid: Default::default(),
            disbursed: Default::default(),
            released: Default::default(),
            remaining: None,
        });
    }
    Ok(axum::Json(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    /// Rupiah, as a string (`"1500000000"`) or a number.
    amount: Value,
}

/// Sets an office's budget for a programme and period (admin tokens).
pub async fn set_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, period, office)): Path<(String, String, String)>,
    Json(body): Json<SetBudget>,
) -> Result<axum::Json<budget::BudgetLine>, Problem> {
    caller.admin()?;
    let text = match &body.amount {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(budget_problem(BudgetError::InvalidAmount(
                body.amount.to_string(),
            )));
        }
    };
    let amount = budget::parse_amount(&text).map_err(budget_problem)?;
    budget::set(&state.pool, &code, &period, &office, amount)
        .await
        .map(axum::Json)
        .map_err(budget_problem)
}
