//! How the results of the operations read on a terminal: the `Display` of what `remediate`,
//! `privacy` and `office` return, so that the CLI prints them with `{}` and its commands hold
//! no formatting. Kept in one file of its own while `remediate` is split by operation (issue
//! 12); each impl can move next to its type.

use super::office::OfficeRow;
use super::privacy::RetentionRun;
use super::remediate::{
    Discarded, DlqList, EventView, FixOutcome, Reconciled, RecordView, ReplayOutcome,
};
use crate::domain::Reason;
use std::fmt;

/// The reason codes, comma-separated.
fn codes(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|r| r.code.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// One indented line per reason: code, field, message.
fn reason_lines(f: &mut fmt::Formatter<'_>, reasons: &[Reason]) -> fmt::Result {
    for r in reasons {
        writeln!(f, "  {} {}: {}", r.code, r.field, r.message)?;
    }
    Ok(())
}

/// `salur records show`: where the record is, why, its masked fields and its history.
impl fmt::Display for RecordView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "record {} — batch {} row {} ({} {} {})",
            self.id, self.batch_id, self.row, self.office, self.program, self.period
        )?;
        writeln!(
            f,
            "state: {} (attempts in this stage: {})",
            self.state, self.attempts
        )?;
        reason_lines(f, &self.reasons)?;
        writeln!(f, "fields (masked):")?;
        for (k, val) in &self.fields {
            writeln!(f, "  {k:<15} {}", val.as_deref().unwrap_or("—"))?;
        }
        writeln!(f, "history:")?;
        for e in &self.history {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// One line of a record's history.
impl fmt::Display for EventView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self
            .detail
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let by = match &self.by {
            Some(a) => format!(
                " by {} ({})",
                a.person.as_deref().unwrap_or("(no person)"),
                a.token
            ),
            None => String::new(),
        };
        writeln!(
            f,
            "  {} {} → {} {} {}{by}",
            self.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            self.from.as_deref().unwrap_or("—"),
            self.to,
            codes(&self.reasons),
            detail
        )
    }
}

/// A corrected record: complete, or still blocked with the reasons that remain.
impl fmt::Display for FixOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ready {
            writeln!(f, "record {} (row {}): complete", self.id, self.row)
        } else {
            writeln!(f, "record {} (row {}): still blocked:", self.id, self.row)?;
            reason_lines(f, &self.reasons)
        }
    }
}

/// `salur records fix`: every corrected record, then how many are complete.
pub struct Corrections<'a>(pub &'a [FixOutcome]);

impl fmt::Display for Corrections<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in self.0 {
            write!(f, "{o}")?;
        }
        let ready = self.0.iter().filter(|o| o.ready).count();
        writeln!(
            f,
            "{} corrected, {ready} complete; replay them with `salur dlq replay`",
            self.0.len()
        )
    }
}

/// `salur dlq list`: counts per parked state and reason (most frequent first), then the
/// records, oldest first.
impl fmt::Display for DlqList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.totals.is_empty() {
            return writeln!(f, "nothing is parked");
        }
        for (state, n) in &self.totals {
            let queue = if state == "dead" {
                "salur.dead"
            } else {
                "salur.blocked"
            };
            writeln!(
                f,
                "{state} ({queue}): {n} records, the oldest parked {} s ago",
                self.oldest_seconds.get(state).copied().unwrap_or(0)
            )?;
            if let Some(reasons) = self.by_reason.get(state) {
                let mut sorted: Vec<_> = reasons.iter().collect();
                sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (code, n) in sorted {
                    writeln!(f, "  {n:>7}  {code}")?;
                }
            }
        }
        writeln!(f, "records (oldest first):")?;
        writeln!(
            f,
            "  {:>10}  {:<36}  {:>6}  {:<7}  {:<15}  reasons",
            "id", "batch", "row", "state", "stage"
        )?;
        for r in &self.records {
            writeln!(
                f,
                "  {:>10}  {:<36}  {:>6}  {:<7}  {:<15}  {}",
                r.id,
                r.batch_id,
                r.row,
                r.state,
                r.stage.as_str(),
                if r.reasons.is_empty() {
                    "(corrected: replay it)".to_owned()
                } else {
                    codes(&r.reasons)
                }
            )?;
        }
        Ok(())
    }
}

/// `salur dlq replay` (standard output): what went back, per stage; what stays blocked and
/// why; what the parked queues lost and regained. The ids that were not replayed
/// (`not_parked`) are the caller's to report as errors.
impl fmt::Display for ReplayOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.replayed.values().sum();
        writeln!(f, "{total} records replayed {:?}", self.replayed)?;
        for o in &self.still_blocked {
            write!(f, "{o}")?;
        }
        if !self.still_blocked.is_empty() {
            writeln!(
                f,
                "{} records are still incomplete and stay blocked: correct them with `salur records fix`",
                self.still_blocked.len()
            )?;
        }
        if let Some(q) = &self.queues {
            writeln!(f, "{q}")?;
        }
        Ok(())
    }
}

/// One line, without a newline.
impl fmt::Display for Reconciled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parked queues: {} messages removed, {} kept, {} restored",
            self.removed, self.kept, self.restored
        )
    }
}

/// One line, without a newline.
impl fmt::Display for Discarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} was {} and is now rejected (DISCARDED)",
            self.id, self.was
        )
    }
}

/// `salur retention apply`: one line per batch past its retention, then what was erased.
impl fmt::Display for RetentionRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.batches {
            writeln!(
                f,
                "batch {} ({} {} {}, {} records): closed {}, kept {} days",
                b.batch_id, b.office, b.program, b.period, b.records, b.closed_at, b.retention_days
            )?;
        }
        if self.dry_run {
            writeln!(
                f,
                "{} batches past retention (dry run: nothing erased)",
                self.batches.len()
            )
        } else {
            writeln!(
                f,
                "{} batches past retention: personal fields of {} records erased",
                self.batches.len(),
                self.records_erased
            )
        }
    }
}

/// `salur office list`: one line per office under a header.
pub struct OfficeTable<'a>(pub &'a [OfficeRow]);

impl fmt::Display for OfficeTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:<8} {:>8}  {:<56} name",
            "code", "kind", "revoked", "active tokens (label role person)"
        )?;
        for o in self.0 {
            let tokens: Vec<String> = o
                .tokens
                .iter()
                .map(|t| match &t.person {
                    Some(p) => format!("{} {} \"{p}\"", t.label, t.role),
                    None => format!("{} {}", t.label, t.role),
                })
                .collect();
            writeln!(
                f,
                "{:<24} {:<8} {:>8}  {:<56} {}",
                o.code,
                o.kind,
                o.revoked_tokens,
                tokens.join("; "),
                o.name
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReasonCode;
    use crate::messages::Stage;
    use crate::ops::remediate::ParkedView;
    use std::collections::BTreeMap;

    fn reason(code: ReasonCode, field: &str) -> Reason {
        Reason::new(code, field, "is missing")
    }

    fn parked(id: i64, reasons: Vec<Reason>) -> ParkedView {
        ParkedView {
            id,
            batch_id: uuid::Uuid::nil(),
            row: 7,
            state: "blocked".into(),
            stage: Stage::AccountOpening,
            reasons,
            attempts: 0,
            since: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn dlq_list_counts_the_most_frequent_reason_first_and_says_to_replay_corrected_records() {
        let list = DlqList {
            totals: BTreeMap::from([("blocked".to_owned(), 3)]),
            by_reason: BTreeMap::from([(
                "blocked".to_owned(),
                BTreeMap::from([
                    ("KK_MISSING".to_owned(), 1),
                    ("MOTHER_NAME_MISSING".to_owned(), 2),
                ]),
            )]),
            oldest_seconds: BTreeMap::from([("blocked".to_owned(), 90)]),
            records: vec![
                parked(
                    41,
                    vec![
                        reason(ReasonCode::MotherNameMissing, "mother_name"),
                        reason(ReasonCode::KkMissing, "kk"),
                    ],
                ),
                parked(42, Vec::new()),
            ],
        };
        let text = list.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "blocked (salur.blocked): 3 records, the oldest parked 90 s ago",
                "        2  MOTHER_NAME_MISSING",
                "        1  KK_MISSING",
            ]
        );
        assert!(
            lines[5].ends_with("  MOTHER_NAME_MISSING,KK_MISSING"),
            "{text}"
        );
        assert!(lines[5].trim_start().starts_with("41  "), "{text}");
        assert!(lines[6].ends_with("  (corrected: replay it)"), "{text}");
        let empty = DlqList {
            totals: BTreeMap::new(),
            by_reason: BTreeMap::new(),
            oldest_seconds: BTreeMap::new(),
            records: Vec::new(),
        };
        assert_eq!(empty.to_string(), "nothing is parked\n");
    }

    #[test]
    fn a_replay_lists_what_stays_blocked_and_what_the_queues_did() {
        let outcome = ReplayOutcome {
            replayed: BTreeMap::from([("account_opening".to_owned(), 2)]),
            replayed_ids: vec![1, 2],
            still_blocked: vec![FixOutcome {
                id: 3,
                row: 9,
                changed: Vec::new(),
                reasons: vec![reason(ReasonCode::KkMissing, "kk")],
                ready: false,
            }],
            not_parked: vec![(4, "is disbursed, not parked".to_owned())],
            queues: Some(Reconciled {
                kept: 1,
                removed: 2,
                restored: 0,
            }),
        };
        assert_eq!(
            outcome.to_string(),
            "2 records replayed {\"account_opening\": 2}\n\
             record 3 (row 9): still blocked:\n  KK_MISSING kk: is missing\n\
             1 records are still incomplete and stay blocked: correct them with `salur records fix`\n\
             parked queues: 2 messages removed, 1 kept, 0 restored\n"
        );
    }
}
