//! The transactional outbox: messages written with the state change that caused them.

use crate::broker::Outgoing;
use sqlx::PgConnection;

/// Queues messages for the relay, in the caller's transaction.
pub async fn insert(conn: &mut PgConnection, messages: &[Outgoing]) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let (mut ex, mut rk, mut body) = (
        Vec::with_capacity(messages.len()),
        Vec::with_capacity(messages.len()),
        Vec::with_capacity(messages.len()),
    );
    for m in messages {
        ex.push(m.exchange.as_str());
        rk.push(m.routing_key.as_str());
        body.push(m.payload.as_slice());
    }
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])",
    )
    .bind(&ex)
    .bind(&rk)
    .bind(&body)
    .execute(conn)
    .await?;
    Ok(())
}

/// The oldest unpublished messages, locked so that other relays skip them.
pub async fn take(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<(i64, Outgoing)>> {
    let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT id, exchange, routing_key, payload FROM outbox
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, exchange, routing_key, payload)| {
            (
                id,
                Outgoing {
                    exchange,
                    routing_key,
                    payload,
                },
            )
        })
        .collect())
}

pub async fn delete(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Messages waiting to be published.
pub async fn backlog(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(conn)
        .await
}

/// Wakes the relays of other processes, after a commit that wrote to the outbox. Sent outside
/// the writing transaction on purpose: a NOTIFY inside it would serialise commits.
pub async fn notify(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify('salur_outbox', '')")
        .execute(conn)
        .await?;
    Ok(())
}
