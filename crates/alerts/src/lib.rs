//! `registry-alerts`: the subscriber side. Delivers every alert of the ALERTS stream to the
//! configured webhooks (POST JSON, `Idempotency-Key: <alert_id>`, retries with exponential
//! backoff, at-least-once) and, optionally, to a line sink (stdout) as NDJSON.
//!
//! Architecture invariant: a message is acknowledged only after every webhook answered 2xx; a
//! webhook that keeps failing gets the message again later (nak with delay), never silently lost.

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use registry_bus::BusError;

/// One delivery target.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http(s)://…` URL receiving `POST` with the alert JSON.
    pub url: String,
}

/// Settings of the alert bridge.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Durable consumer name on ALERTS.
    pub consumer: String,
    /// Subject filter, e.g. `registry.alerts.>` or one kind.
    pub filter: String,
    /// Webhooks; may be empty (stdout only).
    pub webhooks: Vec<Webhook>,
    /// Attempts per webhook within one delivery before the message is nak'ed for later.
    pub attempts: u32,
    /// First retry delay; doubled each attempt.
    pub backoff: Duration,
    /// Delay of a nak'ed message's redelivery.
    pub redeliver_after: Duration,
    /// Timeout of one POST.
    pub request_timeout: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            consumer: "alerts-bridge".to_owned(),
            filter: "registry.alerts.>".to_owned(),
            webhooks: Vec::new(),
            attempts: 5,
            backoff: Duration::from_millis(200),
            redeliver_after: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Where NDJSON lines go (stdout in the binary, a buffer in tests).
pub type LineSink = Arc<Mutex<dyn Write + Send>>;

fn alert_id_of(msg: &jetstream::Message) -> String {
    if let Some(id) = msg.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")) {
        return id.as_str().to_owned();
    }
    serde_json::from_slice::<serde_json::Value>(&msg.payload)
        .ok()
        .and_then(|v| v["alert_id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// POSTs `body` to `hook` until a 2xx or `attempts` are used. Returns whether it was delivered.
async fn deliver(client: &reqwest::Client, cfg: &AlertsConfig, hook: &Webhook, alert_id: &str, body: &[u8]) -> bool {
    let mut delay = cfg.backoff;
    for attempt in 1..=cfg.attempts.max(1) {
        let res = client
            .post(&hook.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", alert_id)
            .body(body.to_vec())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::warn!(url = %hook.url, status = %r.status(), attempt, "webhook refused the alert"),
            Err(e) => tracing::warn!(url = %hook.url, error = %e, attempt, "webhook unreachable"),
        }
        if attempt < cfg.attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    false
}

/// Runs the bridge until `shutdown` resolves.
pub async fn run(
    js: jetstream::Context,
    cfg: AlertsConfig,
    sink: Option<LineSink>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AlertsError> {
    let consumer = registry_bus::durable_pull_consumer(
        &js,
        registry_bus::ALERTS,
        &cfg.consumer,
        &cfg.filter,
        cfg.request_timeout * (cfg.attempts.max(1) + 2) + Duration::from_secs(5),
        -1,
    )
    .await?;
    let client = reqwest::Client::builder().timeout(cfg.request_timeout).build()?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(100)
        .messages()
        .await
        .map_err(|e| AlertsError::Consumer(e.to_string()))?;
    let mut shutdown = pin!(shutdown);
    tracing::info!(consumer = %cfg.consumer, webhooks = cfg.webhooks.len(), "alert bridge running");
    loop {
        let msg = tokio::select! {
            _ = &mut shutdown => break,
            m = messages.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => { tracing::warn!(error = %e, "consumer stream error; continuing"); continue }
                None => break,
            },
        };
        let alert_id = alert_id_of(&msg);
        let mut delivered = true;
        for hook in &cfg.webhooks {
            delivered &= deliver(&client, &cfg, hook, &alert_id, &msg.payload).await;
        }
        if !delivered {
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(cfg.redeliver_after))).await {
                tracing::warn!(error = %e, "nak failed; redelivery after ack wait");
            }
            continue;
        }
        if let Some(sink) = &sink {
            let mut out = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = out.write_all(&msg.payload).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush());
        }
        if let Err(e) = msg.ack().await {
            tracing::warn!(error = %e, "ack failed; the alert may be delivered again (same Idempotency-Key)");
        }
    }
    tracing::info!("alert bridge stopped");
    Ok(())
}
