//! What one patient's refold costs as its timeline lengthens, in its three parts: reading the
//! patient's events from the log (`Store::patient_events`: the chain walk and the frame reads),
//! decoding them, and folding them (`project_patient`). A refold the cache misses pays all three
//! over the whole timeline; a hit pays the fold (and the reads and decoding of the new events
//! only). The store holds BENCH_PATIENTS patients (default 1,000) whose follow-up contacts arrive
//! in turn, as in `scripts/bench --soak` with a fixed cohort, so one patient's frames are spread
//! over the log, not adjacent.
//!
//! Prints, for the timeline lengths reached, each part in µs per refold and per event, and the
//! read and decode parts as multiples of the fold (the baseline, measured in the same process).
//!
//! Run: `cargo bench -p registry-projector --bench timeline_cost` (BENCH_PATIENTS, BENCH_REPS).

use std::time::Instant;

/// The same allocator as the `registry` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use registry_domain::config::Config;
use registry_domain::events::{Event, Followup, FollowupStatus, Payload};
use registry_domain::projection::project_patient;
use registry_domain::stored;
use registry_domain::synth::{generate, Profile, SynthConfig};
use registry_domain::view::{RecordedEvent, View};
use registry_store::Store;

mod common;
use common::{append, env_usize};

/// When the bench's events were received (Unix µs).
const AT: i64 = 1_700_000_000_000_000;

/// Median of `reps` timings of `f`, in µs.
fn time_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let patients = env_usize("BENCH_PATIENTS", 1_000);
    let reps = env_usize("BENCH_REPS", 21);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let cohort: Vec<Event> = generate(&SynthConfig { patients, seed: 2019, profile: Profile::Ni2019 }).collect();
    append(&store, &cohort, AT);
    let dead: std::collections::HashSet<String> = cohort
        .iter()
        .filter(|e| matches!(e.payload, Payload::DeathRecorded(_)))
        .map(|e| e.patient_id.to_string())
        .collect();
    // One enrolment per patient: the follow-up contacts go to the living ones, in turn.
    let mut living: Vec<&Event> = cohort.iter().filter(|e| matches!(e.payload, Payload::PatientEnrolled(_))).collect();
    living.retain(|e| !dead.contains(e.patient_id.as_str()));
    let probe = living[0].patient_id.clone();
    let view = View::as_of(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"));
    let cfg = Config::default();
    let start = chrono::NaiveDate::from_ymd_opt(2021, 1, 1).expect("date");
    println!(
        "{} patients ({} living), {} events to start; follow-ups in turn; median of {reps} per figure",
        patients,
        living.len(),
        cohort.len()
    );
    println!("timeline   read µs (per ev)    decode µs (per ev)   fold µs (per ev)   read/fold  decode/fold");
    let mut rounds = 0usize;
    for target in [25usize, 50, 100, 200, 400, 800] {
        let own = store.patient_events(probe.as_str()).expect("read").len();
        let add = target.saturating_sub(own);
        for _ in 0..add {
            let day = start + chrono::Days::new(rounds as u64);
            let round: Vec<Event> = living
                .iter()
                .enumerate()
                .map(|(k, e)| Event {
                    event_id: uuid::Uuid::from_u128(((rounds as u128) << 32) | (k as u128) | (0x5EED << 96)),
                    patient_id: e.patient_id.clone(),
                    site_id: e.site_id.clone(),
                    occurred_on: day,
                    recorded_at: chrono::DateTime::parse_from_rfc3339(&format!("{}T09:00:00+08:00", day + chrono::Days::new(1)))
                        .expect("time"),
                    supersedes: None,
                    payload: Payload::FollowupRecorded(Followup { status: FollowupStatus::Alive }),
                })
                .collect();
            append(&store, &round, AT);
            rounds += 1;
        }
        let stored_events = store.patient_events(probe.as_str()).expect("read");
        let n = stored_events.len();
        let read = time_us(reps, || {
            std::hint::black_box(store.patient_events(probe.as_str()).expect("read"));
        });
        let decode = time_us(reps, || {
            for e in &stored_events {
                std::hint::black_box(stored::decode(&e.content).expect("decode"));
            }
        });
        let recorded: Vec<RecordedEvent> = stored_events
            .iter()
            .map(|e| RecordedEvent {
                event: stored::decode(&e.content).expect("decode"),
                seq: e.seq,
                received_at: chrono::DateTime::UNIX_EPOCH,
            })
            .collect();
        let fold = time_us(reps, || {
            std::hint::black_box(project_patient(&probe, &recorded, &view, &cfg));
        });
        let per = |us: f64| us / n as f64;
        println!(
            "{n:>8}   {read:>8.1} ({:>5.2})   {decode:>8.1} ({:>5.2})   {fold:>8.1} ({:>5.2})   {:>8.1}x  {:>8.1}x",
            per(read),
            per(decode),
            per(fold),
            read / fold,
            decode / fold
        );
    }
}
