//! The event log: opening the sled database and the segment files, appending batches (the
//! chained records of a batch written as segments to the tail segment file and synced, then their
//! locators, the outbox and the head in one `apply_batch` on the `log` tree), and reading it back
//! through the in-memory indexes.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::codec::{
    self, FrameIn, FrameView, Hash, HEAD_KEY, LAYOUT1_LOG, LAYOUT2_VERSION, LAYOUT_KEY,
    LAYOUT_VERSION, OUTBOX, RECORD_HEADER_LEN, SEGMENT,
};
use crate::error::StoreError;
use crate::index::{FramePos, Index, Indexed, SegmentRef};
use crate::rejections::Rejection;
use crate::segfile::{Locator, SegmentFiles, Tail};

/// A batch's frames are split into segments of about this many bytes, so that one segment
/// stays a reasonable unit to read back (a batch of 1,000 typical events is ~0.6 MiB).
const SEGMENT_TARGET_BYTES: usize = 64 << 10;
/// The longest run of adjacent frames [`Store::patient_events_after`] reads at once.
const MAX_READ_RUN: u64 = 1 << 20;

/// One event to append. The caller (the domain crate's validation) extracts the keys from the
/// canonical content; the store treats `content` as opaque bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// The producer's idempotency key. Must be non-empty.
    pub event_id: &'a str,
    /// Pseudonymous patient id. Must be non-empty and contain no NUL byte (it is a key separator).
    pub patient_id: &'a str,
    /// Canonical event bytes; what the hash chain covers and what duplicates are compared on.
    pub content: &'a [u8],
    /// When the registry received the event, Unix microseconds (covered by the chain).
    pub received_at_micros: i64,
}

/// What happened to one input of [`Store::append_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppendOutcome {
    /// Newly stored at `seq`.
    Accepted {
        /// The assigned sequence number.
        seq: u64,
    },
    /// Same event_id and same content already stored (earlier, or earlier in this batch) at
    /// `seq`: acknowledge it, nothing was written.
    Duplicate {
        /// Where the identical event is stored.
        seq: u64,
    },
    /// Same event_id, different content: the stored event at `existing_seq` is untouched. The
    /// caller turns this into a rejection with reason `event_id_conflict`.
    Conflict {
        /// Where the event holding this id is stored.
        existing_seq: u64,
    },
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its sequence number (1-based, contiguous).
    pub seq: u64,
    /// When it was received, Unix microseconds.
    pub received_at_micros: i64,
    /// The canonical bytes as appended.
    pub content: Vec<u8>,
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// When true, every accepted event is also put in the outbox (in the same atomic batch), for
    /// the ingest service to publish downstream; see [`Store::outbox_pending`].
    pub outbox: bool,
    /// sled's page-cache budget in bytes; `None`: [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: Option<u64>,
}

/// sled's page-cache budget, 64 MiB (sled's own default is 1 GiB). sled holds only small values
/// since layout 3 (locators, labels, checkpoints, rejections); the event bytes are in the segment
/// files, cached by the OS.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// State only the single writer touches, under one mutex: the tail of the chain and the next
/// rejection id. Updated only after sled accepted the batch, so an error leaves it true.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) last_seq: u64,
    pub(crate) head_hash: Hash,
    pub(crate) next_rejection_id: u64,
    /// The committed end of the segment files.
    pub(crate) tail: Tail,
}

/// The registry's store over one sled directory. Cheap to clone (handles to the same database);
/// `Send + Sync`. Writes are serialised internally; reads never wait for a write's disk IO.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    pub(crate) rejected: sled::Tree,
    pub(crate) labels: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) writer: Arc<Mutex<Writer>>,
    pub(crate) index: Arc<RwLock<Index>>,
    pub(crate) files: Arc<SegmentFiles>,
    /// The stored alert_ids, read at the first alert call (crate::alerts).
    pub(crate) alert_ids: crate::alerts::AlertIds,
    outbox: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("last_seq", &self.last_seq())
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

/// Where one accepted event of a batch being staged goes.
struct Placed<'a> {
    event: &'a NewEvent<'a>,
    seq: u64,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, without outbox.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &StoreConfig::default())
    }

    /// Opens (creating if needed) the store in `dir` and rebuilds the indexes (scratch files,
    /// crate::index) with one sequential read of the log. Fails with [`StoreError::Open`] if sled cannot open it —
    /// notably when another process holds it (sled takes an exclusive lock) — and with
    /// [`StoreError::Corrupt`] for a store written in the older one-key-per-event layout.
    /// A layout-2 store (segments as sled values) is migrated in place to layout 3 (segment
    /// files) first; the migration is resumable after a crash.
    pub fn open_with(dir: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        Store::open_inner(dir, config, true)
    }

    /// [`Store::open`] without rebuilding the event-id and patient indexes at open: the one
    /// sequential read of the whole log they need (plus writing the scratch index files; the
    /// cost at a million events is not measured since they moved to disk) happens on the first
    /// call that needs them (a lookup by id or patient, an append, verify). Streaming the log
    /// ([`Store::iter_from`]), `last_seq` and the derived trees do not need them. For a
    /// short-lived reader that may not need them at all (`registry report` over a current
    /// snapshot). Results are the same as with [`Store::open`].
    pub fn open_lazy(dir: &Path) -> Result<Store, StoreError> {
        Store::open_inner(dir, &StoreConfig::default(), false)
    }

    /// Whether the event-id and patient indexes are built (always after [`Store::open`]; after
    /// [`Store::open_lazy`] once something needed them).
    pub fn indexes_built(&self) -> bool {
        self.index.read().unwrap_or_else(PoisonError::into_inner).complete
    }

    fn open_inner(dir: &Path, config: &StoreConfig, build_index: bool) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            dir: dir.to_path_buf(),
            source,
        };
        // HighThroughput only changes how sled's segment cleaner trades disk space for write
        // speed (see docs/storage.md); durability is the same.
        let db = open_sled(dir, config.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES)).map_err(open_err)?;
        let log = db.open_tree("log").map_err(open_err)?;
        let rejected = db.open_tree("rejected").map_err(open_err)?;
        let labels = db.open_tree("labels").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let layout = check_layout(&log)?;
        let (mut segments, raw) = read_segment_refs(&log, layout)?;
        let (files, mut tail) = SegmentFiles::open(dir, committed_tail(&segments))?;
        let files = Arc::new(files);
        if layout == Layout::Two {
            tail = migrate_layout2(&db, &log, &files, tail, &raw)?;
            segments = read_segment_refs(&log, Layout::Three)?.0;
        }
        let (last_seq, head_hash) = recover_head(&log, &files, &segments)?;
        let next_rejection_id = crate::rejections::recover_next_id(&rejected)?;
        let index = if build_index { Index::build(&files, segments)? } else { Index::segments_only(segments) };
        Ok(Store {
            db,
            log,
            rejected,
            labels,
            meta,
            writer: Arc::new(Mutex::new(Writer {
                last_seq,
                head_hash,
                next_rejection_id,
                tail,
            })),
            index: Arc::new(RwLock::new(index)),
            files,
            alert_ids: Default::default(),
            outbox: config.outbox,
        })
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // The writer state is only assigned after a successful apply, never half-updated, so a
        // panic elsewhere while holding the lock leaves it consistent: recover from poisoning.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // Same reasoning: the index is only mutated by complete inserts.
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        if index.complete {
            return index;
        }
        drop(index);
        self.complete_index();
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds the indexes of a lazily opened store from its segment map (once, under the write
    /// lock: a concurrent caller waits and finds them built).
    fn complete_index(&self) {
        let mut index = self.write_index();
        if !index.complete {
            // `Index::build` skips unreadable segments and damaged frames (verify reports them):
            // it cannot fail, the `Result` is the signature's.
            let segments = index.segments_from(0);
            if let Ok(built) = Index::build(&self.files, segments) {
                *index = built;
            }
        }
    }

    /// The segment map only (complete even when the indexes are not built yet).
    fn segments_from(&self, seq: u64) -> Vec<SegmentRef> {
        self.index.read().unwrap_or_else(PoisonError::into_inner).segments_from(seq)
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `events` atomically (one sled batch) and flushes once before returning: when this
    /// returns `Ok`, every `Accepted` event is on disk and may be acknowledged upstream.
    /// Returns one outcome per input, in input order. Duplicates and conflicts are resolved
    /// against the stored log and against earlier inputs of the same batch.
    ///
    /// An invalid key (empty event_id, empty patient_id or one containing NUL, an id over
    /// 65,535 bytes) fails the whole call with [`StoreError::InvalidInput`] and writes nothing.
    pub fn append_batch(&self, events: &[NewEvent<'_>]) -> Result<Vec<AppendOutcome>, StoreError> {
        let (outcomes, _) = self.append_batch_with_rejections(events, &[])?;
        Ok(outcomes)
    }

    /// The unit of work of the ingest service: appends `events` and records `rejections`, then
    /// flushes once. Returns the append outcomes and the ids given to the rejections.
    ///
    /// The events are one atomic sled batch and the rejections another (they live in different
    /// trees); after a crash before the flush returned, either may be present without the other.
    /// Nothing was acknowledged then, so redelivery repairs it: events come back as `Duplicate`,
    /// a rejection may be recorded twice.
    pub fn append_batch_with_rejections(
        &self,
        events: &[NewEvent<'_>],
        rejections: &[Rejection<'_>],
    ) -> Result<(Vec<AppendOutcome>, Vec<u64>), StoreError> {
        for e in events {
            validate(e)?;
        }
        if events.is_empty() && rejections.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut w = self.lock_writer();
        let mut outcomes = Vec::with_capacity(events.len());
        if !events.is_empty() {
            let (found, placed) = self.place(&w, events)?;
            outcomes = found;
            if !placed.is_empty() {
                let (batch, segments, positions, head, tail) = self.stage(&w, &placed)?;
                self.log.apply_batch(batch)?;
                w.tail = tail;
                (w.last_seq, w.head_hash) = head;
                let mut index = self.write_index();
                for (first, loc) in segments {
                    index.put_segment(first, loc);
                }
                let indexed: Vec<Indexed<&str>> = placed
                    .iter()
                    .zip(positions)
                    .map(|(p, pos)| Indexed { event_id: p.event.event_id, patient_id: p.event.patient_id, seq: p.seq, pos })
                    .collect();
                // `place` found every id new and distinct.
                if index.insert_all(&indexed, true).is_err() {
                    // The batch is committed; an index that missed it (a scratch file that could
                    // not be written) is rebuilt from the log at its next use.
                    index.complete = false;
                }
                drop(index);
            }
        }
        let mut ids = Vec::new();
        if !rejections.is_empty() {
            // `next`: after the ids given to new records (a bus message kept before keeps its id).
            let (batch, new_ids, next) = self.stage_rejections(&w, rejections)?;
            self.rejected.apply_batch(batch)?;
            w.next_rejection_id = next;
            ids = new_ids;
        }
        drop(w);
        self.db.flush()?;
        Ok((outcomes, ids))
    }

    /// Decides each input's outcome and gives the new ones their seqs.
    fn place<'a>(
        &self,
        w: &Writer,
        events: &'a [NewEvent<'a>],
    ) -> Result<(Vec<AppendOutcome>, Vec<Placed<'a>>), StoreError> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut placed = Vec::with_capacity(events.len());
        // event_id → (seq, content) for ids accepted earlier in this batch.
        let mut in_batch: HashMap<&str, (u64, &[u8])> = HashMap::with_capacity(events.len());
        let index = self.read_index();
        let mut seq = w.last_seq;
        for e in events {
            let existing = match in_batch.get(e.event_id) {
                Some(&(s, content)) => Some((s, content == e.content)),
                None => match index.seq_of(e.event_id)? {
                    None => None,
                    Some(s) => {
                        let stored = self.get_with(&index, s)?.ok_or_else(|| {
                            StoreError::corrupt(
                                format!("event-id index entry {:?}", e.event_id),
                                format!("points to seq {s}, which is not in the log"),
                            )
                        })?;
                        Some((s, stored.content == e.content))
                    }
                },
            };
            match existing {
                Some((s, true)) => outcomes.push(AppendOutcome::Duplicate { seq: s }),
                Some((s, false)) => outcomes.push(AppendOutcome::Conflict { existing_seq: s }),
                None => {
                    seq += 1;
                    in_batch.insert(e.event_id, (seq, e.content));
                    placed.push(Placed { event: e, seq });
                    outcomes.push(AppendOutcome::Accepted { seq });
                }
            }
        }
        Ok((outcomes, placed))
    }

    /// Writes the chained frames, in segments, to the tail segment file and syncs it; builds the
    /// sled batch: a locator per segment, (with the outbox on) an outbox entry per segment part
    /// of this batch, and the head. Returns it with the segments, each frame's place in the
    /// files, the new chain tail and the new file tail — to be adopted only once sled took the
    /// batch.
    ///
    /// The batch's first part extends the last segment when it lies at the tail of the current
    /// file and stays under [`SEGMENT_TARGET_BYTES`]: its locator key is then overwritten with the
    /// longer length instead of a new key being added. sled keeps every key it holds resident
    /// (docs/storage.md, "Memory"), so one key per append grew a service that appends small
    /// batches by ~100 bytes per event; one key per ~64 KiB does not.
    #[allow(clippy::type_complexity)]
    fn stage(
        &self,
        w: &Writer,
        placed: &[Placed<'_>],
    ) -> Result<(sled::Batch, Vec<(u64, Locator)>, Vec<FramePos>, (u64, Hash), Tail), StoreError> {
        let mut batch = sled::Batch::default();
        let mut head = w.head_hash;
        let mut last = w.last_seq;
        let size: usize = placed.iter().map(|p| frame_len(p.event)).sum();
        let mut bytes = Vec::with_capacity(size);
        // (first seq, offset in `bytes`, length)
        let mut parts = Vec::new();
        // Each frame's (offset in `bytes`, length), in seq order.
        let mut frame_at = Vec::with_capacity(placed.len());
        for chunk in segment_chunks(placed) {
            let first = chunk[0].seq;
            let start = bytes.len();
            for p in chunk {
                let e = p.event;
                let (eid, pid) = (e.event_id.as_bytes(), e.patient_id.as_bytes());
                let hash = codec::chain_hash(&head, p.seq, e.received_at_micros, eid, pid, e.content);
                frame_at.push((bytes.len(), frame_len(e)));
                codec::encode_frame(
                    &mut bytes,
                    &FrameIn {
                        seq: p.seq,
                        event_id: eid,
                        patient_id: pid,
                        received_at_micros: e.received_at_micros,
                        prev: head,
                        hash,
                        content: e.content,
                    },
                );
                head = hash;
                last = p.seq;
            }
            parts.push((first, start, bytes.len() - start));
            if self.outbox {
                let seqs: Vec<u8> = chunk.iter().flat_map(|p| p.seq.to_be_bytes()).collect();
                batch.insert(&codec::seq_key(OUTBOX, first), seqs);
            }
        }
        // The segment the first part may extend: the last one, ending exactly at the tail.
        let open_segment = self
            .read_index()
            .last_segment()
            .and_then(|(first, loc)| Some((first, loc?)))
            .filter(|(_, loc)| loc.file == w.tail.file && loc.end() == w.tail.end);
        let (file, offset) = self.files.append(w.tail, &bytes)?;
        let too_long = |first: u64, len: usize| {
            u32::try_from(len)
                .map_err(|_| StoreError::InvalidInput(format!("the segment starting at seq {first} is over 4 GiB")))
        };
        let mut segments = Vec::with_capacity(parts.len());
        for (i, &(first, start, len)) in parts.iter().enumerate() {
            let extended = match open_segment {
                Some((seg_first, loc))
                    if i == 0
                        && loc.file == file
                        && loc.end() == offset
                        && loc.len as usize + len <= SEGMENT_TARGET_BYTES =>
                {
                    Some((seg_first, Locator { len: too_long(seg_first, loc.len as usize + len)?, ..loc }))
                }
                _ => None,
            };
            let (first, loc) = match extended {
                Some(found) => found,
                None => (first, Locator { file, offset: offset + start as u64, len: too_long(first, len)? }),
            };
            batch.insert(&codec::seq_key(SEGMENT, first), &loc.encode()[..]);
            segments.push((first, loc));
        }
        let positions = frame_at
            .into_iter()
            .map(|(at, len)| FramePos { file, offset: offset + at as u64, len: len as u32 })
            .collect();
        batch.insert(HEAD_KEY, &codec::encode_seq_hash(last, &head)[..]);
        let tail = Tail {
            file,
            end: offset + bytes.len() as u64,
        };
        Ok((batch, segments, positions, (last, head), tail))
    }

    /// The bytes of a segment the index knows.
    pub(crate) fn read_segment(&self, seg: SegmentRef) -> Result<Vec<u8>, StoreError> {
        read_segment(&self.files, seg)
    }

    /// The seq at which `event_id` is stored, if it is.
    pub fn seq_of_event_id(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        self.read_index().seq_of(event_id)
    }

    /// The event at `seq`, if any.
    pub fn get(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        let index = self.read_index();
        self.get_with(&index, seq)
    }

    fn get_with(&self, index: &Index, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        // Fast path: the frame the index locates, when its bytes say the same.
        if let Some(bytes) = index.frame(seq)? {
            if let Some(Ok(frame)) = codec::frames(&bytes).next() {
                if frame.seq == seq {
                    if let Ok(event) = decode_event(&frame) {
                        return Ok(Some(event));
                    }
                }
            }
        }
        // Else the whole segment, which reports damage precisely.
        let Some(seg) = index.segment_of(seq) else {
            return Ok(None);
        };
        let first = seg.0;
        let segment = self.read_segment(seg)?;
        for frame in codec::frames(&segment) {
            let frame = frame.map_err(|offset| unreadable_segment(first, offset))?;
            if frame.seq == seq {
                return decode_event(&frame).map(Some);
            }
        }
        Ok(None)
    }

    /// The events at `seqs`. A seq that is not in the log is an error naming `what` (the index
    /// that pointed there).
    fn events_at(&self, seqs: &[u64], what: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let index = self.read_index();
        seqs.iter()
            .map(|&seq| {
                self.get_with(&index, seq)?.ok_or_else(|| {
                    StoreError::corrupt(what.to_owned(), format!("points to seq {seq}, which is not in the log"))
                })
            })
            .collect()
    }

    /// Streams every event with seq ≥ `seq` in seq order, one segment in memory at a time.
    /// Events appended while iterating may or may not be seen. A damaged record yields an
    /// error and iteration goes on with the next readable one.
    pub fn iter_from(
        &self,
        seq: u64,
    ) -> impl Iterator<Item = Result<StoredEvent, StoreError>> + Send + 'static {
        SegmentIter {
            segments: self.segments_from(seq).into_iter(),
            files: Arc::clone(&self.files),
            pending: VecDeque::new(),
            from: seq,
        }
    }

    /// Every patient id with at least one event, sorted by bytes.
    pub fn patient_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.read_index().patient_ids())
    }

    /// The events of one patient, in seq order.
    pub fn patient_events(&self, patient_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.patient_events_after(patient_id, 0)
    }

    /// The events of one patient with seq > `after_seq`, in seq order: what a reader that
    /// already holds the patient's events through `after_seq` lacks (the log is append-only, so
    /// those never change). Only the newest part of the patient's chain is walked, and a run
    /// of frames that sit next to each other in a segment file is read with one positioned read.
    pub fn patient_events_after(&self, patient_id: &str, after_seq: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let index = self.read_index();
        let located = index.patient_frames_after(patient_id, after_seq)?;
        self.events_located(&index, &located, &format!("patient index entry {patient_id:?}"))
    }

    /// The events at `located` seqs (ascending, each with its frame's place when the index has
    /// it). Adjacent frames in one file are read together (runs up to [`MAX_READ_RUN`] bytes);
    /// a frame that does not read back as its seq goes through [`Store::get_with`], which
    /// falls back to the whole segment and names the damage. A seq that is not in the log is an
    /// error naming `what` (the index that pointed there).
    fn events_located(&self, index: &Index, located: &[(u64, Option<FramePos>)], what: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let missing = |seq: u64| StoreError::corrupt(what.to_owned(), format!("points to seq {seq}, which is not in the log"));
        let mut out = Vec::with_capacity(located.len());
        let mut i = 0;
        while i < located.len() {
            let (_, Some(first)) = located[i] else {
                let seq = located[i].0;
                out.push(self.get_with(index, seq)?.ok_or_else(|| missing(seq))?);
                i += 1;
                continue;
            };
            let mut end = first.offset + u64::from(first.len);
            let mut j = i + 1;
            while let Some((_, Some(p))) = located.get(j) {
                if p.file != first.file || p.offset != end || end - first.offset + u64::from(p.len) > MAX_READ_RUN {
                    break;
                }
                end += u64::from(p.len);
                j += 1;
            }
            let run = &located[i..j];
            let bytes = index.read_span(first.file, first.offset, end - first.offset).ok();
            let mut frames = bytes.as_deref().map(codec::frames);
            for &(want, _) in run {
                let read = frames
                    .as_mut()
                    .and_then(Iterator::next)
                    .and_then(Result::ok)
                    .filter(|f| f.seq == want)
                    .and_then(|f| decode_event(&f).ok());
                match read {
                    Some(event) => out.push(event),
                    None => {
                        // Out of step with the run: the rest goes one by one.
                        frames = None;
                        out.push(self.get_with(index, want)?.ok_or_else(|| missing(want))?);
                    }
                }
            }
            i = j;
        }
        Ok(out)
    }

    /// The last assigned seq, 0 when the log is empty.
    pub fn last_seq(&self) -> u64 {
        self.lock_writer().last_seq
    }

    /// The hash of the last record (32 zero bytes when the log is empty).
    pub fn head_hash(&self) -> Hash {
        self.lock_writer().head_hash
    }

    /// Number of events in the log (seqs are contiguous from 1, so this is `last_seq`).
    pub fn len(&self) -> u64 {
        self.last_seq()
    }

    /// True when the log holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes every dirty buffer of the database to disk (fsync). (Segment files are synced by
    /// the append that writes them.)
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Accepted events not yet marked published, oldest first, at most `limit`.
    /// Only populated when the store was opened with [`StoreConfig::outbox`].
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut seqs = Vec::new();
        for kv in self.log.scan_prefix([OUTBOX]) {
            let (k, v) = kv?;
            seqs.extend(decode_outbox(&k, &v)?);
            if seqs.len() >= limit {
                break;
            }
        }
        seqs.truncate(limit);
        self.events_at(&seqs, "outbox entry")
    }

    /// Number of outbox entries not yet marked done.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for kv in self.log.scan_prefix([OUTBOX]) {
            let (k, v) = kv?;
            n += decode_outbox(&k, &v)?.len() as u64;
        }
        Ok(n)
    }

    /// Marks these seqs as published (removes them from the outbox, atomically). Not flushed on
    /// its own: it becomes durable with the next flush (the next append, or within sled's 500 ms
    /// background flush). A crash before that re-publishes them, which the bus drops as
    /// duplicates (`Nats-Msg-Id` = event_id) — cheaper than an fsync per publish round.
    pub fn outbox_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let _w = self.lock_writer();
        // Outbox entries are keyed by the first seq of the part of a batch they list: the entry
        // holding a seq is the last one keyed at or before it.
        let mut by_segment: HashMap<u64, Vec<u64>> = HashMap::new();
        for &seq in seqs {
            let range = codec::seq_key(OUTBOX, 0)..=codec::seq_key(OUTBOX, seq);
            if let Some(kv) = self.log.range(range).next_back() {
                let (k, _) = kv?;
                if let Some(first) = codec::parse_seq_key(OUTBOX, &k) {
                    by_segment.entry(first).or_default().push(seq);
                }
            }
        }
        let mut batch = sled::Batch::default();
        for (first, done) in by_segment {
            let key = codec::seq_key(OUTBOX, first);
            let Some(v) = self.log.get(key)? else {
                continue;
            };
            let left: Vec<u8> = decode_outbox(&key, &v)?
                .into_iter()
                .filter(|s| !done.contains(s))
                .flat_map(u64::to_be_bytes)
                .collect();
            if left.is_empty() {
                batch.remove(&key);
            } else {
                batch.insert(&key, left);
            }
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    /// Rewrites the frame holding `seq` in its segment with `edit` (which writes the replacement
    /// frame bytes, possibly none): the new segment goes to the tail of the segment files and its
    /// locator replaces the old one. Flushes and rebuilds the indexes. For the tamper helpers.
    fn rewrite_frame(
        &self,
        seq: u64,
        edit: impl FnOnce(&FrameView<'_>, &mut Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut w = self.lock_writer();
        let seg = self
            .read_index()
            .segment_of(seq)
            .ok_or_else(|| StoreError::InvalidInput(format!("no record at seq {seq}")))?;
        let key = codec::seq_key(SEGMENT, seg.0);
        let segment = self.read_segment(seg)?;
        let frame = codec::frames(&segment)
            .map_while(Result::ok)
            .find(|f| f.seq == seq)
            .ok_or_else(|| StoreError::InvalidInput(format!("no record at seq {seq}")))?;
        let end = frame.record_offset + frame.record.len();
        let mut out = segment[..frame.offset].to_vec();
        edit(&frame, &mut out)?;
        out.extend_from_slice(&segment[end..]);
        if out.is_empty() {
            self.log.remove(key)?;
        } else {
            let (file, offset) = self.files.append(w.tail, &out)?;
            let len = u32::try_from(out.len())
                .map_err(|_| StoreError::InvalidInput("segment over 4 GiB".to_owned()))?;
            let loc = Locator { file, offset, len };
            self.log.insert(key, &loc.encode()[..])?;
            w.tail = Tail { file, end: loc.end() };
        }
        self.flush()?;
        let segments = read_segment_refs(&self.log, Layout::Three)?.0;
        *self.write_index() = Index::build(&self.files, segments)?;
        Ok(())
    }

    /// Test and maintenance only: the segment file holding record `seq` and the byte offset of
    /// its event bytes in that file, to damage the file directly.
    #[doc(hidden)]
    pub fn tamper_locate_content(&self, seq: u64) -> Result<(std::path::PathBuf, u64), StoreError> {
        let missing = || StoreError::InvalidInput(format!("no record at seq {seq}"));
        let seg = self.read_index().segment_of(seq).ok_or_else(missing)?;
        let loc = seg.1.ok_or_else(missing)?;
        let segment = self.read_segment(seg)?;
        let frame = codec::frames(&segment)
            .map_while(Result::ok)
            .find(|f| f.seq == seq)
            .ok_or_else(missing)?;
        let at = loc.offset + (frame.record_offset + RECORD_HEADER_LEN) as u64;
        Ok((self.files.path(loc.file), at))
    }

    /// Test and maintenance only: flips the byte at `offset` of log record `seq`, bypassing the
    /// chain, then flushes. Offsets 0..8 are received_at, 8..40 the prev hash, 40..72 the
    /// record's hash, 72.. the event bytes.
    #[doc(hidden)]
    pub fn tamper_flip_byte(&self, seq: u64, offset: usize) -> Result<(), StoreError> {
        self.rewrite_frame(seq, |frame, out| {
            let mut record = frame.record.to_vec();
            let byte = record.get_mut(offset).ok_or_else(|| {
                StoreError::InvalidInput(format!("offset {offset} is past the record end"))
            })?;
            *byte ^= 0xff;
            encode_raw_frame(out, frame, frame.patient_id, &record);
            Ok(())
        })
    }

    /// Test and maintenance only: cuts log record `seq` to `len` bytes.
    #[doc(hidden)]
    pub fn tamper_truncate_record(&self, seq: u64, len: usize) -> Result<(), StoreError> {
        self.rewrite_frame(seq, |frame, out| {
            let record = &frame.record[..len.min(frame.record.len())];
            encode_raw_frame(out, frame, frame.patient_id, record);
            Ok(())
        })
    }

    /// Test and maintenance only: deletes log record `seq` (head left as it is).
    #[doc(hidden)]
    pub fn tamper_remove_record(&self, seq: u64) -> Result<(), StoreError> {
        self.rewrite_frame(seq, |_, _| Ok(()))
    }

    /// Test and maintenance only: files record `seq` under another patient id.
    #[doc(hidden)]
    pub fn tamper_set_patient_id(&self, seq: u64, patient_id: &str) -> Result<(), StoreError> {
        self.rewrite_frame(seq, |frame, out| {
            encode_raw_frame(out, frame, patient_id.as_bytes(), frame.record);
            Ok(())
        })
    }
}

/// Writes a frame with the given patient id and record bytes as they are (no hashing).
fn encode_raw_frame(out: &mut Vec<u8>, frame: &FrameView<'_>, patient_id: &[u8], record: &[u8]) {
    out.extend_from_slice(&frame.seq.to_be_bytes());
    out.extend_from_slice(&(frame.event_id.len() as u16).to_be_bytes());
    out.extend_from_slice(&(patient_id.len() as u16).to_be_bytes());
    out.extend_from_slice(&(record.len() as u32).to_be_bytes());
    out.extend_from_slice(frame.event_id);
    out.extend_from_slice(patient_id);
    out.extend_from_slice(record);
}

/// Streams events from consecutive segments (the segment map as it was when iteration began).
struct SegmentIter {
    segments: std::vec::IntoIter<SegmentRef>,
    files: Arc<SegmentFiles>,
    pending: VecDeque<Result<StoredEvent, StoreError>>,
    from: u64,
}

impl Iterator for SegmentIter {
    type Item = Result<StoredEvent, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let seg = self.segments.next()?;
            let first = seg.0;
            let v = match read_segment(&self.files, seg) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            for frame in codec::frames(&v) {
                match frame {
                    Ok(f) if f.seq < self.from => {}
                    Ok(f) => self.pending.push_back(decode_event(&f)),
                    Err(offset) => self.pending.push_back(Err(unreadable_segment(first, offset))),
                }
            }
        }
    }
}

/// Splits the accepted events of a batch into segments of about [`SEGMENT_TARGET_BYTES`].
fn segment_chunks<'p, 'a>(placed: &'p [Placed<'a>]) -> Vec<&'p [Placed<'a>]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, p) in placed.iter().enumerate() {
        let len = frame_len(p.event);
        if i > start && size + len > SEGMENT_TARGET_BYTES {
            chunks.push(&placed[start..i]);
            start = i;
            size = 0;
        }
        size += len;
    }
    if start < placed.len() {
        chunks.push(&placed[start..]);
    }
    chunks
}

fn frame_len(e: &NewEvent<'_>) -> usize {
    codec::FRAME_HEADER_LEN + e.event_id.len() + e.patient_id.len() + RECORD_HEADER_LEN + e.content.len()
}

fn validate(e: &NewEvent<'_>) -> Result<(), StoreError> {
    if e.event_id.is_empty() || e.event_id.len() > usize::from(u16::MAX) {
        return Err(StoreError::InvalidInput(format!(
            "event_id is empty or longer than 65,535 bytes ({} bytes)",
            e.event_id.len()
        )));
    }
    if e.patient_id.is_empty() || e.patient_id.contains('\0') || e.patient_id.len() > usize::from(u16::MAX) {
        return Err(StoreError::InvalidInput(format!(
            "patient_id {:?} is empty, contains NUL or is longer than 65,535 bytes (event {})",
            e.patient_id, e.event_id
        )));
    }
    if RECORD_HEADER_LEN + e.content.len() > u32::MAX as usize {
        return Err(StoreError::InvalidInput(format!(
            "event {} is {} bytes; the store takes at most 4 GiB per event",
            e.event_id,
            e.content.len()
        )));
    }
    Ok(())
}

fn decode_event(frame: &FrameView<'_>) -> Result<StoredEvent, StoreError> {
    let r = codec::decode_record(frame.record).ok_or_else(|| {
        StoreError::corrupt(
            format!("log record seq {}", frame.seq),
            format!("{} bytes, shorter than the 72-byte header", frame.record.len()),
        )
    })?;
    Ok(StoredEvent {
        seq: frame.seq,
        received_at_micros: r.received_at_micros,
        content: r.content.to_vec(),
    })
}

fn unreadable_segment(first: u64, offset: usize) -> StoreError {
    StoreError::corrupt(
        format!("log segment starting at seq {first}"),
        format!("the frame at byte {offset} runs past the end of the segment"),
    )
}

/// The seqs listed in an outbox entry.
pub(crate) fn decode_outbox(key: &[u8], v: &[u8]) -> Result<Vec<u64>, StoreError> {
    if !v.len().is_multiple_of(8) {
        return Err(StoreError::corrupt(
            format!("outbox entry {}", hex::encode(key)),
            format!("{} bytes, not a multiple of 8", v.len()),
        ));
    }
    Ok(v.chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
        .collect())
}

/// How long `open` waits for sled's lock file before reporting that another process holds it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the sled database, waiting up to [`LOCK_WAIT`] for its lock: sled releases the lock
/// from a background thread shortly *after* the last handle of a previous open in this process
/// was dropped (measured: a reopen right after a drop failed in about 1 of 10 runs under load),
/// so a close-then-reopen must not fail. Another process holding the store still fails, after
/// the wait.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The layout of the `log` tree found at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Segments as sled values: migrated at open.
    Two,
    /// Segment bytes in files, locators in sled.
    Three,
}

/// Marks a new store with the layout version; refuses a store of layout 1.
fn check_layout(log: &sled::Tree) -> Result<Layout, StoreError> {
    match log.get(LAYOUT_KEY)? {
        Some(v) if v.as_ref() == LAYOUT_VERSION => Ok(Layout::Three),
        Some(v) if v.as_ref() == LAYOUT2_VERSION => Ok(Layout::Two),
        Some(v) => Err(StoreError::corrupt(
            "store layout",
            format!(
                "layout {:?} is not a layout this registry reads ({:?}, or {:?} which it migrates)",
                String::from_utf8_lossy(&v),
                String::from_utf8_lossy(LAYOUT_VERSION),
                String::from_utf8_lossy(LAYOUT2_VERSION)
            ),
        )),
        None => {
            if log.scan_prefix([LAYOUT1_LOG]).next().is_some() {
                return Err(StoreError::corrupt(
                    "store layout",
                    "this store uses layout 1 (one key per event), written by an older registry; \
                     re-import the source NDJSON into a new directory",
                ));
            }
            log.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
            Ok(Layout::Three)
        }
    }
}

/// Every `S` key of the log in seq order with its locator. In layout 2, values that are not
/// locators are segments still to migrate (their first seqs are returned apart); in layout 3
/// they are unreadable locators (`None`; verify reports them).
fn read_segment_refs(log: &sled::Tree, layout: Layout) -> Result<(Vec<SegmentRef>, Vec<u64>), StoreError> {
    let mut segments = Vec::new();
    let mut raw = Vec::new();
    let range = codec::seq_key(SEGMENT, 0).to_vec()..codec::prefix_end(SEGMENT).to_vec();
    for kv in log.range(range) {
        let (k, v) = kv?;
        let Some(first) = codec::parse_seq_key(SEGMENT, &k) else {
            continue;
        };
        match Locator::decode(&v) {
            Some(loc) => segments.push((first, Some(loc))),
            None if layout == Layout::Two => raw.push(first),
            None => segments.push((first, None)),
        }
    }
    Ok((segments, raw))
}

/// The end of the committed bytes: the furthest locator in the highest-numbered file.
fn committed_tail(segments: &[SegmentRef]) -> Option<Tail> {
    segments
        .iter()
        .filter_map(|s| s.1)
        .map(|l| Tail { file: l.file, end: l.end() })
        .max_by_key(|t| (t.file, t.end))
}

/// How many layout-2 segments are moved per sled batch during migration.
const MIGRATE_BATCH: usize = 256;

/// Moves layout-2 segment values into the segment files, `MIGRATE_BATCH` at a time (each batch:
/// write and sync the bytes, then swap the values for locators in one sled batch and flush), then
/// marks the store layout 3. A crash midway leaves a mix that the next open finishes.
fn migrate_layout2(
    db: &sled::Db,
    log: &sled::Tree,
    files: &SegmentFiles,
    mut tail: Tail,
    raw: &[u64],
) -> Result<Tail, StoreError> {
    for (n, chunk) in raw.chunks(MIGRATE_BATCH).enumerate() {
        let mut bytes = Vec::new();
        let mut parts = Vec::with_capacity(chunk.len());
        for &first in chunk {
            let Some(v) = log.get(codec::seq_key(SEGMENT, first))? else {
                continue;
            };
            parts.push((first, bytes.len(), v.len()));
            bytes.extend_from_slice(&v);
        }
        let (file, offset) = files.append(tail, &bytes)?;
        let mut batch = sled::Batch::default();
        for (first, start, len) in parts {
            let loc = Locator {
                file,
                offset: offset + start as u64,
                len: u32::try_from(len).map_err(|_| {
                    StoreError::corrupt(format!("log segment starting at seq {first}"), "over 4 GiB")
                })?,
            };
            batch.insert(&codec::seq_key(SEGMENT, first), &loc.encode()[..]);
        }
        log.apply_batch(batch)?;
        db.flush()?;
        tail = Tail {
            file,
            end: offset + bytes.len() as u64,
        };
        if n % 64 == 63 {
            eprintln!(
                "store: migrating to layout 3: {} of {} segments moved to segment files",
                (n + 1) * MIGRATE_BATCH,
                raw.len()
            );
        }
    }
    log.insert(LAYOUT_KEY, LAYOUT_VERSION)?;
    db.flush()?;
    Ok(tail)
}

/// The bytes of one segment; an unreadable locator is `Corrupt`.
fn read_segment(files: &SegmentFiles, (first, loc): SegmentRef) -> Result<Vec<u8>, StoreError> {
    match loc {
        Some(loc) => files.read(first, loc),
        None => Err(StoreError::corrupt(
            format!("log segment starting at seq {first}"),
            "its locator in the log tree is unreadable",
        )),
    }
}

/// The chain tail at open: the head record, or, if it is absent or unreadable, the last
/// readable record (verify_chain reports the disagreement; opening must still work so it can
/// run).
fn recover_head(log: &sled::Tree, files: &SegmentFiles, segments: &[SegmentRef]) -> Result<(u64, Hash), StoreError> {
    if let Some(v) = log.get(HEAD_KEY)? {
        if let Some(head) = codec::decode_seq_hash(&v) {
            return Ok(head);
        }
    }
    let last = segments.last().and_then(|&seg| read_segment(files, seg).ok());
    Ok(match last {
        None => (0, [0; 32]),
        Some(v) => codec::frames(&v)
            .map_while(Result::ok)
            .last()
            .map(|f| (f.seq, codec::decode_record(f.record).map_or([0; 32], |r| r.hash)))
            .unwrap_or((0, [0; 32])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(store: &Store, batches: usize, per_batch: usize) {
        for b in 0..batches {
            let items: Vec<(String, String, String)> = (0..per_batch)
                .map(|i| {
                    let n = b * per_batch + i;
                    // ~3 KiB each, so that a few batches fill a segment and the log has several.
                    (format!("e{n}"), format!("P{}", n % 5), format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(3000)))
                })
                .collect();
            let events: Vec<NewEvent<'_>> = items
                .iter()
                .map(|(id, p, c)| NewEvent {
                    event_id: id,
                    patient_id: p,
                    content: c.as_bytes(),
                    received_at_micros: 7,
                })
                .collect();
            store.append_batch(&events).expect("append");
        }
    }

    /// Turns segments from the `from`-th on back into layout-2 values (the segment bytes in
    /// sled) and marks the store layout 2, as an older registry, or a migration cut short, left it.
    fn downgrade(store: &Store, from: usize) {
        let segments = read_segment_refs(&store.log, Layout::Three).expect("refs").0;
        for &seg in &segments[from..] {
            let bytes = store.read_segment(seg).expect("segment");
            store.log.insert(codec::seq_key(SEGMENT, seg.0), bytes).expect("insert");
        }
        store.log.insert(LAYOUT_KEY, LAYOUT2_VERSION).expect("layout");
        store.flush().expect("flush");
    }

    fn snapshot(store: &Store) -> (Vec<StoredEvent>, Hash, usize) {
        let events: Vec<StoredEvent> = store.iter_from(1).map(|e| e.expect("event")).collect();
        (events, store.head_hash(), store.outbox_len().expect("outbox") as usize)
    }

    #[test]
    fn a_layout2_store_is_migrated_to_segment_files_at_open() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let config = StoreConfig { outbox: true, ..StoreConfig::default() };
        let before = {
            let store = Store::open_with(dir.path(), &config).expect("open");
            fill(&store, 30, 10);
            store.outbox_done(&[1, 2, 3]).expect("done");
            let before = snapshot(&store);
            downgrade(&store, 0);
            before
        };
        std::fs::remove_dir_all(dir.path().join(crate::segfile::SEGMENT_DIR)).expect("no files, as in layout 2");
        for _ in 0..2 {
            let store = Store::open_with(dir.path(), &config).expect("open migrates");
            assert_eq!(snapshot(&store), before);
            assert_eq!(store.log.get(LAYOUT_KEY).expect("get").as_deref(), Some(LAYOUT_VERSION));
            let report = store.verify_chain(|_| {}).expect("verifies");
            assert_eq!((report.events, report.outbox_pending), (300, 297));
            assert_eq!(store.seq_of_event_id("e41").expect("lookup"), Some(42));
        }
    }

    #[test]
    fn a_migration_cut_short_is_finished_at_the_next_open() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let before = {
            let store = Store::open(dir.path()).expect("open");
            fill(&store, 20, 7);
            let before = snapshot(&store);
            let segments = read_segment_refs(&store.log, Layout::Three).expect("refs").0.len();
            assert!(segments >= 6, "{segments} segments");
            downgrade(&store, segments / 2);
            before
        };
        let store = Store::open(dir.path()).expect("open finishes the migration");
        assert_eq!(snapshot(&store), before);
        fill(&store, 0, 0);
        assert_eq!(store.verify_chain(|_| {}).expect("verifies").events, 140);
    }
}
