//! Programmes, budgets, people and roles (issue 13): a batch for an unknown programme is
//! refused whole; an amount the programme does not pay is blocked `AMOUNT_NOT_ALLOWED` and
//! cannot be put back by a fix; each role does only its own work; every audit row a person
//! causes names them; a budget's figures follow a paid batch.

use crate::harness::http::{CSV_TYPE, XLSX_TYPE, add_office, batches_stored, csv_of, problem};
use crate::harness::{self, TestEnv, valid_record};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use salur::messages::Stage;
use salur::ops::office::{self, NewToken, Role};
use salur::ops::remediate::{self, RemediateError, Scope};
use salur::stages::{Input, process_one};
use serde_json::{Value, json};

/// `(record, detail's action, to_state, actor_person, actor_token)`.
type AuditRow = (i64, Option<String>, String, Option<String>, Option<String>);

/// Runs account opening on what the outbox holds for it (no broker: database-only tests).
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

/// A token of `office` for `person` with `role`, labelled `label`.
async fn token_for(env: &TestEnv, office: &str, role: Role, person: &str, label: &str) -> String {
    office::issue(
        &env.pool,
        office,
        &NewToken {
            role,
            person: Some(person.into()),
            label: Some(label.into()),
        },
    )
    .await
    .unwrap()
}

fn xlsx_of(records: &[salur::intake::RawRecord]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let keys = salur::intake::RawRecord::KEYS;
    for (c, k) in keys.iter().enumerate() {
        sheet.write_string(0, c as u16, *k).unwrap();
    }
    for (i, r) in records.iter().enumerate() {
        for (c, v) in r.values().into_iter().enumerate() {
            if let Some(v) = v {
                sheet.write_string(1 + i as u32, c as u16, v).unwrap();
            }
        }
    }
    book.save_to_buffer().unwrap()
}

fn json_of(records: &[salur::intake::RawRecord]) -> Vec<u8> {
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            for (k, v) in salur::intake::RawRecord::KEYS.iter().zip(r.values()) {
                if let Some(v) = v {
                    o.insert((*k).to_owned(), json!(v));
                }
            }
            Value::Object(o)
        })
        .collect();
    serde_json::to_vec(&rows).unwrap()
}

#[tokio::test]
async fn a_batch_for_an_unknown_programme_is_refused_with_the_known_ones_and_nothing_stored() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let records = [valid_record(1), valid_record(2)];
            for (media, body) in [
                (CSV_TYPE, csv_of(&records)),
                ("application/json", json_of(&records)),
                (XLSX_TYPE, xlsx_of(&records)),
            ] {
                let r = server
                    .request(
                        Method::POST,
                        "/v1/batches?program=BLT&period=2026-Q4",
                        Some(&token),
                    )
                    .header("content-type", media)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
                assert_eq!(p["type"], "/problems/unknown-programme", "{media}: {p}");
                assert_eq!(p["field"], "program");
                assert_eq!(p["known_programmes"], json!(["BPNT", "PKH"]), "{media}");
            }
            // The same file for a known programme is taken: the refusal was the programme's.
            let ok = server
                .submit(&token, "application/json", json_of(&records), None)
                .await;
            assert_eq!(ok.status(), StatusCode::ACCEPTED);
            assert_eq!(batches_stored(&env.pool).await, (1, 2));

            // The command line: exit 65 (EX_DATAERR), the known programmes named.
            let file = env.temp_path("blt.csv");
            std::fs::write(&file, csv_of(&records)).unwrap();
            let out = env
                .salur(&[
                    "submit",
                    file.to_str().unwrap(),
                    "--office",
                    "DINSOS-5371",
                    "--program",
                    "BLT",
                    "--period",
                    "2026-Q4",
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(65), "{stderr}");
            assert!(stderr.contains("\"BLT\" is not known"), "{stderr}");
            assert!(stderr.contains("BPNT, PKH"), "{stderr}");
            // And through the library, as the API and demo use it.
            let err = salur::ops::submit::submit_records(
                &env.settings,
                &env.pool,
                "blt.csv",
                &records,
                &salur::ops::submit::BatchInfo {
                    office: "DINSOS-5371".into(),
                    program: "BLT".into(),
                    period: "2026-Q4".into(),
                    submitted_by: None,
                },
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&err, salur::ops::submit::SubmitError::UnknownProgramme { known, .. } if known == &["BPNT", "PKH"]),
                "{err}"
            );
            assert_eq!(batches_stored(&env.pool).await, (1, 2), "nothing more stored");

            // Once an admin adds it, the same batch is taken.
            let added = env
                .salur(&[
                    "programme",
                    "add",
                    "BLT",
                    "--name",
                    "Bantuan Langsung Tunai",
                    "--amounts",
                    "300000,600.000",
                    "--json",
                ])
                .output()
                .unwrap();
            assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
            let p: Value = serde_json::from_slice(&added.stdout).unwrap();
            assert_eq!(p["amounts"], json!(["300000.00", "600000.00"]));
            assert_eq!(p["approval_required"], true, "approval is required by default");
            let list = env.salur(&["programme", "list", "--json"]).output().unwrap();
            let list: Value = serde_json::from_slice(&list.stdout).unwrap();
            let codes: Vec<&str> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap())
                .collect();
            assert_eq!(codes, ["BLT", "BPNT", "PKH"]);
            let out = env
                .salur(&[
                    "submit",
                    file.to_str().unwrap(),
                    "--office",
                    "DINSOS-5371",
                    "--program",
                    "BLT",
                    "--period",
                    "2026-Q4",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(batches_stored(&env.pool).await, (2, 4));
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn an_amount_the_programme_does_not_pay_is_blocked_and_no_fix_can_set_one() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            let token = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            // The dishonest clerk: an inflated amount, and a record missing its mother's name
            // to be "fixed" with one.
            let mut inflated = valid_record(1);
            inflated.amount = Some("Rp5.000.000".into());
            let mut incomplete = valid_record(2);
            incomplete.mother_name = None;
            let r = server
                .submit(
                    &token,
                    CSV_TYPE,
                    csv_of(&[inflated, incomplete, valid_record(3)]),
                    None,
                )
                .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let batch: uuid::Uuid = r.json::<Value>().await.unwrap()["batch_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            open_accounts(env).await;
            let rows: Vec<(i64, String, Value)> = sqlx::query_as(
                "SELECT id, state, reasons FROM records WHERE batch_id = $1 ORDER BY row_number",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(rows[0].1, "blocked");
            assert_eq!(rows[0].2.as_array().unwrap().len(), 1, "{}", rows[0].2);
            let reason = &rows[0].2[0];
            assert_eq!(reason["code"], "AMOUNT_NOT_ALLOWED");
            assert_eq!(reason["field"], "amount");
            assert!(
                reason["message"].as_str().unwrap().contains("Rp600.000"),
                "{reason}"
            );
            assert_eq!(rows[1].1, "blocked");
            assert_eq!(rows[1].2[0]["code"], "MOTHER_NAME_MISSING");
            assert_eq!(rows[2].1, "account_requested", "the allowed amount goes on");
            let status = salur::ops::batch::status(&env.pool, batch).await.unwrap();
            assert_eq!(
                status.reasons.get("AMOUNT_NOT_ALLOWED"),
                Some(&1),
                "{status}"
            );

            // A fix that sets an amount the programme does not pay is refused: over the API,
            let (inflated_id, incomplete_id) = (rows[0].0, rows[1].0);
            let r = server
                .request(
                    Method::PATCH,
                    &format!("/v1/records/{incomplete_id}"),
                    Some(&token),
                )
                .json(&json!({"mother_name": "Yohana Bili", "amount": "1000000"}))
                .send()
                .await
                .unwrap();
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(p["field"], "amount", "{p}");
            assert!(p["detail"].as_str().unwrap().contains("Rp600.000"), "{p}");
            // by the library (the CLI's `records fix`),
            let err = remediate::fix(
                &env.settings,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                incomplete_id,
                &[
                    ("mother_name".into(), "Yohana Bili".into()),
                    ("nominal".into(), "Rp 1.000.000,00".into()),
                ],
            )
            .await
            .unwrap_err();
            assert!(
                matches!(
                    &err,
                    RemediateError::InvalidValue {
                        field: "amount",
                        ..
                    }
                ),
                "{err}"
            );
            // by `salur records fix` (exit 65, the data is wrong),
            let out = env
                .salur(&[
                    "records",
                    "fix",
                    &incomplete_id.to_string(),
                    "--set",
                    "amount=1000000",
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(65), "{stderr}");
            assert!(stderr.contains("programme BPNT pays"), "{stderr}");
            // and in a corrections file, which is refused whole.
            let file = "row,mother_name,amount\n2,Yohana Bili,1000000\n1,,600000\n";
            let err = remediate::fix_file(
                &env.settings.amount_range,
                &env.pool,
                &Scope::All,
                &harness::operator(),
                batch,
                "fixes.csv",
                file.as_bytes(),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&err, RemediateError::FixFile { line: 2, .. }),
                "{err}"
            );
            // Nothing of it was written: both records are as they were.
            let still: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT state, amount_raw FROM records_all WHERE id = ANY($1) ORDER BY id",
            )
            .bind([inflated_id, incomplete_id])
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(still[0], ("blocked".into(), Some("Rp5.000.000".into())));
            assert_eq!(still[1], ("blocked".into(), Some("600000".into())));

            // An allowed amount clears AMOUNT_NOT_ALLOWED; the record is ready to replay.
            let r = server
                .request(
                    Method::PATCH,
                    &format!("/v1/records/{inflated_id}"),
                    Some(&token),
                )
                .json(&json!({"amount": "600.000"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let fixed: Value = r.json().await.unwrap();
            assert_eq!(fixed["ready"], true, "{fixed}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn each_role_does_its_own_work_only() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            let maker = add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let auditor = add_office(&env.pool, "BPK", Role::Auditor).await;
            let admin = token_for(env, "DINSOS-5371", Role::Admin, "Admin Dinas", "admin-1").await;

            // A checker token, made by `salur office token` for a person.
            let out = env
                .salur(&[
                    "office",
                    "token",
                    "DINSOS-5371",
                    "--role",
                    "checker",
                    "--person",
                    "Kepala Dinas Sosial",
                    "--json",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let made: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(made["role"], "checker");
            assert_eq!(made["person"], "Kepala Dinas Sosial");
            let checker = made["token"].as_str().unwrap().to_owned();
            let who = office::authenticate(&env.pool, &checker).await.unwrap().unwrap();
            assert_eq!(who.role, Role::Checker);
            assert_eq!(who.person.as_deref(), Some("Kepala Dinas Sosial"));
            // A checker's token is signed by a person: none given, none made.
            let out = env
                .salur(&["office", "token", "DINSOS-5371", "--role", "checker"])
                .output()
                .unwrap();
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("--person"));
            // `office add` still prints a maker token.
            let out = env
                .salur(&["office", "add", "DINSOS-5301", "--name", "Dinas Sosial Kabupaten Kupang"])
                .output()
                .unwrap();
            let added = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let who = office::authenticate(&env.pool, &added).await.unwrap().unwrap();
            assert_eq!(who.role, Role::Maker);

            // The maker submits; a checker, an auditor or an admin does not.
            let csv = csv_of(&[valid_record(1)]);
            for t in [&checker, &auditor, &admin] {
                let r = server.submit(t, CSV_TYPE, csv.clone(), None).await;
                problem(r, StatusCode::FORBIDDEN).await;
            }
            let r = server.submit(&maker, CSV_TYPE, csv.clone(), None).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let mut incomplete = valid_record(2);
            incomplete.mother_name = None;
            server
                .submit(&maker, CSV_TYPE, csv_of(&[incomplete]), None)
                .await;
            open_accounts(env).await;
            let blocked: i64 =
                sqlx::query_scalar("SELECT id FROM records WHERE state = 'blocked'")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();

            // The auditor reads the record but cannot fix or replay it; nor can a checker.
            let r = server.get(&format!("/v1/records/{blocked}"), &auditor).await;
            assert_eq!(r.status(), StatusCode::OK);
            for t in [&auditor, &checker, &admin] {
                let r = server
                    .request(Method::PATCH, &format!("/v1/records/{blocked}"), Some(t))
                    .json(&json!({"mother_name": "Yohana Bili"}))
                    .send()
                    .await
                    .unwrap();
                problem(r, StatusCode::FORBIDDEN).await;
                let r = server
                    .request(Method::POST, &format!("/v1/records/{blocked}/replay"), Some(t))
                    .send()
                    .await
                    .unwrap();
                problem(r, StatusCode::FORBIDDEN).await;
            }
            let reasons: Value =
                sqlx::query_scalar("SELECT reasons FROM records WHERE id = $1")
                    .bind(blocked)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(reasons[0]["code"], "MOTHER_NAME_MISSING", "nothing changed");

            // Budgets and programmes: admin tokens only.
            let budget = "/v1/programmes/BPNT/budgets/2026-Q4/DINSOS-5371";
            for t in [&maker, &checker, &auditor] {
                let r = server
                    .request(Method::PUT, budget, Some(t))
                    .json(&json!({"amount": "1000000000"}))
                    .send()
                    .await
                    .unwrap();
                let p = problem(r, StatusCode::FORBIDDEN).await;
                assert_eq!(p["type"], "/problems/not-an-admin");
                let r = server
                    .request(Method::POST, "/v1/programmes", Some(t))
                    .json(&json!({"code": "BLT", "name": "BLT", "amounts": ["300000"]}))
                    .send()
                    .await
                    .unwrap();
                problem(r, StatusCode::FORBIDDEN).await;
            }
            let allocated: Option<Decimal> =
                sqlx::query_scalar("SELECT amount FROM budgets").fetch_optional(&env.pool).await.unwrap();
            assert_eq!(allocated, None, "no budget was set");
            let r = server
                .request(Method::PUT, budget, Some(&admin))
                .json(&json!({"amount": "1000000000"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let line: Value = r.json().await.unwrap();
            assert_eq!(line["allocated"], "1000000000.00", "{line}");
            let r = server
                .request(Method::POST, "/v1/programmes", Some(&admin))
                .json(&json!({"code": "BLT", "name": "Bantuan Langsung Tunai", "amounts": ["300000"], "approval": "none"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let r = server.get("/v1/programmes", &maker).await;
            let list: Value = r.json().await.unwrap();
            assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
            // An office's tokens see their own office's budget, an auditor every office's.
            let r = server.get("/v1/programmes/BPNT/budgets/2026-Q4", &auditor).await;
            let all: Value = r.json().await.unwrap();
            assert_eq!(all["total"]["allocated"], "1000000000.00", "{all}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn every_audit_row_a_person_causes_names_them() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(&env.pool, "DINSOS-5371", Role::Maker).await;
            let ani = token_for(
                env,
                "DINSOS-5371",
                Role::Maker,
                "Ani Operator",
                "ani-laptop",
            )
            .await;
            let mut a = valid_record(1);
            a.mother_name = None;
            let mut b = valid_record(2);
            b.mother_name = None;
            let r = server.submit(&ani, CSV_TYPE, csv_of(&[a, b]), None).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            open_accounts(env).await;
            let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM records ORDER BY id")
                .fetch_all(&env.pool)
                .await
                .unwrap();

            // Over the API: fixed and replayed by Ani's token.
            let r = server
                .request(
                    Method::PATCH,
                    &format!("/v1/records/{}", ids[0]),
                    Some(&ani),
                )
                .json(&json!({"mother_name": "Yohana Bili"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let r = server
                .request(
                    Method::POST,
                    &format!("/v1/records/{}/replay", ids[0]),
                    Some(&ani),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            // On the server's command line: fixed, replayed and discarded by a named person.
            let out = env
                .salur(&[
                    "records",
                    "fix",
                    &ids[1].to_string(),
                    "--set",
                    "mother_name=Yohana Bili",
                    "--person",
                    "Budi Supervisor",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let replayed = remediate::replay(
                &env.settings,
                &env.pool,
                &Scope::All,
                &salur::domain::Actor::cli(Some("Budi Supervisor".into())),
                &remediate::Filter {
                    ids: vec![ids[1]],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(replayed.replayed_ids, [ids[1]]);

            let rows: Vec<AuditRow> = sqlx::query_as(
                "SELECT record_id, detail->>'action', to_state, actor_person, actor_token
                     FROM record_events ORDER BY id",
            )
            .fetch_all(&env.pool)
            .await
            .unwrap();
            let who = |id: i64, what: &str| {
                rows.iter()
                    .find(|r| r.0 == id && r.1.as_deref() == Some(what))
                    .map(|r| (r.3.clone(), r.4.clone()))
                    .unwrap_or_else(|| panic!("no {what} row for {id}: {rows:?}"))
            };
            let ani_by = (
                Some("Ani Operator".to_owned()),
                Some("ani-laptop".to_owned()),
            );
            let budi_by = (Some("Budi Supervisor".to_owned()), Some("cli".to_owned()));
            assert_eq!(who(ids[0], "fix"), ani_by);
            assert_eq!(who(ids[0], "replay"), ani_by);
            assert_eq!(who(ids[1], "fix"), budi_by);
            assert_eq!(who(ids[1], "replay"), budi_by);
            // The submission's rows name the submitter; the stage's name no one.
            for r in rows.iter().filter(|r| r.2 == "received" && r.1.is_none()) {
                assert_eq!((r.3.clone(), r.4.clone()), ani_by, "{r:?}");
            }
            for r in rows.iter().filter(|r| r.2 == "blocked" && r.1.is_none()) {
                assert_eq!((r.3.as_deref(), r.4.as_deref()), (None, None), "{r:?}");
            }
            // Every row caused by a person names them.
            for r in rows.iter().filter(|r| r.1.is_some()) {
                assert!(r.3.is_some() && r.4.is_some(), "{r:?}");
            }
            // And a person reading the record sees who did what.
            let r = server.get(&format!("/v1/records/{}", ids[0]), &ani).await;
            let view: Value = r.json().await.unwrap();
            let fix = view["history"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["detail"]["action"] == "fix")
                .unwrap();
            assert_eq!(
                fix["by"],
                json!({"person": "Ani Operator", "token": "ani-laptop"})
            );

            // A discard on the command line names its person too.
            let mut c = valid_record(3);
            c.mother_name = None;
            server.submit(&ani, CSV_TYPE, csv_of(&[c]), None).await;
            open_accounts(env).await;
            let third: i64 = sqlx::query_scalar("SELECT max(id) FROM records")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let out = env
                .salur(&[
                    "dlq",
                    "discard",
                    "--id",
                    &third.to_string(),
                    "--why",
                    "moved away",
                    "--person",
                    "Budi Supervisor",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let by: (Option<String>, Option<String>) = sqlx::query_as(
                "SELECT actor_person, actor_token FROM record_events
                 WHERE record_id = $1 AND detail->>'action' = 'discard'",
            )
            .bind(third)
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(by, budi_by);
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn a_budget_shows_what_a_paid_batch_used() {
    harness::env()
        .pipeline()
        .run(async |env| {
            add_office(&env.pool, "DINSOS-TEST", Role::Maker).await;
            let out = env
                .salur(&[
                    "budget",
                    "set",
                    "BPNT",
                    "2026-Q4",
                    "--office",
                    "DINSOS-TEST",
                    "--amount",
                    "Rp5.000.000",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // A budget for an office or programme that does not exist is refused.
            let out = env
                .salur(&[
                    "budget",
                    "set",
                    "BLT",
                    "2026-Q4",
                    "--office",
                    "DINSOS-TEST",
                    "--amount",
                    "1",
                ])
                .output()
                .unwrap();
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("no programme BLT"));
            let out = env
                .salur(&[
                    "budget", "set", "BPNT", "2026-Q4", "--office", "NOWHERE", "--amount", "1",
                ])
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&out.stderr).contains("no office NOWHERE"));

            let mut incomplete = valid_record(4);
            incomplete.mother_name = None;
            let batch = env
                .submit(
                    &[
                        valid_record(1),
                        valid_record(2),
                        valid_record(3),
                        incomplete,
                    ],
                    "2026-Q4",
                )
                .await;
            let status = env.wait(batch).await;
            assert_eq!(status.states["disbursed"].records, 3, "{status}");

            let out = env
                .salur(&["budget", "show", "BPNT", "2026-Q4", "--json"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let show: Value = serde_json::from_slice(&out.stdout).unwrap();
            let d = |v: &Value| -> Decimal { v.as_str().unwrap().parse().unwrap() };
            let line = &show["offices"][0];
            assert_eq!(line["office"], "DINSOS-TEST", "{show}");
            assert_eq!(d(&line["allocated"]), Decimal::from(5_000_000));
            assert_eq!(d(&line["disbursed"]), Decimal::from(1_800_000));
            assert_eq!(d(&line["approved_not_paid"]), Decimal::ZERO);
            assert_eq!(d(&line["released"]), Decimal::ZERO);
            assert_eq!(d(&line["remaining"]), Decimal::from(3_200_000));
            assert_eq!(d(&show["total"]["remaining"]), Decimal::from(3_200_000));
            // The text form says the same.
            let out = env
                .salur(&["budget", "show", "BPNT", "2026-Q4"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("Rp3.200.000"), "{text}");
            assert!(text.contains("Rp1.800.000"), "{text}");

            // The gauges: what is left, and the share of the period's budget used.
            let g = salur::store::stats::read(&env.pool).await.unwrap();
            assert_eq!(g.budgets.get("BPNT"), Some(&(3_200_000.0, 0.36)), "{g:?}");
            assert_eq!(g.budgets.get("PKH"), None, "no budget, no gauge");
            let m = salur::metrics::Metrics::new();
            m.set_gauges(&g);
            let samples = salur::metrics::parse_samples(&m.render());
            assert_eq!(
                samples["salur_budget_remaining_idr"].get("program=BPNT"),
                Some(&3_200_000.0),
                "{:?}",
                samples.get("salur_budget_remaining_idr")
            );
        })
        .await;
}
