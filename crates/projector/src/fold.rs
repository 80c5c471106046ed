//! Per-patient refold of the log: catch-up after appends, views for queries, verification.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::alerts::{alerts_between, Alert};
use registry_domain::config::Config;
use registry_domain::events::{Event, PatientId};
use registry_domain::projection::{exact_range, project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use registry_domain::stored;
use registry_store::{Store, StoreError, StoredEvent};
use serde::{Deserialize, Serialize};

use crate::cache::{self, PatientCache};

/// Why a projection step failed. Store errors are retried by the caller's loop (the checkpoint
/// was not advanced); a decode error means a damaged log and stops with the seq named.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event at seq {seq} cannot be decoded: {source}")]
    Decode { seq: u64, source: stored::DecodeError },
    #[error("stored labels of {patient_id} are not readable: {source}")]
    Record { patient_id: String, source: serde_json::Error },
}

/// What is stored per patient: the labels and the view they were computed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelRecord {
    /// The clinical view date used (the projector's date when it ran).
    pub as_of: NaiveDate,
    /// The log position the labels include (events of this patient with seq ≤ it).
    pub through_seq: u64,
    /// The labels JSON object, exactly as `registry labels` prints it.
    pub labels: serde_json::Value,
    /// What lets a reader answer from the record without refolding (absent in records written
    /// before it existed: then readers refold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves: Option<Serves>,
}

/// The views a [`LabelRecord`]'s labels are exact for, and the patient's site: with the log
/// projected through its end, the labels in view (d, known_at none) are the record's for every
/// d in [`from`, `until`) (`None`: unbounded; [`registry_domain::projection::exact_range`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serves {
    /// The site of the patient (its first stored event's `site_id`), for access checks.
    pub site: String,
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

impl Serves {
    /// Whether the record answers view date `d`.
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= d) && self.until.is_none_or(|u| d < u)
    }
}

/// [`LabelRecord`] as written, borrowing the labels: the same JSON bytes (same field order;
/// serde_json keeps struct order with `preserve_order`) without building a `Value` first.
#[derive(Serialize)]
struct LabelRecordRef<'a, L: Serialize> {
    as_of: NaiveDate,
    through_seq: u64,
    labels: &'a L,
    serves: Serves,
}

/// A stored [`LabelRecord`] read for answering: the labels' bytes as stored, not parsed.
#[derive(Deserialize)]
struct LabelRecordPeek<'a> {
    #[serde(borrow)]
    labels: &'a serde_json::value::RawValue,
    #[serde(default)]
    serves: Option<Serves>,
}

/// How many patients one catch-up refolds and writes at a time (bounds its memory).
const CATCH_UP_CHUNK: usize = 2_000;

/// The outcome of one catch-up.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Patients whose labels were recomputed.
    pub patients: usize,
    /// How many alerts the change raised (stored in the alert history and outbox; a repeat of
    /// an already stored alert_id counts but is stored once).
    pub alerts: usize,
    /// The checkpoint after the step.
    pub through_seq: u64,
}

/// The projector over one store.
#[derive(Debug, Clone)]
pub struct Projector {
    store: Store,
    cfg: Config,
    chunk: usize,
    threads: usize,
    /// Shared by the clones of this projector (they refold the same store).
    cache: Arc<PatientCache>,
}

/// One patient refolded by a catch-up: its label record to write (`None`: not listed in the
/// view) and the alerts the change raises.
struct Refolded {
    value: Option<Vec<u8>>,
    alerts: Vec<Alert>,
}

/// Below this many patients per thread a chunk is refolded on the calling thread alone.
const MIN_PATIENTS_PER_THREAD: usize = 64;

fn micros_to_utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn decode(e: &StoredEvent) -> Result<RecordedEvent, ProjectorError> {
    let event = stored::decode(&e.content).map_err(|source| ProjectorError::Decode { seq: e.seq, source })?;
    Ok(RecordedEvent { event, seq: e.seq, received_at: micros_to_utc(e.received_at_micros) })
}

#[derive(Deserialize)]
struct PatientOnly<'a> {
    #[serde(borrow)]
    patient_id: std::borrow::Cow<'a, str>,
}

/// The [`Serves`] of a label record: `p` projected from `events` (as the catch-up reads them)
/// in view (`as_of`, known_at none).
fn serves_for(patient_id: &str, events: &[RecordedEvent], as_of: NaiveDate, p: &PatientProjection, cfg: &Config) -> Serves {
    let mut own_dates: Vec<NaiveDate> =
        events.iter().filter(|e| e.event.patient_id.as_str() == patient_id).map(|e| e.event.occurred_on).collect();
    own_dates.sort_unstable();
    own_dates.dedup();
    let (from, until) = exact_range(&own_dates, as_of, Some(p), cfg);
    // The site as the API reads it from the events (the patient's first stored one's).
    let site = registry_domain::view::patient_site(patient_id, events).unwrap_or_default().to_owned();
    Serves { site, from, until }
}

impl Projector {
    pub fn new(store: Store, cfg: Config) -> Projector {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Projector { store, cfg, chunk: CATCH_UP_CHUNK, threads, cache: Arc::new(PatientCache::new(0)) }
    }

    /// The same projector keeping the decoded events and last projection of recently refolded
    /// patients, up to `events` events in all (crate::cache; default 0: none kept, every refold
    /// reads the log). For a long-running service, whose catch-ups refold the same patients
    /// again and again; the labels and alerts are the same either way.
    pub fn with_cache_events(mut self, events: usize) -> Projector {
        self.cache = Arc::new(PatientCache::new(events));
        self
    }

    /// [`Projector::with_cache_events`], admitting a patient not in the cache only over entries
    /// idle for `min_idle` (default [`MIN_IDLE`](crate::MIN_IDLE); zero: plain least recently used).
    pub fn with_cache(mut self, events: usize, min_idle: std::time::Duration) -> Projector {
        self.cache = Arc::new(PatientCache::with_min_idle(events, min_idle));
        self
    }

    /// Events and patients held by the refold cache.
    pub fn cache_size(&self) -> (usize, usize) {
        self.cache.size()
    }

    /// The same projector refolding `patients` patients per written chunk in [`Projector::catch_up`]
    /// (default 2,000; at least 1). Smaller chunks use less memory; the result is the same.
    pub fn with_chunk(mut self, patients: usize) -> Projector {
        self.chunk = patients.max(1);
        self
    }

    /// The same projector refolding a catch-up's patients on at most `threads` threads (default:
    /// the cores available; at least 1). Each chunk's patients are split in contiguous parts
    /// and the results joined in patient order, so the labels, alerts and writes are the same
    /// whatever the number.
    pub fn with_threads(mut self, threads: usize) -> Projector {
        self.threads = threads.max(1);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every event of one patient, decoded, in seq order.
    ///
    /// Also included: any other patient's event that one of this patient's retractions or
    /// corrections names, so the fold can see the link crosses patients, ignore it and say so
    /// (domain.md, "Which events count"). Those events never count for this patient.
    pub fn patient_events(&self, patient_id: &str) -> Result<Vec<RecordedEvent>, ProjectorError> {
        self.patient_events_with(patient_id, &mut HashMap::new())
    }

    /// [`Projector::patient_events`], taking the decoded event of a seq from `fresh` (removing
    /// it) instead of decoding the stored bytes again.
    fn patient_events_with(
        &self,
        patient_id: &str,
        fresh: &mut HashMap<u64, Event>,
    ) -> Result<Vec<RecordedEvent>, ProjectorError> {
        let mut events = self.decode_own(patient_id, self.store.patient_events(patient_id)?, fresh)?;
        let linked = self.linked_events(&events)?;
        events.extend(linked);
        Ok(events)
    }

    /// Decodes stored events of `patient_id` (taking a seq's event from `fresh` when it is
    /// there) and checks that each is the patient's.
    fn decode_own(
        &self,
        patient_id: &str,
        stored: Vec<StoredEvent>,
        fresh: &mut HashMap<u64, Event>,
    ) -> Result<Vec<RecordedEvent>, ProjectorError> {
        let events: Vec<RecordedEvent> = stored
            .iter()
            .map(|e| match (!fresh.is_empty()).then(|| fresh.remove(&e.seq)).flatten() {
                Some(event) => Ok(RecordedEvent { event, seq: e.seq, received_at: micros_to_utc(e.received_at_micros) }),
                None => decode(e),
            })
            .collect::<Result<_, _>>()?;
        for e in &events {
            if e.event.patient_id.as_str() != patient_id {
                return Err(ProjectorError::Decode {
                    seq: e.seq,
                    source: stored::DecodeError::Field { field: "patient_id (index disagrees with content)", value: e.event.patient_id.to_string() },
                });
            }
        }
        Ok(events)
    }

    /// The other patients' events that one of `own`'s retractions or corrections names (see
    /// [`Projector::patient_events`]), in the order of their ids.
    fn linked_events(&self, own: &[RecordedEvent]) -> Result<Vec<RecordedEvent>, ProjectorError> {
        let target = |e: &RecordedEvent| match &e.event.payload {
            registry_domain::events::Payload::EventRetracted(r) => Some(r.target_event_id),
            _ => e.event.supersedes,
        };
        let mut linked = BTreeSet::new();
        // Most patients have no retraction or correction: no set of their own ids to build.
        if own.iter().any(|e| target(e).is_some()) {
            let ids: BTreeSet<uuid::Uuid> = own.iter().map(|e| e.event.event_id).collect();
            for e in own {
                if let Some(t) = target(e).filter(|t| !ids.contains(t)) {
                    linked.insert(t);
                }
            }
        }
        let mut events = Vec::new();
        for target in linked {
            if let Some(seq) = self.store.seq_of_event_id(&target.hyphenated().to_string())? {
                if let Some(stored) = self.store.get(seq)? {
                    events.push(decode(&stored)?);
                }
            }
        }
        Ok(events)
    }

    /// Patients with an event after `after_seq` (through `through_seq`), sorted. When `fresh`
    /// holds every one of those events (the batch just appended), the log is not read.
    fn touched_since(
        &self,
        after_seq: u64,
        through_seq: u64,
        fresh: &HashMap<u64, Event>,
    ) -> Result<BTreeSet<String>, ProjectorError> {
        let mut touched = BTreeSet::new();
        if (after_seq + 1..=through_seq).all(|seq| fresh.contains_key(&seq)) {
            for seq in after_seq + 1..=through_seq {
                if let Some(e) = fresh.get(&seq) {
                    touched.insert(e.patient_id.as_str().to_owned());
                }
            }
            return Ok(touched);
        }
        for e in self.store.iter_from(after_seq + 1) {
            let e = e?;
            let p: PatientOnly<'_> = serde_json::from_slice(&e.content)
                .map_err(|err| ProjectorError::Decode { seq: e.seq, source: err.into() })?;
            touched.insert(p.patient_id.into_owned());
        }
        Ok(touched)
    }

    fn project(&self, patient_id: &str, events: &[RecordedEvent], view: &View) -> Option<PatientProjection> {
        let pid = PatientId::parse(patient_id)?;
        project_patient(&pid, events, view, &self.cfg)
    }

    /// Recomputes the labels of every patient with events after the checkpoint, stores them with
    /// the new checkpoint in one atomic batch, and returns the alerts the change raises.
    /// `view_date` is the clinical date of the view (today, in a running service).
    pub fn catch_up(&self, view_date: NaiveDate) -> Result<CatchUp, ProjectorError> {
        self.catch_up_with(view_date, HashMap::new())
    }

    /// [`Projector::catch_up`] with the events just appended already decoded, by seq: the
    /// service decodes every message it receives, and refolding would otherwise decode them a
    /// second time from the log. `fresh` must hold exactly what decoding the stored bytes at
    /// each seq gives; seqs it lacks are read and decoded from the log.
    pub fn catch_up_with(&self, view_date: NaiveDate, mut fresh: HashMap<u64, Event>) -> Result<CatchUp, ProjectorError> {
        let before_seq = self.store.labels_through_seq()?;
        let through_seq = self.store.last_seq();
        if through_seq <= before_seq {
            return Ok(CatchUp { patients: 0, alerts: 0, through_seq: before_seq });
        }
        // From an empty checkpoint every patient is touched: the patient index says who they
        // are without reading the log twice.
        let touched: BTreeSet<String> = if before_seq == 0 {
            self.store.patient_ids()?.into_iter().collect()
        } else {
            self.touched_since(before_seq, through_seq, &fresh)?
        };
        let view = View { as_of: view_date, known_at: None };
        // Patients are refolded and written in chunks so that memory stays bounded however many
        // are touched (a full rebuild touches all). Every chunk but the last keeps the old
        // checkpoint: after a crash mid-way the next catch-up redoes the same set from
        // `before_seq`, overwriting the labels already written and recomputing the same alerts
        // (same ids, stored once). Readers may meet labels newer than the checkpoint, never older.
        let t0 = std::time::Instant::now();
        let touched: Vec<String> = touched.into_iter().collect();
        let chunks = touched.len().div_ceil(self.chunk).max(1);
        let mut alerts_raised = 0;
        for (i, chunk) in touched.chunks(self.chunk).enumerate() {
            let refolded = self.refold_chunk(chunk, &mut fresh, before_seq, through_seq, &view)?;
            let mut writes: Vec<(&str, Option<Vec<u8>>)> = Vec::with_capacity(chunk.len());
            let mut alerts = Vec::new();
            for (patient_id, r) in chunk.iter().zip(refolded) {
                alerts.extend(r.alerts);
                writes.push((patient_id.as_str(), r.value));
            }
            // Alerts first: if the process dies before the labels are written, the next catch-up
            // computes the same alerts (same ids) and they are stored once. One flush, after the
            // last chunk's labels and checkpoint, makes the whole catch-up durable (sled's flush
            // is database-wide). The alerts are written before the checkpoint that covers them,
            // and sled recovers its writes in order (a crash leaves a prefix of them), so a
            // checkpoint that survived a crash has its alerts. The earlier chunks keep the old
            // checkpoint, so losing them in a crash loses nothing.
            let last = i + 1 == chunks;
            alerts_raised += alerts.len();
            self.persist_alerts(alerts, false)?;
            if last {
                self.store.put_labels_batch(writes, through_seq)?;
            } else {
                self.store.put_labels_batch_unflushed(writes, before_seq)?;
            }
        }
        if touched.is_empty() {
            self.store.put_labels_batch(Vec::<(&str, Option<Vec<u8>>)>::new(), through_seq)?;
        }
        tracing::debug!(
            patients = touched.len(),
            chunks,
            alerts = alerts_raised,
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "catch-up"
        );
        Ok(CatchUp { patients: touched.len(), alerts: alerts_raised, through_seq })
    }

    /// Refolds the patients of one chunk, in order: on several threads when the chunk has enough
    /// patients (each thread takes a contiguous part, with the `fresh` events of its patients),
    /// else on this one.
    fn refold_chunk(
        &self,
        chunk: &[String],
        fresh: &mut HashMap<u64, Event>,
        before_seq: u64,
        through_seq: u64,
        view: &View,
    ) -> Result<Vec<Refolded>, ProjectorError> {
        let threads = self.threads.min(chunk.len() / MIN_PATIENTS_PER_THREAD).max(1);
        if threads == 1 {
            return chunk.iter().map(|p| self.refold(p, fresh, before_seq, through_seq, view)).collect();
        }
        let per = chunk.len().div_ceil(threads);
        let parts: Vec<&[String]> = chunk.chunks(per).collect();
        // Hand each part the fresh events of its patients; the others stay for later chunks.
        let mut part_fresh: Vec<HashMap<u64, Event>> = parts.iter().map(|_| HashMap::new()).collect();
        if !fresh.is_empty() {
            let part_of: HashMap<&str, usize> =
                parts.iter().enumerate().flat_map(|(i, part)| part.iter().map(move |p| (p.as_str(), i))).collect();
            let taken: Vec<u64> =
                fresh.iter().filter(|(_, e)| part_of.contains_key(e.patient_id.as_str())).map(|(seq, _)| *seq).collect();
            for seq in taken {
                if let Some(e) = fresh.remove(&seq) {
                    if let Some(i) = part_of.get(e.patient_id.as_str()) {
                        part_fresh[*i].insert(seq, e);
                    }
                }
            }
        }
        // On rayon's pool: its threads live as long as the process. Threads spawned per chunk
        // (std::thread::scope, before) each started a fresh allocator heap, and the heaps they
        // left behind grew the projector's RSS once its catch-ups got large enough to split
        // (docs/bus.md, "Memory soak"). `collect` keeps the parts' order.
        use rayon::prelude::*;
        let parts: Vec<Vec<Refolded>> = parts
            .into_par_iter()
            .zip(part_fresh)
            .map(|(part, mut mine)| {
                part.iter().map(|p| self.refold(p, &mut mine, before_seq, through_seq, view)).collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// One patient of a catch-up: the labels through `through_seq` and the alerts raised by the
    /// change from the labels through `before_seq`. The patient's cached events (crate::cache)
    /// are extended with what the log holds after them; the entry goes back to the cache only
    /// when the refold succeeded.
    fn refold(
        &self,
        patient_id: &str,
        fresh: &mut HashMap<u64, Event>,
        before_seq: u64,
        through_seq: u64,
        view: &View,
    ) -> Result<Refolded, ProjectorError> {
        let mut entry = self.cache.take(patient_id);
        let new = self.store.patient_events_after(patient_id, entry.upto())?;
        let new = self.decode_own(patient_id, new, fresh)?;
        entry.events.extend(new);
        let refolded = self.refold_entry(patient_id, &mut entry, before_seq, through_seq, view)?;
        self.cache.put(patient_id, entry);
        Ok(refolded)
    }

    /// [`Projector::refold`] over the patient's own events in `entry` (every one through
    /// `entry.upto()`, ascending) plus the events its links name. Projects exactly what a refold
    /// from the log would: events with seq ≤ `through_seq` (and ≤ `before_seq` for "before").
    /// "Before" is taken from the entry when its last projection was over the same events in
    /// the same view with no link in play; "after" is left in the entry for the next refold.
    fn refold_entry(
        &self,
        patient_id: &str,
        entry: &mut cache::Entry,
        before_seq: u64,
        through_seq: u64,
        view: &View,
    ) -> Result<Refolded, ProjectorError> {
        let own: &[RecordedEvent] = &entry.events;
        let linked = self.linked_events(own)?;
        let n_after = own.partition_point(|e| e.seq <= through_seq);
        let n_before = own.partition_point(|e| e.seq <= before_seq);
        // Own events first, then the linked ones (as `patient_events` lists them).
        let first = |n: usize, limit: u64| -> Cow<'_, [RecordedEvent]> {
            if linked.is_empty() {
                Cow::Borrowed(&own[..n])
            } else {
                Cow::Owned(own[..n].iter().chain(linked.iter().filter(|e| e.seq <= limit)).cloned().collect())
            }
        };
        let events = first(n_after, through_seq);
        let old_len = n_before + linked.iter().filter(|e| e.seq <= before_seq).count();
        let before = match entry.projection.take() {
            _ if old_len == 0 => None,
            Some(cached) if linked.is_empty() && cached.answers(view, n_before) => cached.result,
            _ => self.project(patient_id, &first(n_before, before_seq), view),
        };
        let after = self.project(patient_id, &events, view);
        let completing = events.iter().filter(|e| e.seq > before_seq).map(|e| e.event.event_id).next_back();
        let refolded = match &after {
            Some(p) => {
                let alerts = alerts_between(before.as_ref(), p, completing);
                let serves = serves_for(patient_id, &events, view.as_of, p, &self.cfg);
                let record = LabelRecordRef { as_of: view.as_of, through_seq, labels: &p.labels, serves };
                Refolded { value: Some(serde_json::to_vec(&record).unwrap_or_default()), alerts }
            }
            None => Refolded { value: None, alerts: Vec::new() },
        };
        drop(events);
        if linked.is_empty() {
            entry.projection = Some(cache::CachedProjection { view: *view, events: n_after, result: after });
        }
        Ok(refolded)
    }

    /// Stores alerts in the history and the outbox (each alert_id once).
    fn persist_alerts(&self, alerts: Vec<Alert>, flush: bool) -> Result<usize, ProjectorError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(String, String, Vec<u8>)> = alerts
            .into_iter()
            .map(|a| {
                let body = serde_json::to_vec(&a).unwrap_or_default();
                (a.alert_id, a.kind.as_str().to_owned(), body)
            })
            .collect();
        let at = Utc::now().timestamp_micros();
        Ok(if flush { self.store.put_alerts(&rows, at)? } else { self.store.put_alerts_unflushed(&rows, at)? })
    }

    /// The clock task: raises `followup_overdue` for every patient whose last assessment is too
    /// old at `view_date`. Returns how many alerts were new.
    pub fn raise_overdue(&self, view_date: NaiveDate) -> Result<usize, ProjectorError> {
        let view = View { as_of: view_date, known_at: None };
        let mut alerts = Vec::new();
        for patient_id in self.store.patient_ids()? {
            let events = self.patient_events(&patient_id)?;
            if let Some(p) = self.project(&patient_id, &events, &view) {
                alerts.extend(registry_domain::alerts::followup_overdue(&p, view_date, &self.cfg));
            }
        }
        self.persist_alerts(alerts, true)
    }

    /// One patient's labels line in `view` (exactly the bytes `registry labels` prints, without
    /// the newline) and its site, read from the stored label record when that record answers the
    /// view exactly: no `known_at`, the log projected through its end (the checkpoint at the last
    /// seq, so no event the record lacks), and the view date within the record's exact range.
    /// `Ok(None)`: the caller refolds (older record without the range, another date, a catch-up
    /// under way, or no record).
    pub fn stored_labels_line(&self, patient_id: &str, view: &View) -> Result<Option<(String, String)>, ProjectorError> {
        if view.known_at.is_some() {
            return Ok(None);
        }
        // The last seq first: a checkpoint at or past it means every event appended so far is
        // in the stored records (a record read next can only be newer still).
        let last = self.store.last_seq();
        if last == 0 || self.store.labels_through_seq()? < last {
            return Ok(None);
        }
        let Some(bytes) = self.store.get_labels(patient_id)? else { return Ok(None) };
        let peek: LabelRecordPeek<'_> = serde_json::from_slice(&bytes)
            .map_err(|source| ProjectorError::Record { patient_id: patient_id.to_owned(), source })?;
        Ok(peek.serves.filter(|s| s.covers(view.as_of)).map(|s| (s.site, peek.labels.get().to_owned())))
    }

    /// Labels of every listed patient (or one) in a view, recomputed from the log, sorted by
    /// patient id: what `registry labels` prints.
    pub fn labels_in_view(&self, view: &View, only: Option<&str>) -> Result<Vec<PatientProjection>, ProjectorError> {
        let patients = match only {
            Some(p) => vec![p.to_owned()],
            None => self.store.patient_ids()?,
        };
        let mut out = Vec::with_capacity(patients.len());
        for patient_id in patients {
            let events = self.patient_events(&patient_id)?;
            if let Some(p) = self.project(&patient_id, &events, view) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Calls `f(patient_id, projection)` for every patient with labels in `view`, in patient id
    /// order, starting after `after` (exclusive), until `f` returns false. The projections are
    /// those of [`Projector::labels_in_view`]; only the patients visited are computed.
    pub fn for_each_in_view(
        &self,
        view: &View,
        after: Option<&str>,
        mut f: impl FnMut(&str, &PatientProjection) -> bool,
    ) -> Result<(), ProjectorError> {
        for patient_id in self.store.patient_ids()? {
            if after.is_some_and(|a| patient_id.as_str() <= a) {
                continue;
            }
            let events = self.patient_events(&patient_id)?;
            if let Some(p) = self.project(&patient_id, &events, view) {
                if !f(&patient_id, &p) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Checks that every stored label record equals a fresh replay of the log in the same view,
    /// and that every patient in the log through the checkpoint has its record. Returns one line
    /// per disagreement (empty when all agree).
    pub fn verify(&self, mut progress: impl FnMut(u64)) -> Result<Vec<String>, ProjectorError> {
        let through = self.store.labels_through_seq()?;
        let mut problems = Vec::new();
        let mut n = 0;
        for patient_id in self.store.patient_ids()? {
            n += 1;
            progress(n);
            let stored = match self.store.get_labels(&patient_id)? {
                Some(bytes) => Some(
                    serde_json::from_slice::<LabelRecord>(&bytes)
                        .map_err(|source| ProjectorError::Record { patient_id: patient_id.clone(), source })?,
                ),
                None => None,
            };
            let events = self.patient_events(&patient_id)?;
            match stored {
                Some(record) => {
                    let in_view: Vec<RecordedEvent> =
                        events.into_iter().filter(|e| e.seq <= record.through_seq).collect();
                    let view = View { as_of: record.as_of, known_at: None };
                    let projected = self.project(&patient_id, &in_view, &view);
                    let fresh =
                        projected.as_ref().map(|p| serde_json::to_value(&p.labels).unwrap_or(serde_json::Value::Null));
                    if fresh.as_ref() != Some(&record.labels) {
                        problems.push(format!(
                            "patient {patient_id}: stored labels differ from a fresh replay through seq {}",
                            record.through_seq
                        ));
                    } else if let (Some(stored), Some(p)) = (&record.serves, &projected) {
                        // What the API answers from: the range and site must be the replay's too.
                        if *stored != serves_for(&patient_id, &in_view, record.as_of, p, &self.cfg) {
                            problems.push(format!(
                                "patient {patient_id}: the stored label record's site or view range differs from a fresh replay through seq {}",
                                record.through_seq
                            ));
                        }
                    }
                }
                None => {
                    let first = events.first().map(|e| e.seq).unwrap_or(0);
                    let latest = events.iter().map(|e| e.event.occurred_on).max().unwrap_or_default();
                    let view = View { as_of: latest, known_at: None };
                    if first <= through && self.project(&patient_id, &events, &view).is_some() {
                        problems.push(format!(
                            "patient {patient_id}: has events through the checkpoint (seq {through}) but no stored labels"
                        ));
                    }
                }
            }
        }
        Ok(problems)
    }
}
