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
//! Admission: an entry that was not in the cache (its patient's events were all just read from
//! the log) goes in only if the entries it would push out have been idle for [`MIN_IDLE`]. When
//! the patients being refolded again and again do not all fit (a cohort whose follow-ups cycle
//! through more patients than the budget holds), least-recently-used admission would evict every
//! entry before its next use, read every timeline in full anyway and replace the cache's contents
//! at the rate of the refolds: a churn of allocations that the allocator keeps as resident memory
//! (docs/bus.md, "Memory soak"). Refusing such an entry keeps the entries there, so some refolds
//! still hit, and the refused events are freed by the thread that decoded them. An entry taken
//! from the cache always goes back (growing, it may push out the least recently used).
//!
//! Nothing here is durable or shared between processes: a restarted projector starts empty and
//! reads from the log, which gives the same labels (the cache only saves work).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use registry_domain::projection::PatientProjection;
use registry_domain::view::{RecordedEvent, View};

/// The default budget, in events (0.2–0.6 KiB each in RSS, measured; docs/bus.md, "Memory soak").
pub const DEFAULT_CACHE_EVENTS: usize = 50_000;

/// An entry that was not in the cache is admitted only over entries idle this long (see the
/// module header): an entry used within the last minute belongs to the live working set.
pub const MIN_IDLE: Duration = Duration::from_secs(60);

/// One patient's cached state (see the module invariants).
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) events: Vec<RecordedEvent>,
    /// The last projection of the patient.
    pub(crate) projection: Option<CachedProjection>,
    /// Whether [`PatientCache::take`] found it in the cache (else it starts empty).
    cached: bool,
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
    min_idle: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Each entry with the time it was last put back.
    entries: lru::LruCache<String, (Entry, Instant)>,
    events: usize,
}

impl PatientCache {
    /// `budget` 0 keeps nothing (every refold reads from the log).
    pub(crate) fn new(budget: usize) -> PatientCache {
        PatientCache::with_min_idle(budget, MIN_IDLE)
    }

    /// [`PatientCache::new`] admitting new entries only over entries idle for `min_idle`.
    pub(crate) fn with_min_idle(budget: usize, min_idle: Duration) -> PatientCache {
        PatientCache { budget, min_idle, inner: Mutex::new(Inner { entries: lru::LruCache::unbounded(), events: 0 }) }
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
            Some((mut entry, _)) => {
                inner.events -= entry.weight();
                entry.cached = true;
                entry
            }
            None => Entry::default(),
        }
    }

    /// Puts an entry back as the most recently used, then drops the least recently used ones
    /// until the total is within the budget. An entry that was not taken from the cache is
    /// dropped instead when making room for it would push out an entry used within
    /// `min_idle` (the module header's admission rule).
    pub(crate) fn put(&self, patient_id: &str, entry: Entry) {
        if entry.weight() > self.budget {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        if !entry.cached {
            let need = (inner.events + entry.weight()).saturating_sub(self.budget);
            let mut freed = 0;
            // Least recently used first.
            for (_, (old, used)) in inner.entries.iter().rev() {
                if freed >= need {
                    break;
                }
                if now.saturating_duration_since(*used) < self.min_idle {
                    return;
                }
                freed += old.weight();
            }
        }
        inner.events += entry.weight();
        if let Some((old, _)) = inner.entries.put(patient_id.to_owned(), (entry, now)) {
            inner.events -= old.weight();
        }
        while inner.events > self.budget {
            match inner.entries.pop_lru() {
                Some((_, (old, _))) => inner.events -= old.weight(),
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
        Entry { events, projection: None, cached: false }
    }

    #[test]
    fn the_budget_drops_least_recently_used_patients_first() {
        let cache = PatientCache::with_min_idle(10, Duration::ZERO);
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
    fn a_new_entry_does_not_push_out_entries_in_use_but_a_returning_one_does() {
        // Three patients in turn through room for two: least-recently-used admission would evict
        // each entry just before its next use. Entries used within the minute stay instead.
        let cache = PatientCache::new(10);
        cache.put("a", entry(4));
        cache.put("b", entry(4));
        cache.put("c", entry(4));
        assert_eq!(cache.size(), (8, 2), "c refused: a and b are in use");
        assert_eq!(cache.take("c").upto(), 0);
        // a comes back grown by one event: it goes back, and the oldest (b) makes room.
        let mut a = cache.take("a");
        assert_eq!(a.upto(), 4);
        a.events.push(entry(5).events.pop().expect("fifth"));
        a.events.push(entry(6).events.pop().expect("sixth"));
        a.events.push(entry(7).events.pop().expect("seventh"));
        cache.put("a", a);
        assert_eq!(cache.size(), (7, 1), "b dropped for the returning a");
        assert_eq!(cache.take("b").upto(), 0);
        // With room, a new entry goes in whatever the others' age.
        cache.put("b", entry(3));
        assert_eq!(cache.size(), (10, 2));
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
