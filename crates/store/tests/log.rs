//! The event log against real sled directories: idempotency, order, indexes, outbox, reopen.

use registry_store::{AppendOutcome, NewEvent, Store, StoreConfig, StoreError};
use tempfile::TempDir;

fn ev<'a>(id: &'a str, patient: &'a str, content: &'a [u8]) -> NewEvent<'a> {
    NewEvent {
        event_id: id,
        patient_id: patient,
        content,
        received_at_micros: 1_700_000_000_000_000,
    }
}

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path()).expect("open store")
}

#[test]
fn duplicate_is_acknowledged_and_stored_once_conflict_leaves_the_stored_event_untouched() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let first = store.append_batch(&[ev("e1", "p1", b"{\"a\":1}")]).expect("append");
    assert_eq!(first, vec![AppendOutcome::Accepted { seq: 1 }]);

    let again = store
        .append_batch(&[ev("e1", "p1", b"{\"a\":1}"), ev("e1", "p1", b"{\"a\":2}")])
        .expect("append");
    assert_eq!(
        again,
        vec![
            AppendOutcome::Duplicate { seq: 1 },
            AppendOutcome::Conflict { existing_seq: 1 }
        ]
    );
    assert_eq!(store.len(), 1);
    assert_eq!(store.get(1).expect("get").expect("present").content, b"{\"a\":1}");
}

#[test]
fn duplicates_and_conflicts_inside_one_batch_refer_to_the_first_occurrence() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let out = store
        .append_batch(&[
            ev("a", "p1", b"A"),
            ev("b", "p1", b"B"),
            ev("a", "p1", b"A"),
            ev("a", "p1", b"A-changed"),
            ev("c", "p2", b"C"),
        ])
        .expect("append");
    assert_eq!(
        out,
        vec![
            AppendOutcome::Accepted { seq: 1 },
            AppendOutcome::Accepted { seq: 2 },
            AppendOutcome::Duplicate { seq: 1 },
            AppendOutcome::Conflict { existing_seq: 1 },
            AppendOutcome::Accepted { seq: 3 },
        ]
    );
    let contents: Vec<Vec<u8>> = store
        .iter_from(1)
        .map(|e| e.expect("read").content)
        .collect();
    assert_eq!(contents, vec![b"A".to_vec(), b"B".to_vec(), b"C".to_vec()]);
    store.verify_chain(|_| {}).expect("chain verifies");
}

#[test]
fn duplicate_and_conflict_are_recognised_after_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = open(&dir);
        store.append_batch(&[ev("e1", "p1", b"one"), ev("e2", "p1", b"two")]).expect("append");
    }
    let store = open(&dir);
    assert_eq!(store.last_seq(), 2);
    let out = store
        .append_batch(&[ev("e2", "p1", b"two"), ev("e1", "p1", b"ONE"), ev("e3", "p1", b"three")])
        .expect("append");
    assert_eq!(
        out,
        vec![
            AppendOutcome::Duplicate { seq: 2 },
            AppendOutcome::Conflict { existing_seq: 1 },
            AppendOutcome::Accepted { seq: 3 },
        ]
    );
    assert_eq!(store.seq_of_event_id("e3").expect("lookup"), Some(3));
    store.verify_chain(|_| {}).expect("chain verifies across reopen");
}

#[test]
fn seq_order_is_numeric_past_255_and_iter_from_starts_where_asked() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let ids: Vec<String> = (0..600).map(|i| format!("ev-{i}")).collect();
    let bodies: Vec<String> = (0..600).map(|i| format!("body {i}")).collect();
    for chunk in (0..600).collect::<Vec<_>>().chunks(97) {
        let batch: Vec<NewEvent<'_>> = chunk
            .iter()
            .map(|&i| NewEvent {
                event_id: &ids[i],
                patient_id: "p",
                content: bodies[i].as_bytes(),
                received_at_micros: i as i64,
            })
            .collect();
        store.append_batch(&batch).expect("append");
    }
    let seqs: Vec<u64> = store.iter_from(1).map(|e| e.expect("read").seq).collect();
    assert_eq!(seqs, (1..=600).collect::<Vec<u64>>());
    let tail: Vec<_> = store.iter_from(255).take(3).map(|e| e.expect("read")).collect();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![255, 256, 257]);
    assert_eq!(tail[1].content, b"body 255");
    assert_eq!(tail[1].received_at_micros, 255);
    assert_eq!(store.iter_from(601).count(), 0);
    assert_eq!(store.get(600).expect("get").map(|e| e.content), Some(b"body 599".to_vec()));
    assert_eq!(store.get(601).expect("get"), None);
    assert_eq!(store.get(0).expect("get"), None);
}

#[test]
fn patient_index_separates_patients_whose_ids_are_prefixes_of_each_other() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    store
        .append_batch(&[
            ev("1", "A", b"a1"),
            ev("2", "AB", b"ab1"),
            ev("3", "A", b"a2"),
            ev("4", "B", b"b1"),
            ev("5", "A-1", b"a-1"),
        ])
        .expect("append");
    assert_eq!(store.patient_ids().expect("ids"), vec!["A", "A-1", "AB", "B"]);
    let a: Vec<(u64, Vec<u8>)> = store
        .patient_events("A")
        .expect("events")
        .into_iter()
        .map(|e| (e.seq, e.content))
        .collect();
    assert_eq!(a, vec![(1, b"a1".to_vec()), (3, b"a2".to_vec())]);
    assert_eq!(store.patient_events("AB").expect("events").len(), 1);
    assert!(store.patient_events("nobody").expect("events").is_empty());
    assert_eq!(store.verify_chain(|_| {}).expect("verify").patients, 4);
}

#[test]
fn invalid_keys_write_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    for bad in [ev("", "p", b"x"), ev("e", "", b"x"), ev("e", "p\0q", b"x")] {
        let err = store.append_batch(&[ev("ok", "p", b"fine"), bad]).expect_err("rejected");
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
    assert_eq!(store.len(), 0);
    assert_eq!(store.seq_of_event_id("ok").expect("lookup"), None);
}

#[test]
fn empty_batch_is_a_no_op() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    assert_eq!(store.append_batch(&[]).expect("append"), vec![]);
    assert!(store.is_empty());
    let report = store.verify_chain(|_| {}).expect("empty store verifies");
    assert_eq!(report.events, 0);
}

#[test]
fn outbox_holds_accepted_events_until_done_and_survives_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let config = StoreConfig { outbox: true, ..StoreConfig::default() };
    {
        let store = Store::open_with(dir.path(), &config).expect("open");
        let out = store
            .append_batch(&[ev("a", "p", b"A"), ev("b", "p", b"B"), ev("a", "p", b"A"), ev("a", "p", b"X")])
            .expect("append");
        assert_eq!(out.len(), 4);
        store.append_batch(&[ev("c", "p", b"C")]).expect("append");
        let pending: Vec<u64> = store.outbox_pending(10).expect("pending").iter().map(|e| e.seq).collect();
        assert_eq!(pending, vec![1, 2, 3], "duplicates and conflicts are not published");
        assert_eq!(store.outbox_pending(2).expect("pending").len(), 2);
        store.outbox_done(&[1, 3]).expect("done");
        store.flush().expect("flush");
    }
    let store = Store::open_with(dir.path(), &config).expect("reopen");
    let pending = store.outbox_pending(10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].seq, pending[0].content.as_slice()), (2, &b"B"[..]));
    assert_eq!(store.outbox_len().expect("len"), 1);
    assert_eq!(store.verify_chain(|_| {}).expect("verify").outbox_pending, 1);
    store.outbox_done(&[2]).expect("done");
    assert!(store.outbox_pending(10).expect("pending").is_empty());
}

#[test]
fn without_outbox_nothing_is_pending() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    store.append_batch(&[ev("a", "p", b"A")]).expect("append");
    assert!(store.outbox_pending(10).expect("pending").is_empty());
}

#[test]
fn a_second_open_of_the_same_directory_fails_with_a_clear_error() {
    let dir = TempDir::new().expect("tempdir");
    let _store = open(&dir);
    let err = Store::open(dir.path()).expect_err("locked");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{msg}");
    assert!(msg.contains("cannot open the store at"), "{msg}");
}

#[test]
fn a_directory_that_is_not_a_sled_database_fails_to_open_with_a_clear_error() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("conf"), b"garbage that is not sled's config").expect("write");
    std::fs::write(dir.path().join("db"), vec![0xAB; 4096]).expect("write");
    let err = Store::open(dir.path()).expect_err("corrupt");
    assert!(err.to_string().starts_with("cannot open the store at"), "{err}");
}

#[test]
fn store_is_usable_from_several_threads() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let id = format!("t{t}-{i}");
                    let body = format!("body {t} {i}");
                    s.append_batch(&[ev(&id, "p", body.as_bytes())]).expect("append");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(store.len(), 100);
    store.verify_chain(|_| {}).expect("verify");
}

#[test]
fn event_log_trait_works_over_the_sled_store() {
    use registry_store::EventLog;
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let log: &dyn EventLog = &store;
    log.append_batch(&[ev("a", "p", b"A")]).expect("append");
    assert_eq!(log.len(), 1);
    assert_eq!(log.iter_from(1).count(), 1);
    let mut seen = vec![];
    log.verify_chain(&mut |s| seen.push(s)).expect("verify");
    assert_eq!(seen, vec![1]);
}

#[test]
fn a_batch_larger_than_one_segment_is_split_and_reads_back_whole() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let big: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 1_500_000]).collect();
    let ids: Vec<String> = (0..5).map(|i| format!("big-{i}")).collect();
    let events: Vec<NewEvent<'_>> = ids.iter().zip(&big).map(|(id, c)| ev(id, "p", c)).collect();
    let out = store.append_batch(&events).expect("append");
    assert_eq!(out.last(), Some(&AppendOutcome::Accepted { seq: 5 }));
    for (i, c) in big.iter().enumerate() {
        assert_eq!(&store.get(i as u64 + 1).expect("get").expect("present").content, c);
    }
    let streamed: Vec<u64> = store.iter_from(2).map(|e| e.expect("event").seq).collect();
    assert_eq!(streamed, vec![2, 3, 4, 5]);
    assert_eq!(store.patient_events("p").expect("events").len(), 5);
    assert_eq!(store.verify_chain(|_| {}).expect("verify").events, 5);
}

#[test]
fn bytes_written_past_the_last_commit_are_cut_at_open_and_overwritten() {
    // A crash between writing a batch's segment bytes and committing its locators leaves bytes
    // after the committed end of the tail file; they must never be read as events.
    let dir = TempDir::new().expect("tempdir");
    let seg_file = dir.path().join("segments").join("00000000.seg");
    {
        let store = open(&dir);
        store.append_batch(&[ev("a", "p", b"{\"n\":1}")]).expect("append");
    }
    let committed = std::fs::metadata(&seg_file).expect("segment file").len();
    let mut bytes = std::fs::read(&seg_file).expect("read");
    bytes.extend_from_slice(&[0xAB; 4096]);
    std::fs::write(&seg_file, &bytes).expect("write garbage tail");
    // A file numbered after the tail (a roll whose batch never committed) is removed too.
    let orphan = dir.path().join("segments").join("00000001.seg");
    std::fs::write(&orphan, b"uncommitted").expect("orphan");
    let store = open(&dir);
    assert_eq!(std::fs::metadata(&seg_file).expect("segment file").len(), committed);
    assert!(!orphan.exists());
    store.append_batch(&[ev("b", "p", b"{\"n\":2}")]).expect("append after reopen");
    let all: Vec<Vec<u8>> = store.iter_from(1).map(|e| e.expect("event").content).collect();
    assert_eq!(all, vec![b"{\"n\":1}".to_vec(), b"{\"n\":2}".to_vec()]);
    assert_eq!(store.verify_chain(|_| {}).expect("verify").events, 2);
}

#[test]
fn a_store_in_the_older_one_key_per_event_layout_is_refused_with_a_clear_error() {
    let dir = TempDir::new().expect("tempdir");
    {
        let db = sled::open(dir.path()).expect("sled");
        db.open_tree("log").expect("tree").insert(b"L\0\0\0\0\0\0\0\x01", &b"x"[..]).expect("insert");
        db.flush().expect("flush");
    }
    let err = Store::open(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("layout 1"), "{err}");
}

#[test]
fn a_lazily_opened_store_streams_without_indexes_and_answers_like_an_eager_one() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = open(&dir);
        for b in 0..5 {
            let ids: Vec<String> = (0..40).map(|i| format!("e{b}-{i}")).collect();
            let pats: Vec<String> = (0..40).map(|i| format!("p{}", i % 7)).collect();
            let batch: Vec<NewEvent<'_>> =
                ids.iter().zip(&pats).map(|(id, p)| ev(id, p, id.as_bytes())).collect();
            store.append_batch(&batch).expect("append");
        }
    }
    let eager = open(&dir);
    let eager_all: Vec<_> = eager.iter_from(1).collect::<Result<_, _>>().expect("eager scan");
    let eager_p3 = eager.patient_events("p3").expect("eager patient");
    let eager_ids = eager.patient_ids().expect("eager ids");
    let eager_seq = eager.seq_of_event_id("e2-17").expect("eager seq");
    drop(eager);

    let lazy = Store::open_lazy(dir.path()).expect("open lazy");
    assert!(!lazy.indexes_built());
    assert_eq!(lazy.last_seq(), 200);
    let all: Vec<_> = lazy.iter_from(1).collect::<Result<_, _>>().expect("lazy scan");
    assert_eq!(all, eager_all);
    let tail: Vec<_> = lazy.iter_from(150).collect::<Result<_, _>>().expect("lazy tail");
    assert_eq!(tail, eager_all[149..]);
    assert!(!lazy.indexes_built(), "streaming must not build the indexes");
    assert_eq!(lazy.patient_events("p3").expect("lazy patient"), eager_p3);
    assert!(lazy.indexes_built());
    assert_eq!(lazy.patient_ids().expect("lazy ids"), eager_ids);
    assert_eq!(lazy.seq_of_event_id("e2-17").expect("lazy seq"), eager_seq);
}

#[test]
fn an_append_on_a_lazily_opened_store_sees_what_is_stored() {
    let dir = TempDir::new().expect("tempdir");
    open(&dir).append_batch(&[ev("e1", "p1", b"one")]).expect("append");
    let lazy = Store::open_lazy(dir.path()).expect("open lazy");
    let out = lazy.append_batch(&[ev("e1", "p1", b"one"), ev("e2", "p1", b"two")]).expect("append");
    assert_eq!(out, vec![AppendOutcome::Duplicate { seq: 1 }, AppendOutcome::Accepted { seq: 2 }]);
    assert_eq!(lazy.patient_events("p1").expect("events").len(), 2);
    assert_eq!(lazy.seq_of_event_id("e2").expect("seq"), Some(2));
}
