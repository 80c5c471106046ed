//! The projector service: a durable consumer on ACCEPTED → its own copy of the log → catch-up →
//! labels and alerts durable → alerts published (`Nats-Msg-Id = alert_id`) → messages acked.
//!
//! Alerts are written to the store's alert outbox in the same step as the labels, so an alert
//! computed before a crash is published after it; a recomputed alert has the same id (same facts)
//! and is stored and delivered once.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use registry_bus::{publish_with_id, subjects, BusError};
use registry_domain::stored;
use registry_store::{NewEvent, StoreError};

use crate::fold::{Projector, ProjectorError};

pub use registry_bus::RECEIVED_AT_HEADER;

/// Settings of the projector service.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Durable consumer name on ACCEPTED (one per partition).
    pub consumer: String,
    /// Subject filter: `registry.accepted.>` or one partition `registry.accepted.<p>`.
    pub filter: String,
    /// Most messages in one unit of work.
    pub batch_max: usize,
    /// Redelivery delay of an unacknowledged message.
    pub ack_wait: Duration,
    /// How often the clock task looks for overdue follow-up.
    pub clock_interval: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            consumer: "projector".to_owned(),
            filter: "registry.accepted.>".to_owned(),
            batch_max: 1000,
            ack_wait: Duration::from_secs(30),
            clock_interval: Duration::from_secs(3600),
        }
    }
}

/// Why the service stopped (fatal: the process restarts and redelivery repairs).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Projector(#[from] ProjectorError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
    #[error("a blocking store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Publishes every alert in the outbox and marks it done. Safe to repeat.
///
/// Loops until the outbox is empty: a catch-up after a crash or a long outage can raise more
/// alerts than one round takes, and nothing else would publish the rest before the next batch
/// arrives (regression: alerts beyond the first 10,000 stayed unpublished when the stream ended).
pub async fn drain_alerts(projector: &Projector, js: &jetstream::Context) -> Result<usize, ServiceError> {
    let mut total = 0;
    loop {
        let n = drain_alerts_once(projector, js).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

async fn drain_alerts_once(projector: &Projector, js: &jetstream::Context) -> Result<usize, ServiceError> {
    let store = projector.store().clone();
    let pending = tokio::task::spawn_blocking(move || store.alert_outbox_pending(10_000)).await??;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut done = Vec::with_capacity(pending.len());
    let results: Vec<Result<String, ServiceError>> = futures::stream::iter(pending.into_iter().map(|(alert_id, kind, body)| {
        let js = js.clone();
        async move {
            let subject = subjects::alerts_subject(&kind).map_err(|e| ServiceError::Consumer(e.to_string()))?;
            publish_with_id(&js, &subject, &alert_id, None, body.into()).await?;
            Ok(alert_id)
        }
    }))
    .buffer_unordered(64)
    .collect()
    .await;
    for r in results {
        done.push(r?);
    }
    let n = done.len();
    let store = projector.store().clone();
    tokio::task::spawn_blocking(move || store.alert_outbox_done(&done)).await??;
    Ok(n)
}

/// How long to pause after the bus stayed unavailable through a publish's retries.
const OUTAGE_PAUSE: Duration = Duration::from_secs(1);

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Runs the projector service until `shutdown` resolves; the batch in flight is finished first.
pub async fn run(
    projector: Projector,
    js: jetstream::Context,
    cfg: ProjectorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let consumer = registry_bus::durable_pull_consumer(
        &js,
        registry_bus::ACCEPTED,
        &cfg.consumer,
        &cfg.filter,
        cfg.ack_wait,
        -1,
    )
    .await?;
    // Finish what a crash interrupted: labels not yet computed, alerts not yet published.
    {
        let p = projector.clone();
        tokio::task::spawn_blocking(move || p.catch_up(today())).await??;
    }
    drain_alerts(&projector, &js).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(cfg.batch_max)
        .messages()
        .await
        .map_err(|e| ServiceError::Consumer(e.to_string()))?;
    let mut batches = messages.ready_chunks(cfg.batch_max);
    let mut clock = tokio::time::interval(cfg.clock_interval);
    let mut shutdown = pin!(shutdown);
    tracing::info!(consumer = %cfg.consumer, filter = %cfg.filter, "projector running");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = clock.tick() => {
                let p = projector.clone();
                let n = tokio::task::spawn_blocking(move || p.raise_overdue(today())).await??;
                if n > 0 {
                    match drain_alerts(&projector, &js).await {
                        Ok(_) => {}
                        Err(ServiceError::Bus(e)) if e.is_transient() => {
                            tracing::warn!(error = %e, "bus unavailable; overdue alerts stay in the outbox");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            b = batches.next() => {
                let Some(batch) = b else { break };
                let msgs: Vec<jetstream::Message> = batch.into_iter().filter_map(|m| match m {
                    Ok(m) => Some(m),
                    Err(e) => { tracing::warn!(error = %e, "consumer stream error; continuing"); None }
                }).collect();
                if !msgs.is_empty() {
                    match handle_batch(&projector, &js, msgs).await {
                        Ok(()) => {}
                        // The server is away longer than one publish's retries: the labels and the
                        // alert outbox are durable, the messages unacknowledged; redelivery after
                        // ack_wait (or the next batch) publishes the rest. Exiting would stop
                        // `registry serve` as a whole on a long outage.
                        Err(ServiceError::Bus(e)) if e.is_transient() => {
                            tracing::warn!(error = %e, "bus unavailable; batch left unacknowledged for redelivery");
                            tokio::time::sleep(OUTAGE_PAUSE).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    tracing::info!("projector stopped");
    Ok(())
}

async fn handle_batch(projector: &Projector, js: &jetstream::Context, msgs: Vec<jetstream::Message>) -> Result<(), ServiceError> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut rows: Vec<(String, String, Vec<u8>, i64)> = Vec::with_capacity(msgs.len());
    for m in &msgs {
        match stored::decode(&m.payload) {
            Ok(event) => {
                let received = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(RECEIVED_AT_HEADER))
                    .and_then(|v| v.as_str().parse::<i64>().ok())
                    .unwrap_or(now);
                rows.push((event.event_id.hyphenated().to_string(), event.patient_id.as_str().to_owned(), m.payload.to_vec(), received));
            }
            // ACCEPTED carries only events the ingest validated; anything else is not ours.
            Err(e) => tracing::error!(subject = %m.subject, error = %e, "undecodable message on ACCEPTED dropped"),
        }
    }
    let p = projector.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
        let events: Vec<NewEvent<'_>> = rows
            .iter()
            .map(|(id, pid, content, at)| NewEvent { event_id: id, patient_id: pid, content, received_at_micros: *at })
            .collect();
        p.store().append_batch(&events)?;
        p.catch_up(today())?;
        Ok(())
    })
    .await??;
    drain_alerts(projector, js).await?;
    for m in &msgs {
        if let Err(e) = m.ack().await {
            tracing::warn!(error = %e, "ack failed; redelivery is absorbed as a duplicate");
        }
    }
    Ok(())
}
