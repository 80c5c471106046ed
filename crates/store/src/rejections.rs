//! Rejected inputs, in their own tree, kept byte for byte so nothing sent is lost and a fixed
//! event can be sent again. Layout of the `rejected` tree:
//! `r ‖ id_be` → record; `c ‖ reason` → count (u64 BE) of stored rejections with that reason;
//! `n` → next id.

use std::collections::BTreeMap;

use crate::error::StoreError;
use crate::log::{Store, Writer};

const RECORD: u8 = b'r';
const COUNT: u8 = b'c';
/// `q` ‖ stream sequence (8, big-endian) → the id of the rejection of that bus message.
const STREAM_SEQ: u8 = b'q';
/// `n` → the next rejection id (u64 BE), so ids are never reused even after removals.
const NEXT_ID_KEY: &[u8] = b"n";
/// at (8) ‖ resent_at (8, i64::MIN = not resent) ‖ three u32 lengths (12).
const HEADER_LEN: usize = 28;
const NOT_RESENT: i64 = i64::MIN;

/// An input that was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection<'a> {
    /// The bytes exactly as received: any bytes (invalid UTF-8, 10 MB…).
    pub raw: &'a [u8],
    /// Where it came from, e.g. `file:events.ndjson:17` or a bus subject.
    pub source: &'a str,
    /// The reason code, e.g. `schema`, `event_id_conflict`.
    pub reason: &'a str,
    /// A human explanation.
    pub message: &'a str,
    /// When it was rejected, Unix microseconds.
    pub at_micros: i64,
    /// The EVENTS stream sequence of the bus message it came in (`None` for a file line): a bus
    /// message's rejection is kept once, however often the message is delivered (a redelivery
    /// after a crash between the flush and the ack, a replay into a restored store).
    pub stream_seq: Option<u64>,
}

/// A rejection read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRejection {
    /// Its id, assigned in order from 1, never reused.
    pub id: u64,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Where it came from.
    pub source: String,
    /// The reason code.
    pub reason: String,
    /// A human explanation.
    pub message: String,
    /// When it was rejected, Unix microseconds.
    pub at_micros: i64,
    /// When a corrected version was sent again, if it was ([`Store::mark_rejection_resent`]).
    pub resent_at_micros: Option<i64>,
}

fn record_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = RECORD;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn decode_id(seq: u64, v: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("rejection of stream sequence {seq}"), format!("{} bytes, 8 expected", v.len())))?;
    Ok(u64::from_be_bytes(b))
}

fn count_key(reason: &str) -> Vec<u8> {
    crate::codec::str_key(COUNT, reason)
}

fn encode(r: &Rejection<'_>) -> Result<Vec<u8>, StoreError> {
    let len32 = |s: &str| {
        u32::try_from(s.len())
            .map_err(|_| StoreError::InvalidInput("rejection text field over 4 GiB".into()))
    };
    let mut v = Vec::with_capacity(
        HEADER_LEN + r.source.len() + r.reason.len() + r.message.len() + r.raw.len(),
    );
    v.extend_from_slice(&r.at_micros.to_be_bytes());
    v.extend_from_slice(&NOT_RESENT.to_be_bytes());
    v.extend_from_slice(&len32(r.source)?.to_be_bytes());
    v.extend_from_slice(&len32(r.reason)?.to_be_bytes());
    v.extend_from_slice(&len32(r.message)?.to_be_bytes());
    v.extend_from_slice(r.source.as_bytes());
    v.extend_from_slice(r.reason.as_bytes());
    v.extend_from_slice(r.message.as_bytes());
    v.extend_from_slice(r.raw);
    Ok(v)
}

fn decode(id: u64, v: &[u8]) -> Result<StoredRejection, StoreError> {
    let bad = |detail: &str| StoreError::corrupt(format!("rejection {id}"), detail.to_owned());
    let i64_at = |at: usize| -> Result<i64, StoreError> {
        let b = v.get(at..at + 8).ok_or_else(|| bad("header truncated"))?;
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| bad("header truncated"))?))
    };
    let u32_at = |at: usize| -> Result<usize, StoreError> {
        let b = v.get(at..at + 4).ok_or_else(|| bad("header truncated"))?;
        Ok(u32::from_be_bytes(b.try_into().map_err(|_| bad("header truncated"))?) as usize)
    };
    let at_micros = i64_at(0)?;
    let resent = i64_at(8)?;
    let (ls, lr, lm) = (u32_at(16)?, u32_at(20)?, u32_at(24)?);
    let mut pos = HEADER_LEN;
    let mut text = |len: usize| -> Result<String, StoreError> {
        let b = v.get(pos..pos + len).ok_or_else(|| bad("text field truncated"))?;
        pos += len;
        String::from_utf8(b.to_vec()).map_err(|_| bad("text field is not UTF-8"))
    };
    let source = text(ls)?;
    let reason = text(lr)?;
    let message = text(lm)?;
    Ok(StoredRejection {
        id,
        raw: v[HEADER_LEN + ls + lr + lm..].to_vec(),
        source,
        reason,
        message,
        at_micros,
        resent_at_micros: (resent != NOT_RESENT).then_some(resent),
    })
}

fn decode_count(reason: &[u8], v: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = v.try_into().map_err(|_| {
        StoreError::corrupt(
            format!("rejection count for {:?}", String::from_utf8_lossy(reason)),
            format!("{} bytes, 8 expected", v.len()),
        )
    })?;
    Ok(u64::from_be_bytes(b))
}

pub(crate) fn recover_next_id(tree: &sled::Tree) -> Result<u64, StoreError> {
    if let Some(v) = tree.get(NEXT_ID_KEY)? {
        if let Ok(b) = <[u8; 8]>::try_from(v.as_ref()) {
            return Ok(u64::from_be_bytes(b));
        }
    }
    let last = tree
        .range(record_key(0).to_vec()..vec![RECORD + 1])
        .next_back()
        .transpose()?;
    Ok(match last {
        None => 1,
        Some((k, _)) => k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
            + 1,
    })
}

impl Store {
    /// Records one rejection and flushes. Returns its id.
    pub fn reject(&self, r: Rejection<'_>) -> Result<u64, StoreError> {
        let (_, ids) = self.append_batch_with_rejections(&[], &[r])?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::InvalidInput("no id assigned".into()))
    }

    /// Records several rejections atomically with one flush. Returns their ids in input order.
    pub fn reject_batch(&self, rs: &[Rejection<'_>]) -> Result<Vec<u64>, StoreError> {
        Ok(self.append_batch_with_rejections(&[], rs)?.1)
    }

    pub(crate) fn stage_rejections(
        &self,
        w: &Writer,
        rs: &[Rejection<'_>],
    ) -> Result<(sled::Batch, Vec<u64>, u64), StoreError> {
        let mut batch = sled::Batch::default();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut ids = Vec::with_capacity(rs.len());
        // Bus messages of this batch already given an id (a message delivered twice in one batch).
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        let mut next = w.next_rejection_id;
        for r in rs {
            if let Some(seq) = r.stream_seq {
                let kept = match seen.get(&seq) {
                    Some(&id) => Some(id),
                    None => self.rejected.get(crate::codec::seq_key(STREAM_SEQ, seq))?.map(|v| decode_id(seq, &v)).transpose()?,
                };
                if let Some(id) = kept {
                    ids.push(id);
                    continue;
                }
                seen.insert(seq, next);
                batch.insert(&crate::codec::seq_key(STREAM_SEQ, seq), &next.to_be_bytes());
            }
            batch.insert(&record_key(next), encode(r)?);
            *counts.entry(r.reason).or_default() += 1;
            ids.push(next);
            next += 1;
        }
        batch.insert(NEXT_ID_KEY, &next.to_be_bytes());
        for (reason, added) in counts {
            let key = count_key(reason);
            let before = match self.rejected.get(&key)? {
                Some(v) => decode_count(reason.as_bytes(), &v)?,
                None => 0,
            };
            batch.insert(key, &(before + added).to_be_bytes());
        }
        Ok((batch, ids, next))
    }

    /// One rejection by id.
    pub fn get_rejection(&self, id: u64) -> Result<Option<StoredRejection>, StoreError> {
        match self.rejected.get(record_key(id))? {
            None => Ok(None),
            Some(v) => decode(id, &v).map(Some),
        }
    }

    /// All stored rejections, oldest first, streamed.
    pub fn rejections(
        &self,
    ) -> impl Iterator<Item = Result<StoredRejection, StoreError>> + Send + 'static {
        self.rejected.scan_prefix([RECORD]).map(|kv| {
            let (k, v) = kv?;
            let id = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| {
                    StoreError::corrupt(format!("rejection key {}", hex::encode(&k)), "bad key")
                })?;
            decode(id, &v)
        })
    }

    /// Number of stored rejections per reason code (removed ones are not counted; resent ones
    /// are until removed). Reads a small counter per reason, not the rejections themselves.
    pub fn rejection_count_by_reason(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.rejected.scan_prefix([COUNT]) {
            let (k, v) = kv?;
            let n = decode_count(&k[1..], &v)?;
            if n > 0 {
                out.insert(String::from_utf8_lossy(&k[1..]).into_owned(), n);
            }
        }
        Ok(out)
    }

    /// Marks rejection `id` as sent again at `at_micros` (kept, for the audit trail) and
    /// flushes. Returns false if there is no such rejection.
    pub fn mark_rejection_resent(&self, id: u64, at_micros: i64) -> Result<bool, StoreError> {
        let _w = self.lock_writer();
        let Some(v) = self.rejected.get(record_key(id))? else {
            return Ok(false);
        };
        decode(id, &v)?;
        let mut v = v.to_vec();
        v[8..16].copy_from_slice(&at_micros.to_be_bytes());
        self.rejected.insert(record_key(id), v)?;
        self.db.flush()?;
        Ok(true)
    }

    /// Deletes rejection `id` and decrements its reason's count, atomically, then flushes.
    /// Returns false if there is no such rejection.
    pub fn remove_rejection(&self, id: u64) -> Result<bool, StoreError> {
        let _w = self.lock_writer();
        let Some(v) = self.rejected.get(record_key(id))? else {
            return Ok(false);
        };
        let r = decode(id, &v)?;
        let key = count_key(&r.reason);
        let before = match self.rejected.get(&key)? {
            Some(c) => decode_count(r.reason.as_bytes(), &c)?,
            None => 0,
        };
        let mut batch = sled::Batch::default();
        batch.remove(&record_key(id));
        batch.insert(key, &before.saturating_sub(1).to_be_bytes());
        self.rejected.apply_batch(batch)?;
        self.db.flush()?;
        Ok(true)
    }
}
