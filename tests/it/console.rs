//! The office's web console over HTTP, as a browser uses it (cookies, forms, CSRF tokens,
//! multipart uploads), against the real PostgreSQL and RabbitMQ: sign-in and its slowing down,
//! CSRF refusals, office isolation by URL, a maker who cannot approve, and the Excel round trip
//! of blocked records. `scripts/browser_test.sh` drives the same journey in a real chromium.

use crate::harness::http::{Server, csv_of};
use crate::harness::{self, TestEnv, valid_record};
use calamine::{Data, Reader as _, Xlsx};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use salur::domain::RawRecord;
use salur::ops::office::{self, NewToken, Role};
use salur::store::State;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

const KUPANG: &str = "DINSOS-5371";
const SURABAYA: &str = "DINSOS-3578";
const NEW_PASSWORD: &str = "kupang-sehat-2026";

/// A browser of one person: its cookies, no redirects followed.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(server: &Server) -> Self {
        Self {
            base: server.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> reqwest::Response {
        let r = r.header(COOKIE, self.cookie_header()).send().await.unwrap();
        for v in r.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            assert!(
                k == "salur_lang"
                    || attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"),
                "{v}"
            );
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        r
    }

    async fn page(&mut self, r: reqwest::RequestBuilder) -> Page {
        let r = self.send(r).await;
        Page {
            status: r.status(),
            location: r
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base));
        self.page(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.page(r).await
    }

    /// A multipart form post: text fields, then one file.
    async fn post_file(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        bytes: &[u8],
    ) -> Page {
        let boundary = format!("----salur{}", Uuid::new_v4().simple());
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.page(r).await
    }

    /// Signs in; `None` when refused.
    async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/sign-in",
            &[("login", login), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    /// Signs in with a one-time password and changes it; the browser is then signed in.
    async fn first_sign_in(&mut self, login: &str, one_time: &str) {
        let p = self.sign_in(login, one_time).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/password"));
        let form = self.get("/password").await;
        let p = self
            .post(
                "/password",
                &[
                    ("current", one_time),
                    ("new", NEW_PASSWORD),
                    ("repeat", NEW_PASSWORD),
                    ("csrf", &form.csrf()),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/batches?password=changed"));
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn add_office(env: &TestEnv, code: &str) {
    office::add_for(
        &env.pool,
        code,
        &format!("Dinas Sosial {code}"),
        &NewToken {
            role: Role::Maker,
            person: None,
            label: None,
        },
    )
    .await
    .unwrap();
}

/// `salur person add … --json`: the one-time password.
fn person_add(env: &TestEnv, office: &str, login: &str, name: &str, role: &str) -> String {
    let out = env
        .salur(&[
            "person", "add", "--office", office, "--login", login, "--name", name, "--role", role,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["login"], login);
    v["password"].as_str().unwrap().to_owned()
}

/// A signed-in browser of a new person.
async fn person(
    env: &TestEnv,
    server: &Server,
    office: &str,
    login: &str,
    name: &str,
    role: &str,
) -> Browser {
    let otp = person_add(env, office, login, name, role);
    let mut b = Browser::new(server);
    b.first_sign_in(login, &otp).await;
    b
}

/// Uploads `rows` as a CSV through the upload page; the new batch's id.
async fn upload(b: &mut Browser, program: &str, rows: &[RawRecord]) -> Uuid {
    let form = b.get("/upload").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let p = b
        .post_file(
            "/upload",
            &[
                ("csrf", &form.csrf()),
                ("program", program),
                ("period", "2026-Q4"),
            ],
            "penerima.csv",
            &csv_of(rows),
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.location.unwrap();
    let id = to
        .trim_start_matches("/batches/")
        .split('?')
        .next()
        .unwrap();
    Uuid::parse_str(id).unwrap()
}

async fn states(env: &TestEnv, batch: Uuid) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn a_person_signs_in_with_a_one_time_password_changes_it_and_signs_out() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            let otp = person_add(env, KUPANG, "maria", "Maria Ndun", "maker");
            let mut b = Browser::new(&server);

            // Not signed in: every page sends to the sign-in form (in Indonesian).
            let p = b.get("/batches").await;
            assert_eq!(p.status, StatusCode::SEE_OTHER);
            assert_eq!(p.location.as_deref(), Some("/sign-in"));
            let form = b.get("/sign-in").await;
            assert!(form.body.contains("Kata sandi"), "{}", form.body);
            assert!(form.body.contains(r#"<html lang="id">"#));

            // A wrong password is refused, and signs nobody in.
            let p = b.sign_in("maria", "not-the-password").await;
            assert_eq!(p.location.as_deref(), Some("/sign-in?refused=1"));
            assert!(!b.cookies.contains_key("salur_session"));
            let p = b.get("/sign-in?refused=1").await;
            assert!(p.body.contains("kata sandi salah"), "{}", p.body);

            // The one-time password must be changed before anything else.
            let p = b.sign_in("maria", &otp).await;
            assert_eq!(p.location.as_deref(), Some("/password"));
            let p = b.get("/batches").await;
            assert_eq!(p.location.as_deref(), Some("/password"));
            let form = b.get("/password").await;
            let p = b
                .post(
                    "/password",
                    &[
                        ("current", &otp),
                        ("new", "short"),
                        ("repeat", "short"),
                        ("csrf", &form.csrf()),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(p.body.contains("minimal 10 karakter"), "{}", p.body);
            let p = b
                .post(
                    "/password",
                    &[
                        ("current", &otp),
                        ("new", NEW_PASSWORD),
                        ("repeat", NEW_PASSWORD),
                        ("csrf", &form.csrf()),
                    ],
                )
                .await;
            assert_eq!(p.location.as_deref(), Some("/batches?password=changed"));
            let p = b.get("/batches").await;
            assert_eq!(p.status, StatusCode::OK);
            assert!(p.body.contains("Maria Ndun"));
            assert!(p.body.contains("Belum ada batch."));

            // Only the hash is stored, an argon2id one.
            let hash: String =
                sqlx::query_scalar("SELECT password_hash FROM people WHERE login = 'maria'")
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert!(hash.starts_with("$argon2id$"), "{hash}");

            // The one-time password no longer works; the new one does.
            let mut other = Browser::new(&server);
            let p = other.sign_in("maria", &otp).await;
            assert_eq!(p.location.as_deref(), Some("/sign-in?refused=1"));
            let p = other.sign_in("maria", NEW_PASSWORD).await;
            assert_eq!(p.location.as_deref(), Some("/batches"));

            // Signing out ends the session: its cookie opens nothing any more.
            let session = b.cookies["salur_session"].clone();
            let page = b.get("/batches").await;
            let p = b.post("/sign-out", &[("csrf", &page.csrf())]).await;
            assert_eq!(p.location.as_deref(), Some("/sign-in"));
            b.cookies.insert("salur_session".into(), session);
            let p = b.get("/batches").await;
            assert_eq!(p.location.as_deref(), Some("/sign-in"));

            // A session unused for 31 minutes has expired.
            sqlx::query("UPDATE console_sessions SET seen_at = now() - interval '31 minutes'")
                .execute(&env.pool)
                .await
                .unwrap();
            let p = other.get("/batches").await;
            assert_eq!(p.location.as_deref(), Some("/sign-in"));
            let p = other.sign_in("maria", NEW_PASSWORD).await;
            assert_eq!(p.location.as_deref(), Some("/batches"));

            // English on request.
            let p = other.get("/lang").await;
            assert_eq!(p.status, StatusCode::SEE_OTHER);
            let p = other.get("/batches").await;
            assert!(p.body.contains("No batches yet."), "{}", p.body);
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn failed_sign_ins_are_slowed_down() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            person_add(env, KUPANG, "maria", "Maria Ndun", "maker");
            let mut b = Browser::new(&server);
            let mut took = Vec::new();
            for _ in 0..6 {
                let started = Instant::now();
                let p = b.sign_in("maria", "wrong-password").await;
                took.push(started.elapsed());
                assert_eq!(p.location.as_deref(), Some("/sign-in?refused=1"));
            }
            // The first two answer at once; after five failures an answer waits 4 s.
            assert!(took[0] < Duration::from_secs(2), "{took:?}");
            assert!(took[1] < Duration::from_secs(2), "{took:?}");
            assert!(took[5] >= Duration::from_secs(4), "{took:?}");
            // A login that does not exist is slowed down just the same.
            let mut took_unknown = Duration::ZERO;
            for _ in 0..4 {
                let started = Instant::now();
                b.sign_in("nobody", "wrong-password").await;
                took_unknown = started.elapsed();
            }
            assert!(took_unknown >= Duration::from_secs(1), "{took_unknown:?}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            let otp = person_add(env, KUPANG, "maria", "Maria Ndun", "maker");
            let mut b = Browser::new(&server);

            // Sign-in without the form's token.
            b.get("/sign-in").await;
            let p = b
                .post("/sign-in", &[("login", "maria"), ("password", &otp)])
                .await;
            assert_eq!(p.status, StatusCode::FORBIDDEN);
            assert!(!b.cookies.contains_key("salur_session"));

            b.first_sign_in("maria", &otp).await;
            // A password change without the token, or with another session's, changes nothing.
            for csrf in [None, Some("0".repeat(64))] {
                let mut form = vec![
                    ("current", NEW_PASSWORD),
                    ("new", "another-password-1"),
                    ("repeat", "another-password-1"),
                ];
                if let Some(c) = &csrf {
                    form.push(("csrf", c));
                }
                let p = b.post("/password", &form).await;
                assert_eq!(p.status, StatusCode::FORBIDDEN);
                assert!(p.body.contains("token keamanan"), "{}", p.body);
            }
            let mut again = Browser::new(&server);
            let p = again.sign_in("maria", NEW_PASSWORD).await;
            assert_eq!(p.location.as_deref(), Some("/batches"));

            // An upload without the token stores nothing.
            let p = b
                .post_file(
                    "/upload",
                    &[("program", "BPNT"), ("period", "2026-Q4")],
                    "penerima.csv",
                    &csv_of(&[valid_record(1)]),
                )
                .await;
            assert_eq!(p.status, StatusCode::FORBIDDEN);
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM batches")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(n, 0);
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn an_office_cannot_open_another_offices_batch_or_record_and_a_refused_file_says_where() {
    harness::env()
        .database_only()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            add_office(env, SURABAYA).await;
            let mut kupang = person(env, &server, KUPANG, "maria", "Maria Ndun", "maker").await;
            let mut surabaya =
                person(env, &server, SURABAYA, "budi", "Budi Santoso", "maker").await;

            let mut rows: Vec<RawRecord> = (1..=3).map(valid_record).collect();
            rows[1].mother_name = None;
            let batch = upload(&mut kupang, "BPNT", &rows).await;
            let p = kupang.get(&format!("/batches/{batch}?uploaded=1")).await;
            assert_eq!(p.status, StatusCode::OK);
            assert!(p.body.contains("penerima.csv"));
            // Personal values are masked.
            assert!(p.body.contains("5371********0002"), "{}", p.body);
            assert!(!p.body.contains("5371014508800002"));
            let record: i64 = sqlx::query_scalar("SELECT min(id) FROM records WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let p = kupang.get(&format!("/records/{record}")).await;
            assert_eq!(p.status, StatusCode::OK);

            // Surabaya sees nothing of it: not in its list, and a 404 page by URL.
            let p = surabaya.get("/batches").await;
            assert!(!p.body.contains(&batch.to_string()));
            for path in [
                format!("/batches/{batch}"),
                format!("/records/{record}"),
                format!("/batches/{batch}/fixes.xlsx"),
                format!("/batches/{batch}/approval"),
            ] {
                let p = surabaya.get(&path).await;
                assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
                assert!(p.body.contains("Halaman tidak ditemukan"), "{path}");
                assert!(!p.body.contains("penerima.csv"), "{path}");
            }
            // An auditor reads every office's batch and record (masked), changes nothing and
            // downloads no workbook.
            office::add_for(
                &env.pool,
                "BPK",
                "Badan Pemeriksa Keuangan",
                &NewToken {
                    role: Role::Auditor,
                    person: None,
                    label: None,
                },
            )
            .await
            .unwrap();
            let mut auditor = person(env, &server, "BPK", "rina", "Rina Auditor", "auditor").await;
            let p = auditor.get(&format!("/batches/{batch}")).await;
            assert_eq!(p.status, StatusCode::OK);
            assert!(!p.body.contains("fixes.xlsx"));
            assert_eq!(
                auditor.get(&format!("/records/{record}")).await.status,
                StatusCode::OK
            );
            let p = auditor.get(&format!("/batches/{batch}/fixes.xlsx")).await;
            assert_eq!(p.status, StatusCode::FORBIDDEN);
            assert_eq!(auditor.get("/upload").await.status, StatusCode::FORBIDDEN);

            let page = surabaya.get("/batches").await;
            let p = surabaya
                .post(
                    &format!("/batches/{batch}/replay"),
                    &[("csrf", &page.csrf())],
                )
                .await;
            assert_eq!(p.status, StatusCode::NOT_FOUND);

            // A refused file: the line, the column and what to do, in Indonesian; nothing
            // stored.
            let mut bad = csv_of(&rows);
            bad.extend_from_slice(b"5371014508800009,x\n");
            let form = kupang.get("/upload").await;
            let p = kupang
                .post_file(
                    "/upload",
                    &[
                        ("csrf", &form.csrf()),
                        ("program", "BPNT"),
                        ("period", "2026-Q4"),
                    ],
                    "rusak.csv",
                    &bad,
                )
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(p.body.contains("Berkas ditolak"), "{}", p.body);
            assert!(p.body.contains("baris 5"), "{}", p.body);
            assert!(p.body.contains("Yang perlu dilakukan"), "{}", p.body);
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM batches")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(n, 1);

            // An Excel workbook goes the same way.
            let records: Vec<RawRecord> = (4..=5).map(valid_record).collect();
            let mut cells = vec![
                harness::fields(&records[0])
                    .into_iter()
                    .map(|(k, _)| k.to_owned())
                    .collect::<Vec<_>>(),
            ];
            for r in &records {
                cells.push(
                    harness::fields(r)
                        .into_iter()
                        .map(|(_, v)| v.unwrap_or_default())
                        .collect(),
                );
            }
            let form = kupang.get("/upload").await;
            let p = kupang
                .post_file(
                    "/upload",
                    &[
                        ("csrf", &form.csrf()),
                        ("program", "BPNT"),
                        ("period", "2026-Q4"),
                    ],
                    "penerima.xlsx",
                    &workbook_of(&cells),
                )
                .await;
            assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM records r JOIN batches b ON b.id = r.batch_id
                 WHERE b.file_name = 'penerima.xlsx'",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            assert_eq!(n, 2);
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn a_maker_cannot_approve_and_a_checker_can() {
    harness::env()
        .without_programmes()
        .pipeline()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            salur::ops::programme::add(
                &env.pool,
                "PKH",
                "Program Keluarga Harapan",
                "600000",
                true,
            )
            .await
            .unwrap();
            salur::ops::budget::set(
                &env.pool,
                "PKH",
                "2026-Q4",
                KUPANG,
                rust_decimal::Decimal::from(6_000_000),
            )
            .await
            .unwrap();
            let mut maker = person(env, &server, KUPANG, "maria", "Maria Ndun", "maker").await;
            let mut checker = person(env, &server, KUPANG, "yosef", "Yosef Lake", "checker").await;
            let rows: Vec<RawRecord> = (1..=3).map(valid_record).collect();
            let batch = upload(&mut maker, "PKH", &rows).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::AwaitingApproval), 3);

            let p = maker.get(&format!("/batches/{batch}/approval")).await;
            assert_eq!(p.status, StatusCode::OK);
            assert!(p.body.contains("Rp 1.800.000"), "{}", p.body);
            assert!(!p.body.contains(r#"id="approve""#), "{}", p.body);
            // A forged approval by the maker, with their own valid CSRF token, is refused.
            let hash = salur::ops::approval::list(&env.pool, batch, None)
                .await
                .unwrap()
                .list_hash;
            let p = maker
                .post(
                    &format!("/batches/{batch}/approval"),
                    &[
                        ("csrf", &p.csrf()),
                        ("decision", "approve"),
                        ("list_hash", &hash),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::FORBIDDEN);
            assert_eq!(states(env, batch).await["awaiting_approval"], 3);

            // The checker sees the list; a rejection without a reason is refused, in words,
            // and changes nothing.
            let p = checker.get(&format!("/batches/{batch}/approval")).await;
            assert!(p.body.contains(r#"id="approve""#), "{}", p.body);
            let r = checker
                .post(
                    &format!("/batches/{batch}/approval"),
                    &[("csrf", &p.csrf()), ("decision", "reject"), ("why", " ")],
                )
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
            assert!(r.body.contains("tidak dapat disetujui"), "{}", r.body);
            assert_eq!(states(env, batch).await["awaiting_approval"], 3);
            // Then approves it.
            assert!(p.body.contains("002"));
            let p = checker
                .post(
                    &format!("/batches/{batch}/approval"),
                    &[
                        ("csrf", &p.csrf()),
                        ("decision", "approve"),
                        ("list_hash", &hash),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::OK, "{}", p.body);
            assert!(p.body.contains("disetujui"), "{}", p.body);
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 3);
            // The approval names the checker's person.
            let person: String =
                sqlx::query_scalar("SELECT person FROM approvals WHERE batch_id = $1")
                    .bind(batch)
                    .fetch_one(&env.pool)
                    .await
                    .unwrap();
            assert_eq!(person, "Yosef Lake");
            server.stop().await;
        })
        .await;
}

/// The cells of the first sheet, as text, by (row, column).
fn sheet(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let name = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&name).unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(f) => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// A workbook of `cells`, every cell a Text cell (as a clerk's Excel keeps them).
fn workbook_of(cells: &[Vec<String>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in cells.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32, c as u16, v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

#[tokio::test]
async fn blocked_records_are_fixed_in_excel_all_or_nothing_then_replayed() {
    harness::env()
        .pipeline()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            let mut maker = person(env, &server, KUPANG, "maria", "Maria Ndun", "maker").await;
            let mut rows: Vec<RawRecord> = (1..=4).map(valid_record).collect();
            rows[1].mother_name = None;
            rows[3].birth_place = None;
            let batch = upload(&mut maker, "BPNT", &rows).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Blocked), 2);

            let p = maker.get(&format!("/batches/{batch}")).await;
            assert!(p.body.contains("Nama ibu kandung belum diisi"), "{}", p.body);
            // One record per reason: the counts add up to the blocked total, no note needed.
            assert!(p.body.contains(r#"<tr data-reason="BIRTH_PLACE_MISSING">"#));
            assert!(p.body.contains(r#"<td class="num" id="blocked-total">2</td>"#));
            assert!(!p.body.contains("dihitung pada setiap alasannya"));
            assert!(p.body.contains("Unduh data yang perlu diperbaiki"));
            let r = maker
                .send(
                    maker
                        .client
                        .get(format!("{}/batches/{batch}/fixes.xlsx", maker.base)),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(
                r.headers()["content-type"],
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            );
            let bytes = r.bytes().await.unwrap();
            let mut cells = sheet(&bytes);
            assert_eq!(cells.len(), 3, "{cells:?}");
            let header = cells[0].clone();
            let col = |name: &str| header.iter().position(|h| h == name).unwrap();
            assert_eq!(header[0], "id_data");
            // Row 2 of the file: its mother's name to fill in; NIK masked, as text.
            assert_eq!(cells[1][1], "2");
            assert_eq!(cells[1][col("nama_ibu_kandung")], "");
            assert_eq!(cells[1][col("nik")], "5371********0003");
            assert!(cells[1][2].contains("Nama ibu kandung belum diisi"), "{cells:?}");
            assert_eq!(cells[2][1], "4");

            // The clerk fills in both, but types letters into an amount: the whole file is
            // refused, by row and column, and nothing changes.
            cells[1][col("nama_ibu_kandung")] = "Yohana Bili".into();
            cells[2][col("tempat_lahir")] = "Kupang".into();
            cells[2][col("nominal")] = "enam ratus ribu".into();
            let page = maker.get(&format!("/batches/{batch}")).await;
            let csrf = page.csrf();
            let p = maker
                .post_file(
                    &format!("/batches/{batch}/fixes"),
                    &[("csrf", &csrf)],
                    "perbaikan.xlsx",
                    &workbook_of(&cells),
                )
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
            let letter = salur::web::excel::column_letter(col("nominal") as u32);
            assert!(
                p.body.contains(&format!("baris 3, kolom {letter}")),
                "{}",
                p.body
            );
            let reasons: Vec<String> = sqlx::query_scalar(
                "SELECT reasons::text FROM records WHERE batch_id = $1 AND state = 'blocked' ORDER BY row_number",
            )
            .bind(batch)
            .fetch_all(&env.pool)
            .await
            .unwrap();
            assert_eq!(reasons.len(), 2);
            assert!(reasons[0].contains("MOTHER_NAME_MISSING"));
            assert!(reasons[1].contains("BIRTH_PLACE_MISSING"));

            // Corrected, the file applies; replayed on confirmation, all are paid.
            cells[2][col("nominal")] = "600000".into();
            let p = maker
                .post_file(
                    &format!("/batches/{batch}/fixes"),
                    &[("csrf", &csrf)],
                    "perbaikan.xlsx",
                    &workbook_of(&cells),
                )
                .await;
            assert_eq!(p.status, StatusCode::OK, "{}", p.body);
            assert!(p.body.contains("Perbaikan diterapkan: 2"), "{}", p.body);
            assert_eq!(states(env, batch).await["blocked"], 2);
            let p = maker
                .post(&format!("/batches/{batch}/replay"), &[("csrf", &p.csrf())])
                .await;
            assert_eq!(p.status, StatusCode::OK, "{}", p.body);
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 4, "{status:?}");
            server.stop().await;
        })
        .await;
}

#[tokio::test]
async fn auditors_read_reconciliations_and_the_batch_page_shows_its_exceptions_and_returns() {
    use rust_decimal::Decimal;
    use salur::bank::sim_statement::{self, StatementOptions};
    use salur::bank::statement::Direction;
    use salur::ops::reconcile;
    harness::env()
        .pipeline()
        .run(async |env| {
            let server = env.serve_api().await;
            add_office(env, KUPANG).await;
            let mut maker = person(env, &server, KUPANG, "maria", "Maria Ndun", "maker").await;
            let rows: Vec<RawRecord> = (1..=20).map(valid_record).collect();
            let batch = upload(&mut maker, "BPNT", &rows).await;
            assert_eq!(env.wait(batch).await.count(State::Disbursed), 20);
            let p = maker.get(&format!("/batches/{batch}")).await;
            assert!(!p.body.contains(r#"id="reconciliation""#), "nothing to show yet");

            // bank-sim's statement of the day with returns, one debit (not returned) removed:
            // reconciled as `salur reconcile` does, with exactly one `missing` exception.
            let days = sim_statement::days(env.ledger().await, "002").await.unwrap();
            let mut s = sim_statement::statement(
                env.ledger().await,
                &StatementOptions {
                    bank: "002".into(),
                    date: days[0],
                    return_rate: 0.25,
                    return_after_days: 0,
                    seed: 3,
                },
            )
            .await
            .unwrap();
            let credited: Vec<String> = s
                .lines
                .iter()
                .filter(|l| l.direction == Direction::Credit)
                .map(|l| l.end_to_end.clone())
                .collect();
            assert!(!credited.is_empty(), "some returns");
            let i = s
                .lines
                .iter()
                .position(|l| l.direction == Direction::Debit && !credited.contains(&l.end_to_end))
                .unwrap();
            s.lines.remove(i);
            s.recompute_closing();
            let report = reconcile::reconcile(
                &env.pool,
                "002",
                "002.sta",
                s.to_mt940().as_bytes(),
                &salur::domain::Actor::new(Some("Rina Auditor".into()), "auditor-token"),
            )
            .await
            .unwrap();
            assert_eq!(
                report.exceptions_by_kind,
                BTreeMap::from([("missing".to_owned(), 1)]),
                "{report}"
            );
            let returned = report.summary.returned;
            assert_eq!(returned as usize, credited.len(), "{report}");
            let missing_record = report.exceptions[0].record_id.unwrap();

            // The office's batch page: its exceptions in words and its returned records.
            let p = maker.get(&format!("/batches/{batch}")).await;
            assert_eq!(p.status, StatusCode::OK);
            assert!(p.body.contains(r#"<section id="reconciliation">"#), "{}", p.body);
            assert!(p.body.contains(r#"<tr data-kind="missing">"#), "{}", p.body);
            assert!(p.body.contains("Tersalurkan di Salur, tidak ada di rekening koran"));
            let amount = salur::web::text::rupiah(Decimal::from(600_000) * Decimal::from(returned));
            assert!(
                p.body.contains(&format!(
                    r#"?state=returned">Dana dikembalikan bank</a>: <strong>{returned}</strong> · {amount}</p>"#
                )),
                "{}",
                p.body
            );
            let list = maker.get(&format!("/batches/{batch}?state=returned")).await;
            assert_eq!(list.status, StatusCode::OK);
            assert_eq!(
                list.body.matches("<td>Dana dikembalikan bank</td>").count(),
                returned as usize,
                "{}",
                list.body
            );
            // A statement names every office's payments: not for an office's people.
            assert!(!p.body.contains(r#"href="/reconciliations""#));
            assert_eq!(maker.get("/reconciliations").await.status, StatusCode::FORBIDDEN);
            let id = report.summary.id;
            assert_eq!(
                maker.get(&format!("/reconciliations/{id}")).await.status,
                StatusCode::FORBIDDEN
            );

            // An auditor reads them.
            office::add_for(
                &env.pool,
                "BPK",
                "Badan Pemeriksa Keuangan",
                &NewToken {
                    role: Role::Auditor,
                    person: None,
                    label: None,
                },
            )
            .await
            .unwrap();
            let mut auditor = person(env, &server, "BPK", "rina", "Rina Auditor", "auditor").await;
            let p = auditor.get("/reconciliations").await;
            assert_eq!(p.status, StatusCode::OK, "{}", p.body);
            assert!(p.body.contains(r#"href="/reconciliations">"#), "the menu links it");
            assert!(p.body.contains(&format!(r#"href="/reconciliations/{id}""#)), "{}", p.body);
            let p = auditor.get(&format!("/reconciliations/{id}")).await;
            assert_eq!(p.status, StatusCode::OK, "{}", p.body);
            assert!(p.body.contains(&format!(r#"id="matched">{}</td>"#, report.summary.matched)));
            assert!(p.body.contains(r#"id="exception-count">1</td>"#), "{}", p.body);
            assert!(p.body.contains(r#"<tr data-kind="missing">"#));
            assert!(p.body.contains(&format!(r#"<a href="/records/{missing_record}">"#)));
            assert!(p.body.contains("tidak ada di rekening koran"));
            for path in [
                format!("/reconciliations/{}", Uuid::new_v4()),
                "/reconciliations/not-an-id".to_owned(),
            ] {
                assert_eq!(auditor.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
            }
            // Reading changed nothing.
            let again = reconcile::show(&env.pool, id).await.unwrap();
            assert_eq!(again.summary.exception_count, 1);
            assert_eq!(env.wait(batch).await.count(State::Returned), returned as i64);
        })
        .await;
}
