//! `GET /v1/batches/{id}/approval` (the payment list as it stands) and `POST` (a checker
//! approves exactly the list whose hash they name, or rejects it). See [`crate::ops::approval`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::Caller;
use super::batches::batch_id;
use super::{AppState, Json, Problem};
use crate::ops::approval::{self, ApprovalError, ApprovalList, Checker, Decided};

/// The body of `POST /v1/batches/{id}/approval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` (the default when `list_hash` is given) or `reject`.
    #[serde(default)]
    pub decision: Option<String>,
    /// For an approval: the hash of the list as the checker saw it.
    #[serde(default)]
    pub list_hash: Option<String>,
    /// For a rejection: why, for the office and the audit trail.
    #[serde(default)]
    pub why: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ApprovalList>, Problem> {
    let id = batch_id(&id)?;
    approval::list(&state.pool, id, caller.scope())
        .await
        .map(axum::Json)
        .map_err(problem)
}

pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<DecisionBody>,
) -> Result<axum::Json<Decided>, Problem> {
    let id = batch_id(&id)?;
    // A batch the caller cannot see is 404 whatever their role.
    super::batches::visible_batch(&state, &caller, id).await?;
    let checker = caller.checker().map_err(problem)?;
    let decided = match body.decision.as_deref().unwrap_or("approve") {
        "approve" => {
            let hash = body.list_hash.as_deref().ok_or_else(|| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-list-hash",
                    "No list hash",
                    "an approval names the hash of the list the checker saw",
                )
                .with("field", "list_hash")
                .with("fix", "GET this batch's /approval and send its list_hash")
            })?;
            approval::approve(&state.settings, &state.pool, id, hash, &checker).await
        }
        "reject" => {
            approval::reject(
                &state.settings,
                &state.pool,
                id,
                body.why.as_deref().unwrap_or_default(),
                &checker,
            )
            .await
        }
        other => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-decision",
                "Unknown decision",
                format!("{other:?} is not a decision"),
            )
            .with("field", "decision")
            .with(
                "fix",
                "send \"approve\" (with list_hash) or \"reject\" (with why)",
            ));
        }
    };
    decided.map(axum::Json).map_err(problem)
}

/// An approval's error as a problem: each says what to do.
pub fn problem(e: ApprovalError) -> Problem {
    use ApprovalError as E;
    let detail = e.to_string();
    match e {
        E::BatchNotFound(_) => Problem::not_found("batch"),
        E::NotAChecker => Problem::new(
            StatusCode::FORBIDDEN,
            "not-a-checker",
            "Only a checker approves",
            detail,
        )
        .with(
            "fix",
            "a checker of the office (another person than the maker) decides with their own token",
        ),
        E::OwnSubmission(_) => Problem::new(
            StatusCode::FORBIDDEN,
            "own-submission",
            "The submitter may not approve",
            detail,
        )
        .with("fix", "another checker of the office decides on this list"),
        E::NoPerson => Problem::new(
            StatusCode::FORBIDDEN,
            "not-a-checker",
            "The token names no person",
            detail,
        )
        .with(
            "fix",
            "make the checker a token of their own: `salur office token CODE --role checker --person NAME`",
        ),
        E::BadHash(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-list-hash",
            "Not a list hash",
            detail,
        )
        .with("field", "list_hash")
        .with("fix", "GET this batch's /approval and send its list_hash"),
        E::NothingToApprove(_) => Problem::new(
            StatusCode::CONFLICT,
            "nothing-to-approve",
            "Nothing waits for approval",
            detail,
        )
        .with(
            "fix",
            "wait until the batch's records are verified (`GET /v1/batches/{id}`)",
        ),
        E::StaleList {
            ref current,
            records,
            total,
            ..
        } => Problem::new(
            StatusCode::CONFLICT,
            "stale-list",
            "The list changed since it was shown",
            detail.clone(),
        )
        .with("current_list_hash", current.clone())
        .with("records", records)
        .with("total", format!("{total:.2}"))
        .with(
            "fix",
            "GET this batch's /approval again, check it, and approve its list_hash",
        ),
        E::OverBudget {
            ref program,
            ref period,
            ref office,
            allocated,
            used,
            list,
        } => Problem::new(
            StatusCode::CONFLICT,
            "over-budget",
            "The approval would exceed the budget",
            detail.clone(),
        )
        .with("program", program.clone())
        .with("period", period.clone())
        .with("office", office.clone())
        .with("allocated", format!("{allocated:.2}"))
        .with("used", format!("{used:.2}"))
        .with("list_total", format!("{list:.2}"))
        .with("short", format!("{:.2}", list + used - allocated))
        .with(
            "fix",
            "an admin raises the budget (`salur budget set`), or the checker rejects the list",
        ),
        E::NoReason => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-parameter",
            "No reason",
            detail,
        )
        .with("field", "why")
        .with("fix", "say why the list is rejected in `why`"),
        E::Database(e) => Problem::from(e),
    }
}

impl Caller {
    /// The caller as a checker: their person and token, limited to their office's batches;
    /// [`ApprovalError::NotAChecker`] for any other role.
    pub fn checker(&self) -> Result<Checker, ApprovalError> {
        use crate::ops::office::Role;
        match self.0.role {
            Role::Checker => Ok(Checker {
                person: self.0.person.clone().unwrap_or_default(),
                token_label: Some(self.0.token_label.clone()),
                office: Some(self.0.code.clone()),
            }),
            Role::Maker | Role::Auditor | Role::Admin => Err(ApprovalError::NotAChecker),
        }
    }
}
