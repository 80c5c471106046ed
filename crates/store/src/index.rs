//! The event-id and patient indexes and the segment map, held in memory and rebuilt from the
//! segments at open.
//!
//! Why in memory: on sled 0.34 each key costs ~15 µs to insert on this class of machine, so
//! two index keys per event capped appends near 30,000 events/s whatever else we did
//! (docs/storage.md, "Why segments"). The indexes are pure functions of the log — every frame
//! carries its event_id and patient_id, covered by the hash chain — so they are derived state,
//! rebuilt by one sequential read at open (about 1 s per million events) and kept up to date by
//! each append under the writer lock.

use rustc_hash::FxHashMap;

use crate::codec;
use crate::error::StoreError;
use crate::segfile::{Locator, SegmentFiles};

/// One segment as the index knows it: its first seq and where its bytes are (`None` when its
/// locator in sled is unreadable — reads of it fail, verify reports it).
pub(crate) type SegmentRef = (u64, Option<Locator>);

/// Event-id → seq and patient → seqs, for every readable frame of the log.
///
/// Memory: event ids in the canonical lowercase hyphenated UUID form (what the contract asks
/// producers for) are kept as 16 bytes; any other id string as itself. About 60 bytes per event
/// in all, e.g. ~60 MiB for a million events.
#[derive(Debug, Default)]
pub(crate) struct Index {
    uuid_ids: FxHashMap<u128, u64>,
    other_ids: FxHashMap<Box<str>, u64>,
    patients: FxHashMap<Box<str>, Vec<u64>>,
    /// Every segment, ascending by first seq (to find the segment holding a seq).
    segments: Vec<SegmentRef>,
    /// `frame_offsets[n - 1]`: where seq n's frame starts inside its segment, so one event is
    /// read with one small `pread` instead of its whole segment (a patient's events are spread
    /// over as many segments as it has events). Filled while seqs are contiguous from 1 — always,
    /// unless the log was damaged; a seq past it is read through its whole segment. 4 bytes per
    /// event.
    frame_offsets: Vec<u32>,
    /// False for the segments-only index of [`crate::Store::open_lazy`] until its first use
    /// builds the rest.
    pub(crate) complete: bool,
}

impl Index {
    /// Reads every segment once, in order. Unreadable segments and damaged frames are skipped
    /// (verify reports them).
    pub(crate) fn build(files: &SegmentFiles, segments: Vec<SegmentRef>) -> Result<Index, StoreError> {
        let mut index = Index { complete: true, ..Index::default() };
        for &(first, loc) in &segments {
            // A segment its file ends inside of (a cut file) is indexed up to the cut.
            let Some(bytes) = loc.map(|loc| files.read(first, loc).unwrap_or_else(|_| files.read_available(loc))) else {
                continue;
            };
            for frame in codec::frames(&bytes).flatten() {
                index.note_frame(frame.seq, frame.offset);
                index.insert(
                    &String::from_utf8_lossy(frame.event_id),
                    &String::from_utf8_lossy(frame.patient_id),
                    frame.seq,
                );
            }
        }
        index.segments = segments;
        Ok(index)
    }

    /// Only the segment map: enough to stream the log ([`crate::Store::iter_from`]); the rest is
    /// built by [`Index::build`] on first need.
    pub(crate) fn segments_only(segments: Vec<SegmentRef>) -> Index {
        Index { segments, ..Index::default() }
    }

    /// Records one stored event. The first seq of an id wins (a repeated id can only come from
    /// tampering, which verify reports).
    pub(crate) fn insert(&mut self, event_id: &str, patient_id: &str, seq: u64) {
        match canonical_uuid(event_id) {
            Some(u) => {
                self.uuid_ids.entry(u).or_insert(seq);
            }
            None => {
                if !self.other_ids.contains_key(event_id) {
                    self.other_ids.insert(event_id.into(), seq);
                }
            }
        }
        match self.patients.get_mut(patient_id) {
            Some(seqs) => seqs.push(seq),
            None => {
                self.patients.insert(patient_id.into(), vec![seq]);
            }
        }
    }

    /// Notes where seq's frame starts in its segment (only while seqs come contiguous from 1).
    pub(crate) fn note_frame(&mut self, seq: u64, offset: usize) {
        if seq == self.frame_offsets.len() as u64 + 1 {
            self.frame_offsets.push(u32::try_from(offset).unwrap_or(u32::MAX));
        }
    }

    /// The segment holding `seq` and the byte range of its frame inside it, when known.
    pub(crate) fn frame_range(&self, seq: u64) -> Option<(SegmentRef, usize, usize)> {
        let seg = self.segment_of(seq)?;
        let loc = seg.1?;
        let at = |n: u64| {
            let i = usize::try_from(n.checked_sub(1)?).ok()?;
            self.frame_offsets.get(i).copied().filter(|&o| o != u32::MAX)
        };
        let start = at(seq)?;
        let end = match at(seq + 1) {
            Some(next) if self.segment_of(seq + 1).map(|s| s.0) == Some(seg.0) => next,
            _ => loc.len,
        };
        (start < end && end <= loc.len).then_some((seg, start as usize, end as usize))
    }

    /// Notes a new segment (always after every existing one), or the new place of a rewritten
    /// one (the tamper helpers).
    pub(crate) fn put_segment(&mut self, first: u64, loc: Locator) {
        match self.segments.binary_search_by_key(&first, |s| s.0) {
            Ok(i) => self.segments[i].1 = Some(loc),
            Err(i) => self.segments.insert(i, (first, Some(loc))),
        }
    }

    pub(crate) fn seq_of(&self, event_id: &str) -> Option<u64> {
        match canonical_uuid(event_id) {
            Some(u) => self.uuid_ids.get(&u).copied(),
            None => self.other_ids.get(event_id).copied(),
        }
    }

    /// The patient's seqs in append order (= ascending).
    pub(crate) fn patient_seqs(&self, patient_id: &str) -> &[u64] {
        self.patients.get(patient_id).map_or(&[], Vec::as_slice)
    }

    /// Sorted by bytes.
    pub(crate) fn patient_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.patients.keys().map(|k| k.to_string()).collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn patient_count(&self) -> u64 {
        self.patients.len() as u64
    }

    /// The last segment, if any.
    pub(crate) fn last_segment(&self) -> Option<SegmentRef> {
        self.segments.last().copied()
    }

    /// The segment that would hold `seq`, if any segment starts at or before it.
    pub(crate) fn segment_of(&self, seq: u64) -> Option<SegmentRef> {
        let i = self.segments.partition_point(|s| s.0 <= seq);
        i.checked_sub(1).map(|i| self.segments[i])
    }

    /// The segments from the one that would hold `seq` on, in order.
    pub(crate) fn segments_from(&self, seq: u64) -> Vec<SegmentRef> {
        let i = self.segments.partition_point(|s| s.0 <= seq).saturating_sub(1);
        self.segments[i..].to_vec()
    }
}

/// The 128-bit value of `s` if it is a UUID in canonical lowercase hyphenated form
/// (`8-4-4-4-12` hex digits); `None` for any other string, which is then kept as text, so two
/// ids that differ only in letter case stay distinct.
fn canonical_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_lowercase_uuids_are_packed() {
        let id = "0b8a2f6e-3c41-4d2a-9f0e-5a7b1c9d2e11";
        assert_eq!(canonical_uuid(id), Some(0x0b8a2f6e_3c41_4d2a_9f0e_5a7b1c9d2e11));
        assert_eq!(canonical_uuid(&id.to_uppercase()), None);
        assert_eq!(canonical_uuid("0b8a2f6e3c414d2a9f0e5a7b1c9d2e11"), None);
        assert_eq!(canonical_uuid("0b8a2f6e-3c41-4d2a-9f0e-5a7b1c9d2e1g"), None);
    }

    #[test]
    fn upper_and_lower_case_ids_are_different_events() {
        let mut index = Index::default();
        let id = "0b8a2f6e-3c41-4d2a-9f0e-5a7b1c9d2e11";
        index.insert(id, "P1", 1);
        index.insert(&id.to_uppercase(), "P1", 2);
        assert_eq!(index.seq_of(id), Some(1));
        assert_eq!(index.seq_of(&id.to_uppercase()), Some(2));
        assert_eq!(index.seq_of("nope"), None);
        assert_eq!(index.patient_seqs("P1"), &[1, 2]);
    }
}
