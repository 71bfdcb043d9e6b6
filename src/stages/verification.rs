//! Verification: the bank's account name must match the recipient's (normalised: banks upper-case
//! and truncate names), and the NIK must not already be paid or in flight for the same programme
//! and period in any batch of any office. The NIK is claimed in `recipient_claims`; the second
//! claimant is `rejected` with DOUBLE_RECIPIENT and never paid.

use super::{Tally, parked_message, stage_message, write};
use crate::config::Settings;
use crate::domain::{Reason, ReasonCode, names_match};
use crate::messages::{Stage, StageMessage};
use crate::store::{Attempt, Change, State};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

const STAGE: Stage = Stage::Verification;

pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    msg: &StageMessage,
) -> sqlx::Result<Tally> {
    let mut tally = Tally::default();
    let rows = tally
        .lock(conn, &msg.record_ids, State::AccountOpened)
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    let mut out = Vec::new();

    let mut named = Vec::new();
    for row in &rows {
        let name = row.name.as_deref().unwrap_or_default();
        let account_name = row.bank_account_name.as_deref().unwrap_or_default();
        if names_match(name, account_name) {
            named.push(row);
        } else {
            let reasons = vec![Reason::new(
                ReasonCode::NameMismatch,
                "name",
                "the bank account holder's name does not match the recipient's name; correct the \
                 name to the one on the KTP",
            )];
            tally.reasons(STAGE, &reasons);
            tally.count(STAGE, "blocked", 1);
            let c = Change::to(row.id, State::Blocked).with_reasons(reasons);
            out.push(parked_message(settings, row, STAGE, &c));
            changes.push(c);
        }
    }

    // Claim each NIK for its programme and period; the claim that exists after this is the
    // one that is paid.
    if !named.is_empty() {
        let program: Vec<&str> = named.iter().map(|r| r.program.as_str()).collect();
        let period: Vec<&str> = named.iter().map(|r| r.period.as_str()).collect();
        // The keyed hash of the NIK (set at intake): the claims hold no NIK.
        let nik: Vec<&[u8]> = named
            .iter()
            .map(|r| r.nik_hash.as_deref().unwrap_or_default())
            .collect();
        let ids: Vec<i64> = named.iter().map(|r| r.id).collect();
        let owners: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
            "WITH wanted AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bigint[])
                     AS w(program, period, nik, record_id)
             ), claimed AS (
                 INSERT INTO recipient_claims (program, period, nik_hash, record_id)
                 SELECT program, period, nik, record_id FROM wanted ORDER BY record_id
                 ON CONFLICT DO NOTHING
                 RETURNING program, period, nik_hash, record_id
             )
             SELECT program, period, nik_hash, record_id FROM claimed
             UNION ALL
             SELECT c.program, c.period, c.nik_hash, c.record_id
             FROM wanted w
             -- One primary-key probe per wanted NIK, whatever the table's statistics say (a
             -- join here was planned as a sequential scan of every claim, per chunk).
             JOIN LATERAL (
                 SELECT * FROM recipient_claims c
                 WHERE c.program = w.program AND c.period = w.period AND c.nik_hash = w.nik
             ) c ON true",
        )
        .bind(&program)
        .bind(&period)
        .bind(&nik)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let owner: HashMap<(String, String, Vec<u8>), i64> = owners
            .into_iter()
            .map(|(p, q, n, id)| ((p, q, n), id))
            .collect();
        // Who holds the claims this chunk lost: their office, and the offices of this chunk.
        let lost: Vec<i64> = named
            .iter()
            .filter_map(|row| {
                let key = (
                    row.program.clone(),
                    row.period.clone(),
                    row.nik_hash.clone().unwrap_or_default(),
                );
                owner.get(&key).copied().filter(|id| *id != row.id)
            })
            .collect();
        let mut holders: HashMap<i64, (String, Uuid)> = HashMap::new();
        let mut offices: HashMap<Uuid, String> = HashMap::new();
        if !lost.is_empty() {
            let batches: Vec<Uuid> = named.iter().map(|r| r.batch_id).collect();
            let found: Vec<(i64, String, Uuid)> = sqlx::query_as(
                "SELECT r.id, b.office, b.id FROM records r JOIN batches b ON b.id = r.batch_id
                 WHERE r.id = ANY($1)",
            )
            .bind(&lost)
            .fetch_all(&mut *conn)
            .await?;
            holders = found.into_iter().map(|(id, o, b)| (id, (o, b))).collect();
            let mine: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT id, office FROM batches WHERE id = ANY($1)")
                    .bind(&batches)
                    .fetch_all(&mut *conn)
                    .await?;
            offices = mine.into_iter().collect();
        }
        let mut verified = Vec::new();
        for row in named {
            let key = (
                row.program.clone(),
                row.period.clone(),
                row.nik_hash.clone().unwrap_or_default(),
            );
            match owner.get(&key) {
                Some(&id) if id == row.id => {
                    changes.push(Change::to(row.id, State::Verified).with_attempt(Attempt::Reset));
                    verified.push(row.id);
                }
                other => {
                    // The office that holds the claim, and the record only when it is the
                    // same office's: another office's record ids are not this office's to see.
                    let holder = other.and_then(|id| holders.get(id).map(|h| (id, h)));
                    let whose = match holder {
                        Some((id, (office, _))) if Some(office) == offices.get(&row.batch_id) => {
                            format!("by this office (record {id})")
                        }
                        Some((_, (office, _))) => format!("by office {office}"),
                        None => "already".to_owned(),
                    };
                    let reasons = vec![Reason::new(
                        ReasonCode::DoubleRecipient,
                        "nik",
                        format!(
                            "this NIK is paid or being paid in {} {} {whose}; one NIK is paid \
                             once per programme and period",
                            row.program, row.period,
                        ),
                    )];
                    tally.reasons(STAGE, &reasons);
                    tally.count(STAGE, "rejected", 1);
                    changes.push(Change::to(row.id, State::Rejected).with_reasons(reasons));
                }
            }
        }
        tally.count(STAGE, "advanced", verified.len() as u64);
        if !verified.is_empty() {
            out.push(stage_message(
                settings,
                Stage::Transfer,
                msg.batch_id,
                verified,
            ));
        }
    }
    write(conn, State::AccountOpened, &changes, &out).await?;
    Ok(tally)
}
