//! Alerts raised by the projector, in their own `alerts` tree: the history (for `GET /alerts`)
//! and an outbox of alerts not yet published on the bus. An alert_id is stored once: raising the
//! same facts again (after a crash, a replay) is a no-op.
//!
//! Layout (alerts version 2): `a ‖ alert_id` → raised_at (i64 BE) ‖ kind length (u16 BE) ‖ kind ‖
//! body; `t ‖ raised_at ‖ alert_id` → () (time order); `p` → the `t` key of the last alert
//! published (the outbox cursor: every `t` key after it is pending); `v` → `2`.
//!
//! Each [`Store::put_alerts`] call is one atomic batch whose `raised_at` is strictly later than
//! every alert already stored (a clock that steps back is absorbed: raised_at never decreases),
//! so a new alert's `t` key sorts after every existing key and therefore after the cursor. A
//! reader scanning the outbox in key order sees each batch whole or not at all (sled applies a
//! batch under its write lock, each scan step under its read lock), so moving the cursor to the
//! last key it published never skips an alert. Per alert that is one lookup and two inserts; the
//! former layout (version 1) also kept `o ‖ alert_id` outbox entries, inserted and later removed
//! one by one — it is converted at the first use of the tree.

use std::ops::Bound;
use std::sync::Mutex;

use crate::codec::str_key as key;
use crate::error::StoreError;
use crate::log::Store;

const ALERT: u8 = b'a';
const BY_TIME: u8 = b't';
/// Version 1 only: outbox entries.
const OUTBOX_V1: u8 = b'o';
const CURSOR: &[u8] = b"p";
const VERSION: &[u8] = b"v";
const VERSION_2: &[u8] = b"2";

/// Serialises alert batches in this process, so that each takes a raised_at later than the last.
static PUT_LOCK: Mutex<()> = Mutex::new(());

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

fn time_key(at: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.push(BY_TIME);
    k.extend_from_slice(&time_bytes(at));
    k.extend_from_slice(id.as_bytes());
    k
}

/// The raised_at of a `t` key.
fn time_of(k: &[u8]) -> Option<i64> {
    let b: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

fn decode(id: &str, v: &[u8]) -> Result<StoredAlert, StoreError> {
    let bad = || StoreError::corrupt(format!("alert {id}"), "record too short");
    let at = i64::from_be_bytes(v.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let kl = u16::from_be_bytes(v.get(8..10).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let kind = v.get(10..10 + kl).ok_or_else(bad)?;
    Ok(StoredAlert {
        alert_id: id.to_owned(),
        kind: String::from_utf8_lossy(kind).into_owned(),
        raised_at_micros: at,
        body: v[10 + kl..].to_vec(),
    })
}

/// Converts a version-1 tree (or marks a new one): the cursor goes just before the earliest
/// alert still in the old outbox (every later alert is published again, which the stream's and
/// the subscribers' dedupe by alert_id absorb), or after the last alert when none was pending.
/// One atomic batch; running it again after a crash redoes it.
fn upgrade(tree: &sled::Tree) -> Result<(), StoreError> {
    if tree.get(VERSION)?.as_deref() == Some(VERSION_2) {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    let mut earliest: Option<Vec<u8>> = None;
    for kv in tree.scan_prefix([OUTBOX_V1]) {
        let (k, _) = kv?;
        batch.remove(k.as_ref());
        let id = String::from_utf8_lossy(&k[1..]).into_owned();
        if let Some(v) = tree.get(key(ALERT, &id))? {
            let t = time_key(decode(&id, &v)?.raised_at_micros, &id);
            if earliest.as_ref().is_none_or(|e| t < *e) {
                earliest = Some(t);
            }
        }
    }
    let cursor = match earliest {
        // The key before the earliest pending one (none: everything is pending).
        Some(first) => tree.range(..first).next_back().transpose()?.map(|(k, _)| k).filter(|k| k.first() == Some(&BY_TIME)),
        None => tree.scan_prefix([BY_TIME]).next_back().transpose()?.map(|(k, _)| k),
    };
    match cursor {
        Some(c) => batch.insert(CURSOR, c),
        None => batch.remove(CURSOR),
    }
    batch.insert(VERSION, VERSION_2);
    tree.apply_batch(batch)?;
    Ok(())
}

impl Store {
    fn alerts_tree(&self) -> Result<sled::Tree, StoreError> {
        let tree = self.db.open_tree("alerts")?;
        upgrade(&tree)?;
        Ok(tree)
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
        let _serial = PUT_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = tree.scan_prefix([BY_TIME]).next_back().transpose()?.and_then(|(k, _)| time_of(&k));
        let at = latest.map_or(at_micros, |l| at_micros.max(l.saturating_add(1)));
        let mut batch = sled::Batch::default();
        let mut seen = std::collections::HashSet::new();
        let mut new = 0;
        for (id, kind, body) in alerts {
            if !seen.insert(id.as_str()) || tree.contains_key(key(ALERT, id))? {
                continue;
            }
            let kind_len = u16::try_from(kind.len())
                .map_err(|_| StoreError::InvalidInput(format!("alert kind of {} bytes", kind.len())))?;
            let mut v = Vec::with_capacity(10 + kind.len() + body.len());
            v.extend_from_slice(&at.to_be_bytes());
            v.extend_from_slice(&kind_len.to_be_bytes());
            v.extend_from_slice(kind.as_bytes());
            v.extend_from_slice(body);
            batch.insert(key(ALERT, id), v);
            batch.insert(time_key(at, id), &[]);
            new += 1;
        }
        if new > 0 {
            tree.apply_batch(batch)?;
        }
        Ok(new)
    }

    /// Whether an alert with this id was ever raised.
    pub fn has_alert(&self, alert_id: &str) -> Result<bool, StoreError> {
        Ok(self.alerts_tree()?.contains_key(key(ALERT, alert_id))?)
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
        let range = match from {
            Some(f) => tree.range::<Vec<u8>, _>((Bound::Excluded(f), Bound::Unbounded)),
            None => tree.range::<&[u8], _>((Bound::Included(&[BY_TIME][..]), Bound::Unbounded)),
        };
        let mut out = Vec::new();
        for kv in range {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            if k.first() != Some(&BY_TIME) {
                break;
            }
            let id = String::from_utf8_lossy(&k[9..]).into_owned();
            if let Some(v) = tree.get(key(ALERT, &id))? {
                let a = decode(&id, &v)?;
                out.push(PendingAlert { alert_id: a.alert_id, kind: a.kind, body: a.body, position: OutboxPosition(k.to_vec()) });
            }
        }
        Ok(out)
    }

    /// Marks every alert up to and including `position` as published, and flushes.
    pub fn alert_outbox_done_through(&self, position: &OutboxPosition) -> Result<(), StoreError> {
        let tree = self.alerts_tree()?;
        let _serial = PUT_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if tree.get(CURSOR)?.is_none_or(|c| c.as_ref() < position.0.as_slice()) {
            tree.insert(CURSOR, position.0.as_slice())?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// Alerts raised at or after `since_micros`, oldest first, at most `limit`.
    pub fn alerts_since(&self, since_micros: i64, limit: usize) -> Result<Vec<StoredAlert>, StoreError> {
        let tree = self.alerts_tree()?;
        let start = time_key(since_micros, "");
        let mut out = Vec::new();
        for kv in tree.range(start..).take_while(|kv| kv.as_ref().map(|(k, _)| k.first() == Some(&BY_TIME)).unwrap_or(true)) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[9..]).into_owned();
            if let Some(v) = tree.get(key(ALERT, &id))? {
                out.push(decode(&id, &v)?);
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

    #[test]
    fn an_alert_is_stored_once_and_leaves_the_outbox_when_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let a = alert("id-1");
        assert_eq!(store.put_alerts(&[a.clone(), a.clone()], 10).expect("put"), 1);
        assert_eq!(store.put_alerts(&[a.clone()], 20).expect("put again"), 0);
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
            for (at, id, pending) in [(10, "c", false), (20, "b", false), (30, "a", true)] {
                let mut v = Vec::new();
                v.extend_from_slice(&(at as i64).to_be_bytes());
                v.extend_from_slice(&5u16.to_be_bytes());
                v.extend_from_slice(b"death");
                v.extend_from_slice(b"{}");
                tree.insert(key(ALERT, id), v).expect("a");
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
            tree.insert(key(ALERT, "q"), v).expect("a");
            tree.insert(time_key(7, "q"), &[]).expect("t");
            store.db.flush().expect("flush");
        }
        let store = Store::open(dir2.path()).expect("reopen");
        assert!(store.alert_outbox_pending(10).expect("pending").is_empty());
        store.put_alerts(&[alert("r")], 1).expect("put");
        assert_eq!(ids(&store.alert_outbox_pending(10).expect("pending")), ["r"]);
    }
}
