//! `/healthz` (the process answers), `/readyz` (PostgreSQL and RabbitMQ answer) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus::Encoder as _;
use serde_json::json;
use std::time::Duration;

use super::{AppState, Problem};
use crate::broker::Broker;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, Problem> {
    let limit = Duration::from_secs(3);
    let answered = tokio::time::timeout(limit, crate::store::ping(&state.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    // No answer with every connection of the pool taken is a busy pool, not a database down.
    let pool = &state.pool;
    let exhausted =
        !answered && pool.size() >= pool.options().get_max_connections() && pool.num_idle() == 0;
    let database = answered;
    let db_word = if answered {
        "ok"
    } else if exhausted {
        "pool exhausted"
    } else {
        "unreachable"
    };
    let broker = tokio::time::timeout(limit, async {
        let b = Broker::connect(&state.settings).await?;
        b.close().await;
        anyhow::Ok(())
    })
    .await
    .is_ok_and(|r| r.is_ok());
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    if database && broker {
        Ok(Json(
            json!({ "status": "ready", "database": "ok", "broker": "ok" }),
        ))
    } else {
        let fix = if exhausted {
            "every database connection is in use: wait, or raise SALUR_DB_POOL"
        } else {
            "start the services (scripts/services.sh) or check DATABASE_URL and AMQP_URL"
        };
        Err(Problem::unavailable(format!(
            "database {db_word}, broker {}: {fix}",
            word(broker)
        ))
        .with("database", db_word)
        .with("broker", word(broker)))
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&state.metrics.registry.gather(), &mut buf);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buf,
    )
}
