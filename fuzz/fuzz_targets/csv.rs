//! Any bytes as a CSV batch: intake answers with records or an error, never a panic, and every
//! value it lets through obeys the text rules.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A leading byte that is not `[` or `{` keeps intake on its CSV path.
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(b'n');
    bytes.extend_from_slice(data);
    if let Ok(records) = salur::intake::parse_bytes("fuzz.csv", &bytes) {
        check(&records);
    }
});

fn check(records: &[salur::intake::RawRecord]) {
    let keys: Vec<&str> = salur::intake::file::field_keys().collect();
    for r in records {
        for (key, value) in keys.iter().zip(r.values()) {
            if let Some(v) = value {
                assert!(salur::domain::check_text(key, v).is_ok(), "{key}: {v:?}");
            }
        }
        let _ = salur::domain::validate(r, &salur::domain::AmountRange::DEFAULT);
    }
}
