//! `verify_chain`: re-reads the whole log, recomputes every hash and checks that the head and the
//! indexes agree with it. The store's answer to "has anything been altered?".

use std::collections::HashMap;

use crate::codec::{self, Hash, HEAD_KEY, OUTBOX, SEGMENT};
use crate::error::{ChainError, ChainProblem, StoreError};
use crate::log::{decode_outbox, Store};
use crate::segfile::Locator;

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

/// The first outbox problem seen (outbox entries are not tied to one record).
#[derive(Default)]
struct FirstProblem {
    untied: Option<ChainProblem>,
}

impl FirstProblem {
    fn untied(&mut self, problem: ChainProblem) {
        self.untied.get_or_insert(problem);
    }
    fn into_result(self) -> Result<(), ChainError> {
        match self.untied {
            Some(problem) => Err(ChainError::BadIndexEntry { problem }),
            None => Ok(()),
        }
    }
}

impl Store {
    /// Re-reads the log in seq order and checks, stopping at the first bad record: segment keys
    /// and frames are readable; seqs are contiguous from 1; each record's `prev` is the previous
    /// record's hash; each stored hash equals SHA-256(prev ‖ seq_be ‖ received_at_be ‖
    /// event_id ‖ patient_id ‖ bytes) (length-prefixed ids); no event_id is stored twice; the
    /// head record names the last seq and its hash; outbox entries point into the log.
    /// `progress(seq)` is called after each verified record.
    ///
    /// The error names the first bad seq ([`ChainError::first_bad_seq`]). Appends wait while
    /// this runs (it holds the writer lock so the head cannot move under it).
    pub fn verify_chain(&self, mut progress: impl FnMut(u64)) -> Result<ChainReport, ChainError> {
        let _writer = self.lock_writer();
        let mut prev: Hash = [0; 32];
        let mut expected = 1u64;
        let mut last_of: HashMap<Vec<u8>, u64> = HashMap::new();
        let range = codec::seq_key(SEGMENT, 0).to_vec()..codec::prefix_end(SEGMENT).to_vec();
        for kv in self.log.range(range) {
            let (k, v) = kv.map_err(StoreError::from)?;
            let Some(first) = codec::parse_seq_key(SEGMENT, &k) else {
                let key_hex = hex::encode(&k);
                return Err(broken(expected, ChainProblem::BadKey { key_hex }));
            };
            let v = match Locator::decode(&v) {
                None => {
                    let detail = format!(
                        "the locator of the segment starting at seq {first} is unreadable ({} bytes)",
                        v.len()
                    );
                    return Err(broken(expected, ChainProblem::Segment { detail }));
                }
                Some(loc) => match self.read_segment((first, Some(loc))) {
                    Ok(v) => (v, None),
                    // The file ends inside the segment: the records before the cut are checked,
                    // and the first one it lost is named.
                    Err(e) => (self.files.read_available(loc), Some(e.to_string())),
                },
            };
            let (v, cut) = v;
            let mut at_start = true;
            for frame in codec::frames(&v) {
                let frame = frame.map_err(|offset| {
                    let detail = cut.clone().unwrap_or_else(|| {
                        format!("the record at byte {offset} of the segment starting at seq {first} runs past its end")
                    });
                    broken(expected, ChainProblem::Segment { detail })
                })?;
                let seq = frame.seq;
                if seq != expected {
                    let context = if seq > expected {
                        format!("the log jumps from seq {} to seq {seq}", expected - 1)
                    } else {
                        format!("seq {seq} appears again after seq {}", expected - 1)
                    };
                    return Err(broken(expected.min(seq), ChainProblem::Missing { context }));
                }
                if at_start && first != seq {
                    let detail =
                        format!("the segment key says seq {first} but its first record is seq {seq}");
                    return Err(broken(seq, ChainProblem::Segment { detail }));
                }
                at_start = false;
                let Some(r) = codec::decode_record(frame.record) else {
                    return Err(broken(seq, ChainProblem::CorruptHeader { len: frame.record.len() }));
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
                let computed = codec::chain_hash(
                    &prev,
                    seq,
                    r.received_at_micros,
                    frame.event_id,
                    frame.patient_id,
                    r.content,
                );
                if computed != r.hash {
                    return Err(broken(
                        seq,
                        ChainProblem::HashMismatch {
                            stored: hex::encode(r.hash),
                            computed: hex::encode(computed),
                        },
                    ));
                }
                self.check_indexed(seq, frame.event_id, frame.patient_id, &mut last_of)?;
                prev = r.hash;
                expected += 1;
                progress(seq);
            }
            if let Some(detail) = cut {
                return Err(broken(expected, ChainProblem::Segment { detail }));
            }
        }
        let last = expected - 1;
        self.check_patient_tails(&last_of)?;
        self.check_head(last, &prev)?;
        let mut first = FirstProblem::default();
        let outbox_pending = self.check_outbox(last, &mut first)?;
        first.into_result()?;
        Ok(ChainReport {
            events: last,
            head_hash: prev,
            patients: self.read_index().patient_count(),
            outbox_pending,
        })
    }

    /// The indexes (built from the log at open) must point at this record: a second record with
    /// the same event_id is caught here, and the patient's chain must link this record to the
    /// patient's previous one (`last_of`: each patient's latest record seen so far).
    fn check_indexed(
        &self,
        seq: u64,
        event_id: &[u8],
        patient_id: &[u8],
        last_of: &mut HashMap<Vec<u8>, u64>,
    ) -> Result<(), ChainError> {
        let index = self.read_index();
        let eid = String::from_utf8_lossy(event_id);
        match index.seq_of(&eid)? {
            Some(s) if s == seq => {}
            Some(s) => {
                let detail = format!("event_id {eid:?} is stored twice, at seq {s} and at seq {seq}");
                return Err(broken(seq.max(s), ChainProblem::EventIdIndex { detail }));
            }
            None => {
                let detail = format!("event_id {eid:?} of this record is not indexed");
                return Err(broken(seq, ChainProblem::EventIdIndex { detail }));
            }
        }
        let previous = last_of.insert(patient_id.to_vec(), seq).unwrap_or(0);
        if index.prev_of(seq)? != Some(previous) {
            let pid = String::from_utf8_lossy(patient_id);
            let detail = format!("this record of patient {pid:?} is not in that patient's index");
            return Err(broken(seq, ChainProblem::PatientIndex { detail }));
        }
        Ok(())
    }

    /// Every patient's chain in the index must end at its latest record.
    fn check_patient_tails(&self, last_of: &HashMap<Vec<u8>, u64>) -> Result<(), ChainError> {
        let index = self.read_index();
        if index.patient_count() != last_of.len() as u64 {
            let detail = format!(
                "the index knows {} patients, the log {}",
                index.patient_count(),
                last_of.len()
            );
            return Err(ChainError::BadIndexEntry { problem: ChainProblem::PatientIndex { detail } });
        }
        for (pid, &seq) in last_of {
            let pid = String::from_utf8_lossy(pid);
            if index.patient_last(&pid) != Some(seq) {
                let detail = format!("the index of patient {pid:?} does not end at its latest record");
                return Err(broken(seq, ChainProblem::PatientIndex { detail }));
            }
        }
        Ok(())
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

    fn check_outbox(&self, last: u64, first: &mut FirstProblem) -> Result<u64, ChainError> {
        let mut pending = 0;
        for kv in self.log.scan_prefix([OUTBOX]) {
            let (k, v) = kv.map_err(StoreError::from)?;
            let seqs = match (codec::parse_seq_key(OUTBOX, &k), decode_outbox(&k, &v)) {
                (Some(_), Ok(seqs)) => seqs,
                _ => {
                    let detail = format!("entry {} is unreadable", hex::encode(&k));
                    first.untied(ChainProblem::Outbox { detail });
                    continue;
                }
            };
            for seq in seqs {
                if seq >= 1 && seq <= last {
                    pending += 1;
                } else {
                    let detail = format!(
                        "entry {} lists seq {seq}, outside the log (1..={last})",
                        hex::encode(&k)
                    );
                    first.untied(ChainProblem::Outbox { detail });
                }
            }
        }
        Ok(pending)
    }
}
