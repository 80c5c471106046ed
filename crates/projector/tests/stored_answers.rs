//! `Projector::stored_labels_line`: an answer read from a stored label record is exactly the
//! labels a fresh fold gives in that view, at every view date the record claims; and no answer
//! comes from a record that may be behind the log, from a record written before records carried
//! their range, or for a knowledge cut-off.

use chrono::{Days, NaiveDate};
use registry_domain::config::Config;
use registry_domain::projection::project_patient;
use registry_domain::synth::{generate, Profile, SynthConfig};
use registry_domain::view::View;
use registry_projector::{LabelRecord, Projector};
use registry_store::Store;

mod common;
use common::import;

fn shift(d: NaiveDate, k: i64) -> NaiveDate {
    if k >= 0 {
        d.checked_add_days(Days::new(k.unsigned_abs())).expect("date")
    } else {
        d.checked_sub_days(Days::new(k.unsigned_abs())).expect("date")
    }
}

/// Checks every stored answer against a fresh fold at the dates where a projection can change
/// (each event date and CBPD's limit, ±1 day) and a few others. Returns (answers, probes).
fn check_all(projector: &Projector, cfg: &Config, view_date: NaiveDate) -> (usize, usize) {
    let (mut answered, mut probes) = (0, 0);
    for patient in projector.store().patient_ids().expect("ids") {
        let pid = registry_domain::events::PatientId::parse(&patient).expect("pid");
        let events = projector.patient_events(&patient).expect("events");
        let site = events.iter().min_by_key(|e| e.seq).map(|e| e.event.site_id.as_str().to_owned());
        let mut dates = vec![view_date, shift(view_date, 400), NaiveDate::from_ymd_opt(2000, 1, 1).expect("date")];
        for e in &events {
            dates.extend([-1, 0, 1].map(|k| shift(e.event.occurred_on, k)));
        }
        if let Some(pd1) = project_patient(&pid, &events, &View { as_of: view_date, known_at: None }, cfg)
            .and_then(|p| p.labels.pd1.map(|p| p.date))
        {
            dates.extend([-1, 0, 1].map(|k| shift(pd1, cfg.cbpd_days + k)));
        }
        for d in dates {
            let view = View { as_of: d, known_at: None };
            probes += 1;
            if let Some((s, line)) = projector.stored_labels_line(&patient, &view).expect("lookup") {
                answered += 1;
                let fresh = project_patient(&pid, &events, &view, cfg).map(|p| p.labels.to_json_line());
                assert_eq!(Some(line), fresh, "patient {patient} at {d}: the stored answer differs from a fold");
                assert_eq!(Some(s), site, "patient {patient}: site");
            }
        }
        // The projector's own view date is always answered for a listed patient.
        if project_patient(&pid, &events, &View { as_of: view_date, known_at: None }, cfg).is_some() {
            let view = View { as_of: view_date, known_at: None };
            assert!(projector.stored_labels_line(&patient, &view).expect("lookup").is_some(), "{patient} at the view date");
        }
    }
    (answered, probes)
}

#[test]
fn stored_answers_equal_a_fresh_fold_and_are_refused_when_they_may_be_stale() {
    let cfg = Config::default();
    let cohort: Vec<_> = generate(&SynthConfig { patients: 120, seed: 11, profile: Profile::Ni2019 }).collect();
    let split = cohort.len() * 9 / 10;
    let view_date = Profile::Ni2019.data_cutoff();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let projector = Projector::new(store.clone(), cfg.clone());
    import(&store, &cohort[..split], 1_600_000_000_000_000);
    // Nothing projected yet: no answer.
    let first = store.patient_ids().expect("ids")[0].clone();
    let view = View { as_of: view_date, known_at: None };
    assert_eq!(projector.stored_labels_line(&first, &view).expect("lookup"), None);
    projector.catch_up(view_date).expect("rebuild");
    let (answered, probes) = check_all(&projector, &cfg, view_date);
    // Every listed patient answers at least the view date (checked inside); the dates around
    // its events are mostly outside the record's range and are refolded.
    let patients = store.patient_ids().expect("ids").len();
    assert!(answered >= patients && answered < probes, "{answered} of {probes} probes answered, {patients} patients");

    // Appended but not projected: every record may be behind, none answers.
    import(&store, &cohort[split..], 1_700_000_000_000_000);
    for patient in store.patient_ids().expect("ids") {
        assert_eq!(projector.stored_labels_line(&patient, &view).expect("lookup"), None, "{patient}: not caught up");
    }
    projector.catch_up(view_date).expect("incremental");
    let (answered, _) = check_all(&projector, &cfg, view_date);
    assert!(answered > 0);

    // A knowledge cut-off is always refolded.
    let known = View { as_of: view_date, known_at: Some(chrono::Utc::now()) };
    assert_eq!(projector.stored_labels_line(&first, &known).expect("lookup"), None);

    // `registry verify` checks the range and site too: a forged site (which would show the
    // patient to another site's token) is named.
    assert!(projector.verify(|_| {}).expect("verify").is_empty());
    let bytes = store.get_labels(&first).expect("get").expect("record");
    let mut record: LabelRecord = serde_json::from_slice(&bytes).expect("record");
    let mut forged = record.clone();
    if let Some(s) = forged.serves.as_mut() {
        s.site = "elsewhere".into();
    }
    store.put_labels_batch(vec![(first.as_str(), Some(serde_json::to_vec(&forged).expect("json")))], store.last_seq()).expect("put");
    let problems = projector.verify(|_| {}).expect("verify");
    assert!(problems.len() == 1 && problems[0].contains(&first) && problems[0].contains("site"), "{problems:?}");

    // A record written before records carried their range answers nothing (and verifies).
    assert!(record.serves.is_some());
    record.serves = None;
    let old = serde_json::to_vec(&record).expect("json");
    store.put_labels_batch(vec![(first.as_str(), Some(old))], store.last_seq()).expect("put");
    assert_eq!(projector.stored_labels_line(&first, &view).expect("lookup"), None);
    assert!(projector.verify(|_| {}).expect("verify").is_empty());
}
