//! The projection: a patient's events in view → labels, findings and what the alerts need.
//! A pure function of the set of events in view ([`project_patient`]).

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::config::Config;
use crate::events::{Agent, Enrollment, Event, FollowupStatus, Organ, PatientId, Payload, RtRegion};
use crate::findings::{normalise, Finding, FindingKind};
use crate::labels::{Baseline, Clock, ClockReason, Labels, NextTherapy, Progression, Response, RtFlags, Status};
use crate::recist::{self, Group, RtCourse, Studies, TpEval, TpResponse};
use crate::view::{counted_events, RecordedEvent, View};

/// A time point's computed overall response, for timelines and reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimePointResponse {
    pub date: NaiveDate,
    /// 1 (T0 to PD1) or 2 (PD1 to PD2).
    pub segment: u8,
    pub response: Response,
    /// S at the time point: the segment's target lesions' diameters (absent = 0 mm; a target not
    /// evaluated adds nothing), in mm to 0.001 as the labels' `target_sum_mm`. `None` when the
    /// segment has no target lesion.
    pub target_sum_mm: Option<f64>,
    /// Whether every target lesion of the segment was evaluated at the time point (true without
    /// targets). When false, `target_sum_mm` is a partial sum.
    pub all_targets_evaluated: bool,
}

/// Everything derived for one patient in one view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientProjection {
    pub patient_id: PatientId,
    pub labels: Labels,
    /// Data-quality findings, sorted by (kind, event_id, message).
    pub findings: Vec<Finding>,
    /// Evaluated time points (segment 1 up to PD1, segment 2 up to PD2), in date order.
    pub timepoints: Vec<TimePointResponse>,
    /// Date of the last assessment: last time point after T0, else the baseline scan, else T0.
    /// `None` without T0. Drives `followup_overdue`.
    pub last_assessment: Option<NaiveDate>,
    /// The latest follow-up record says lost to follow-up and nothing clinical came after it.
    pub lost_to_follow_up: bool,
    /// The `patient.enrolled` that counts in the view (the first in canonical order; `domain.md`,
    /// "Which events count"): the enrolment facts behind `diagnosis_date` and `status`.
    pub enrollment: Option<Enrollment>,
    /// Organs of the baseline's metastatic lesions (non-primary reference lesions, normal nodes
    /// excluded), distinct, sorted by name: the organs behind `baseline.metastatic_organs`.
    /// `None` without a baseline.
    pub baseline_metastatic_sites: Option<Vec<Organ>>,
    /// S0 of segment 2: the target lesions re-chosen at PD1, measured at the PD1 time point, in
    /// mm to 0.001. `None` without PD1 or when segment 2 has no target lesion.
    pub pd1_target_sum_mm: Option<f64>,
}

/// A sum in mm as shown: to 0.001 mm, so that float noise of a sum (41.1 + 42.2) never reaches
/// the JSON.
fn round_mm(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MAX)
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap_or(NaiveDate::MIN)
    }
}

/// The view dates `[from, until)` around `d` over which the projection of a patient in view
/// (`d`, known_at none) — `p`, `None` when the patient is not listed — is exactly the same
/// (`None` bounds: unbounded). `own_dates` are the `occurred_on` dates of the patient's own
/// events, sorted and distinct.
///
/// Why this is exact: the projection reads the view date in two places only — which events are
/// in view (`occurred_on ≤ d`) and CBPD's comparison `PD1 + cbpd_days ≤ d` — so it cannot change
/// between two consecutive event dates on the same side of CBPD's limit (docs/report.md,
/// "Snapshot"). The report snapshot and the projector's stored label records both use it.
pub fn exact_range(
    own_dates: &[NaiveDate],
    d: NaiveDate,
    p: Option<&PatientProjection>,
    cfg: &Config,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let i = own_dates.partition_point(|x| *x <= d);
    let mut from = i.checked_sub(1).map(|i| own_dates[i]);
    let mut until = own_dates.get(i).copied();
    if let Some(pd1) = p.and_then(|p| p.labels.pd1.as_ref()) {
        let limit = add_days(pd1.date, cfg.cbpd_days);
        if limit <= d {
            from = Some(from.map_or(limit, |f| f.max(limit)));
        } else {
            until = Some(until.map_or(limit, |u| u.min(limit)));
        }
    }
    (from, until)
}

/// Projects one patient. `events` may hold other patients' events (used only to recognise links
/// to another patient's event), duplicates and any order. `None` when the patient is not listed
/// in this view (`domain.md`, "Patients listed").
pub fn project_patient(
    patient_id: &PatientId,
    events: &[RecordedEvent],
    view: &View,
    cfg: &Config,
) -> Option<PatientProjection> {
    let counted = counted_events(patient_id, events, view)?;
    let mut findings = counted.findings;
    let evs: &[&Event] = &counted.events;

    let enrolment = evs.iter().find_map(|e| match &e.payload {
        Payload::PatientEnrolled(p) => Some(p),
        _ => None,
    });
    let death = evs.iter().find(|e| matches!(e.payload, Payload::DeathRecorded(_)));
    let death_date = death.map(|e| e.occurred_on);
    let diagnosis_date = enrolment.map(|p| p.diagnosis_date);
    let t0 = evs.iter().find_map(|e| match &e.payload {
        Payload::TreatmentStarted(t) if t.agent == Agent::Crizotinib => Some(e.occurred_on),
        _ => None,
    });
    let status = match (enrolment, t0) {
        (None, _) => Status::Incomplete,
        (Some(_), None) => Status::NotIndexed,
        (Some(_), Some(_)) => Status::Indexed,
    };
    let scans: Vec<(NaiveDate, uuid::Uuid, &crate::events::Imaging)> = evs
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ImagingAssessed(img) => Some((e.occurred_on, e.event_id, img)),
            _ => None,
        })
        .collect();
    let studies = Studies::new(&scans);
    let rt: Vec<(NaiveDate, &crate::events::Radiotherapy)> = evs
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::RadiotherapyDelivered(r) => Some((e.occurred_on, r)),
            _ => None,
        })
        .collect();
    let rt_courses: Vec<RtCourse> = rt.iter().map(|(d, r)| RtCourse { date: *d, modality: r.modality }).collect();

    // Data quality on scans.
    for s in &studies.list {
        if let Some(d) = death_date.filter(|d| s.date > *d) {
            findings.push(Finding::new(
                FindingKind::ScanAfterDeath,
                s.event_id,
                format!("imaging dated {} after the death on {d}", s.date),
            ));
        }
        if let Some(d) = diagnosis_date.filter(|d| s.date < *d) {
            findings.push(Finding::new(
                FindingKind::ScanBeforeDiagnosis,
                s.event_id,
                format!("imaging dated {} before the diagnosis on {d}", s.date),
            ));
        }
    }

    // Baseline, time points, segments.
    let n = studies.list.len();
    let mut baseline_group: Option<Group> = None;
    let mut tps: Vec<Group> = Vec::new();
    if let Some(t0) = t0 {
        let from = add_days(t0, -cfg.baseline_window_days);
        let first = studies.list.iter().position(|s| s.date >= from).unwrap_or(n);
        let after = studies.list.iter().position(|s| s.date > t0).unwrap_or(n);
        if first < after {
            let date = studies.list[after - 1].date;
            baseline_group = Some(studies.make_group(date, first, after - 1));
        }
        tps = studies.group(after..n, cfg.timepoint_window_days);
    }

    let mut baseline = None;
    let mut seg1_evals: Vec<TpEval> = Vec::new();
    let mut seg2_evals: Vec<TpEval> = Vec::new();
    let mut pd1: Option<Progression> = None;
    let mut pd2: Option<Progression> = None;
    let mut pd1_tp: Option<usize> = None;
    let mut baseline_metastatic_sites: Option<Vec<Organ>> = None;
    let mut pd1_target_sum_mm: Option<f64> = None;
    if let Some(bg) = &baseline_group {
        let seg1 = recist::segment1(bg);
        let brain: Vec<Option<f64>> = seg1
            .lesions
            .iter()
            .filter(|(_, l)| l.organ == crate::events::Organ::Brain)
            .map(|(id, _)| studies.size_at(*id, bg.last))
            .collect();
        let mets: Vec<&recist::RefLesion> =
            seg1.lesions.values().filter(|l| !l.primary && l.class != recist::LesionClass::NormalNode).collect();
        let mut organs: Vec<&str> = mets.iter().map(|l| l.organ.as_str()).collect();
        organs.sort_unstable();
        organs.dedup();
        let mut sites: Vec<Organ> = mets.iter().map(|l| l.organ).collect();
        sites.sort_by_key(|o| o.as_str());
        sites.dedup();
        baseline_metastatic_sites = Some(sites);
        baseline = Some(Baseline {
            scan_date: bg.date,
            bbm: !brain.is_empty(),
            bbm_class: (!brain.is_empty()).then(|| recist::brain_class(&brain)),
            brain_lesions: u32::try_from(brain.len()).unwrap_or(u32::MAX),
            metastatic_organs: u32::try_from(organs.len()).unwrap_or(u32::MAX),
            metastatic_lesions: u32::try_from(mets.len()).unwrap_or(u32::MAX),
            // Shown to 0.001 mm so that float noise of the sum (41.1 + 42.2) never reaches the JSON.
            target_sum_mm: seg1.has_targets().then_some(round_mm(seg1.s0)),
        });
        seg1_evals = recist::evaluate(&seg1, &studies, &tps);
        if let Some(ev) = seg1_evals.last().filter(|e| e.pd.is_some()) {
            let g = &tps[ev.index];
            let detail = ev.pd.clone().unwrap_or_default();
            pd1 = Some(recist::progression_label(&seg1, &studies, g, &detail, &rt_courses, cfg));
            pd1_tp = Some(ev.index);
            let seg2 = recist::segment2(&studies, &seg1, g, &detail.new_lesions);
            pd1_target_sum_mm = seg2.has_targets().then_some(round_mm(seg2.s0));
            let rest = &tps[ev.index + 1..];
            seg2_evals = recist::evaluate(&seg2, &studies, rest);
            if let Some(ev2) = seg2_evals.last().filter(|e| e.pd.is_some()) {
                let g2 = &rest[ev2.index];
                let detail2 = ev2.pd.clone().unwrap_or_default();
                pd2 = Some(recist::progression_label(&seg2, &studies, g2, &detail2, &rt_courses, cfg));
            }
        }
    }
    let pd1_date = pd1.as_ref().map(|p| p.date);
    let pd2_date = pd2.as_ref().map(|p| p.date);

    // Reported vs computed responses.
    let mut timepoints = Vec::new();
    let pd1_offset = pd1_tp.map_or(0, |i| i + 1);
    for (segment, evals, offset) in [(1u8, &seg1_evals, 0usize), (2u8, &seg2_evals, pd1_offset)] {
        for ev in evals.iter() {
            let g = &tps[offset + ev.index];
            let computed = ev.response.label();
            timepoints.push(TimePointResponse {
                date: ev.date,
                segment,
                response: computed,
                target_sum_mm: ev.target_sum.map(round_mm),
                all_targets_evaluated: ev.all_targets_evaluated,
            });
            for s in &studies.list[g.first..=g.last] {
                if let Some(r) = s.reported {
                    let reported = format!("{r:?}");
                    if reported != computed.as_str() {
                        findings.push(Finding::new(
                            FindingKind::ReportedResponseMismatch,
                            s.event_id,
                            format!(
                                "reported {reported} at {}, computed {} for the time point of {}",
                                s.date,
                                computed.as_str(),
                                ev.date
                            ),
                        ));
                    }
                }
            }
        }
    }

    // Best overall response (segment 1, up to and including PD1).
    let (best_response, objective_response) = match (t0, baseline.is_some(), seg1_evals.is_empty()) {
        (Some(t0), true, false) => {
            let rank = |r: TpResponse| match r {
                TpResponse::CR => 4,
                TpResponse::PR => 3,
                TpResponse::SD | TpResponse::NonCrNonPd => 2,
                TpResponse::PD => 1,
                TpResponse::NE => 0,
            };
            let best = seg1_evals
                .iter()
                .filter(|e| {
                    !matches!(e.response, TpResponse::SD | TpResponse::NonCrNonPd)
                        || (e.date - t0).num_days() >= cfg.sd_min_days
                })
                .map(|e| e.response)
                .max_by_key(|r| rank(*r))
                .map_or(Response::NE, TpResponse::label);
            (Some(best), Some(matches!(best, Response::CR | Response::PR)))
        }
        _ => (None, None),
    };

    // Clocks.
    let pfs1 = t0.map(|t0| {
        let last = seg1_evals.iter().rev().find(|e| e.response != TpResponse::NE).map(|e| e.date);
        clock_with_progression(t0, pd1_date, death_date, last, baseline.is_none())
    });
    let pfs2 = pd1_date.map(|p| {
        let last = seg2_evals.iter().rev().find(|e| e.response != TpResponse::NE).map(|e| e.date);
        clock_with_progression(p, pd2_date, death_date, last, false)
    });
    let os = diagnosis_date.map(|dx| match death_date {
        Some(d) => Clock::new(dx, d, true, ClockReason::Death),
        None => {
            let last = evs
                .iter()
                .filter(|e| {
                    !matches!(&e.payload, Payload::FollowupRecorded(f) if f.status == FollowupStatus::LostToFollowUp)
                })
                .map(|e| e.occurred_on)
                .max()
                .unwrap_or(dx);
            Clock::new(dx, last, false, ClockReason::CensoredLastKnownAlive)
        }
    });
    if let Some(death) = death {
        for (name, clock) in [("pfs1", &pfs1), ("pfs2", &pfs2), ("os", &os)] {
            if let Some(c) = clock.as_ref().filter(|c| death.occurred_on < c.start) {
                findings.push(Finding::new(
                    FindingKind::DeathBeforeClockStart,
                    death.event_id,
                    format!("death on {} before the start of {name} on {}", death.occurred_on, c.start),
                ));
            }
        }
    }

    // Radiotherapy flags.
    let mut rt_flags = RtFlags {
        prior: None,
        prior_brain: None,
        prior_brain_modalities: Vec::new(),
        prior_extracranial: None,
        salvage: None,
        salvage_modalities: Vec::new(),
        any: !rt.is_empty(),
    };
    if let Some(t0) = t0 {
        let prior: Vec<_> = rt.iter().filter(|(d, _)| *d < t0).collect();
        rt_flags.prior = Some(!prior.is_empty());
        rt_flags.prior_brain = Some(prior.iter().any(|(_, r)| r.region == RtRegion::Brain));
        rt_flags.prior_extracranial = Some(prior.iter().any(|(_, r)| r.region != RtRegion::Brain));
        let mut m: Vec<_> =
            prior.iter().filter(|(_, r)| r.region == RtRegion::Brain).map(|(_, r)| r.modality).collect();
        m.sort_by_key(|x| x.as_str());
        m.dedup();
        rt_flags.prior_brain_modalities = m;
    }
    if let Some(p1) = pd1_date {
        let salvage: Vec<_> = rt.iter().filter(|(d, _)| *d >= p1 && pd2_date.is_none_or(|p2| *d < p2)).collect();
        rt_flags.salvage = Some(!salvage.is_empty());
        let mut m: Vec<_> = salvage.iter().map(|(_, r)| r.modality).collect();
        m.sort_by_key(|x| x.as_str());
        m.dedup();
        rt_flags.salvage_modalities = m;
    }

    // Crizotinib beyond progression.
    let cbpd = pd1_date.and_then(|p1| cbpd(evs, p1, death_date, view.as_of, cfg));
    let next_therapy = pd1_date.and_then(|p1| {
        evs.iter().find_map(|e| match &e.payload {
            Payload::TreatmentStarted(t) if t.agent != Agent::Crizotinib && e.occurred_on >= p1 => {
                Some(NextTherapy { date: e.occurred_on, agent: t.agent })
            }
            _ => None,
        })
    });

    // Follow-up state.
    let last_assessment =
        t0.map(|t0| tps.last().map(|g| g.date).or(baseline.as_ref().map(|b| b.scan_date)).unwrap_or(t0));
    let lost_to_follow_up = evs
        .iter()
        .rev()
        .find_map(|e| match &e.payload {
            Payload::FollowupRecorded(f) => Some((e.occurred_on, f.status)),
            _ => None,
        })
        .is_some_and(|(d, s)| {
            s == FollowupStatus::LostToFollowUp
                && !evs.iter().any(|e| {
                    e.occurred_on > d
                        && matches!(
                            e.payload,
                            Payload::ImagingAssessed(_)
                                | Payload::TreatmentStarted(_)
                                | Payload::TreatmentStopped(_)
                                | Payload::RadiotherapyDelivered(_)
                        )
                })
        });

    normalise(&mut findings);
    let labels = Labels {
        patient_id: patient_id.as_str().to_owned(),
        status,
        index_date: t0,
        diagnosis_date,
        baseline,
        best_response,
        objective_response,
        pd1,
        pd2,
        pfs1,
        pfs2,
        os,
        rt: rt_flags,
        cbpd,
        next_therapy,
        death_date,
    };
    Some(PatientProjection {
        patient_id: patient_id.clone(),
        labels,
        findings,
        timepoints,
        last_assessment,
        lost_to_follow_up,
        enrollment: enrolment.cloned(),
        baseline_metastatic_sites,
        pd1_target_sum_mm,
    })
}

/// PFS1 / PFS2: event at the earlier of the progression and death (same day: progression);
/// otherwise censored at the last non-NE time point, else at the start.
fn clock_with_progression(
    start: NaiveDate,
    progression: Option<NaiveDate>,
    death: Option<NaiveDate>,
    last_assessed: Option<NaiveDate>,
    no_baseline: bool,
) -> Clock {
    match (progression, death) {
        (Some(p), d) if d.is_none_or(|d| p <= d) => Clock::new(start, p, true, ClockReason::Progression),
        (_, Some(d)) => Clock::new(start, d, true, ClockReason::Death),
        _ if no_baseline => Clock::new(start, start, false, ClockReason::NoBaseline),
        _ => match last_assessed {
            Some(l) => Clock::new(start, l, false, ClockReason::CensoredLastAssessment),
            None => Clock::new(start, start, false, ClockReason::CensoredNoAssessment),
        },
    }
}

/// `domain.md`, CBPD: a start pairs with the earliest stop of its course on or after it; a course
/// is active from start to stop, both included; the crizotinib course active at PD1 is the latest
/// started one.
fn cbpd(evs: &[&Event], pd1: NaiveDate, death: Option<NaiveDate>, view_date: NaiveDate, cfg: &Config) -> Option<bool> {
    let limit = add_days(pd1, cfg.cbpd_days);
    let stop_of = |course: &str, start: NaiveDate| -> Option<NaiveDate> {
        evs.iter()
            .filter_map(|e| match &e.payload {
                Payload::TreatmentStopped(s) if s.course_id == course && e.occurred_on >= start => Some(e.occurred_on),
                _ => None,
            })
            .min()
    };
    let active = evs
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::TreatmentStarted(t) if t.agent == Agent::Crizotinib && e.occurred_on <= pd1 => {
                let stop = stop_of(&t.course_id, e.occurred_on);
                stop.is_none_or(|s| s >= pd1).then_some(stop)
            }
            _ => None,
        })
        .next_back(); // events are in canonical order: the last is the latest started
    let Some(stop) = active else { return Some(false) };
    if stop.is_some_and(|s| s <= limit) || death.is_some_and(|d| d <= limit) {
        return Some(false);
    }
    (limit <= view_date).then_some(true)
}
