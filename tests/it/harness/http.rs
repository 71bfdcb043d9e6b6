//! `salur api` served in the test process (or spawned as a process), and what tests of its
//! answers share.

use super::{Proc, TestEnv};
use reqwest::{Client, Method, StatusCode};
use salur::api::{self, AppState};
use salur::config::Settings;
use salur::intake::RawRecord;
use salur::ops::office::{self, Role};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const CSV_TYPE: &str = "text/csv";
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The API router of `salur api`, served in this process on an ephemeral port; stopped when
/// it goes ([`Server::stop`] also checks that it ends cleanly).
pub struct Server {
    pub base: String,
    pub client: Client,
    cancel: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Server {
    pub async fn start(settings: Settings, pool: PgPool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(api::serve(
            AppState::new(settings, pool),
            listener,
            cancel.clone(),
        ));
        Self {
            base,
            client: Client::new(),
            cancel,
            handle: Some(handle),
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    pub async fn submit(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .request(
                Method::POST,
                "/v1/batches?program=BPNT&period=2026-Q4",
                Some(token),
            )
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send().await.unwrap()
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        let handle = self.handle.take().expect("running");
        handle.await.unwrap().unwrap();
    }
}

pub async fn add_office(pool: &PgPool, code: &str, role: Role) -> String {
    office::add(pool, code, &format!("Dinas Sosial {code}"), role)
        .await
        .unwrap()
}

pub fn csv_of(records: &[RawRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    salur::demo::generate::write_csv(records, &mut out).unwrap();
    out
}

/// A problem+json answer: checks the status and media type and returns the body.
pub async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.url().path());
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(media, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

pub async fn batches_stored(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM records)")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The peak resident set (VmHWM) of a process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

impl TestEnv {
    /// The API router on the test's settings and database, served in this process.
    pub async fn serve_api(&self) -> Server {
        Server::start(self.settings.clone(), self.pool.clone()).await
    }

    /// The real `salur api` binary on an ephemeral port, on the test's database and namespace,
    /// once it answers `/healthz`; its base URL.
    pub async fn spawn_api(&self) -> (Proc, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = self.spawn(&mut self.salur(&["api", "--addr", &format!("127.0.0.1:{port}")]));
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::new();
        let mut up = false;
        for _ in 0..100 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(up, "salur api did not start");
        (child, base)
    }
}
