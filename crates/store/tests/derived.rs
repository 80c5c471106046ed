//! Rejections, labels, meta: round trips and atomicity against real sled directories.

use registry_store::{AppendOutcome, NewEvent, Rejection, Store};
use tempfile::TempDir;

fn rejection<'a>(raw: &'a [u8], reason: &'a str) -> Rejection<'a> {
    Rejection {
        raw,
        source: "file:events.ndjson:17",
        reason,
        message: "schema: /payload/ecog must be ≤ 4",
        at_micros: 1_700_000_000_000_123,
        stream_seq: None,
    }
}

#[test]
fn rejections_round_trip_arbitrary_bytes_including_invalid_utf8_and_10_mb() {
    let dir = TempDir::new().expect("tempdir");
    let invalid_utf8: &[u8] = &[0xff, 0xfe, b'{', 0x00, 0xc3, 0x28];
    let big: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.reject(rejection(invalid_utf8, "malformed")).expect("reject"), 1);
        let ids = store
            .reject_batch(&[rejection(&big, "too_large"), rejection(b"", "malformed")])
            .expect("reject");
        assert_eq!(ids, vec![2, 3]);
    }
    let store = Store::open(dir.path()).expect("reopen");
    let all: Vec<_> = store.rejections().map(|r| r.expect("read")).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].raw, invalid_utf8);
    assert_eq!(all[0].source, "file:events.ndjson:17");
    assert_eq!(all[0].reason, "malformed");
    assert_eq!(all[0].message, "schema: /payload/ecog must be ≤ 4");
    assert_eq!(all[0].at_micros, 1_700_000_000_000_123);
    assert_eq!(all[0].resent_at_micros, None);
    assert!(all[1].raw == big, "10 MB body differs");
    assert!(all[2].raw.is_empty());
    let counts = store.rejection_count_by_reason().expect("counts");
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), vec![("malformed".to_owned(), 2), ("too_large".to_owned(), 1)]);
}

#[test]
fn rejections_can_be_marked_resent_and_removed_and_ids_are_never_reused() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store.reject_batch(&[rejection(b"a", "schema"), rejection(b"b", "schema")]).expect("reject");
        assert!(store.mark_rejection_resent(1, 42).expect("mark"));
        assert!(!store.mark_rejection_resent(99, 42).expect("mark missing"));
        assert!(store.remove_rejection(2).expect("remove"));
        assert!(!store.remove_rejection(2).expect("remove again"));
    }
    let store = Store::open(dir.path()).expect("reopen");
    let first = store.get_rejection(1).expect("get").expect("present");
    assert_eq!((first.resent_at_micros, first.raw.as_slice()), (Some(42), &b"a"[..]));
    assert_eq!(store.get_rejection(2).expect("get"), None);
    assert_eq!(store.rejection_count_by_reason().expect("counts").get("schema"), Some(&1));
    assert_eq!(store.reject(rejection(b"c", "bad_date")).expect("reject"), 3, "id 2 not reused");
}

#[test]
fn events_and_rejections_in_one_unit_of_work() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let events = [
        NewEvent { event_id: "e1", patient_id: "p", content: b"one", received_at_micros: 1 },
        NewEvent { event_id: "e1", patient_id: "p", content: b"other", received_at_micros: 2 },
    ];
    let (outcomes, ids) = store
        .append_batch_with_rejections(&events, &[rejection(b"{bad", "malformed")])
        .expect("unit of work");
    assert_eq!(outcomes, vec![AppendOutcome::Accepted { seq: 1 }, AppendOutcome::Conflict { existing_seq: 1 }]);
    assert_eq!(ids, vec![1]);
    assert_eq!(store.rejections().count(), 1);
}

#[test]
fn labels_batch_writes_labels_and_through_seq_together() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.labels_through_seq().expect("marker"), 0);
        store
            .put_labels_batch([("p1", Some(b"L1".as_slice())), ("p2", Some(b"L2".as_slice()))], 10)
            .expect("put");
        store
            .put_labels_batch(vec![("p1".to_owned(), None::<Vec<u8>>), ("p3".to_owned(), Some(b"L3".to_vec()))], 12)
            .expect("put");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.labels_through_seq().expect("marker"), 12);
    assert_eq!(store.get_labels("p1").expect("get"), None);
    assert_eq!(store.get_labels("p2").expect("get"), Some(b"L2".to_vec()));
    let all: Vec<(String, Vec<u8>)> = store.iter_labels().map(|r| r.expect("read")).collect();
    assert_eq!(all, vec![("p2".to_owned(), b"L2".to_vec()), ("p3".to_owned(), b"L3".to_vec())]);
}

#[test]
fn labels_batch_is_all_or_nothing_when_a_reader_races_it() {
    // A reader never sees a batch's labels without its marker or the other way round: apply_batch
    // is atomic for readers too. Write batches where every label value equals the marker.
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let writer = {
        let s = store.clone();
        std::thread::spawn(move || {
            for seq in 1..=200u64 {
                let v = seq.to_be_bytes();
                s.put_labels_batch([("a", Some(v)), ("b", Some(v)), ("c", Some(v))], seq).expect("put");
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let labels: Vec<(String, Vec<u8>)> = store.iter_labels().map(|r| r.expect("read")).collect();
        let values: std::collections::BTreeSet<Vec<u8>> = labels.into_iter().map(|(_, v)| v).collect();
        assert!(values.len() <= 1, "a batch was seen half-applied: {values:?}");
        checks += 1;
    }
    writer.join().expect("writer");
    assert_eq!(store.labels_through_seq().expect("marker"), 200);
}

#[test]
fn meta_round_trips_across_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        store.put_meta("projector.checkpoint.p3", &77u64.to_be_bytes()).expect("put");
        store.put_meta("gone", b"x").expect("put");
        assert!(store.delete_meta("gone").expect("delete"));
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.get_meta("projector.checkpoint.p3").expect("get"), Some(77u64.to_be_bytes().to_vec()));
    assert_eq!(store.get_meta("gone").expect("get"), None);
}

#[test]
fn a_bus_message_is_rejected_once_however_often_it_is_delivered() {
    let dir = TempDir::new().expect("tempdir");
    let on_bus = |raw: &'static [u8], seq: u64| Rejection { stream_seq: Some(seq), ..rejection(raw, "malformed") };
    {
        let store = Store::open(dir.path()).expect("open");
        // Message 7 twice in one batch, between two others; a file line has no stream sequence.
        let ids = store
            .reject_batch(&[on_bus(b"a", 7), rejection(b"f", "schema"), on_bus(b"a", 7), on_bus(b"b", 9)])
            .expect("reject");
        assert_eq!(ids, vec![1, 2, 1, 3]);
    }
    let store = Store::open(dir.path()).expect("reopen");
    // Redelivered after a restart: the same id, nothing stored; ids go on after the largest.
    assert_eq!(store.reject_batch(&[on_bus(b"b", 9), on_bus(b"c", 10)]).expect("reject"), vec![3, 4]);
    assert_eq!(store.reject(rejection(b"f", "schema")).expect("a file line again is kept again"), 5);
    let kept: Vec<_> = store.rejections().map(|r| r.expect("read")).map(|r| (r.id, r.raw)).collect();
    assert_eq!(kept, vec![(1, b"a".to_vec()), (2, b"f".to_vec()), (3, b"b".to_vec()), (4, b"c".to_vec()), (5, b"f".to_vec())]);
    let counts = store.rejection_count_by_reason().expect("counts");
    assert_eq!((counts["malformed"], counts["schema"]), (3, 2));
}

#[test]
fn the_bus_position_is_kept_as_the_largest_noted_and_survives_a_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        assert!(store.holds_nothing().expect("empty"));
        assert_eq!(store.bus_through("ingest").expect("read"), None);
        store.note_bus_through("ingest", 40).expect("note");
        store.note_bus_through("ingest", 12).expect("an older batch does not move it back");
        store.note_bus_through("projector-0", 5).expect("note");
        store.reject(rejection(b"x", "malformed")).expect("reject and flush");
        assert!(!store.holds_nothing().expect("a rejection"));
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.bus_through("ingest").expect("read"), Some(40));
    assert_eq!(store.bus_through("projector-0").expect("read"), Some(5));
}
