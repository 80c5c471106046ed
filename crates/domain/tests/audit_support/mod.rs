//! Helpers shared by the two independent audits (rules_audit.rs, rules_audit2.rs): labels read
//! back as tuples that compare in one `assert_eq!`, and timeline edits.
#![allow(dead_code, unreachable_pub)]

use registry_domain::events::Organ;
use registry_domain::labels::{BrainAtProgression as Br, ClockReason as R, Extent, Labels, Pattern, SalvageCandidate as Sc};

use crate::rules_support::*;

pub fn p1(mm: f64) -> L {
    lesion("P1", Lung, mm).primary()
}

pub type Pd = (String, Pattern, Vec<Organ>, Option<Extent>, Br, Sc);
pub fn pd1(l: &Labels) -> Option<Pd> {
    l.pd1.as_ref().map(|p| (p.date.to_string(), p.pattern, p.sites.clone(), p.extent, p.brain, p.salvage_candidate))
}
pub fn pd2(l: &Labels) -> Option<Pd> {
    l.pd2.as_ref().map(|p| (p.date.to_string(), p.pattern, p.sites.clone(), p.extent, p.brain, p.salvage_candidate))
}
pub fn pd(date: &str, pat: Pattern, sites: Vec<Organ>, ext: Extent, br: Br, sc: Sc) -> Option<Pd> {
    Some((date.to_string(), pat, sites, Some(ext), br, sc))
}
pub type Ck = (String, String, i64, bool, R);
pub fn ck(c: &Option<registry_domain::labels::Clock>) -> Option<Ck> {
    c.as_ref().map(|c| (c.start.to_string(), c.end.to_string(), c.days, c.event, c.reason))
}
pub fn clock(s: &str, e: &str, days: i64, ev: bool, r: R) -> Option<Ck> {
    Some((s.into(), e.into(), days, ev, r))
}
pub fn resp(tl: &Tl, as_of: &str) -> Vec<(String, u8, &'static str)> {
    responses(&tl.project(as_of))
}
pub fn tp(date: &str, seg: u8, r: &'static str) -> (String, u8, &'static str) {
    (date.to_string(), seg, r)
}
/// Sets the recorded_at of the last event.
pub fn recorded_at(mut tl: Tl, rfc3339: &str) -> Tl {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("rfc3339");
    tl.events.last_mut().expect("event").recorded_at = t;
    tl
}
