//! Byte layout of keys and values in the sled trees, and the hash-chain formula.
//! Nothing here does IO; see docs/storage.md for the layout table.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Length of the binary header in front of the event bytes in a log record:
/// received_at (i64 BE, 8) ‖ prev hash (32) ‖ this hash (32).
pub const RECORD_HEADER_LEN: usize = 72;

pub(crate) const LOG: u8 = b'L';
pub(crate) const EVENT_ID: u8 = b'E';
pub(crate) const PATIENT: u8 = b'P';
pub(crate) const OUTBOX: u8 = b'O';
pub(crate) const HEAD_KEY: &[u8] = b"H";

pub(crate) fn seq_key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&seq.to_be_bytes());
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

pub(crate) fn event_id_key(event_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + event_id.len());
    k.push(EVENT_ID);
    k.extend_from_slice(event_id.as_bytes());
    k
}

/// `P ‖ patient_id ‖ 0x00`: all index entries of one patient start with this.
pub(crate) fn patient_prefix(patient_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + patient_id.len() + 8);
    k.push(PATIENT);
    k.extend_from_slice(patient_id.as_bytes());
    k.push(0);
    k
}

pub(crate) fn patient_key(patient_id: &str, seq: u64) -> Vec<u8> {
    let mut k = patient_prefix(patient_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Splits `P ‖ patient_id ‖ 0x00 ‖ seq_be` into its parts.
pub(crate) fn parse_patient_key(key: &[u8]) -> Option<(&[u8], u64)> {
    if key.len() < 10 || key[0] != PATIENT {
        return None;
    }
    let (front, seq) = key.split_at(key.len() - 8);
    let (pid, zero) = front[1..].split_at(front.len() - 2);
    if zero != [0] {
        return None;
    }
    Some((pid, u64::from_be_bytes(seq.try_into().ok()?)))
}

/// Value of an `E` entry and of the head: seq_be ‖ hash.
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

pub(crate) fn content_hash(content: &[u8]) -> Hash {
    Sha256::digest(content).into()
}

/// hash_n = SHA-256(hash_{n-1} ‖ seq_be ‖ received_at_be ‖ event bytes).
pub(crate) fn chain_hash(prev: &Hash, seq: u64, received_at_micros: i64, content: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(received_at_micros.to_be_bytes());
    h.update(content);
    h.finalize().into()
}

pub(crate) fn encode_record(
    received_at_micros: i64,
    prev: &Hash,
    hash: &Hash,
    content: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_HEADER_LEN + content.len());
    v.extend_from_slice(&received_at_micros.to_be_bytes());
    v.extend_from_slice(prev);
    v.extend_from_slice(hash);
    v.extend_from_slice(content);
    v
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

    #[test]
    fn patient_key_round_trips_and_rejects_other_shapes() {
        let k = patient_key("FUSCC-0042", 258);
        assert_eq!(parse_patient_key(&k), Some((&b"FUSCC-0042"[..], 258)));
        assert_eq!(parse_patient_key(b"P\x01\x02"), None);
        assert_eq!(parse_seq_key(LOG, &seq_key(LOG, 7)), Some(7));
        assert_eq!(parse_seq_key(LOG, &seq_key(OUTBOX, 7)), None);
    }

    #[test]
    fn seq_keys_sort_numerically() {
        assert!(seq_key(LOG, 255) < seq_key(LOG, 256));
        assert!(seq_key(LOG, 9) < seq_key(LOG, 10));
    }

    #[test]
    fn short_record_does_not_decode() {
        assert!(decode_record(&[0u8; 71]).is_none());
        let r = encode_record(-5, &[1; 32], &[2; 32], b"x");
        let v = decode_record(&r).expect("decodes");
        assert_eq!((v.received_at_micros, v.prev, v.hash, v.content), (-5, [1; 32], [2; 32], &b"x"[..]));
    }
}
