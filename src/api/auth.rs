//! Bearer tokens: every `/v1` call names its office (or auditor) with
//! `Authorization: Bearer <token>`.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::{AppState, Problem};
use crate::domain::Actor;
use crate::ops::office::{self, Principal, Role};

/// The caller, known by its token. Extracting it answers 401 for a missing, malformed, unknown
/// or revoked token.
pub struct Caller(pub Principal);

impl Caller {
    /// The office whose batches this caller may see: its own, or every office's for an auditor.
    pub fn scope(&self) -> Option<&str> {
        match self.0.role {
            Role::Maker | Role::Checker | Role::Admin => Some(&self.0.code),
            Role::Auditor => None,
        }
    }

    /// The office code of a caller allowed to submit and change records: a maker (an auditor,
    /// a checker or an admin is not).
    pub fn office_for_change(&self) -> Result<&str, Problem> {
        match self.0.role {
            Role::Maker => Ok(&self.0.code),
            Role::Auditor => Err(Problem::forbidden(
                "an auditor token reads every office's batches but changes nothing: use the office's own token",
            )
            .with("role", "auditor")),
            Role::Checker => Err(Problem::forbidden(
                "a checker token approves or rejects payment lists; it does not submit or change records: use a maker token of the office",
            )
            .with("role", "checker")),
            Role::Admin => Err(Problem::forbidden(
                "an admin token manages programmes, budgets and offices; it does not submit or change records: use a maker token of the office",
            )
            .with("role", "admin")),
        }
    }

    /// An admin caller, or 403 (problem type `not-an-admin`).
    pub fn admin(&self) -> Result<(), Problem> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "not-an-admin",
                "Not allowed",
                format!(
                    "programmes and budgets are managed with an admin token; this is a {} token",
                    self.0.role
                ),
            )
            .with("role", self.0.role.as_str())
            .with(
                "fix",
                "make one with `salur office token CODE --role admin --person NAME`",
            ))
        }
    }

    /// Who is calling, for the audit trail.
    pub fn actor(&self) -> Actor {
        self.0.actor()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("no Authorization header"))?;
        let value = value
            .to_str()
            .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        match office::authenticate(&state.pool, token).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(Problem::unauthorized("the token is unknown or revoked")),
        }
    }
}
