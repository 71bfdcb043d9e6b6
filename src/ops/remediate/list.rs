//! `salur dlq list`: what is parked, why, since when.

use super::{RemediateError, Scope, reasons_of, stopped_at};
use crate::domain::Reason;
use crate::messages::Stage;
use crate::store::parked::{self, Filter};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One parked record in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedView {
    pub id: i64,
    pub batch_id: Uuid,
    pub row: i32,
    /// `blocked` (salur.blocked) or `dead` (salur.dead).
    pub state: String,
    pub stage: Stage,
    pub reasons: Vec<Reason>,
    pub attempts: i32,
    pub since: DateTime<Utc>,
}

/// What is parked and why.
#[derive(Debug, Clone, Serialize)]
pub struct DlqList {
    /// Parked records per state (`blocked`, `dead`) matching the filter.
    pub totals: BTreeMap<String, i64>,
    /// Records per state and reason code (a record with two reasons counts under both).
    pub by_reason: BTreeMap<String, BTreeMap<String, i64>>,
    /// The oldest parked record's age in seconds, per state.
    pub oldest_seconds: BTreeMap<String, i64>,
    /// The records, oldest first (at most the limit asked for).
    pub records: Vec<ParkedView>,
}

/// What is parked in `scope` and matches `filter`: totals, counts per reason, and the oldest
/// `limit` records.
pub async fn dlq_list(
    pool: &PgPool,
    scope: &Scope,
    filter: &Filter,
    limit: i64,
) -> Result<DlqList, RemediateError> {
    let mut conn = pool.acquire().await?;
    let counts = parked::count_by_reason(&mut conn, scope.office(), filter).await?;
    let totals_rows = parked::totals(&mut conn, scope.office(), filter).await?;
    let mut by_reason: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (state, code, n) in counts {
        by_reason.entry(state).or_default().insert(code, n);
    }
    let records = parked::find(&mut conn, scope.office(), filter, Some(limit))
        .await?
        .into_iter()
        .map(|p| ParkedView {
            id: p.id,
            batch_id: p.batch_id,
            row: p.row_number,
            stage: stopped_at(p.parked_from.as_deref()),
            state: p.state,
            reasons: reasons_of(p.reasons),
            attempts: p.attempts,
            since: p.updated_at,
        })
        .collect();
    Ok(DlqList {
        totals: totals_rows
            .iter()
            .map(|(s, n, _)| (s.clone(), *n))
            .collect(),
        oldest_seconds: totals_rows
            .iter()
            .map(|(s, _, a)| (s.clone(), *a))
            .collect(),
        by_reason,
        records,
    })
}
