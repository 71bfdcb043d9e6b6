//! Bearer tokens: every `/v1` call names its office (or auditor) with
//! `Authorization: Bearer <token>`.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::{AppState, Problem};
use crate::ops::office::{self, Principal, Role};

/// The caller, known by its token. Extracting it answers 401 for a missing, malformed, unknown
/// or revoked token.
pub struct Caller(pub Principal);

impl Caller {
    /// The office whose batches this caller may see: its own, or every office's for an auditor.
    pub fn scope(&self) -> Option<&str> {
        match self.0.role {
            Role::Office => Some(&self.0.code),
            Role::Auditor => None,
        }
    }

    /// The office code of a caller allowed to change things (an auditor is not).
    pub fn office_for_change(&self) -> Result<&str, Problem> {
        match self.0.role {
            Role::Office => Ok(&self.0.code),
            Role::Auditor => Err(Problem::forbidden(
                "an auditor token reads every office's batches but changes nothing: use the office's own token",
            )),
        }
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
