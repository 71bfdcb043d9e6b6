//! Budget ceilings (pagu) per programme, period and office, and what each has used: the one
//! definition of a budget's usage, shown by `salur budget show` and checked at approval.
//!
//! - **approved, not yet paid**: records approved for payment (or, for a programme that needs
//!   no approval, verified) that are still on their way to the bank: states `verified` and
//!   `transfer_requested`.
//! - **disbursed**: records paid.
//! - **released**: approved records that will not be paid after all: the transfer failed for
//!   good, the record was discarded, or went dead (a dead transfer is replayed, and then counts
//!   again). A record stops counting against the budget by leaving the in-flight states.
//! - **remaining** = allocated − approved-not-paid − disbursed.

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;

/// Sets (or replaces) the allocation of `office` for a programme and period.
pub async fn set(
    conn: &mut PgConnection,
    program: &str,
    period: &str,
    office: &str,
    amount: Decimal,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO budgets (program, period, office, amount) VALUES ($1, $2, $3, $4)
         ON CONFLICT (program, period, office)
         DO UPDATE SET amount = EXCLUDED.amount, updated_at = now()",
    )
    .bind(program)
    .bind(period)
    .bind(office)
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(())
}

/// The allocation of `office`, its row locked until the caller's transaction ends, so that
/// two approvals against one budget are decided one after the other. `None`: no budget set.
pub async fn lock(
    conn: &mut PgConnection,
    program: &str,
    period: &str,
    office: &str,
) -> sqlx::Result<Option<Decimal>> {
    sqlx::query_scalar(
        "SELECT amount FROM budgets WHERE program = $1 AND period = $2 AND office = $3
         FOR UPDATE",
    )
    .bind(program)
    .bind(period)
    .bind(office)
    .fetch_optional(conn)
    .await
}

/// One office's budget for a programme and period, and what it has used.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Usage {
    pub office: String,
    /// `None`: no budget set for this office.
    pub allocated: Option<Decimal>,
    pub approved_not_paid: Decimal,
    pub disbursed: Decimal,
    pub released: Decimal,
}

impl Usage {
    /// What the budget has used: approved and not yet paid, plus disbursed.
    pub fn used(&self) -> Decimal {
        self.approved_not_paid + self.disbursed
    }

    /// Allocated minus used (`None` without a budget); negative when over.
    pub fn remaining(&self) -> Option<Decimal> {
        self.allocated.map(|a| a - self.used())
    }
}

const USAGE: &str = "
    WITH used AS (
        SELECT b.office,
            coalesce(sum(r.amount) FILTER (
                WHERE r.state IN ('verified', 'transfer_requested')
                  AND (r.approved OR NOT coalesce(p.approval_required, false))
            ), 0) AS approved_not_paid,
            coalesce(sum(r.amount) FILTER (WHERE r.state = 'disbursed'), 0) AS disbursed,
            coalesce(sum(r.amount) FILTER (
                WHERE (r.approved AND r.state IN ('failed', 'rejected', 'dead'))
                   OR (r.state = 'failed' AND NOT coalesce(p.approval_required, false))
            ), 0) AS released
        FROM batches b
        JOIN batch_counts r ON r.batch_id = b.id
        LEFT JOIN programmes p ON p.code = b.program
        WHERE b.program = $1 AND b.period = $2 AND ($3::text IS NULL OR b.office = $3)
        GROUP BY b.office
    ), allocated AS (
        SELECT office, amount FROM budgets
        WHERE program = $1 AND period = $2 AND ($3::text IS NULL OR office = $3)
    )
    SELECT coalesce(a.office, u.office) AS office,
           a.amount AS allocated,
           coalesce(u.approved_not_paid, 0) AS approved_not_paid,
           coalesce(u.disbursed, 0) AS disbursed,
           coalesce(u.released, 0) AS released
    FROM allocated a FULL JOIN used u ON u.office = a.office
    ORDER BY 1";

/// Every office with a budget or a batch for the programme and period.
pub async fn usage(
    conn: &mut PgConnection,
    program: &str,
    period: &str,
) -> sqlx::Result<Vec<Usage>> {
    sqlx::query_as(USAGE)
        .bind(program)
        .bind(period)
        .bind(None::<&str>)
        .fetch_all(conn)
        .await
}

/// One office's (all zero when it has neither a budget nor a batch). Call it after
/// [`lock`] in the same transaction to decide on a figure no one else can change meanwhile.
pub async fn usage_of(
    conn: &mut PgConnection,
    program: &str,
    period: &str,
    office: &str,
) -> sqlx::Result<Usage> {
    let found: Option<Usage> = sqlx::query_as(USAGE)
        .bind(program)
        .bind(period)
        .bind(office)
        .fetch_optional(conn)
        .await?;
    Ok(found.unwrap_or(Usage {
        office: office.to_owned(),
        allocated: None,
        approved_not_paid: Decimal::ZERO,
        disbursed: Decimal::ZERO,
        released: Decimal::ZERO,
    }))
}

/// Per programme with a budget: the remaining budget (allocated − used, over every period and
/// office with one) and the largest share of its budget any one period has used (over its
/// offices together), for the gauges.
pub async fn remaining_by_program(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(String, Decimal, f64)>> {
    sqlx::query_as(
        "WITH periods AS (
             SELECT g.program, g.period, sum(g.amount) AS allocated,
                 (SELECT coalesce(sum(r.amount), 0)
                  FROM batches b JOIN batch_counts r ON r.batch_id = b.id
                  LEFT JOIN programmes p ON p.code = b.program
                  WHERE b.program = g.program AND b.period = g.period
                    AND b.office IN (SELECT office FROM budgets x
                                     WHERE x.program = g.program AND x.period = g.period)
                    AND (r.state = 'disbursed'
                         OR (r.state IN ('verified', 'transfer_requested')
                             AND (r.approved
                                  OR NOT coalesce(p.approval_required, false))))
                 ) AS used
             FROM budgets g GROUP BY g.program, g.period
         )
         SELECT program, sum(allocated - used) AS remaining,
                max(CASE WHEN allocated > 0 THEN (used / allocated)::float8
                         WHEN used > 0 THEN 1e9 ELSE 0 END) AS used_ratio
         FROM periods GROUP BY program ORDER BY program",
    )
    .fetch_all(conn)
    .await
}
