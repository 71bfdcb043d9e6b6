//! Any bytes as a JSON batch: records or an error, never a panic; what passes obeys the text
//! rules.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(b'[');
    bytes.extend_from_slice(data);
    if let Ok(records) = salur::intake::parse_bytes("fuzz.json", &bytes) {
        let keys: Vec<&str> = salur::intake::file::field_keys().collect();
        for r in &records {
            for (key, value) in keys.iter().zip(r.values()) {
                if let Some(v) = value {
                    assert!(salur::domain::check_text(key, v).is_ok(), "{key}: {v:?}");
                }
            }
        }
    }
});
