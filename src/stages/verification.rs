//! Verification: the bank's account name must match the recipient's (normalised: banks upper-case
//! and truncate names), and the NIK must not already be paid or in flight for the same programme
//! and period in any batch of any office. The NIK is claimed in `recipient_claims`; the second
//! claimant is `rejected` with DOUBLE_RECIPIENT and never paid. A record that passes goes on to
//! the transfer, or, when its programme requires approval, waits in `awaiting_approval` for a
//! checker ([`crate::ops::approval`]).

use super::{Step, Tally};
use crate::config::Settings;
use crate::domain::lifecycle::Outcome;
use crate::domain::{Reason, ReasonCode, names_match};
use crate::messages::{Stage, StageMessage};
use crate::store::pipeline::{self, claim_key};
use crate::store::{Attempt, approvals};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

const STAGE: Stage = Stage::Verification;

/// Records whose bank account name matches advance if their NIK's claim is theirs; the others
/// are blocked (name) or rejected (double recipient).
pub async fn handle(
    settings: &Settings,
    conn: &mut PgConnection,
    msg: &StageMessage,
) -> sqlx::Result<Tally> {
    let mut step = Step::of(settings, STAGE);
    let rows = step.read(conn, &msg.record_ids).await?;

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
            step.decide(row, Outcome::Blocked, reasons);
        }
    }

    // Claim each NIK for its programme and period; the claim that exists after this is the
    // one that is paid.
    if !named.is_empty() {
        let owner = pipeline::claim(conn, &named).await?;
        // Who holds the claims this chunk lost: their office, and the offices of this chunk.
        let lost: Vec<i64> = named
            .iter()
            .filter_map(|row| {
                owner
                    .get(&claim_key(row))
                    .copied()
                    .filter(|id| *id != row.id)
            })
            .collect();
        let mut holders: HashMap<i64, (String, Uuid)> = HashMap::new();
        let mut offices: HashMap<Uuid, String> = HashMap::new();
        if !lost.is_empty() {
            let batches: Vec<Uuid> = named.iter().map(|r| r.batch_id).collect();
            holders = pipeline::offices_of_records(conn, &lost).await?;
            offices = pipeline::offices_of_batches(conn, &batches).await?;
        }
        let programs: Vec<&str> = named.iter().map(|r| r.program.as_str()).collect();
        let approval = approvals::requiring_approval(conn, &programs).await?;
        let mut verified = Vec::new();
        for row in named {
            match owner.get(&claim_key(row)) {
                Some(&id) if id == row.id && approval.contains(&row.program) => {
                    step.decide(row, Outcome::HeldForApproval, Vec::new())
                        .attempt = Attempt::Reset;
                }
                Some(&id) if id == row.id => {
                    step.decide(row, Outcome::Advanced, Vec::new()).attempt = Attempt::Reset;
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
                    step.decide(row, Outcome::Rejected, reasons);
                }
            }
        }
        if !verified.is_empty() {
            step.hand_on(msg.batch_id, verified);
        }
    }
    step.write(conn).await
}
