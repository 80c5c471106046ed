//! RECIST 1.1 as `domain.md` states it: baseline and reference sets, target selection, time points,
//! target / non-target / new-lesion / overall responses, nadirs, the first PD of a segment and the
//! failure pattern, sites, brain class and salvage candidate at that PD.
//!
//! Everything here works on a patient's imaging studies in canonical order ([`Studies`]); the
//! projection ([`crate::projection`]) decides which studies are in view.
//!
//! Float comparisons: sizes are in mm with at most a few decimals, so every threshold test
//! (≥ 20 %, ≥ 5 mm, ≤ 70 %, < 10 mm, < 30 mm, ≤ 50 mm) is made with an absolute tolerance of
//! [`EPS_MM`] in the direction that makes an exact boundary value meet an "at least" / "at most"
//! rule and fail a "less than" rule. Sums are always added in lesion_id order so that the same
//! lesions give the same bits.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use uuid::Uuid;

use crate::config::Config;
use crate::events::{Imaging, LesionRole, LesionState, Organ, ReportedResponse, RtModality};
use crate::labels::{BrainAtProgression, BrainClass, Extent, Pattern, Progression, Response, SalvageCandidate};

/// Tolerance of every size comparison, in mm (far below measurement precision, 0.1 mm).
pub const EPS_MM: f64 = 1e-6;
/// RECIST 1.1 §4.3.1: PD needs ≥ 20 % over the nadir …
pub const PD_RELATIVE: f64 = 1.2;
/// … and ≥ 5 mm absolute.
pub const PD_ABSOLUTE_MM: f64 = 5.0;
/// RECIST 1.1 §4.3.1: PR is ≥ 30 % decrease from S0 (S ≤ 0.7 × S0).
pub const PR_RELATIVE: f64 = 0.7;
/// RECIST 1.1 §3.1: measurable non-nodal lesion ≥ 10 mm.
pub const MEASURABLE_MM: f64 = 10.0;
/// RECIST 1.1 §3.1: measurable node short axis ≥ 15 mm.
pub const MEASURABLE_NODE_MM: f64 = 15.0;
/// RECIST 1.1 §3.1 / §4.3.1: a node < 10 mm short axis is normal.
pub const NORMAL_NODE_MM: f64 = 10.0;
/// RECIST 1.1 §3.3.1: at most 2 targets per organ, 5 in all.
pub const MAX_TARGETS_PER_ORGAN: usize = 2;
pub const MAX_TARGETS: usize = 5;
/// Study (Ni 2019): oligo brain disease is ≤ 3 lesions with the largest < 3 cm.
pub const OLIGO_MAX_LESIONS: usize = 3;
pub const OLIGO_MAX_DIAMETER_MM: f64 = 30.0;

fn ge(a: f64, b: f64) -> bool {
    a >= b - EPS_MM
}
fn le(a: f64, b: f64) -> bool {
    a <= b + EPS_MM
}
fn lt(a: f64, b: f64) -> bool {
    a < b - EPS_MM
}

/// A lesion of one patient's studies: its position among the patient's distinct lesion_ids sorted
/// by bytes ([`Studies::new`]), so that the order of `Lid`s is the lesion_id order every rule
/// uses (sums, ties). Lesion ids never leave this module.
pub(crate) type Lid = u32;

/// One lesion as listed at one study (or the counted listing of a time point).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listing {
    pub(crate) state: LesionState,
    pub(crate) diameter: Option<f64>,
    pub(crate) organ: Organ,
    pub(crate) primary: bool,
    pub(crate) role: Option<LesionRole>,
}

impl Listing {
    /// A measured size: present or unequivocal progression with a diameter (`absent` is not a size).
    fn size(&self) -> Option<f64> {
        match self.state {
            LesionState::Present | LesionState::UnequivocalProgression => self.diameter,
            LesionState::Absent | LesionState::NotEvaluated => None,
        }
    }
    /// The value in sums and nadirs: `absent` counts as 0 mm.
    fn measurement(&self) -> Option<f64> {
        match self.state {
            LesionState::Absent => Some(0.0),
            _ => self.size(),
        }
    }
    fn is_present_like(&self) -> bool {
        matches!(self.state, LesionState::Present | LesionState::UnequivocalProgression)
    }
}

/// One imaging study.
#[derive(Debug, Clone)]
pub(crate) struct Study {
    pub(crate) date: NaiveDate,
    pub(crate) event_id: Uuid,
    pub(crate) reported: Option<ReportedResponse>,
    pub(crate) lesions: BTreeMap<Lid, Listing>,
}

/// A patient's imaging studies in view, in canonical order.
#[derive(Debug, Clone)]
pub(crate) struct Studies {
    pub(crate) list: Vec<Study>,
    /// Organ and primary flag of each lesion's first listing, by [`Lid`].
    first_listing: Vec<(Organ, bool)>,
}

impl Studies {
    /// The studies of `scans` (date, event_id, imaging), in the order given (canonical order).
    pub(crate) fn new(scans: &[(NaiveDate, Uuid, &Imaging)]) -> Studies {
        // Distinct lesion_ids in order of first appearance, then their ranks in byte order.
        // A patient has a handful of lesions: a linear search of the names seen beats hashing,
        // up to LINEAR_NAMES of them; past that a hash map takes over.
        const LINEAR_NAMES: usize = 16;
        let mut seen: Option<rustc_hash::FxHashMap<&str, usize>> = None;
        let mut names: Vec<&str> = Vec::new();
        // The first-appearance index of every listing, in scan and listing order.
        let mut listed: Vec<usize> = Vec::with_capacity(scans.iter().map(|(_, _, img)| img.lesions.len()).sum());
        for (_, _, img) in scans {
            for l in &img.lesions {
                let id = l.lesion_id.as_str();
                let i = match &mut seen {
                    Some(map) => *map.entry(id).or_insert_with(|| {
                        names.push(id);
                        names.len() - 1
                    }),
                    None => match names.iter().position(|n| *n == id) {
                        Some(i) => i,
                        None => {
                            names.push(id);
                            if names.len() > LINEAR_NAMES {
                                seen = Some(names.iter().enumerate().map(|(i, n)| (*n, i)).collect());
                            }
                            names.len() - 1
                        }
                    },
                };
                listed.push(i);
            }
        }
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_unstable_by_key(|&i| names[i]);
        let mut rank: Vec<Lid> = vec![0; names.len()];
        for (r, &i) in by_name.iter().enumerate() {
            // At most one listing per byte of an event: far below u32::MAX.
            rank[i] = Lid::try_from(r).unwrap_or(Lid::MAX);
        }
        let mut lids = listed.into_iter().map(|i| rank[i]);
        let mut first_listing: Vec<Option<(Organ, bool)>> = vec![None; names.len()];
        let mut list = Vec::with_capacity(scans.len());
        for (date, event_id, img) in scans {
            let mut lesions = BTreeMap::new();
            for l in &img.lesions {
                let id = lids.next().unwrap_or(Lid::MAX);
                // lesion_id is unique within an event (checked at ingest); if not, the last one stands.
                lesions.insert(
                    id,
                    Listing { state: l.state, diameter: l.diameter_mm, organ: l.organ, primary: l.primary, role: l.role },
                );
            }
            for (id, l) in &lesions {
                if let Some(first @ None) = first_listing.get_mut(*id as usize) {
                    *first = Some((l.organ, l.primary));
                }
            }
            list.push(Study { date: *date, event_id: *event_id, reported: img.reported_response, lesions });
        }
        Studies { list, first_listing: first_listing.into_iter().map(|f| f.unwrap_or((Organ::Other, false))).collect() }
    }

    /// The studies up to position `upto` inclusive (all of them when `upto` is past the end).
    fn upto(&self, upto: usize) -> &[Study] {
        self.list.get(..=upto).unwrap_or(&self.list)
    }

    /// Size of a lesion at a time point ending at study `upto` (inclusive): its diameter listed
    /// there, else its latest measured diameter in an earlier study (`absent` is not a size).
    pub(crate) fn size_at(&self, id: Lid, upto: usize) -> Option<f64> {
        self.upto(upto).iter().rev().filter_map(|s| s.lesions.get(&id)).find_map(Listing::size)
    }

    /// The latest listing at or before study `upto` that is not `not_evaluated`, else the latest.
    fn state_listing(&self, id: Lid, upto: usize) -> Option<&Listing> {
        let range = self.upto(upto);
        let mut listed = range.iter().rev().filter_map(|s| s.lesions.get(&id));
        let latest = listed.clone().next();
        listed.find(|l| l.state != LesionState::NotEvaluated).or(latest)
    }

    fn first_organ(&self, id: Lid) -> Option<(Organ, bool)> {
        self.first_listing.get(id as usize).copied()
    }

    /// Groups the studies at positions `range` into time points (`domain.md`: a time point
    /// starts at the earliest ungrouped study and takes every study at most `window` days after it).
    pub(crate) fn group(&self, positions: std::ops::Range<usize>, window_days: i64) -> Vec<Group> {
        let mut groups = Vec::new();
        let mut i = positions.start;
        while i < positions.end {
            let date = self.list[i].date;
            let mut j = i;
            while j + 1 < positions.end && (self.list[j + 1].date - date).num_days() <= window_days {
                j += 1;
            }
            groups.push(self.make_group(date, i, j));
            i = j + 1;
        }
        groups
    }

    /// A group of studies `first..=last`: each lesion's latest listing that is not
    /// `not_evaluated` counts; a lesion listed only as `not_evaluated` keeps that state.
    pub(crate) fn make_group(&self, date: NaiveDate, first: usize, last: usize) -> Group {
        let mut counted: BTreeMap<Lid, Listing> = BTreeMap::new();
        let mut roles: BTreeMap<Lid, LesionRole> = BTreeMap::new();
        for s in &self.list[first..=last] {
            for (id, l) in &s.lesions {
                if let Some(r) = l.role {
                    roles.insert(*id, r);
                }
                let replace = l.state != LesionState::NotEvaluated
                    || counted.get(id).is_none_or(|c| c.state == LesionState::NotEvaluated);
                if replace {
                    counted.insert(*id, l.clone());
                }
            }
        }
        // A feeder role given on any study of the group counts (the latest one given).
        for (id, r) in roles {
            if let Some(c) = counted.get_mut(&id) {
                c.role = Some(r);
            }
        }
        Group { date, first, last, counted }
    }
}

/// A group of studies: the baseline or one time point.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) date: NaiveDate,
    pub(crate) first: usize,
    pub(crate) last: usize,
    pub(crate) counted: BTreeMap<Lid, Listing>,
}

/// How a reference lesion takes part in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LesionClass {
    Target,
    NonTarget,
    NormalNode,
}

#[derive(Debug, Clone)]
pub(crate) struct RefLesion {
    pub(crate) organ: Organ,
    pub(crate) primary: bool,
    pub(crate) class: LesionClass,
    /// State at the segment's baseline.
    pub(crate) state: LesionState,
    /// Measured size at the segment's baseline.
    pub(crate) size: Option<f64>,
}

/// A segment: segment 1 from the baseline to PD1, segment 2 from PD1 to PD2.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) lesions: BTreeMap<Lid, RefLesion>,
    pub(crate) s0: f64,
}

impl Segment {
    pub(crate) fn targets(&self) -> impl Iterator<Item = (&Lid, &RefLesion)> {
        self.lesions.iter().filter(|(_, l)| l.class == LesionClass::Target)
    }
    pub(crate) fn has_targets(&self) -> bool {
        self.targets().next().is_some()
    }
}

/// RECIST 1.1 §3.1 measurability: present with a diameter, non-nodal ≥ 10 mm, nodal ≥ 15 mm.
fn measurable(l: &Listing) -> Option<f64> {
    if l.state != LesionState::Present {
        return None;
    }
    let d = l.diameter?;
    let min = if l.organ.is_nodal() { MEASURABLE_NODE_MM } else { MEASURABLE_MM };
    ge(d, min).then_some(d)
}

/// RECIST 1.1 §3.3.1 target choice: largest first, ≤ 2 per organ (all nodes one organ), ≤ 5,
/// ties by lesion_id (byte order).
fn choose_targets(candidates: Vec<(Lid, Organ, f64)>) -> BTreeSet<Lid> {
    let mut c = candidates;
    c.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut per_organ: BTreeMap<Organ, usize> = BTreeMap::new();
    let mut chosen = BTreeSet::new();
    for (id, organ, _) in c {
        if chosen.len() >= MAX_TARGETS {
            break;
        }
        let key = if organ.is_nodal() { Organ::RegionalLn } else { organ };
        let n = per_organ.entry(key).or_default();
        if *n < MAX_TARGETS_PER_ORGAN {
            *n += 1;
            chosen.insert(id);
        }
    }
    chosen
}

fn is_normal_node(l: &Listing) -> bool {
    l.organ.is_nodal() && l.state == LesionState::Present && l.diameter.is_some_and(|d| lt(d, NORMAL_NODE_MM))
}

/// Segment 1 from the baseline group (`domain.md`, "Baseline and reference sets").
pub(crate) fn segment1(baseline: &Group) -> Segment {
    let reference: BTreeMap<Lid, &Listing> =
        baseline.counted.iter().filter(|(_, l)| l.state != LesionState::Absent).map(|(id, l)| (*id, l)).collect();
    let marked: BTreeSet<Lid> =
        reference.iter().filter(|(_, l)| l.role == Some(LesionRole::Target)).map(|(id, _)| *id).collect();
    let targets = if !marked.is_empty() {
        marked
    } else {
        choose_targets(
            reference
                .iter()
                .filter(|(_, l)| l.role != Some(LesionRole::NonTarget))
                .filter_map(|(id, l)| measurable(l).map(|d| (*id, l.organ, d)))
                .collect(),
        )
    };
    let lesions: BTreeMap<Lid, RefLesion> = reference
        .iter()
        .map(|(id, l)| {
            let class = if targets.contains(id) {
                LesionClass::Target
            } else if is_normal_node(l) {
                LesionClass::NormalNode
            } else {
                LesionClass::NonTarget
            };
            (*id, RefLesion { organ: l.organ, primary: l.primary, class, state: l.state, size: l.size() })
        })
        .collect();
    let s0 = lesions.values().filter(|l| l.class == LesionClass::Target).filter_map(|l| l.size).sum();
    Segment { lesions, s0 }
}

/// Segment 2, re-baselined at the PD1 time point (`domain.md`, "Second progression").
pub(crate) fn segment2(studies: &Studies, seg1: &Segment, pd1_group: &Group, pd1_new: &[Lid]) -> Segment {
    let mut ids: BTreeSet<Lid> = seg1.lesions.keys().copied().collect();
    ids.extend(pd1_new.iter());
    let mut kept: Vec<(Lid, Listing)> = Vec::new();
    for id in ids {
        if let Some(l) = studies.state_listing(id, pd1_group.last) {
            if l.state != LesionState::Absent {
                kept.push((id, l.clone()));
            }
        }
    }
    // Targets by the RECIST rule among those measured present at PD1 (roles ignored).
    let targets = choose_targets(
        kept.iter()
            .filter_map(|(id, _)| {
                let at_pd1 = pd1_group.counted.get(id)?;
                let mut l = at_pd1.clone();
                l.role = None;
                measurable(&l).map(|d| (*id, l.organ, d))
            })
            .collect(),
    );
    let lesions: BTreeMap<Lid, RefLesion> = kept
        .into_iter()
        .map(|(id, l)| {
            let class = if targets.contains(&id) {
                LesionClass::Target
            } else if is_normal_node(&l) {
                LesionClass::NormalNode
            } else {
                LesionClass::NonTarget
            };
            let size = if class == LesionClass::Target {
                pd1_group.counted.get(&id).and_then(Listing::size)
            } else {
                l.size()
            };
            (id, RefLesion { organ: l.organ, primary: l.primary, class, state: l.state, size })
        })
        .collect();
    let s0 = lesions.values().filter(|l| l.class == LesionClass::Target).filter_map(|l| l.size).sum();
    Segment { lesions, s0 }
}

/// A time-point response, with RECIST's non-CR/non-PD kept apart from SD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TpResponse {
    CR,
    PR,
    SD,
    NonCrNonPd,
    PD,
    NE,
}

impl TpResponse {
    /// As shown and compared: non-CR/non-PD counts as SD.
    pub(crate) fn label(self) -> Response {
        match self {
            TpResponse::CR => Response::CR,
            TpResponse::PR => Response::PR,
            TpResponse::SD | TpResponse::NonCrNonPd => Response::SD,
            TpResponse::PD => Response::PD,
            TpResponse::NE => Response::NE,
        }
    }
}

/// What made a time point PD.
#[derive(Debug, Clone, Default)]
pub(crate) struct PdDetail {
    /// Progressing original (reference) lesions, sorted.
    pub(crate) progressing: Vec<Lid>,
    /// New lesions, sorted.
    pub(crate) new_lesions: Vec<Lid>,
    pub(crate) target_pd: bool,
}

/// One evaluated time point of a segment.
#[derive(Debug, Clone)]
pub(crate) struct TpEval {
    /// Index in the time-point list given to [`evaluate`].
    pub(crate) index: usize,
    pub(crate) date: NaiveDate,
    pub(crate) response: TpResponse,
    pub(crate) pd: Option<PdDetail>,
    /// S: the segment's targets' diameters at the time point (absent = 0, unevaluated left out);
    /// `None` when the segment has no target.
    pub(crate) target_sum: Option<f64>,
    /// Every target of the segment was evaluated at the time point (true without targets).
    pub(crate) all_targets_evaluated: bool,
}

/// Evaluates a segment's time points in order, up to and including its first PD.
pub(crate) fn evaluate(seg: &Segment, studies: &Studies, tps: &[Group]) -> Vec<TpEval> {
    let mut nadir = seg.s0;
    let mut own_nadir: BTreeMap<Lid, f64> =
        seg.lesions.iter().filter_map(|(id, l)| l.size.map(|d| (*id, d))).collect();
    let mut last_known: BTreeMap<Lid, LesionState> = seg
        .lesions
        .iter()
        .filter(|(_, l)| l.state != LesionState::NotEvaluated)
        .map(|(id, l)| (*id, l.state))
        .collect();
    let mut had_cr = false;
    let mut out = Vec::new();
    // The segment's non-target lesions (the same at every time point).
    let nts: Vec<(&Lid, &RefLesion)> = seg.lesions.iter().filter(|(_, l)| l.class == LesionClass::NonTarget).collect();
    for (index, g) in tps.iter().enumerate() {
        let listing = |id: &Lid| g.counted.get(id).filter(|l| l.state != LesionState::NotEvaluated);
        // Targets: S with absent = 0; unlisted, not_evaluated or without diameter = not evaluated.
        let mut s = 0.0;
        let mut all_evaluated = true;
        let mut all_gone = true;
        let mut n_targets = 0;
        for (id, l) in seg.targets() {
            n_targets += 1;
            let m = listing(id).and_then(Listing::measurement);
            match m {
                Some(d) => s += d,
                None => all_evaluated = false,
            }
            let gone = if l.organ.is_nodal() {
                m.is_some_and(|d| lt(d, NORMAL_NODE_MM))
            } else {
                listing(id).is_some_and(|x| x.state == LesionState::Absent)
            };
            all_gone &= gone;
        }
        let sum_grew = n_targets > 0 && ge(s, PD_RELATIVE * nadir) && ge(s - nadir, PD_ABSOLUTE_MM);
        let target = (n_targets > 0).then(|| {
            if all_gone {
                TpResponse::CR
            } else if sum_grew {
                TpResponse::PD
            } else if !all_evaluated {
                TpResponse::NE
            } else if le(s, PR_RELATIVE * seg.s0) {
                TpResponse::PR
            } else {
                TpResponse::SD
            }
        });
        // Target PD is the target response, CR tested first (domain.md): nodal targets that all
        // stay < 10 mm are a CR even when their sum grew 20 % and 5 mm from the nadir (4 → 9.5 mm).
        let target_pd = target == Some(TpResponse::PD);
        // Unequivocal progression of any reference lesion (normal nodes aside).
        let up = seg.lesions.iter().any(|(id, l)| {
            l.class != LesionClass::NormalNode
                && listing(id).is_some_and(|x| x.state == LesionState::UnequivocalProgression)
        });
        // Non-targets.
        let non_target = (!nts.is_empty()).then(|| {
            if nts.iter().any(|(id, _)| listing(id).is_some_and(|x| x.state == LesionState::UnequivocalProgression)) {
                TpResponse::PD
            } else if nts.iter().all(|(id, l)| {
                listing(id).is_some_and(|x| {
                    x.state == LesionState::Absent
                        || (l.organ.is_nodal()
                            && x.state == LesionState::Present
                            && x.diameter.is_some_and(|d| lt(d, NORMAL_NODE_MM)))
                })
            }) {
                TpResponse::CR
            } else if nts.iter().any(|(id, _)| listing(id).is_none()) {
                TpResponse::NE
            } else {
                TpResponse::NonCrNonPd
            }
        });
        // New lesions: not in the reference set, present or unequivocal; a node needs ≥ 10 mm.
        let new_lesions: Vec<Lid> = g
            .counted
            .iter()
            .filter(|(id, l)| !seg.lesions.contains_key(*id) && l.is_present_like())
            .filter(|(id, l)| {
                let organ = studies.first_organ(**id).map_or(l.organ, |(o, _)| o);
                !organ.is_nodal() || studies.size_at(**id, g.last).is_some_and(|d| ge(d, NORMAL_NODE_MM))
            })
            .map(|(id, _)| *id)
            .collect();
        // Reappearance: listed present whose last known state was absent.
        let reappeared: Vec<&Lid> = seg
            .lesions
            .iter()
            .filter(|(id, l)| {
                l.class != LesionClass::NormalNode
                    && listing(id).is_some_and(Listing::is_present_like)
                    && last_known.get(id) == Some(&LesionState::Absent)
            })
            .map(|(id, _)| id)
            .collect();
        let reappear_after_cr = had_cr && !reappeared.is_empty();

        let response =
            if target_pd || non_target == Some(TpResponse::PD) || up || !new_lesions.is_empty() || reappear_after_cr {
                TpResponse::PD
            } else {
                match target {
                    Some(TpResponse::CR) if matches!(non_target, None | Some(TpResponse::CR)) => TpResponse::CR,
                    Some(TpResponse::CR | TpResponse::PR) => TpResponse::PR,
                    Some(TpResponse::SD) => TpResponse::SD,
                    Some(_) => TpResponse::NE,
                    None => match non_target {
                        Some(r @ (TpResponse::CR | TpResponse::NonCrNonPd)) => r,
                        _ => TpResponse::NE,
                    },
                }
            };

        let pd = (response == TpResponse::PD).then(|| {
            let mut progressing: BTreeSet<Lid> = BTreeSet::new();
            for (id, l) in &seg.lesions {
                if l.class == LesionClass::NormalNode {
                    continue;
                }
                let Some(x) = listing(id) else { continue };
                let grew = match (x.size(), own_nadir.get(id)) {
                    (Some(d), Some(n)) => ge(d, PD_RELATIVE * n) && ge(d - n, PD_ABSOLUTE_MM),
                    _ => false,
                };
                if x.state == LesionState::UnequivocalProgression || (had_cr && reappeared.contains(&id)) || grew {
                    progressing.insert(*id);
                }
            }
            // Fallback: target PD by the sum but no single target meets the rule.
            if target_pd && !seg.targets().any(|(id, _)| progressing.contains(id)) {
                let mut best: Option<(&Lid, f64)> = None;
                for (id, _) in seg.targets() {
                    if let Some(d) = listing(id).and_then(Listing::measurement) {
                        let growth = d - own_nadir.get(id).copied().unwrap_or(d);
                        if best.is_none_or(|(_, g)| growth > g + EPS_MM) {
                            best = Some((id, growth));
                        }
                    }
                }
                if let Some((id, _)) = best {
                    progressing.insert(*id);
                }
            }
            PdDetail { progressing: progressing.into_iter().collect(), new_lesions: new_lesions.clone(), target_pd }
        });
        let is_pd = pd.is_some();
        let target_sum = (n_targets > 0).then_some(s);
        out.push(TpEval { index, date: g.date, response, pd, target_sum, all_targets_evaluated: all_evaluated });
        if is_pd {
            break;
        }
        // Update the running nadirs and states after the time point (they use earlier ones only).
        if n_targets > 0 && all_evaluated && s < nadir {
            nadir = s;
        }
        for id in seg.lesions.keys() {
            if let Some(x) = listing(id) {
                if let Some(d) = x.measurement() {
                    let e = own_nadir.entry(*id).or_insert(d);
                    if d < *e {
                        *e = d;
                    }
                }
                last_known.insert(*id, x.state);
            }
        }
        had_cr |= response == TpResponse::CR;
    }
    out
}

/// A radiotherapy course as the progression rules need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtCourse {
    pub(crate) date: NaiveDate,
    pub(crate) modality: RtModality,
}

/// Brain class of a set of brain lesions with their sizes (`None` = unknown size): oligo when
/// ≤ 3 and the largest < 30 mm; a lesion of unknown size fails the test.
pub(crate) fn brain_class(sizes: &[Option<f64>]) -> BrainClass {
    let oligo =
        sizes.len() <= OLIGO_MAX_LESIONS && sizes.iter().all(|s| s.is_some_and(|d| lt(d, OLIGO_MAX_DIAMETER_MM)));
    if oligo {
        BrainClass::Oligo
    } else {
        BrainClass::Multiple
    }
}

/// The `pd1` / `pd2` label of a PD time point (`domain.md`, "First progression").
pub(crate) fn progression_label(
    seg: &Segment,
    studies: &Studies,
    g: &Group,
    pd: &PdDetail,
    rt: &[RtCourse],
    cfg: &Config,
) -> Progression {
    let original = !pd.progressing.is_empty() || pd.target_pd;
    let distant = !pd.new_lesions.is_empty();
    let pattern = match (original, distant) {
        (true, true) => Pattern::ODF,
        (false, true) => Pattern::DF,
        _ => Pattern::OF,
    };
    // (lesion id, organ, counts as primary)
    let mut lesions: Vec<(Lid, Organ, bool)> = Vec::new();
    for id in &pd.progressing {
        if let Some(l) = seg.lesions.get(id) {
            lesions.push((*id, l.organ, l.primary));
        }
    }
    for id in &pd.new_lesions {
        let organ = studies.first_organ(*id).map_or(Organ::Other, |(o, _)| o);
        lesions.push((*id, organ, false)); // a new lesion is a metastasis even if flagged primary
    }
    let mut sites: Vec<Organ> = lesions.iter().map(|(_, o, _)| *o).collect();
    sites.sort_by_key(|o| o.as_str());
    sites.dedup();
    let has_primary = lesions.iter().any(|(_, _, p)| *p);
    let has_met = lesions.iter().any(|(_, _, p)| !*p);
    let extent = match (has_primary, has_met) {
        (true, false) => Some(Extent::PrimaryOnly),
        (false, true) => Some(Extent::MetastasisOnly),
        (true, true) => Some(Extent::PrimaryAndMetastasis),
        (false, false) => None,
    };
    let brain_sizes: Vec<Option<f64>> =
        lesions.iter().filter(|(_, o, _)| *o == Organ::Brain).map(|(id, _, _)| studies.size_at(*id, g.last)).collect();
    let brain = if brain_sizes.is_empty() {
        BrainAtProgression::None
    } else {
        match brain_class(&brain_sizes) {
            BrainClass::Oligo => BrainAtProgression::Oligo,
            BrainClass::Multiple => BrainAtProgression::Multiple,
        }
    };
    let wbrt_before = rt.iter().any(|c| c.modality == RtModality::Wbrt && c.date < g.date);
    let extracranial: Vec<Option<f64>> =
        lesions.iter().filter(|(_, o, _)| *o != Organ::Brain).map(|(id, _, _)| studies.size_at(*id, g.last)).collect();
    let salvage_candidate = if brain == BrainAtProgression::Multiple && !wbrt_before {
        SalvageCandidate::Wbrt
    } else if brain == BrainAtProgression::Oligo {
        SalvageCandidate::Srs
    } else if brain == BrainAtProgression::None
        && (1..=cfg.sbrt_max_lesions).contains(&extracranial.len())
        && extracranial.iter().all(|s| s.is_some_and(|d| le(d, cfg.sbrt_max_diameter_mm)))
    {
        SalvageCandidate::Sbrt
    } else {
        SalvageCandidate::None
    };
    Progression { date: g.date, pattern, extent, sites, brain, salvage_candidate }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ImagingModality, Lesion};

    /// A scan listing `names`, each with a diameter that tags it (10 mm + its number).
    fn scan(names: &[(String, f64)]) -> Imaging {
        Imaging {
            modality: ImagingModality::Ct,
            regions: Vec::new(),
            lesions: names
                .iter()
                .map(|(id, tag)| Lesion {
                    lesion_id: id.clone(),
                    organ: Organ::Lung,
                    primary: false,
                    diameter_mm: Some(*tag),
                    state: LesionState::Present,
                    role: None,
                })
                .collect(),
            reported_response: None,
        }
    }

    /// Lesion ids are ranked in byte order whether a patient has a few (linear search) or many
    /// (a hash map past 16) distinct ones, and a repeated id keeps its rank.
    #[test]
    fn lesion_ranks_follow_byte_order_for_few_and_many_lesions() {
        for n in [3usize, 16, 17, 40] {
            // Names in an order unlike byte order, listed again (reversed) in a second scan.
            let names: Vec<(String, f64)> =
                (0..n).map(|i| (format!("L{}", (i * 7 + 3) % 101), 10.0 + i as f64)).collect();
            let mut again = names.clone();
            again.reverse();
            let (a, b) = (scan(&names), scan(&again));
            let day = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
            let studies = Studies::new(&[(day, Uuid::nil(), &a), (day, Uuid::nil(), &b)]);
            let mut sorted = names.clone();
            sorted.sort_by(|x, y| x.0.cmp(&y.0));
            let want: Vec<(Lid, f64)> = sorted.iter().zip(0..).map(|((_, tag), r)| (r, *tag)).collect();
            for s in &studies.list {
                let got: Vec<(Lid, f64)> = s.lesions.iter().map(|(id, l)| (*id, l.diameter.unwrap_or(0.0))).collect();
                assert_eq!(got, want, "{n} lesions");
            }
        }
    }
}
