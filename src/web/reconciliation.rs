//! Bank reconciliation in the console, read-only (issue 14's results, [`crate::ops::reconcile`]):
//! `/reconciliations` lists the reconciled bank statements, `/reconciliations/{id}` shows one
//! with its exceptions, and the batch page has a section with its records' exceptions by kind
//! and its returned records ([`batch_section`]). A statement covers every office's payments,
//! so, as with `/v1/reconciliations`, only auditors open the two pages; an office sees its own
//! batch's part on the batch page.

use super::text::{self, Lang, rupiah, t};
use super::{Console, h};
use crate::api::AppState;
use crate::ops::batch::BatchStatus;
use crate::ops::office::Role;
use crate::ops::reconcile::{self, ExceptionKind, ReconcileError};
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::NaiveDate;
use uuid::Uuid;

/// Exceptions shown on one page (the API and `salur reconcile --json` give them all).
const SHOWN: usize = 500;

/// An exception kind in words.
pub fn kind_words(lang: Lang, kind: &str) -> String {
    let key = match ExceptionKind::ALL.iter().find(|k| k.as_str() == kind) {
        Some(ExceptionKind::NotDisbursed) => t(lang, "exc_not_disbursed"),
        Some(ExceptionKind::Unknown) => t(lang, "exc_unknown"),
        Some(ExceptionKind::Missing) => t(lang, "exc_missing"),
        Some(ExceptionKind::AmountMismatch) => t(lang, "exc_amount_mismatch"),
        Some(ExceptionKind::Duplicate) => t(lang, "exc_duplicate"),
        None => return kind.to_owned(),
    };
    key.to_owned()
}

fn day(lang: Lang, d: NaiveDate) -> String {
    // Noon UTC is the same day in WIB.
    text::date(lang, d.and_hms_opt(12, 0, 0).expect("noon").and_utc())
}

/// The batch page's reconciliation section: its records' exceptions by kind and its returned
/// records (count, amount, a link to them); empty when reconciliation found nothing.
pub fn batch_section(lang: Lang, id: Uuid, status: &BatchStatus) -> String {
    let returned = &status.totals.returned;
    if status.exceptions.is_empty() && returned.records == 0 {
        return String::new();
    }
    let mut rows = String::new();
    for (kind, n) in &status.exceptions {
        rows.push_str(&format!(
            r#"<tr data-kind="{k}"><td>{words} <span class="muted">{k}</span></td><td class="num">{n}</td></tr>"#,
            k = h(kind),
            words = h(&kind_words(lang, kind)),
        ));
    }
    let exceptions = if rows.is_empty() {
        format!("<p>{}</p>", t(lang, "no_exceptions"))
    } else {
        format!(
            r#"<table id="exceptions"><thead><tr><th scope="col">{}</th><th scope="col" class="num">{}</th></tr></thead><tbody>{rows}</tbody></table>"#,
            t(lang, "exception"),
            t(lang, "count")
        )
    };
    let returned = if returned.records > 0 {
        format!(
            r#"<p id="returned"><a href="/batches/{id}?state=returned">{label}</a>: <strong>{n}</strong> · {amount}</p>"#,
            label = h(&text::state(lang, "returned")),
            n = returned.records,
            amount = rupiah(returned.amount),
        )
    } else {
        String::new()
    };
    format!(
        r#"<section id="reconciliation"><h2>{title}</h2>{returned}{exceptions}</section>"#,
        title = t(lang, "reconciliation"),
    )
}

/// Only auditors: a statement names every office's payments.
fn auditor_only(console: &Console) -> Result<(), Response> {
    if console.person().role == Role::Auditor {
        Ok(())
    } else {
        Err(console.forbidden())
    }
}

pub async fn list(State(state): State<AppState>, console: Console) -> Response {
    if let Err(r) = auditor_only(&console) {
        return r;
    }
    let lang = console.lang;
    let items = match reconcile::list(&state.pool, None, 100).await {
        Ok(items) => items,
        Err(e) => return console.internal("listing reconciliations failed", &e),
    };
    let mut body = format!(
        "<h1>{}</h1><p class=\"muted\">{}</p>",
        t(lang, "reconciliations"),
        t(lang, "reconciliations_help")
    );
    if items.is_empty() {
        body.push_str(&format!("<p>{}</p>", t(lang, "no_reconciliations")));
    } else {
        body.push_str(&format!(
            r#"<table id="reconciliations"><thead><tr><th scope="col">{date}</th><th scope="col">{bank}</th><th scope="col">{statement}</th><th scope="col" class="num">{debits}</th><th scope="col" class="num">{matched}</th><th scope="col" class="num">{returned}</th><th scope="col" class="num">{exceptions}</th><th scope="col">{at}</th></tr></thead><tbody>"#,
            date = t(lang, "statement_date"),
            bank = t(lang, "bank"),
            statement = t(lang, "statement"),
            debits = t(lang, "debits"),
            matched = t(lang, "matched"),
            returned = h(&text::state(lang, "returned")),
            exceptions = t(lang, "exceptions"),
            at = t(lang, "reconciled_at"),
        ));
        for s in &items {
            body.push_str(&format!(
                r#"<tr><td><a href="/reconciliations/{id}">{date}</a></td><td>{bank}</td><td>{reference} <span class="muted">{file}</span></td><td class="num">{debits} · {debit_total}</td><td class="num">{matched}</td><td class="num">{returned} · {returned_total}</td><td class="num">{exceptions}</td><td>{at}</td></tr>"#,
                id = s.id,
                date = day(lang, s.statement_date),
                bank = h(&s.bank_code),
                reference = h(&s.statement_ref),
                file = h(&s.file_name),
                debits = s.debit_count,
                debit_total = rupiah(s.debit_total),
                matched = s.matched,
                returned = s.returned,
                returned_total = rupiah(s.returned_total),
                exceptions = s.exception_count,
                at = text::time(lang, s.at),
            ));
        }
        body.push_str("</tbody></table>");
    }
    console.page(t(lang, "reconciliations"), &body)
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = auditor_only(&console) {
        return r;
    }
    let lang = console.lang;
    let Ok(id) = Uuid::parse_str(&id) else {
        return console.not_found();
    };
    let report = match reconcile::show(&state.pool, id).await {
        Ok(r) => r,
        Err(ReconcileError::NotFound(_)) => return console.not_found(),
        Err(e) => return console.internal("reading a reconciliation failed", &e),
    };
    let s = &report.summary;
    let mut body = format!(
        r#"<h1>{title} — {bank} {reference}</h1><p class="muted">{date} · {file} ({format}) · {at}</p>
<table id="summary"><tbody>
<tr><th scope="row">{opening_l}</th><td class="num">{opening}</td></tr>
<tr><th scope="row">{debits_l}</th><td class="num">{debits} · {debit_total}</td></tr>
<tr><th scope="row">{credits_l}</th><td class="num">{credits} · {credit_total}</td></tr>
<tr><th scope="row">{closing_l}</th><td class="num">{closing}</td></tr>
<tr><th scope="row">{matched_l}</th><td class="num" id="matched">{matched}</td></tr>
<tr><th scope="row">{returned_l}</th><td class="num" id="returned">{returned} · {returned_total}</td></tr>
<tr><th scope="row">{exceptions_l}</th><td class="num" id="exception-count">{exceptions}</td></tr>
</tbody></table>"#,
        title = t(lang, "reconciliation"),
        bank = h(&s.bank_code),
        reference = h(&s.statement_ref),
        date = day(lang, s.statement_date),
        file = h(&s.file_name),
        format = h(&s.format),
        at = text::time(lang, s.at),
        opening_l = t(lang, "opening_balance"),
        opening = rupiah(s.opening),
        debits_l = t(lang, "debits"),
        debits = s.debit_count,
        debit_total = rupiah(s.debit_total),
        credits_l = t(lang, "credits"),
        credits = s.credit_count,
        credit_total = rupiah(s.credit_total),
        closing_l = t(lang, "closing_balance"),
        closing = rupiah(s.closing),
        matched_l = t(lang, "matched"),
        matched = s.matched,
        returned_l = h(&text::state(lang, "returned")),
        returned = s.returned,
        returned_total = rupiah(s.returned_total),
        exceptions_l = t(lang, "exceptions"),
        exceptions = s.exception_count,
    );
    if report.exceptions.is_empty() {
        body.push_str(&format!("<p>{}</p>", t(lang, "no_exceptions")));
    } else {
        body.push_str(&format!(
            r#"<h2>{}</h2><table id="exceptions"><thead><tr><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th><th scope="col" class="num">{}</th><th scope="col" class="num">{}</th><th scope="col">{}</th></tr></thead><tbody>"#,
            t(lang, "exceptions"),
            t(lang, "exception"),
            t(lang, "line"),
            t(lang, "record"),
            t(lang, "amount"),
            t(lang, "expected_amount"),
            t(lang, "details"),
        ));
        for e in report.exceptions.iter().take(SHOWN) {
            let line = match (e.line_no, e.file_line) {
                (Some(n), Some(fl)) => format!("{n} ({} {fl})", t(lang, "file_line")),
                _ => t(lang, "not_on_statement").to_owned(),
            };
            let record = e
                .record_id
                .map(|r| format!(r#"<a href="/records/{r}">{r}</a>"#))
                .unwrap_or_else(|| "—".into());
            let money = |a: Option<rust_decimal::Decimal>| a.map(rupiah).unwrap_or_default();
            body.push_str(&format!(
                r#"<tr data-kind="{k}"><td>{words}</td><td>{line}</td><td>{record}</td><td class="num">{amount}</td><td class="num">{expected}</td><td class="muted">{detail}</td></tr>"#,
                k = h(&e.kind),
                words = h(&kind_words(lang, &e.kind)),
                amount = money(e.amount),
                expected = money(e.expected),
                detail = h(&e.detail),
            ));
        }
        body.push_str("</tbody></table>");
        if report.exceptions.len() > SHOWN {
            body.push_str(&format!(
                r#"<p class="muted">{} {SHOWN}.</p>"#,
                t(lang, "first_shown")
            ));
        }
    }
    body.push_str(&format!(
        r#"<p><a href="/reconciliations">{}</a></p>"#,
        t(lang, "reconciliations")
    ));
    console.page(t(lang, "reconciliation"), &body)
}
