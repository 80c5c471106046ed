//! Alerts raised by the projector, in their own `alerts` tree: the history (for `GET /alerts`)
//! and an outbox of alerts not yet published on the bus. An alert_id is stored once: raising the
//! same facts again (after a crash, a replay) is a no-op.
//!
//! Layout: `a ‖ alert_id` → raised_at (i64 BE) ‖ kind length (u16 BE) ‖ kind ‖ body;
//! `t ‖ raised_at BE ‖ alert_id` → () (time order); `o ‖ alert_id` → () (outbox).

use crate::error::StoreError;
use crate::log::Store;

const ALERT: u8 = b'a';
const BY_TIME: u8 = b't';
const OUTBOX: u8 = b'o';

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

fn key(prefix: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

fn time_key(at: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.push(BY_TIME);
    // Offset so that negative times still sort numerically as unsigned big-endian.
    k.extend_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
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

impl Store {
    fn alerts_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("alerts")?)
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
    pub fn put_alerts_unflushed(
        &self,
        alerts: &[(String, String, Vec<u8>)],
        at_micros: i64,
    ) -> Result<usize, StoreError> {
        let tree = self.alerts_tree()?;
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
            v.extend_from_slice(&at_micros.to_be_bytes());
            v.extend_from_slice(&kind_len.to_be_bytes());
            v.extend_from_slice(kind.as_bytes());
            v.extend_from_slice(body);
            batch.insert(key(ALERT, id), v);
            batch.insert(time_key(at_micros, id), &[]);
            batch.insert(key(OUTBOX, id), &[]);
            new += 1;
        }
        tree.apply_batch(batch)?;
        Ok(new)
    }

    /// Whether an alert with this id was ever raised.
    pub fn has_alert(&self, alert_id: &str) -> Result<bool, StoreError> {
        Ok(self.alerts_tree()?.contains_key(key(ALERT, alert_id))?)
    }

    /// Up to `limit` alerts raised but not yet marked published, as `(alert_id, kind, body)`.
    pub fn alert_outbox_pending(&self, limit: usize) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let tree = self.alerts_tree()?;
        let mut out = Vec::new();
        for kv in tree.scan_prefix([OUTBOX]).take(limit) {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[1..]).into_owned();
            if let Some(v) = tree.get(key(ALERT, &id))? {
                let a = decode(&id, &v)?;
                out.push((a.alert_id, a.kind, a.body));
            }
        }
        Ok(out)
    }

    /// Marks alerts as published (removes them from the outbox) and flushes.
    pub fn alert_outbox_done(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tree = self.alerts_tree()?;
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(key(OUTBOX, id));
        }
        tree.apply_batch(batch)?;
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

    #[test]
    fn an_alert_is_stored_once_and_leaves_the_outbox_when_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let a = ("id-1".to_owned(), "death".to_owned(), b"{\"x\":1}".to_vec());
        assert_eq!(store.put_alerts(&[a.clone(), a.clone()], 10).expect("put"), 1);
        assert_eq!(store.put_alerts(&[a.clone()], 20).expect("put again"), 0);
        assert_eq!(store.alert_outbox_pending(10).expect("pending"), vec![a.clone()]);
        store.alert_outbox_done(&["id-1".to_owned()]).expect("done");
        assert!(store.alert_outbox_pending(10).expect("pending").is_empty());
        let b = ("id-2".to_owned(), "first_progression".to_owned(), b"{}".to_vec());
        store.put_alerts(&[b], 30).expect("put b");
        let since = store.alerts_since(15, 10).expect("since");
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].alert_id, "id-2");
        assert_eq!(store.alerts_since(0, 10).expect("all").len(), 2);
        assert!(store.has_alert("id-1").expect("has"));
    }
}
