//! The report snapshot (docs/report.md, "Snapshot"): per patient, the [`PatientRow`] the report
//! reads, for the ranges of view dates over which it cannot change, so that `registry report`
//! refolds only the patients whose stored row is missing, stale or not valid for the asked view.
//!
//! An **entry** (one per patient that has events, in the store's `report_snapshot` tree) holds:
//! - `through_seq`: the log position it was computed through (the patient's events and the events
//!   its links name, with seq ≤ it, as `Projector::patient_events` reads them);
//! - `foreign`: the link targets (retractions, corrections) of the patient's events that are not
//!   the patient's own events — another patient's event, or one not received yet;
//! - `max_received_micros`: the latest arrival among the events folded;
//! - `variants`: projections in views (d, known_at = none), each with the range of view dates
//!   [`from`, `until`) over which it is exact, and the row (`None`: not listed in those views).
//!
//! **Validity** (exact, derived from what the projection reads of the view; docs/report.md):
//! the projection in view (d, none) is a function of the set of the patient's events with
//! `occurred_on ≤ d` and of one comparison with d, CBPD's `PD1 + cbpd_days ≤ d`. So a projection
//! computed at d₀ is the same at every d between the patient's event dates around d₀ (the latest
//! ≤ d₀ and the first > d₀) on the same side of PD1 + cbpd_days. With a knowledge cut-off k it is
//! the same when every event folded arrived by k.
//!
//! **Staleness** (exact, by log position): the snapshot checkpoint C says every entry is current
//! for the log through C. An event appended after C (seq s) makes an entry stale when s is past the
//! entry's `through_seq` and the event is the patient's own or one its `foreign` links name. Nothing
//! else can change a patient's projection.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::config::Config;
use registry_domain::events::{PatientId, Payload};
use registry_domain::projection::{exact_range, project_patient, PatientProjection};
use registry_domain::view::{RecordedEvent, View};
use registry_projector::Projector;
use registry_report::PatientRow;
use registry_store::Store;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::report_cmd::par_map;

/// One projection of a patient and the view dates it is exact for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Variant {
    /// First view date it holds for (inclusive); `None`: unbounded.
    from: Option<NaiveDate>,
    /// First view date it no longer holds for (exclusive); `None`: unbounded.
    until: Option<NaiveDate>,
    /// The row; `None`: the patient is not listed in these views.
    row: Option<PatientRow>,
}

impl Variant {
    fn covers(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= d) && self.until.is_none_or(|u| d < u)
    }
}

/// A patient's snapshot entry (see the module doc).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    through_seq: u64,
    max_received_micros: i64,
    foreign: Vec<Uuid>,
    variants: Vec<Variant>,
}

/// How many variants an entry keeps (reports at many cut-offs add one each).
const MAX_VARIANTS: usize = 8;

fn micros_to_utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Entry {
    /// The row of this patient in `view` when the entry holds it: `Some(None)` not listed,
    /// `Some(Some(row))`, or `None` when no variant is exact for the view (refold).
    #[cfg(test)]
    pub(crate) fn select(&self, view: &View) -> Option<Option<&PatientRow>> {
        self.position(view).map(|i| self.variants[i].row.as_ref())
    }

    /// The variant exact for `view`, if any.
    fn position(&self, view: &View) -> Option<usize> {
        if view.known_at.is_some_and(|k| micros_to_utc(self.max_received_micros) > k) {
            return None;
        }
        self.variants.iter().position(|v| v.covers(view.as_of))
    }

    /// [`Entry::select`], moving the row out: `Err(self)` when no variant is exact for the view.
    pub(crate) fn take_row(mut self, view: &View) -> Result<Option<PatientRow>, Entry> {
        match self.position(view) {
            Some(i) => Ok(self.variants.swap_remove(i).row),
            None => Err(self),
        }
    }

    /// This entry (current for the log) with `fresh`'s variants added: `fresh` was folded from
    /// the same events, so both hold.
    /// At most [`MAX_VARIANTS`] are kept, the newest.
    pub(crate) fn with_variants_of(mut self, fresh: Entry) -> Entry {
        self.variants.extend(fresh.variants);
        let extra = self.variants.len().saturating_sub(MAX_VARIANTS);
        self.variants.drain(..extra);
        self
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Integers, dates, UUIDs and rows: serialisation cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The dates of a patient's own events (sorted, distinct) and the link targets that are not its
/// own events.
fn own_dates_and_foreign(pid: &PatientId, events: &[RecordedEvent]) -> (Vec<NaiveDate>, Vec<Uuid>) {
    let own: HashSet<Uuid> = events.iter().filter(|e| &e.event.patient_id == pid).map(|e| e.event.event_id).collect();
    let mut dates: Vec<NaiveDate> = Vec::new();
    let mut foreign: Vec<Uuid> = Vec::new();
    for e in events.iter().filter(|e| &e.event.patient_id == pid) {
        dates.push(e.event.occurred_on);
        if let Payload::EventRetracted(r) = &e.event.payload {
            foreign.push(r.target_event_id);
        }
        foreign.extend(e.event.supersedes);
    }
    foreign.retain(|t| !own.contains(t));
    foreign.sort_unstable();
    foreign.dedup();
    dates.sort_unstable();
    dates.dedup();
    (dates, foreign)
}

/// The latest arrival among `events` (`i64::MIN` when none), as an entry stores it.
fn max_received_micros(events: &[RecordedEvent]) -> i64 {
    events.iter().map(|e| e.received_at).max().map_or(i64::MIN, |t| t.timestamp_micros())
}

/// Projects one patient (its events as `Projector::patient_events` gives them, through
/// `through_seq`) at view date `d` (known_at none) and returns that projection with the entry
/// holding it. With `extra`, the entry also holds the projections for the view dates from the
/// patient's last event date on (at most two more folds), so that any later cut-off is served.
pub(crate) fn fold_entry(
    pid: &PatientId,
    events: &[RecordedEvent],
    through_seq: u64,
    d: NaiveDate,
    extra: bool,
    cfg: &Config,
) -> (Option<PatientProjection>, Entry) {
    let (dates, foreign) = own_dates_and_foreign(pid, events);
    let max_received_micros = max_received_micros(events);
    let mut variants: Vec<Variant> = Vec::new();
    let mut anchors: Vec<NaiveDate> = vec![d];
    if extra {
        anchors.extend(dates.last().copied());
    }
    let mut first: Option<Option<PatientProjection>> = None;
    let mut k = 0;
    while k < anchors.len() {
        let a = anchors[k];
        k += 1;
        if variants.iter().any(|v| v.covers(a)) {
            continue;
        }
        let p = project_patient(pid, events, &View { as_of: a, known_at: None }, cfg);
        let (from, until) = exact_range(&dates, a, p.as_ref(), cfg);
        // Past the last event date only CBPD's limit splits the dates: serve the other side too.
        if extra && dates.last().is_none_or(|last| a >= *last) {
            if let Some(u) = until.filter(|u| dates.last().is_none_or(|last| u > last)) {
                anchors.push(u);
            }
        }
        let row = p.as_ref().and_then(|p| PatientRow::from_projection(p).ok());
        variants.push(Variant { from, until, row });
        if first.is_none() {
            first = Some(p);
        }
    }
    let entry = Entry { through_seq, max_received_micros, foreign, variants };
    (first.flatten(), entry)
}

/// The snapshot as read from the store: the checkpoint and every entry by patient id. An entry
/// that does not decode is left out (its patient is refolded and the entry rewritten).
pub(crate) struct Snapshot {
    pub(crate) checkpoint: u64,
    pub(crate) entries: HashMap<String, Option<Entry>>,
}

pub(crate) fn read(store: &Store) -> anyhow::Result<Snapshot> {
    let checkpoint = store.snapshot_checkpoint().context("cannot read the report snapshot")?;
    if checkpoint == 0 {
        return Ok(Snapshot { checkpoint, entries: HashMap::new() });
    }
    // One thread reads the tree in chunks while every core decodes the chunks already read.
    const CHUNK: usize = 2048;
    type Decoded = Vec<(String, Option<Entry>)>;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 16);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<(String, Vec<u8>)>>(2 * threads);
    let raw_rx = std::sync::Mutex::new(raw_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Decoded>();
    let mut scan = store.iter_snapshot().context("cannot read the report snapshot")?;
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (raw_rx, done_tx) = (&raw_rx, done_tx.clone());
            s.spawn(move || loop {
                let next = raw_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(chunk)) = next else { break };
                let decoded: Decoded =
                    chunk.into_iter().map(|(pid, bytes)| (pid, serde_json::from_slice::<Entry>(&bytes).ok())).collect();
                if done_tx.send(decoded).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut read_error = None;
        'read: loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            for r in scan.by_ref().take(CHUNK) {
                match r {
                    Ok(kv) => chunk.push(kv),
                    Err(e) => {
                        read_error = Some(anyhow::Error::new(e).context("cannot read the report snapshot"));
                        break 'read;
                    }
                }
            }
            if chunk.is_empty() || raw_tx.send(chunk).is_err() {
                break;
            }
        }
        drop(raw_tx);
        let entries: HashMap<String, Option<Entry>> = done_rx.iter().flatten().collect();
        match read_error {
            Some(e) => Err(e),
            None => Ok(Snapshot { checkpoint, entries }),
        }
    })
}

#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    patient_id: Cow<'a, str>,
}

/// What the log after the checkpoint changes: the patients with an entry made stale and the
/// patients with events but no entry.
pub(crate) struct Changes {
    pub(crate) stale: HashSet<String>,
    pub(crate) new: BTreeSet<String>,
}

/// Reads the log after the snapshot's checkpoint (event ids and patient ids only).
pub(crate) fn changes(store: &Store, snap: &Snapshot) -> anyhow::Result<Changes> {
    let mut stale = HashSet::new();
    let mut new = BTreeSet::new();
    if store.last_seq() <= snap.checkpoint {
        return Ok(Changes { stale, new });
    }
    let mut by_target: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for (pid, e) in &snap.entries {
        for t in e.iter().flat_map(|e| &e.foreign) {
            by_target.entry(*t).or_default().push(pid);
        }
    }
    let current_at = |pid: &str| snap.entries.get(pid).and_then(|e| e.as_ref()).map(|e| e.through_seq.max(snap.checkpoint));
    for e in store.iter_from(snap.checkpoint + 1) {
        let e = e.context("cannot read the log")?;
        let keys: Keys<'_> =
            serde_json::from_slice(&e.content).with_context(|| format!("cannot decode the event at seq {}", e.seq))?;
        match snap.entries.get(keys.patient_id.as_ref()) {
            None => {
                new.insert(keys.patient_id.into_owned());
            }
            Some(_) => {
                if current_at(&keys.patient_id).is_none_or(|t| e.seq > t) {
                    stale.insert(keys.patient_id.clone().into_owned());
                }
            }
        }
        if let Some(linked) = Uuid::parse_str(&keys.event_id).ok().and_then(|id| by_target.get(&id)) {
            for pid in linked {
                if current_at(pid).is_none_or(|t| e.seq > t) {
                    stale.insert((*pid).to_owned());
                }
            }
        }
    }
    Ok(Changes { stale, new })
}

/// How many patients one refresh writes at a time (bounds its memory).
const CHUNK: usize = 2_000;

/// Brings the snapshot up to date with the log for view date `d` (the import's job, after its
/// appends): refolds every patient whose entry is missing or stale (all of them the first time),
/// with the extra variants of [`fold_entry`], and writes the entries and the new checkpoint.
/// Returns how many patients were refolded.
pub(crate) fn refresh(store: &Store, d: NaiveDate, pb: &indicatif::ProgressBar) -> anyhow::Result<usize> {
    let last = store.last_seq();
    let snap = read(store)?;
    if last == 0 || last == snap.checkpoint {
        return Ok(0);
    }
    let mut todo: Vec<String> = if snap.checkpoint == 0 {
        store.patient_ids().context("cannot list the patients")?
    } else {
        let ch = changes(store, &snap)?;
        let broken = snap.entries.iter().filter(|(_, e)| e.is_none()).map(|(p, _)| p.clone());
        ch.stale.into_iter().chain(ch.new).chain(broken).collect()
    };
    todo.sort_unstable();
    pb.set_length(todo.len() as u64);
    let projector = Projector::new(store.clone(), Config::default());
    let cfg = Config::default();
    let chunks = todo.len().div_ceil(CHUNK).max(1);
    for (i, chunk) in todo.chunks(CHUNK).enumerate() {
        let entries: Vec<anyhow::Result<(String, Option<Vec<u8>>)>> = par_map(chunk, |pid| {
            let events = projector.patient_events(pid).with_context(|| format!("cannot read the events of {pid}"))?;
            let events: Vec<RecordedEvent> = events.into_iter().filter(|e| e.seq <= last).collect();
            pb.inc(1);
            let Some(id) = PatientId::parse(pid) else {
                return Ok((pid.clone(), None));
            };
            let (_, entry) = fold_entry(&id, &events, last, d, true, &cfg);
            Ok((pid.clone(), Some(entry.to_bytes())))
        });
        let entries: Vec<(String, Option<Vec<u8>>)> = entries.into_iter().collect::<anyhow::Result<_>>()?;
        // Every chunk but the last keeps the old checkpoint: after a crash the next refresh
        // redoes the same set (entries written early are current through `last` and stay valid).
        let done = i + 1 == chunks;
        store
            .put_snapshot_batch(entries, if done { last } else { snap.checkpoint }, done)
            .context("cannot write the report snapshot")?;
    }
    Ok(todo.len())
}

/// What `registry verify` found in the report snapshot ([`verify`]).
#[derive(Debug, Default)]
pub(crate) struct Verified {
    /// The snapshot checkpoint (0: no snapshot; the report ignores the tree and nothing is checked).
    pub(crate) checkpoint: u64,
    /// Entries in the tree.
    pub(crate) entries: u64,
    /// Entries the report would use (not stale), checked against a fresh fold.
    pub(crate) checked: u64,
    /// Entries made stale by a later event (the report refolds them): not checked.
    pub(crate) stale: u64,
    /// Variants of the checked entries compared with a fresh projection.
    pub(crate) variants: u64,
    /// One line per problem, naming the patient.
    pub(crate) problems: Vec<String>,
}

/// One entry's verdict.
enum EntryCheck {
    Stale,
    Checked { variants: u64, problems: Vec<String> },
}

fn show_range(from: Option<NaiveDate>, until: Option<NaiveDate>) -> String {
    let f = from.map_or_else(|| "unbounded".to_owned(), |d| d.to_string());
    let u = until.map_or_else(|| "unbounded".to_owned(), |d| d.to_string());
    format!("[{f}, {u})")
}

fn show_micros(micros: i64) -> String {
    if micros == i64::MIN {
        "none".to_owned()
    } else {
        micros_to_utc(micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

/// The paths (`labels.os.days`, `enrollment`) where two rows' JSON differ, at most a few.
fn row_diff(stored: &Option<PatientRow>, fresh: &Option<PatientRow>) -> String {
    match (stored, fresh) {
        (Some(_), None) => "the entry lists the patient, a fresh projection does not".to_owned(),
        (None, Some(_)) => "a fresh projection lists the patient, the entry does not".to_owned(),
        _ => {
            let a = serde_json::to_value(stored).unwrap_or_default();
            let b = serde_json::to_value(fresh).unwrap_or_default();
            let mut paths = Vec::new();
            diff_paths(&a, &b, String::new(), &mut paths);
            let more = paths.len().saturating_sub(6);
            paths.truncate(6);
            let mut s = format!("fields differ: {}", paths.join(", "));
            if more > 0 {
                s.push_str(&format!(" and {more} more"));
            }
            s
        }
    }
}

fn diff_paths(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff_paths(u, v, path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(if at.is_empty() { "the row".to_owned() } else { at }),
        _ => {}
    }
}

/// Checks one stored entry of patient `pid` against the log (docs/report.md, "Snapshot",
/// "Verification"). `events`: the patient's events as `Projector::patient_events` reads them now.
fn check_entry(
    seq_of: impl Fn(&Uuid) -> anyhow::Result<Option<u64>>,
    pid: &str,
    bytes: &[u8],
    events: Vec<RecordedEvent>,
    checkpoint: u64,
    last: u64,
    cfg: &Config,
) -> anyhow::Result<EntryCheck> {
    let entry: Entry = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            let problem = format!("patient {pid}: the entry does not decode ({e}); the report refolds the patient");
            return Ok(EntryCheck::Checked { variants: 0, problems: vec![problem] });
        }
    };
    // The report's staleness rule (`changes`), with the entry's own `foreign` list: stale when an
    // event past max(through_seq, C) is the patient's own or one of those link targets.
    let current_at = entry.through_seq.max(checkpoint);
    let mut stale = events.iter().any(|e| e.event.patient_id.as_str() == pid && e.seq > current_at);
    for t in &entry.foreign {
        if stale {
            break;
        }
        stale = seq_of(t)?.is_some_and(|s| s > current_at);
    }
    if stale {
        return Ok(EntryCheck::Stale);
    }
    // The report uses this entry as the patient's projection for the whole log.
    let mut problems = Vec::new();
    let through = entry.through_seq;
    if through > last {
        problems.push(format!("patient {pid}: the entry says it was folded through seq {through}, past the log's last seq {last}"));
    }
    if let Some(missed) = events.iter().filter(|e| e.seq > through).min_by_key(|e| e.seq) {
        let whose = if missed.event.patient_id.as_str() == pid { "its own event" } else { "the event its link names" };
        problems.push(format!(
            "patient {pid}: the entry was folded through seq {through} but the report uses it as current \
             (nothing after the checkpoint makes it stale), without {whose} at seq {}",
            missed.seq
        ));
    }
    let Some(id) = PatientId::parse(pid) else {
        problems.push(format!("patient {pid}: an entry for an id that is not a valid patient id"));
        return Ok(EntryCheck::Checked { variants: 0, problems });
    };
    if events.is_empty() && entry.variants.iter().any(|v| v.row.is_some()) {
        problems.push(format!("patient {pid}: the entry holds a row but the log has no event of this patient"));
    }
    // Exactly what `fold_entry` reads: the events through the entry's `through_seq`.
    let events: Vec<RecordedEvent> = events.into_iter().filter(|e| e.seq <= through).collect();
    let (dates, foreign) = own_dates_and_foreign(&id, &events);
    if foreign != entry.foreign {
        let show = |v: &[Uuid]| v.iter().map(Uuid::to_string).collect::<Vec<_>>().join(" ");
        problems.push(format!(
            "patient {pid}: foreign link targets differ: entry [{}], fresh fold through seq {through} [{}]",
            show(&entry.foreign),
            show(&foreign)
        ));
    }
    let received = max_received_micros(&events);
    if received != entry.max_received_micros {
        problems.push(format!(
            "patient {pid}: max_received differs: entry {}, fresh fold through seq {through} {}",
            show_micros(entry.max_received_micros),
            show_micros(received)
        ));
    }
    for v in &entry.variants {
        // One date inside the claimed range: a row and range equal to the fresh ones there are
        // exact over the whole range (the validity rule).
        let d = v
            .from
            .or_else(|| v.until.and_then(|u| u.pred_opt()))
            .or_else(|| dates.last().copied())
            .unwrap_or_default();
        let p = project_patient(&id, &events, &View { as_of: d, known_at: None }, cfg);
        let (from, until) = exact_range(&dates, d, p.as_ref(), cfg);
        let row = p.as_ref().and_then(|p| PatientRow::from_projection(p).ok());
        let claimed = show_range(v.from, v.until);
        if (from, until) != (v.from, v.until) {
            problems.push(format!(
                "patient {pid}: variant {claimed}: a fresh projection at {d} is exact for {} instead",
                show_range(from, until)
            ));
        }
        if row != v.row {
            problems.push(format!(
                "patient {pid}: variant {claimed}: the row differs from a fresh projection at {d} ({})",
                row_diff(&v.row, &row)
            ));
        }
    }
    Ok(EntryCheck::Checked { variants: entry.variants.len() as u64, problems })
}

/// `registry verify`'s check of the report snapshot (docs/report.md, "Snapshot", "Verification"):
/// the checkpoint is not past the log's end; every entry decodes; every entry the report would
/// use (not stale by the staleness rule) equals a fresh fold of the log through its
/// `through_seq` (`foreign`, `max_received_micros`, and each variant's row and exact range at a
/// date inside its range) and lacks no event of the patient; every patient with events through
/// the checkpoint has an entry. Each patient's events are read once; the folds run on every core.
pub(crate) fn verify(store: &Store, pb: &indicatif::ProgressBar) -> anyhow::Result<Verified> {
    let checkpoint = store.snapshot_checkpoint().context("cannot read the report snapshot")?;
    let last = store.last_seq();
    let mut out = Verified { checkpoint, ..Verified::default() };
    if checkpoint == 0 {
        // No snapshot (or a first refresh interrupted): the report refolds every patient.
        return Ok(out);
    }
    if checkpoint > last {
        out.problems.push(format!(
            "the report snapshot checkpoint (seq {checkpoint}) is past the log's last seq {last}: \
             events appended up to it would not make entries stale"
        ));
    }
    let projector = Projector::new(store.clone(), Config::default());
    let cfg = Config::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut scan = store.iter_snapshot().context("cannot read the report snapshot")?;
    loop {
        let chunk: Vec<(String, Vec<u8>)> =
            scan.by_ref().take(CHUNK).collect::<Result<_, _>>().context("cannot read the report snapshot")?;
        if chunk.is_empty() {
            break;
        }
        let checked: Vec<anyhow::Result<EntryCheck>> = par_map(&chunk, |(pid, bytes)| {
            let events = projector.patient_events(pid).with_context(|| format!("cannot read the events of {pid}"))?;
            let seq_of = |t: &Uuid| {
                store.seq_of_event_id(&t.hyphenated().to_string()).context("cannot read the event-id index")
            };
            let r = check_entry(seq_of, pid, bytes, events, checkpoint, last, &cfg);
            pb.inc(1);
            r
        });
        for ((pid, _), r) in chunk.into_iter().zip(checked) {
            out.entries += 1;
            match r? {
                EntryCheck::Stale => out.stale += 1,
                EntryCheck::Checked { variants, problems } => {
                    out.checked += 1;
                    out.variants += variants;
                    out.problems.extend(problems);
                }
            }
            seen.insert(pid);
        }
    }
    // A patient without an entry is refolded only when it has an event after the checkpoint;
    // otherwise the report leaves it out.
    for pid in store.patient_ids().context("cannot list the patients")? {
        if seen.contains(&pid) || PatientId::parse(&pid).is_none() {
            continue;
        }
        let events = store.patient_events(&pid).with_context(|| format!("cannot read the events of {pid}"))?;
        if events.iter().all(|e| e.seq <= checkpoint) {
            out.problems.push(format!(
                "patient {pid}: no entry, and no event after the checkpoint (seq {checkpoint}): the report leaves the patient out"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_domain::synth::{generate, Profile, SynthConfig};
    use registry_store::NewEvent;
    use chrono::Days;

    /// `d + n` days, saturating, as the projection computes CBPD's limit.
    fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
        if n >= 0 {
            d.checked_add_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MAX)
        } else {
            d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MIN)
        }
    }

    fn recorded(events: Vec<registry_domain::events::Event>) -> Vec<RecordedEvent> {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        events.into_iter().enumerate().map(|(i, event)| RecordedEvent { event, seq: i as u64 + 1, received_at: at }).collect()
    }

    /// Every view date where a patient's projection could change, and the days around them.
    fn probe_dates(events: &[RecordedEvent], cfg: &Config) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        for e in events {
            for k in [-1, 0, 1] {
                out.push(add_days(e.event.occurred_on, k));
            }
        }
        let late = events.iter().map(|e| e.event.occurred_on).max().unwrap_or_default();
        for p in [late, add_days(late, 400)] {
            let proj = project_patient(&events[0].event.patient_id, events, &View::as_of(p), cfg);
            if let Some(pd1) = proj.and_then(|p| p.labels.pd1) {
                for k in [-1, 0, 1] {
                    out.push(add_days(pd1.date, cfg.cbpd_days + k));
                }
            }
        }
        out
    }

    #[test]
    fn every_variant_is_the_projection_at_every_date_it_claims() {
        let cfg = Config::default();
        let cohort = generate(&SynthConfig { patients: 120, seed: 17, profile: Profile::Ni2019 });
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default();
        let mut checked = 0;
        for i in 0..cohort.patients() {
            let events = recorded(cohort.patient_events(i));
            let pid = events[0].event.patient_id.clone();
            for anchor in [today, Profile::Ni2019.data_cutoff(), add_days(events[0].event.occurred_on, 30)] {
                let (p, entry) = fold_entry(&pid, &events, events.len() as u64, anchor, true, &cfg);
                let direct = project_patient(&pid, &events, &View::as_of(anchor), &cfg);
                assert_eq!(p, direct, "the anchor's projection");
                assert!(entry.select(&View::as_of(anchor)).is_some(), "the anchor is covered");
                for d in probe_dates(&events, &cfg) {
                    let Some(held) = entry.select(&View::as_of(d)) else { continue };
                    let fresh = project_patient(&pid, &events, &View::as_of(d), &cfg)
                        .map(|p| PatientRow::from_projection(&p).expect("row"));
                    assert_eq!(held, fresh.as_ref(), "patient {pid} at {d} (entry anchored at {anchor})");
                    checked += 1;
                }
            }
            // From the last event date on, every cut-off is served by the entry.
            let (_, entry) = fold_entry(&pid, &events, events.len() as u64, today, true, &cfg);
            let last = events.iter().map(|e| e.event.occurred_on).max().unwrap_or_default();
            for d in [last, add_days(last, 10), add_days(last, 21), add_days(last, 22), add_days(last, 365)] {
                assert!(entry.select(&View::as_of(d)).is_some(), "patient {pid}: {d} from the snapshot");
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn a_knowledge_cut_off_before_an_event_folded_is_not_served() {
        let cfg = Config::default();
        let cohort = generate(&SynthConfig { patients: 3, seed: 1, profile: Profile::Ni2019 });
        let mut events = recorded(cohort.patient_events(0));
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        if let Some(e) = events.last_mut() {
            e.received_at = t;
        }
        let pid = events[0].event.patient_id.clone();
        let d = Profile::Ni2019.data_cutoff();
        let (_, entry) = fold_entry(&pid, &events, 99, d, false, &cfg);
        assert!(entry.select(&View { as_of: d, known_at: Some(t) }).is_some());
        assert!(entry.select(&View { as_of: d, known_at: Some(t - chrono::Duration::microseconds(1)) }).is_none());
    }

    fn problems(c: EntryCheck) -> Vec<String> {
        match c {
            EntryCheck::Stale => panic!("not stale"),
            EntryCheck::Checked { problems, .. } => problems,
        }
    }

    #[test]
    fn verify_accepts_every_entry_fold_entry_writes_and_names_a_forged_one() {
        let cfg = Config::default();
        let cohort = generate(&SynthConfig { patients: 60, seed: 23, profile: Profile::Ni2019 });
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default();
        let none = |_: &Uuid| -> anyhow::Result<Option<u64>> { Ok(None) };
        let mut variants = 0;
        for i in 0..cohort.patients() {
            let events = recorded(cohort.patient_events(i));
            let n = events.len() as u64;
            let pid = events[0].event.patient_id.clone();
            // Entries as the import writes them, merged with report write-backs at other dates.
            let mut entry = fold_entry(&pid, &events, n, today, true, &cfg).1;
            for anchor in [Profile::Ni2019.data_cutoff(), add_days(events[0].event.occurred_on, 30), add_days(events[0].event.occurred_on, -5)] {
                entry = entry.with_variants_of(fold_entry(&pid, &events, n, anchor, false, &cfg).1);
            }
            variants += entry.variants.len();
            let c = check_entry(none, pid.as_str(), &entry.to_bytes(), events.clone(), n, n, &cfg).expect("check");
            assert_eq!(problems(c), Vec::<String>::new(), "patient {pid}");

            // A widened range, a changed row, a lowered arrival: each named.
            let mut forged = entry.clone();
            if let Some(v) = forged.variants.iter_mut().find(|v| v.until.is_some()) {
                v.until = v.until.map(|u| add_days(u, 1));
                let c = check_entry(none, pid.as_str(), &forged.to_bytes(), events.clone(), n, n, &cfg).expect("check");
                let p = problems(c);
                assert!(p.iter().any(|l| l.contains("is exact for")), "{p:?}");
            }
            let mut forged = entry.clone();
            forged.max_received_micros -= 1;
            let p = problems(check_entry(none, pid.as_str(), &forged.to_bytes(), events.clone(), n, n, &cfg).expect("check"));
            assert!(p.len() == 1 && p[0].contains("max_received differs"), "{p:?}");
            // Folded through an earlier seq: the report would use it without the last event.
            let short = fold_entry(&pid, &events[..events.len() - 1], n - 1, today, true, &cfg).1;
            let p = problems(check_entry(none, pid.as_str(), &short.to_bytes(), events.clone(), n, n, &cfg).expect("check"));
            assert!(p.iter().any(|l| l.contains(&format!("without its own event at seq {n}"))), "{p:?}");
            // The same with the checkpoint before the last event: stale, skipped.
            let c = check_entry(none, pid.as_str(), &short.to_bytes(), events.clone(), n - 1, n, &cfg).expect("check");
            assert!(matches!(c, EntryCheck::Stale));
        }
        assert!(variants > 150, "{variants}");
    }

    fn keys(id: &str, pid: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"{id}","patient_id":"{pid}"}}"#).into_bytes()
    }

    fn entry(through_seq: u64, foreign: Vec<Uuid>) -> Option<Entry> {
        Some(Entry { through_seq, max_received_micros: 0, foreign, variants: Vec::new() })
    }

    #[test]
    fn an_append_makes_stale_its_patient_and_the_patients_whose_links_name_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let ids: Vec<String> = (0..6).map(|_| Uuid::new_v4().to_string()).collect();
        let contents: Vec<Vec<u8>> = [("A", 0), ("B", 1), ("C", 2), ("A", 3), ("D", 4), ("E", 5)]
            .iter()
            .map(|(p, i)| keys(&ids[*i], p))
            .collect();
        let pats = ["A", "B", "C", "A", "D", "E"];
        let batch: Vec<NewEvent<'_>> = (0..6)
            .map(|i| NewEvent { event_id: &ids[i], patient_id: pats[i], content: &contents[i], received_at_micros: 1 })
            .collect();
        store.append_batch(&batch).expect("append");
        let target = Uuid::parse_str(&ids[4]).expect("uuid"); // D's event, seq 5
        let entries: HashMap<String, Option<Entry>> = [
            ("A".to_owned(), entry(3, vec![])),           // own event at seq 4 > 3: stale
            ("B".to_owned(), entry(3, vec![])),           // nothing new: current
            ("C".to_owned(), entry(3, vec![target])),     // names D's event (seq 5): stale
            ("D".to_owned(), entry(6, vec![])),           // already through seq 6: current
            ("F".to_owned(), entry(3, vec![Uuid::new_v4()])), // names something never received
        ]
        .into_iter()
        .collect();
        let snap = Snapshot { checkpoint: 3, entries };
        let ch = changes(&store, &snap).expect("changes");
        let mut stale: Vec<&str> = ch.stale.iter().map(String::as_str).collect();
        stale.sort_unstable();
        assert_eq!(stale, ["A", "C"]);
        assert_eq!(ch.new.into_iter().collect::<Vec<_>>(), ["E"]);

        // A checkpoint past the link target's seq: C's entry covers it.
        let entries = [("C".to_owned(), entry(3, vec![target]))].into_iter().collect();
        let ch = changes(&store, &Snapshot { checkpoint: 5, entries }).expect("changes");
        assert!(ch.stale.is_empty());
    }
}
