//! Logging: JSON lines (one object per event) for CloudWatch, human-readable
//! text for a person at a terminal.

use tracing_subscriber::EnvFilter;

/// JSON logs for the Lambda functions; `RUST_LOG` filters (default `info`).
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .try_init();
}

/// Compact text logs on stderr for the CLI (`RUST_LOG`, default `warn`) so
/// stdout stays clean for JSON answers.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .try_init();
}
