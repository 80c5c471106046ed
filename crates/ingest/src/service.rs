//! The ingest service: a durable pull consumer on EVENTS → [`ingest_batch`] → outbox → ACCEPTED.
//!
//! A raw message is acknowledged only after (1) its batch was appended and flushed and (2) every
//! event it accepted was published to ACCEPTED and acknowledged by the stream. The outbox, written
//! in the same atomic batch as the log, is what makes (2) survive a crash: at start-up and after
//! each batch every pending outbox entry is published again with `Nats-Msg-Id = event_id`, so the
//! downstream stream stores it once. Rejections are stored, then published on
//! `registry.rejected.<site>`; the raw message is acknowledged either way, so a poison message
//! never blocks the stream.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;
use registry_bus::{publish_with_id, subjects, BusError};
use registry_store::{Store, StoreError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::batch::{ingest_batch, InputOutcome, RawInput};
use crate::metrics::IngestMetrics;

pub use registry_bus::RECEIVED_AT_HEADER;

/// Settings of the ingest service.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Durable consumer name on EVENTS.
    pub consumer: String,
    /// Most messages in one unit of work.
    pub batch_max: usize,
    /// Redelivery delay of an unacknowledged message.
    pub ack_wait: Duration,
    /// Partitions of ACCEPTED.
    pub partitions: NonZeroU32,
    /// Concurrent publishes awaiting their ack.
    pub publish_concurrency: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            consumer: "ingest".to_owned(),
            batch_max: 1000,
            ack_wait: Duration::from_secs(30),
            partitions: NonZeroU32::MIN,
            publish_concurrency: 256,
        }
    }
}

/// Why the service stopped. Store errors are fatal (the process restarts and redelivery repairs);
/// bus errors after the retries of `registry-bus` likewise.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
    #[error("a blocking store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How long to pause after the bus stayed unavailable through a publish's retries.
const OUTAGE_PAUSE: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct PatientOnly {
    event_id: String,
    patient_id: String,
}

/// Publishes every pending outbox entry to ACCEPTED and marks it done. Safe to repeat.
pub async fn drain_outbox(store: &Store, js: &jetstream::Context, cfg: &IngestConfig) -> Result<usize, IngestError> {
    let mut total = 0;
    loop {
        let pending = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.outbox_pending(4096)).await??
        };
        if pending.is_empty() {
            return Ok(total);
        }
        let results: Vec<Result<u64, IngestError>> = futures::stream::iter(pending.into_iter().map(|e| {
            let js = js.clone();
            let partitions = cfg.partitions;
            async move {
                let keys: PatientOnly = serde_json::from_slice(&e.content)
                    .map_err(|err| IngestError::Consumer(format!("outbox entry seq {} unreadable: {err}", e.seq)))?;
                let subject = subjects::accepted_subject_for_patient(&keys.patient_id, partitions);
                let mut headers = HeaderMap::new();
                headers.insert(RECEIVED_AT_HEADER, e.received_at_micros.to_string().as_str());
                publish_with_id(&js, &subject, &keys.event_id, Some(headers), e.content.into()).await?;
                Ok(e.seq)
            }
        }))
        .buffer_unordered(cfg.publish_concurrency.max(1))
        .collect()
        .await;
        let mut done = Vec::with_capacity(results.len());
        for r in results {
            done.push(r?);
        }
        total += done.len();
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.outbox_done(&done)).await??;
    }
}

fn rejection_notice(subject: &str, code: &str, message: &str, raw: &[u8]) -> (String, Vec<u8>) {
    let id = hex::encode(Sha256::digest([subject.as_bytes(), b"\0", code.as_bytes(), b"\0", raw].concat()));
    let body = serde_json::json!({
        "reason": code,
        "message": message,
        "subject": subject,
        "raw": String::from_utf8_lossy(&raw[..raw.len().min(4096)]),
        "raw_bytes": raw.len(),
    });
    (id, serde_json::to_vec(&body).unwrap_or_default())
}

/// Runs the ingest service until `shutdown` resolves; the batch in flight is finished first.
pub async fn run(
    store: Store,
    js: jetstream::Context,
    cfg: IngestConfig,
    metrics: Arc<IngestMetrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), IngestError> {
    let consumer = registry_bus::durable_pull_consumer(
        &js,
        registry_bus::EVENTS,
        &cfg.consumer,
        "registry.events.>",
        cfg.ack_wait,
        -1,
    )
    .await?;
    drain_outbox(&store, &js, &cfg).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(cfg.batch_max)
        .messages()
        .await
        .map_err(|e| IngestError::Consumer(e.to_string()))?;
    let mut batches = messages.ready_chunks(cfg.batch_max);
    let mut shutdown = pin!(shutdown);
    tracing::info!(consumer = %cfg.consumer, "ingest running");
    loop {
        let batch = tokio::select! {
            _ = &mut shutdown => break,
            b = batches.next() => match b { Some(b) => b, None => break },
        };
        let mut msgs = Vec::with_capacity(batch.len());
        for m in batch {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => tracing::warn!(error = %e, "consumer stream error; continuing"),
            }
        }
        if msgs.is_empty() {
            continue;
        }
        match handle_batch(&store, &js, &cfg, &metrics, msgs).await {
            Ok(()) => {}
            // The server is away longer than one publish's retries (a restart, a partition, an
            // election). Nothing of this batch was acknowledged: it comes back after ack_wait,
            // and its accepted events wait in the outbox, drained at the next batch. Exiting
            // here instead would stop `registry serve` as a whole on a long outage.
            Err(IngestError::Bus(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "bus unavailable; batch left unacknowledged for redelivery");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(OUTAGE_PAUSE) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!("ingest stopped");
    Ok(())
}

async fn handle_batch(
    store: &Store,
    js: &jetstream::Context,
    cfg: &IngestConfig,
    metrics: &IngestMetrics,
    msgs: Vec<jetstream::Message>,
) -> Result<(), IngestError> {
    let owned: Vec<(Vec<u8>, String)> =
        msgs.iter().map(|m| (m.payload.to_vec(), m.subject.to_string())).collect();
    let now = chrono::Utc::now().timestamp_micros();
    let outcomes = {
        let store = store.clone();
        let owned = owned.clone();
        tokio::task::spawn_blocking(move || {
            let inputs: Vec<RawInput<'_>> = owned
                .iter()
                .map(|(bytes, subject)| RawInput {
                    bytes,
                    source: subject,
                    // A subject without a readable site token can match no event: mismatch.
                    subject_site: Some(subjects::site_of_events_subject(subject).unwrap_or("")),
                })
                .collect();
            ingest_batch(&store, &inputs, now)
        })
        .await??
    };
    drain_outbox(store, js, cfg).await?;
    let mut notices = Vec::new();
    for ((bytes, subject), outcome) in owned.iter().zip(&outcomes) {
        metrics.count(outcome);
        if let InputOutcome::Rejected { code, message, .. } = outcome {
            tracing::info!(subject = %subject, reason = code, "event rejected");
            let site = subjects::site_of_events_subject(subject).unwrap_or("unknown");
            let site = if subjects::is_valid_site(site) { site } else { "unknown" };
            let (id, body) = rejection_notice(subject, code, message, bytes);
            notices.push((subjects::rejected_subject(site).unwrap_or_else(|_| "registry.rejected.unknown".to_owned()), id, body));
        }
    }
    for (subject, id, body) in notices {
        // The rejection is already durable in the store; the notice is best effort.
        if let Err(e) = publish_with_id(js, &subject, &id, None, body.into()).await {
            tracing::warn!(error = %e, "rejection notice not published");
        }
    }
    for m in &msgs {
        if let Err(e) = m.ack().await {
            tracing::warn!(error = %e, "ack failed; the message will be redelivered and absorbed as a duplicate");
        }
    }
    Ok(())
}
