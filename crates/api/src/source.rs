//! Where the API reads from: the [`RegistryView`] trait, and its implementation over a
//! [`Projector`] in the same process ([`ProjectorSource`]).
//!
//! Labels are answered exactly for any `as_of` / `known_at`: from the projector's stored label
//! record when it is current and exact for the asked view date ([`RegistryView::stored_labels`]),
//! else recomputed from the log for that view (as `registry labels` does).
//! The trait is synchronous (sled is); handlers call it on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use registry_domain::config::Config;
use registry_domain::events::PatientId;
use registry_domain::projection::{project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use registry_ingest::{IngestMetrics, RejectionEntry, RejectionFilter};
use registry_projector::Projector;
use registry_store::{Store, StoredAlert};

/// A read failed; the API answers 503 and logs the message (which names no patient).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl From<registry_projector::ProjectorError> for SourceError {
    fn from(e: registry_projector::ProjectorError) -> Self {
        SourceError(e.to_string())
    }
}

impl From<registry_store::StoreError> for SourceError {
    fn from(e: registry_store::StoreError) -> Self {
        SourceError(e.to_string())
    }
}

/// Operational figures for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct OpsFigures {
    /// Events accepted into the log.
    pub events_ingested: u64,
    /// Inputs rejected, by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Events appended but not yet projected.
    pub projection_lag: u64,
    /// Log position the stored labels include (the projector's checkpoint).
    pub projected_events: u64,
    /// Alerts raised, by kind.
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Prometheus text of in-process ingest counters, when the ingest service shares the process.
    pub ingest_counters: Option<String>,
}

/// What the API needs of the registry.
pub trait RegistryView: Send + Sync + 'static {
    /// Every patient id with at least one stored event, sorted.
    fn patient_ids(&self) -> Result<Vec<String>, SourceError>;
    /// Every stored event of one patient, in arrival (seq) order; empty when unknown.
    fn patient_events(&self, patient_id: &str) -> Result<Vec<RecordedEvent>, SourceError>;
    /// The projection of one patient in a view (`None` when not listed in it).
    fn project(&self, patient_id: &str, events: &[RecordedEvent], view: &View) -> Option<PatientProjection>;
    /// One patient's labels line in a view (the bytes `registry labels` prints, no newline)
    /// and its site, when a stored record answers the view exactly without refolding;
    /// `Ok(None)`: refold with [`RegistryView::patient_events`] and [`RegistryView::project`].
    /// Cheap enough to call on the async runtime (one or two store reads, no fold).
    fn stored_labels(&self, _patient_id: &str, _view: &View) -> Result<Option<(String, String)>, SourceError> {
        Ok(None)
    }
    /// The thresholds the projection uses.
    fn config(&self) -> &Config;
    /// Alerts raised at or after `since_micros`, oldest first.
    fn alerts_since(&self, since_micros: i64, limit: usize) -> Result<Vec<StoredAlert>, SourceError>;
    /// `Ok` when the store answers.
    fn ready(&self) -> Result<(), SourceError>;
    /// The log's position (last seq): any answer computed at the same position is still exact.
    /// `None` when the source cannot tell (then nothing is cached).
    fn log_position(&self) -> Option<u64> {
        None
    }
    /// Figures for `/metrics`.
    fn ops(&self) -> Result<OpsFigures, SourceError>;
    /// Up to `limit` kept rejections passing `filter`, oldest first; `Ok(None)` when this API
    /// has no store of rejections (they are the ingest's).
    fn rejections(&self, _filter: &RejectionFilter, _limit: usize) -> Result<Option<Vec<RejectionEntry>>, SourceError> {
        Ok(None)
    }
}

/// [`RegistryView`] over a projector in this process. In `registry serve` it shares the
/// projector's handle (sled allows one process per directory).
#[derive(Debug, Clone)]
pub struct ProjectorSource {
    projector: Projector,
    cfg: Config,
    ingest: Option<Arc<IngestMetrics>>,
    /// The store the ingest keeps its rejections in (the projector's own after an import).
    rejections: Option<Store>,
}

impl ProjectorSource {
    /// `cfg` must be the configuration the projector was built with.
    pub fn new(projector: Projector, cfg: Config) -> ProjectorSource {
        ProjectorSource { projector, cfg, ingest: None, rejections: None }
    }

    /// Exports the in-process ingest counters on `/metrics` (in `registry serve`).
    pub fn with_ingest_metrics(mut self, m: Arc<IngestMetrics>) -> ProjectorSource {
        self.ingest = Some(m);
        self
    }

    /// Serves `GET /rejections` from `store`: the ingest's (in `registry serve`, or
    /// `DIR/ingest/store` beside a serve layout's projector) or, after `registry import`, the
    /// one store that holds both.
    pub fn with_rejections(mut self, store: Store) -> ProjectorSource {
        self.rejections = Some(store);
        self
    }
}

impl RegistryView for ProjectorSource {
    fn patient_ids(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.projector.store().patient_ids()?)
    }

    fn patient_events(&self, patient_id: &str) -> Result<Vec<RecordedEvent>, SourceError> {
        Ok(self.projector.patient_events(patient_id)?)
    }

    fn project(&self, patient_id: &str, events: &[RecordedEvent], view: &View) -> Option<PatientProjection> {
        let pid = PatientId::parse(patient_id)?;
        project_patient(&pid, events, view, &self.cfg)
    }

    fn stored_labels(&self, patient_id: &str, view: &View) -> Result<Option<(String, String)>, SourceError> {
        Ok(self.projector.stored_labels_line(patient_id, view)?)
    }

    fn config(&self) -> &Config {
        &self.cfg
    }

    fn alerts_since(&self, since_micros: i64, limit: usize) -> Result<Vec<StoredAlert>, SourceError> {
        Ok(self.projector.store().alerts_since(since_micros, limit)?)
    }

    fn ready(&self) -> Result<(), SourceError> {
        self.projector.store().labels_through_seq()?;
        Ok(())
    }

    fn log_position(&self) -> Option<u64> {
        Some(self.projector.store().last_seq())
    }

    fn ops(&self) -> Result<OpsFigures, SourceError> {
        let store = self.projector.store();
        // Kept by the store at write time: a scrape does not read the alert history.
        let alerts_by_kind = store.alert_counts_by_kind()?;
        let projected = store.labels_through_seq()?;
        Ok(OpsFigures {
            events_ingested: store.len(),
            rejected_by_reason: store.rejection_count_by_reason()?,
            projection_lag: store.last_seq().saturating_sub(projected),
            projected_events: projected,
            alerts_by_kind,
            ingest_counters: self.ingest.as_ref().map(|m| m.render()),
        })
    }

    fn rejections(&self, filter: &RejectionFilter, limit: usize) -> Result<Option<Vec<RejectionEntry>>, SourceError> {
        let Some(store) = &self.rejections else { return Ok(None) };
        let mut out = Vec::new();
        registry_ingest::for_each_rejection(store, filter, |entry| {
            out.push(entry);
            out.len() < limit
        })?;
        Ok(Some(out))
    }
}
