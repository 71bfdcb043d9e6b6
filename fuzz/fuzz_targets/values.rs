//! Any text as an amount, NIK, KK, date or field value: a value or an error, never a panic; an
//! amount that parses is within the hard maximum (it fits `numeric(18, 2)`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use salur::domain::{AMOUNT_HARD_MAX, Amount, AmountRange, Kk, Nik, check_text, parse_date};

fuzz_target!(|text: &str| {
    if let Ok(a) = Amount::parse(text) {
        assert!(a.value() > rust_decimal::Decimal::ZERO && a.value() <= AMOUNT_HARD_MAX);
        assert_eq!(a.value().normalize().scale().min(2), a.value().normalize().scale());
    }
    let _ = AmountRange::DEFAULT.parse(text);
    if let Ok(nik) = Nik::parse(text) {
        assert_eq!(nik.as_str().len(), 16);
    }
    let _ = Kk::parse(text);
    let _ = parse_date(text);
    let _ = check_text("address", text);
});
