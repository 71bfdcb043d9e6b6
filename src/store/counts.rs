//! A batch's counters: records and rupiah per state and approval, kept by the records table's
//! trigger as deltas (`batch_counts`, `migrations/0013_counters.sql`) and read through the view
//! `batch_totals`, so that nothing that reports on a batch reads its records. This module folds
//! the deltas and checks them against the records (what the tests and `salur batch verify`
//! rely on instead of per-row foreign keys and scans).

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Batches with more delta rows than this are folded by [`compact`].
const FOLD_ABOVE: i64 = 64;

/// Folds the counters of every batch with more than a few delta rows into one row per state
/// and approval (the latest change kept); returns how many batches were folded. Safe beside
/// the steps appending deltas: a delta committed after the fold's snapshot is not deleted, and
/// two folds of one batch each re-insert only what they deleted.
pub async fn compact(pool: &PgPool) -> sqlx::Result<u64> {
    let folded: Vec<Uuid> = sqlx::query_scalar(
        "WITH busy AS (
             SELECT batch_id FROM batch_counts GROUP BY batch_id HAVING count(*) > $1
         ), gone AS (
             DELETE FROM batch_counts c USING busy WHERE c.batch_id = busy.batch_id
             RETURNING c.*
         ), folded AS (
             INSERT INTO batch_counts (batch_id, state, approved, records, amount, last_change)
             SELECT batch_id, state, approved, sum(records), sum(amount), max(last_change)
             FROM gone GROUP BY 1, 2, 3
             RETURNING batch_id
         )
         SELECT DISTINCT batch_id FROM folded",
    )
    .bind(FOLD_ABOVE)
    .fetch_all(pool)
    .await?;
    Ok(folded.len() as u64)
}

/// Where a batch's counters and its records disagree: `(state, approved, counted records,
/// counted amount, records found, amount found)`, empty when they agree.
pub type Mismatch = (String, bool, i64, Decimal, i64, Decimal);

/// Compares the counters of `batch` with a scan of its records (the one place that scans).
pub async fn verify(conn: &mut PgConnection, batch: Uuid) -> sqlx::Result<Vec<Mismatch>> {
    sqlx::query_as(
        "WITH counted AS (
             SELECT state, approved, sum(records)::bigint AS n, coalesce(sum(amount), 0) AS a
             FROM batch_counts WHERE batch_id = $1 GROUP BY 1, 2
         ), found AS (
             SELECT state, approval_id IS NOT NULL AS approved, count(*) AS n,
                    coalesce(sum(amount), 0) AS a
             FROM records WHERE batch_id = $1 GROUP BY 1, 2
         )
         SELECT coalesce(c.state, f.state), coalesce(c.approved, f.approved),
                coalesce(c.n, 0), coalesce(c.a, 0), coalesce(f.n, 0), coalesce(f.a, 0)
         FROM counted c FULL JOIN found f ON f.state = c.state AND f.approved = c.approved
         WHERE coalesce(c.n, 0) <> coalesce(f.n, 0) OR coalesce(c.a, 0) <> coalesce(f.a, 0)
         ORDER BY 1, 2",
    )
    .bind(batch)
    .fetch_all(conn)
    .await
}

/// What the per-row foreign keys and scans used to guarantee, checked over the whole database
/// (for the tests and the fault campaign; it reads every record): each problem as a sentence,
/// none when all holds. Every batch's counters equal its records by state, approval and amount;
/// the stopped records are exactly the records in a stopped state; every record has its office
/// data and belongs to a batch; every audit row and claim names a record; every record's last audit row ends in its
/// state.
pub async fn integrity(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    let mut problems = Vec::new();
    let batches: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM batches UNION SELECT DISTINCT batch_id FROM records ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for b in batches {
        for (state, approved, n, a, found_n, found_a) in verify(conn, b).await? {
            problems.push(format!(
                "batch {b}: counters say {n} records (Rp {a}) {state}{} but {found_n} (Rp {found_a}) are",
                if approved { " approved" } else { "" }
            ));
        }
    }
    let checks: [(&str, &str); 8] = [
        (
            "records without their office data, or office data of no record",
            "SELECT count(*) FROM records r FULL JOIN record_data d ON d.id = r.id
             WHERE r.id IS NULL OR d.id IS NULL",
        ),
        (
            "records of no batch",
            "SELECT count(*) FROM records r WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = r.batch_id)",
        ),
        (
            "stopped records missing from stopped_records, or in another state there",
            "SELECT count(*) FROM records r FULL JOIN stopped_records p ON p.record_id = r.id
             WHERE (r.state IN ('blocked', 'dead', 'rejected', 'failed') OR p.record_id IS NOT NULL)
               AND (p.record_id IS NULL OR r.id IS NULL OR p.state <> r.state
                    OR p.batch_id <> r.batch_id)",
        ),
        (
            "records approved by no approval",
            "SELECT count(*) FROM records r WHERE r.approval_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.id = r.approval_id)",
        ),
        (
            "audit rows naming no record",
            "SELECT count(*) FROM (SELECT unnest(record_ids) AS id FROM audit_chunks) a
             WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = a.id)",
        ),
        (
            "claims naming no record",
            "SELECT count(*) FROM recipient_claims c
             WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = c.record_id)",
        ),
        (
            "records whose last audit row does not end in their state",
            "SELECT count(*) FROM records r
             LEFT JOIN LATERAL (SELECT e.to_state FROM record_events_of(r.id) e
                                ORDER BY e.id DESC LIMIT 1) last ON true
             WHERE last.to_state IS DISTINCT FROM r.state",
        ),
        (
            "audit rows whose state does not follow the record's previous one",
            "SELECT count(*) FROM (
                 SELECT from_state, lag(to_state) OVER (PARTITION BY record_id ORDER BY id) AS prev
                 FROM record_events) e
             WHERE e.prev IS NOT NULL AND e.from_state IS DISTINCT FROM e.prev",
        ),
    ];
    for (what, sql) in checks {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
        if n > 0 {
            problems.push(format!("{n} {what}"));
        }
    }
    Ok(problems)
}
