//! bank-sim's statements: the programme source account's day at one bank, from its ledger
//! (`bank_sim.transfers`), with returns ([`StatementOptions::return_rate`]) kept in
//! `bank_sim.returns` so that a day's statement reads the same every time it is asked for.
//!
//! Days are Western Indonesia Time (WIB, UTC+7) days, as Indonesian banks cut them; salur reads
//! the statement's date the same way ([`DAY_ZONE`]).

use super::statement::{self, Direction, Line, ReturnReason, Statement};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;

/// The time zone whose days statements cover.
pub const DAY_ZONE: &str = "Asia/Jakarta";

/// What the source account held before its first transfer (Rp100.000.000.000).
pub const FUNDING: i64 = 100_000_000_000;

#[derive(Debug, Clone)]
pub struct StatementOptions {
    pub bank: String,
    pub date: NaiveDate,
    /// Share of the transfers paid before (or on) the day, not returned yet, that come back on
    /// this day. Decided once per transfer (seeded by its key and `seed`).
    pub return_rate: f64,
    /// Only transfers paid at least this many days before the statement's day come back.
    pub return_after_days: u32,
    pub seed: u64,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS bank_sim.returns (
    idempotency_key text PRIMARY KEY,
    bank_code       text NOT NULL,
    amount          numeric(18, 2) NOT NULL,
    reason          text NOT NULL,
    returned_on     date NOT NULL
)";

/// A transfer as the statement lists it: `(key, amount, reference, settled day, item id)`.
type Paid = (String, Decimal, Option<String>, NaiveDate, String);

/// The statement of `opts.bank`'s source account for `opts.date`; first decides the day's
/// returns (see [`StatementOptions::return_rate`]).
pub async fn statement(pool: &PgPool, opts: &StatementOptions) -> anyhow::Result<Statement> {
    super::sim::ensure_schema(pool).await?;
    sqlx::query(SCHEMA).execute(pool).await?;
    let day = |column: &str| format!("({column} AT TIME ZONE '{DAY_ZONE}')::date");
    decide_returns(pool, opts).await?;
    let (paid_before, returned_before): (Option<Decimal>, Option<Decimal>) =
        sqlx::query_as(&format!(
            "SELECT (SELECT sum(amount) FROM bank_sim.transfers
                     WHERE bank_code = $1 AND status = 'ok' AND {} < $2),
                    (SELECT sum(amount) FROM bank_sim.returns
                     WHERE bank_code = $1 AND returned_on < $2)",
            day("settled_at")
        ))
        .bind(&opts.bank)
        .bind(opts.date)
        .fetch_one(pool)
        .await?;
    let debits: Vec<Paid> = sqlx::query_as(&format!(
        "SELECT idempotency_key, amount, reference, {d}, item_id FROM bank_sim.transfers
         WHERE bank_code = $1 AND status = 'ok' AND {d} = $2
         ORDER BY settled_at, idempotency_key",
        d = day("settled_at")
    ))
    .bind(&opts.bank)
    .bind(opts.date)
    .fetch_all(pool)
    .await?;
    let credits: Vec<(String, Decimal, Option<String>, String, String)> = sqlx::query_as(
        "SELECT r.idempotency_key, r.amount, t.reference, r.reason, t.item_id
         FROM bank_sim.returns r JOIN bank_sim.transfers t USING (idempotency_key)
         WHERE r.bank_code = $1 AND r.returned_on = $2
         ORDER BY r.idempotency_key",
    )
    .bind(&opts.bank)
    .bind(opts.date)
    .fetch_all(pool)
    .await?;
    let mut lines = Vec::with_capacity(debits.len() + credits.len());
    for (key, amount, reference, settled, item) in debits {
        lines.push(Line {
            value_date: settled,
            direction: Direction::Debit,
            amount,
            end_to_end: key,
            bank_reference: reference.unwrap_or_default(),
            return_reason: None,
            description: format!("SALUR ITEM {item}"),
            file_line: 0,
        });
    }
    for (key, amount, reference, reason, item) in credits {
        lines.push(Line {
            value_date: opts.date,
            direction: Direction::Credit,
            amount,
            end_to_end: key,
            bank_reference: reference.unwrap_or_default(),
            return_reason: ReturnReason::from_code(&reason),
            description: format!("SALUR RETURN ITEM {item}"),
            file_line: 0,
        });
    }
    let opening = Decimal::from(FUNDING) - paid_before.unwrap_or_default()
        + returned_before.unwrap_or_default();
    let number = opts
        .date
        .signed_duration_since(NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date"))
        .num_days()
        .rem_euclid(100_000);
    let mut s = Statement {
        reference: statement::reference_of(&opts.bank, opts.date),
        account: statement::account_of(&opts.bank),
        number: format!("{number:05}/001"),
        date: opts.date,
        currency: "IDR".into(),
        opening,
        lines,
        closing: Decimal::ZERO,
        format: statement::Format::Mt940,
        closing_line: 0,
    };
    s.recompute_closing();
    Ok(s)
}

/// A transfer bank-sim returned: `(key, amount, reason code, bank reference)`.
pub type Returned = (String, Decimal, String, Option<String>);

/// Decides the returns of `opts.date` (see [`StatementOptions::return_rate`]) and stores them;
/// the ones decided now.
pub async fn decide_returns(
    pool: &PgPool,
    opts: &StatementOptions,
) -> anyhow::Result<Vec<Returned>> {
    super::sim::ensure_schema(pool).await?;
    sqlx::query(SCHEMA).execute(pool).await?;
    if opts.return_rate <= 0.0 {
        return Ok(Vec::new());
    }
    let day = |column: &str| format!("({column} AT TIME ZONE '{DAY_ZONE}')::date");
    let candidates: Vec<(String, Decimal)> = sqlx::query_as(&format!(
        "SELECT t.idempotency_key, t.amount FROM bank_sim.transfers t
         WHERE t.bank_code = $1 AND t.status = 'ok' AND {} <= $2::date - $3::int
           AND NOT EXISTS (SELECT 1 FROM bank_sim.returns r
                           WHERE r.idempotency_key = t.idempotency_key)
         ORDER BY t.idempotency_key",
        day("t.settled_at")
    ))
    .bind(&opts.bank)
    .bind(opts.date)
    .bind(opts.return_after_days as i32)
    .fetch_all(pool)
    .await?;
    let mut keys = Vec::new();
    let mut amounts = Vec::new();
    let mut reasons = Vec::new();
    for (key, amount) in candidates {
        let roll = roll(opts.seed, &key);
        if roll < opts.return_rate {
            keys.push(key);
            amounts.push(amount);
            let i = ((roll / opts.return_rate) * 3.0) as usize;
            reasons.push(ReturnReason::ALL[i.min(2)].code());
        }
    }
    Ok(sqlx::query_as(
        "WITH new AS (
             INSERT INTO bank_sim.returns (idempotency_key, bank_code, amount, reason, returned_on)
             SELECT u.key, $1, u.amount, u.reason, $5
             FROM UNNEST($2::text[], $3::numeric[], $4::text[]) AS u(key, amount, reason)
             ON CONFLICT DO NOTHING
             RETURNING idempotency_key, amount, reason
         )
         SELECT n.idempotency_key, n.amount, n.reason, t.reference
         FROM new n JOIN bank_sim.transfers t USING (idempotency_key)
         ORDER BY n.idempotency_key",
    )
    .bind(&opts.bank)
    .bind(&keys)
    .bind(&amounts)
    .bind(&reasons)
    .bind(opts.date)
    .fetch_all(pool)
    .await?)
}

/// Decides the returns of `opts.date` and announces them to salur with `transfer_returned`
/// messages (one per 100 items) as the bank's RabbitMQ user (made, or given a new password,
/// through the management API and registered in salur's database, as `salur bank-sim` does);
/// the returns announced. `pool` is bank-sim's ledger ([`super::sim::connect_ledger`]).
pub async fn announce_returns(
    settings: &crate::config::Settings,
    pool: &PgPool,
    opts: &StatementOptions,
) -> anyhow::Result<Vec<Returned>> {
    use crate::bank::contract::{
        Money, ReturnedItem, TRANSFER_RETURNED, TransferReturned, VERSION,
    };
    use crate::broker::{Broker, Outgoing, names};
    let returned = decide_returns(pool, opts).await?;
    if returned.is_empty() {
        return Ok(returned);
    }
    let name = crate::domain::BankCode::parse(&opts.bank)
        .map(|b| b.name())
        .unwrap_or("bank-sim");
    let salur_db = crate::store::connect(settings).await?;
    let creds = super::users::add(
        settings,
        &salur_db,
        &opts.bank,
        &format!("{name} (bank-sim)"),
    )
    .await;
    salur_db.close().await;
    let creds = creds?;
    let broker = Broker::connect(&creds.settings(settings)?).await?;
    let publisher = broker.publisher().await?;
    let messages: Vec<Outgoing> = returned
        .chunks(100)
        .map(|chunk| Outgoing {
            exchange: settings.name(names::BANK_REPLIES),
            routing_key: format!("bank.{}.{TRANSFER_RETURNED}", opts.bank),
            payload: serde_json::to_vec(&TransferReturned {
                v: VERSION,
                kind: TRANSFER_RETURNED.to_owned(),
                bank_code: opts.bank.clone(),
                sent_at: chrono::Utc::now(),
                items: chunk
                    .iter()
                    .map(|(key, amount, reason, reference)| ReturnedItem {
                        idempotency_key: key.clone(),
                        reference: reference.clone(),
                        amount: Money {
                            value: format!("{amount:.2}"),
                            currency: "IDR".into(),
                        },
                        reason_code: reason.clone(),
                        returned_on: opts.date,
                    })
                    .collect(),
            })
            .expect("messages serialize"),
        })
        .collect();
    publisher.publish_all_as(&messages, &creds.user).await?;
    broker.close().await;
    Ok(returned)
}

/// A number in [0, 1) fixed by `seed` and `key`.
fn roll(seed: u64, key: &str) -> f64 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{seed}/{key}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// The days (WIB) on which `bank` paid or returned anything, oldest first: the statements
/// that exist.
pub async fn days(pool: &PgPool, bank: &str) -> anyhow::Result<Vec<NaiveDate>> {
    super::sim::ensure_schema(pool).await?;
    sqlx::query(SCHEMA).execute(pool).await?;
    Ok(sqlx::query_scalar(&format!(
        "SELECT d FROM (
             SELECT (settled_at AT TIME ZONE '{DAY_ZONE}')::date AS d FROM bank_sim.transfers
             WHERE bank_code = $1 AND status = 'ok'
             UNION SELECT returned_on FROM bank_sim.returns WHERE bank_code = $1) s
         ORDER BY d"
    ))
    .bind(bank)
    .fetch_all(pool)
    .await?)
}
