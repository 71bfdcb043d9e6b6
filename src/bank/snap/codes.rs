//! SNAP BI response codes, and what each means for salur: **the one table** the gateway reads
//! (SNAP answer → ok / rejected with a bank refusal code / transient / ambiguous) and bank-sim
//! reads backwards (refusal code → SNAP answer).
//!
//! A SNAP `responseCode` is seven digits: HTTP status (3) + service code (2) + case code (2),
//! e.g. `4031709` = 403, service 17 (transfer intrabank), case 09 (dormant account). The case
//! means the same for every service, so the table is keyed by HTTP status and case.
//!
//! - **ok**: done (account found, transfer settled).
//! - **rejected**: refused for good, with one of the bank refusal codes of the contract
//!   (`ACCOUNT_NOT_FOUND`, `ACCOUNT_DORMANT`, …), answered to salur as `rejected`.
//! - **transient**: not done; salur asks again later (`error`). Also for faults of the gateway's
//!   own configuration (signature, partner id): the recipient is not at fault, the operator is
//!   told in the log.
//! - **ambiguous**: the bank may or may not have carried it out. For a transfer the gateway asks
//!   the transfer status before anything else, and never sends it again before the status says
//!   it was not made; for an inquiry (no money moves) it is transient.
//! - **renew token**: the access token is unknown or expired: fetch a new one and call again
//!   (a request refused at the door was not carried out).
//! - **not found**: a status inquiry found no such transfer: it may be sent.

/// What a SNAP answer means for salur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused for good, with the bank refusal code salur receives.
    Rejected(&'static str),
    Transient,
    Ambiguous,
    RenewToken,
    NotFound,
}

/// One row of the table: HTTP status, case code, SNAP's message, and the outcome.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    pub http: u16,
    pub case: u8,
    pub message: &'static str,
    pub outcome: Outcome,
}

const fn row(http: u16, case: u8, message: &'static str, outcome: Outcome) -> Code {
    Code {
        http,
        case,
        message,
        outcome,
    }
}

use Outcome::*;

/// The table (README "SNAP BI gateway" prints it). Codes not in it: any other 2xx or 5xx is
/// ambiguous, any other 4xx transient (see [`classify`]).
pub const TABLE: &[Code] = &[
    row(200, 0, "Successful", Ok),
    row(202, 0, "Request In Progress", Ambiguous),
    row(400, 0, "Bad Request", Transient),
    row(400, 1, "Invalid Field Format", Transient),
    row(400, 2, "Invalid Mandatory Field", Transient),
    row(401, 0, "Unauthorized", Transient),
    row(401, 1, "Invalid Token (B2B)", RenewToken),
    row(401, 3, "Token Not Found (B2B)", RenewToken),
    row(403, 1, "Feature Not Allowed", Transient),
    row(
        403,
        2,
        "Exceeds Transaction Amount Limit",
        Rejected("AMOUNT_LIMIT_EXCEEDED"),
    ),
    row(403, 3, "Suspected Fraud", Rejected("TRANSFER_REFUSED")),
    row(403, 4, "Activity Count Limit Exceeded", Transient),
    row(403, 5, "Do Not Honor", Rejected("TRANSFER_REFUSED")),
    row(403, 6, "Feature Not Allowed At This Time", Transient),
    row(403, 7, "Card Blocked", Rejected("ACCOUNT_BLOCKED")),
    row(403, 9, "Dormant Account", Rejected("ACCOUNT_DORMANT")),
    row(403, 14, "Insufficient Funds", Transient),
    row(
        403,
        15,
        "Transaction Not Permitted",
        Rejected("TRANSFER_REFUSED"),
    ),
    row(403, 16, "Suspend Transaction", Rejected("ACCOUNT_BLOCKED")),
    row(
        403,
        18,
        "Inactive Card/Account/Customer",
        Rejected("ACCOUNT_CLOSED"),
    ),
    row(
        403,
        23,
        "Account Limit Exceed",
        Rejected("AMOUNT_LIMIT_EXCEEDED"),
    ),
    row(404, 1, "Transaction Not Found", NotFound),
    row(
        404,
        11,
        "Invalid Card/Account/Customer",
        Rejected("ACCOUNT_NOT_FOUND"),
    ),
    row(404, 13, "Invalid Amount", Rejected("TRANSFER_REFUSED")),
    row(409, 0, "Conflict", Ambiguous),
    row(409, 1, "Duplicate partnerReferenceNo", Ambiguous),
    row(429, 0, "Too Many Requests", Transient),
    row(500, 0, "General Error", Ambiguous),
    row(500, 1, "Internal Server Error", Ambiguous),
    row(500, 2, "External Server Error", Ambiguous),
    row(504, 0, "Timeout", Ambiguous),
];

/// The outcome of an answer: its HTTP status and `responseCode` (which, when it is well
/// formed, decides; a body without one is judged by the HTTP status alone).
pub fn classify(http: u16, response_code: Option<&str>) -> (Outcome, Option<Code>) {
    let parsed = response_code.and_then(parse);
    let (status, case) = match parsed {
        Some((status, _, case)) => (status, Some(case)),
        None => (http, None),
    };
    if let Some(case) = case
        && let Some(code) = TABLE.iter().find(|c| c.http == status && c.case == case)
    {
        return (code.outcome, Some(*code));
    }
    let outcome = match status {
        400..=499 => Transient,
        _ => Ambiguous,
    };
    (outcome, None)
}

/// `4031709` → `(403, 17, 9)`.
pub fn parse(code: &str) -> Option<(u16, u8, u8)> {
    if code.len() != 7 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        code[..3].parse().ok()?,
        code[3..5].parse().ok()?,
        code[5..].parse().ok()?,
    ))
}

/// `(403, 17, 9)` → `4031709`.
pub fn format(http: u16, service: u8, case: u8) -> String {
    format!("{http:03}{service:02}{case:02}")
}

/// The SNAP answer a bank gives for one of the contract's refusal codes (bank-sim uses it):
/// the first row of the table with that outcome; a code SNAP has no case for is "Do Not
/// Honor".
pub fn for_refusal(bank_code: &str) -> Code {
    TABLE
        .iter()
        .find(|c| matches!(c.outcome, Rejected(code) if code == bank_code))
        .copied()
        .unwrap_or(TABLE[12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_classify() {
        assert_eq!(parse("4031709"), Some((403, 17, 9)));
        assert_eq!(parse("403170"), None);
        assert_eq!(classify(200, Some("2001700")).0, Ok);
        assert_eq!(
            classify(403, Some("4031709")).0,
            Rejected("ACCOUNT_DORMANT")
        );
        assert_eq!(
            classify(404, Some("4041511")).0,
            Rejected("ACCOUNT_NOT_FOUND")
        );
        assert_eq!(classify(404, Some("4043601")).0, NotFound);
        assert_eq!(classify(401, Some("4011701")).0, RenewToken);
        assert_eq!(classify(409, Some("4091701")).0, Ambiguous);
        assert_eq!(classify(504, Some("5041700")).0, Ambiguous);
        // Unknown cases fall back on the HTTP class; a body without a code on the status.
        assert_eq!(classify(403, Some("4031799")).0, Transient);
        assert_eq!(classify(502, None).0, Ambiguous);
        assert_eq!(classify(200, Some("garbage")).0, Ambiguous);
        assert_eq!(format(403, 17, 9), "4031709");
    }

    #[test]
    fn every_refusal_code_has_a_snap_answer_that_maps_back() {
        assert_eq!(TABLE[12].message, "Do Not Honor");
        for code in [
            "ACCOUNT_NOT_FOUND",
            "ACCOUNT_CLOSED",
            "ACCOUNT_DORMANT",
            "ACCOUNT_BLOCKED",
            "AMOUNT_LIMIT_EXCEEDED",
            "TRANSFER_REFUSED",
        ] {
            let c = for_refusal(code);
            let (outcome, _) = classify(c.http, Some(&format(c.http, 17, c.case)));
            assert_eq!(outcome, Rejected(code), "{code}");
        }
    }
}
