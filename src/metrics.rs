//! Prometheus metrics, named once. Labels come from small fixed sets (stage, outcome, reason,
//! bank, program), never a batch, a record or a person.

use prometheus::{
    CounterVec, Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Records leaving a stage, by outcome (advanced, blocked, rejected, retried, dead,
    /// disbursed, failed).
    pub records: IntCounterVec,
    /// Records blocked, rejected, failed or dead, by reason code.
    pub reasons: IntCounterVec,
    /// Time to handle one chunk or bank answer, in one transaction.
    pub stage_duration: HistogramVec,
    /// IDR paid out, by programme.
    pub disbursed_idr: CounterVec,
    /// Messages the relay published from the outbox.
    pub published: IntCounterVec,
    /// Messages parked in `salur.dead` because no consumer could read them.
    pub poison: IntCounterVec,
    /// Messages waiting in the outbox at the last relay pass.
    pub outbox_backlog: IntGauge,
    /// Records (or, when a handler failed, whole messages) sent to a retry delay tier.
    pub retries: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let records = IntCounterVec::new(
            Opts::new(
                "salur_records_total",
                "Records leaving a stage, by outcome.",
            ),
            &["stage", "outcome"],
        )
        .expect("metric");
        let reasons = IntCounterVec::new(
            Opts::new(
                "salur_record_reasons_total",
                "Reasons records were blocked, rejected, failed or declared dead, by code.",
            ),
            &["stage", "reason"],
        )
        .expect("metric");
        let stage_duration = HistogramVec::new(
            HistogramOpts::new(
                "salur_stage_duration_seconds",
                "Time to handle one chunk or bank answer, in one database transaction.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0, 120.0,
            ]),
            &["stage"],
        )
        .expect("metric");
        let disbursed_idr = CounterVec::new(
            Opts::new(
                "salur_disbursed_idr_total",
                "Rupiah disbursed, by programme.",
            ),
            &["program"],
        )
        .expect("metric");
        let published = IntCounterVec::new(
            Opts::new(
                "salur_outbox_published_total",
                "Messages published from the outbox.",
            ),
            &["exchange"],
        )
        .expect("metric");
        let poison = IntCounterVec::new(
            Opts::new(
                "salur_poison_messages_total",
                "Messages no consumer could read, parked on salur.dead, by queue.",
            ),
            &["queue"],
        )
        .expect("metric");
        let outbox_backlog = IntGauge::new(
            "salur_outbox_backlog_messages",
            "Messages waiting in the outbox at the last relay pass.",
        )
        .expect("metric");
        let retries = IntCounterVec::new(
            Opts::new(
                "salur_retries_total",
                "Records sent to a retry delay tier after a transient failure (a message whose \
                 handler failed counts once), by stage and tier; tier bank_timeout counts bank \
                 requests sent again for want of an answer, stale lost stage messages sent again.",
            ),
            &["stage", "tier"],
        )
        .expect("metric");
        for c in [
            Box::new(records.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reasons.clone()),
            Box::new(stage_duration.clone()),
            Box::new(disbursed_idr.clone()),
            Box::new(published.clone()),
            Box::new(poison.clone()),
            Box::new(outbox_backlog.clone()),
            Box::new(retries.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            records,
            reasons,
            stage_duration,
            disbursed_idr,
            published,
            poison,
            outbox_backlog,
            retries,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `/metrics` until `cancel` fires.
pub async fn serve(
    addr: std::net::SocketAddr,
    metrics: std::sync::Arc<Metrics>,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::{Router, http::header, routing::get};
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve metrics on {addr} ({e}): set METRICS_ADDR to a free port, or `off`"
        )
    })?;
    tracing::info!(%addr, "serving /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await?;
    Ok(())
}
