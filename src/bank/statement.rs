//! A bank statement of the programme's source account for one day: its opening balance, one
//! line per debit (a transfer paid) or credit (a transfer's money come back), its closing
//! balance. Written by `salur bank-sim statement` and read by `salur reconcile` in two forms
//! banks hand out: **MT940** ([`Statement::to_mt940`], read with the `mt940` crate) and a
//! **CSV export** ([`Statement::to_csv`], layout in [`CSV_HEADER`] and the README).
//!
//! Each line names its transfer by salur's end-to-end reference (the transfer's idempotency
//! key) and the bank's reference; a credit names the transfer it returns, and why
//! ([`ReturnReason`]). A statement carries no personal data: references and amounts only.
//!
//! MT940 as written here (SWIFT character set, CRLF):
//! ```text
//! :20:SALUR002261201                      statement reference (bank, date)
//! :25:002/SALUR-PROGRAMME                 account: bank code / account
//! :28C:00001/001
//! :60F:C261201IDR100000000000,00          opening balance
//! :61:2612011201D600000,00NTRF3f2a…(16)//…(last 16 of the bank reference)
//! SIM002000000000123                      the bank reference, whole
//! :86:/EREF/<idempotency key>
//! /BREF/<bank reference>
//! /REMI/<programme period, record id>
//! :61:2612011201C600000,00NRTI3f2a…//…    a return: credit, type RTI
//! :86:/EREF/<key of the transfer returned>
//! /BREF/<its bank reference>
//! /RTRN/AC04                              reason: AC04 account closed, MD07 deceased, NOCO
//! :62F:C261201IDR99998800000,00           closing balance
//! ```

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::str::FromStr as _;

/// Debit (money out of the programme account: a transfer) or credit (money in: a return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }
}

/// Why a bank sent a transfer's money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReturnReason {
    /// The account is closed or dormant (ISO 20022 return code AC04).
    AccountClosed,
    /// The recipient died (MD07).
    RecipientDeceased,
    /// The aid was not collected within the programme's window (salur's code NOCO): it goes
    /// back to the state treasury.
    NotCollected,
}

impl ReturnReason {
    pub const ALL: [ReturnReason; 3] = [
        ReturnReason::AccountClosed,
        ReturnReason::RecipientDeceased,
        ReturnReason::NotCollected,
    ];

    /// The code on a statement line (`/RTRN/<code>`, the CSV's `return_code`).
    pub fn code(self) -> &'static str {
        match self {
            ReturnReason::AccountClosed => "AC04",
            ReturnReason::RecipientDeceased => "MD07",
            ReturnReason::NotCollected => "NOCO",
        }
    }

    /// salur's name of the reason (stored with the return, shown in reports).
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnReason::AccountClosed => "ACCOUNT_CLOSED",
            ReturnReason::RecipientDeceased => "RECIPIENT_DECEASED",
            ReturnReason::NotCollected => "NOT_COLLECTED",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == code || r.as_str() == code)
    }
}

/// One debit or credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub value_date: NaiveDate,
    pub direction: Direction,
    /// Positive, IDR.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// salur's end-to-end reference: the transfer's idempotency key (for a credit, the key of
    /// the transfer it returns).
    pub end_to_end: String,
    /// The bank's reference of the transfer (for a credit, of the transfer returned).
    pub bank_reference: String,
    /// Set on a credit that returns a transfer.
    pub return_reason: Option<ReturnReason>,
    /// Free text (programme, period, record id); never personal data.
    pub description: String,
    /// Where the line starts in the file (1-based; 0 for a statement built in memory).
    #[serde(skip)]
    pub file_line: usize,
}

/// Which form a statement came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Mt940,
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mt940 => "mt940",
            Format::Csv => "csv",
        }
    }
}

/// One day's statement of one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// The statement's reference (`:20:`), unique per bank: what a reconciliation is keyed by.
    pub reference: String,
    /// `<bank code>/<account>` (`:25:`).
    pub account: String,
    /// Statement and sequence number (`:28C:`).
    pub number: String,
    pub date: NaiveDate,
    pub currency: String,
    /// Signed: negative is a debit balance.
    #[serde(with = "rust_decimal::serde::str")]
    pub opening: Decimal,
    pub lines: Vec<Line>,
    #[serde(with = "rust_decimal::serde::str")]
    pub closing: Decimal,
    #[serde(skip)]
    pub format: Format,
    /// The file line of the closing balance (for errors).
    #[serde(skip)]
    pub closing_line: usize,
}

/// The programme's source account at a bank, as bank-sim names it.
pub fn account_of(bank: &str) -> String {
    format!("{bank}/SALUR-PROGRAMME")
}

/// The statement reference bank-sim gives a bank's statement of a day (16 characters at most).
pub fn reference_of(bank: &str, date: NaiveDate) -> String {
    format!("SALUR{bank}{}", date.format("%y%m%d"))
}

/// The CSV export's columns, in order. One row per balance and per line: `type` is `opening`,
/// `debit`, `credit` or `closing`; balances carry `date` and a signed `amount`, lines their
/// value date, amount (positive), references, return code (credits) and description.
pub const CSV_HEADER: [&str; 10] = [
    "type",
    "statement_ref",
    "account",
    "date",
    "amount",
    "currency",
    "end_to_end_id",
    "bank_reference",
    "return_code",
    "description",
];

/// A statement refused, with the file, line and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct StatementError {
    pub file: String,
    /// 1-based; 0 when the error concerns the file as a whole.
    pub line: usize,
    pub message: String,
}

impl Statement {
    /// Opening balance + credits − debits.
    pub fn computed_closing(&self) -> Decimal {
        self.lines
            .iter()
            .fold(self.opening, |b, l| match l.direction {
                Direction::Debit => b - l.amount,
                Direction::Credit => b + l.amount,
            })
    }

    /// Sets the closing balance to what the lines add up to.
    pub fn recompute_closing(&mut self) {
        self.closing = self.computed_closing();
    }

    /// The bank code in the account (`:25:`), before its `/`.
    pub fn bank_code(&self) -> &str {
        self.account.split('/').next().unwrap_or_default()
    }

    /// Count and sum of the lines in `direction`.
    pub fn sum(&self, direction: Direction) -> (usize, Decimal) {
        self.lines
            .iter()
            .filter(|l| l.direction == direction)
            .fold((0, Decimal::ZERO), |(n, s), l| (n + 1, s + l.amount))
    }

    /// The statement in MT940 (see the module documentation), CRLF line ends.
    pub fn to_mt940(&self) -> String {
        let mut out = String::new();
        let yymmdd = |d: NaiveDate| d.format("%y%m%d").to_string();
        let balance = |b: Decimal| {
            let (mark, abs) = if b < Decimal::ZERO {
                ("D", -b)
            } else {
                ("C", b)
            };
            format!(
                "{mark}{}{}{}",
                yymmdd(self.date),
                self.currency,
                swift_amount(abs)
            )
        };
        let mut push = |s: String| {
            out.push_str(&s);
            out.push_str("\r\n");
        };
        push(format!(":20:{}", self.reference));
        push(format!(":25:{}", self.account));
        push(format!(":28C:{}", self.number));
        push(format!(":60F:{}", balance(self.opening)));
        for l in &self.lines {
            let (mark, kind) = match l.direction {
                Direction::Debit => ("D", "NTRF"),
                Direction::Credit => ("C", "NRTI"),
            };
            push(format!(
                ":61:{}{}{mark}{}{kind}{}//{}",
                yymmdd(l.value_date),
                self.date.format("%m%d"),
                swift_amount(l.amount),
                customer_ref(&l.end_to_end),
                last_chars(&l.bank_reference, 16),
            ));
            push(l.bank_reference.chars().take(34).collect());
            push(format!(":86:/EREF/{}", l.end_to_end));
            push(format!("/BREF/{}", l.bank_reference));
            if let Some(r) = l.return_reason {
                push(format!("/RTRN/{}", r.code()));
            }
            if !l.description.is_empty() {
                push(format!("/REMI/{}", swift_text(&l.description, 59)));
            }
        }
        push(format!(":62F:{}", balance(self.closing)));
        out
    }

    /// The statement as the CSV export ([`CSV_HEADER`]): comma-separated, `.` decimals.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let date = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let row = |kind: &str, d: NaiveDate, amount: Decimal, l: Option<&Line>| {
            vec![
                kind.to_owned(),
                self.reference.clone(),
                self.account.clone(),
                date(d),
                format!("{amount:.2}"),
                self.currency.clone(),
                l.map(|l| l.end_to_end.clone()).unwrap_or_default(),
                l.map(|l| l.bank_reference.clone()).unwrap_or_default(),
                l.and_then(|l| l.return_reason)
                    .map(|r| r.code().to_owned())
                    .unwrap_or_default(),
                l.map(|l| l.description.clone()).unwrap_or_default(),
            ]
        };
        w.write_record(CSV_HEADER).expect("in memory");
        w.write_record(row("opening", self.date, self.opening, None))
            .expect("in memory");
        for l in &self.lines {
            w.write_record(row(l.direction.as_str(), l.value_date, l.amount, Some(l)))
                .expect("in memory");
        }
        w.write_record(row("closing", self.date, self.closing, None))
            .expect("in memory");
        String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8")
    }
}

/// An MT940 amount: digits, a decimal comma, two decimals.
fn swift_amount(a: Decimal) -> String {
    format!("{:.2}", a.round_dp(2)).replace('.', ",")
}

/// The `:61:` reference for the account owner: the end-to-end reference without its dashes,
/// cut to 16 characters (the whole reference is in `:86:`).
fn customer_ref(end_to_end: &str) -> String {
    end_to_end.chars().filter(|c| *c != '-').take(16).collect()
}

fn last_chars(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Text in the SWIFT character set, at most `max` characters (others become spaces).
fn swift_text(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/-?:().,'+ ".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(max)
        .collect()
}

/// Reads a statement in either form: MT940 when its first field is `:20:`, else the CSV export.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Statement, StatementError> {
    let err = |line: usize, message: String| StatementError {
        file: file.to_owned(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| err(0, format!("is not UTF-8 or ASCII text ({e})")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(err(
            0,
            "is empty: expected an MT940 statement or the CSV export".into(),
        ));
    }
    if text.trim_start().starts_with(":20:") {
        parse_mt940(file, text)
    } else {
        parse_csv(file, text)
    }
}

/// The file line each field starts on, in order: `(tag, line)`.
fn field_lines(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.strip_prefix(':')?;
            let (tag, _) = rest.split_once(':')?;
            (tag.len() <= 3 && tag.chars().all(|c| c.is_ascii_alphanumeric()))
                .then(|| (tag.to_owned(), i + 1))
        })
        .collect()
}

fn parse_mt940(file: &str, text: &str) -> Result<Statement, StatementError> {
    let err = |line: usize, message: String| StatementError {
        file: file.to_owned(),
        line,
        message,
    };
    let lines = field_lines(text);
    let line_of = |tag: &str, nth: usize| {
        lines
            .iter()
            .filter(|(t, _)| t == tag)
            .nth(nth)
            .map_or(0, |(_, l)| *l)
    };
    let messages = mt940::parse_mt940(text).map_err(|e| match e {
        mt940::ParseError::PestParseError(p) => {
            let (line, p) = locate_field_error(text, &lines).unwrap_or((pest_line(&p), *p));
            err(
                line,
                format!(
                    "is not MT940 as the standard writes it (SWIFT character set, field \
                     lengths): {}",
                    p.variant.message()
                ),
            )
        }
        mt940::ParseError::RequiredTagNotFoundError(t) => err(
            0,
            format!("{t}: a statement needs :20:, :25:, :28C:, :60F:/:60M: and :62F:/:62M:"),
        ),
        mt940::ParseError::UnexpectedTagError(t) => err(0, format!("{t}")),
        other => err(0, format!("is not a readable MT940 statement: {other}")),
    })?;
    if messages.len() != 1 {
        return Err(err(
            line_of("20", 1),
            format!(
                "holds {} statements: give one statement (one :20:) per file",
                messages.len()
            ),
        ));
    }
    let m = &messages[0];
    let signed = |b: &mt940::Balance| match b.debit_credit_indicator {
        mt940::DebitOrCredit::Credit => b.amount,
        mt940::DebitOrCredit::Debit => -b.amount,
    };
    let currency = m.opening_balance.iso_currency_code.clone();
    if currency != "IDR" {
        return Err(err(
            line_of("60F", 0).max(line_of("60M", 0)),
            format!("the opening balance is in {currency}: salur pays in IDR"),
        ));
    }
    if m.closing_balance.iso_currency_code != currency {
        return Err(err(
            line_of("62F", 0).max(line_of("62M", 0)),
            "the closing balance is in another currency than the opening balance".into(),
        ));
    }
    let mut out = Vec::with_capacity(m.statement_lines.len());
    for (i, l) in m.statement_lines.iter().enumerate() {
        let at = line_of("61", i);
        let direction = match l.ext_debit_credit_indicator {
            mt940::ExtDebitOrCredit::Debit => Direction::Debit,
            mt940::ExtDebitOrCredit::Credit => Direction::Credit,
            _ => {
                return Err(err(
                    at,
                    "is a reversal (RC/RD): salur reads debits (D) and credits (C) only".into(),
                ));
            }
        };
        let info = match &l.information_to_account_owner {
            Some(mt940::InformationToAccountOwner::Plain(s)) => s.clone(),
            _ => {
                return Err(err(
                    at,
                    "has no :86: with /EREF/<end-to-end reference>: every line must name \
                     its transfer"
                        .into(),
                ));
            }
        };
        let sub = |tag: &str| subfield(&info, tag);
        let end_to_end = sub("EREF").ok_or_else(|| {
            err(
                at,
                "its :86: has no /EREF/<end-to-end reference>: every line must name its \
                 transfer"
                    .into(),
            )
        })?;
        if customer_ref(&end_to_end) != l.customer_ref && l.customer_ref != "NONREF" {
            return Err(err(
                at,
                format!(
                    "its reference {:?} is not the start of its end-to-end reference in :86:",
                    l.customer_ref
                ),
            ));
        }
        let return_reason = match sub("RTRN") {
            None => None,
            Some(code) => Some(ReturnReason::from_code(&code).ok_or_else(|| {
                err(
                    at,
                    format!(
                        "return code {code:?} is unknown: use AC04 (account closed), MD07 \
                         (recipient deceased) or NOCO (not collected)"
                    ),
                )
            })?),
        };
        if return_reason.is_some() != (direction == Direction::Credit) {
            return Err(err(
                at,
                "a credit must carry /RTRN/<reason> (the transfer it returns), a debit none".into(),
            ));
        }
        out.push(Line {
            value_date: l.value_date,
            direction,
            amount: l.amount,
            end_to_end,
            bank_reference: sub("BREF")
                .or_else(|| l.bank_ref.clone())
                .unwrap_or_default(),
            return_reason,
            description: sub("REMI").unwrap_or_default(),
            file_line: at,
        });
    }
    Ok(Statement {
        reference: m.transaction_ref_no.clone(),
        account: m.account_id.clone(),
        number: match &m.sequence_no {
            Some(s) => format!("{}/{s}", m.statement_no),
            None => m.statement_no.clone(),
        },
        date: m.closing_balance.date,
        currency,
        opening: signed(&m.opening_balance),
        lines: out,
        closing: signed(&m.closing_balance),
        format: Format::Mt940,
        closing_line: line_of("62F", 0).max(line_of("62M", 0)),
    })
}

fn pest_line(p: &pest::error::Error<mt940::Rule>) -> usize {
    match p.line_col {
        pest::error::LineColLocation::Pos((l, _)) => l,
        pest::error::LineColLocation::Span((l, _), _) => l,
    }
}

/// The file line of the first field the `mt940` crate refuses, and its error: the crate parses
/// each field's value apart, so its error's line counts from the field's start.
fn locate_field_error(
    text: &str,
    lines: &[(String, usize)],
) -> Option<(usize, pest::error::Error<mt940::Rule>)> {
    use mt940::Rule;
    use pest::Parser as _;
    let fields = mt940::parse_fields(text).ok()?;
    for (i, field) in fields.iter().enumerate() {
        let rule = match field.tag.as_str() {
            "20" => Rule::tag_20_field,
            "21" => Rule::tag_21_field,
            "25" => Rule::tag_25_field,
            "28C" => Rule::tag_28c_field,
            "60F" | "60M" => Rule::tag_60_field,
            "61" => Rule::tag_61_field,
            "62F" | "62M" => Rule::tag_62_field,
            "64" => Rule::tag_64_field,
            "65" => Rule::tag_65_field,
            "86" => Rule::tag_86_field,
            _ => continue,
        };
        if let Err(e) = mt940::MT940Parser::parse(rule, &field.value) {
            let start = lines.get(i).map_or(1, |(_, l)| *l);
            return Some((start + pest_line(&e) - 1, e));
        }
    }
    None
}

/// The value of `/TAG/` in a `:86:` text: up to the next `/` or line end.
fn subfield(info: &str, tag: &str) -> Option<String> {
    let joined = info.replace(['\r', '\n'], "/");
    let start = joined.find(&format!("/{tag}/"))? + tag.len() + 2;
    let value: String = joined[start..].split('/').next()?.trim().to_owned();
    (!value.is_empty()).then_some(value)
}

fn parse_csv(file: &str, text: &str) -> Result<Statement, StatementError> {
    let err = |line: usize, message: String| StatementError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut r = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| err(1, format!("the header cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    if header != CSV_HEADER {
        return Err(err(
            1,
            format!(
                "is neither MT940 (no :20: first) nor the CSV export: its header must be {}",
                CSV_HEADER.join(",")
            ),
        ));
    }
    let mut opening: Option<(Decimal, NaiveDate)> = None;
    let mut closing: Option<(Decimal, usize)> = None;
    let mut meta: Option<(String, String, String)> = None;
    let mut lines = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let at = i + 2;
        let rec = rec.map_err(|e| err(at, format!("cannot be read: {e}")))?;
        let f = |k: usize| rec.get(k).unwrap_or_default().trim().to_owned();
        let kind = f(0);
        if closing.is_some() {
            return Err(err(
                at,
                "comes after the closing balance: it must be last".into(),
            ));
        }
        let this = (f(1), f(2), f(5));
        match &meta {
            None => meta = Some(this.clone()),
            Some(m) if *m != this => {
                return Err(err(
                    at,
                    "names another statement_ref, account or currency than the first row".into(),
                ));
            }
            Some(_) => {}
        }
        let date = NaiveDate::parse_from_str(&f(3), "%Y-%m-%d")
            .map_err(|_| err(at, format!("date {:?} is not YYYY-MM-DD", f(3))))?;
        let amount = Decimal::from_str(&f(4))
            .ok()
            .filter(|a| a.scale() <= 2)
            .ok_or_else(|| {
                err(
                    at,
                    format!("amount {:?} is not a number with at most 2 decimals", f(4)),
                )
            })?;
        match kind.as_str() {
            "opening" if opening.is_none() && lines.is_empty() => opening = Some((amount, date)),
            "opening" => return Err(err(at, "a second or late opening balance".into())),
            "closing" if opening.is_some() => closing = Some((amount, at)),
            "debit" | "credit" if opening.is_some() => {
                if amount <= Decimal::ZERO {
                    return Err(err(at, "a line's amount must be more than 0".into()));
                }
                let direction = if kind == "debit" {
                    Direction::Debit
                } else {
                    Direction::Credit
                };
                let end_to_end = f(6);
                if end_to_end.is_empty() {
                    return Err(err(
                        at,
                        "has no end_to_end_id: every line must name its transfer".into(),
                    ));
                }
                let code = f(8);
                let return_reason = if code.is_empty() {
                    None
                } else {
                    Some(ReturnReason::from_code(&code).ok_or_else(|| {
                        err(
                            at,
                            format!("return_code {code:?} is unknown: use AC04, MD07 or NOCO"),
                        )
                    })?)
                };
                if return_reason.is_some() != (direction == Direction::Credit) {
                    return Err(err(
                        at,
                        "a credit must carry a return_code (the transfer it returns), a debit none"
                            .into(),
                    ));
                }
                lines.push(Line {
                    value_date: date,
                    direction,
                    amount,
                    end_to_end,
                    bank_reference: f(7),
                    return_reason,
                    description: f(9),
                    file_line: at,
                });
            }
            "debit" | "credit" | "closing" => {
                return Err(err(at, "comes before the opening balance".into()));
            }
            other => {
                return Err(err(
                    at,
                    format!("type {other:?} is not one of opening, debit, credit, closing"),
                ));
            }
        }
    }
    let (reference, account, currency) =
        meta.ok_or_else(|| err(0, "has no rows after its header".into()))?;
    let (opening, date) = opening.ok_or_else(|| err(0, "has no opening balance".into()))?;
    let (closing, closing_line) =
        closing.ok_or_else(|| err(0, "has no closing balance (type closing, last)".into()))?;
    if currency != "IDR" {
        return Err(err(2, format!("currency {currency:?}: salur pays in IDR")));
    }
    if reference.is_empty() || account.is_empty() {
        return Err(err(2, "statement_ref and account must not be empty".into()));
    }
    Ok(Statement {
        reference,
        account,
        number: String::new(),
        date,
        currency,
        opening,
        lines,
        closing,
        format: Format::Csv,
        closing_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Statement {
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let line = |direction, key: &str, reason| Line {
            value_date: date,
            direction,
            amount: Decimal::from(600_000),
            end_to_end: key.to_owned(),
            bank_reference: "SIM002000000000123".into(),
            return_reason: reason,
            description: "BPNT 2026-Q4 record 7".into(),
            file_line: 0,
        };
        let mut s = Statement {
            reference: reference_of("002", date),
            account: account_of("002"),
            number: "00001/001".into(),
            date,
            currency: "IDR".into(),
            opening: Decimal::from(100_000_000_000i64),
            lines: vec![
                line(
                    Direction::Debit,
                    "6b0f4f0e-5a1c-4c4e-9d2b-8a6f3e217c55",
                    None,
                ),
                line(
                    Direction::Debit,
                    "0b0f4f0e-5a1c-4c4e-9d2b-8a6f3e217c55",
                    None,
                ),
                line(
                    Direction::Credit,
                    "6b0f4f0e-5a1c-4c4e-9d2b-8a6f3e217c55",
                    Some(ReturnReason::RecipientDeceased),
                ),
            ],
            closing: Decimal::ZERO,
            format: Format::Mt940,
            closing_line: 0,
        };
        s.recompute_closing();
        s
    }

    fn without_positions(mut s: Statement) -> Statement {
        s.closing_line = 0;
        for l in &mut s.lines {
            l.file_line = 0;
        }
        s
    }

    #[test]
    fn mt940_written_is_read_back_the_same() {
        let s = sample();
        let text = s.to_mt940();
        let back = parse("s.sta", text.as_bytes()).unwrap();
        assert_eq!(back.lines[0].file_line, 5);
        assert_eq!(without_positions(back), s);
        assert_eq!(s.closing, Decimal::from(100_000_000_000i64 - 600_000));
    }

    #[test]
    fn csv_written_is_read_back_the_same() {
        let mut s = sample();
        let back = parse("s.csv", s.to_csv().as_bytes()).unwrap();
        s.format = Format::Csv;
        s.number = String::new();
        assert_eq!(without_positions(back), s);
    }

    #[test]
    fn a_line_without_its_end_to_end_reference_is_refused_with_its_line() {
        let text = sample().to_mt940().replace(
            "/EREF/0b0f4f0e-5a1c-4c4e-9d2b-8a6f3e217c55",
            "/XREF/0b0f4f0e-5a1c-4c4e-9d2b-8a6f3e217c55",
        );
        let e = parse("s.sta", text.as_bytes()).unwrap_err();
        assert_eq!(e.line, 10, "{e}");
        assert!(e.message.contains("/EREF/"), "{e}");
    }

    #[test]
    fn broken_mt940_names_its_line() {
        let text = sample()
            .to_mt940()
            .replace(":60F:C261201IDR", ":60F:X261201IDR");
        let e = parse("s.sta", text.as_bytes()).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
    }
}
