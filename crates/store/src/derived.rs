//! Derived state kept beside the log: labels per patient (written by the projector together
//! with the seq they are computed through) and a generic meta/checkpoint tree. All of it can be
//! rebuilt from the log.

use crate::error::StoreError;
use crate::log::Store;

const LABEL: u8 = b'l';
const THROUGH_SEQ_KEY: &[u8] = b"m:labels_through_seq";
/// Meta key prefix of [`Store::note_bus_through`], followed by the consumer's durable name.
const BUS_THROUGH: &str = "m:bus_through:";

fn label_key(patient_id: &str) -> Vec<u8> {
    crate::codec::str_key(LABEL, patient_id)
}

impl Store {
    /// Writes (`Some`) or deletes (`None`) the labels of several patients and sets the
    /// `labels_through_seq` marker to `through_seq`, all in one atomic batch, then flushes:
    /// after a crash either all of it or none of it is there. The marker is not required to grow
    /// (a rebuild starts again from 0).
    pub fn put_labels_batch<I, P, B>(&self, labels: I, through_seq: u64) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = (P, Option<B>)>,
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        self.put_labels_batch_unflushed(labels, through_seq)?;
        self.db.flush()?;
        Ok(())
    }

    /// [`Store::put_labels_batch`] without the flush: atomic, durable only with the next flush
    /// (any flushing call). For a caller that writes several batches and flushes once at the end.
    pub fn put_labels_batch_unflushed<I, P, B>(&self, labels: I, through_seq: u64) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = (P, Option<B>)>,
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let mut batch = sled::Batch::default();
        for (patient_id, value) in labels {
            let key = label_key(patient_id.as_ref());
            match value {
                Some(v) => batch.insert(key, v.as_ref()),
                None => batch.remove(key),
            }
        }
        batch.insert(THROUGH_SEQ_KEY, &through_seq.to_be_bytes());
        self.labels.apply_batch(batch)?;
        Ok(())
    }

    /// The labels stored for `patient_id`.
    pub fn get_labels(&self, patient_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.labels.get(label_key(patient_id))?.map(|v| v.to_vec()))
    }

    /// The seq the stored labels are computed through (0 if never set).
    pub fn labels_through_seq(&self) -> Result<u64, StoreError> {
        match self.labels.get(THROUGH_SEQ_KEY)? {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt("labels_through_seq", "not 8 bytes")),
        }
    }

    /// Every (patient_id, labels) pair, sorted by patient id, streamed.
    pub fn iter_labels(
        &self,
    ) -> impl Iterator<Item = Result<(String, Vec<u8>), StoreError>> + Send + 'static {
        self.labels.scan_prefix([LABEL]).map(|kv| {
            let (k, v) = kv?;
            let pid = String::from_utf8(k[1..].to_vec()).map_err(|_| {
                StoreError::corrupt(format!("labels key {}", hex::encode(&k)), "not UTF-8")
            })?;
            Ok((pid, v.to_vec()))
        })
    }

    /// Records that the store holds the effect of every message up to stream sequence `seq`
    /// that bus consumer `consumer` delivered (kept as the largest seen). Not flushed: it is
    /// durable with the flush that makes the batch durable, before the batch is acknowledged.
    /// [`Store::bus_through`] reads it back at start-up (docs/bus.md, "A store restored from a
    /// backup").
    pub fn note_bus_through(&self, consumer: &str, seq: u64) -> Result<(), StoreError> {
        let key = format!("{BUS_THROUGH}{consumer}");
        self.meta.fetch_and_update(key.as_bytes(), |old| {
            let before = old.and_then(|v| <[u8; 8]>::try_from(v).ok()).map_or(0, u64::from_be_bytes);
            Some(before.max(seq).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// What [`Store::note_bus_through`] recorded for `consumer` (`None`: nothing yet).
    pub fn bus_through(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let key = format!("{BUS_THROUGH}{consumer}");
        match self.meta.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| StoreError::corrupt(format!("meta {key}"), format!("{} bytes, 8 expected", v.len()))),
        }
    }

    /// Whether the store holds nothing: no event and no rejection.
    pub fn holds_nothing(&self) -> Result<bool, StoreError> {
        Ok(self.last_seq() == 0 && self.rejected.first()?.is_none())
    }

    /// Stores `value` under `key` in the meta/checkpoint tree and flushes.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The meta value under `key`.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Deletes the meta value under `key` and flushes. Returns whether it existed.
    pub fn delete_meta(&self, key: &str) -> Result<bool, StoreError> {
        let existed = self.meta.remove(key.as_bytes())?.is_some();
        self.db.flush()?;
        Ok(existed)
    }
}
