//! Any bytes as an Excel workbook, under small limits: records or an error, never a panic or an
//! allocation past the limits (libFuzzer's -rss_limit_mb catches one).
#![no_main]
use libfuzzer_sys::fuzz_target;
use salur::intake::xlsx::{XlsxLimits, read_xlsx};

fuzz_target!(|data: &[u8]| {
    let limits = XlsxLimits::for_body(1 << 20);
    let mut records = 0usize;
    let _ = read_xlsx("fuzz.xlsx", data.to_vec(), &limits, 1000, &mut |chunk| {
        records += chunk.len();
        true
    });
});
