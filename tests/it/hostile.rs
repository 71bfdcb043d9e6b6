//! Hostile input against the real services: the corpus in `tests/hostile/` (CSV and JSON, with
//! the answer each file gets in `expected.tsv`) and Excel bombs built here, each answered with
//! its problem and nothing stored; slow clients that cannot take the database from other
//! offices; amounts out of range; a fix that could never be paid; a chunk with one record its
//! stage cannot write; spreadsheet formulas in the report; a double recipient's message.

use crate::harness::http::{
    self, CSV_TYPE, Server, XLSX_TYPE, add_office, batches_stored, problem,
};
use crate::harness::{self, TestEnv, valid_record};
use reqwest::{Method, StatusCode};
use salur::bank::sim::SimOptions;
use salur::domain::ReasonCode;
use salur::messages::Stage;
use salur::ops::office::Role;
use salur::ops::remediate::{self, Filter, RemediateError, Scope};
use salur::stages::{Input, process_one, stage_message};
use serde_json::Value;
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One Excel case: a name, the workbook, and the answer: status, problem type, line, row, field.
type XlsxCase = (&'static str, Vec<u8>, u16, &'static str, Option<u64>);

const NS_MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const HEADER: [&str; 13] = salur::demo::generate::CSV_HEADER;
const ROW: [&str; 13] = [
    "5301011203850001",
    "5301010101100003",
    "Yohanes Ndun",
    "Maria Bria",
    "Kupang",
    "12-03-1985",
    "L",
    "Jl. Timor Raya No. 5",
    "53.01.01.2001",
    "081234567890",
    "002",
    "",
    "600000",
];

/// A zip archive of `parts` (name, content), deflated.
fn zip_of(parts: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in parts {
        w.start_file(name, options).unwrap();
        w.write_all(&content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A workbook whose first sheet is `sheet` (the XML inside `<sheetData>`, after `before`), with
/// `extra` parts added.
fn workbook(before: &str, sheet: &str, extra: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut parts = vec![
        (
            "[Content_Types].xml".to_owned(),
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_vec(),
        ),
        (
            "_rels/.rels".to_owned(),
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec(),
        ),
        (
            "xl/workbook.xml".to_owned(),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS_MAIN}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Penerima" sheetId="1" r:id="rId1"/></sheets></workbook>"#).into_bytes(),
        ),
        (
            "xl/_rels/workbook.xml.rels".to_owned(),
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_vec(),
        ),
        (
            "xl/worksheets/sheet1.xml".to_owned(),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS_MAIN}">{before}<sheetData>{sheet}</sheetData></worksheet>"#).into_bytes(),
        ),
    ];
    parts.extend(extra);
    zip_of(parts)
}

fn column(i: usize) -> String {
    let mut n = i + 1;
    let mut name = String::new();
    while n > 0 {
        name.insert(0, (b'A' + ((n - 1) % 26) as u8) as char);
        n = (n - 1) / 26;
    }
    name
}

/// `<row>` of inline-string cells on sheet row `r`.
fn row_xml(r: u32, cells: &[&str]) -> String {
    let mut out = format!(r#"<row r="{r}">"#);
    for (i, c) in cells.iter().enumerate() {
        out.push_str(&format!(
            r#"<c r="{}{r}" t="inlineStr"><is><t>{c}</t></is></c>"#,
            column(i)
        ));
    }
    out.push_str("</row>");
    out
}

fn valid_sheet() -> String {
    row_xml(1, &HEADER) + &row_xml(2, &ROW)
}

fn with_value(field: usize, value: &str) -> String {
    let mut row = ROW;
    row[field] = value;
    row_xml(1, &HEADER) + &row_xml(2, &row)
}

/// The Excel cases, for a server whose `API_XLSX_LIMIT` is 1 MiB: 16 MiB unpacked, 1 MiB of
/// shared strings, 65,536 strings, 262,144 cells; 8 MiB for any other part; 1 MiB tokens.
fn xlsx_cases() -> Vec<XlsxCase> {
    let mut cases: Vec<XlsxCase> = Vec::new();
    let shared = |xml: String| vec![("xl/sharedStrings.xml".to_owned(), xml.into_bytes())];
    cases.push((
        "xlsx-shared-strings-declare-10-billion (2 KB)",
        workbook(
            "",
            &valid_sheet(),
            shared(format!(
                r#"<sst xmlns="{NS_MAIN}" count="1" uniqueCount="10000000000"><si><t>a</t></si></sst>"#
            )),
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-dimension-A1-XFD1048576 (2 KB)",
        workbook(
            r#"<dimension ref="A1:XFD1048576"/>"#,
            &valid_sheet(),
            vec![],
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-cells-at-A1-and-XFD1048576",
        workbook(
            "",
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>nik</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#,
            vec![],
        ),
        422,
        "missing-columns",
        Some(1),
    ));
    cases.push((
        "xlsx-cell-at-M2000000",
        workbook(
            "",
            &(valid_sheet() + r#"<row r="2000000"><c r="M2000000"><v>1</v></c></row>"#),
            vec![],
        ),
        400,
        "malformed-xlsx",
        None,
    ));
    let whitespace = " ".repeat(20 << 20);
    cases.push((
        "xlsx-deflate-bomb-20-MiB-sheet",
        workbook("", &(valid_sheet() + &whitespace), vec![]),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-one-2-MiB-cell",
        workbook("", &with_value(7, &"A".repeat(2 << 20)), vec![]),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-1001-parts",
        zip_of(
            (0..1001)
                .map(|i| (format!("xl/media/p{i}.bin"), vec![0u8; 4]))
                .collect(),
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-9-MiB-styles",
        workbook(
            "",
            &valid_sheet(),
            vec![(
                "xl/styles.xml".to_owned(),
                format!(
                    r#"<styleSheet xmlns="{NS_MAIN}">{}</styleSheet>"#,
                    " ".repeat(9 << 20)
                )
                .into_bytes(),
            )],
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-100000-shared-strings",
        workbook(
            "",
            &valid_sheet(),
            shared(format!(
                r#"<sst xmlns="{NS_MAIN}">{}</sst>"#,
                "<si><t>x</t></si>".repeat(100_000)
            )),
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-300000-cells",
        workbook(
            "",
            &(valid_sheet() + r#"<row r="3">"# + &"<c/>".repeat(300_000) + "</row>"),
            vec![],
        ),
        413,
        "workbook-too-large",
        None,
    ));
    cases.push((
        "xlsx-billion-laughs-doctype",
        zip_of(vec![(
            "xl/worksheets/sheet1.xml".to_owned(),
            br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><worksheet>&lol2;</worksheet>"#.to_vec(),
        )]),
        400,
        "malformed-xlsx",
        None,
    ));
    cases.push((
        "xlsx-comment-in-sheet",
        workbook("<!-- x -->", &valid_sheet(), vec![]),
        400,
        "malformed-xlsx",
        None,
    ));
    cases.push((
        "xlsx-not-a-zip",
        b"PK\x03\x04 this is not a zip archive".to_vec(),
        400,
        "malformed-xlsx",
        None,
    ));
    cases.push(("xlsx-empty-body", Vec::new(), 422, "empty-file", None));
    cases.push((
        "xlsx-csv-body",
        b"nik,no_kk\n1,2\n".to_vec(),
        400,
        "malformed-xlsx",
        None,
    ));
    cases.push((
        "xlsx-control-character-in-name",
        workbook("", &with_value(2, "Yohanes&#x1b;[31m"), vec![]),
        422,
        "invalid-value",
        Some(2),
    ));
    cases.push((
        "xlsx-long-address",
        workbook("", &with_value(7, &"A".repeat(301)), vec![]),
        422,
        "invalid-value",
        Some(2),
    ));
    cases.push((
        "xlsx-header-only",
        workbook("", &row_xml(1, &HEADER), vec![]),
        422,
        "no-data-rows",
        None,
    ));
    cases.push((
        "xlsx-no-header-in-25-rows",
        workbook(
            "",
            &(1..=25)
                .map(|r| row_xml(r, &["Daftar penerima"]))
                .collect::<String>(),
            vec![],
        ),
        422,
        "missing-columns",
        Some(1),
    ));
    cases
}

/// The answer for one upload, as the corpus table shows it.
fn answer(p: &Value) -> String {
    let mut out = format!("{} {}", p["status"], p["type"].as_str().unwrap_or_default());
    for key in ["line", "row", "field"] {
        if !p[key].is_null() {
            out.push_str(&format!(" {key}={}", p[key].to_string().trim_matches('"')));
        }
    }
    out
}

/// Handles, as the account-opening consumer would, every account-opening message waiting in the
/// outbox (no broker needed: the stage is called directly).
async fn open_accounts(env: &TestEnv) {
    let messages: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "DELETE FROM outbox WHERE routing_key = 'account_opening' RETURNING id, payload",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for (_, payload) in messages {
        process_one(
            &env.settings,
            &env.pool,
            Input::Stage(Stage::AccountOpening),
            &payload,
            None,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn every_hostile_file_gets_its_answer_and_nothing_is_stored() {
    // The peak memory asserted below is this process's: run in one of its own.
    if !harness::alone("hostile::every_hostile_file_gets_its_answer_and_nothing_is_stored").await {
        return;
    }
    harness::env()
        .database_only()
        .settings(|s| s.api_xlsx_limit = 1 << 20)
        .run(async |env| {
            let server = env.serve_api().await;
            let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
            let manifest = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
            let mut table = Vec::new();
            let mut listed = std::collections::BTreeSet::new();
            for line in manifest.lines().filter(|l| !l.starts_with('#')) {
                let f: Vec<&str> = line.split('\t').collect();
                let (file, content_type, status, kind) = (f[0], f[1], f[2], f[3]);
                listed.insert(file.to_owned());
                let body = std::fs::read(dir.join(file)).unwrap();
                let status = StatusCode::from_u16(status.parse().unwrap()).unwrap();
                let p = problem(
                    server.submit(&token, content_type, body, None).await,
                    status,
                )
                .await;
                assert_eq!(p["type"], format!("/problems/{kind}"), "{file}: {p}");
                for (key, want) in [("line", f[4]), ("row", f[5]), ("field", f[6])] {
                    let got = p[key].to_string();
                    if !want.is_empty() {
                        assert_eq!(got.trim_matches('"'), want, "{file}: {key} {p}");
                    } else if key != "field" {
                        // No line or row where the corpus says there is none (a field may be named
                        // where the corpus does not ask, e.g. `Content-Type`).
                        assert!(p[key].is_null(), "{file}: {key} {p}");
                    }
                }
                assert_eq!(
                    batches_stored(&env.pool).await,
                    (0, 0),
                    "{file} stored something"
                );
                table.push((file.to_owned(), answer(&p)));
            }
            // Every file in the corpus has its expected answer.
            for entry in std::fs::read_dir(&dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.ends_with(".csv") || name.ends_with(".json") {
                    assert!(listed.contains(&name), "{name} is not in expected.tsv");
                }
            }
            for (name, body, status, kind, line) in xlsx_cases() {
                let size = body.len();
                let p = problem(
                    server.submit(&token, XLSX_TYPE, body, None).await,
                    StatusCode::from_u16(status).unwrap(),
                )
                .await;
                assert_eq!(p["type"], format!("/problems/{kind}"), "{name}: {p}");
                if let Some(line) = line {
                    assert_eq!(p["line"], line, "{name}: {p}");
                }
                if kind == "workbook-too-large" {
                    assert_eq!(p["limit_setting"], "API_XLSX_LIMIT", "{name}: {p}");
                    assert!(p["limit"].as_u64().is_some(), "{name}: {p}");
                }
                assert_eq!(
                    batches_stored(&env.pool).await,
                    (0, 0),
                    "{name} stored something"
                );
                table.push((format!("{name} [{size} bytes]"), answer(&p)));
            }
            assert!(table.len() >= 50, "{} cases", table.len());
            // The process is still up and answers.
            let r = server.get("/v1/batches", &token).await;
            assert_eq!(r.status(), StatusCode::OK);
            // The hard limits held: this process (the API in it) never grew past 512 MiB.
            let peak = http::peak_rss(std::process::id()) / 1024;
            assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
            println!("| case | answer |\n|---|---|");
            for (case, answer) in &table {
                println!("| {case} | {answer} |");
            }
            println!(
                "{} cases; peak RSS of the test process {} MiB",
                table.len(),
                peak / 1024
            );
            server.stop().await;
        })
        .await;
}

/// Sends `head` (and nothing more) on a fresh connection, then reads what the server answers
/// within `wait`: the status line, or `None` when the server closed without answering.
async fn stall(base: &str, head: String) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

async fn answer_of(s: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => return Some("(still waiting)".into()),
        }
    }
    (!got.is_empty()).then(|| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn slow_uploads_of_one_office_leave_the_others_answered_within_a_second() {
    harness::env()
        .database_only()
        .settings(|s| {
            s.api_body_idle_timeout = Duration::from_secs(3);
            s.api_header_timeout = Duration::from_secs(2);
        })
        .run(async |env| {
            let server = env.serve_api().await;
            let slow = add_office(&env.pool, "DINSOS-SLOW", Role::Maker).await;
            let other = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let header = http::csv_of(&[valid_record(1)]);
            let head = |token: &str| {
                format!(
                    concat!(
                        "POST /v1/batches?program=BPNT&period=2026-Q4 HTTP/1.1\r\nhost: x\r\n",
                        "authorization: Bearer {token}\r\ncontent-type: text/csv\r\n",
                        "content-length: 1000000\r\n\r\n{}"
                    ),
                    String::from_utf8_lossy(&header[..40]),
                    token = token
                )
            };
            // 33 uploads that send 40 bytes of a 1 MB body and then nothing.
            let mut stalled = Vec::new();
            for _ in 0..33 {
                stalled.push(stall(&server.base, head(&slow)).await);
            }
            // And a client that never finishes its headers.
            let mut half = stall(
                &server.base,
                "POST /v1/batches HTTP/1.1\r\nhost: x\r\n".into(),
            )
            .await;

            // Another office is answered at once, reads and writes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let started = Instant::now();
            let r = server.get("/v1/batches", &other).await;
            assert_eq!(r.status(), StatusCode::OK);
            let csv = http::csv_of(&[valid_record(2)]);
            let r = server.submit(&other, CSV_TYPE, csv, None).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let took = started.elapsed();
            assert!(took < Duration::from_secs(1), "{took:?}");
            // The database is fine and /readyz says so (whatever it says of the broker).
            let r = server
                .request(Method::GET, "/readyz", None)
                .send()
                .await
                .unwrap();
            let ready: Value = r.json().await.unwrap();
            assert_eq!(ready["database"], "ok", "{ready}");

            // No transaction waits on the slow office.
            let idle: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(idle, 0);

            // The office's uploads beyond its cap were told to come back; the two it may have
            // running end 408 once idle for 3 s, and the half-sent headers are cut at 2 s.
            let mut statuses = std::collections::BTreeMap::new();
            for s in &mut stalled {
                let a = answer_of(s, Duration::from_secs(8))
                    .await
                    .unwrap_or_default();
                let status = a.split(' ').nth(1).unwrap_or("none").to_owned();
                if status == "429" {
                    assert!(a.to_ascii_lowercase().contains("retry-after: 5"), "{a}");
                }
                *statuses.entry(status).or_insert(0) += 1;
            }
            assert_eq!(
                statuses,
                [("408".to_owned(), 2), ("429".to_owned(), 31)].into(),
                "{statuses:?}"
            );
            assert_eq!(answer_of(&mut half, Duration::from_secs(5)).await, None);
            let batches: i64 =
                sqlx::query_scalar("SELECT count(*) FROM batches WHERE office = 'DINSOS-SLOW'")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(batches, 0);
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn amounts_out_of_range_are_blocked_with_their_limit() {
    harness::env().database_only().run(async |env| {
        let server = env.serve_api().await;
        let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
        let amounts = [
            "9999999999999999.99",
            "100000000000000000",
            "1",
            "0.01",
            "10000000.01",
            "600000",
        ];
        let records: Vec<_> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut r = valid_record(i as u32 + 1);
                r.amount = Some((*a).to_owned());
                r
            })
            .collect();
        // The upload is accepted (values are the stages' business), not a 500.
        let r = server
            .submit(&token, CSV_TYPE, http::csv_of(&records), None)
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let batch: uuid::Uuid = r.json::<Value>().await.unwrap()["batch_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        open_accounts(env).await;
        let rows: Vec<(i32, String, Value)> = sqlx::query_as(
            "SELECT row_number, state, reasons FROM records WHERE batch_id = $1 ORDER BY row_number",
        )
        .bind(batch)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let limits = [
            "Rp1.000.000.000.000",
            "Rp1.000.000.000.000",
            "Rp10.000 ",
            "Rp10.000 ",
            "Rp10.000.000 ",
        ];
        for ((row, state, reasons), limit) in rows.iter().zip(limits) {
            assert_eq!(state, "blocked", "row {row}");
            assert_eq!(reasons[0]["code"], "AMOUNT_INVALID", "row {row}");
            let message = reasons[0]["message"].as_str().unwrap();
            assert!(message.contains(limit), "row {row}: {message}");
        }
        // Only the amount in range goes to the bank.
        assert_eq!(rows[5].1, "account_requested");
        let status = salur::ops::batch::status(&env.pool, batch).await.unwrap();
        assert_eq!(status.states["blocked"].records, 5, "{status}");
        assert_eq!(status.reasons.get("AMOUNT_INVALID"), Some(&5), "{status}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_double_recipient_is_told_the_office_holding_the_claim_never_its_record() {
    harness::env()
        .run(async |env| {
            let server = env.serve_api().await;
            let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let other = add_office(&env.pool, "DINSOS-5301", Role::Maker).await;
            let record = [valid_record(1)];
            let r = server
                .submit(&token, CSV_TYPE, http::csv_of(&record), None)
                .await;
            let batch: uuid::Uuid = r.json::<Value>().await.unwrap()["batch_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            env.start_worker();
            env.start_bank(SimOptions::default());
            let status = env.wait(batch).await;
            assert_eq!(status.states["disbursed"].records, 1, "{status}");
            // The same recipient from another office, same programme and period.
            let r = server
                .submit(&other, CSV_TYPE, http::csv_of(&record), None)
                .await;
            let batch2: uuid::Uuid = r.json::<Value>().await.unwrap()["batch_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            env.wait(batch2).await;
            let (state, reasons): (String, Value) =
                sqlx::query_as("SELECT state, reasons FROM records WHERE batch_id = $1")
                    .bind(batch2)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            let paid_id: i64 = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(state, "rejected");
            let message = reasons[0]["message"].as_str().unwrap();
            assert_eq!(reasons[0]["code"], "DOUBLE_RECIPIENT");
            assert!(
                message.contains("BPNT 2026-Q4 by office DINSOS-5371"),
                "{message}"
            );
            assert!(!message.contains(&format!("record {paid_id}")), "{message}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn a_fix_that_could_never_be_paid_is_refused_at_the_fix() {
    harness::env()
        .database_only()
        .run(async |env| {
            let mut r = valid_record(1);
            r.amount = Some("enam ratus ribu".into());
            let batch = env.submit(&[r], "2026-Q4").await;
            open_accounts(env).await;
            let id: i64 = sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let server = env.serve_api().await;
            let token = add_office(&env.pool, "DINSOS-TEST", Role::Maker).await;
            for (field, value, says) in [
                ("amount", "100000000000000000", "Rp1.000.000.000.000"),
                ("amount", "9999999999999999.99", "Rp1.000.000.000.000"),
                ("amount", "1", "Rp10.000 "),
                ("nama_ibu_kandung", "Maria\u{0}Bria", "U+0000"),
                ("address", &"A".repeat(301), "at most 300"),
            ] {
                let r = server
                    .request(Method::PATCH, &format!("/v1/records/{id}"), Some(&token))
                    .json(&serde_json::json!({ field: value }))
                    .send()
                    .await
                    .unwrap();
                let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
                assert_eq!(p["type"], "/problems/invalid-value", "{p}");
                assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
                let (raw, state): (Option<String>, String) =
                    sqlx::query_as("SELECT amount_raw, state FROM records_all WHERE id = $1")
                        .bind(id)
                        .fetch_one(&env.pool)
                        .await
                        .unwrap();
                assert_eq!(
                    (raw.as_deref(), state.as_str()),
                    (Some("enam ratus ribu"), "blocked")
                );
            }
            // The library (CLI) path refuses the same way.
            let err = remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                id,
                &[("amount".into(), "100000000000000000".into())],
            )
            .await
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    RemediateError::InvalidValue {
                        field: "amount",
                        ..
                    }
                ),
                "{err}"
            );
            // A fix in range is taken and the record is ready.
            let out = remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                id,
                &[("amount".into(), "Rp 600.000".into())],
            )
            .await
            .unwrap();
            assert!(out.ready, "{out:?}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn a_record_its_stage_cannot_write_is_parked_and_the_rest_of_its_chunk_goes_on() {
    harness::env().database_only().run(async |env| {
        let records: Vec<_> = (1..=3).map(valid_record).collect();
        let batch = env.submit(&records, "2026-Q4").await;
        // The database refuses to move row 2 on, for a reason that will never pass.
        harness::refuse_updates(
            &env.pool,
            "NEW.row_number = 2 AND NEW.state = 'account_requested'",
        )
        .await;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number")
                .bind(batch)
                .fetch_all(&env.pool)
                .await
                .unwrap();
        let msg = stage_message(&env.settings, Stage::AccountOpening, batch, ids.clone());
        let tally = process_one(
            &env.settings,
            &env.pool,
            Input::Stage(Stage::AccountOpening),
            &msg.payload,
            None,
        )
        .await
        .expect("the chunk is handled, not failed");
        assert_eq!(
            tally.outcome(Stage::AccountOpening, salur::domain::Outcome::Dead),
            1
        );
        let states: Vec<(String, Value)> =
            sqlx::query_as("SELECT state, reasons FROM records WHERE batch_id = $1 ORDER BY row_number")
                .bind(batch)
                .fetch_all(&env.pool)
                .await
                .unwrap();
        assert_eq!(states[0].0, "account_requested");
        assert_eq!(states[2].0, "account_requested");
        assert_eq!(states[1].0, "dead");
        assert_eq!(states[1].1[0]["code"], "RECORD_UNPROCESSABLE");
        let message = states[1].1[0]["message"].as_str().unwrap();
        assert!(message.contains("22003"), "{message}");
        // `dlq list` and `batch status` agree: one parked (dead), two in flight, none stranded.
        let list = remediate::dlq_list(
            &env.pool,
            &Scope::All,
            &Filter {
                batch_id: Some(batch),
                ..Filter::default()
            },
            100,
        )
        .await
        .unwrap();
        let status = salur::ops::batch::status(&env.pool, batch).await.unwrap();
        assert_eq!(list.records.len(), 1);
        assert_eq!(list.records[0].id, ids[1]);
        assert_eq!(list.totals.get("dead"), Some(&1));
        assert_eq!(status.states["dead"].records, 1);
        assert_eq!(status.in_flight, 2);
        assert_eq!(status.reasons.get(ReasonCode::RecordUnprocessable.as_str()), Some(&1));
        // The parked record's message is on its way to salur.dead.
        let parked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE routing_key = 'dead' AND convert_from(payload, 'UTF8')::jsonb->>'record_id' = $1",
        )
        .bind(ids[1].to_string())
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(parked, 1);
    })
    .await;
}

#[tokio::test]
async fn the_report_neutralises_spreadsheet_formulas() {
    harness::env().database_only().run(async |env| {
        let mut formulas = Vec::new();
        for (i, nik) in ["=HYPERLINK(\"http://x\",\"1\")", "+1+1", "-1+1", "@SUM(1)"]
            .iter()
            .enumerate()
        {
            let mut r = valid_record(i as u32 + 1);
            r.nik = Some((*nik).to_owned());
            formulas.push(r);
        }
        let batch = env.submit(&formulas, "2026-Q4").await;
        open_accounts(env).await;
        // What a hostile bank could answer as its reference, stored as a reply handler would.
        sqlx::query(
            "UPDATE records SET bank_reference = CASE row_number WHEN 1 THEN '=1+1' WHEN 2 THEN '@SUM(A1)' ELSE '-2' END
             WHERE batch_id = $1",
        )
        .bind(batch)
        .execute(&env.pool)
        .await
        .unwrap();
        let mut out = Vec::new();
        salur::ops::batch::report(&env.pool, batch, &mut out)
            .await
            .unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let mut rows = 0;
        for record in reader.records() {
            let record = record.unwrap();
            for cell in record.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a formula reached the report: {cell:?}"
                );
            }
            assert!(record[5].starts_with('\''), "{:?}", &record[5]);
            rows += 1;
        }
        assert_eq!(rows, 4);
    })
    .await;
}

#[tokio::test]
async fn readyz_tells_a_full_pool_from_a_database_down() {
    harness::env()
        .database_only()
        .run(async |env| {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&env.settings.database_url)
                .await
                .unwrap();
            let server = Server::start(env.settings.clone(), pool.clone()).await;
            let held = pool.acquire().await.unwrap();
            let r = server
                .request(Method::GET, "/readyz", None)
                .send()
                .await
                .unwrap();
            let p = problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(p["database"], "pool exhausted", "{p}");
            assert!(
                p["detail"].as_str().unwrap().contains("SALUR_DB_POOL"),
                "{p}"
            );
            drop(held);
            let r = server
                .request(Method::GET, "/readyz", None)
                .send()
                .await
                .unwrap();
            let ready: Value = r.json().await.unwrap();
            assert_eq!(ready["database"], "ok", "{ready}");
            server.stop().await;
            pool.close().await;
        })
        .await;
}

/// `salur api`'s peak RSS (VmHWM) while it answers one upload, on a fresh process each time so
/// each figure is that workbook's. A watchdog kills the process if its RSS passes 2 GiB (the
/// machine is shared): the case then reads "killed".
async fn api_peak_for(
    env: &TestEnv,
    token: &str,
    name: &str,
    body: Vec<u8>,
    unpacked: usize,
) -> (Option<StatusCode>, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (mut child, base) = env.spawn_api().await;
    let pid = child.id();
    let idle = http::peak_rss(pid);
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return;
                };
                let rss_kib: u64 = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    .unwrap_or(0);
                if rss_kib > 2 << 20 {
                    killed.store(true, Ordering::Relaxed);
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let size = body.len();
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("{base}/v1/batches?program=BPNT&period=2026-Q4"))
        .bearer_auth(token)
        .header("content-type", XLSX_TYPE)
        .body(body)
        .timeout(Duration::from_secs(900))
        .send()
        .await;
    let (status, kind) = match answer {
        Ok(r) => {
            let status = r.status();
            let p: Value = r.json().await.unwrap_or_default();
            (
                Some(status),
                p["type"].as_str().unwrap_or_default().to_owned(),
            )
        }
        Err(e) => (None, format!("no answer: {e}")),
    };
    let peak = if killed.load(Ordering::Relaxed) {
        u64::MAX
    } else {
        http::peak_rss(pid)
    };
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| {name} | {size} | {:.1} MiB | {} {kind} | {:.1} s | {:.1} MiB | {} |",
        mib(unpacked as u64),
        status.map_or("-".to_owned(), |s| s.as_u16().to_string()),
        started.elapsed().as_secs_f64(),
        mib(idle),
        if peak == u64::MAX {
            "killed above 2 GiB".to_owned()
        } else {
            format!("{:.1} MiB", mib(peak))
        },
    );
    (status, peak)
}

/// `<sst>` of `strings` shared strings, declaring `unique_count`.
fn shared_strings(unique_count: usize, strings: impl Iterator<Item = String>) -> String {
    let mut out = format!(r#"<sst xmlns="{NS_MAIN}" uniqueCount="{unique_count}">"#);
    for s in strings {
        out.push_str("<si><t>");
        out.push_str(&s);
        out.push_str("</t></si>");
    }
    out.push_str("</sst>");
    out
}

/// A `styles.xml` of `formats` cell formats, each with a font named by `font_name` and a
/// number format of code `code` (the reader copies both into every format).
fn styles(formats: usize, font_name: &str, code: &str) -> String {
    let mut out = format!(
        r#"<styleSheet xmlns="{NS_MAIN}"><numFmts count="1"><numFmt numFmtId="164" formatCode="{code}"/></numFmts><fonts count="1"><font><sz val="11"/><name val="{font_name}"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellXfs count="{formats}">"#
    );
    for _ in 0..formats {
        out.push_str(r#"<xf numFmtId="164" fontId="0" fillId="0" borderId="0"></xf>"#);
    }
    out.push_str("</cellXfs></styleSheet>");
    out
}

/// A sheet row `r` holding the valid record in A..M, then the cells N..XFD (16,371, with no
/// `r`, so each takes the next column) all showing shared string 0.
fn wide_row(r: u32, first: &[&str]) -> String {
    let mut out = row_xml(r, first);
    out.truncate(out.len() - "</row>".len());
    out.push_str(&r#"<c t="s"><v>0</v></c>"#.repeat(16_384 - first.len()));
    out.push_str("</row>");
    out
}

/// `scripts/xlsx_memory.sh` (release build): the real `salur api` binary with the default limits
/// (`API_XLSX_LIMIT` 64 MiB) takes Excel bombs, then the worst workbooks it accepts, each on a
/// fresh process: every limit of [`salur::intake::xlsx::XlsxLimits`] reached in turn (the most
/// shared strings, a sheet as wide as Excel's with one 1 MiB string in every cell, a sheet that
/// inflates to 1 GiB, the most cell formats), then all at once. Prints a table of the process's
/// peak RSS (VmHWM) per workbook, and fails above the stated bound of 512 MiB.
#[tokio::test]
#[ignore = "builds workbooks of up to 1 GiB unpacked: run by scripts/xlsx_memory.sh in a release build"]
async fn excel_memory_of_salur_api() {
    harness::env()
        .database_only()
        .time_limit(None)
        .run(async |env| {
            let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            // The spawned `salur api` has no API_XLSX_LIMIT set: the default 64 MiB.
            let limits = salur::intake::xlsx::XlsxLimits::for_body(64 << 20);
            let one_mib_string = "A".repeat((1 << 20) - 100);
            println!("| workbook | bytes | unpacked | answer | time | idle RSS | peak RSS |");
            println!("|---|---|---|---|---|---|---|");
            let mut peaks = Vec::new();

            // Refused: a deflate bomb past the 1 GiB total, a declared 10 billion strings, a declared
            // 17-billion-cell dimension, 310 million elements nested in one another (the XML reader
            // keeps every open element's name: 2.8 GB), one cell's rich text of 900 runs of 1 MB
            // (each run under the token limit, 0.84 GiB joined), and 7,000 formats each copying a
            // 1 MiB font name (7 GiB).
            // Each sheet is dropped once its workbook is built: the test process holds one at a time.
            let sheet_workbook = |sheet: String| {
                let unpacked = sheet.len();
                (workbook("", &sheet, vec![]), unpacked)
            };
            let (bomb, bomb_len) = sheet_workbook(valid_sheet() + &" ".repeat(1100 << 20));
            let (nested, nested_len) = sheet_workbook(valid_sheet() + &"<x>".repeat(310_000_000));
            let run = format!("<r><t>{}</t></r>", "a".repeat(1_000_000));
            let (rich, rich_len) = sheet_workbook(
                row_xml(1, &HEADER)
                    + r#"<row r="2"><c r="A2" t="inlineStr"><is>"#
                    + &run.repeat(900)
                    + "</is></c></row>",
            );
            let refused = [
                ("deflate bomb (1.1 GiB of sheet XML)", bomb, bomb_len),
                (
                    "uniqueCount 10 billion",
                    workbook(
                        "",
                        &valid_sheet(),
                        vec![(
                            "xl/sharedStrings.xml".to_owned(),
                            shared_strings(10_000_000_000, ["a".to_owned()].into_iter())
                                .into_bytes(),
                        )],
                    ),
                    0,
                ),
                (
                    "dimension A1:XFD1048576",
                    workbook(
                        r#"<dimension ref="A1:XFD1048576"/>"#,
                        &valid_sheet(),
                        vec![],
                    ),
                    0,
                ),
                ("310 million nested elements (0.87 GiB)", nested, nested_len),
                (
                    "one inline string of 900 runs of 1 MB (the reader joins them)",
                    rich,
                    rich_len,
                ),
                (
                    "7,000 formats copying a 1 MiB font name",
                    workbook(
                        "",
                        &valid_sheet(),
                        vec![(
                            "xl/styles.xml".to_owned(),
                            styles(7_000, &one_mib_string, "0").into_bytes(),
                        )],
                    ),
                    8 << 20,
                ),
            ];
            // Every case runs before anything is asserted, so one run gives the whole table.
            let mut wrong = Vec::new();
            for (name, body, unpacked) in refused {
                let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
                if !status.is_some_and(|s| s.is_client_error()) {
                    wrong.push(format!("{name}: {status:?}, expected a 4xx"));
                }
                peaks.push((name.to_owned(), peak));
            }

            // Accepted 1: 180,000 records whose 13 cells each show a distinct 12-digit shared string
            // (2.34 million strings, 65.5 MB of `<si>`, just under the 64 MiB part limit).
            let rows = 180_000usize;
            let strings = shared_strings(rows * 13, (0..rows * 13).map(|i| format!("{i:012}")));
            assert!(
                strings.len() as u64 <= limits.shared_strings_part,
                "{}",
                strings.len()
            );
            let mut sheet = row_xml(1, &HEADER);
            for r in 0..rows {
                sheet.push_str(&format!(r#"<row r="{}">"#, r + 2));
                for c in 0..13 {
                    sheet.push_str(&format!(
                        r#"<c r="{}{}" t="s"><v>{}</v></c>"#,
                        column(c),
                        r + 2,
                        r * 13 + c
                    ));
                }
                sheet.push_str("</row>");
            }
            let unpacked = strings.len() + sheet.len();
            let body = workbook(
                "",
                &sheet,
                vec![("xl/sharedStrings.xml".to_owned(), strings.into_bytes())],
            );
            drop(sheet);
            let name = "2.34 M distinct shared strings, 180,000 records";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            // Accepted 1b: the most shared strings the limits let through: 3.94 million one-letter
            // strings (67 MB, just under the part limit; the string limit is 4,194,304), declared as
            // 4,194,304 (`uniqueCount` at its limit: the reader reserves that many).
            let strings = shared_strings(
                limits.strings as usize,
                std::iter::repeat_n("a".to_owned(), 3_940_000),
            );
            assert!(
                strings.len() as u64 <= limits.shared_strings_part,
                "{}",
                strings.len()
            );
            let unpacked = strings.len();
            let body = workbook(
                "",
                &valid_sheet(),
                vec![("xl/sharedStrings.xml".to_owned(), strings.into_bytes())],
            );
            let name = "3.94 M one-letter shared strings, uniqueCount 4,194,304";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            // Accepted 2: as wide as Excel goes. One shared string of 1 MiB; the header row and 1,000
            // records each fill A..M and then show that string in every cell up to XFD: 16.4 million
            // cells (the cell limit is 16,777,216), 16 GiB of text if every cell were copied.
            let strings = shared_strings(1, std::iter::once(one_mib_string.clone()));
            let mut sheet = wide_row(1, &HEADER);
            for r in 0..1_000 {
                sheet.push_str(&wide_row(r + 2, &ROW));
            }
            let unpacked = strings.len() + sheet.len();
            let body = workbook(
                "",
                &sheet,
                vec![("xl/sharedStrings.xml".to_owned(), strings.into_bytes())],
            );
            drop(sheet);
            let name = "16,384 columns × 1,001 rows, every extra cell one 1 MiB shared string";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            // Accepted 3: deep inflation. 1,000 records, each followed by 1,000,000 spaces (one token
            // each, under 1 MiB): the sheet inflates to 0.93 GiB, under the 1 GiB total.
            let pad = " ".repeat(1_000_000);
            let mut sheet = row_xml(1, &HEADER);
            for r in 0..1_000u32 {
                sheet.push_str(&row_xml(r + 2, &ROW));
                sheet.push_str(&pad);
            }
            let unpacked = sheet.len();
            let body = workbook("", &sheet, vec![]);
            drop(sheet);
            let name = "sheet inflating to 0.93 GiB (1,000 records, 1 MB of spaces after each)";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            // Accepted 4: the most cell-format copies: 64,000 formats (the limit) whose font name and
            // number-format code are as long as `format_copies` lets the longest token be.
            let token_len = (limits.format_copies / limits.formats) as usize;
            let code = "0".repeat(token_len - 50);
            let font = "F".repeat(token_len - 20);
            let style_xml = styles(limits.formats as usize, &font, &code);
            let unpacked = style_xml.len();
            let body = workbook(
                "",
                &valid_sheet(),
                vec![("xl/styles.xml".to_owned(), style_xml.into_bytes())],
            );
            let name = "64,000 cell formats, each copying a 242-byte font name and a 212-byte code";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            // Accepted 5: all of it in one workbook: the 3.9 M shared strings (one of them 1 MiB), the
            // 64,000 formats, 500 records 16,384 cells wide, each followed by 1 MB of spaces.
            let strings = shared_strings(
                limits.strings as usize,
                std::iter::once(one_mib_string.clone())
                    .chain(std::iter::repeat_n("a".to_owned(), 3_880_000)),
            );
            assert!(
                strings.len() as u64 <= limits.shared_strings_part,
                "{}",
                strings.len()
            );
            let style_xml = styles(limits.formats as usize, &font, &code);
            let mut sheet = wide_row(1, &HEADER);
            for r in 0..500 {
                sheet.push_str(&wide_row(r + 2, &ROW));
                sheet.push_str(&pad);
            }
            let unpacked = strings.len() + style_xml.len() + sheet.len();
            let body = workbook(
                "",
                &sheet,
                vec![
                    ("xl/sharedStrings.xml".to_owned(), strings.into_bytes()),
                    ("xl/styles.xml".to_owned(), style_xml.into_bytes()),
                ],
            );
            drop(sheet);
            let name =
                "all at once: 3.88 M strings, 64,000 formats, 501 wide rows, 0.5 GB of spaces";
            let (status, peak) = api_peak_for(env, &token, name, body, unpacked).await;
            if status != Some(StatusCode::ACCEPTED) {
                wrong.push(format!("{name}: {status:?}, expected 202"));
            }
            peaks.push((name.to_owned(), peak));

            for (name, peak) in &peaks {
                if *peak >= 512 * 1024 * 1024 {
                    wrong.push(format!("{name}: peak RSS over 512 MiB"));
                }
            }
            assert!(wrong.is_empty(), "{wrong:#?}");
        })
        .await;
}
