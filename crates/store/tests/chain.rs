//! Tamper evidence: verify_chain passes on honest stores and names the first bad seq otherwise.

use registry_store::{ChainError, ChainProblem, NewEvent, Store, RECORD_HEADER_LEN};
use tempfile::TempDir;

/// Appends `batches` batches of `per_batch` events over 7 patients.
fn fill(store: &Store, batches: usize, per_batch: usize) {
    let start = store.last_seq() as usize;
    for b in 0..batches {
        let items: Vec<(String, String, String)> = (0..per_batch)
            .map(|i| {
                let n = start + b * per_batch + i;
                (format!("event-{n}"), format!("P{}", n % 7), format!("{{\"n\":{n}}}"))
            })
            .collect();
        let events: Vec<NewEvent<'_>> = items
            .iter()
            .enumerate()
            .map(|(i, (id, p, c))| NewEvent {
                event_id: id,
                patient_id: p,
                content: c.as_bytes(),
                received_at_micros: 1_000 + i as i64,
            })
            .collect();
        store.append_batch(&events).expect("append");
    }
}

fn broken_at(err: &ChainError) -> u64 {
    err.first_bad_seq().unwrap_or_else(|| panic!("expected a seq in {err}"))
}

#[test]
fn chain_verifies_after_many_batches_and_across_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let head = {
        let store = Store::open(dir.path()).expect("open");
        fill(&store, 40, 25);
        let mut calls = 0;
        let report = store.verify_chain(|_| calls += 1).expect("verifies");
        assert_eq!((report.events, report.patients, calls), (1000, 7, 1000));
        report.head_hash
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.head_hash(), head);
    fill(&store, 3, 10);
    let report = store.verify_chain(|_| {}).expect("verifies after reopen");
    assert_eq!(report.events, 1030);
    assert_ne!(report.head_hash, head);
    assert_eq!(report.head_hash_hex().len(), 64);
}

#[test]
fn a_flipped_byte_in_the_event_bytes_names_that_seq() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 5, 20);
    store.tamper_flip_byte(37, RECORD_HEADER_LEN + 3).expect("tamper");
    store.tamper_flip_byte(80, RECORD_HEADER_LEN).expect("tamper a later one too");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 37);
    assert!(matches!(err, ChainError::Broken { problem: ChainProblem::HashMismatch { .. }, .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("hash chain broken at seq 37: stored hash"), "{msg}");
}

#[test]
fn a_flipped_byte_in_received_at_is_detected() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 1, 10);
    store.tamper_flip_byte(4, 7).expect("tamper");
    assert_eq!(broken_at(&store.verify_chain(|_| {}).expect_err("detected")), 4);
}

#[test]
fn a_flipped_byte_in_a_stored_hash_names_that_seq() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 2, 10);
    store.tamper_flip_byte(12, 40).expect("tamper the record's own hash");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 12);

    let dir2 = TempDir::new().expect("tempdir");
    let store2 = Store::open(dir2.path()).expect("open");
    fill(&store2, 2, 10);
    store2.tamper_flip_byte(5, 8).expect("tamper the prev hash");
    let err = store2.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 5);
    assert!(err.to_string().contains("prev-hash link broken"), "{err}");
}

#[test]
fn a_deleted_record_in_the_middle_names_the_missing_seq() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 3, 10);
    store.tamper_remove_record(17).expect("tamper");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 17);
    assert_eq!(
        err.to_string(),
        "hash chain broken at seq 17: record is missing (the log jumps from seq 16 to seq 18)"
    );
}

#[test]
fn a_deleted_last_record_is_caught_by_the_head() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 3, 10);
    store.tamper_remove_record(30).expect("tamper");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 30);
    assert!(err.to_string().contains("the head says the log ends at seq 30"), "{err}");
}

#[test]
fn a_truncated_header_is_reported_not_panicked_on() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 1, 5);
    store.tamper_truncate_record(3, 20).expect("tamper");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 3);
    assert!(err.to_string().contains("record header is corrupt: 20 bytes stored"), "{err}");
    let read = store.get(3).expect_err("get reports corruption");
    assert_eq!(
        read.to_string(),
        "corrupt log record seq 3: 20 bytes, shorter than the 72-byte header"
    );
    let streamed: Vec<_> = store.iter_from(1).collect();
    assert!(streamed[2].is_err() && streamed[3].is_ok(), "iteration reports and continues");
}

#[test]
fn moving_a_record_to_another_patient_breaks_the_chain_at_that_seq() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    fill(&store, 2, 10);
    store.tamper_set_patient_id(13, "P-intruder").expect("tamper");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 13);
    assert!(matches!(err, ChainError::Broken { problem: ChainProblem::HashMismatch { .. }, .. }), "{err}");
}

#[test]
fn the_indexes_are_rebuilt_from_the_log_at_open() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        fill(&store, 3, 10);
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.seq_of_event_id("event-13").expect("lookup"), Some(14));
    assert_eq!(store.patient_ids().expect("ids").len(), 7);
    let seqs: Vec<u64> = store.patient_events("P3").expect("events").iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![4, 11, 18, 25]);
    let report = store.verify_chain(|_| {}).expect("verifies");
    assert_eq!(report.patients, 7);
}

#[test]
fn tampering_is_still_detected_after_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        fill(&store, 2, 10);
        store.tamper_flip_byte(9, RECORD_HEADER_LEN + 1).expect("tamper");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(broken_at(&store.verify_chain(|_| {}).expect_err("detected")), 9);
}

/// Damage done to the segment file itself, outside the store's API, as a disk error or a person
/// with a hex editor would do it.
fn flip_in_file(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read segment file");
    bytes[at as usize] ^= 0x01;
    std::fs::write(path, bytes).expect("write segment file");
}

#[test]
fn a_byte_flipped_in_the_segment_file_on_disk_names_that_seq() {
    let dir = TempDir::new().expect("tempdir");
    let (path, at) = {
        let store = Store::open(dir.path()).expect("open");
        fill(&store, 4, 25);
        store.tamper_locate_content(61).expect("locate")
    };
    flip_in_file(&path, at + 2);
    let store = Store::open(dir.path()).expect("reopen");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 61);
    assert!(matches!(err, ChainError::Broken { problem: ChainProblem::HashMismatch { .. }, .. }), "{err}");
}

#[test]
fn a_segment_file_cut_short_names_the_first_lost_record() {
    let dir = TempDir::new().expect("tempdir");
    let (path, at) = {
        let store = Store::open(dir.path()).expect("open");
        fill(&store, 3, 10);
        store.tamper_locate_content(15).expect("locate")
    };
    // Cutting the file inside record 15 loses it and every later one; 1..=14 still verify.
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open file");
    file.set_len(at).expect("truncate");
    drop(file);
    let store = Store::open(dir.path()).expect("a damaged store still opens, for verify");
    let err = store.verify_chain(|_| {}).expect_err("detected");
    assert_eq!(broken_at(&err), 15, "{err}");
    assert!(err.to_string().contains("past the end of the file"), "{err}");
}
