//! A programme's amounts: what it pays one recipient (BPNT: Rp600.000 a quarter; PKH: one
//! amount per component). A record whose amount is not one of them is blocked with
//! `AMOUNT_NOT_ALLOWED`, and a correction that sets such an amount is refused.

use super::{Amount, AmountRange, RawRecord, Reason, ReasonCode, Recipient, rupiah, validate};
use rust_decimal::Decimal;

/// The amounts a programme pays: at least one, each a valid [`Amount`], sorted, no repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedAmounts(Vec<Decimal>);

impl AllowedAmounts {
    /// From a list as people write it: `200000,600000` (each as offices write amounts, so
    /// `600.000` and `Rp600.000` are Rp600.000; a comma separates the amounts).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut values = Vec::new();
        for part in list.split([',', ';']) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let amount = Amount::parse(part)
                .map_err(|e| format!("the amount {part:?} is not valid: {e}"))?;
            values.push(amount.value());
        }
        Self::from_values(values)
    }

    /// From stored values.
    pub fn from_values(mut values: Vec<Decimal>) -> Result<Self, String> {
        if values.is_empty() {
            return Err(
                "give the amounts the programme pays one recipient, e.g. --amounts 200000,600000"
                    .into(),
            );
        }
        for v in &values {
            Amount::try_from(*v).map_err(|e| format!("the amount {v} is not valid: {e}"))?;
        }
        values.iter_mut().for_each(|v| *v = v.normalize());
        values.sort();
        values.dedup();
        Ok(Self(values))
    }

    pub fn values(&self) -> &[Decimal] {
        &self.0
    }

    pub fn allows(&self, amount: Decimal) -> bool {
        self.0.contains(&amount.normalize())
    }

    /// `Rp200.000 or Rp600.000`.
    pub fn describe(&self) -> String {
        let all: Vec<String> = self.0.iter().map(|v| rupiah(*v)).collect();
        match all.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => all.join(""),
        }
    }

    /// Why an amount is refused for programme `program`.
    pub fn message(&self, program: &str) -> String {
        format!(
            "Amount is not one that programme {program} pays: write {} (the programme's amounts are in `salur programme list`)",
            self.describe()
        )
    }

    /// The reason a record is blocked with when its amount is not one of these.
    pub fn reason(&self, program: &str) -> Reason {
        Reason::new(
            ReasonCode::AmountNotAllowed,
            "amount",
            self.message(program),
        )
    }
}

/// [`validate`], and the amount checked against the programme's amounts when they are known
/// (`None`: a record whose programme has none on file, checked against `range` only).
pub fn validate_for(
    raw: &RawRecord,
    range: &AmountRange,
    programme: Option<(&str, &AllowedAmounts)>,
) -> Result<Recipient, Vec<Reason>> {
    let result = validate(raw, range);
    let Some((program, allowed)) = programme else {
        return result;
    };
    match result {
        Ok(recipient) if allowed.allows(recipient.amount.value()) => Ok(recipient),
        Ok(_) => Err(vec![allowed.reason(program)]),
        Err(mut reasons) => {
            let parsed = raw.amount.as_deref().and_then(|a| range.parse(a).ok());
            if let Some(amount) = parsed
                && !allowed.allows(amount.value())
            {
                reasons.push(allowed.reason(program));
            }
            Err(reasons)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_offices_write_them() {
        let a = AllowedAmounts::parse("600.000, 200000,Rp600.000").unwrap();
        assert_eq!(
            a.values(),
            &[Decimal::from(200_000), Decimal::from(600_000)]
        );
        assert!(a.allows(Decimal::new(60_000_000, 2)));
        assert!(!a.allows(Decimal::from(50_000_000)));
        assert_eq!(a.describe(), "Rp200.000 or Rp600.000");
        assert!(AllowedAmounts::parse("").is_err());
        assert!(AllowedAmounts::parse("600000,lots").is_err());
        assert!(AllowedAmounts::parse("-5").is_err());
    }

    #[test]
    fn a_record_outside_its_programme_is_blocked_with_the_allowed_amounts() {
        let allowed = AllowedAmounts::parse("600000").unwrap();
        let mut raw = RawRecord {
            row: 1,
            nik: Some("5371014508800001".into()),
            kk: Some("5371010101200001".into()),
            name: Some("Maria Ndolu".into()),
            mother_name: Some("Yohana Bili".into()),
            birth_place: Some("Kupang".into()),
            birth_date: Some("1980-08-05".into()),
            sex: Some("P".into()),
            address: Some("Jl. El Tari 5".into()),
            region_code: Some("53.71.01.1001".into()),
            phone: None,
            bank_code: Some("002".into()),
            account_number: None,
            amount: Some("Rp600.000".into()),
        };
        let range = AmountRange::WIDEST;
        assert!(validate_for(&raw, &range, Some(("BPNT", &allowed))).is_ok());
        raw.amount = Some("50000000".into());
        let reasons = validate_for(&raw, &range, Some(("BPNT", &allowed))).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].code, ReasonCode::AmountNotAllowed);
        assert_eq!(reasons[0].field, "amount");
        assert!(
            reasons[0].message.contains("Rp600.000"),
            "{}",
            reasons[0].message
        );
        assert!(validate_for(&raw, &range, None).is_ok());
        // With another problem, both are reported.
        raw.mother_name = None;
        let reasons = validate_for(&raw, &range, Some(("BPNT", &allowed))).unwrap_err();
        assert!(
            reasons
                .iter()
                .any(|r| r.code == ReasonCode::AmountNotAllowed)
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.code == ReasonCode::MotherNameMissing)
        );
    }
}
