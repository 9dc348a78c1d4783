//! Invoking functions synchronously with JSON, on AWS or on the local control
//! plane of `cargo lambda watch` (same Invoke API, so the same client code).

use std::time::Duration;

use anyhow::{bail, Context};
use aws_sdk_lambda::primitives::Blob;

/// A client of the local control plane at `address` (`127.0.0.1:PORT`). No
/// SDK retries: a failed invocation must not run the function again behind
/// the caller's back (the event source mapping decides what comes back).
pub fn local_client(aws: &aws_config::SdkConfig, address: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::config::Builder::from(aws)
        .endpoint_url(format!("http://{address}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(900))
                .build(),
        )
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// Invokes `function` with `payload` and returns its JSON answer; a function
/// error is an error naming the function and quoting what it returned.
pub async fn invoke_json(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let output = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(serde_json::to_vec(payload)?))
        .send()
        .await
        .map_err(|e| {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            anyhow::anyhow!(
                "invoking {function} failed: {} {body}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let answer = output
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    if let Some(kind) = output.function_error() {
        bail!(
            "{function} returned an error ({kind}): {}",
            String::from_utf8_lossy(&answer)
        );
    }
    serde_json::from_slice(&answer)
        .with_context(|| format!("{function} answered something that is not JSON"))
}

/// A resumable function's run (backfill, reconcile): each step invokes it
/// once, passing back the `runId` it returned, until it answers `done: true`.
pub struct Resumable {
    function: String,
    payload: serde_json::Value,
    last_offset: Option<serde_json::Value>,
    stalled: u32,
    pub invocations: u32,
}

impl Resumable {
    pub fn new(function: &str, payload: serde_json::Value) -> Resumable {
        Resumable {
            function: function.to_string(),
            payload,
            last_offset: None,
            stalled: 0,
            invocations: 0,
        }
    }

    /// Invokes once; returns the answer and whether the run is done. Fails
    /// when three invocations in a row make no progress (`nextOffset`
    /// or `next` unchanged).
    pub async fn step(
        &mut self,
        client: &aws_sdk_lambda::Client,
    ) -> anyhow::Result<(serde_json::Value, bool)> {
        let function = &self.function;
        let answer = invoke_json(client, function, &self.payload).await?;
        self.invocations += 1;
        if answer.get("done").and_then(|d| d.as_bool()) != Some(false) {
            return Ok((answer, true));
        }
        let run_id = answer
            .get("runId")
            .cloned()
            .with_context(|| format!("{function} answered done: false without a runId"))?;
        self.payload["runId"] = run_id;
        // Where the run stands: backfill's `nextOffset`, reconcile's `next`.
        let offset = answer
            .get("nextOffset")
            .or_else(|| answer.get("next"))
            .cloned();
        self.stalled = if offset == self.last_offset {
            self.stalled + 1
        } else {
            0
        };
        if self.stalled >= 3 {
            bail!("{function} made no progress in three invocations in a row (nextOffset {offset:?}); see its logs");
        }
        self.last_offset = offset;
        Ok((answer, false))
    }
}

/// Invokes a resumable function until it is done; `on_invocation` sees each answer.
pub async fn invoke_until_done(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: serde_json::Value,
    mut on_invocation: impl FnMut(&serde_json::Value),
) -> anyhow::Result<serde_json::Value> {
    let mut run = Resumable::new(function, payload);
    loop {
        let (answer, done) = run.step(client).await?;
        on_invocation(&answer);
        if done {
            return Ok(answer);
        }
    }
}
