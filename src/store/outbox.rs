//! The transactional outbox: messages written with the state change that caused them.
//!
//! # Personal data
//! A bank request (routing key `bank.<code>.<kind>`) carries NIKs, names, mothers' names and
//! account numbers: its payload is sealed like a record's personal column (AES-256-GCM with the
//! current data key, see [`super::sealed`]), bound to its outbox row, exchange and routing key,
//! so that a payload copied into another row, or re-routed to another bank, does not open. The
//! relay opens it just before publishing ([`open`]). Other messages (stage chunks of record ids,
//! parked records with their reasons) hold no personal value and stay clear JSON, which SQL may
//! read (`remediate` looks for parked messages still on their way).
//!
//! A sealed payload starts with `0x01`; a clear one is JSON (`{`). A key rotation re-seals the
//! outbox too ([`super::personal::reseal_all`]), so that an old key can go once it is done.

use super::sealed::{KeyError, Keyring, bench_clear_text, keyring};
use crate::broker::Outgoing;
use sqlx::PgConnection;

/// Whether a message carries personal data and is sealed in the outbox: bank requests.
pub fn carries_personal_data(routing_key: &str) -> bool {
    routing_key.starts_with("bank.")
}

/// The associated data a payload is sealed with: its row, exchange and routing key.
fn aad(id: i64, exchange: &str, routing_key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + 8 + exchange.len() + routing_key.len() + 1);
    aad.extend_from_slice(b"outbox\0");
    aad.extend_from_slice(&id.to_be_bytes());
    aad.extend_from_slice(exchange.as_bytes());
    aad.push(0);
    aad.extend_from_slice(routing_key.as_bytes());
    aad
}

/// Seals the payload of outbox row `id` with the current key.
pub fn seal(ring: &Keyring, id: i64, exchange: &str, routing_key: &str, payload: &[u8]) -> Vec<u8> {
    ring.seal_bytes(&aad(id, exchange, routing_key), payload)
}

/// Whether a stored payload is sealed (not clear JSON).
pub fn is_sealed(payload: &[u8]) -> bool {
    Keyring::key_of(payload).is_some()
}

/// The message of outbox row `id` as it is published: its payload opened when sealed. A payload
/// that does not open is [`KeyError::CorruptMessage`]; one sealed with a key the ring lacks is
/// [`KeyError::Missing`].
pub fn open(ring: &Keyring, id: i64, mut m: Outgoing) -> Result<Outgoing, KeyError> {
    if !is_sealed(&m.payload) {
        return Ok(m);
    }
    match ring.open_bytes(&aad(id, &m.exchange, &m.routing_key), &m.payload)? {
        Ok(clear) => {
            m.payload = clear;
            Ok(m)
        }
        Err(key) => Err(KeyError::CorruptMessage {
            outbox: id,
            routing_key: m.routing_key,
            key: key.unwrap_or(0),
        }),
    }
}

/// Queues messages for the relay, in the caller's transaction. Bank requests are sealed to
/// their row: their ids are taken from the outbox's identity sequence first (in order, so the
/// relay still publishes in the order given).
pub async fn insert(conn: &mut PgConnection, messages: &[Outgoing]) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let (mut ex, mut rk) = (
        Vec::with_capacity(messages.len()),
        Vec::with_capacity(messages.len()),
    );
    for m in messages {
        ex.push(m.exchange.as_str());
        rk.push(m.routing_key.as_str());
    }
    let sealing = !bench_clear_text()
        && messages
            .iter()
            .any(|m| carries_personal_data(&m.routing_key));
    if !sealing {
        let body: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
        sqlx::query(
            "INSERT INTO outbox (exchange, routing_key, payload)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])",
        )
        .bind(&ex)
        .bind(&rk)
        .bind(&body)
        .execute(conn)
        .await?;
        return Ok(());
    }
    let ring = keyring()?;
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, $1)",
    )
    .bind(messages.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();
    let body: Vec<Vec<u8>> = ids
        .iter()
        .zip(messages)
        .map(|(id, m)| {
            if carries_personal_data(&m.routing_key) {
                seal(&ring, *id, &m.exchange, &m.routing_key, &m.payload)
            } else {
                m.payload.clone()
            }
        })
        .collect();
    sqlx::query(
        "INSERT INTO outbox (id, exchange, routing_key, payload) OVERRIDING SYSTEM VALUE
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bytea[])",
    )
    .bind(&ids)
    .bind(&ex)
    .bind(&rk)
    .bind(&body)
    .execute(conn)
    .await?;
    Ok(())
}

/// The oldest unpublished messages, locked so that other relays skip them. Payloads as stored
/// (a bank request sealed): the relay [`open`]s them.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Outgoing {
        Outgoing {
            exchange: "salur.bank".into(),
            routing_key: "bank.009.account_open".into(),
            payload: br#"{"items":[{"nik":"5301014101800001","mother_name":"Siti"}]}"#.to_vec(),
        }
    }

    #[test]
    fn a_sealed_request_opens_only_in_its_row_and_route() {
        let ring = Keyring::generate();
        let m = request();
        let sealed = seal(&ring, 41, &m.exchange, &m.routing_key, &m.payload);
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(4).any(|w| w == b"5301" || w == b"Siti"));
        let stored = |routing_key: &str| Outgoing {
            routing_key: routing_key.into(),
            payload: sealed.clone(),
            ..m.clone()
        };
        assert_eq!(
            open(&ring, 41, stored(&m.routing_key)).unwrap().payload,
            m.payload
        );
        // Copied into another row, or re-routed to another bank: refused.
        assert!(matches!(
            open(&ring, 42, stored(&m.routing_key)),
            Err(KeyError::CorruptMessage { outbox: 42, .. })
        ));
        assert!(matches!(
            open(&ring, 41, stored("bank.002.account_open")),
            Err(KeyError::CorruptMessage { .. })
        ));
        // Another key ring: refused, never garbage.
        assert!(open(&Keyring::generate(), 41, stored(&m.routing_key)).is_err());
        // A clear message (a stage chunk) passes as it is.
        let clear = Outgoing {
            routing_key: "account_opening".into(),
            payload: br#"{"v":1}"#.to_vec(),
            ..m.clone()
        };
        assert_eq!(
            open(&ring, 1, clear.clone()).unwrap().payload,
            clear.payload
        );
    }

    #[test]
    fn a_request_sealed_with_an_old_key_opens_after_rotation() {
        let old = Keyring::generate();
        let m = request();
        let sealed = seal(&old, 7, &m.exchange, &m.routing_key, &m.payload);
        let rotated = old.with_new_key();
        let opened = open(
            &rotated,
            7,
            Outgoing {
                payload: sealed,
                ..m.clone()
            },
        )
        .unwrap();
        assert_eq!(opened.payload, m.payload);
        assert!(carries_personal_data("bank.451.transfer"));
        assert!(!carries_personal_data("account_opening"));
    }
}
