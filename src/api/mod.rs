//! `salur api`: the HTTP API of the social-affairs offices, under `/v1` (axum).
//!
//! An office submits a batch (CSV, JSON or an Excel workbook), follows it, reads its records
//! (personal data masked), fixes and replays the blocked ones and downloads the report. Every
//! call carries the office's bearer token ([`auth`]); an office sees only its own batches and
//! records (another office's id answers 404, as if it did not exist), an auditor token reads
//! everything and changes nothing. Errors are `application/problem+json` ([`problem`]).
//! The contract is `openapi/salur.v1.json`, served at `/v1/openapi.json`.
//!
//! # Layout
//! - [`auth`]: bearer tokens → [`auth::Caller`].
//! - [`problem`]: RFC 9457 errors.
//! - [`upload`]: `POST /v1/batches`: a streamed upload stored in one transaction, idempotent.
//! - [`batches`], [`records`]: the other `/v1` endpoints.
//! - [`approval`]: a batch's payment list, approved or rejected by a checker.
//! - [`programmes`]: programmes and their budgets (changed by admin tokens).
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - The office's web console at `/` is [`crate::web`], merged into this router.

pub mod approval;
pub mod auth;
pub mod batches;
pub mod health;
pub mod problem;
pub mod programmes;
pub mod reconciliations;
pub mod records;
pub mod upload;

pub use problem::Problem;

use crate::config::Settings;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, http::StatusCode};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The OpenAPI document of `/v1`, kept in the repository and served as it is.
pub const OPENAPI: &str = include_str!("../../openapi/salur.v1.json");

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub metrics: Arc<ApiMetrics>,
    /// Uploads in progress per office (see [`AppState::start_upload`]).
    uploads: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl AppState {
    pub fn new(settings: Settings, pool: PgPool) -> Self {
        Self {
            settings: Arc::new(settings),
            pool,
            metrics: Arc::new(ApiMetrics::new()),
            uploads: Default::default(),
        }
    }

    /// Counts an upload of `office` in, if it has fewer than `API_UPLOADS_PER_OFFICE` in
    /// progress; the guard counts it out when dropped.
    pub fn start_upload(&self, office: &str) -> Option<UploadSlot> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let n = uploads.entry(office.to_owned()).or_default();
        if *n >= self.settings.api_uploads_per_office {
            return None;
        }
        *n += 1;
        Some(UploadSlot {
            uploads: self.uploads.clone(),
            office: office.to_owned(),
        })
    }
}

/// One upload in progress (see [`AppState::start_upload`]).
pub struct UploadSlot {
    uploads: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    office: String,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = uploads.get_mut(&self.office) {
            *n -= 1;
            if *n == 0 {
                uploads.remove(&self.office);
            }
        }
    }
}

/// Metrics of the API process. `route` is the route template (`/v1/batches/{id}`), never an id.
pub struct ApiMetrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub uploaded_records: IntCounterVec,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "salur_http_requests_total",
                "HTTP requests answered, by method, route template and status code.",
            ),
            &["method", "route", "status"],
        )
        .expect("metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "salur_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                120.0, 300.0,
            ]),
            &["route"],
        )
        .expect("metric");
        let uploaded_records = IntCounterVec::new(
            Opts::new(
                "salur_api_uploaded_records_total",
                "Records stored from batches submitted over HTTP, by format.",
            ),
            &["format"],
        )
        .expect("metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(uploaded_records.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            duration,
            uploaded_records,
        }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .with_label_values(&[method, &route, response.status().as_str()])
        .inc();
    state
        .metrics
        .duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/batches", post(upload::submit).get(batches::list))
        .route("/batches/{id}", get(batches::show))
        .route("/batches/{id}/records", get(batches::records))
        .route("/batches/{id}/report.csv", get(batches::report))
        .route("/batches/{id}/replay", post(records::replay_batch))
        .route(
            "/batches/{id}/approval",
            get(approval::show).post(approval::decide),
        )
        .route("/records/{id}", get(records::show).patch(records::fix))
        .route("/records/{id}/replay", post(records::replay_one))
        .route("/programmes", get(programmes::list).post(programmes::add))
        .route(
            "/programmes/{code}/budgets/{period}",
            get(programmes::show_budget),
        )
        .route(
            "/programmes/{code}/budgets/{period}/{office}",
            axum::routing::put(programmes::set_budget),
        )
        .route(
            "/reconciliations",
            post(reconciliations::create).get(reconciliations::list),
        )
        .route("/reconciliations/{id}", get(reconciliations::show));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/v1", v1)
        .merge(crate::web::router(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    // The console's paths answer with its 404 page; the API's with problem+json.
    if crate::web::is_console_path(uri.path()) {
        return crate::web::not_found_page(&headers);
    }
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint: the API is described at /v1/openapi.json",
    )
    .into_response()
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method: see /v1/openapi.json",
    )
}

/// Serves the API on `listener` until `cancel` fires, then finishes the requests in flight.
/// HTTP/1.1 only; a client gets `API_HEADER_TIMEOUT` to send its request headers, after which
/// its connection is closed (a body has its own idle limit, see [`upload`]).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving the HTTP API");
    let header_timeout = state.settings.api_header_timeout;
    let app = router(state);
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let cancel = cancel.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Query parameters, with a problem+json answer when they do not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-parameter",
                    "Invalid query parameters",
                    e.body_text(),
                )
                .with(
                    "fix",
                    "see the parameters of this endpoint in /v1/openapi.json",
                )
            })
    }
}

/// A JSON body, with a problem+json answer when it does not parse.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| Json(j.0))
            .map_err(|e| {
                let status = e.status();
                let slug = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    "unsupported-media-type"
                } else {
                    "malformed-json"
                };
                Problem::new(status, slug, "The JSON body cannot be used", e.body_text())
                    .with("fix", "send Content-Type: application/json and a body as described in /v1/openapi.json")
            })
    }
}
