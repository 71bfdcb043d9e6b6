//! The SNAP BI path: salur → RabbitMQ → `salur bank-gateway` → SNAP → bank-sim, on the real
//! services. Account opening goes by file (SNAP has no account-opening service).

use crate::harness::{self, TestEnv};
use salur::bank::contract::{BankRequest, ItemStatus, Money, RequestBody, TransferItem, VERSION};
use salur::bank::files;
use salur::bank::gateway::{self, Credentials, Gateway, GatewayOptions};
use salur::bank::sim::{Sim, SimOptions, settlements};
use salur::bank::sim_snap::{self, SnapOptions};
use salur::bank::snap::{self, Paths, sign};
use salur::demo::generate;
use salur::store::State;
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CLIENT_KEY: &str = "salur-test";
const SECRET: &str = "test-secret-do-not-use";
const PARTNER: &str = "SALURTEST";
const PARTNER_KEY: &str = include_str!("../fixtures/snap/partner.key.pem");
const PARTNER_PUB: &str = include_str!("../fixtures/snap/partner.pub.pem");
const INTRUDER_KEY: &str = include_str!("../fixtures/snap/intruder.key.pem");
/// The bank bank-sim's SNAP server is.
const SNAP_BANK: &str = "009";

fn snap_options() -> SnapOptions {
    SnapOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        bank_code: SNAP_BANK.into(),
        client_key: CLIENT_KEY.into(),
        client_secret: SECRET.into(),
        partner_id: PARTNER.into(),
        public_key: sign::TokenVerifier::from_pem(PARTNER_PUB).unwrap(),
        token_ttl: Duration::from_secs(900),
        max_skew: Duration::from_secs(300),
        clock_offset: chrono::Duration::zero(),
        timeout_rate: 0.0,
        lost_answer_rate: 0.0,
        duplicate_rate: 0.0,
        lost_delay: Duration::from_secs(2),
        delay: Duration::ZERO,
        seed: 1,
    }
}

struct Service {
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Service {
    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("task").expect("ends cleanly");
    }
}

async fn start_snap(env: &TestEnv, sim: SimOptions, opts: SnapOptions) -> (SocketAddr, Service) {
    let cancel = CancellationToken::new();
    let s = Arc::new(Sim::new(
        env.settings.clone(),
        env.ledger().await.clone(),
        sim,
    ));
    let (addr, task) = sim_snap::serve(s, env.ledger().await.clone(), opts, cancel.clone())
        .await
        .expect("SNAP server");
    (addr, Service { cancel, task })
}

fn journal(env: &TestEnv, bank: &str) -> PathBuf {
    env.temp_path(&format!("{bank}.journal"))
}

fn gateway_options(env: &TestEnv, bank: &str, addr: SocketAddr) -> GatewayOptions {
    GatewayOptions {
        bank: bank.into(),
        snap_bank: SNAP_BANK.into(),
        snap_url: format!("http://{addr}"),
        paths: Paths::profile("standard").unwrap(),
        credentials: Credentials {
            client_key: CLIENT_KEY.into(),
            client_secret: SECRET.into(),
            partner_id: PARTNER.into(),
            channel_id: "95221".into(),
            signer: sign::TokenSigner::from_pem(PARTNER_KEY).unwrap(),
        },
        source_account: "0090000000001".into(),
        concurrency: 16,
        rate_limit: None,
        http_timeout: Duration::from_secs(1),
        journal: journal(env, bank),
        prefetch: 8,
    }
}

async fn start_gateway(env: &TestEnv, opts: GatewayOptions) -> Service {
    let settings = gateway::as_bank_user(&env.settings, &env.pool, &opts.bank)
        .await
        .expect("the bank's RabbitMQ user");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(gateway::run(settings, opts, cancel.clone()));
    Service { cancel, task }
}

/// Stops the gateways and the SNAP server, checking that they end cleanly (the journals go
/// with the test's temporary directory).
async fn teardown(server: Service, gateways: Vec<Service>) {
    for g in gateways {
        g.stop().await;
    }
    server.stop().await;
}

async fn count_in(pool: &PgPool, batch: uuid::Uuid, state: State) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM records WHERE batch_id = $1 AND state = $2")
        .bind(batch)
        .bind(state.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until account opening has taken up every record, then opens accounts by file, bank by
/// bank, as a bank would (bank-sim deciding), until none waits for one.
async fn open_accounts_by_file(env: &TestEnv, batch: uuid::Uuid, banks: &[&str], sim: SimOptions) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while count_in(&env.pool, batch, State::Received).await > 0 {
        assert!(
            Instant::now() < deadline,
            "account opening did not take up the batch"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = Sim::new(env.settings.clone(), env.ledger().await.clone(), sim);
    for round in 0..10 {
        let mut exported = 0;
        for bank in banks {
            let request = env.temp_path(&format!("{bank}-req.csv"));
            let result = env.temp_path(&format!("{bank}-res.csv"));
            let n = files::export_accounts(&env.pool, bank, batch, &request)
                .await
                .unwrap();
            exported += n;
            if n > 0 {
                let (opened, refused) = files::simulate_results(&s, bank, &request, &result)
                    .await
                    .unwrap();
                if opened + refused > 0 {
                    files::import_accounts(&env.settings, &env.pool, bank, &result)
                        .await
                        .unwrap();
                }
            }
            let _ = std::fs::remove_file(&request);
            let _ = std::fs::remove_file(&result);
        }
        if exported == 0 {
            return;
        }
        assert!(round < 9, "accounts still waiting after 10 files");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_batch_through_snap_ends_as_through_amqp() {
    harness::env()
        .worker()
        .run(async |env| {
            let demo = generate::generate(300, 40, 5);
            let banks = ["002", "008", "009", "200", "451"];

            // The AMQP path.
            let amqp = harness::env().pipeline().build().await;
            let batch = amqp.submit(&demo.records, "2026-Q4").await;
            amqp.wait(batch).await;
            let expected = harness::rows(&amqp.pool, batch).await;
            amqp.cleanup().await;

            // The SNAP path: a gateway per bank, all calling bank 009's SNAP API (intrabank for
            // 009's recipients, interbank for the others); account opening by file.
            let (addr, server) = start_snap(env, SimOptions::default(), snap_options()).await;
            let gateways: Vec<Service> = futures::future::join_all(
                banks
                    .iter()
                    .map(|b| start_gateway(env, gateway_options(env, b, addr))),
            )
            .await;
            let batch = env.submit(&demo.records, "2026-Q4").await;
            open_accounts_by_file(env, batch, &banks, SimOptions::default()).await;
            env.wait(batch).await;
            let got = harness::rows(&env.pool, batch).await;
            assert_eq!(got.len(), 300);
            assert_eq!(
                got, expected,
                "the SNAP path ends as the AMQP path, record by record"
            );
            let disbursed = got.iter().filter(|r| r.1 == "disbursed").count();
            assert_eq!(disbursed, 260);
            // Transfers and the inquiries of recipients who came with an account went over SNAP.
            let calls: Vec<(String, i64)> =
                sqlx::query_as("SELECT kind, count(*) FROM bank_sim.snap_calls GROUP BY kind")
                    .fetch_all(env.ledger().await)
                    .await
                    .unwrap();
            let calls: HashMap<String, i64> = calls.into_iter().collect();
            assert_eq!(calls.get("transfer"), Some(&260), "{calls:?}");
            assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 260);

            teardown(server, gateways).await;
        })
        .await;
}

/// No transfer sent again for a key without a status inquiry in between; every ambiguous
/// answer followed by a status inquiry. Returns (ambiguous answers, transfers sent again).
async fn check_call_log(pool: &PgPool) -> (i64, i64) {
    let resent_blind: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bank_sim.snap_calls t
         JOIN LATERAL (
             SELECT max(p.id) AS prev FROM bank_sim.snap_calls p
             WHERE p.kind = 'transfer' AND p.partner_reference_no = t.partner_reference_no AND p.id < t.id
         ) p ON p.prev IS NOT NULL
         WHERE t.kind = 'transfer'
           AND NOT EXISTS (
             SELECT 1 FROM bank_sim.snap_calls s
             WHERE s.kind = 'status' AND s.partner_reference_no = t.partner_reference_no
               AND s.id > p.prev AND s.id < t.id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        resent_blind, 0,
        "a transfer was sent again without a status inquiry first"
    );
    let unresolved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bank_sim.snap_calls t
         WHERE t.kind = 'transfer' AND (t.response_code LIKE '5%' OR t.response_code LIKE '409%')
           AND NOT EXISTS (
             SELECT 1 FROM bank_sim.snap_calls s
             WHERE s.kind = 'status' AND s.partner_reference_no = t.partner_reference_no AND s.id > t.id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        unresolved, 0,
        "an ambiguous transfer answer was not followed by a status inquiry"
    );
    let ambiguous: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bank_sim.snap_calls
         WHERE kind = 'transfer' AND (response_code LIKE '5%' OR response_code LIKE '409%')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let resent: i64 = sqlx::query_scalar(
        "SELECT count(*) - count(DISTINCT partner_reference_no) FROM bank_sim.snap_calls WHERE kind = 'transfer'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (ambiguous, resent)
}

/// Every disbursed record paid exactly once, with the reference salur recorded.
async fn check_paid_once(env: &TestEnv, batch: uuid::Uuid, expected: usize) {
    let paid = settlements(env.ledger().await).await.unwrap();
    let by_record: HashMap<String, Option<String>> = paid
        .iter()
        .map(|s| (s.item_id.clone(), s.reference.clone()))
        .collect();
    assert_eq!(paid.len(), expected, "settled transfers");
    assert_eq!(by_record.len(), expected, "one settlement per record");
    let refs: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT id, bank_reference FROM records WHERE batch_id = $1 AND state = 'disbursed'",
    )
    .bind(batch)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(refs.len(), expected);
    for (id, reference) in refs {
        assert!(reference.is_some());
        assert_eq!(
            by_record.get(&id.to_string()),
            Some(&reference),
            "record {id}"
        );
    }
}

fn recipients(n: u32, bank_of: impl Fn(u32) -> &'static str) -> Vec<salur::intake::RawRecord> {
    (1..=n)
        .map(|i| {
            let mut r = harness::valid_record(i);
            r.bank_code = Some(bank_of(i).into());
            r
        })
        .collect()
}

/// Short retry tiers, many attempts, small chunks: faults resolve within the test.
fn fast_retries(chunk_size: usize) -> harness::Builder {
    harness::env().settings(|s| {
        s.retry_tiers = salur::config::RetryTier::parse_list("300ms,1s,2s").unwrap();
        s.max_attempts = 20;
        s.stage_max_attempts.clear();
        s.chunk_size = chunk_size;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_snap_timeouts_and_5xx_no_transfer_is_paid_twice() {
    fast_retries(25)
        .worker()
        .run(async |env| {
            let sim = SimOptions {
                transient_error_rate: 0.1,
                seed: 7,
                ..Default::default()
            };
            let (addr, server) = start_snap(
                env,
                sim.clone(),
                SnapOptions {
                    timeout_rate: 0.1,
                    lost_answer_rate: 0.05,
                    duplicate_rate: 0.05,
                    lost_delay: Duration::from_millis(1500),
                    ..snap_options()
                },
            )
            .await;
            let banks = ["009", "002"];
            let gateways: Vec<Service> = futures::future::join_all(
                banks
                    .iter()
                    .map(|b| start_gateway(env, gateway_options(env, b, addr))),
            )
            .await;
            let rows = recipients(200, |i| if i % 2 == 0 { "009" } else { "002" });
            let batch = env.submit(&rows, "2026-Q4").await;
            open_accounts_by_file(env, batch, &banks, sim).await;
            let status = env.wait(batch).await;
            assert_eq!(status.count(State::Disbursed), 200, "{status}");
            check_paid_once(env, batch, 200).await;
            let (ambiguous, resent) = check_call_log(env.ledger().await).await;
            assert!(
                ambiguous >= 10,
                "the faults happened: {ambiguous} ambiguous answers"
            );
            assert!(
                resent >= 1,
                "some transfers were sent again (after a status inquiry): {resent}"
            );
            teardown(server, gateways).await;
        })
        .await;
}

type Headers = Vec<(&'static str, String)>;

/// A raw SNAP call, to play the wrong party.
async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn token_headers(key: &str, ts: &str) -> Vec<(&'static str, String)> {
    let signer = sign::TokenSigner::from_pem(key).unwrap();
    vec![
        ("x-timestamp", ts.to_owned()),
        ("x-client-key", CLIENT_KEY.to_owned()),
        ("x-signature", signer.sign(CLIENT_KEY, ts)),
    ]
}

fn call_headers(
    secret: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
    ts: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-timestamp", ts.to_owned()),
        (
            "x-signature",
            sign::transactional(secret, "POST", path, token, body.to_string().as_bytes(), ts),
        ),
        ("x-partner-id", PARTNER.to_owned()),
        ("x-external-id", "12345678901234567890".to_owned()),
        ("channel-id", "95221".to_owned()),
    ]
}

fn transfer_request(key: &str) -> BankRequest {
    BankRequest {
        v: VERSION,
        request_id: uuid::Uuid::new_v4(),
        bank_code: SNAP_BANK.into(),
        sent_at: chrono::Utc::now(),
        body: RequestBody::Transfer {
            items: vec![TransferItem {
                item_id: "1".into(),
                idempotency_key: key.into(),
                account_number: "0090000000777".into(),
                account_name: "MARIA".into(),
                amount: Money {
                    value: "600000.00".into(),
                    currency: "IDR".into(),
                },
                description: "BPNT".into(),
            }],
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_sim_refuses_wrong_signatures_expired_tokens_and_stale_timestamps() {
    harness::env().run(async |env| {
        let (addr, server) = start_snap(env, SimOptions::default(), snap_options()).await;
        let paths = Paths::profile("standard").unwrap();
        let now = snap::timestamp(chrono::Utc::now());
        let stale = snap::timestamp(chrono::Utc::now() - chrono::Duration::minutes(10));
        let grant = serde_json::json!({"grantType": "client_credentials"});

        // Access token: an unknown key, a stale timestamp, then the partner.
        let (status, body) = post(addr, &paths.token, &token_headers(INTRUDER_KEY, &now), &grant).await;
        assert_eq!((status, body["responseCode"].as_str()), (401, Some("4017300")), "{body}");
        let (status, body) = post(addr, &paths.token, &token_headers(PARTNER_KEY, &stale), &grant).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["responseMessage"].as_str().unwrap().contains("X-TIMESTAMP"), "{body}");
        let (status, body) = post(addr, &paths.token, &token_headers(PARTNER_KEY, &now), &grant).await;
        assert_eq!((status, body["responseCode"].as_str()), (200, Some("2007300")), "{body}");
        let token = body["accessToken"].as_str().unwrap().to_owned();

        let path = &paths.transfer_intrabank;
        let transfer = serde_json::json!({
            "partnerReferenceNo": "forged-1", "amount": {"value": "600000.00", "currency": "IDR"},
            "beneficiaryAccountNo": "0090000000777", "sourceAccountNo": "0090000000001",
            "transactionDate": now,
        });
        let cases: Vec<(&str, Headers, &str)> = vec![
            ("wrong secret", call_headers("guessed-secret", path, &token, &transfer, &now), "4011700"),
            ("signature over another body", {
                let other = serde_json::json!({"partnerReferenceNo": "forged-1"});
                call_headers(SECRET, path, &token, &other, &now)
            }, "4011700"),
            ("unknown token", call_headers(SECRET, path, "not-a-token", &transfer, &now), "4011701"),
            ("stale timestamp", call_headers(SECRET, path, &token, &transfer, &stale), "4011700"),
            ("wrong partner", {
                let mut h = call_headers(SECRET, path, &token, &transfer, &now);
                h.retain(|(k, _)| *k != "x-partner-id");
                h.push(("x-partner-id", "OTHERPARTNER".into()));
                h
            }, "4011700"),
            ("no external id", {
                let mut h = call_headers(SECRET, path, &token, &transfer, &now);
                h.retain(|(k, _)| *k != "x-external-id");
                h
            }, "4001702"),
        ];
        for (what, headers, code) in cases {
            let (status, body) = post(addr, path, &headers, &transfer).await;
            assert_eq!(body["responseCode"].as_str(), Some(code), "{what}: {body}");
            assert!(status >= 400, "{what}");
        }
        assert!(settlements(env.ledger().await).await.unwrap().is_empty(), "nothing was paid");
        // The partner's own call goes through.
        let (status, body) = post(addr, path, &call_headers(SECRET, path, &token, &transfer, &now), &transfer).await;
        assert_eq!((status, body["responseCode"].as_str()), (200, Some("2001700")), "{body}");

        // The gateway: a bank that forgot its token (restarted) answers "invalid token"; the
        // gateway fetches a new one and carries on.
        let opts = gateway_options(env, SNAP_BANK, addr);
        let gw = Gateway::new(opts).unwrap();
        let reply = gw.answer(&transfer_request("k-1")).await.unwrap().unwrap();
        assert_eq!(reply.items[0].status, ItemStatus::Ok, "{reply:?}");
        server.stop().await;
        let (addr2, server) = start_snap(env, SimOptions::default(), SnapOptions { addr, ..snap_options() }).await;
        assert_eq!(addr2, addr);
        let reply = gw.answer(&transfer_request("k-2")).await.unwrap().unwrap();
        assert_eq!(reply.items[0].status, ItemStatus::Ok, "{reply:?}");
        let refused_tokens: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bank_sim.snap_calls WHERE kind = 'refused' AND response_code = '4011701'",
        )
        .fetch_one(env.ledger().await)
        .await
        .unwrap();
        let tokens: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bank_sim.snap_calls WHERE kind = 'token' AND response_code = '2007300'",
        )
        .fetch_one(env.ledger().await)
        .await
        .unwrap();
        // The forged "unknown token" call above, and the gateway's call with the forgotten one.
        assert_eq!(refused_tokens, 2);
        assert_eq!(tokens, 3, "the test's token, the gateway's first, and its renewal");
        server.stop().await;
        drop(gw);

        // A bank whose clock is 10 minutes ahead refuses the gateway's timestamps: the item is
        // answered as a transient error, nothing is paid, and the skew is reported.
        let (addr3, server) = start_snap(
            env,
            SimOptions::default(),
            SnapOptions { clock_offset: chrono::Duration::minutes(10), ..snap_options() },
        )
        .await;
        let opts = GatewayOptions {
            journal: journal(env, "skew"),
            ..gateway_options(env, SNAP_BANK, addr3)
        };
        let gw = Gateway::new(opts).unwrap();
        let reply = gw.answer(&transfer_request("k-3")).await.unwrap().unwrap();
        assert_eq!(reply.items[0].status, ItemStatus::Error, "{reply:?}");
        let why = &reply.items[0].reason.as_ref().unwrap().message;
        assert!(why.contains("X-TIMESTAMP"), "{why}");
        let skew = gw.client.skew_seconds.load(std::sync::atomic::Ordering::Relaxed);
        assert!((590..=610).contains(&skew), "skew reported: {skew}");
        assert_eq!(settlements(env.ledger().await).await.unwrap().len(), 3, "k-3 was not paid");
        server.stop().await;
        drop(gw);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_journal_per_gateway() {
    let path = std::env::temp_dir().join(format!("salur-lock-{}.journal", uuid::Uuid::new_v4()));
    let first = gateway::Journal::open(&path).unwrap();
    let second = gateway::Journal::open(&path).err().expect("locked");
    assert!(
        second.to_string().contains("in use by another gateway"),
        "{second}"
    );
    first.record(&["a", "b"]).unwrap();
    drop(first);
    let again = gateway::Journal::open(&path).unwrap();
    assert!(again.contains("a") && again.contains("b") && !again.contains("c"));
    drop(again);
    std::fs::remove_file(path).unwrap();
}

async fn spawn_gateway(env: &TestEnv, addr: SocketAddr) -> harness::Proc {
    let bank = gateway::as_bank_user(&env.settings, &env.pool, SNAP_BANK)
        .await
        .expect("the bank's RabbitMQ user");
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snap/partner.key.pem"
    );
    env.spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_salur"))
            .args([
                "bank-gateway",
                "--bank",
                SNAP_BANK,
                "--snap-url",
                &format!("http://{addr}"),
            ])
            .args([
                "--private-key",
                key,
                "--channel-id",
                "95221",
                "--source-account",
                "0090000000001",
            ])
            .arg("--journal")
            .arg(journal(env, SNAP_BANK))
            .args(["--timeout", "5", "--prefetch", "4"])
            .env("AMQP_URL", &bank.amqp_url)
            .env("SALUR_NAMESPACE", &env.settings.namespace)
            .env("METRICS_ADDR", "off")
            .env("SNAP_CLIENT_KEY", CLIENT_KEY)
            .env("SNAP_CLIENT_SECRET", SECRET)
            .env("SNAP_PARTNER_ID", PARTNER)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_mid_transfer_never_sends_a_transfer_twice_blind() {
    fast_retries(10)
        .worker()
        .run(async |env| {
            // A slow bank keeps transfers in flight when the gateway dies.
            let (addr, server) = start_snap(
                env,
                SimOptions::default(),
                SnapOptions {
                    delay: Duration::from_millis(150),
                    ..snap_options()
                },
            )
            .await;
            let rows = recipients(150, |_| SNAP_BANK);
            let batch = env.submit(&rows, "2026-Q4").await;
            open_accounts_by_file(env, batch, &[SNAP_BANK], SimOptions::default()).await;

            let mut kills = 0;
            let started = Instant::now();
            while kills < 5 {
                let mut gw = spawn_gateway(env, addr).await;
                tokio::time::sleep(Duration::from_millis(700 + 300 * kills)).await;
                gw.kill().expect("SIGKILL");
                gw.wait().unwrap();
                kills += 1;
                assert!(started.elapsed() < Duration::from_secs(120));
                if count_in(&env.pool, batch, State::Disbursed).await == 150 {
                    break;
                }
            }
            assert!(
                kills >= 2,
                "the gateway was killed at least twice mid-batch"
            );
            let mut gw = spawn_gateway(env, addr).await;
            let status = env.wait(batch).await;
            gw.kill().unwrap();
            gw.wait().unwrap();
            assert_eq!(status.count(State::Disbursed), 150, "{status}");
            check_paid_once(env, batch, 150).await;
            check_call_log(env.ledger().await).await;
            let asked: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bank_sim.snap_calls WHERE kind = 'status'",
            )
            .fetch_one(env.ledger().await)
            .await
            .unwrap();
            assert!(
                asked > 0,
                "transfers cut off by a kill were asked about before anything else"
            );
            server.stop().await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_keeps_to_its_rate_limit() {
    harness::env()
        .run(async |env| {
            let (addr, server) = start_snap(env, SimOptions::default(), snap_options()).await;
            let inquiries = |n: usize| BankRequest {
                v: VERSION,
                request_id: uuid::Uuid::new_v4(),
                bank_code: SNAP_BANK.into(),
                sent_at: chrono::Utc::now(),
                body: RequestBody::AccountInquiry {
                    items: (0..n)
                        .map(|i| salur::bank::contract::AccountInquiryItem {
                            item_id: i.to_string(),
                            account_number: format!("00900000{i:05}"),
                            nik: "5371014508800001".into(),
                            name: format!("Maria {i}"),
                        })
                        .collect(),
                },
            };
            let opts = GatewayOptions {
                rate_limit: Some(20.0),
                ..gateway_options(env, SNAP_BANK, addr)
            };
            let gw = Gateway::new(opts).unwrap();
            let started = Instant::now();
            // 1 token call + 20 inquiries at 20 calls/s: at least a second.
            let reply = gw.answer(&inquiries(20)).await.unwrap().unwrap();
            let took = started.elapsed();
            assert!(
                reply.items.iter().all(|i| i.status == ItemStatus::Ok),
                "{reply:?}"
            );
            assert_eq!(reply.items[3].account_name.as_deref(), Some("MARIA 3"));
            assert!(took >= Duration::from_millis(950), "took {took:?}");
            drop(gw);
            server.stop().await;
        })
        .await;
}
