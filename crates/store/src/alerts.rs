//! Alerts raised by the projector, in their own `alerts` tree: the history (for `GET /alerts`)
//! and an outbox of alerts not yet published on the bus. An alert_id is stored once: raising the
//! same facts again (after a crash, a replay) is a no-op.
//!
//! Layout (alerts version 3): the alerts of one [`Store::put_alerts`] batch, sorted by alert_id,
//! are packed in *parts* of up to [`PART_BYTES`] each: `b ‖ raised_at ‖ part` (u32 BE) → the
//! part's records back to back, each len16(alert_id) ‖ alert_id ‖ len16(kind) ‖ kind ‖
//! len32(body) ‖ body; beside each part, `i ‖ raised_at ‖ part` → the same alert_ids (len16 ‖ id
//! each), so the set of stored ids can be read without the bodies. `p` → the outbox position of
//! the last alert published (`b` key ‖ its index in the part, u32 BE: the outbox cursor; every
//! alert after it is pending); `v` → `3`. So history and outbox order is (raised_at, alert_id),
//! as in version 2, and a batch of n alerts is about n / 20 sled inserts instead of 2n inserts
//! and n lookups (each sled insert clones a node and splits one leaf in eight). Duplicates are
//! found in an in-memory set of the stored alert_ids, read from the `i` keys at the first use
//! in the process (one process owns a store).
//!
//! Each put is one atomic batch whose `raised_at` is strictly later than every alert already
//! stored (a clock that steps back is absorbed: raised_at never decreases), so a new alert's
//! position sorts after every existing one and therefore after the cursor. A reader scanning the
//! outbox in key order sees each batch whole or not at all (sled applies a batch under its write
//! lock, each scan step under its read lock), so moving the cursor to the last position it
//! published never skips an alert.
//!
//! Former layouts are converted at the first use of the tree, each in one atomic batch (redone
//! after a crash): version 1 (`o ‖ alert_id` outbox entries) to version 2, then version 2
//! (`a ‖ alert_id` → raised_at ‖ len16(kind) ‖ kind ‖ body and `t ‖ raised_at ‖ alert_id` → (),
//! the cursor a `t` key) to version 3, keeping the order, the raised_at of every alert and what
//! was published.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::codec::str_key as key;
use crate::error::StoreError;
use crate::log::Store;

const PART: u8 = b'b';
const IDS: u8 = b'i';
const CURSOR: &[u8] = b"p";
const VERSION: &[u8] = b"v";
const VERSION_3: &[u8] = b"3";
/// Version 2 only: `a ‖ alert_id` → the record, `t ‖ raised_at ‖ alert_id` → ().
const ALERT_V2: u8 = b'a';
const BY_TIME_V2: u8 = b't';
const VERSION_2: &[u8] = b"2";
/// Version 1 only: outbox entries.
const OUTBOX_V1: u8 = b'o';
/// A part is closed once its records take this many bytes (a part holds at least one alert).
/// Small enough that a leaf of sixteen parts stays below sled's blob threshold (128 KiB).
const PART_BYTES: usize = 6 * 1024;
/// Length of a `b` / `i` key: prefix, raised_at, part number.
const PART_KEY_LEN: usize = 13;

/// Serialises alert batches in this process, so that each takes a raised_at later than the last.
static PUT_LOCK: Mutex<()> = Mutex::new(());

/// A set of alert_ids (as bytes).
type IdSet = HashSet<Box<[u8]>>;

/// What the process knows of the stored alerts, read at the first use.
#[derive(Default)]
pub(crate) struct AlertIndex {
    /// Every stored alert_id.
    ids: IdSet,
    /// How many alerts of each kind are stored: counted from the history at the first
    /// [`Store::alert_counts_by_kind`], then kept up to date by each put.
    by_kind: Option<BTreeMap<String, u64>>,
}

/// The alert index, once read (shared by the clones of a [`Store`]).
pub(crate) type AlertIds = std::sync::Arc<Mutex<Option<AlertIndex>>>;

/// An alert as converted from version 2: (id, kind, body).
type Row = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The `b` parts from `start` on, in key order (the history and outbox order).
fn parts_from(tree: &sled::Tree, start: Vec<u8>) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> {
    tree.range::<Vec<u8>, _>((Bound::Included(start), Bound::Unbounded))
        .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.first() == Some(&PART)))
        .map(|kv| kv.map_err(StoreError::from))
}

/// An alert read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    /// Its deterministic id.
    pub alert_id: String,
    /// Its kind (`first_progression`, …).
    pub kind: String,
    /// When it was first raised, Unix microseconds.
    pub raised_at_micros: i64,
    /// The alert JSON.
    pub body: Vec<u8>,
}

/// Where an alert sits in the outbox (opaque; ordered as the alerts were raised).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutboxPosition(Vec<u8>);

/// An alert waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    pub alert_id: String,
    pub kind: String,
    pub body: Vec<u8>,
    /// Pass the last one published to [`Store::alert_outbox_done_through`].
    pub position: OutboxPosition,
}

/// Offset so that negative times still sort numerically as unsigned big-endian.
fn time_bytes(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(b: &[u8]) -> Option<i64> {
    let b: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// `prefix ‖ raised_at ‖ part`.
fn part_key(prefix: u8, at: i64, part: u32) -> [u8; PART_KEY_LEN] {
    let mut k = [0u8; PART_KEY_LEN];
    k[0] = prefix;
    k[1..9].copy_from_slice(&time_bytes(at));
    k[9..].copy_from_slice(&part.to_be_bytes());
    k
}

/// The raised_at of a `b` or `i` key (or of a position).
fn time_of(k: &[u8]) -> Option<i64> {
    time_from(k.get(1..)?)
}

fn position(part: &[u8], index: u32) -> OutboxPosition {
    let mut p = Vec::with_capacity(PART_KEY_LEN + 4);
    p.extend_from_slice(part);
    p.extend_from_slice(&index.to_be_bytes());
    OutboxPosition(p)
}

fn corrupt(what: &[u8]) -> StoreError {
    StoreError::corrupt(format!("alerts part {}", hex::encode(what)), "record cut short")
}

/// One record of a part, borrowed.
struct Record<'a> {
    id: &'a [u8],
    kind: &'a [u8],
    body: &'a [u8],
}

fn take<'a>(v: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = (v.get(..n)?, v.get(n..)?);
    *v = rest;
    Some(head)
}

fn take_len16<'a>(v: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u16::from_be_bytes(take(v, 2)?.try_into().ok()?) as usize;
    take(v, n)
}

/// The records of a part value, in order.
fn records<'a>(k: &[u8], mut v: &'a [u8]) -> Result<Vec<Record<'a>>, StoreError> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let rec = (|| {
            let id = take_len16(&mut v)?;
            let kind = take_len16(&mut v)?;
            let n = u32::from_be_bytes(take(&mut v, 4)?.try_into().ok()?) as usize;
            let body = take(&mut v, n)?;
            Some(Record { id, kind, body })
        })()
        .ok_or_else(|| corrupt(k))?;
        out.push(rec);
    }
    Ok(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Adds the alerts `(id, kind, body)` of one batch raised at `at` (sorted by id, each new) to
/// `batch` as parts; returns each alert's (part, index in the part).
fn stage_parts<'a>(
    batch: &mut sled::Batch,
    at: i64,
    alerts: impl Iterator<Item = (&'a [u8], &'a [u8], &'a [u8])>,
) -> Result<Vec<(u32, u32)>, StoreError> {
    let mut placed = Vec::new();
    let mut index = 0u32;
    let mut part = 0u32;
    let mut value: Vec<u8> = Vec::with_capacity(PART_BYTES + 1024);
    let mut ids: Vec<u8> = Vec::new();
    let mut close = |value: &mut Vec<u8>, ids: &mut Vec<u8>, part: &mut u32| {
        batch.insert(&part_key(PART, at, *part)[..], std::mem::take(value));
        batch.insert(&part_key(IDS, at, *part)[..], std::mem::take(ids));
        *part += 1;
    };
    for (id, kind, body) in alerts {
        let id_len = u16::try_from(id.len())
            .map_err(|_| StoreError::InvalidInput(format!("alert id of {} bytes", id.len())))?;
        let kind_len = u16::try_from(kind.len())
            .map_err(|_| StoreError::InvalidInput(format!("alert kind of {} bytes", kind.len())))?;
        let body_len = u32::try_from(body.len())
            .map_err(|_| StoreError::InvalidInput(format!("alert body of {} bytes", body.len())))?;
        value.extend_from_slice(&id_len.to_be_bytes());
        value.extend_from_slice(id);
        value.extend_from_slice(&kind_len.to_be_bytes());
        value.extend_from_slice(kind);
        value.extend_from_slice(&body_len.to_be_bytes());
        value.extend_from_slice(body);
        ids.extend_from_slice(&id_len.to_be_bytes());
        ids.extend_from_slice(id);
        placed.push((part, index));
        index += 1;
        if value.len() >= PART_BYTES {
            close(&mut value, &mut ids, &mut part);
            index = 0;
        }
    }
    if !value.is_empty() {
        close(&mut value, &mut ids, &mut part);
    }
    Ok(placed)
}

/// Converts a version-1 tree (or marks a new one) to version 2: the cursor goes just before the
/// earliest alert still in the old outbox (every later alert is published again, which the
/// stream's and the subscribers' dedupe by alert_id absorb), or after the last alert when none
/// was pending. One atomic batch; running it again after a crash redoes it.
fn upgrade_v1(tree: &sled::Tree) -> Result<(), StoreError> {
    let time_key = |at: i64, id: &str| {
        let mut k = vec![BY_TIME_V2];
        k.extend_from_slice(&time_bytes(at));
        k.extend_from_slice(id.as_bytes());
        k
    };
    let mut batch = sled::Batch::default();
    let mut earliest: Option<Vec<u8>> = None;
    for kv in tree.scan_prefix([OUTBOX_V1]) {
        let (k, _) = kv?;
        batch.remove(k.as_ref());
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        if let Some(v) = tree.get(key(ALERT_V2, &id))? {
            // The record starts with raised_at as a plain i64 BE.
            let at = v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes);
            let at = at.ok_or_else(|| StoreError::corrupt(format!("alert {id}"), "record too short"))?;
            let t = time_key(at, &id);
            if earliest.as_ref().is_none_or(|e| t < *e) {
                earliest = Some(t);
            }
        }
    }
    let cursor = match earliest {
        // The key before the earliest pending one (none: everything is pending).
        Some(first) => tree.range(..first).next_back().transpose()?.map(|(k, _)| k).filter(|k| k.first() == Some(&BY_TIME_V2)),
        None => tree.scan_prefix([BY_TIME_V2]).next_back().transpose()?.map(|(k, _)| k),
    };
    match cursor {
        Some(c) => batch.insert(CURSOR, c),
        None => batch.remove(CURSOR),
    }
    batch.insert(VERSION, VERSION_2);
    tree.apply_batch(batch)?;
    Ok(())
}

/// Converts a version-2 tree to version 3: every alert, in (raised_at, alert_id) order, keeps
/// its raised_at, kind and body; the alerts of one raised_at (one former batch) go into parts
/// as a new batch would; the cursor moves to the position of the last alert it covered.
fn upgrade_v2(tree: &sled::Tree) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    // (raised_at, [(id, kind, body)]) in time order, ids sorted within each.
    let mut groups: Vec<(i64, Vec<Row>)> = Vec::new();
    let old_cursor = tree.get(CURSOR)?;
    // The (raised_at, id) of the last alert the old cursor covers.
    let mut published: Option<(i64, Vec<u8>)> = None;
    for kv in tree.scan_prefix([BY_TIME_V2]) {
        let (k, _) = kv?;
        batch.remove(k.as_ref());
        let at = time_of(&k).ok_or_else(|| StoreError::corrupt(format!("alerts key {}", hex::encode(&k)), "too short"))?;
        let id = k[9..].to_vec();
        let mut a = vec![ALERT_V2];
        a.extend_from_slice(&id);
        let Some(v) = tree.get(&a)? else { continue };
        let bad = || StoreError::corrupt(format!("alert {}", text(&id)), "record too short");
        let mut rest: &[u8] = v.get(8..).ok_or_else(bad)?;
        let kind = take_len16(&mut rest).ok_or_else(bad)?.to_vec();
        if old_cursor.as_ref().is_some_and(|c| k.as_ref() <= c.as_ref()) {
            published = Some((at, id.clone()));
        }
        match groups.last_mut() {
            Some((t, g)) if *t == at => g.push((id, kind, rest.to_vec())),
            _ => groups.push((at, vec![(id, kind, rest.to_vec())])),
        }
    }
    for kv in tree.scan_prefix([ALERT_V2]) {
        let (k, _) = kv?;
        batch.remove(k.as_ref());
    }
    let mut cursor: Option<OutboxPosition> = None;
    for (at, group) in &groups {
        let placed = stage_parts(&mut batch, *at, group.iter().map(|(i, k, b)| (&i[..], &k[..], &b[..])))?;
        if let Some((_, pid)) = published.as_ref().filter(|(pat, _)| pat == at) {
            if let Some((part, index)) = group.iter().position(|(id, _, _)| id == pid).map(|i| placed[i]) {
                cursor = Some(position(&part_key(PART, *at, part), index));
            }
        }
    }
    match cursor {
        Some(c) => batch.insert(CURSOR, c.0),
        None => batch.remove(CURSOR),
    }
    batch.insert(VERSION, VERSION_3);
    tree.apply_batch(batch)?;
    Ok(())
}

fn upgrade(tree: &sled::Tree) -> Result<(), StoreError> {
    match tree.get(VERSION)?.as_deref() {
        Some(v) if v == VERSION_3 => return Ok(()),
        Some(v) if v == VERSION_2 => {}
        _ => upgrade_v1(tree)?,
    }
    upgrade_v2(tree)
}

impl Store {
    fn alerts_tree(&self) -> Result<sled::Tree, StoreError> {
        let tree = self.db.open_tree("alerts")?;
        upgrade(&tree)?;
        Ok(tree)
    }

    /// The alert index: the stored alert_ids, read from the `i` keys the first time (the counts
    /// by kind are read later, by [`Store::alert_counts_by_kind`]).
    fn alert_ids(&self, tree: &sled::Tree) -> Result<MutexGuard<'_, Option<AlertIndex>>, StoreError> {
        let mut guard = self.alert_ids.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            let mut set = HashSet::new();
            for kv in tree.scan_prefix([IDS]) {
                let (k, v) = kv?;
                let mut rest: &[u8] = &v;
                while !rest.is_empty() {
                    let id = take_len16(&mut rest).ok_or_else(|| corrupt(&k))?;
                    set.insert(Box::<[u8]>::from(id));
                }
            }
            *guard = Some(AlertIndex { ids: set, by_kind: None });
        }
        Ok(guard)
    }

    /// Records alerts `(alert_id, kind, body)` not seen before, in the history and the outbox, in
    /// one atomic batch, and flushes. Returns how many were new.
    pub fn put_alerts(&self, alerts: &[(String, String, Vec<u8>)], at_micros: i64) -> Result<usize, StoreError> {
        let new = self.put_alerts_unflushed(alerts, at_micros)?;
        self.db.flush()?;
        Ok(new)
    }

    /// [`Store::put_alerts`] without the flush: atomic, durable only with the next flush (any
    /// flushing call). For a caller that writes several batches and flushes once at the end.
    /// The alerts are stored as raised at `at_micros`, or just after the latest alert stored if
    /// that is later.
    pub fn put_alerts_unflushed(
        &self,
        alerts: &[(String, String, Vec<u8>)],
        at_micros: i64,
    ) -> Result<usize, StoreError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let tree = self.alerts_tree()?;
        let _serial = PUT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut index = self.alert_ids(&tree)?;
        let index = index.get_or_insert_with(AlertIndex::default);
        let stored = &mut index.ids;
        // The first of each new id, in id order (the order of the history and the outbox).
        let mut seen = HashSet::with_capacity(alerts.len());
        let mut new: Vec<&(String, String, Vec<u8>)> = alerts
            .iter()
            .filter(|(id, _, _)| !stored.contains(id.as_bytes()) && seen.insert(id.as_str()))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        new.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let latest = tree.scan_prefix([PART]).next_back().transpose()?.and_then(|(k, _)| time_of(&k));
        let at = latest.map_or(at_micros, |l| at_micros.max(l.saturating_add(1)));
        let mut batch = sled::Batch::default();
        stage_parts(&mut batch, at, new.iter().map(|(i, k, b)| (i.as_bytes(), k.as_bytes(), &b[..])))?;
        tree.apply_batch(batch)?;
        stored.extend(new.iter().map(|(id, _, _)| Box::<[u8]>::from(id.as_bytes())));
        if let Some(by_kind) = &mut index.by_kind {
            for (_, kind, _) in &new {
                *by_kind.entry(kind.clone()).or_default() += 1;
            }
        }
        Ok(new.len())
    }

    /// Whether an alert with this id was ever raised.
    pub fn has_alert(&self, alert_id: &str) -> Result<bool, StoreError> {
        let tree = self.alerts_tree()?;
        Ok(self.alert_ids(&tree)?.as_ref().is_some_and(|s| s.ids.contains(alert_id.as_bytes())))
    }

    /// How many alerts of each kind were ever raised. The history is read once, at the first
    /// call; later puts keep the counts, so a metrics scrape costs nothing that grows with it.
    pub fn alert_counts_by_kind(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let tree = self.alerts_tree()?;
        let mut guard = self.alert_ids(&tree)?;
        let index = guard.get_or_insert_with(AlertIndex::default);
        if index.by_kind.is_none() {
            // Under the index's lock, which every put holds while it writes: no put is half
            // counted.
            let mut by_kind = BTreeMap::new();
            for kv in parts_from(&tree, vec![PART]) {
                let (k, v) = kv?;
                for r in records(&k, &v)? {
                    *by_kind.entry(text(r.kind)).or_default() += 1;
                }
            }
            index.by_kind = Some(by_kind);
        }
        Ok(index.by_kind.clone().unwrap_or_default())
    }

    /// Up to `limit` alerts raised but not yet marked published, oldest first.
    pub fn alert_outbox_pending(&self, limit: usize) -> Result<Vec<PendingAlert>, StoreError> {
        self.alert_outbox_pending_after(None, limit)
    }

    /// [`Store::alert_outbox_pending`] after `after` as well as after the marked ones: for a
    /// publisher that goes on past what it published but has not marked yet.
    pub fn alert_outbox_pending_after(
        &self,
        after: Option<&OutboxPosition>,
        limit: usize,
    ) -> Result<Vec<PendingAlert>, StoreError> {
        let tree = self.alerts_tree()?;
        let cursor = tree.get(CURSOR)?.map(|c| c.to_vec());
        let from = match (cursor, after) {
            (Some(c), Some(a)) => Some(c.max(a.0.clone())),
            (c, a) => c.or_else(|| a.map(|a| a.0.clone())),
        };
        let start: Vec<u8> = match &from {
            Some(f) => f.get(..PART_KEY_LEN).unwrap_or(f).to_vec(),
            None => vec![PART],
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for kv in parts_from(&tree, start) {
            let (k, v) = kv?;
            for (i, r) in records(&k, &v)?.into_iter().enumerate() {
                let pos = position(&k, u32::try_from(i).unwrap_or(u32::MAX));
                if from.as_ref().is_some_and(|f| pos.0 <= *f) {
                    continue;
                }
                out.push(PendingAlert { alert_id: text(r.id), kind: text(r.kind), body: r.body.to_vec(), position: pos });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Marks every alert up to and including `position` as published, and flushes.
    pub fn alert_outbox_done_through(&self, position: &OutboxPosition) -> Result<(), StoreError> {
        let tree = self.alerts_tree()?;
        let _serial = PUT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        if tree.get(CURSOR)?.is_none_or(|c| c.as_ref() < position.0.as_slice()) {
            tree.insert(CURSOR, position.0.as_slice())?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// Alerts raised at or after `since_micros`, oldest first, at most `limit`.
    pub fn alerts_since(&self, since_micros: i64, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        let tree = self.alerts_tree()?;
        let start = part_key(PART, since_micros, 0).to_vec();
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for kv in parts_from(&tree, start) {
            let (k, v) = kv?;
            let at = time_of(&k).ok_or_else(|| corrupt(&k))?;
            for r in records(&k, &v)? {
                out.push(StoredAlert { alert_id: text(r.id), kind: text(r.kind), raised_at_micros: at, body: r.body.to_vec() });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> (String, String, Vec<u8>) {
        (id.to_owned(), "death".to_owned(), format!("{{\"id\":\"{id}\"}}").into_bytes())
    }

    fn ids(pending: &[PendingAlert]) -> Vec<&str> {
        pending.iter().map(|p| p.alert_id.as_str()).collect()
    }

    /// A version-2 `t` key.
    fn time_key(at: i64, id: &str) -> Vec<u8> {
        let mut k = vec![BY_TIME_V2];
        k.extend_from_slice(&time_bytes(at));
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// A version-2 `a` record.
    fn v2_record(at: i64, kind: &str, body: &[u8]) -> Vec<u8> {
        let mut v = at.to_be_bytes().to_vec();
        v.extend_from_slice(&(kind.len() as u16).to_be_bytes());
        v.extend_from_slice(kind.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn an_alert_is_stored_once_and_leaves_the_outbox_when_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let a = alert("id-1");
        assert_eq!(store.put_alerts(&[a.clone(), a.clone()], 10).expect("put"), 1);
        assert_eq!(store.put_alerts(std::slice::from_ref(&a), 20).expect("put again"), 0);
        let pending = store.alert_outbox_pending(10).expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].alert_id.clone(), pending[0].kind.clone(), pending[0].body.clone()), a);
        store.alert_outbox_done_through(&pending[0].position).expect("done");
        assert!(store.alert_outbox_pending(10).expect("pending").is_empty());
        let b = ("id-2".to_owned(), "first_progression".to_owned(), b"{}".to_vec());
        store.put_alerts(&[b], 30).expect("put b");
        let since = store.alerts_since(15, 10).expect("since");
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].alert_id, "id-2");
        assert_eq!(store.alerts_since(0, 10).expect("all").len(), 2);
        assert!(store.has_alert("id-1").expect("has"));
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["id-2"]);
    }

    #[test]
    fn counts_by_kind_read_the_history_once_and_follow_later_puts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let fp = |id: &str| (id.to_owned(), "first_progression".to_owned(), b"{}".to_vec());
        store.put_alerts(&[alert("d1"), fp("p1"), fp("p2")], 10).expect("put");
        drop(store);
        // A new process: the counts come from the history, then from the puts.
        let store = Store::open(dir.path()).expect("reopen");
        let counts = |s: &Store| s.alert_counts_by_kind().expect("counts").into_iter().collect::<Vec<_>>();
        assert_eq!(counts(&store), [("death".to_owned(), 1), ("first_progression".to_owned(), 2)]);
        store.put_alerts(&[fp("p2"), fp("p3"), alert("d1"), alert("d2")], 20).expect("put again");
        assert_eq!(counts(&store), [("death".to_owned(), 2), ("first_progression".to_owned(), 3)], "duplicates not counted");
        let fresh = Store::open(tempfile::tempdir().expect("tempdir").path()).expect("empty");
        assert!(counts(&fresh).is_empty());
    }

    #[test]
    fn the_outbox_keeps_raise_order_across_a_clock_step_back_and_a_cursor_mid_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        // Ids whose byte order is the reverse of the order they are raised in.
        store.put_alerts(&[alert("z3"), alert("z2")], 1_000).expect("first");
        store.put_alerts(&[alert("y1")], 500).expect("clock stepped back");
        store.put_alerts(&[alert("x0")], 500).expect("same time again");
        let all = store.alerts_since(i64::MIN, 10).expect("history");
        let times: Vec<i64> = all.iter().map(|a| a.raised_at_micros).collect();
        assert_eq!(times, [1_000, 1_000, 1_001, 1_002], "raised_at never decreases");
        let pending = store.alert_outbox_pending(10).expect("pending");
        assert_eq!(ids(&pending), ["z2", "z3", "y1", "x0"]);
        // A publisher that took two, went on past them, then marked the first two.
        let first = store.alert_outbox_pending(2).expect("round 1");
        let rest = store.alert_outbox_pending_after(Some(&first[1].position), 10).expect("round 2");
        assert_eq!(ids(&rest), ["y1", "x0"]);
        store.alert_outbox_done_through(&first[1].position).expect("mark");
        // An alert raised now comes after everything, whatever its id.
        store.put_alerts(&[alert("a9")], 0).expect("later");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["y1", "x0", "a9"]);
        // Marking an earlier position never moves the cursor back.
        store.alert_outbox_done_through(&rest[1].position).expect("mark");
        store.alert_outbox_done_through(&first[0].position).expect("mark earlier");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["a9"]);
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending after reopen")), ["a9"]);
    }

    #[test]
    fn a_version_1_outbox_is_converted_without_losing_a_pending_alert() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            // Write the former layout by hand: three alerts, the middle one published.
            let tree = store.db.open_tree("alerts").expect("tree");
            for (at, id, pending) in [(10_i64, "c", false), (20, "b", false), (30, "a", true)] {
                let mut v = Vec::new();
                v.extend_from_slice(&at.to_be_bytes());
                v.extend_from_slice(&5u16.to_be_bytes());
                v.extend_from_slice(b"death");
                v.extend_from_slice(b"{}");
                tree.insert(key(ALERT_V2, id), v).expect("a");
                tree.insert(time_key(at, id), &[]).expect("t");
                if pending {
                    tree.insert(key(OUTBOX_V1, id), &[]).expect("o");
                }
            }
            store.db.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["a"]);
        let tree = store.db.open_tree("alerts").expect("tree");
        assert!(tree.scan_prefix([OUTBOX_V1]).next().is_none(), "old outbox entries removed");
        assert_eq!(store.alerts_since(i64::MIN, 10).expect("history").len(), 3);
        // Nothing pending in the old outbox: the cursor goes after the last alert.
        let dir2 = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir2.path()).expect("open");
            let tree = store.db.open_tree("alerts").expect("tree");
            let mut v = 7i64.to_be_bytes().to_vec();
            v.extend_from_slice(&5u16.to_be_bytes());
            v.extend_from_slice(b"death{}");
            tree.insert(key(ALERT_V2, "q"), v).expect("a");
            tree.insert(time_key(7, "q"), &[]).expect("t");
            store.db.flush().expect("flush");
        }
        let store = Store::open(dir2.path()).expect("reopen");
        assert!(store.alert_outbox_pending(10).expect("pending").is_empty());
        store.put_alerts(&[alert("r")], 1).expect("put");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["r"]);
    }

    #[test]
    fn a_version_2_tree_is_converted_keeping_order_times_and_the_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two batches: (at 10: "m", "c") and (at 20: "x", "b"); published through "m".
        let rows = [(10, "c", "death"), (10, "m", "first_progression"), (20, "b", "data_quality"), (20, "x", "death")];
        {
            let store = Store::open(dir.path()).expect("open");
            let tree = store.db.open_tree("alerts").expect("tree");
            for (at, id, kind) in rows {
                tree.insert(key(ALERT_V2, id), v2_record(at, kind, format!("{{\"id\":\"{id}\"}}").as_bytes())).expect("a");
                tree.insert(time_key(at, id), &[]).expect("t");
            }
            tree.insert(CURSOR, time_key(10, "m")).expect("cursor");
            tree.insert(VERSION, VERSION_2).expect("version");
            store.db.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let history = store.alerts_since(i64::MIN, 10).expect("history");
        let got: Vec<(i64, &str, &str, &[u8])> = history
            .iter()
            .map(|a| (a.raised_at_micros, a.alert_id.as_str(), a.kind.as_str(), a.body.as_slice()))
            .collect();
        let bodies: Vec<String> = rows.iter().map(|(_, id, _)| format!("{{\"id\":\"{id}\"}}")).collect();
        let want: Vec<(i64, &str, &str, &[u8])> =
            rows.iter().zip(&bodies).map(|((at, id, kind), b)| (*at, *id, *kind, b.as_bytes())).collect();
        assert_eq!(got, want);
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["b", "x"]);
        assert!(store.has_alert("m").expect("has"));
        assert_eq!(store.put_alerts(&[alert("c"), alert("b")], 5).expect("again"), 0);
        let tree = store.db.open_tree("alerts").expect("tree");
        assert!(tree.scan_prefix([ALERT_V2]).next().is_none(), "old records removed");
        assert!(tree.scan_prefix([BY_TIME_V2]).next().is_none(), "old time keys removed");
        assert_eq!(store.alerts_since(15, 10).expect("since").len(), 2);
        // Nothing published in version 2: everything stays pending.
        let dir2 = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir2.path()).expect("open");
            let tree = store.db.open_tree("alerts").expect("tree");
            tree.insert(key(ALERT_V2, "q"), v2_record(7, "death", b"{}")).expect("a");
            tree.insert(time_key(7, "q"), &[]).expect("t");
            tree.insert(VERSION, VERSION_2).expect("version");
            store.db.flush().expect("flush");
        }
        let store = Store::open(dir2.path()).expect("reopen");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["q"]);
    }

    #[test]
    fn a_large_batch_spans_parts_in_id_order_and_is_known_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = 1_000;
        // Ids in an order unlike their byte order; bodies of varied sizes (some above a part).
        let batch: Vec<(String, String, Vec<u8>)> = (0..n)
            .map(|i: usize| {
                let id = format!("{:08x}", (i * 7_919) % 10_007);
                let body = vec![b'x'; 50 + (i * 37) % 400 + if i == 500 { PART_BYTES * 2 } else { 0 }];
                (id, "data_quality".to_owned(), body)
            })
            .collect();
        let mut sorted = batch.clone();
        sorted.sort();
        {
            let store = Store::open(dir.path()).expect("open");
            assert_eq!(store.put_alerts(&batch, 100).expect("put"), n);
            let tree = store.db.open_tree("alerts").expect("tree");
            assert!(tree.scan_prefix([PART]).count() > 10, "several parts");
            let history = store.alerts_since(i64::MIN, usize::MAX).expect("history");
            let got: Vec<(String, String, Vec<u8>)> =
                history.into_iter().map(|a| (a.alert_id, a.kind, a.body)).collect();
            assert_eq!(got, sorted);
            // Publish in rounds of 7, marking after every other round.
            let mut seen = Vec::new();
            let mut after: Option<OutboxPosition> = None;
            for round in 0.. {
                let page = store.alert_outbox_pending_after(after.as_ref(), 7).expect("round");
                if page.is_empty() {
                    break;
                }
                seen.extend(page.iter().map(|p| p.alert_id.clone()));
                after = page.last().map(|p| p.position.clone());
                if round % 2 == 1 {
                    store.alert_outbox_done_through(after.as_ref().expect("position")).expect("mark");
                }
                if seen.len() == 504 {
                    break; // stop mid-way, marked through here
                }
            }
            assert_eq!(seen, sorted.iter().take(seen.len()).map(|a| a.0.clone()).collect::<Vec<_>>());
            store.alert_outbox_done_through(after.as_ref().expect("position")).expect("mark");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let rest = store.alert_outbox_pending(usize::MAX).expect("rest");
        assert_eq!(ids(&rest), sorted[504..].iter().map(|a| a.0.as_str()).collect::<Vec<_>>());
        assert!(store.has_alert(&sorted[0].0).expect("has") && !store.has_alert("nope").expect("has"));
        // Known after the reopen: stored once; a new one comes after all.
        let mut again = batch[..10].to_vec();
        again.push(alert("zz-new"));
        assert_eq!(store.put_alerts(&again, 50).expect("again"), 1);
        let all = store.alerts_since(i64::MIN, usize::MAX).expect("all");
        assert_eq!(all.len(), n + 1);
        assert_eq!(all.last().map(|a| (a.alert_id.as_str(), a.raised_at_micros)), Some(("zz-new", 101)));
        assert_eq!(store.alerts_since(101, 10).expect("since").len(), 1);
    }
}
