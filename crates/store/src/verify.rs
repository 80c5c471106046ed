//! `verify_chain`: re-reads the whole log, recomputes every hash and checks that the head and the
//! indexes agree with it. The store's answer to "has anything been altered?".

use crate::codec::{self, Hash, EVENT_ID, HEAD_KEY, LOG, OUTBOX, PATIENT};
use crate::error::{ChainError, ChainProblem, StoreError};
use crate::log::Store;

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of records, = last seq (contiguous from 1).
    pub events: u64,
    /// Hash of the last record (zeros when empty).
    pub head_hash: Hash,
    /// Number of distinct patients in the patient index.
    pub patients: u64,
    /// Outbox entries not yet marked done.
    pub outbox_pending: u64,
}

impl ChainReport {
    /// The head hash in lowercase hex, for printing and comparing with an earlier run.
    pub fn head_hash_hex(&self) -> String {
        hex::encode(self.head_hash)
    }
}

fn broken(seq: u64, problem: ChainProblem) -> ChainError {
    ChainError::Broken { seq, problem }
}

/// Keeps the problem with the smallest seq, so the report names the first bad record.
#[derive(Default)]
struct FirstProblem {
    at_seq: Option<(u64, ChainProblem)>,
    untied: Option<ChainProblem>,
}

impl FirstProblem {
    fn at(&mut self, seq: u64, problem: ChainProblem) {
        if self.at_seq.as_ref().is_none_or(|(s, _)| seq < *s) {
            self.at_seq = Some((seq, problem));
        }
    }
    fn untied(&mut self, problem: ChainProblem) {
        self.untied.get_or_insert(problem);
    }
    fn into_result(self) -> Result<(), ChainError> {
        match (self.at_seq, self.untied) {
            (Some((seq, problem)), _) => Err(broken(seq, problem)),
            (None, Some(problem)) => Err(ChainError::BadIndexEntry { problem }),
            (None, None) => Ok(()),
        }
    }
}

impl Store {
    /// Re-reads the log in seq order and checks, stopping at the first bad record:
    /// seqs are contiguous from 1; each record's `prev` is the previous record's hash; each
    /// stored hash equals SHA-256(prev ‖ seq_be ‖ received_at_be ‖ bytes); the head record
    /// names the last seq and its hash. Then every event-id entry points to an existing record
    /// with the same content hash, every patient entry to an existing record, each record is
    /// pointed at by exactly one entry of each index, and outbox entries point into the log.
    /// `progress(seq)` is called after each verified record.
    ///
    /// The error names the first bad seq ([`ChainError::first_bad_seq`]). Appends wait while
    /// this runs (it holds the writer lock so the head cannot move under it).
    pub fn verify_chain(&self, mut progress: impl FnMut(u64)) -> Result<ChainReport, ChainError> {
        let _writer = self.lock_writer();
        let mut prev: Hash = [0; 32];
        let mut expected = 1u64;
        // content_hashes[seq - 1], to check the event-id index without a second pass.
        let mut content_hashes: Vec<Hash> = Vec::new();
        let range = codec::seq_key(LOG, 0).to_vec()..codec::prefix_end(LOG).to_vec();
        for kv in self.log.range(range) {
            let (k, v) = kv.map_err(StoreError::from)?;
            let Some(seq) = codec::parse_seq_key(LOG, &k) else {
                return Err(broken(
                    expected,
                    ChainProblem::BadKey {
                        key_hex: hex::encode(&k),
                    },
                ));
            };
            if seq != expected {
                let context = format!("the log jumps from seq {} to seq {seq}", expected - 1);
                return Err(broken(expected.min(seq), ChainProblem::Missing { context }));
            }
            let Some(r) = codec::decode_record(&v) else {
                return Err(broken(seq, ChainProblem::CorruptHeader { len: v.len() }));
            };
            if r.prev != prev {
                return Err(broken(
                    seq,
                    ChainProblem::PrevLinkBroken {
                        expected: hex::encode(prev),
                        found: hex::encode(r.prev),
                    },
                ));
            }
            let computed = codec::chain_hash(&prev, seq, r.received_at_micros, r.content);
            if computed != r.hash {
                return Err(broken(
                    seq,
                    ChainProblem::HashMismatch {
                        stored: hex::encode(r.hash),
                        computed: hex::encode(computed),
                    },
                ));
            }
            content_hashes.push(codec::content_hash(r.content));
            prev = r.hash;
            expected += 1;
            progress(seq);
        }
        let last = expected - 1;
        self.check_head(last, &prev)?;

        let mut first = FirstProblem::default();
        let patients = self.check_indexes(last, &content_hashes, &mut first)?;
        let outbox_pending = self.check_outbox(last, &mut first)?;
        first.into_result()?;
        Ok(ChainReport {
            events: last,
            head_hash: prev,
            patients,
            outbox_pending,
        })
    }

    fn check_head(&self, last: u64, last_hash: &Hash) -> Result<(), ChainError> {
        let head = self.log.get(HEAD_KEY).map_err(StoreError::from)?;
        let Some(v) = head else {
            if last == 0 {
                return Ok(());
            }
            let detail = "the head record is missing".to_owned();
            return Err(broken(last, ChainProblem::Head { detail }));
        };
        let Some((head_seq, head_hash)) = codec::decode_seq_hash(&v) else {
            let detail = format!("the head record is unreadable ({} bytes)", v.len());
            return Err(broken(last.max(1), ChainProblem::Head { detail }));
        };
        if head_seq > last {
            let context = format!(
                "the head says the log ends at seq {head_seq}, but the last record is seq {last}"
            );
            return Err(broken(last + 1, ChainProblem::Missing { context }));
        }
        if head_seq < last {
            let detail = format!(
                "record {} is past the head, which says the log ends at seq {head_seq}",
                head_seq + 1
            );
            return Err(broken(head_seq + 1, ChainProblem::Head { detail }));
        }
        if head_hash != *last_hash {
            let detail = format!(
                "the head hash {} is not the hash {} of the last record",
                hex::encode(head_hash),
                hex::encode(last_hash)
            );
            return Err(broken(last, ChainProblem::Head { detail }));
        }
        Ok(())
    }

    /// Checks the `E` and `P` entries against the log; returns the number of patients.
    fn check_indexes(
        &self,
        last: u64,
        content_hashes: &[Hash],
        first: &mut FirstProblem,
    ) -> Result<u64, ChainError> {
        let slots = usize::try_from(last).unwrap_or(usize::MAX);
        let mut by_event_id = vec![false; slots];
        for kv in self.log.scan_prefix([EVENT_ID]) {
            let (k, v) = kv.map_err(StoreError::from)?;
            let event_id = String::from_utf8_lossy(&k[1..]).into_owned();
            let Some((seq, hash)) = codec::decode_seq_hash(&v) else {
                let detail = format!("entry for {event_id:?} is unreadable ({} bytes)", v.len());
                first.untied(ChainProblem::EventIdIndex { detail });
                continue;
            };
            if seq == 0 || seq > last {
                let detail = format!(
                    "entry for {event_id:?} points to seq {seq}, outside the log (1..={last})"
                );
                first.untied(ChainProblem::EventIdIndex { detail });
                continue;
            }
            let i = (seq - 1) as usize;
            if by_event_id[i] {
                let detail = format!("more than one entry points to this record (one is {event_id:?})");
                first.at(seq, ChainProblem::EventIdIndex { detail });
            }
            by_event_id[i] = true;
            if content_hashes[i] != hash {
                let detail = format!(
                    "entry for {event_id:?} records content hash {}, but the record's content hashes to {}",
                    hex::encode(hash),
                    hex::encode(content_hashes[i])
                );
                first.at(seq, ChainProblem::EventIdIndex { detail });
            }
        }
        if let Some(i) = by_event_id.iter().position(|seen| !seen) {
            let detail = "no event-id entry points to this record".to_owned();
            first.at(i as u64 + 1, ChainProblem::EventIdIndex { detail });
        }

        let mut by_patient = vec![false; slots];
        let mut patients = 0u64;
        let mut previous_patient: Option<Vec<u8>> = None;
        for kv in self.log.scan_prefix([PATIENT]) {
            let (k, _) = kv.map_err(StoreError::from)?;
            let Some((pid, seq)) = codec::parse_patient_key(&k) else {
                let detail = format!("unreadable key {}", hex::encode(&k));
                first.untied(ChainProblem::PatientIndex { detail });
                continue;
            };
            let pid_text = String::from_utf8_lossy(pid).into_owned();
            if previous_patient.as_deref() != Some(pid) {
                patients += 1;
                previous_patient = Some(pid.to_vec());
            }
            if seq == 0 || seq > last {
                let detail = format!(
                    "entry for {pid_text:?} points to seq {seq}, outside the log (1..={last})"
                );
                first.untied(ChainProblem::PatientIndex { detail });
                continue;
            }
            let i = (seq - 1) as usize;
            if by_patient[i] {
                let detail =
                    format!("more than one patient entry points to this record (one is {pid_text:?})");
                first.at(seq, ChainProblem::PatientIndex { detail });
            }
            by_patient[i] = true;
        }
        if let Some(i) = by_patient.iter().position(|seen| !seen) {
            let detail = "no patient entry points to this record".to_owned();
            first.at(i as u64 + 1, ChainProblem::PatientIndex { detail });
        }
        Ok(patients)
    }

    fn check_outbox(&self, last: u64, first: &mut FirstProblem) -> Result<u64, ChainError> {
        let mut pending = 0;
        for kv in self.log.scan_prefix([OUTBOX]) {
            let (k, _) = kv.map_err(StoreError::from)?;
            match codec::parse_seq_key(OUTBOX, &k) {
                Some(seq) if seq >= 1 && seq <= last => pending += 1,
                _ => {
                    let detail = format!("entry {} points outside the log (1..={last})", hex::encode(&k));
                    first.untied(ChainProblem::Outbox { detail });
                }
            }
        }
        Ok(pending)
    }
}
