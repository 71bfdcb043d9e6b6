//! `salur dlq discard`: close a parked record for good (`rejected`, DISCARDED, the why in the
//! audit).

use super::reconcile::{Reconciled, reconcile_quietly};
use super::{RemediateError, Scope, stopped_at};
use crate::config::Settings;
use crate::domain::{Actor, Reason, ReasonCode};
use crate::messages::Stage;
use crate::store::end;
use crate::store::{Change, State, parked, records};
use serde::Serialize;
use sqlx::PgPool;

/// What a discard did.
#[derive(Debug, Clone, Serialize)]
pub struct Discarded {
    pub id: i64,
    pub was: String,
    pub queues: Option<Reconciled>,
}

/// Closes a parked record for good: `rejected` with DISCARDED; the why is kept in the audit row.
/// A NIK claimed for the programme and period stays claimed (a transfer that went dead may have
/// been paid; the bank's ledger decides, not a second record).
pub async fn discard(
    settings: &Settings,
    pool: &PgPool,
    scope: &Scope,
    actor: &Actor,
    id: i64,
    why: &str,
) -> Result<Discarded, RemediateError> {
    let why = why.trim();
    if why.is_empty() {
        return Err(RemediateError::NoReason);
    }
    let mut tx = pool.begin().await?;
    let result = async {
        let row = records::lock_scoped(&mut tx, &[id], scope.office())
            .await?
            .into_iter()
            .next()
            .ok_or(RemediateError::NotFound(id))?;
        let from = State::parse(&row.state).expect("known state");
        if !matches!(from, State::Blocked | State::Dead) {
            return Err(RemediateError::NotParked {
                id,
                state: row.state,
            });
        }
        if from == State::Dead {
            let parked_from = parked::dead_from(&mut tx, id).await?;
            if stopped_at(parked_from.as_deref()) == Stage::Transfer {
                return Err(RemediateError::TransferMayBePaid(id));
            }
        }
        let reasons = vec![Reason::new(
            ReasonCode::Discarded,
            "record",
            "closed for good by an operator; the audit trail says why",
        )];
        let change = Change::to(id, State::Rejected)
            .with_reasons(reasons)
            .with_detail(serde_json::json!({"action": "discard", "why": why}));
        records::apply_as(&mut tx, from, &[change], Some(actor)).await?;
        Ok(from)
    }
    .await;
    let from = end(tx, result).await?;
    Ok(Discarded {
        id,
        was: from.as_str().to_owned(),
        queues: reconcile_quietly(settings, pool).await,
    })
}
