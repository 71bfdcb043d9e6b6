//! What the database says about the pipeline as a whole, for the gauges of
//! [`crate::metrics`]: parked records by reason, records of batches in flight, the outbox. One
//! set-based query per family, none of which reads the records of a batch: parked records
//! come from `stopped_records`, batches in flight from their counters (`batch_totals`,
//! `migrations/0013_counters.sql`).

use crate::store::State;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// One reading. States and reason codes are the database's strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// `(state, reason code) -> records`, for states blocked and dead. A record with no reason
    /// counts under `UNSPECIFIED`.
    pub parked: BTreeMap<(String, String), i64>,
    /// `state -> seconds` since the oldest record in that state got there (blocked, dead).
    pub parked_oldest_age_seconds: BTreeMap<String, f64>,
    /// `state -> records`, summed over batches with at least one record in flight.
    pub in_flight: BTreeMap<String, i64>,
    pub batches_in_flight: i64,
    /// Programmes of the batches in flight.
    pub programs: std::collections::BTreeSet<String>,
    /// The longest any batch in flight has gone without a record changing state.
    pub batch_max_idle_seconds: f64,
    pub outbox_backlog: i64,
    pub outbox_oldest_age_seconds: f64,
    /// Records waiting for a checker's approval.
    pub awaiting_approval: i64,
    /// `decision -> payment lists decided` (`approved`, `rejected`).
    pub approvals: BTreeMap<String, i64>,
    /// `program -> (budget remaining in IDR, largest share of a period's budget used)`, for
    /// the programmes with a budget ([`crate::store::budgets::remaining_by_program`]).
    pub budgets: BTreeMap<String, (f64, f64)>,
}

fn in_flight_states() -> Vec<&'static str> {
    State::ALL
        .into_iter()
        .filter(|s| s.in_flight())
        .map(State::as_str)
        .collect()
}

/// Reads every gauge (seven queries, no transaction needed: each is consistent on its own).
pub async fn read(pool: &PgPool) -> sqlx::Result<Gauges> {
    let mut g = Gauges::default();

    let parked: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT r.state, COALESCE(reason->>'code', 'UNSPECIFIED'), count(DISTINCT r.id)
         FROM stopped_records p JOIN records r ON r.id = p.record_id
         LEFT JOIN LATERAL jsonb_array_elements(r.reasons) reason ON true
         WHERE p.state IN ('blocked', 'dead')
         GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    g.parked = parked
        .into_iter()
        .map(|(state, code, n)| ((state, code), n))
        .collect();

    let oldest: Vec<(String, f64)> = sqlx::query_as(
        "SELECT r.state, EXTRACT(EPOCH FROM now() - min(r.updated_at))::float8
         FROM stopped_records p JOIN records r ON r.id = p.record_id
         WHERE p.state IN ('blocked', 'dead')
         GROUP BY r.state",
    )
    .fetch_all(pool)
    .await?;
    g.parked_oldest_age_seconds = oldest.into_iter().collect();

    // Per batch in flight and state: records, and how long since the last change (the
    // batches' counters, not their records).
    let batches: Vec<(uuid::Uuid, String, String, i64, f64)> = sqlx::query_as(
        "SELECT t.batch_id, b.program, t.state, sum(t.records)::bigint,
                EXTRACT(EPOCH FROM now() - max(t.last_change))::float8
         FROM batch_totals t JOIN batches b ON b.id = t.batch_id
         WHERE t.batch_id IN (SELECT batch_id FROM batch_totals
                              WHERE state = ANY($1) AND records > 0)
         GROUP BY t.batch_id, b.program, t.state
         HAVING sum(t.records) > 0",
    )
    .bind(in_flight_states())
    .fetch_all(pool)
    .await?;
    let mut idle: BTreeMap<uuid::Uuid, f64> = BTreeMap::new();
    for (batch_id, program, state, n, since_last) in batches {
        g.programs.insert(program);
        *g.in_flight.entry(state).or_default() += n;
        let e = idle.entry(batch_id).or_insert(f64::INFINITY);
        *e = e.min(since_last.max(0.0));
    }
    g.batches_in_flight = idle.len() as i64;
    g.batch_max_idle_seconds = idle.values().copied().fold(0.0, f64::max);

    let (backlog, oldest): (i64, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox),
                (SELECT EXTRACT(EPOCH FROM now() - created_at)::float8
                 FROM outbox ORDER BY id LIMIT 1)",
    )
    .fetch_one(pool)
    .await?;
    g.outbox_backlog = backlog;
    g.outbox_oldest_age_seconds = oldest.unwrap_or(0.0).max(0.0);

    g.awaiting_approval = sqlx::query_scalar(
        "SELECT coalesce(sum(records), 0)::bigint FROM batch_totals
             WHERE state = 'awaiting_approval'",
    )
    .fetch_one(pool)
    .await?;
    let decided: Vec<(String, i64)> =
        sqlx::query_as("SELECT decision, count(*) FROM approvals GROUP BY decision")
            .fetch_all(pool)
            .await?;
    g.approvals = decided.into_iter().collect();
    use rust_decimal::prelude::ToPrimitive as _;
    g.budgets = crate::store::budgets::remaining_by_program(&mut *pool.acquire().await?)
        .await?
        .into_iter()
        .map(|(program, remaining, ratio)| (program, (remaining.to_f64().unwrap_or(0.0), ratio)))
        .collect();
    Ok(g)
}
