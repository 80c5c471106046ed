//! The catch-up's memory of recently refolded patients: their decoded events and their last
//! projection, bounded by a number of events, least recently used first out.
//!
//! Why: a live catch-up refolds each touched patient from all of its events. Without this, each
//! refold read every event of the patient from the log and decoded it again (one `pread` per
//! seq record and per frame, then JSON), and projected the patient twice (before and after the
//! change). With it, a refold reads and decodes only the events appended since the patient's
//! last refold, and the "before" projection is the one the last refold computed, when it
//! answers the same view from the same events.
//!
//! Invariants:
//! - an entry's `events` are exactly the patient's own events through the last one's seq,
//!   ascending: the log is append-only, so they never go stale; a refold appends what came after
//!   that seq ([`Entry::upto`]);
//! - an entry's `projection` is `project_patient` over `events[..n]` alone (no event of another
//!   patient linked in) in `view`; it is only kept when no link was in play;
//! - the total of the entries' events stays within the budget after every `put` (an entry
//!   larger than the whole budget is not kept).
//!
//! Nothing here is durable or shared between processes: a restarted projector starts empty and
//! reads from the log, which gives the same labels (the cache only saves work).

use std::sync::Mutex;

use registry_domain::projection::PatientProjection;
use registry_domain::view::{RecordedEvent, View};

/// The default budget, in events (0.2–0.6 KiB each in RSS, measured; docs/bus.md, "Memory soak").
pub const DEFAULT_CACHE_EVENTS: usize = 50_000;

/// One patient's cached state (see the module invariants).
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) events: Vec<RecordedEvent>,
    /// The last projection of the patient.
    pub(crate) projection: Option<CachedProjection>,
}

/// `project_patient` over an entry's first `events` events alone, in `view`.
#[derive(Debug)]
pub(crate) struct CachedProjection {
    pub(crate) view: View,
    pub(crate) events: usize,
    pub(crate) result: Option<PatientProjection>,
}

impl CachedProjection {
    /// Whether this is the projection over the first `n` events in `view`.
    pub(crate) fn answers(&self, view: &View, n: usize) -> bool {
        self.view == *view && self.events == n
    }
}

impl Entry {
    /// The seq through which `events` holds every own event of the patient (0: none read).
    pub(crate) fn upto(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq)
    }

    fn weight(&self) -> usize {
        // An entry costs at least one unit, so a budget also bounds the number of entries.
        self.events.len().max(1)
    }
}

/// The patients' entries, LRU by refold, at most `budget` events in all.
#[derive(Debug)]
pub(crate) struct PatientCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: lru::LruCache<String, Entry>,
    events: usize,
}

impl PatientCache {
    /// `budget` 0 keeps nothing (every refold reads from the log).
    pub(crate) fn new(budget: usize) -> PatientCache {
        PatientCache { budget, inner: Mutex::new(Inner { entries: lru::LruCache::unbounded(), events: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (every operation below is a
        // single map call plus a counter update), so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the patient's entry out (an empty one if none): the caller refolds with it and
    /// puts it back. Two refolds of one patient never run at once (a catch-up's patients are
    /// distinct), and if they did each would start from a valid entry or an empty one.
    pub(crate) fn take(&self, patient_id: &str) -> Entry {
        let mut inner = self.lock();
        match inner.entries.pop(patient_id) {
            Some(entry) => {
                inner.events -= entry.weight();
                entry
            }
            None => Entry::default(),
        }
    }

    /// Puts an entry back as the most recently used, then drops the least recently used ones
    /// until the total is within the budget.
    pub(crate) fn put(&self, patient_id: &str, entry: Entry) {
        if entry.weight() > self.budget {
            return;
        }
        let mut inner = self.lock();
        inner.events += entry.weight();
        if let Some(old) = inner.entries.put(patient_id.to_owned(), entry) {
            inner.events -= old.weight();
        }
        while inner.events > self.budget {
            match inner.entries.pop_lru() {
                Some((_, old)) => inner.events -= old.weight(),
                None => break,
            }
        }
    }

    /// Events held, patients held.
    pub(crate) fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.events, inner.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of `n` events (copies of one synthetic event), read through seq `n`.
    fn entry(n: usize) -> Entry {
        let cfg = registry_domain::synth::SynthConfig { patients: 1, ..Default::default() };
        let e = registry_domain::synth::generate(&cfg).next().expect("one event");
        let events = (0..n)
            .map(|i| RecordedEvent { event: e.clone(), seq: i as u64 + 1, received_at: chrono::DateTime::UNIX_EPOCH })
            .collect();
        Entry { events, projection: None }
    }

    #[test]
    fn the_budget_drops_least_recently_used_patients_first() {
        let cache = PatientCache::new(10);
        cache.put("a", entry(4));
        cache.put("b", entry(4));
        assert_eq!(cache.size(), (8, 2));
        // "a" taken and put back: now "b" is the oldest.
        let a = cache.take("a");
        assert_eq!(a.upto(), 4);
        cache.put("a", a);
        cache.put("c", entry(4));
        assert_eq!(cache.size(), (8, 2));
        assert_eq!(cache.take("b").upto(), 0, "b was dropped");
        assert_eq!(cache.take("a").upto(), 4);
        assert_eq!(cache.take("c").upto(), 4);
        assert_eq!(cache.size(), (0, 0));
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept_and_a_zero_budget_keeps_nothing() {
        let cache = PatientCache::new(3);
        cache.put("a", entry(4));
        assert_eq!(cache.size(), (0, 0));
        let none = PatientCache::new(0);
        none.put("a", entry(0));
        assert_eq!(none.size(), (0, 0));
    }

    #[test]
    fn a_projection_is_answered_only_for_its_view_and_event_count() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        let view = View::as_of(d);
        let cached = CachedProjection { view, events: 3, result: None };
        assert!(cached.answers(&view, 3));
        assert!(!cached.answers(&view, 2));
        assert!(!cached.answers(&View::as_of(d.succ_opt().expect("date")), 3));
    }
}
