//! `salur records show`: a record with its personal data masked, its state, reasons and audit
//! history.

use super::{RemediateError, Scope, reasons_of};
use crate::domain::{Actor, RawRecord, Reason};
use crate::store::{events, records};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A record as an office may see it: personal data masked.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub id: i64,
    pub batch_id: Uuid,
    pub office: String,
    pub program: String,
    pub period: String,
    pub row: i32,
    pub state: String,
    pub reasons: Vec<Reason>,
    /// Tries in the current stage that failed for a while.
    pub attempts: i32,
    pub updated_at: DateTime<Utc>,
    /// The office's values, masked (NIK `5301********0001`, names `M**** B***`, dates `****-**-**`).
    pub fields: BTreeMap<&'static str, Option<String>>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    pub bank_reference: Option<String>,
    /// Every state change, oldest first.
    pub history: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: String,
    pub reasons: Vec<Reason>,
    pub detail: Option<serde_json::Value>,
    /// The person who caused the change and their token (`None`: the system).
    pub by: Option<Actor>,
}

/// The office's values of a record, masked for display ([`RawRecord::masked`]).
pub fn masked_fields(raw: &RawRecord) -> BTreeMap<&'static str, Option<String>> {
    raw.masked()
        .fields()
        .map(|(key, value)| (key, value.clone()))
        .collect()
}

/// A record with its audit history.
pub async fn show(pool: &PgPool, scope: &Scope, id: i64) -> Result<RecordView, RemediateError> {
    let mut conn = pool.acquire().await?;
    let head = events::head(&mut conn, id, scope.office())
        .await?
        .ok_or(RemediateError::NotFound(id))?;
    let row = records::read_scoped(&mut conn, &[id], None)
        .await?
        .into_iter()
        .next()
        .ok_or(RemediateError::NotFound(id))?;
    let history = events::history(&mut conn, id).await?;
    Ok(RecordView {
        id,
        batch_id: row.batch_id,
        office: head.office,
        program: row.program.clone(),
        period: row.period.clone(),
        row: row.row_number,
        state: row.state.clone(),
        reasons: reasons_of(head.reasons),
        attempts: row.attempts,
        updated_at: head.updated_at,
        fields: crate::store::personal::with_kept_masks(
            masked_fields(&row.raw),
            head.masked.as_ref(),
        ),
        amount: row.amount,
        bank_reference: row.bank_reference.clone(),
        history: history
            .into_iter()
            .map(|e| EventView {
                at: e.at,
                from: e.from_state,
                to: e.to_state,
                reasons: reasons_of(e.reasons),
                detail: e.detail,
                by: e.actor_token.map(|token| Actor::new(e.actor_person, token)),
            })
            .collect(),
    })
}
