//! `salur budget set | show`: the budget ceiling (pagu) of a programme per period and office,
//! and what it has used (the definition is [`crate::store::budgets`]'s).

use crate::domain::{Amount, rupiah};
use crate::store::budgets::{self, Usage};
use crate::store::{offices, programmes};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("no programme {0}: see `salur programme list`, or add it with `salur programme add`")]
    UnknownProgramme(String),
    #[error("no office {0}: see `salur office list`")]
    UnknownOffice(String),
    #[error(
        "period {0:?} is not valid: use letters, digits, '-', '_' or '.', at most 32 characters (e.g. 2026-Q4)"
    )]
    InvalidPeriod(String),
    #[error(
        "the budget amount {0:?} is not valid: write rupiah like 1500000000 or Rp1.500.000.000 (0 to stop payments)"
    )]
    InvalidAmount(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn valid_period(period: &str) -> bool {
    !period.is_empty()
        && period.len() <= 32
        && period
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A budget amount: as offices write amounts, or zero.
pub fn parse_amount(text: &str) -> Result<Decimal, BudgetError> {
    let t = text.trim();
    if t.chars().all(|c| c == '0' || c == '.' || c == ',') && t.contains('0') {
        return Ok(Decimal::ZERO);
    }
    Amount::parse(t)
        .map(|a| a.value())
        .map_err(|_| BudgetError::InvalidAmount(text.to_owned()))
}

/// Sets (or replaces) the budget of `office` for a programme and period; returns the office's
/// figures afterwards.
pub async fn set(
    pool: &PgPool,
    program: &str,
    period: &str,
    office: &str,
    amount: Decimal,
) -> Result<BudgetLine, BudgetError> {
    if !valid_period(period) {
        return Err(BudgetError::InvalidPeriod(period.to_owned()));
    }
    let mut tx = pool.begin().await?;
    if programmes::get(&mut tx, program).await?.is_none() {
        return Err(BudgetError::UnknownProgramme(program.to_owned()));
    }
    if !offices::exists(&mut tx, office).await? {
        return Err(BudgetError::UnknownOffice(office.to_owned()));
    }
    budgets::set(&mut tx, program, period, office, amount).await?;
    let usage = budgets::usage_of(&mut tx, program, period, office).await?;
    tx.commit().await?;
    Ok(BudgetLine::from(usage))
}

/// One office's figures (or the total's, office `total`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetLine {
    pub office: String,
    /// `None`: no budget set.
    pub allocated: Option<Decimal>,
    pub approved_not_paid: Decimal,
    pub disbursed: Decimal,
    pub released: Decimal,
    /// Allocated minus approved-not-paid minus disbursed (`None` without a budget).
    pub remaining: Option<Decimal>,
}

impl From<Usage> for BudgetLine {
    fn from(u: Usage) -> Self {
        Self {
            remaining: u.remaining(),
            office: u.office,
            allocated: u.allocated,
            approved_not_paid: u.approved_not_paid,
            disbursed: u.disbursed,
            released: u.released,
        }
    }
}

/// `salur budget show PROGRAM PERIOD`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetShow {
    pub program: String,
    pub period: String,
    pub offices: Vec<BudgetLine>,
    /// Over the offices (allocated and remaining over those with a budget).
    pub total: BudgetLine,
}

/// Every office with a budget or a batch for the programme and period, and the total.
pub async fn show(pool: &PgPool, program: &str, period: &str) -> Result<BudgetShow, BudgetError> {
    let mut conn = pool.acquire().await?;
    if programmes::get(&mut conn, program).await?.is_none() {
        return Err(BudgetError::UnknownProgramme(program.to_owned()));
    }
    let usage = budgets::usage(&mut conn, program, period).await?;
    let mut total = BudgetLine {
        office: "total".into(),
        allocated: None,
        approved_not_paid: Decimal::ZERO,
        disbursed: Decimal::ZERO,
        released: Decimal::ZERO,
        remaining: None,
    };
    for u in &usage {
        total.approved_not_paid += u.approved_not_paid;
        total.disbursed += u.disbursed;
        total.released += u.released;
        if let Some(a) = u.allocated {
            *total.allocated.get_or_insert(Decimal::ZERO) += a;
            *total.remaining.get_or_insert(Decimal::ZERO) += u.remaining().unwrap_or_default();
        }
    }
    Ok(BudgetShow {
        program: program.to_owned(),
        period: period.to_owned(),
        offices: usage.into_iter().map(BudgetLine::from).collect(),
        total,
    })
}

fn money(v: Option<Decimal>) -> String {
    v.map_or_else(|| "no budget".to_owned(), rupiah)
}

impl fmt::Display for BudgetLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} {:>20} {:>20} {:>20} {:>20} {:>20}",
            self.office,
            money(self.allocated),
            rupiah(self.approved_not_paid),
            rupiah(self.disbursed),
            rupiah(self.released),
            money(self.remaining),
        )
    }
}

impl fmt::Display for BudgetShow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "budget of {} for {}", self.program, self.period)?;
        writeln!(
            f,
            "{:<24} {:>20} {:>20} {:>20} {:>20} {:>20}",
            "office", "allocated", "approved, not paid", "disbursed", "released", "remaining"
        )?;
        for line in &self.offices {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "{}", self.total)
    }
}
