#!/usr/bin/env bash
# A million-row CSV streamed to the real `salur api` binary (release build), against the real
# services: prints the upload's duration and the API process's peak RSS (VmHWM), and fails if
# the peak is not well below the file's size (100 MiB, two thirds of it). SALUR_LARGE_ROWS=N changes the row count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --release --locked --test it -- --ignored --nocapture api::a_million_row_upload_keeps_memory_flat
