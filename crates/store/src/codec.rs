//! Byte layout of keys and values in the sled trees, and the hash-chain formula.
//! Nothing here does IO; see docs/storage.md for the layout table.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Length of the binary header in front of the event bytes in a log record:
/// received_at (i64 BE, 8) ‖ prev hash (32) ‖ this hash (32).
pub const RECORD_HEADER_LEN: usize = 72;

/// Length of a frame's fixed header: seq (u64 BE, 8) ‖ event_id length (u16 BE) ‖ patient_id
/// length (u16 BE) ‖ record length (u32 BE).
pub(crate) const FRAME_HEADER_LEN: usize = 16;

/// `S ‖ first seq` → the locator of a segment (file, offset, length; see `segfile`): the frames
/// of (part of) one append batch, back to back, in a segment file. (Layout 2 had the segment
/// bytes themselves as the value.)
pub(crate) const SEGMENT: u8 = b'S';
/// `O ‖ first seq of a segment` → the seqs of that segment not yet published (u64 BE each).
pub(crate) const OUTBOX: u8 = b'O';
/// `H` → last seq ‖ its hash.
pub(crate) const HEAD_KEY: &[u8] = b"H";
/// `V` → the layout version of the `log` tree.
pub(crate) const LAYOUT_KEY: &[u8] = b"V";
/// Layout 3: segment bytes in segment files, locators in sled.
pub(crate) const LAYOUT_VERSION: &[u8] = b"3";
/// Layout 2: one segment value per append batch in sled (layout 1 had one `L` key per event).
/// Migrated to layout 3 at open.
pub(crate) const LAYOUT2_VERSION: &[u8] = b"2";
/// The first key prefix of layout 1, to refuse such a store with a clear message.
pub(crate) const LAYOUT1_LOG: u8 = b'L';

pub(crate) fn seq_key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// `prefix ‖ s` (a patient id, an alert id, a reason code …).
pub(crate) fn str_key(prefix: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + s.len());
    k.push(prefix);
    k.extend_from_slice(s.as_bytes());
    k
}

/// Parses `prefix ‖ seq_be`; `None` if the key has another shape.
pub(crate) fn parse_seq_key(prefix: u8, key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != prefix {
        return None;
    }
    Some(u64::from_be_bytes(key[1..].try_into().ok()?))
}

/// The exclusive upper bound of all keys starting with `prefix`.
pub(crate) fn prefix_end(prefix: u8) -> [u8; 1] {
    [prefix + 1]
}

/// Value of the head: seq_be ‖ hash.
pub(crate) fn encode_seq_hash(seq: u64, hash: &Hash) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(hash);
    v
}

pub(crate) fn decode_seq_hash(v: &[u8]) -> Option<(u64, Hash)> {
    if v.len() != 40 {
        return None;
    }
    Some((
        u64::from_be_bytes(v[..8].try_into().ok()?),
        v[8..].try_into().ok()?,
    ))
}

/// hash_n = SHA-256(hash_{n-1} ‖ seq_be ‖ received_at_be ‖ len16(event_id) ‖ event_id ‖
/// len16(patient_id) ‖ patient_id ‖ event bytes): the index keys are covered too, so moving an
/// event to another patient or id breaks the chain.
pub(crate) fn chain_hash(
    prev: &Hash,
    seq: u64,
    received_at_micros: i64,
    event_id: &[u8],
    patient_id: &[u8],
    content: &[u8],
) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(received_at_micros.to_be_bytes());
    h.update((event_id.len() as u16).to_be_bytes());
    h.update(event_id);
    h.update((patient_id.len() as u16).to_be_bytes());
    h.update(patient_id);
    h.update(content);
    h.finalize().into()
}

/// One event as written into a segment.
pub(crate) struct FrameIn<'a> {
    pub(crate) seq: u64,
    pub(crate) event_id: &'a [u8],
    pub(crate) patient_id: &'a [u8],
    pub(crate) received_at_micros: i64,
    pub(crate) prev: Hash,
    pub(crate) hash: Hash,
    pub(crate) content: &'a [u8],
}

/// Appends one frame to `out`: frame header ‖ event_id ‖ patient_id ‖ record, where record =
/// received_at ‖ prev ‖ hash ‖ event bytes. The caller checked that the lengths fit.
pub(crate) fn encode_frame(out: &mut Vec<u8>, f: &FrameIn<'_>) {
    out.extend_from_slice(&f.seq.to_be_bytes());
    out.extend_from_slice(&(f.event_id.len() as u16).to_be_bytes());
    out.extend_from_slice(&(f.patient_id.len() as u16).to_be_bytes());
    out.extend_from_slice(&((RECORD_HEADER_LEN + f.content.len()) as u32).to_be_bytes());
    out.extend_from_slice(f.event_id);
    out.extend_from_slice(f.patient_id);
    out.extend_from_slice(&f.received_at_micros.to_be_bytes());
    out.extend_from_slice(&f.prev);
    out.extend_from_slice(&f.hash);
    out.extend_from_slice(f.content);
}

/// One frame read from a segment, borrowing the stored bytes. `record` may be shorter than the
/// record header if it was damaged; [`decode_record`] says so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameView<'a> {
    pub(crate) seq: u64,
    pub(crate) event_id: &'a [u8],
    pub(crate) patient_id: &'a [u8],
    pub(crate) record: &'a [u8],
    /// Where the frame starts in the segment.
    pub(crate) offset: usize,
    /// Where the record starts in the segment.
    pub(crate) record_offset: usize,
}

/// The frames of one segment in order. After a frame whose lengths run past the end of the
/// segment it yields one `Err(offset)` and stops: the rest of the segment is unreadable.
pub(crate) struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

pub(crate) fn frames(segment: &[u8]) -> Frames<'_> {
    Frames {
        buf: segment,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<FrameView<'a>, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let parsed = (|| {
            let h = self.buf.get(start..start.checked_add(FRAME_HEADER_LEN)?)?;
            let seq = u64::from_be_bytes(h[..8].try_into().ok()?);
            let eid_len = usize::from(u16::from_be_bytes(h[8..10].try_into().ok()?));
            let pid_len = usize::from(u16::from_be_bytes(h[10..12].try_into().ok()?));
            let rec_len = usize::try_from(u32::from_be_bytes(h[12..16].try_into().ok()?)).ok()?;
            let eid_at = start + FRAME_HEADER_LEN;
            let pid_at = eid_at + eid_len;
            let rec_at = pid_at + pid_len;
            let end = rec_at.checked_add(rec_len)?;
            let record = self.buf.get(rec_at..end)?;
            Some((
                FrameView {
                    seq,
                    event_id: &self.buf[eid_at..pid_at],
                    patient_id: &self.buf[pid_at..rec_at],
                    record,
                    offset: start,
                    record_offset: rec_at,
                },
                end,
            ))
        })();
        match parsed {
            Some((frame, end)) => {
                self.pos = end;
                Some(Ok(frame))
            }
            None => {
                self.failed = true;
                Some(Err(start))
            }
        }
    }
}

/// A decoded log record, borrowing the stored bytes.
pub(crate) struct RecordView<'a> {
    pub(crate) received_at_micros: i64,
    pub(crate) prev: Hash,
    pub(crate) hash: Hash,
    pub(crate) content: &'a [u8],
}

pub(crate) fn decode_record(v: &[u8]) -> Option<RecordView<'_>> {
    if v.len() < RECORD_HEADER_LEN {
        return None;
    }
    Some(RecordView {
        received_at_micros: i64::from_be_bytes(v[..8].try_into().ok()?),
        prev: v[8..40].try_into().ok()?,
        hash: v[40..72].try_into().ok()?,
        content: &v[RECORD_HEADER_LEN..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, eid: &str, content: &[u8]) -> FrameIn<'static> {
        FrameIn {
            seq,
            event_id: eid.to_owned().leak().as_bytes(),
            patient_id: b"P1",
            received_at_micros: -5,
            prev: [1; 32],
            hash: [2; 32],
            content: content.to_vec().leak(),
        }
    }

    #[test]
    fn frames_round_trip_and_a_damaged_length_stops_the_walk() {
        let mut seg = Vec::new();
        encode_frame(&mut seg, &frame(7, "a", b"x"));
        encode_frame(&mut seg, &frame(8, "bb", b"yz"));
        let got: Vec<_> = frames(&seg).map(|f| f.expect("frame")).collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].seq, got[1].event_id, got[1].patient_id), (8, &b"bb"[..], &b"P1"[..]));
        let r = decode_record(got[1].record).expect("record");
        assert_eq!((r.received_at_micros, r.prev, r.hash, r.content), (-5, [1; 32], [2; 32], &b"yz"[..]));
        // Record length of the first frame made too large: one error, then nothing.
        seg[15] = 0xff;
        let walked: Vec<_> = frames(&seg).collect();
        assert_eq!(walked.len(), 1);
        assert_eq!(walked[0].as_ref().err(), Some(&0));
    }

    #[test]
    fn seq_keys_sort_numerically() {
        assert!(seq_key(SEGMENT, 255) < seq_key(SEGMENT, 256));
        assert!(seq_key(SEGMENT, 9) < seq_key(SEGMENT, 10));
        assert_eq!(parse_seq_key(SEGMENT, &seq_key(SEGMENT, 7)), Some(7));
        assert_eq!(parse_seq_key(SEGMENT, &seq_key(OUTBOX, 7)), None);
    }

    #[test]
    fn short_record_does_not_decode() {
        assert!(decode_record(&[0u8; 71]).is_none());
    }

    #[test]
    fn the_chain_hash_covers_the_index_keys() {
        let a = chain_hash(&[0; 32], 1, 5, b"e1", b"P1", b"{}");
        assert_ne!(a, chain_hash(&[0; 32], 1, 5, b"e1", b"P2", b"{}"));
        assert_ne!(a, chain_hash(&[0; 32], 1, 5, b"e2", b"P1", b"{}"));
        // Length prefixes keep the boundary between id and patient fixed.
        assert_ne!(chain_hash(&[0; 32], 1, 5, b"e1P", b"1", b"{}"), a);
    }
}
