//! The report snapshot: one opaque record per patient (what `registry report` reads instead of
//! refolding the patient) and the log position every record is current through. Derived state,
//! like the labels: it can be deleted and rebuilt from the log at any time. The store does not
//! read the records; their format and validity rules belong to the caller (docs/report.md,
//! "Snapshot").
//!
//! Tree `report_snapshot`: `r` ‖ patient_id → record bytes; `c` → checkpoint (u64 BE).

use crate::error::StoreError;
use crate::log::Store;

const TREE: &str = "report_snapshot";
const RECORD: u8 = b'r';
const CHECKPOINT_KEY: &[u8] = b"c";

fn record_key(patient_id: &str) -> Vec<u8> {
    crate::codec::str_key(RECORD, patient_id)
}

impl Store {
    fn snapshot_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(TREE)?)
    }

    /// Writes (`Some`) or deletes (`None`) the snapshot records of several patients and sets the
    /// snapshot checkpoint to `checkpoint`, in one atomic batch; flushes when `flush`.
    pub fn put_snapshot_batch<I, P, B>(&self, records: I, checkpoint: u64, flush: bool) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = (P, Option<B>)>,
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let tree = self.snapshot_tree()?;
        let mut batch = sled::Batch::default();
        for (patient_id, value) in records {
            let key = record_key(patient_id.as_ref());
            match value {
                Some(v) => batch.insert(key, v.as_ref()),
                None => batch.remove(key),
            }
        }
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        tree.apply_batch(batch)?;
        if flush {
            self.db.flush()?;
        }
        Ok(())
    }

    /// The snapshot checkpoint (0 when no snapshot was ever written).
    pub fn snapshot_checkpoint(&self) -> Result<u64, StoreError> {
        match self.snapshot_tree()?.get(CHECKPOINT_KEY)? {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt("report snapshot checkpoint", "not 8 bytes")),
        }
    }

    /// The snapshot record of one patient.
    pub fn get_snapshot(&self, patient_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.snapshot_tree()?.get(record_key(patient_id))?.map(|v| v.to_vec()))
    }

    /// Every (patient_id, record) pair, sorted by patient id.
    pub fn snapshot_records(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.iter_snapshot()?.collect()
    }

    /// Every (patient_id, record) pair, sorted by patient id, streamed.
    pub fn iter_snapshot(
        &self,
    ) -> Result<impl Iterator<Item = Result<(String, Vec<u8>), StoreError>> + Send + 'static, StoreError> {
        Ok(self.snapshot_tree()?.scan_prefix([RECORD]).map(|kv| {
            let (k, v) = kv?;
            let pid = String::from_utf8(k[1..].to_vec()).map_err(|_| {
                StoreError::corrupt(format!("report snapshot key {}", hex::encode(&k)), "not UTF-8")
            })?;
            Ok((pid, v.to_vec()))
        }))
    }

    /// Deletes the whole snapshot (records and checkpoint) and flushes.
    pub fn clear_snapshot(&self) -> Result<(), StoreError> {
        self.snapshot_tree()?.clear()?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_checkpoint_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            assert_eq!(store.snapshot_checkpoint().expect("checkpoint"), 0);
            assert!(store.snapshot_records().expect("records").is_empty());
            store
                .put_snapshot_batch([("P2", Some(b"two".to_vec())), ("P1", Some(b"one".to_vec()))], 7, true)
                .expect("put");
            store.put_snapshot_batch([("P2", None::<Vec<u8>>)], 9, true).expect("delete");
        }
        let store = Store::open_lazy(dir.path()).expect("reopen");
        assert_eq!(store.snapshot_checkpoint().expect("checkpoint"), 9);
        assert_eq!(store.snapshot_records().expect("records"), vec![("P1".to_owned(), b"one".to_vec())]);
        assert_eq!(store.get_snapshot("P1").expect("get"), Some(b"one".to_vec()));
        assert_eq!(store.get_snapshot("P2").expect("get"), None);
        // Labels live in another tree: a patient id that looks like the checkpoint key is fine.
        store.put_snapshot_batch([("c", Some(b"x".to_vec()))], 10, true).expect("put c");
        assert_eq!(store.snapshot_checkpoint().expect("checkpoint"), 10);
        store.clear_snapshot().expect("clear");
        assert_eq!(store.snapshot_checkpoint().expect("checkpoint"), 0);
        assert!(store.snapshot_records().expect("records").is_empty());
    }
}
