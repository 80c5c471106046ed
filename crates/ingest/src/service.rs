//! The ingest service: a durable pull consumer on EVENTS → [`ingest_batch`](crate::ingest_batch) → outbox → ACCEPTED.
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
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;
use registry_bus::{publish_with_id, subjects, BusError};
use registry_store::{Store, StoreError, StoredEvent};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::batch::{ingest_batch_accepted, AcceptedEvent, InputOutcome, RawInput};

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
    /// Stored batches that may wait for the publish stage while the next one is stored.
    pub pipeline_depth: usize,
    /// How long a batch may wait for more messages when a backlog is seen
    /// ([`registry_bus::next_batch_lingering`]).
    pub linger: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            consumer: "ingest".to_owned(),
            batch_max: 1000,
            ack_wait: Duration::from_secs(30),
            partitions: NonZeroU32::MIN,
            publish_concurrency: 256,
            pipeline_depth: 2,
            linger: Duration::ZERO,
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
struct PatientOnly<'a> {
    #[serde(borrow)]
    event_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    patient_id: std::borrow::Cow<'a, str>,
}

/// One accepted event on its way to ACCEPTED, with the keys its subject and message id need.
struct Outgoing {
    seq: u64,
    event_id: String,
    patient_id: String,
    content: bytes::Bytes,
    received_at_micros: i64,
}

impl Outgoing {
    /// An outbox entry read back from the log: its keys come from its content.
    fn from_stored(e: StoredEvent) -> Result<Outgoing, IngestError> {
        let keys: PatientOnly<'_> = serde_json::from_slice(&e.content)
            .map_err(|err| IngestError::Consumer(format!("outbox entry seq {} unreadable: {err}", e.seq)))?;
        let (event_id, patient_id) = (keys.event_id.into_owned(), keys.patient_id.into_owned());
        Ok(Outgoing { seq: e.seq, event_id, patient_id, content: e.content.into(), received_at_micros: e.received_at_micros })
    }
}

impl From<AcceptedEvent> for Outgoing {
    fn from(e: AcceptedEvent) -> Outgoing {
        Outgoing {
            seq: e.seq,
            event_id: e.event_id,
            patient_id: e.patient_id,
            content: e.content.into(),
            received_at_micros: e.received_at_micros,
        }
    }
}

/// Publishes outbox entries to ACCEPTED (`Nats-Msg-Id = event_id`, up to
/// `publish_concurrency` publishes awaiting their acks at once) and marks the published ones
/// done; with `wait_done` false, marking runs in the background (see below). Returns how many
/// were published; on an error, the ones published are still marked.
async fn publish_entries(
    store: &Store,
    js: &jetstream::Context,
    cfg: &IngestConfig,
    entries: Vec<Outgoing>,
    wait_done: bool,
) -> Result<usize, IngestError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let results: Vec<Result<u64, IngestError>> = futures::stream::iter(entries.into_iter().map(|e| {
        let js = js.clone();
        let partitions = cfg.partitions;
        async move {
            let subject = subjects::accepted_subject_for_patient(&e.patient_id, partitions);
            let mut headers = HeaderMap::new();
            headers.insert(RECEIVED_AT_HEADER, e.received_at_micros.to_string().as_str());
            publish_with_id(&js, &subject, &e.event_id, Some(headers), e.content).await?;
            Ok(e.seq)
        }
    }))
    .buffer_unordered(cfg.publish_concurrency.max(1))
    .collect()
    .await;
    let mut done = Vec::with_capacity(results.len());
    let mut first_err = None;
    for r in results {
        match r {
            Ok(seq) => done.push(seq),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let n = done.len();
    if !done.is_empty() {
        let store = store.clone();
        let mark = tokio::task::spawn_blocking(move || store.outbox_done(&done));
        if wait_done {
            mark.await??;
        } else {
            // Bookkeeping only: an entry not marked done is published again later under the
            // same Nats-Msg-Id and dropped by the stream, so the acks need not wait for it.
            tokio::spawn(async move {
                if let Ok(Err(e)) = mark.await {
                    tracing::warn!(error = %e, "outbox entries not marked done; they will be published again");
                }
            });
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
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
        let pending = pending.into_iter().map(Outgoing::from_stored).collect::<Result<Vec<_>, _>>()?;
        total += publish_entries(store, js, cfg, pending, true).await?;
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

/// A batch whose store step is done, waiting for its publishes and acks.
struct Stored {
    msgs: Vec<jetstream::Message>,
    subjects: Vec<String>,
    outcomes: Vec<InputOutcome>,
    /// The accepted events as appended (canonical bytes, arrival time, keys): exactly what the
    /// outbox would publish.
    accepted: Vec<Outgoing>,
    started: Instant,
    store_time: Duration,
}

/// Runs the ingest service until `shutdown` resolves; the batches in flight are finished first.
///
/// Two stages run concurrently, so that the fsync of one batch overlaps the publishing of the
/// one before (docs/bus.md, "Pipelining"):
/// 1. *store*: take every message waiting (up to `batch_max`), validate and append them with one
///    flush ([`ingest_batch`](crate::ingest_batch));
/// 2. *publish*: publish that batch's accepted events to ACCEPTED, all at once, await the acks,
///    mark them done in the outbox, send the rejection notices, then acknowledge the messages.
///
/// Batches go through stage 2 in the order they left stage 1. A message is acknowledged only
/// after its batch was flushed and its events were acknowledged by ACCEPTED. A batch with a
/// duplicate (an event stored earlier, maybe still in the outbox) or following a failed
/// publish first drains the whole outbox, so no duplicate is acknowledged before its event
/// is downstream.
pub async fn run(
    store: Store,
    js: jetstream::Context,
    cfg: IngestConfig,
    metrics: Arc<IngestMetrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), IngestError> {
    resume_or_replay(&store, &js, &cfg.consumer).await?;
    let consumer = registry_bus::durable_pull_consumer_with(
        &js,
        registry_bus::EVENTS,
        &cfg.consumer,
        "registry.events.>",
        cfg.ack_wait,
        -1,
        max_ack_pending(cfg.batch_max, cfg.pipeline_depth),
    )
    .await?;
    drain_outbox(&store, &js, &cfg).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(cfg.batch_max)
        .messages()
        .await
        .map_err(|e| IngestError::Consumer(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Stored>(cfg.pipeline_depth.max(1));
    let publisher = tokio::spawn(publish_stage(store.clone(), js.clone(), cfg.clone(), metrics, rx));
    let mut shutdown = pin!(shutdown);
    tracing::info!(consumer = %cfg.consumer, "ingest running");
    let mut store_err = None;
    loop {
        let msgs = tokio::select! {
            _ = &mut shutdown => break,
            b = registry_bus::next_batch_lingering(&mut messages, cfg.batch_max, cfg.linger) => match b { Some(b) => b, None => break },
        };
        let started = Instant::now();
        let subjects: Vec<String> = msgs.iter().map(|m| m.subject.to_string()).collect();
        let payloads: Vec<bytes::Bytes> = msgs.iter().map(|m| m.payload.clone()).collect();
        let stream_seqs: Vec<Option<u64>> = msgs.iter().map(|m| m.info().ok().map(|i| i.stream_sequence)).collect();
        let now = chrono::Utc::now().timestamp_micros();
        let outcomes = {
            let store = store.clone();
            let subjects = subjects.clone();
            let consumer = cfg.consumer.clone();
            tokio::task::spawn_blocking(move || {
                let inputs: Vec<RawInput<'_>> = payloads
                    .iter()
                    .zip(&subjects)
                    .zip(&stream_seqs)
                    .map(|((bytes, subject), stream_seq)| RawInput {
                        bytes,
                        source: subject,
                        // A subject without a readable site token can match no event: mismatch.
                        subject_site: Some(subjects::site_of_events_subject(subject).unwrap_or("")),
                        stream_seq: *stream_seq,
                    })
                    .collect();
                // Durable with the batch's flush, before any of it is acknowledged.
                if let Some(last) = stream_seqs.iter().flatten().max() {
                    store.note_bus_through(&consumer, *last)?;
                }
                let (outcomes, accepted) = ingest_batch_accepted(&store, &inputs, now)?;
                Ok::<_, IngestError>((outcomes, accepted.into_iter().map(Outgoing::from).collect::<Vec<_>>()))
            })
            .await
        };
        let (outcomes, accepted) = match outcomes {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                store_err = Some(e);
                break;
            }
            Err(e) => {
                store_err = Some(IngestError::from(e));
                break;
            }
        };
        let store_time = started.elapsed();
        if tx.send(Stored { msgs, subjects, outcomes, accepted, started, store_time }).await.is_err() {
            // The publish stage stopped with an error: it is reported below.
            break;
        }
    }
    drop(tx);
    let published = publisher.await?;
    if let Some(e) = store_err {
        return Err(e);
    }
    published?;
    tracing::info!("ingest stopped");
    Ok(())
}

/// Before the consumer is created: when it had acknowledged messages this store does not hold
/// (the store was restored from a backup, or lost), it is deleted, so that it is created again
/// and EVENTS is read from its first message; the events the store holds come again as
/// duplicates (event_id) and its rejections are not kept twice (stream sequence). docs/bus.md,
/// "A store restored from a backup".
async fn resume_or_replay(store: &Store, js: &jetstream::Context, consumer: &str) -> Result<(), IngestError> {
    let through = store.bus_through(consumer)?;
    let empty = store.holds_nothing()?;
    let start = registry_bus::replay_if_store_behind(js, registry_bus::EVENTS, consumer, through, empty).await?;
    if let (registry_bus::ConsumerStart::Resume { acked_through }, None) = (start, through) {
        // A store written before the position was recorded: taken as current.
        store.note_bus_through(consumer, acked_through)?;
    }
    Ok(())
}

/// The server's limit of unacknowledged messages for a pipeline of `depth` batches of
/// `batch_max`: the batch being stored, the ones queued for and in the publish stage, and the
/// next one being fetched.
fn max_ack_pending(batch_max: usize, depth: usize) -> i64 {
    i64::try_from(batch_max.saturating_mul(depth + 3)).unwrap_or(i64::MAX).max(1000)
}

async fn publish_stage(
    store: Store,
    js: jetstream::Context,
    cfg: IngestConfig,
    metrics: Arc<IngestMetrics>,
    mut rx: tokio::sync::mpsc::Receiver<Stored>,
) -> Result<(), IngestError> {
    // Set after a failed publish: the outbox may hold entries of earlier batches.
    let mut outbox_dirty = false;
    while let Some(batch) = rx.recv().await {
        let n = batch.msgs.len();
        let (started, store_time) = (batch.started, batch.store_time);
        match publish_batch(&store, &js, &cfg, &metrics, batch, outbox_dirty).await {
            Ok(()) => {
                outbox_dirty = false;
                tracing::debug!(
                    n,
                    store_ms = store_time.as_secs_f64() * 1e3,
                    total_ms = started.elapsed().as_secs_f64() * 1e3,
                    "ingest batch"
                );
            }
            // The server is away longer than one publish's retries (a restart, a partition, an
            // election). Nothing of this batch was acknowledged: it comes back after ack_wait,
            // and its accepted events wait in the outbox, drained before the next batch is
            // acknowledged. Exiting here instead would stop `registry serve` as a whole.
            Err(IngestError::Bus(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "bus unavailable; batch left unacknowledged for redelivery");
                outbox_dirty = true;
                tokio::time::sleep(OUTAGE_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn publish_batch(
    store: &Store,
    js: &jetstream::Context,
    cfg: &IngestConfig,
    metrics: &IngestMetrics,
    batch: Stored,
    outbox_dirty: bool,
) -> Result<(), IngestError> {
    let Stored { msgs, subjects, outcomes, accepted, .. } = batch;
    let has_duplicate = outcomes.iter().any(|o| matches!(o, InputOutcome::Duplicate { .. }));
    if outbox_dirty || has_duplicate {
        drain_outbox(store, js, cfg).await?;
    }
    publish_entries(store, js, cfg, accepted, false).await?;
    let mut notices = Vec::new();
    for ((m, subject), outcome) in msgs.iter().zip(&subjects).zip(&outcomes) {
        metrics.count(outcome);
        if let InputOutcome::Rejected { code, message, .. } = outcome {
            tracing::info!(subject = %subject, reason = code, "event rejected");
            let site = subjects::site_of_events_subject(subject).unwrap_or("unknown");
            let site = if subjects::is_valid_site(site) { site } else { "unknown" };
            let (id, body) = rejection_notice(subject, code, message, &m.payload);
            notices.push((subjects::rejected_subject(site).unwrap_or_else(|_| "registry.rejected.unknown".to_owned()), id, body));
        }
    }
    // The rejections are already durable in the store; the notices are best effort, sent
    // together and their acks awaited together.
    futures::stream::iter(notices.into_iter().map(|(subject, id, body)| async move {
        if let Err(e) = publish_with_id(js, &subject, &id, None, body.into()).await {
            tracing::warn!(error = %e, "rejection notice not published");
        }
    }))
    .buffer_unordered(cfg.publish_concurrency.max(1))
    .collect::<Vec<()>>()
    .await;
    for m in &msgs {
        if let Err(e) = m.ack().await {
            tracing::warn!(error = %e, "ack failed; the message will be redelivered and absorbed as a duplicate");
        }
    }
    Ok(())
}
