//! Synthetic cohort generator behind `registry synth` (`shared/spec/interfaces.md`).
//!
//! The generator writes *events only*, patient by patient, in the wire contract of
//! `shared/spec/events.md`; every label (response, PD1, pattern, clocks, flags) comes out of the
//! projection like for a real feed. The events are shaped so that the projection's labels land near
//! the figures of the study in `shared/seed/` (Ni et al., Radiation Oncology 2019;14:44), for the
//! only profile so far, [`Profile::Ni2019`]. `docs/synthetic-cohort.md` gives the design, the
//! targets, and the figures measured through the pipeline.
//!
//! Determinism: one `ChaCha8Rng` keyed by the seed; patient `i` draws from stream `i + 1`, the
//! cohort-level quotas from stream 0. No clock, no hash-map order. Event ids are v4-shaped UUIDs
//! from the RNG. Same config → byte-identical events.
//!
//! Scaling: the study's categorical counts (baseline brain metastases and their class, prior brain
//! radiotherapy, best response class, prior lines, sex, histology, ECOG 2, prior extracranial
//! radiotherapy, the messiness cases) are quotas scaled to `patients` by largest remainder and
//! shuffled; everything else is drawn per patient.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::{Builder, Uuid};

use crate::events::{
    Agent, AlkMethod, Death, DeathCause, Enrollment, Event, Followup, FollowupStatus, Histology, ImagedRegion, Imaging,
    ImagingModality, Lesion, LesionRole, LesionState, NStage, Organ, PatientId, Payload, Radiotherapy, ReportedResponse,
    Retraction, RtIntent, RtModality, RtRegion, Schedule, Sex, SiteId, StopReason, TStage, TreatmentStart, TreatmentStop,
};

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// A cohort shape. Only the study of the seed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Ni et al. 2019: 93 crizotinib-treated metastatic ALK+ NSCLC patients, FUSCC, cut-off 2018-05-31.
    #[default]
    Ni2019,
}

impl Profile {
    pub const ALL: [Profile; 1] = [Profile::Ni2019];

    /// Parses a profile name (`ni2019`, case-insensitive; `ni-2019` accepted).
    pub fn parse(s: &str) -> Option<Profile> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ni2019" | "ni-2019" | "ni_2019" => Some(Profile::Ni2019),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Ni2019 => "ni2019",
        }
    }

    /// The data cut-off of the profile: no clinical event of a generated cohort is dated later
    /// (events may be *recorded* a few days after it).
    pub fn data_cutoff(self) -> NaiveDate {
        match self {
            Profile::Ni2019 => NaiveDate::from_ymd_opt(2018, 5, 31).expect("valid constant date"),
        }
    }

    /// The cohort size the profile's figures refer to; quotas scale from it.
    pub fn reference_patients(self) -> usize {
        match self {
            Profile::Ni2019 => 93,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::parse(s).ok_or_else(|| format!("unknown synthetic cohort profile {s:?} (known: ni2019)"))
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    pub patients: usize,
    pub seed: u64,
    pub profile: Profile,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { patients: 93, seed: 2019, profile: Profile::Ni2019 }
    }
}

/// The cohort as a stream of events, patient by patient (`NI-00001` first); within a patient the
/// events come in the order the source systems recorded them (`recorded_at`). Memory is one
/// patient's events plus a few bytes of quota per patient.
pub fn generate(cfg: &SynthConfig) -> Cohort {
    Cohort { plan: CohortPlan::new(cfg), next: 0, buf: Vec::new().into_iter() }
}

/// Iterator returned by [`generate`].
pub struct Cohort {
    plan: CohortPlan,
    next: usize,
    buf: std::vec::IntoIter<Event>,
}

impl Cohort {
    /// Number of patients of the cohort.
    pub fn patients(&self) -> usize {
        self.plan.n
    }

    /// The events of patient `index` (0-based) alone; the same as the cohort's stream yields for
    /// that patient.
    pub fn patient_events(&self, index: usize) -> Vec<Event> {
        if index >= self.plan.n {
            return Vec::new();
        }
        Sim::new(&self.plan, index).run()
    }
}

impl Iterator for Cohort {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.buf.next() {
                return Some(e);
            }
            if self.next >= self.plan.n {
                return None;
            }
            let events = Sim::new(&self.plan, self.next).run();
            self.next += 1;
            self.buf = events.into_iter();
        }
    }
}

/// The registry patient id of the patient at `index` (0-based): `NI-00001`, …
pub fn patient_id_for(index: usize) -> String {
    format!("NI-{:05}", index + 1)
}

// ------------------------------------------------------------------------------------------------
// Cohort-level quotas
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrainCat {
    None,
    OligoSrs,
    OligoWbrt,
    OligoNoRt,
    MultSrs,
    MultWbrt,
    MultNoRt,
}

impl BrainCat {
    fn bbm(self) -> bool {
        self != BrainCat::None
    }
    fn oligo(self) -> bool {
        matches!(self, BrainCat::OligoSrs | BrainCat::OligoWbrt | BrainCat::OligoNoRt)
    }
    fn prior_rt(self) -> Option<RtModality> {
        match self {
            BrainCat::OligoSrs | BrainCat::MultSrs => Some(RtModality::Srs),
            BrainCat::OligoWbrt | BrainCat::MultWbrt => Some(RtModality::Wbrt),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    Cr,
    Pr,
    Sd,
    Pd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtRt {
    None,
    Thorax,
    Bone,
    Adrenal,
}

struct CohortPlan {
    n: usize,
    seed: u64,
    cutoff: NaiveDate,
    brain: Vec<BrainCat>,
    resp: Vec<Resp>,
    lines: Vec<u8>,
    male: Vec<bool>,
    adeno: Vec<bool>,
    ecog2: Vec<bool>,
    ext_rt: Vec<ExtRt>,
    lost: Vec<bool>,
    correction: Vec<bool>,
    duplicate: Vec<bool>,
    disagree: Vec<bool>,
    not_eval: Vec<bool>,
}

impl CohortPlan {
    fn new(cfg: &SynthConfig) -> CohortPlan {
        let n = cfg.patients;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(0);
        let r = &mut rng;
        // Counts of the study (per 93 patients).
        let brain = quota(
            n,
            &[
                (BrainCat::None, 58.0),
                (BrainCat::OligoSrs, 4.0),
                (BrainCat::OligoWbrt, 1.0),
                (BrainCat::OligoNoRt, 10.0),
                (BrainCat::MultSrs, 1.0),
                (BrainCat::MultWbrt, 5.0),
                (BrainCat::MultNoRt, 14.0),
            ],
            r,
        );
        let resp = quota(n, &[(Resp::Cr, 1.0), (Resp::Pr, 66.0), (Resp::Sd, 22.0), (Resp::Pd, 4.0)], r);
        let lines = quota(n, &[(0u8, 57.0), (1, 24.0), (2, 12.0)], r);
        let male = quota(n, &[(true, 55.0), (false, 38.0)], r);
        let adeno = quota(n, &[(true, 90.0), (false, 3.0)], r);
        let ecog2 = quota(n, &[(false, 88.0), (true, 5.0)], r);
        let ext_rt = quota(n, &[(ExtRt::None, 77.0), (ExtRt::Thorax, 10.0), (ExtRt::Bone, 5.0), (ExtRt::Adrenal, 1.0)], r);
        let lost = quota(n, &[(false, 90.0), (true, 3.0)], r);
        let correction = quota(n, &[(false, 91.0), (true, 2.0)], r);
        let duplicate = quota(n, &[(false, 91.0), (true, 2.0)], r);
        let disagree = quota(n, &[(false, 90.0), (true, 3.0)], r);
        let not_eval = quota(n, &[(false, 90.0), (true, 3.0)], r);
        CohortPlan {
            n,
            seed: cfg.seed,
            cutoff: cfg.profile.data_cutoff(),
            brain,
            resp,
            lines,
            male,
            adeno,
            ecog2,
            ext_rt,
            lost,
            correction,
            duplicate,
            disagree,
            not_eval,
        }
    }
}

/// `n` items with the given shares (largest remainder, ties by position), shuffled.
fn quota<T: Copy>(n: usize, shares: &[(T, f64)], rng: &mut ChaCha8Rng) -> Vec<T> {
    let total: f64 = shares.iter().map(|s| s.1).sum();
    let exact: Vec<f64> = shares.iter().map(|s| s.1 / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut rest = n.saturating_sub(counts.iter().sum::<usize>());
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.partial_cmp(&fa).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if rest == 0 {
            break;
        }
        counts[i] += 1;
        rest -= 1;
    }
    let mut v = Vec::with_capacity(n);
    for (i, &c) in counts.iter().enumerate() {
        v.extend(std::iter::repeat_n(shares[i].0, c));
    }
    v.shuffle(rng);
    v
}

// ------------------------------------------------------------------------------------------------
// Per-patient simulation
// ------------------------------------------------------------------------------------------------

/// One lesion of a patient (stable id across time points).
#[derive(Debug, Clone)]
struct Les {
    id: String,
    organ: Organ,
    primary: bool,
}

/// A lesion's listing at a time point.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Obs {
    Present(Option<f64>),
    Absent,
    NotEval,
    Unequiv(Option<f64>),
}

impl Obs {
    /// Size in sums and nadirs: absent counts as 0; `None` when not measured.
    fn size(self) -> Option<f64> {
        match self {
            Obs::Present(d) | Obs::Unequiv(d) => d,
            Obs::Absent => Some(0.0),
            Obs::NotEval => None,
        }
    }
    fn is_there(self) -> bool {
        matches!(self, Obs::Present(_) | Obs::Unequiv(_))
    }
}

/// One assessment time point: a CT (chest/abdomen) and, when the brain was imaged, a brain study
/// within a few days (or the brain covered by the CT).
#[derive(Debug, Clone)]
struct Tp {
    date: NaiveDate,
    brain_date: Option<NaiveDate>,
    brain_in_ct: bool,
    obs: Vec<Option<Obs>>,
    reported: Option<ReportedResponse>,
    seg: u8,
    pd: bool,
}

impl Tp {
    fn new(date: NaiveDate, seg: u8) -> Tp {
        Tp { date, brain_date: None, brain_in_ct: false, obs: Vec::new(), reported: None, seg, pd: false }
    }
    fn get(&self, i: usize) -> Option<Obs> {
        self.obs.get(i).copied().flatten()
    }
    fn set(&mut self, i: usize, o: Option<Obs>) {
        if self.obs.len() <= i {
            self.obs.resize(i + 1, None);
        }
        self.obs[i] = o;
    }
    fn brain_imaged(&self) -> bool {
        self.brain_date.is_some() || self.brain_in_ct
    }
}

/// What a progression looks like, decided before it is drawn.
#[derive(Debug, Clone, Copy)]
struct ProgPlan {
    orig_brain: bool,
    new_brain: bool,
    orig_extra: bool,
    new_extra: bool,
    brain_multiple: bool,
    /// Every grown lesion is called `unequivocal_progression` (segment 2: robust whatever targets).
    all_unequivocal: bool,
}

/// What a progression turned out to be.
#[derive(Debug, Clone, Default)]
struct ProgResult {
    /// Progressing original lesions.
    grown: Vec<usize>,
    /// New lesions.
    new: Vec<usize>,
}

/// Salvage radiotherapy candidate, as domain.md derives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate {
    Wbrt,
    Srs,
    Sbrt,
    None,
}

struct RtCourse {
    start: NaiveDate,
    modality: RtModality,
    region: RtRegion,
    lesions: Vec<usize>,
    end: NaiveDate,
    dose: f64,
    fractions: u32,
    intent: RtIntent,
}

struct Sim<'a> {
    plan: &'a CohortPlan,
    idx: usize,
    rng: ChaCha8Rng,
    pid: PatientId,
    site: SiteId,
    tz: FixedOffset,
    out: Vec<(DateTime<FixedOffset>, usize, Event)>,
    lesions: Vec<Les>,
    counters: [u32; 10],
    tps: Vec<Tp>,
    course_no: u32,
    rt_no: u32,
    rts: Vec<RtCourse>,
}

/// Day of month fraction etc. are not needed: all clinical dates are whole days.
fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(Duration::days(n)).unwrap_or(d)
}

fn days_between(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

const MONTH: f64 = 30.4375;

impl<'a> Sim<'a> {
    fn new(plan: &'a CohortPlan, idx: usize) -> Sim<'a> {
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        rng.set_stream(idx as u64 + 1);
        let site_roll: f64 = rng.random();
        let (site, tz_h) = if site_roll < 0.55 {
            ("fuscc", 8)
        } else if site_roll < 0.85 {
            ("pumch", 8)
        } else {
            ("demo", 0)
        };
        let tz = FixedOffset::east_opt(tz_h * 3600).unwrap_or(FixedOffset::east_opt(0).expect("UTC offset"));
        Sim {
            plan,
            idx,
            rng,
            pid: PatientId::parse(&patient_id_for(idx)).expect("generated patient ids match the contract"),
            site: SiteId::parse(site).expect("constant site ids match the contract"),
            tz,
            out: Vec::new(),
            lesions: Vec::new(),
            counters: [0; 10],
            tps: Vec::new(),
            course_no: 0,
            rt_no: 0,
            rts: Vec::new(),
        }
    }

    // ---- random helpers -----------------------------------------------------------------------

    fn unif(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.rng.random::<f64>()
    }
    fn days(&mut self, a: i64, b: i64) -> i64 {
        if b <= a {
            a
        } else {
            self.rng.random_range(a..=b)
        }
    }
    fn int(&mut self, a: u32, b: u32) -> u32 {
        if b <= a {
            a
        } else {
            self.rng.random_range(a..=b)
        }
    }
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }
    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    fn pick<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|i| i.1).sum();
        let mut x = self.rng.random::<f64>() * total;
        for &(t, w) in items {
            if x < w {
                return t;
            }
            x -= w;
        }
        items[items.len() - 1].0
    }
    fn size(&mut self, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
        self.lognormal(median, sigma).clamp(lo, hi).round()
    }
    fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        Builder::from_random_bytes(b).into_uuid()
    }

    // ---- events -------------------------------------------------------------------------------

    /// Records an event: recorded `lag` days (a range) after `occurred_on`, in working hours of the
    /// site's time zone.
    fn push(&mut self, occurred_on: NaiveDate, supersedes: Option<Uuid>, payload: Payload, lag: (i64, i64)) -> Uuid {
        let id = self.uuid();
        let lag = self.days(lag.0, lag.1);
        let secs = self.days(8 * 3600, 19 * 3600 + 59 * 60);
        let recorded_at = self.instant(add_days(occurred_on, lag), secs);
        self.push_at(id, occurred_on, recorded_at, supersedes, payload);
        id
    }

    fn instant(&self, day: NaiveDate, secs_local: i64) -> DateTime<FixedOffset> {
        let local: NaiveDateTime = day.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::seconds(secs_local);
        let utc = local - Duration::seconds(i64::from(self.tz.local_minus_utc()));
        DateTime::from_naive_utc_and_offset(utc, self.tz)
    }

    fn push_at(
        &mut self,
        id: Uuid,
        occurred_on: NaiveDate,
        recorded_at: DateTime<FixedOffset>,
        supersedes: Option<Uuid>,
        payload: Payload,
    ) {
        let seq = self.out.len();
        let event = Event {
            event_id: id,
            patient_id: self.pid.clone(),
            site_id: self.site.clone(),
            occurred_on,
            recorded_at,
            supersedes,
            payload,
        };
        self.out.push((recorded_at, seq, event));
    }

    fn next_course(&mut self) -> String {
        self.course_no += 1;
        format!("tx-{}", self.course_no)
    }

    fn start_course(&mut self, date: NaiveDate, agent: Agent) -> String {
        let course_id = self.next_course();
        let (dose_mg, schedule) = match agent {
            Agent::Crizotinib => (Some(250.0), Some(Schedule::Bid)),
            Agent::Alectinib => (Some(600.0), Some(Schedule::Bid)),
            Agent::Ceritinib => (Some(450.0), Some(Schedule::Qd)),
            Agent::Brigatinib => (Some(180.0), Some(Schedule::Qd)),
            _ => (None, None),
        };
        let payload = Payload::TreatmentStarted(TreatmentStart { course_id: course_id.clone(), agent, dose_mg, schedule });
        self.push(date, None, payload, (0, 3));
        course_id
    }

    fn stop_course(&mut self, date: NaiveDate, course_id: &str, agent: Agent, reason: StopReason) {
        let payload = Payload::TreatmentStopped(TreatmentStop { course_id: course_id.to_owned(), agent, reason });
        self.push(date, None, payload, (0, 4));
    }

    fn add_rt(&mut self, rt: RtCourse) {
        self.rts.push(rt);
    }

    // ---- lesions ------------------------------------------------------------------------------

    fn add_lesion(&mut self, organ: Organ, primary: bool) -> usize {
        let (slot, prefix) = match (organ, primary) {
            (Organ::Lung, true) => (0, 'P'),
            (Organ::Lung, false) => (1, 'L'),
            (Organ::RegionalLn, _) => (2, 'N'),
            (Organ::DistantLn, _) => (3, 'D'),
            (Organ::Brain, _) => (4, 'B'),
            (Organ::Bone, _) => (5, 'O'),
            (Organ::Liver, _) => (6, 'H'),
            (Organ::Adrenal, _) => (7, 'A'),
            (Organ::Pleura, _) => (8, 'E'),
            (Organ::Other, _) => (9, 'X'),
        };
        self.counters[slot] += 1;
        let id = format!("{prefix}{}", self.counters[slot]);
        self.lesions.push(Les { id, organ, primary });
        self.lesions.len() - 1
    }

    fn lesions_of(&self, organ: Organ) -> Vec<usize> {
        (0..self.lesions.len()).filter(|&i| self.lesions[i].organ == organ).collect()
    }

    /// RECIST 1.1 target choice (domain.md): measurable lesions, largest first, ≤ 2 per organ (all
    /// nodes one organ), ≤ 5 in all, ties by lesion id.
    fn select_targets(&self, tp: &Tp, among: &[usize]) -> Vec<usize> {
        let mut cands: Vec<(usize, f64)> = among
            .iter()
            .filter_map(|&i| match tp.get(i) {
                Some(Obs::Present(Some(d))) => {
                    let nodal = self.lesions[i].organ.is_nodal();
                    ((nodal && d >= 15.0) || (!nodal && d >= 10.0)).then_some((i, d))
                }
                _ => None,
            })
            .collect();
        cands.sort_by(|a, b| {
            b.1.partial_cmp(&a.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| self.lesions[a.0].id.as_bytes().cmp(self.lesions[b.0].id.as_bytes()))
        });
        let mut chosen = Vec::new();
        let mut per_organ: Vec<(u8, usize)> = Vec::new();
        for (i, _) in cands {
            if chosen.len() == 5 {
                break;
            }
            let key = if self.lesions[i].organ.is_nodal() { 100 } else { self.lesions[i].organ as u8 };
            let n = per_organ.iter().filter(|(k, _)| *k == key).count();
            if n < 2 {
                per_organ.push((key, i));
                chosen.push(i);
            }
        }
        chosen
    }

    fn sum_of(&self, tp: &Tp, targets: &[usize]) -> f64 {
        targets.iter().map(|&i| tp.get(i).and_then(Obs::size).unwrap_or(0.0)).sum()
    }

    // ---- the patient ------------------------------------------------------------------------------

    fn run(mut self) -> Vec<Event> {
        let plan = self.plan;
        let i = self.idx;
        let cutoff = plan.cutoff;
        let brain_cat = plan.brain[i];
        let resp = plan.resp[i];
        let lines = plan.lines[i];
        let adeno = plan.adeno[i];

        // ---- dates: follow-up from crizotinib start to the cut-off, median ≈ 22 months.
        let u: f64 = self.rng.random();
        let f_months = 2.0 + 50.5 * u.powf(1.22);
        let t0 = add_days(cutoff, -((f_months * MONTH).round() as i64));
        let prior_brain = brain_cat.prior_rt();
        let brain_rt_start = prior_brain.map(|m| match m {
            RtModality::Wbrt => add_days(t0, -self.days(30, 60)),
            _ => add_days(t0, -self.days(12, 60)),
        });
        let mut diag = match lines {
            0 => add_days(t0, -self.days(25, 75)),
            1 => add_days(t0, -self.days(150, 800)),
            _ => add_days(t0, -self.days(330, 1400)),
        };
        if let Some(s) = brain_rt_start {
            let latest = add_days(s, -self.days(5, 25));
            if latest < diag {
                diag = latest;
            }
        }

        // ---- demographics
        let age = (50.0 + 10.5 * self.normal()).round().clamp(21.0, 78.0) as i32;
        let birth_year = (diag.year() - age - i32::from(self.chance(0.4))) as u16;
        let sex = if plan.male[i] { Sex::Male } else { Sex::Female };
        let histology = if adeno {
            Histology::Adenocarcinoma
        } else {
            self.pick(&[(Histology::Squamous, 1.0), (Histology::Adenosquamous, 1.0), (Histology::Nos, 0.5), (Histology::LargeCell, 0.3)])
        };
        let ecog = if plan.ecog2[i] { 2 } else if self.chance(0.35) { 0 } else { 1 };
        let primary_size = self.size(35.0, 0.42, 9.0, 80.0);
        let mut t_stage = match primary_size {
            s if s <= 30.0 => TStage::T1,
            s if s <= 50.0 => TStage::T2,
            s if s <= 70.0 => TStage::T3,
            _ => TStage::T4,
        };
        if self.chance(0.25) {
            t_stage = TStage::T4;
        }
        let n_stage = self.pick(&[(NStage::N0, 9.7), (NStage::N1, 10.0), (NStage::N2, 40.0), (NStage::N3, 40.3)]);
        let alk_method = self.pick(&[(AlkMethod::Fish, 85.0), (AlkMethod::Ihc, 10.0), (AlkMethod::Ngs, 5.0)]);
        let enrolled_on = add_days(t0, -self.days(0, 10)).max(diag);
        let enrol = Payload::PatientEnrolled(Enrollment {
            diagnosis_date: diag,
            birth_year,
            sex,
            histology,
            ecog,
            t_stage,
            n_stage,
            primary_size_mm: primary_size,
            alk_method,
            prior_systemic_lines: lines,
        });
        self.push(enrolled_on, None, enrol, (0, 3));

        // ---- baseline disease
        let base = self.baseline_lesions(brain_cat, primary_size, lines, n_stage);
        let n_base = self.lesions.len();
        let base_sizes: Vec<Option<f64>> = base;

        // ---- prior systemic therapy (chemotherapy lines before crizotinib)
        if lines > 0 {
            let window_start = add_days(diag, self.days(10, 35));
            let window_end = add_days(t0, -self.days(21, 60));
            let span = days_between(window_start, window_end).max(30);
            let mut start = window_start;
            for l in 0..lines {
                let end = if l + 1 == lines {
                    window_end.max(add_days(start, 20))
                } else {
                    add_days(start, (span as f64 * self.unif(0.35, 0.6)) as i64)
                };
                let course = self.start_course(start, Agent::Chemotherapy);
                let reason = if self.chance(0.6) { StopReason::Progression } else { StopReason::Completed };
                self.stop_course(end, &course, Agent::Chemotherapy, reason);
                start = add_days(end, self.days(10, 28));
            }
        }

        // ---- prior radiotherapy
        let mut brain_rt_end = None;
        if let (Some(m), Some(s)) = (prior_brain, brain_rt_start) {
            let brain = self.lesions_of(Organ::Brain);
            let (lesions, end, dose, fr) = if m == RtModality::Wbrt {
                (Vec::new(), add_days(s, 13), 30.0, 10)
            } else {
                let mut b = brain.clone();
                b.sort_by(|&x, &y| {
                    base_sizes[y].unwrap_or(0.0).partial_cmp(&base_sizes[x].unwrap_or(0.0)).unwrap_or(std::cmp::Ordering::Equal)
                });
                b.truncate(3);
                let dose = if self.chance(0.5) { 18.0 } else { 20.0 };
                (b, s, dose, 1)
            };
            brain_rt_end = Some(end);
            let intent = if m == RtModality::Srs { RtIntent::Curative } else { RtIntent::Palliative };
            self.add_rt(RtCourse { start: s, modality: m, region: RtRegion::Brain, lesions, end, dose, fractions: fr, intent });
        }
        let ext = plan.ext_rt[i];
        if ext != ExtRt::None {
            let lo = if lines == 0 { add_days(diag, 3) } else { add_days(diag, 20) };
            let hi = add_days(t0, -10);
            let start = add_days(lo, self.days(0, days_between(lo, hi).max(0)));
            let rt = match ext {
                ExtRt::Thorax => {
                    let mut ids = vec![0usize];
                    ids.extend(self.lesions_of(Organ::RegionalLn));
                    if add_days(start, 48) < t0 && self.chance(0.6) {
                        RtCourse { start, modality: RtModality::Conventional, region: RtRegion::Thorax, lesions: ids, end: add_days(start, 41), dose: 60.0, fractions: 30, intent: RtIntent::Curative }
                    } else {
                        RtCourse { start, modality: RtModality::Conventional, region: RtRegion::Thorax, lesions: ids, end: add_days(start, 13), dose: 30.0, fractions: 10, intent: RtIntent::Palliative }
                    }
                }
                ExtRt::Bone => {
                    let b = self.lesions_of(Organ::Bone);
                    let ids = b.into_iter().take(1).collect();
                    if self.chance(0.3) {
                        RtCourse { start, modality: RtModality::Sbrt, region: RtRegion::Bone, lesions: ids, end: add_days(start, 6), dose: 35.0, fractions: 5, intent: RtIntent::Palliative }
                    } else {
                        RtCourse { start, modality: RtModality::Conventional, region: RtRegion::Bone, lesions: ids, end: add_days(start, 13), dose: 30.0, fractions: 10, intent: RtIntent::Palliative }
                    }
                }
                _ => {
                    let ids = self.lesions_of(Organ::Adrenal).into_iter().take(1).collect();
                    RtCourse { start, modality: RtModality::Sbrt, region: RtRegion::Adrenal, lesions: ids, end: add_days(start, 6), dose: 40.0, fractions: 5, intent: RtIntent::Consolidative }
                }
            };
            self.add_rt(rt);
        }

        // ---- crizotinib = T0
        let criz = self.start_course(t0, Agent::Crizotinib);

        // ---- baseline scans (within 42 days before T0)
        let ct_lo = add_days(t0, -35).max(diag);
        let ct_date = add_days(ct_lo, self.days(0, days_between(ct_lo, add_days(t0, -1)).max(0)));
        let mut tp0 = Tp::new(ct_date, 1);
        for (l, s) in base_sizes.iter().enumerate() {
            tp0.set(l, Some(Obs::Present(*s)));
        }
        if brain_cat.bbm() {
            let mut lo = add_days(t0, -40).max(diag);
            if let Some(e) = brain_rt_end {
                lo = lo.max(add_days(e, 2));
            }
            let hi = t0;
            let d = add_days(ct_date, self.days(-5, 5)).clamp(lo.min(hi), hi);
            tp0.brain_date = Some(d);
        } else if self.chance(0.5) {
            tp0.brain_date = Some(add_days(ct_date, self.days(0, 3)).min(t0));
        } else {
            tp0.brain_in_ct = true;
        }
        self.tps.push(tp0);
        let ref1: Vec<usize> = (0..n_base).collect();
        let targets1 = self.select_targets(&self.tps[0], &ref1);
        let s0 = self.sum_of(&self.tps[0], &targets1);
        let mark_roles = self.chance(0.3);

        // ---- latent times
        let organs_ge3 = {
            let mut organs: Vec<Organ> = self.lesions.iter().filter(|l| !l.primary && l.organ != Organ::RegionalLn).map(|l| l.organ).collect();
            organs.sort();
            organs.dedup();
            organs.len() >= 3
        };
        let mut pfs_median = match brain_cat {
            BrainCat::None => 16.3,
            c if c.prior_rt().is_some() => 20.0,
            _ => 6.2,
        };
        pfs_median *= match resp {
            Resp::Cr => 2.0,
            Resp::Pr => 1.15,
            _ => 0.6,
        };
        if organs_ge3 {
            pfs_median *= 0.8;
        }
        if !adeno {
            pfs_median *= 0.6;
        }
        if ecog == 2 {
            pfs_median *= 0.8;
        }
        let pfs1_days = (self.lognormal(pfs_median, 0.95) * MONTH).round() as i64;
        // death before any progression (other causes): rare
        let death_pre = {
            let u = 1.0 - self.rng.random::<f64>();
            add_days(t0, (-700.0 * u.ln() * MONTH) as i64 + 30)
        };
        let lost_on = if plan.lost[i] {
            let f_days = days_between(t0, cutoff);
            Some(add_days(t0, self.days(90.min(f_days - 5), (f_days - 20).max(91))).min(cutoff))
        } else {
            None
        };
        let mut death: Option<NaiveDate> = (death_pre <= cutoff && lost_on.is_none_or(|l| death_pre < l)).then_some(death_pre);
        // last day a scan or a treatment event can happen
        let limit_of = |death: Option<NaiveDate>| -> NaiveDate {
            let mut l = cutoff;
            if let Some(d) = death {
                l = l.min(add_days(d, -1));
            }
            if let Some(d) = lost_on {
                l = l.min(add_days(d, -1));
            }
            l
        };

        // ---- segment 1: response, then PD1
        let a = match resp {
            Resp::Cr | Resp::Pr => self.unif(0.03, 0.3),
            Resp::Sd => self.unif(0.0, 0.6),
            Resp::Pd => 1.0,
        };
        let tau = self.unif(30.0, 90.0);
        let r_patient = match resp {
            Resp::Cr => 0.0,
            Resp::Pr => self.unif(0.22, 0.62),
            Resp::Sd => self.unif(0.8, 0.98),
            Resp::Pd => 1.0,
        };
        let r: Vec<f64> = (0..n_base)
            .map(|l| {
                let mut x = match resp {
                    Resp::Cr => 0.0,
                    Resp::Pr => (r_patient * (0.2 * self.normal()).exp()).clamp(0.0, 0.95),
                    Resp::Sd => (r_patient * (0.08 * self.normal()).exp()).clamp(0.76, 1.0),
                    Resp::Pd => self.unif(0.92, 1.0),
                };
                if self.lesions[l].organ == Organ::Brain && prior_brain.is_some() && resp != Resp::Pd {
                    x *= 0.7;
                }
                x
            })
            .collect();
        let limit1 = limit_of(death);
        let first_day = self.days(42, 63);
        let mut date = add_days(t0, first_day);
        let mut pd1: Option<(usize, ProgResult)> = None;
        let bbm = brain_cat.bbm();
        loop {
            if date > limit1 {
                break;
            }
            let k = self.tps.len();
            let t = days_between(t0, date);
            let is_pd = match resp {
                Resp::Pd => k == 1,
                _ => k >= 2 && t >= pfs1_days,
            };
            let mut tp = Tp::new(date, 1);
            self.brain_imaging(&mut tp, bbm || self.has_brain_reference(), limit1);
            let prev = self.tps[k - 1].clone();
            tp.obs = prev.obs.clone();
            if is_pd {
                let prog = self.plan_pd1(brain_cat, self.tps.len());
                let res = self.progress(&mut tp, 1, &ref1, &targets1, prog, limit1);
                tp.pd = true;
                tp.reported = Some(ReportedResponse::PD);
                self.tps.push(tp);
                pd1 = Some((k, res));
                break;
            }
            let g = a * (-((t - first_day) as f64) / tau).exp();
            for l in 0..n_base {
                let o = match (prev.get(l), base_sizes[l]) {
                    (Some(Obs::Absent), _) => Obs::Absent,
                    (_, None) => {
                        if resp == Resp::Cr && k >= 2 {
                            Obs::Absent
                        } else {
                            Obs::Present(None)
                        }
                    }
                    (p, Some(d0)) => {
                        let nodal = self.lesions[l].organ.is_nodal();
                        let f = r[l] + (1.0 - r[l]) * g;
                        let mut d = (d0 * f).round();
                        if let Some(pd) = p.and_then(Obs::size) {
                            d = d.min(pd);
                        }
                        if nodal {
                            if resp == Resp::Cr && k >= 2 {
                                d = d.min(9.0);
                            }
                            Obs::Present(Some(d.max(5.0)))
                        } else if d < 3.0 || (resp == Resp::Cr && k >= 2) {
                            Obs::Absent
                        } else {
                            Obs::Present(Some(d))
                        }
                    }
                };
                tp.set(l, Some(o));
            }
            // keep the response class: responders are PR at the first assessment, SD never reaches
            // 30% shrinkage.
            let s = self.sum_of(&tp, &targets1);
            if matches!(resp, Resp::Pr | Resp::Cr) && k == 1 && s > 0.69 * s0 {
                for _ in 0..3 {
                    let s = self.sum_of(&tp, &targets1);
                    if s <= 0.69 * s0 || s <= 0.0 {
                        break;
                    }
                    let factor = 0.69 * s0 / s;
                    for &l in &targets1 {
                        if let Some(Obs::Present(Some(d))) = tp.get(l) {
                            let nodal = self.lesions[l].organ.is_nodal();
                            let nd = (d * factor).floor();
                            let o = if nodal {
                                Obs::Present(Some(nd.max(5.0)))
                            } else if nd < 3.0 {
                                Obs::Absent
                            } else {
                                Obs::Present(Some(nd))
                            };
                            tp.set(l, Some(o));
                        }
                    }
                }
            }
            if resp == Resp::Sd && s <= 0.7 * s0 + 0.5 {
                for &l in &targets1 {
                    tp.set(l, prev.get(l));
                }
            }
            self.tps.push(tp);
            date = add_days(date, self.days(42, 70));
        }

        // ---- after PD1: decisions, segment 2, PD2
        let mut active: Vec<(String, Agent)> = vec![(criz.clone(), Agent::Crizotinib)];
        let mut salvage_any = false;
        let mut pd2_at: Option<usize> = None;
        if let Some((k1, res1)) = pd1.clone() {
            let d1 = self.tps[k1].date;
            let cand = self.candidate(k1, &res1);
            // radiotherapy after PD1
            let rt_date = add_days(d1, self.days(7, 35));
            let salvage = match cand {
                Candidate::Wbrt => self.chance(0.42),
                Candidate::Srs => self.chance(0.45),
                Candidate::Sbrt => self.chance(0.3),
                Candidate::None => self.chance(0.04),
            };
            let cbpd = self.chance(0.67);
            let next_agent = if cbpd {
                None
            } else {
                self.pick(&[(Some(Agent::Alectinib), 3.0), (Some(Agent::Ceritinib), 2.0), (Some(Agent::Chemotherapy), 3.0), (None, 9.0)])
            };
            let any_rt_so_far = !self.rts.is_empty() || salvage;
            let mut os_med = 30.0;
            if any_rt_so_far {
                os_med *= 1.8;
            }
            if !cbpd && next_agent.is_none() {
                os_med *= 0.55;
            }
            let death_post = add_days(d1, (self.lognormal(os_med, 0.8) * MONTH) as i64 + 10);
            if death_post <= cutoff && lost_on.is_none_or(|l| death_post < l) && death.is_none_or(|d| death_post < d) {
                death = Some(death_post);
            }
            let limit2 = limit_of(death);
            let mut sys_start: Option<NaiveDate> = None;
            let mut irradiated: Vec<(usize, NaiveDate, f64)> = Vec::new();
            if salvage && rt_date <= limit2 {
                if let Some(rt) = self.salvage_course(cand, k1, &res1, rt_date) {
                    for &l in &rt.lesions {
                        let f = self.unif(0.3, 0.7);
                        irradiated.push((l, rt.start, f));
                    }
                    if rt.modality == RtModality::Wbrt {
                        for l in self.lesions_of(Organ::Brain) {
                            let f = self.unif(0.45, 0.85);
                            irradiated.push((l, rt.start, f));
                        }
                    }
                    self.add_rt(rt);
                    salvage_any = true;
                }
            }
            if !cbpd {
                let stop = add_days(d1, self.days(0, 10));
                if stop <= limit2 {
                    self.stop_course(stop, &criz, Agent::Crizotinib, StopReason::Progression);
                    active.clear();
                    if let Some(ag) = next_agent {
                        let st = add_days(stop, self.days(7, 28));
                        if st <= limit2 {
                            let c = self.start_course(st, ag);
                            active.push((c, ag));
                            sys_start = Some(st);
                        }
                    }
                }
            }
            let sys_factor = match (sys_start, next_agent) {
                (Some(_), Some(Agent::Chemotherapy)) => Some((0.75, 1.0)),
                (Some(_), Some(_)) => Some((0.4, 0.85)),
                _ => None,
            };
            let mut pfs2_med = 2.8;
            if cbpd {
                pfs2_med *= 2.2;
            }
            if salvage_any {
                pfs2_med *= 1.8;
            }
            match (cbpd, next_agent) {
                (_, Some(Agent::Chemotherapy)) => pfs2_med *= 1.0,
                (_, Some(_)) => pfs2_med *= 1.3,
                (false, None) => pfs2_med *= 0.8,
                (true, None) => {}
            }
            let pfs2_days = (self.lognormal(pfs2_med, 0.6) * MONTH).round() as i64;

            // segment 2 reference: every lesion not absent at PD1
            let ref2: Vec<usize> =
                (0..self.lesions.len()).filter(|&l| self.tps[k1].get(l).is_some_and(|o| o != Obs::Absent)).collect();
            let r2: Vec<(usize, f64, Option<NaiveDate>)> = {
                let mut v = Vec::new();
                for &l in &ref2 {
                    let mut f = 1.0;
                    let mut from = None;
                    for &(il, d, fi) in &irradiated {
                        if il == l && fi < f {
                            f = fi;
                            from = Some(d);
                        }
                    }
                    if let (Some((lo, hi)), Some(st)) = (sys_factor, sys_start) {
                        let fs = self.unif(lo, hi);
                        if fs < f {
                            f = fs;
                            from = Some(st);
                        }
                    }
                    v.push((l, f, from));
                }
                v
            };
            let interval = if !cbpd && next_agent.is_none() { (56, 91) } else { (42, 70) };
            // best supportive care: most are not imaged again; some others are followed elsewhere
            let imaging_stops = if !cbpd && next_agent.is_none() { self.chance(0.8) } else { self.chance(0.1) };
            let mut date = add_days(d1, self.days(interval.0, interval.1));
            loop {
                if date > limit2 || imaging_stops {
                    break;
                }
                let k = self.tps.len();
                let t2 = days_between(d1, date);
                let mut tp = Tp::new(date, 2);
                self.brain_imaging(&mut tp, self.has_brain_at(k1), limit2);
                let prev = self.tps[k - 1].clone();
                for l in 0..self.lesions.len() {
                    let o = match prev.get(l) {
                        Some(Obs::Unequiv(d)) => Some(Obs::Present(d)),
                        Some(Obs::NotEval) => None,
                        o => o,
                    };
                    // brain lesions need a brain study
                    let o = if self.lesions[l].organ == Organ::Brain && !tp.brain_imaged() { None } else { o };
                    tp.set(l, o);
                }
                for &(l, f, from) in &r2 {
                    let Some(from) = from else { continue };
                    if date <= from {
                        continue;
                    }
                    let Some(Obs::Present(Some(p1))) = self.tps[k1].get(l).map(|o| match o {
                        Obs::Unequiv(d) => Obs::Present(d),
                        o => o,
                    }) else {
                        continue;
                    };
                    let Some(Obs::Present(Some(prev_d))) = tp.get(l) else { continue };
                    let x = days_between(from, date) as f64;
                    let ff = 1.0 - (1.0 - f) * (1.0 - (-x / 40.0).exp());
                    let d = (p1 * ff).round().min(prev_d);
                    let o = if self.lesions[l].organ.is_nodal() {
                        Obs::Present(Some(d.max(5.0)))
                    } else if d < 3.0 {
                        Obs::Absent
                    } else {
                        Obs::Present(Some(d))
                    };
                    tp.set(l, Some(o));
                }
                if t2 >= pfs2_days {
                    let new_brain_p = if bbm || self.has_brain_at(k1) { 0.45 } else { 0.2 };
                    let use_new = self.chance(0.55);
                    let prog = ProgPlan {
                        orig_brain: false,
                        new_brain: use_new && self.chance(new_brain_p),
                        orig_extra: !use_new,
                        new_extra: false,
                        brain_multiple: self.chance(0.4),
                        all_unequivocal: true,
                    };
                    let prog = ProgPlan { new_extra: use_new && !prog.new_brain, ..prog };
                    let targets2 = self.select_targets(&self.tps[k1], &ref2);
                    self.progress(&mut tp, 2, &ref2, &targets2, prog, limit2);
                    tp.pd = true;
                    tp.reported = Some(ReportedResponse::PD);
                    self.tps.push(tp);
                    pd2_at = Some(k);
                    break;
                }
                self.tps.push(tp);
                date = add_days(date, self.days(interval.0, interval.1));
            }

            // treatment after PD2
            if let Some(k2) = pd2_at {
                let d2 = self.tps[k2].date;
                let stop = add_days(d2, self.days(0, 14));
                if stop <= limit2 {
                    let stopped: Vec<(String, Agent)> = std::mem::take(&mut active);
                    for (c, ag) in &stopped {
                        self.stop_course(stop, c, *ag, StopReason::Progression);
                    }
                    let p_next = if cbpd { 0.75 } else { 0.45 };
                    if self.chance(p_next) {
                        let used: Vec<Agent> = stopped.iter().map(|s| s.1).collect();
                        let mut ag = self.pick(&[
                            (Agent::Alectinib, 3.0),
                            (Agent::Ceritinib, 2.5),
                            (Agent::Brigatinib, 0.5),
                            (Agent::Chemotherapy, 4.0),
                        ]);
                        if used.contains(&ag) {
                            ag = Agent::Chemotherapy;
                        }
                        let st = add_days(stop, self.days(3, 21));
                        if st <= limit2 {
                            let c = self.start_course(st, ag);
                            active.push((c, ag));
                        }
                    }
                    // radiotherapy after PD2 (mostly brain)
                    if self.chance(0.15) {
                        let st = add_days(d2, self.days(7, 40));
                        if st <= limit2 {
                            let brain = self.lesions_of(Organ::Brain);
                            let rt = if !brain.is_empty() {
                                RtCourse { start: st, modality: RtModality::Wbrt, region: RtRegion::Brain, lesions: Vec::new(), end: add_days(st, 13), dose: 30.0, fractions: 10, intent: RtIntent::Palliative }
                            } else {
                                RtCourse { start: st, modality: RtModality::Conventional, region: RtRegion::Thorax, lesions: vec![0], end: add_days(st, 13), dose: 30.0, fractions: 10, intent: RtIntent::Palliative }
                            };
                            self.add_rt(rt);
                        }
                    }
                }
            }
        }

        // ---- palliative radiotherapy during crizotinib, before any progression
        let pre_pd_end = pd1.as_ref().map(|(k, _)| self.tps[*k].date).unwrap_or(limit_of(death));
        if self.chance(0.035) {
            let lo = add_days(t0, 30);
            if lo < pre_pd_end {
                let st = add_days(lo, self.days(0, days_between(lo, pre_pd_end) - 1));
                let bone = self.lesions_of(Organ::Bone);
                let (region, ids) = if bone.is_empty() { (RtRegion::Thorax, vec![0]) } else { (RtRegion::Bone, vec![bone[0]]) };
                self.add_rt(RtCourse { start: st, modality: RtModality::Conventional, region, lesions: ids, end: add_days(st, 4), dose: 20.0, fractions: 5, intent: RtIntent::Palliative });
            }
        }

        // ---- death
        if let Some(dd) = death {
            for (c, ag) in std::mem::take(&mut active) {
                self.stop_course(dd, &c, ag, StopReason::Death);
            }
            let cause = if pd1.is_some() {
                self.pick(&[(DeathCause::Disease, 9.0), (DeathCause::Unknown, 1.0)])
            } else {
                self.pick(&[(DeathCause::Other, 2.0), (DeathCause::Treatment, 1.0), (DeathCause::Unknown, 1.0), (DeathCause::Disease, 1.0)])
            };
            self.push(dd, None, Payload::DeathRecorded(Death { cause }), (0, 7));
        }

        // ---- follow-up contacts
        let end_alive = limit_of(death);
        let mut c = add_days(t0, self.days(60, 120));
        let mut last_contact = None;
        while c <= end_alive {
            self.push(c, None, Payload::FollowupRecorded(Followup { status: FollowupStatus::Alive }), (0, 2));
            last_contact = Some(c);
            c = add_days(c, self.days(70, 120));
        }
        if let Some(l) = lost_on.filter(|l| death.is_none_or(|d| *l < d)) {
            self.push(l, None, Payload::FollowupRecorded(Followup { status: FollowupStatus::LostToFollowUp }), (0, 5));
        } else if death.is_none() {
            let fin = add_days(cutoff, -self.days(0, 20)).max(t0);
            if last_contact.is_none_or(|lc| fin > lc) {
                self.push(fin, None, Payload::FollowupRecorded(Followup { status: FollowupStatus::Alive }), (0, 1));
            }
        }

        // ---- radiotherapy events
        let rts = std::mem::take(&mut self.rts);
        for rt in &rts {
            self.rt_no += 1;
            let ids: Vec<String> = rt.lesions.iter().map(|&l| self.lesions[l].id.clone()).collect();
            let payload = Payload::RadiotherapyDelivered(Radiotherapy {
                course_id: format!("rt-{}", self.rt_no),
                modality: rt.modality,
                region: rt.region,
                lesion_ids: (!ids.is_empty()).then_some(ids),
                end_date: Some(rt.end),
                total_dose_gy: rt.dose,
                fractions: rt.fractions,
                intent: Some(rt.intent),
            });
            self.push(rt.start, None, payload, (0, 3));
        }

        // ---- scans, with the odd messiness
        self.emit_scans(&targets1, s0, mark_roles, pd1.as_ref().map(|p| p.0));

        let mut out = std::mem::take(&mut self.out);
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        out.into_iter().map(|(_, _, e)| e).collect()
    }

    /// Baseline lesions (listed at the baseline scans); returns their diameters.
    fn baseline_lesions(&mut self, brain: BrainCat, primary_size: f64, lines: u8, n_stage: NStage) -> Vec<Option<f64>> {
        let mut sizes = Vec::new();
        let p = if lines == 0 { primary_size } else { (primary_size * self.unif(0.6, 1.0)).round() };
        self.add_lesion(Organ::Lung, true);
        sizes.push(Some(p.max(8.0)));
        let n_nodes = match n_stage {
            NStage::N0 | NStage::NX => 0,
            NStage::N1 => 1,
            NStage::N2 => self.int(1, 4),
            _ => self.int(2, 5),
        };
        for _ in 0..n_nodes {
            self.add_lesion(Organ::RegionalLn, false);
            let s = self.size(15.0, 0.3, 10.0, 35.0);
            sizes.push(Some(s));
        }
        let mut any_distant = brain.bbm();
        let organ_lesions = |sim: &mut Sim<'_>, organ: Organ, prev: f64, count: (u32, u32), med: f64, sig: f64, lo: f64, hi: f64, sizes: &mut Vec<Option<f64>>, measured: f64| {
            if sim.chance(prev) {
                let n = sim.int(count.0, count.1);
                for _ in 0..n {
                    sim.add_lesion(organ, false);
                    let s = if sim.chance(measured) { Some(sim.size(med, sig, lo, hi)) } else { None };
                    sizes.push(s);
                }
                true
            } else {
                false
            }
        };
        any_distant |= organ_lesions(self, Organ::Lung, 0.258, (1, 8), 8.0, 0.4, 4.0, 25.0, &mut sizes, 1.0);
        any_distant |= organ_lesions(self, Organ::Pleura, 0.18, (1, 4), 10.0, 0.4, 5.0, 25.0, &mut sizes, 1.0);
        any_distant |= organ_lesions(self, Organ::DistantLn, 0.2, (1, 4), 14.0, 0.25, 10.0, 28.0, &mut sizes, 1.0);
        any_distant |= organ_lesions(self, Organ::Liver, 0.161, (1, 5), 18.0, 0.4, 8.0, 50.0, &mut sizes, 1.0);
        let adrenal_forced = self.plan.ext_rt[self.idx] == ExtRt::Adrenal;
        let ap = if adrenal_forced { 1.0 } else { 0.14 };
        any_distant |= organ_lesions(self, Organ::Adrenal, ap, (1, 2), 20.0, 0.35, 10.0, 45.0, &mut sizes, 1.0);
        let bone_forced = self.plan.ext_rt[self.idx] == ExtRt::Bone;
        let bp = if bone_forced { 1.0 } else { 0.355 };
        let had_bone = organ_lesions(self, Organ::Bone, bp, (2, 10), 18.0, 0.35, 10.0, 45.0, &mut sizes, 0.6);
        if bone_forced && had_bone {
            // the irradiated bone lesion is the measurable, painful one
            let first_bone = self.lesions_of(Organ::Bone)[0];
            if sizes[first_bone].is_none() {
                sizes[first_bone] = Some(self.size(25.0, 0.25, 12.0, 45.0));
            }
        }
        any_distant |= had_bone;
        any_distant |= organ_lesions(self, Organ::Other, 0.05, (1, 1), 15.0, 0.3, 10.0, 30.0, &mut sizes, 1.0);
        if !any_distant {
            let organ = self.pick(&[(Organ::Bone, 3.0), (Organ::Pleura, 2.0), (Organ::Lung, 2.0), (Organ::Liver, 1.0)]);
            self.add_lesion(organ, false);
            let s = self.size(14.0, 0.3, 6.0, 30.0);
            sizes.push(Some(s));
        }
        // brain
        match brain {
            BrainCat::None => {}
            c if c.oligo() => {
                let n = self.pick(&[(1u32, 5.0), (2, 3.0), (3, 2.0)]);
                for _ in 0..n {
                    self.add_lesion(Organ::Brain, false);
                    let s = self.size(10.0, 0.45, 4.0, 28.0);
                    sizes.push(Some(s));
                }
            }
            _ => {
                if self.chance(0.65) {
                    let n = self.int(4, 12);
                    for _ in 0..n {
                        self.add_lesion(Organ::Brain, false);
                        let s = self.size(8.0, 0.45, 3.0, 25.0);
                        sizes.push(Some(s));
                    }
                } else {
                    let n = self.int(1, 3);
                    for j in 0..n {
                        self.add_lesion(Organ::Brain, false);
                        let s = if j == 0 { self.size(34.0, 0.15, 30.0, 50.0) } else { self.size(9.0, 0.4, 4.0, 20.0) };
                        sizes.push(Some(s));
                    }
                }
            }
        }
        // measurable disease is an inclusion criterion
        let measurable = sizes.iter().enumerate().any(|(l, s)| {
            s.is_some_and(|d| if self.lesions[l].organ.is_nodal() { d >= 15.0 } else { d >= 10.0 })
        });
        if !measurable {
            sizes[0] = Some(self.size(22.0, 0.3, 12.0, 40.0));
        }
        sizes
    }

    fn has_brain_reference(&self) -> bool {
        self.lesions.iter().any(|l| l.organ == Organ::Brain)
    }

    fn has_brain_at(&self, k: usize) -> bool {
        (0..self.lesions.len()).any(|l| self.lesions[l].organ == Organ::Brain && self.tps[k].get(l).is_some_and(Obs::is_there))
    }

    /// Decides the brain study of a follow-up time point: always with brain disease, now and then without.
    fn brain_imaging(&mut self, tp: &mut Tp, needed: bool, limit: NaiveDate) {
        if needed {
            let d = add_days(tp.date, self.days(0, 3)).min(limit).max(tp.date);
            tp.brain_date = Some(d);
        } else if self.chance(0.2) {
            if self.chance(0.5) {
                tp.brain_date = Some(add_days(tp.date, self.days(0, 3)).min(limit).max(tp.date));
            } else {
                tp.brain_in_ct = true;
            }
        }
    }

    fn plan_pd1(&mut self, brain: BrainCat, _k: usize) -> ProgPlan {
        let bbm = brain.bbm();
        let pattern = if bbm {
            self.pick(&[("OF", 0.66), ("ODF", 0.2), ("DF", 0.14)])
        } else {
            self.pick(&[("OF", 0.40), ("ODF", 0.32), ("DF", 0.28)])
        };
        let brain_pd = if bbm {
            let p = if brain.prior_rt().is_some() { 0.6 } else { 0.9 };
            self.chance(p)
        } else {
            match pattern {
                "OF" => false,
                "DF" => self.chance(0.65),
                _ => self.chance(0.8),
            }
        };
        let brain_multiple = match brain {
            BrainCat::None => self.chance(0.31),
            BrainCat::OligoSrs | BrainCat::OligoWbrt => self.chance(0.1),
            BrainCat::OligoNoRt => self.chance(0.45),
            _ => self.chance(0.95),
        };
        let orig_brain = bbm && brain_pd && pattern != "DF";
        let new_brain = brain_pd && (pattern == "DF" || (pattern == "ODF" && (!bbm || self.chance(0.5))));
        let extra_too = self.chance(0.3);
        let orig_extra = pattern != "DF" && (!orig_brain || extra_too);
        let new_extra_p = self.chance(0.2);
        let new_extra = pattern != "OF" && (!new_brain || new_extra_p);
        ProgPlan { orig_brain, new_brain, orig_extra, new_extra, brain_multiple, all_unequivocal: false }
    }

    /// Draws a progression at time point `tp` (its `obs` hold the previous values) in segment `seg`.
    fn progress(&mut self, tp: &mut Tp, seg: u8, reference: &[usize], targets: &[usize], plan: ProgPlan, limit: NaiveDate) -> ProgResult {
        let mut res = ProgResult::default();
        // own nadir of each lesion over the segment
        let seg_start = if seg == 1 { 0 } else { self.tps.iter().rposition(|t| t.seg == 1 && t.pd).unwrap_or(0) };
        let nadir = |sim: &Sim<'_>, l: usize| -> Option<f64> {
            sim.tps[seg_start..].iter().filter_map(|t| t.get(l).and_then(Obs::size)).reduce(f64::min)
        };
        let present = |tp: &Tp, l: usize| tp.get(l).is_some_and(Obs::is_there);
        let mut grown_sizes: Vec<(usize, f64, f64)> = Vec::new(); // lesion, nadir, new size
        let mut brain_count = 0u32;
        let mut brain_max: f64 = 0.0;

        let grow = |sim: &mut Sim<'_>, n: f64| -> f64 { n + 5.0_f64.max((0.2 * n).ceil()) + f64::from(sim.int(1, 6)) };

        // original brain lesions
        if plan.orig_brain {
            let mut cands: Vec<usize> =
                reference.iter().copied().filter(|&l| self.lesions[l].organ == Organ::Brain && present(tp, l)).collect();
            cands.sort_by(|&a, &b| {
                let sa = nadir(self, a).unwrap_or(0.0);
                let sb = nadir(self, b).unwrap_or(0.0);
                sa.partial_cmp(&sb).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
            });
            if !cands.is_empty() {
                let want = if plan.brain_multiple {
                    if plan.new_brain { self.int(1, 3) } else { self.int(4, 8) }
                } else if plan.new_brain {
                    1
                } else {
                    self.int(1, 3)
                };
                let take = (want as usize).min(cands.len());
                let chosen: Vec<usize> = cands[..take].to_vec();
                for (j, &l) in chosen.iter().enumerate() {
                    let n = nadir(self, l).unwrap_or(5.0);
                    let mut s = grow(self, n);
                    if !plan.brain_multiple {
                        s = s.min(29.0).max(n + 5.0);
                    } else if take < 4 && !plan.new_brain && j + 1 == take {
                        s = s.max(30.0 + f64::from(self.int(0, 10)));
                    }
                    grown_sizes.push((l, n, s));
                    brain_count += 1;
                    brain_max = brain_max.max(s);
                }
            }
        }
        // original extracranial lesions
        if plan.orig_extra || (plan.orig_brain && grown_sizes.is_empty() && !plan.new_brain && !plan.new_extra) {
            // a node under 10 mm at the segment's baseline is a normal node: it cannot progress
            let normal_node = |sim: &Sim<'_>, l: usize| {
                sim.lesions[l].organ.is_nodal()
                    && sim.tps[seg_start].get(l).and_then(Obs::size).is_none_or(|d| d < 10.0)
            };
            let cands: Vec<usize> = reference
                .iter()
                .copied()
                .filter(|&l| self.lesions[l].organ != Organ::Brain && present(tp, l) && !normal_node(self, l))
                .collect();
            if !cands.is_empty() {
                let n_organs = if self.chance(0.3) { 2 } else { 1 };
                let mut organs_done: Vec<(Organ, bool)> = Vec::new();
                for _ in 0..n_organs {
                    let weighted: Vec<(usize, f64)> = cands
                        .iter()
                        .filter(|&&l| !organs_done.contains(&(self.lesions[l].organ, self.lesions[l].primary)))
                        .map(|&l| {
                            let le = &self.lesions[l];
                            let w = match (le.organ, le.primary) {
                                (Organ::Lung, true) => 3.0,
                                (Organ::Lung, false) => 1.0,
                                (Organ::RegionalLn, _) => 0.5,
                                (Organ::DistantLn, _) => 1.5,
                                (Organ::Liver, _) => 1.5,
                                (Organ::Bone, _) => 0.3,
                                (Organ::Adrenal, _) => 0.6,
                                _ => 0.6,
                            };
                            (l, w)
                        })
                        .collect();
                    if weighted.is_empty() {
                        break;
                    }
                    let l = self.pick(&weighted);
                    organs_done.push((self.lesions[l].organ, self.lesions[l].primary));
                    let same: Vec<usize> = weighted
                        .iter()
                        .map(|w| w.0)
                        .filter(|&x| x != l && self.lesions[x].organ == self.lesions[l].organ && self.lesions[x].primary == self.lesions[l].primary)
                        .collect();
                    let mut chosen = vec![l];
                    if !same.is_empty() && self.chance(0.25) {
                        chosen.push(same[0]);
                    }
                    for l in chosen {
                        match nadir(self, l).filter(|_| tp.get(l).and_then(Obs::size).is_some()) {
                            Some(n) => {
                                let s = grow(self, n);
                                grown_sizes.push((l, n, s));
                            }
                            None => {
                                tp.set(l, Some(Obs::Unequiv(None)));
                                res.grown.push(l);
                            }
                        }
                    }
                }
            }
        }
        // write the grown lesions
        for &(l, _n, s) in &grown_sizes {
            let is_target = targets.contains(&l);
            let o = if is_target && !plan.all_unequivocal { Obs::Present(Some(s)) } else { Obs::Unequiv(Some(s)) };
            tp.set(l, Some(o));
            res.grown.push(l);
        }
        // new lesions
        if plan.new_brain {
            let n = if plan.brain_multiple {
                (4u32.saturating_sub(brain_count)).max(1) + self.int(0, 4)
            } else {
                let room = 3u32.saturating_sub(brain_count).max(1);
                self.int(1, room)
            };
            if tp.brain_date.is_none() && !tp.brain_in_ct {
                tp.brain_date = Some(add_days(tp.date, self.days(0, 3)).min(limit).max(tp.date));
            }
            for _ in 0..n {
                let l = self.add_lesion(Organ::Brain, false);
                let s = if plan.brain_multiple { self.size(7.0, 0.4, 3.0, 20.0) } else { self.size(8.0, 0.4, 4.0, 18.0) };
                tp.set(l, Some(Obs::Present(Some(s))));
                res.new.push(l);
            }
        }
        if plan.new_extra || (res.grown.is_empty() && res.new.is_empty()) {
            let n_organs = if self.chance(0.2) { 2 } else { 1 };
            for _ in 0..n_organs {
                let organ = self.pick(&[
                    (Organ::Bone, 3.5),
                    (Organ::Lung, 1.2),
                    (Organ::Liver, 1.0),
                    (Organ::Adrenal, 0.5),
                    (Organ::DistantLn, 1.0),
                    (Organ::RegionalLn, 0.6),
                    (Organ::Pleura, 0.8),
                    (Organ::Other, 0.6),
                ]);
                let n = self.pick(&[(1u32, 6.0), (2, 3.0), (3, 1.0)]);
                for _ in 0..n {
                    let l = self.add_lesion(organ, false);
                    let s = match organ {
                        Organ::Lung => Some(self.size(9.0, 0.3, 5.0, 18.0)),
                        Organ::Bone => {
                            if self.chance(0.75) {
                                Some(self.size(15.0, 0.3, 8.0, 30.0))
                            } else {
                                None
                            }
                        }
                        Organ::Liver => Some(self.size(15.0, 0.35, 8.0, 35.0)),
                        Organ::Adrenal => Some(self.size(18.0, 0.3, 10.0, 35.0)),
                        Organ::DistantLn | Organ::RegionalLn => Some(self.size(15.0, 0.25, 11.0, 28.0)),
                        _ => Some(self.size(12.0, 0.35, 6.0, 25.0)),
                    };
                    tp.set(l, Some(Obs::Present(s)));
                    res.new.push(l);
                }
            }
        }
        // overall PD must hold: without a new lesion or an unequivocal call, the target sum decides
        let unequivocal = res.grown.iter().any(|&l| matches!(tp.get(l), Some(Obs::Unequiv(_))));
        if res.new.is_empty() && !unequivocal {
            let seg_tps: Vec<&Tp> = self.tps[seg_start..].iter().collect();
            let nadir_sum = seg_tps
                .iter()
                .filter(|t| targets.iter().all(|&l| t.get(l).and_then(Obs::size).is_some()))
                .map(|t| self.sum_of(t, targets))
                .fold(f64::INFINITY, f64::min);
            let s = self.sum_of(tp, targets);
            if !(s >= 1.2 * nadir_sum && s - nadir_sum >= 5.0) {
                if let Some(&(l, _, sz)) = grown_sizes.iter().max_by(|a, b| (a.2 - a.1).partial_cmp(&(b.2 - b.1)).unwrap_or(std::cmp::Ordering::Equal)) {
                    tp.set(l, Some(Obs::Unequiv(Some(sz))));
                }
            }
        }
        res
    }

    /// Salvage candidate at PD1 as domain.md derives it from the progressing lesions.
    fn candidate(&self, k: usize, res: &ProgResult) -> Candidate {
        let tp = &self.tps[k];
        let lesions: Vec<usize> = res.grown.iter().chain(res.new.iter()).copied().collect();
        let size_of = |l: usize| -> Option<f64> {
            self.tps[..=k].iter().rev().find_map(|t| match t.get(l) {
                Some(Obs::Present(Some(d))) | Some(Obs::Unequiv(Some(d))) => Some(d),
                _ => None,
            })
        };
        let _ = tp;
        let brain: Vec<usize> = lesions.iter().copied().filter(|&l| self.lesions[l].organ == Organ::Brain).collect();
        let extra: Vec<usize> = lesions.iter().copied().filter(|&l| self.lesions[l].organ != Organ::Brain).collect();
        if !brain.is_empty() {
            let sizes: Vec<Option<f64>> = brain.iter().map(|&l| size_of(l)).collect();
            let oligo = brain.len() <= 3 && sizes.iter().all(|s| s.is_some_and(|d| d < 30.0));
            let prior_wbrt = self.rts.iter().any(|r| r.modality == RtModality::Wbrt && r.start < tp.date);
            if !oligo {
                return if prior_wbrt { Candidate::None } else { Candidate::Wbrt };
            }
            return Candidate::Srs;
        }
        if (1..=4).contains(&extra.len()) && extra.iter().all(|&l| size_of(l).is_some_and(|d| d <= 50.0)) {
            return Candidate::Sbrt;
        }
        Candidate::None
    }

    fn salvage_course(&mut self, cand: Candidate, k: usize, res: &ProgResult, start: NaiveDate) -> Option<RtCourse> {
        let lesions: Vec<usize> = res.grown.iter().chain(res.new.iter()).copied().collect();
        let brain: Vec<usize> = lesions.iter().copied().filter(|&l| self.lesions[l].organ == Organ::Brain).collect();
        let extra: Vec<usize> = lesions.iter().copied().filter(|&l| self.lesions[l].organ != Organ::Brain).collect();
        let _ = k;
        match cand {
            Candidate::Wbrt => Some(RtCourse { start, modality: RtModality::Wbrt, region: RtRegion::Brain, lesions: Vec::new(), end: add_days(start, 13), dose: 30.0, fractions: 10, intent: RtIntent::Salvage }),
            Candidate::Srs => {
                let fr = if self.chance(0.8) { 1 } else { 3 };
                let dose = if fr == 1 { if self.chance(0.5) { 18.0 } else { 20.0 } } else { 27.0 };
                Some(RtCourse { start, modality: RtModality::Srs, region: RtRegion::Brain, lesions: brain, end: add_days(start, i64::from(fr) - 1), dose, fractions: fr, intent: RtIntent::Salvage })
            }
            Candidate::Sbrt => {
                let first = *extra.first()?;
                let region = rt_region(self.lesions[first].organ);
                let ids: Vec<usize> = extra.iter().copied().filter(|&l| rt_region(self.lesions[l].organ) == region).collect();
                let (dose, fr) = self.pick(&[((40.0, 5u32), 2.0), ((30.0, 3), 1.0), ((50.0, 5), 1.0)]);
                Some(RtCourse { start, modality: RtModality::Sbrt, region, lesions: ids, end: add_days(start, i64::from(fr) * 2 - 2), dose, fractions: fr, intent: RtIntent::Salvage })
            }
            Candidate::None => {
                if let Some(&l) = extra.first() {
                    let region = rt_region(self.lesions[l].organ);
                    Some(RtCourse { start, modality: RtModality::Conventional, region, lesions: vec![l], end: add_days(start, 13), dose: 30.0, fractions: 10, intent: RtIntent::Palliative })
                } else if !brain.is_empty() {
                    let mut b = brain;
                    b.truncate(3);
                    Some(RtCourse { start, modality: RtModality::Srs, region: RtRegion::Brain, lesions: b, end: start, dose: 18.0, fractions: 1, intent: RtIntent::Salvage })
                } else {
                    None
                }
            }
        }
    }

    /// The reader's response at a segment-1 time point before PD1, by RECIST as domain.md states it.
    fn seg1_response(&self, k: usize, targets: &[usize], s0: f64, normal_nodes: &[usize]) -> ReportedResponse {
        let tp = &self.tps[k];
        if targets.iter().any(|&l| tp.get(l).and_then(Obs::size).is_none()) {
            return ReportedResponse::NE;
        }
        let tgt_cr = targets.iter().all(|&l| match tp.get(l) {
            Some(Obs::Absent) => true,
            Some(Obs::Present(Some(d))) => self.lesions[l].organ.is_nodal() && d < 10.0,
            _ => false,
        });
        let s = self.sum_of(tp, targets);
        let n_base = self.tps[0].obs.len();
        let non_targets: Vec<usize> = (0..n_base).filter(|l| !targets.contains(l) && !normal_nodes.contains(l)).collect();
        let nt_cr = non_targets.iter().all(|&l| match tp.get(l) {
            Some(Obs::Absent) => true,
            Some(Obs::Present(Some(d))) => self.lesions[l].organ.is_nodal() && d < 10.0,
            _ => false,
        });
        if tgt_cr && nt_cr {
            ReportedResponse::CR
        } else if tgt_cr || s <= 0.7 * s0 {
            ReportedResponse::PR
        } else {
            ReportedResponse::SD
        }
    }

    fn emit_scans(&mut self, targets1: &[usize], s0: f64, mark_roles: bool, pd1: Option<usize>) {
        let i = self.idx;
        let n_tp = self.tps.len();
        let n_base = self.tps[0].obs.len();
        let normal_nodes: Vec<usize> = (0..n_base)
            .filter(|&l| self.lesions[l].organ.is_nodal() && matches!(self.tps[0].get(l), Some(Obs::Present(Some(d))) if d < 10.0))
            .collect();
        let last_pre = pd1.unwrap_or(n_tp);
        // messiness: a non-target not evaluated at one time point
        if self.plan.not_eval[i] && last_pre > 1 {
            let k = self.int(1, (last_pre - 1) as u32) as usize;
            let cands: Vec<usize> = (0..n_base)
                .filter(|l| !targets1.contains(l) && !normal_nodes.contains(l) && self.lesions[*l].organ != Organ::Brain)
                .filter(|&l| matches!(self.tps[k].get(l), Some(Obs::Present(_))))
                .collect();
            if let Some(&l) = cands.first() {
                self.tps[k].set(l, Some(Obs::NotEval));
            }
        }
        // reported responses before PD1 (computed), now and then
        for k in 1..last_pre {
            if self.chance(0.5) {
                let r = self.seg1_response(k, targets1, s0, &normal_nodes);
                self.tps[k].reported = Some(r);
            }
        }
        if self.plan.disagree[i] && last_pre > 1 {
            let k = self.int(1, (last_pre - 1) as u32) as usize;
            let r = self.seg1_response(k, targets1, s0, &normal_nodes);
            self.tps[k].reported = Some(match r {
                ReportedResponse::PR | ReportedResponse::CR => ReportedResponse::SD,
                _ => ReportedResponse::PR,
            });
        }
        let correction_at = (self.plan.correction[i] && last_pre > 1).then(|| self.int(1, (last_pre - 1) as u32) as usize);
        let duplicate_at = (self.plan.duplicate[i] && n_tp > 1).then(|| self.int(1, (n_tp - 1) as u32) as usize);
        let cutoff = self.plan.cutoff;

        for k in 0..n_tp {
            let tp = self.tps[k].clone();
            let mut ct_lesions = Vec::new();
            let mut brain_lesions = Vec::new();
            for l in 0..self.lesions.len() {
                let Some(o) = tp.get(l) else { continue };
                let le = &self.lesions[l];
                let (state, d) = match o {
                    Obs::Present(d) => (LesionState::Present, d),
                    Obs::Absent => (LesionState::Absent, None),
                    Obs::NotEval => (LesionState::NotEvaluated, None),
                    Obs::Unequiv(d) => (LesionState::UnequivocalProgression, d),
                };
                let role = (k == 0 && mark_roles && targets1.contains(&l)).then_some(LesionRole::Target);
                let lesion = Lesion { lesion_id: le.id.clone(), organ: le.organ, primary: le.primary, diameter_mm: d, state, role };
                if le.organ == Organ::Brain && tp.brain_date.is_some() {
                    brain_lesions.push(lesion);
                } else if le.organ != Organ::Brain || tp.brain_in_ct {
                    ct_lesions.push(lesion);
                }
            }
            let mut regions = vec![ImagedRegion::Chest, ImagedRegion::Abdomen];
            if self.chance(0.3) {
                regions.push(ImagedRegion::Pelvis);
            }
            if tp.brain_in_ct {
                regions.push(ImagedRegion::Brain);
            }
            let modality = if k == 0 && self.chance(0.1) { ImagingModality::PetCt } else { ImagingModality::Ct };
            let ct = Imaging { modality, regions, lesions: ct_lesions, reported_response: tp.reported };
            if correction_at == Some(k) {
                // a mis-measured diameter, corrected two weeks later
                let mut wrong = ct.clone();
                if let Some(les) = wrong.lesions.iter_mut().find(|le| le.diameter_mm.is_some_and(|d| d >= 5.0) && le.state == LesionState::Present) {
                    let d = les.diameter_mm.unwrap_or(0.0);
                    les.diameter_mm = Some(d + f64::from(self.int(15, 30)));
                }
                wrong.reported_response = None;
                let orig = self.push(tp.date, None, Payload::ImagingAssessed(wrong), (0, 2));
                let id = self.uuid();
                let lag = self.days(7, 21);
                let secs = self.days(8 * 3600, 19 * 3600);
                let at = self.instant(add_days(tp.date, lag), secs);
                self.push_at(id, tp.date, at, Some(orig), Payload::ImagingAssessed(ct.clone()));
            } else {
                let first = self.push(tp.date, None, Payload::ImagingAssessed(ct.clone()), (0, 3));
                if duplicate_at == Some(k) {
                    // the same study sent twice by the site; the copy is retracted a few days later
                    let (rec, _, _) = self.out[self.out.len() - 1].clone();
                    let dup = self.uuid();
                    let at = rec + Duration::minutes(self.days(2, 180));
                    self.push_at(dup, tp.date, at, None, Payload::ImagingAssessed(ct.clone()));
                    let on = add_days(tp.date, self.days(3, 12)).min(cutoff).max(tp.date);
                    let reason = format!("duplicate of {}", first.hyphenated());
                    self.push(on, None, Payload::EventRetracted(Retraction { target_event_id: dup, reason }), (0, 1));
                }
            }
            if let Some(bd) = tp.brain_date {
                let modality = if self.chance(0.85) { ImagingModality::Mri } else { ImagingModality::Ct };
                let mri = Imaging { modality, regions: vec![ImagedRegion::Brain], lesions: brain_lesions, reported_response: None };
                self.push(bd, None, Payload::ImagingAssessed(mri), (0, 3));
            }
        }
    }
}

fn rt_region(organ: Organ) -> RtRegion {
    match organ {
        Organ::Lung | Organ::Pleura | Organ::RegionalLn => RtRegion::Thorax,
        Organ::Bone => RtRegion::Bone,
        Organ::Liver => RtRegion::Liver,
        Organ::Adrenal => RtRegion::Adrenal,
        Organ::DistantLn => RtRegion::LymphNode,
        Organ::Brain => RtRegion::Brain,
        Organ::Other => RtRegion::Other,
    }
}
