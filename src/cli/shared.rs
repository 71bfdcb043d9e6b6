//! What several commands share: the shutdown signal, a rate argument, the operator's name,
//! JSON output.

use tokio_util::sync::CancellationToken;

/// Cancelled on SIGINT or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: finishing chunks in flight");
        t.cancel();
    });
    token
}

/// A share between 0 and 1 (`--transient-error-rate 0.2`).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rate between 0 and 1")),
    }
}

/// Who runs the command, for the audit trail: `$USER`, else `operator`.
pub fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

/// A person at this command line, for the audit trail: `--person`, else the login name.
pub fn actor(person: Option<String>) -> salur::domain::Actor {
    salur::domain::Actor::cli(Some(person.unwrap_or_else(operator)))
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
