//! The event-id and patient indexes and the segment map: derived state, rebuilt from the
//! segments at every open and kept up to date by each append under the writer lock.
//!
//! Why on disk, in scratch files: a service appends for as long as it runs, so anything the index
//! keeps in memory per event grows without end (a FxHashMap of event ids plus a seq list per
//! patient was ~100 bytes per event; docs/bus.md, "Memory soak"). The per-event part lives in
//! two scratch files instead, read and written with positioned IO, so it sits in the OS page
//! cache, which the kernel reclaims, not in the process:
//! - `seqs`: one 24-byte record per seq: where its frame is (file, offset, length) and the
//!   previous seq of the same patient (a chain per patient, newest first);
//! - `ids`: a linear-probing hash table of 16-byte slots (the id's 64-bit hash, its seq). A
//!   slot is only a hint: a hit is confirmed by reading the frame and comparing the event_id
//!   bytes, so hash collisions cannot merge two ids. It doubles at half load with one
//!   sequential pass (slots are placed by the hash's top bits, so order is kept).
//!
//! In memory stay one entry per patient (its last seq and event count) and one per segment
//! (~64 KiB of log). Why not sled keys: sled 0.34 keeps every key it holds resident, whatever its
//! cache size (docs/storage.md, "Memory"), and ~15 µs per key insert. Why not another embedded
//! database: redb measured ~19–28 µs per event for these two inserts, against a few µs here.
//!
//! The scratch files are unlinked as soon as they are created: nothing is left behind by a crash,
//! and nothing in them needs to be durable, since they are rebuilt from the log at open (one
//! sequential read, the same as the in-memory indexes needed before).

use std::fs::File;
use std::hash::Hasher;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};

use crate::codec;
use crate::error::StoreError;
use crate::segfile::{Locator, SegmentFiles};

/// One segment as the index knows it: its first seq and where its bytes are (`None` when its
/// locator in sled is unreadable — reads of it fail, verify reports it).
pub(crate) type SegmentRef = (u64, Option<Locator>);

/// Where one frame is: its segment file, byte offset in that file and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramePos {
    pub(crate) file: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

/// A patient's place in the index: its newest seq and how many events it has.
#[derive(Debug, Clone, Copy)]
struct PatientTail {
    last: u64,
    count: u64,
}

/// Event-id → seq and patient → seqs for every readable frame of the log, and the segment map.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `None` for the segments-only index of [`crate::Store::open_lazy`].
    disk: Option<DiskParts>,
    patients: FxHashMap<Box<str>, PatientTail>,
    /// Every segment, ascending by first seq (to find the segment holding a seq).
    segments: Vec<SegmentRef>,
    /// False for the segments-only index of [`crate::Store::open_lazy`] until its first use
    /// builds the rest.
    pub(crate) complete: bool,
}

#[derive(Debug)]
struct DiskParts {
    files: Arc<SegmentFiles>,
    seqs: SeqRecords,
    ids: IdTable,
}

impl Index {
    /// Reads every segment once, in order, and builds the indexes in fresh scratch files.
    /// Unreadable segments and damaged frames are skipped (verify reports them).
    pub(crate) fn build(files: &Arc<SegmentFiles>, segments: Vec<SegmentRef>) -> Result<Index, StoreError> {
        let mut index = Index {
            disk: Some(DiskParts {
                files: Arc::clone(files),
                seqs: SeqRecords::new(files.scratch_file()?),
                ids: IdTable::new(files.scratch_file()?, files.dir().to_path_buf()),
            }),
            complete: true,
            ..Index::default()
        };
        for &(first, loc) in &segments {
            let Some(loc) = loc else {
                continue;
            };
            // A segment its file ends inside of (a cut file) is indexed up to the cut.
            let bytes = files.read(first, loc).unwrap_or_else(|_| files.read_available(loc));
            let mut batch = Vec::new();
            for frame in codec::frames(&bytes).flatten() {
                let pos = FramePos {
                    file: loc.file,
                    offset: loc.offset + frame.offset as u64,
                    len: (frame.record_offset + frame.record.len() - frame.offset) as u32,
                };
                batch.push(Indexed {
                    event_id: String::from_utf8_lossy(frame.event_id),
                    patient_id: String::from_utf8_lossy(frame.patient_id),
                    seq: frame.seq,
                    pos,
                });
            }
            index.insert_all(&batch, false)?;
        }
        index.segments = segments;
        Ok(index)
    }

    /// Only the segment map: enough to stream the log ([`crate::Store::iter_from`]); the rest is
    /// built by [`Index::build`] on first need.
    pub(crate) fn segments_only(segments: Vec<SegmentRef>) -> Index {
        Index { segments, ..Index::default() }
    }

    fn disk(&self) -> Result<&DiskParts, StoreError> {
        self.disk.as_ref().ok_or_else(|| StoreError::corrupt("store index", "used before it was built"))
    }

    /// Records stored events (ascending seqs). The first seq of an id wins (a repeated id can
    /// only come from tampering, which verify reports). `ids_are_new`: the caller already
    /// established that no id of `events` is indexed and that they are distinct (an append,
    /// after its duplicate checks), which saves a probe per event.
    pub(crate) fn insert_all<S: AsRef<str>>(&mut self, events: &[Indexed<S>], ids_are_new: bool) -> Result<(), StoreError> {
        let mut records = Vec::with_capacity(events.len());
        for e in events {
            let patient_id = e.patient_id.as_ref();
            let prev = match self.patients.get_mut(patient_id) {
                Some(tail) => {
                    let prev = tail.last;
                    *tail = PatientTail { last: e.seq, count: tail.count + 1 };
                    prev
                }
                None => {
                    self.patients.insert(patient_id.into(), PatientTail { last: e.seq, count: 1 });
                    0
                }
            };
            records.push((e.seq, SeqRecord { pos: e.pos, prev }));
        }
        // The records go first: a lookup confirms a hit by reading the frame they locate (an id
        // repeated inside `events` included).
        self.disk()?.seqs.write(&records)?;
        for e in events {
            let event_id = e.event_id.as_ref();
            let h = id_hash(event_id);
            if ids_are_new || self.seq_of_hashed(event_id, h)?.is_none() {
                let disk = self.disk.as_mut().ok_or_else(|| StoreError::corrupt("store index", "not built"))?;
                disk.ids.insert(h, e.seq)?;
            }
        }
        Ok(())
    }

    /// Notes a new segment (always after every existing one), a longer open segment, or the new
    /// place of a rewritten one (the tamper helpers).
    pub(crate) fn put_segment(&mut self, first: u64, loc: Locator) {
        match self.segments.binary_search_by_key(&first, |s| s.0) {
            Ok(i) => self.segments[i].1 = Some(loc),
            Err(i) => self.segments.insert(i, (first, Some(loc))),
        }
    }

    /// The seq at which `event_id` is stored, if it is.
    pub(crate) fn seq_of(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        self.seq_of_hashed(event_id, id_hash(event_id))
    }

    fn seq_of_hashed(&self, event_id: &str, h: u64) -> Result<Option<u64>, StoreError> {
        let disk = self.disk()?;
        disk.ids.find(h, |seq| {
            let Some(frame) = self.frame(seq)? else {
                return Ok(false);
            };
            Ok(codec::frames(&frame).next().and_then(Result::ok).is_some_and(|f| f.seq == seq && f.event_id == event_id.as_bytes()))
        })
    }

    /// The bytes of seq's frame, when the index knows where it is.
    pub(crate) fn frame(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let disk = self.disk()?;
        let Some(r) = disk.seqs.read(seq)? else {
            return Ok(None);
        };
        Ok(disk.files.read_at(r.pos.file, r.pos.offset, r.pos.len).ok())
    }

    /// The patient's seqs in append order (= ascending), following its chain from the newest.
    #[cfg(test)]
    pub(crate) fn patient_seqs(&self, patient_id: &str) -> Result<Vec<u64>, StoreError> {
        Ok(self.patient_frames_after(patient_id, 0)?.into_iter().map(|(seq, _)| seq).collect())
    }

    /// The patient's seqs after `after` (ascending) with the place of each one's frame, read
    /// from its chain from the newest back to `after` only. A seq whose record is missing ends
    /// the walk with no place (the caller's read of it reports the damage).
    pub(crate) fn patient_frames_after(&self, patient_id: &str, after: u64) -> Result<Vec<(u64, Option<FramePos>)>, StoreError> {
        let Some(tail) = self.patients.get(patient_id) else {
            return Ok(Vec::new());
        };
        let disk = self.disk()?;
        let mut out = Vec::new();
        let mut seq = tail.last;
        while seq > after && out.len() < tail.count as usize {
            let Some(r) = disk.seqs.read(seq)? else {
                out.push((seq, None));
                break;
            };
            out.push((seq, Some(r.pos)));
            if r.prev >= seq {
                break;
            }
            seq = r.prev;
        }
        out.reverse();
        Ok(out)
    }

    /// `len` bytes of segment file `file` from `offset` (a run of adjacent frames).
    pub(crate) fn read_span(&self, file: u32, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let len = u32::try_from(len).map_err(|_| StoreError::corrupt("store index", "a read span over 4 GiB"))?;
        self.disk()?.files.read_at(file, offset, len)
    }

    /// The seq before `seq` in its patient's chain (0 for the patient's first), as recorded.
    pub(crate) fn prev_of(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        Ok(self.disk()?.seqs.read(seq)?.map(|r| r.prev))
    }

    /// The newest seq of a patient, if it has any.
    pub(crate) fn patient_last(&self, patient_id: &str) -> Option<u64> {
        self.patients.get(patient_id).map(|t| t.last)
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

/// One event to index.
#[derive(Debug, Clone)]
pub(crate) struct Indexed<S> {
    pub(crate) event_id: S,
    pub(crate) patient_id: S,
    pub(crate) seq: u64,
    pub(crate) pos: FramePos,
}

/// The 64-bit hash an event id is filed under. Any good mix will do: the table is rebuilt at
/// every open, so it never has to match another build's.
fn id_hash(event_id: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(event_id.as_bytes());
    // splitmix64's finaliser: the table places slots by the top bits.
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn scratch_err(what: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: "<store index scratch file>".into(),
        what: what.to_owned(),
        source,
    }
}

/// A seq's record: where its frame is and the patient's previous seq.
#[derive(Debug, Clone, Copy)]
struct SeqRecord {
    pos: FramePos,
    prev: u64,
}

const SEQ_RECORD_LEN: usize = 24;

/// `seqs`: the record of seq n at byte (n - 1) × 24; a record of length 0 is a hole (a seq
/// missing from a damaged log).
#[derive(Debug)]
struct SeqRecords {
    file: File,
}

impl SeqRecords {
    fn new(file: File) -> SeqRecords {
        SeqRecords { file }
    }

    /// Writes the records, one positioned write per run of consecutive seqs.
    fn write(&self, records: &[(u64, SeqRecord)]) -> Result<(), StoreError> {
        let mut i = 0;
        while i < records.len() {
            let first = records[i].0;
            let mut buf = Vec::with_capacity(SEQ_RECORD_LEN * (records.len() - i));
            while i < records.len() && records[i].0 == first + (buf.len() / SEQ_RECORD_LEN) as u64 {
                let r = records[i].1;
                buf.extend_from_slice(&r.pos.file.to_le_bytes());
                buf.extend_from_slice(&r.pos.len.to_le_bytes());
                buf.extend_from_slice(&r.pos.offset.to_le_bytes());
                buf.extend_from_slice(&r.prev.to_le_bytes());
                i += 1;
            }
            let at = (first - 1) * SEQ_RECORD_LEN as u64;
            self.file.write_all_at(&buf, at).map_err(|e| scratch_err("write the seq index", e))?;
        }
        Ok(())
    }

    fn read(&self, seq: u64) -> Result<Option<SeqRecord>, StoreError> {
        let Some(n) = seq.checked_sub(1) else {
            return Ok(None);
        };
        let mut b = [0u8; SEQ_RECORD_LEN];
        match self.file.read_exact_at(&mut b, n * SEQ_RECORD_LEN as u64) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(scratch_err("read the seq index", e)),
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let len = u32_at(4);
        if len == 0 {
            return Ok(None);
        }
        Ok(Some(SeqRecord {
            pos: FramePos { file: u32_at(0), offset: u64_at(8), len },
            prev: u64_at(16),
        }))
    }
}

const SLOT_LEN: usize = 16;
/// Slots read per positioned read while probing.
const PROBE_SLOTS: usize = 8;
const MIN_BITS: u32 = 12;

/// `ids`: linear probing over 2^bits home slots, an entry's home being its hash's top `bits`
/// bits. Probing runs forward without wrapping (past the last home slot the file simply goes
/// on), so entries sit in the order of their homes, cluster by cluster; an empty slot (seq 0,
/// or past the end of the file) ends a probe.
#[derive(Debug)]
struct IdTable {
    file: File,
    /// Where its scratch files are made.
    dir: std::path::PathBuf,
    bits: u32,
    count: u64,
}

impl IdTable {
    fn new(file: File, dir: std::path::PathBuf) -> IdTable {
        IdTable { file, dir, bits: MIN_BITS, count: 0 }
    }

    fn home(&self, h: u64) -> u64 {
        h >> (64 - self.bits)
    }

    /// Calls `f(slot, hash, seq)` for the slots from `h`'s home on, until `f` says stop or an
    /// empty slot is reached (then `f` is called with seq 0 and that slot).
    fn probe(&self, h: u64, mut f: impl FnMut(u64, u64, u64) -> Result<bool, StoreError>) -> Result<(), StoreError> {
        let mut slot = self.home(h);
        let mut buf = [0u8; SLOT_LEN * PROBE_SLOTS];
        loop {
            let n = read_up_to(&self.file, &mut buf, slot * SLOT_LEN as u64)?;
            for k in 0..PROBE_SLOTS {
                let (tag, seq) = if (k + 1) * SLOT_LEN <= n {
                    let s = &buf[k * SLOT_LEN..(k + 1) * SLOT_LEN];
                    (u64::from_le_bytes(s[..8].try_into().unwrap_or([0; 8])), u64::from_le_bytes(s[8..].try_into().unwrap_or([0; 8])))
                } else {
                    (0, 0)
                };
                if !f(slot, tag, seq)? || seq == 0 {
                    return Ok(());
                }
                slot += 1;
            }
        }
    }

    /// The first seq filed under `h` for which `confirm` holds.
    fn find(&self, h: u64, mut confirm: impl FnMut(u64) -> Result<bool, StoreError>) -> Result<Option<u64>, StoreError> {
        let mut found = None;
        self.probe(h, |_, tag, seq| {
            if seq != 0 && tag == h && confirm(seq)? {
                found = Some(seq);
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(found)
    }

    fn insert(&mut self, h: u64, seq: u64) -> Result<(), StoreError> {
        if (self.count + 1) * 2 > 1 << self.bits {
            self.grow()?;
        }
        let mut empty = 0;
        self.probe(h, |slot, _, s| {
            if s == 0 {
                empty = slot;
            }
            Ok(true)
        })?;
        let mut b = [0u8; SLOT_LEN];
        b[..8].copy_from_slice(&h.to_le_bytes());
        b[8..].copy_from_slice(&seq.to_le_bytes());
        self.file
            .write_all_at(&b, empty * SLOT_LEN as u64)
            .map_err(|e| scratch_err("write the event-id index", e))?;
        self.count += 1;
        Ok(())
    }

    /// Doubles the table into a new scratch file with one sequential read of the old one and
    /// one sequential write: homes at `bits + 1` keep the order of homes at `bits`, so each
    /// cluster, sorted by its new homes, is written at the first free slot at or after each
    /// entry's home.
    fn grow(&mut self) -> Result<(), StoreError> {
        let new_bits = self.bits + 1;
        let new_file = crate::segfile::scratch_in(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, &new_file);
        let mut written = 0u64; // slots written to `out` so far
        let mut cluster: Vec<(u64, u64)> = Vec::new();
        let flush = |cluster: &mut Vec<(u64, u64)>, out: &mut BufWriter<&File>, written: &mut u64| -> Result<(), StoreError> {
            cluster.sort_by_key(|&(h, _)| h >> (64 - new_bits));
            for &(h, seq) in cluster.iter() {
                let home = h >> (64 - new_bits);
                while *written < home {
                    out.write_all(&[0u8; SLOT_LEN]).map_err(|e| scratch_err("grow the event-id index", e))?;
                    *written += 1;
                }
                out.write_all(&h.to_le_bytes()).map_err(|e| scratch_err("grow the event-id index", e))?;
                out.write_all(&seq.to_le_bytes()).map_err(|e| scratch_err("grow the event-id index", e))?;
                *written += 1;
            }
            cluster.clear();
            Ok(())
        };
        let mut buf = vec![0u8; SLOT_LEN * 4096];
        let mut at = 0u64;
        loop {
            let n = read_up_to(&self.file, &mut buf, at)?;
            for s in buf[..n - n % SLOT_LEN].chunks_exact(SLOT_LEN) {
                let h = u64::from_le_bytes(s[..8].try_into().unwrap_or([0; 8]));
                let seq = u64::from_le_bytes(s[8..].try_into().unwrap_or([0; 8]));
                if seq == 0 {
                    flush(&mut cluster, &mut out, &mut written)?;
                } else {
                    cluster.push((h, seq));
                }
            }
            if n < buf.len() {
                break;
            }
            at += n as u64;
        }
        flush(&mut cluster, &mut out, &mut written)?;
        out.flush().map_err(|e| scratch_err("grow the event-id index", e))?;
        drop(out);
        self.file = new_file;
        self.bits = new_bits;
        Ok(())
    }
}

/// Reads as many bytes as the file has at `at`, up to `buf.len()`.
fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> Result<usize, StoreError> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(scratch_err("read the event-id index", e)),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One frame of `seq` (zero hashes: the index never checks them).
    fn encode(out: &mut Vec<u8>, seq: u64, event_id: &str, patient_id: &str) {
        codec::encode_frame(
            out,
            &codec::FrameIn {
                seq,
                event_id: event_id.as_bytes(),
                patient_id: patient_id.as_bytes(),
                received_at_micros: 0,
                prev: [0; 32],
                hash: [0; 32],
                content: b"{}",
            },
        );
    }

    fn frame_for(files: &SegmentFiles, tail: &mut crate::segfile::Tail, seq: u64, event_id: &str, patient_id: &str) -> FramePos {
        let mut bytes = Vec::new();
        encode(&mut bytes, seq, event_id, patient_id);
        let (file, offset) = files.append(*tail, &bytes).expect("append");
        *tail = crate::segfile::Tail { file, end: offset + bytes.len() as u64 };
        FramePos { file, offset, len: bytes.len() as u32 }
    }

    #[test]
    fn ids_and_patients_survive_many_doublings_and_letter_case_counts() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (files, tail) = SegmentFiles::open(dir.path(), None).expect("open");
        let files = Arc::new(files);
        let mut index = Index::build(&files, Vec::new()).expect("build");
        let n = 20_000u64;
        let id_of = |seq: u64| match seq {
            1 => "0b8a2f6e-3c41-4d2a-9f0e-5a7b1c9d2e11".to_owned(),
            2 => "0B8A2F6E-3C41-4D2A-9F0E-5A7B1C9D2E11".to_owned(),
            _ => format!("id-{seq}"),
        };
        // All frames in one write (one sync), then indexed in batches of 100.
        let mut bytes = Vec::new();
        let mut events = Vec::new();
        for seq in 1..=n {
            let (id, pid) = (id_of(seq), format!("P{}", seq % 7));
            let start = bytes.len();
            encode(&mut bytes, seq, &id, &pid);
            let pos = FramePos { file: 0, offset: start as u64, len: (bytes.len() - start) as u32 };
            events.push(Indexed { event_id: id, patient_id: pid, seq, pos });
        }
        files.append(tail, &bytes).expect("append");
        for chunk in events.chunks(100) {
            index.insert_all(chunk, false).expect("insert");
        }
        assert!(index.disk.as_ref().expect("disk").ids.bits > MIN_BITS + 2, "the table grew");
        assert_eq!(index.seq_of("0b8a2f6e-3c41-4d2a-9f0e-5a7b1c9d2e11").expect("lookup"), Some(1));
        assert_eq!(index.seq_of("0B8A2F6E-3C41-4D2A-9F0E-5A7B1C9D2E11").expect("lookup"), Some(2));
        for seq in (3..=n).step_by(97) {
            assert_eq!(index.seq_of(&format!("id-{seq}")).expect("lookup"), Some(seq));
        }
        assert_eq!(index.seq_of("nope").expect("lookup"), None);
        let p3 = index.patient_seqs("P3").expect("seqs");
        assert_eq!(p3, (1..=n).filter(|s| s % 7 == 3).collect::<Vec<_>>());
        assert_eq!(index.patient_count(), 7);
        assert_eq!(index.patient_ids()[0], "P0");
    }

    #[test]
    fn a_repeated_id_keeps_its_first_seq() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (files, mut tail) = SegmentFiles::open(dir.path(), None).expect("open");
        let files = Arc::new(files);
        let mut index = Index::build(&files, Vec::new()).expect("build");
        for seq in 1..=3 {
            let pos = frame_for(&files, &mut tail, seq, "same", "P1");
            index.insert_all(&[Indexed { event_id: "same", patient_id: "P1", seq, pos }], false).expect("insert");
        }
        assert_eq!(index.seq_of("same").expect("lookup"), Some(1));
        assert_eq!(index.patient_seqs("P1").expect("seqs"), vec![1, 2, 3]);
    }
}
