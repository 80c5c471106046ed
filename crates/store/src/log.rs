//! The event log: opening the sled database, appending batches (hash chain, event-id and patient
//! indexes, outbox, head — all in one `apply_batch` on the `log` tree), and reading it back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::codec::{self, Hash, HEAD_KEY, LOG, OUTBOX, PATIENT};
use crate::error::StoreError;
use crate::rejections::Rejection;

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
}

/// State only the single writer touches, under one mutex: the tail of the chain and the next
/// rejection id. Updated only after sled accepted the batch, so an error leaves it true.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) last_seq: u64,
    pub(crate) head_hash: Hash,
    pub(crate) next_rejection_id: u64,
}

/// The registry's store over one sled directory. Cheap to clone (handles to the same database);
/// `Send + Sync`. Writes are serialised internally; reads never block on writes.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    pub(crate) rejected: sled::Tree,
    pub(crate) labels: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) writer: Arc<Mutex<Writer>>,
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

impl Store {
    /// Opens (creating if needed) the store in `dir`, without outbox.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &StoreConfig::default())
    }

    /// Opens (creating if needed) the store in `dir`. Fails with [`StoreError::Open`] if sled
    /// cannot open it — notably when another process holds it (sled takes an exclusive lock).
    pub fn open_with(dir: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            dir: dir.to_path_buf(),
            source,
        };
        // HighThroughput only changes how sled's segment cleaner trades disk space for write
        // speed (1.6x faster appends here, see docs/storage.md); durability is the same.
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(open_err)?;
        let log = db.open_tree("log").map_err(open_err)?;
        let rejected = db.open_tree("rejected").map_err(open_err)?;
        let labels = db.open_tree("labels").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let (last_seq, head_hash) = recover_head(&log)?;
        let next_rejection_id = crate::rejections::recover_next_id(&rejected)?;
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
            })),
            outbox: config.outbox,
        })
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // The writer state is only assigned after a successful apply, never half-updated, so a
        // panic elsewhere while holding the lock leaves it consistent: recover from poisoning.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `events` atomically (one sled batch) and flushes once before returning: when this
    /// returns `Ok`, every `Accepted` event is on disk and may be acknowledged upstream.
    /// Returns one outcome per input, in input order. Duplicates and conflicts are resolved
    /// against the stored log and against earlier inputs of the same batch.
    ///
    /// An invalid key (empty event_id, empty patient_id or one containing NUL) fails the whole
    /// call with [`StoreError::InvalidInput`] and writes nothing.
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
            let staged = self.stage_events(&w, events)?;
            self.log.apply_batch(staged.batch)?;
            w.last_seq = staged.last_seq;
            w.head_hash = staged.head_hash;
            outcomes = staged.outcomes;
        }
        let mut ids = Vec::new();
        if !rejections.is_empty() {
            let (batch, new_ids) = self.stage_rejections(&w, rejections)?;
            self.rejected.apply_batch(batch)?;
            w.next_rejection_id += new_ids.len() as u64;
            ids = new_ids;
        }
        drop(w);
        self.db.flush()?;
        Ok((outcomes, ids))
    }

    fn stage_events(&self, w: &Writer, events: &[NewEvent<'_>]) -> Result<Staged, StoreError> {
        let mut batch = sled::Batch::default();
        let mut outcomes = Vec::with_capacity(events.len());
        // event_id → (seq, content hash) for ids seen in this batch.
        let mut in_batch: HashMap<&str, (u64, Hash)> = HashMap::with_capacity(events.len());
        let mut last_seq = w.last_seq;
        let mut head_hash = w.head_hash;
        for e in events {
            let content_hash = codec::content_hash(e.content);
            let existing = match in_batch.get(e.event_id) {
                Some(&found) => Some(found),
                None => self.lookup_event_id(e.event_id)?,
            };
            if let Some((seq, stored_hash)) = existing {
                outcomes.push(if stored_hash == content_hash {
                    AppendOutcome::Duplicate { seq }
                } else {
                    AppendOutcome::Conflict { existing_seq: seq }
                });
                continue;
            }
            let seq = last_seq + 1;
            let hash = codec::chain_hash(&head_hash, seq, e.received_at_micros, e.content);
            let record = codec::encode_record(e.received_at_micros, &head_hash, &hash, e.content);
            batch.insert(&codec::seq_key(LOG, seq), record);
            batch.insert(
                codec::event_id_key(e.event_id),
                &codec::encode_seq_hash(seq, &content_hash)[..],
            );
            batch.insert(codec::patient_key(e.patient_id, seq), &[]);
            if self.outbox {
                batch.insert(&codec::seq_key(OUTBOX, seq), &[]);
            }
            in_batch.insert(e.event_id, (seq, content_hash));
            outcomes.push(AppendOutcome::Accepted { seq });
            last_seq = seq;
            head_hash = hash;
        }
        if last_seq != w.last_seq {
            batch.insert(HEAD_KEY, &codec::encode_seq_hash(last_seq, &head_hash)[..]);
        }
        Ok(Staged {
            batch,
            outcomes,
            last_seq,
            head_hash,
        })
    }

    fn lookup_event_id(&self, event_id: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        match self.log.get(codec::event_id_key(event_id))? {
            None => Ok(None),
            Some(v) => codec::decode_seq_hash(&v).map(Some).ok_or_else(|| {
                StoreError::corrupt(
                    format!("event-id index entry {event_id:?}"),
                    format!("{} bytes, 40 expected", v.len()),
                )
            }),
        }
    }

    /// The seq at which `event_id` is stored, if it is.
    pub fn seq_of_event_id(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lookup_event_id(event_id)?.map(|(seq, _)| seq))
    }

    /// The event at `seq`, if any.
    pub fn get(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        match self.log.get(codec::seq_key(LOG, seq))? {
            None => Ok(None),
            Some(v) => decode_event(seq, &v).map(Some),
        }
    }

    /// Streams every event with seq ≥ `seq` in seq order (keys are big-endian, so sled's byte
    /// order is numeric order). Events appended while iterating may or may not be seen.
    pub fn iter_from(
        &self,
        seq: u64,
    ) -> impl Iterator<Item = Result<StoredEvent, StoreError>> + Send + 'static {
        self.log
            .range(codec::seq_key(LOG, seq).to_vec()..codec::prefix_end(LOG).to_vec())
            .map(|kv| {
                let (k, v) = kv?;
                let seq = codec::parse_seq_key(LOG, &k).ok_or_else(|| {
                    StoreError::corrupt(format!("log key {}", hex::encode(&k)), "not L + 8-byte seq")
                })?;
                decode_event(seq, &v)
            })
    }

    /// Every patient id with at least one event, sorted by bytes. Costs one index seek per
    /// patient (it skips over each patient's entries), not one read per event.
    pub fn patient_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut from = vec![PATIENT];
        let end = codec::prefix_end(PATIENT);
        while let Some(kv) = self.log.range(from.as_slice()..end.as_slice()).next() {
            let (k, _) = kv?;
            let (pid, _) = codec::parse_patient_key(&k).ok_or_else(|| bad_patient_key(&k))?;
            let pid = std::str::from_utf8(pid).map_err(|_| bad_patient_key(&k))?;
            // Next candidate: the first key after every `P ‖ pid ‖ 0x00 ‖ …`.
            from = codec::patient_prefix(pid);
            if let Some(sep) = from.last_mut() {
                *sep = 1;
            }
            ids.push(pid.to_owned());
        }
        Ok(ids)
    }

    /// The events of one patient, in seq order.
    pub fn patient_events(&self, patient_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(codec::patient_prefix(patient_id)) {
            let (k, _) = kv?;
            let (_, seq) = codec::parse_patient_key(&k).ok_or_else(|| bad_patient_key(&k))?;
            match self.get(seq)? {
                Some(e) => out.push(e),
                None => {
                    return Err(StoreError::corrupt(
                        format!("patient index entry {patient_id:?}"),
                        format!("points to seq {seq}, which is not in the log"),
                    ))
                }
            }
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

    /// Flushes every dirty buffer of the database to disk (fsync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Accepted events not yet marked published, oldest first, at most `limit`.
    /// Only populated when the store was opened with [`StoreConfig::outbox`].
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix([OUTBOX]).take(limit) {
            let (k, _) = kv?;
            let seq = codec::parse_seq_key(OUTBOX, &k).ok_or_else(|| {
                StoreError::corrupt(format!("outbox key {}", hex::encode(&k)), "not O + 8-byte seq")
            })?;
            let event = self.get(seq)?.ok_or_else(|| {
                StoreError::corrupt(format!("outbox entry {seq}"), "points past the log")
            })?;
            out.push(event);
        }
        Ok(out)
    }

    /// Number of outbox entries not yet marked done.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for kv in self.log.scan_prefix([OUTBOX]) {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    /// Marks these seqs as published (removes them from the outbox, atomically). Not flushed on
    /// its own: it becomes durable with the next flush (the next append, or within sled's 500 ms
    /// background flush). A crash before that re-publishes them, which the bus drops as
    /// duplicates (`Nats-Msg-Id` = event_id) — cheaper than an fsync per publish round.
    pub fn outbox_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for &seq in seqs {
            batch.remove(&codec::seq_key(OUTBOX, seq));
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    /// Test and maintenance only: rewrites the stored value of log record `seq` with the byte at
    /// `offset` flipped, bypassing the chain, then flushes. Offsets 0..8 are received_at, 8..40
    /// the prev hash, 40..72 the record's hash, 72.. the event bytes.
    #[doc(hidden)]
    pub fn tamper_flip_byte(&self, seq: u64, offset: usize) -> Result<(), StoreError> {
        let key = codec::seq_key(LOG, seq);
        let mut v = self
            .log
            .get(key)?
            .ok_or_else(|| StoreError::InvalidInput(format!("no record at seq {seq}")))?
            .to_vec();
        let byte = v.get_mut(offset).ok_or_else(|| {
            StoreError::InvalidInput(format!("offset {offset} is past the record end"))
        })?;
        *byte ^= 0xff;
        self.log.insert(key, v)?;
        self.flush()
    }

    /// Test and maintenance only: cuts the stored value of log record `seq` to `len` bytes.
    #[doc(hidden)]
    pub fn tamper_truncate_record(&self, seq: u64, len: usize) -> Result<(), StoreError> {
        let key = codec::seq_key(LOG, seq);
        let v = self
            .log
            .get(key)?
            .ok_or_else(|| StoreError::InvalidInput(format!("no record at seq {seq}")))?;
        self.log.insert(key, &v[..len.min(v.len())])?;
        self.flush()
    }

    /// Test and maintenance only: deletes log record `seq` (indexes and head left as they are).
    #[doc(hidden)]
    pub fn tamper_remove_record(&self, seq: u64) -> Result<(), StoreError> {
        self.log.remove(codec::seq_key(LOG, seq))?;
        self.flush()
    }

    /// Test and maintenance only: deletes the event-id index entry of `event_id`.
    #[doc(hidden)]
    pub fn tamper_remove_event_id(&self, event_id: &str) -> Result<(), StoreError> {
        self.log.remove(codec::event_id_key(event_id))?;
        self.flush()
    }
}

struct Staged {
    batch: sled::Batch,
    outcomes: Vec<AppendOutcome>,
    last_seq: u64,
    head_hash: Hash,
}

fn validate(e: &NewEvent<'_>) -> Result<(), StoreError> {
    if e.event_id.is_empty() {
        return Err(StoreError::InvalidInput("empty event_id".into()));
    }
    if e.patient_id.is_empty() || e.patient_id.contains('\0') {
        return Err(StoreError::InvalidInput(format!(
            "patient_id {:?} is empty or contains NUL (event {})",
            e.patient_id, e.event_id
        )));
    }
    Ok(())
}

fn decode_event(seq: u64, v: &[u8]) -> Result<StoredEvent, StoreError> {
    let r = codec::decode_record(v).ok_or_else(|| {
        StoreError::corrupt(
            format!("log record seq {seq}"),
            format!("{} bytes, shorter than the 72-byte header", v.len()),
        )
    })?;
    Ok(StoredEvent {
        seq,
        received_at_micros: r.received_at_micros,
        content: r.content.to_vec(),
    })
}

fn bad_patient_key(k: &[u8]) -> StoreError {
    StoreError::corrupt(
        format!("patient index key {}", hex::encode(k)),
        "not P + patient_id + 0x00 + 8-byte seq",
    )
}

/// The chain tail at open: the head record, or, if it is absent or unreadable, the last log
/// record (verify_chain reports the disagreement; opening must still work so it can run).
fn recover_head(log: &sled::Tree) -> Result<(u64, Hash), StoreError> {
    if let Some(v) = log.get(HEAD_KEY)? {
        if let Some(head) = codec::decode_seq_hash(&v) {
            return Ok(head);
        }
    }
    let last = log
        .range(codec::seq_key(LOG, 0).to_vec()..codec::prefix_end(LOG).to_vec())
        .next_back()
        .transpose()?;
    Ok(match last {
        None => (0, [0; 32]),
        Some((k, v)) => {
            let seq = codec::parse_seq_key(LOG, &k).unwrap_or(0);
            let hash = codec::decode_record(&v).map(|r| r.hash).unwrap_or([0; 32]);
            (seq, hash)
        }
    })
}
