//! The analyses: every table and figure of the study, computed from the subjects, as the wire
//! shape of `interfaces.md` ("Report") plus the curves the plots draw. Choices are in
//! `docs/report.md`; each function's comment names the study item it reproduces.

use registry_stats::cox::{cox_ph, CoxConfig, Covariate};
use registry_stats::cuminc::cumulative_incidence;
use registry_stats::finegray::{fine_gray, FineGrayConfig};
use registry_stats::km::{kaplan_meier, KmConfig, KmCurve};
use registry_stats::logrank::log_rank;
use registry_stats::tables::{chi_square, fisher_exact};
use registry_stats::wilcoxon::rank_sum;
use registry_domain::events::Organ;
use serde::Serialize;

use crate::input::{Obs, Subject};
use crate::num::{Num, DAYS_PER_MONTH};

// ---- endpoints ----------------------------------------------------------------------------------

/// `{"n","events","median_days","median_ci_days"}` of one Kaplan–Meier curve.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Endpoint {
    pub(crate) n: usize,
    pub(crate) events: usize,
    pub(crate) median_days: Num,
    pub(crate) median_ci_days: [Num; 2],
}

/// Kaplan–Meier as `survfit` (log CI); the median CI where the band crosses 0.5, as R prints it.
pub(crate) fn km(obs: &[Obs]) -> (Endpoint, Option<KmCurve>) {
    let time: Vec<f64> = obs.iter().map(|o| o.time).collect();
    let event: Vec<bool> = obs.iter().map(|o| o.event).collect();
    match kaplan_meier(&time, &event, &KmConfig::default()) {
        Ok(c) => (
            Endpoint {
                n: c.n,
                events: c.events,
                median_days: Num::opt(c.median),
                median_ci_days: [Num::opt(c.median_ci[0]), Num::opt(c.median_ci[1])],
            },
            Some(c),
        ),
        Err(_) => (
            Endpoint { n: obs.len(), events: obs.iter().filter(|o| o.event).count(), ..Endpoint::empty() },
            None,
        ),
    }
}

impl Endpoint {
    fn empty() -> Endpoint {
        Endpoint { n: 0, events: 0, median_days: Num(None), median_ci_days: [Num(None); 2] }
    }
}

// ---- comparisons (Fig. 1 a–d) -------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupSummary {
    pub(crate) label: &'static str,
    pub(crate) n: usize,
    pub(crate) events: usize,
    pub(crate) median_days: Num,
    pub(crate) median_ci_days: [Num; 2],
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    pub(crate) id: &'static str,
    pub(crate) endpoint: &'static str,
    pub(crate) population: &'static str,
    pub(crate) by: &'static str,
    pub(crate) groups: Vec<GroupSummary>,
    pub(crate) logrank_chisq: Num,
    pub(crate) logrank_p: Num,
    pub(crate) hr: Num,
    pub(crate) hr_ci: [Num; 2],
}

/// A Kaplan–Meier figure: one curve per group (label, curve).
#[derive(Debug, Clone)]
pub(crate) struct KmPlot {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) curves: Vec<(String, Option<KmCurve>)>,
    /// Text under the title (log-rank p, HR), empty for single curves.
    pub(crate) note: String,
}

/// Group labels in report order: "no" first (the reference of the HR), then "yes".
pub(crate) const NO_YES: [&str; 2] = ["no", "yes"];

/// One comparison: KM per group, log-rank (`survdiff`), HR yes vs no (`coxph`, Efron).
pub(crate) fn compare(
    id: &'static str,
    endpoint: &'static str,
    population: &'static str,
    by: &'static str,
    rows: &[(Obs, bool)],
) -> (Comparison, KmPlot) {
    let mut groups = Vec::new();
    let mut curves = Vec::new();
    for (gi, label) in NO_YES.iter().enumerate() {
        let obs: Vec<Obs> = rows.iter().filter(|(_, y)| usize::from(*y) == gi).map(|(o, _)| *o).collect();
        let (e, curve) = km(&obs);
        groups.push(GroupSummary {
            label,
            n: e.n,
            events: e.events,
            median_days: e.median_days,
            median_ci_days: e.median_ci_days,
        });
        curves.push(((*label).to_owned(), curve));
    }
    let testable = groups.iter().all(|g| g.n > 0) && groups.iter().any(|g| g.events > 0);
    // With no event in one group the Cox estimate diverges (monotone likelihood): undefined.
    let hr_defined = groups.iter().all(|g| g.events > 0);
    let time: Vec<f64> = rows.iter().map(|(o, _)| o.time).collect();
    let event: Vec<bool> = rows.iter().map(|(o, _)| o.event).collect();
    let group: Vec<usize> = rows.iter().map(|(_, y)| usize::from(*y)).collect();
    let (mut chisq, mut p) = (Num(None), Num(None));
    let (mut hr, mut hr_ci) = (Num(None), [Num(None); 2]);
    if testable {
        if let Ok(lr) = log_rank(&time, &event, &group, 2) {
            if lr.df > 0 {
                chisq = Num::new(lr.chisq);
                p = Num::opt(lr.p);
            }
        }
        let x = Covariate { name: by.to_owned(), values: group.iter().map(|g| *g as f64).collect() };
        let fit = if hr_defined { cox_ph(&time, &event, &[x], &CoxConfig::default()).ok() } else { None };
        if let Some(fit) = fit {
            if let Some(c) = fit.coefficients.first() {
                hr = Num::opt(c.hr);
                hr_ci = [Num::opt(c.hr_ci[0]), Num::opt(c.hr_ci[1])];
            }
        }
    }
    let note = format!(
        "log-rank p = {}; HR yes vs no {} ({}–{})",
        crate::num::fmt_p(p.get()),
        crate::num::fmt_fixed(hr.get(), 2),
        crate::num::fmt_fixed(hr_ci[0].get(), 2),
        crate::num::fmt_fixed(hr_ci[1].get(), 2)
    );
    let plot = KmPlot { id: id.to_owned(), title: format!("{id}: {} by {by} ({population})", endpoint.to_uppercase()), curves, note };
    (Comparison { id, endpoint, population, by, groups, logrank_chisq: chisq, logrank_p: p, hr, hr_ci }, plot)
}

// ---- cumulative incidence (Fig. 2) --------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CifOut {
    pub(crate) name: &'static str,
    pub(crate) events: usize,
    pub(crate) times: Vec<Num>,
    pub(crate) cif: Vec<Num>,
    pub(crate) variance: Vec<Num>,
    pub(crate) at_12_months: Num,
    pub(crate) at_24_months: Num,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CumIncSection {
    pub(crate) population: &'static str,
    pub(crate) time: &'static str,
    pub(crate) method: &'static str,
    pub(crate) n: usize,
    pub(crate) curves: Vec<CifOut>,
}

/// Failure codes on the PFS1 clock: pattern at PD1 or death without progression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pfs1Outcome {
    Censored,
    Progression(PatternCode),
    DeathWithoutProgression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternCode {
    Of,
    Df,
    Odf,
    /// A progression whose pattern is not known (should not happen; kept apart, not guessed).
    Unclassified,
}

pub(crate) fn pfs1_outcome(s: &Subject) -> Option<(f64, Pfs1Outcome)> {
    let obs = s.pfs1()?;
    let clock = s.labels.pfs1.as_ref()?;
    let outcome = if !obs.event {
        Pfs1Outcome::Censored
    } else if clock.reason == "progression" {
        Pfs1Outcome::Progression(match s.pattern() {
            Some("OF") => PatternCode::Of,
            Some("DF") => PatternCode::Df,
            Some("ODF") => PatternCode::Odf,
            _ => PatternCode::Unclassified,
        })
    } else {
        Pfs1Outcome::DeathWithoutProgression
    };
    Some((obs.time, outcome))
}

const MONTH_12: f64 = 12.0 * DAYS_PER_MONTH;
const MONTH_24: f64 = 24.0 * DAYS_PER_MONTH;

fn cif_at(times: &[f64], cif: &[f64], t: f64) -> f64 {
    let k = times.partition_point(|x| *x <= t);
    if k == 0 {
        0.0
    } else {
        cif[k - 1]
    }
}

/// Plot data of Fig. 2: (name, times, cif) and the last follow-up time.
#[derive(Debug, Clone, Default)]
pub(crate) struct CifPlot {
    pub(crate) curves: Vec<(String, Vec<f64>, Vec<f64>)>,
    pub(crate) max_time: f64,
}

/// Fig. 2: Aalen–Johansen CIF (`cmprsk::cuminc`) on the PFS1 clock. "Any progression" with death
/// without progression as its competing event; OF, DF, ODF as competing causes of each other and
/// of death without progression.
pub(crate) fn cumulative(subjects: &[&Subject]) -> (CumIncSection, CifPlot) {
    let rows: Vec<(f64, Pfs1Outcome)> = subjects.iter().filter_map(|s| pfs1_outcome(s)).collect();
    let time: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let any_code: Vec<u32> = rows
        .iter()
        .map(|r| match r.1 {
            Pfs1Outcome::Censored => 0,
            Pfs1Outcome::Progression(_) => 1,
            Pfs1Outcome::DeathWithoutProgression => 2,
        })
        .collect();
    let pattern_code: Vec<u32> = rows
        .iter()
        .map(|r| match r.1 {
            Pfs1Outcome::Censored => 0,
            Pfs1Outcome::Progression(PatternCode::Of) => 1,
            Pfs1Outcome::Progression(PatternCode::Df) => 2,
            Pfs1Outcome::Progression(PatternCode::Odf) => 3,
            Pfs1Outcome::DeathWithoutProgression => 4,
            Pfs1Outcome::Progression(PatternCode::Unclassified) => 5,
        })
        .collect();
    let group = vec![0usize; rows.len()];
    let analyse = |codes: &[u32], cause: u32| -> (usize, Vec<f64>, Vec<f64>, Vec<f64>) {
        let events = codes.iter().filter(|c| **c == cause).count();
        if events == 0 {
            return (0, Vec::new(), Vec::new(), Vec::new());
        }
        match cumulative_incidence(&time, codes, &group, 1) {
            Ok(ci) => match ci.curves.into_iter().find(|c| c.cause == cause) {
                Some(c) => (events, c.times, c.cif, c.variance),
                None => (events, Vec::new(), Vec::new(), Vec::new()),
            },
            Err(_) => (events, Vec::new(), Vec::new(), Vec::new()),
        }
    };
    let specs: [(&'static str, &[u32], u32); 5] = [
        ("any_progression", &any_code, 1),
        ("OF", &pattern_code, 1),
        ("DF", &pattern_code, 2),
        ("ODF", &pattern_code, 3),
        ("death_without_progression", &any_code, 2),
    ];
    let mut curves = Vec::new();
    let mut plot = CifPlot { curves: Vec::new(), max_time: time.iter().copied().fold(0.0, f64::max) };
    let unclassified = pattern_code.iter().filter(|c| **c == 5).count();
    let mut all_specs: Vec<(&'static str, &[u32], u32)> = specs.to_vec();
    if unclassified > 0 {
        all_specs.push(("unclassified_progression", &pattern_code, 5));
    }
    for (name, codes, cause) in all_specs {
        let (events, times, cif, variance) = analyse(codes, cause);
        let defined = !rows.is_empty();
        let at = |t: f64| if defined { Num::new(cif_at(&times, &cif, t)) } else { Num(None) };
        curves.push(CifOut {
            name,
            events,
            at_12_months: at(MONTH_12),
            at_24_months: at(MONTH_24),
            times: times.iter().map(|v| Num::new(*v)).collect(),
            cif: cif.iter().map(|v| Num::new(*v)).collect(),
            variance: variance.iter().map(|v| Num::new(*v)).collect(),
        });
        plot.curves.push((name.to_owned(), times, cif));
    }
    (
        CumIncSection {
            population: "indexed patients with a PFS1 clock",
            time: "pfs1.days (from crizotinib start)",
            method: "Aalen-Johansen (cmprsk::cuminc); any_progression vs death without progression; OF, DF, ODF and death without progression as competing causes",
            n: rows.len(),
            curves,
        },
        plot,
    )
}

// ---- contingency tests --------------------------------------------------------------------------

/// The test of a 2×k table: Pearson chi-square (no continuity correction, as SPSS's "Pearson
/// Chi-Square" row), or Fisher's exact test when any expected count is below 5. Empty rows and
/// columns are dropped first; fewer than two of either: no test.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableTest {
    pub(crate) test: Option<&'static str>,
    pub(crate) statistic: Num,
    pub(crate) p: Num,
}

pub(crate) fn table_test(table: &[Vec<u64>]) -> TableTest {
    let none = TableTest { test: None, statistic: Num(None), p: Num(None) };
    let rows: Vec<Vec<u64>> = table.iter().filter(|r| r.iter().sum::<u64>() > 0).cloned().collect();
    let Some(width) = rows.first().map(Vec::len) else { return none };
    let keep: Vec<usize> = (0..width).filter(|&j| rows.iter().map(|r| r[j]).sum::<u64>() > 0).collect();
    let t: Vec<Vec<u64>> = rows.iter().map(|r| keep.iter().map(|&j| r[j]).collect()).collect();
    if t.len() < 2 || keep.len() < 2 {
        return none;
    }
    let n: f64 = t.iter().flatten().map(|v| *v as f64).sum();
    let row_sums: Vec<f64> = t.iter().map(|r| r.iter().map(|v| *v as f64).sum()).collect();
    let col_sums: Vec<f64> = (0..keep.len()).map(|j| t.iter().map(|r| r[j] as f64).sum()).collect();
    let small = row_sums.iter().any(|r| col_sums.iter().any(|c| r * c / n < 5.0));
    if small {
        match fisher_exact(&t) {
            Ok(f) => TableTest { test: Some("fisher"), statistic: Num(None), p: Num::new(f.p) },
            Err(_) => none,
        }
    } else {
        match chi_square(&t, false) {
            Ok(c) => TableTest { test: Some("chisq"), statistic: Num::new(c.statistic), p: Num::new(c.p) },
            Err(_) => none,
        }
    }
}

// ---- Table 1 ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Column {
    pub(crate) label: &'static str,
    pub(crate) n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) group: &'static str,
    pub(crate) n: usize,
    pub(crate) median: Num,
    pub(crate) min: Num,
    pub(crate) max: Num,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LevelCounts {
    pub(crate) level: &'static str,
    pub(crate) all: usize,
    pub(crate) no: usize,
    pub(crate) yes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Missing {
    pub(crate) all: usize,
    pub(crate) no: usize,
    pub(crate) yes: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Table1Row {
    Continuous {
        variable: &'static str,
        kind: &'static str,
        summaries: Vec<Summary>,
        missing: Missing,
        test: Option<&'static str>,
        statistic: Num,
        p: Num,
    },
    Categorical {
        variable: &'static str,
        kind: &'static str,
        levels: Vec<LevelCounts>,
        missing: Missing,
        test: Option<&'static str>,
        statistic: Num,
        p: Num,
    },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table1 {
    pub(crate) population: &'static str,
    pub(crate) by: &'static str,
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Table1Row>,
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        None
    } else if n % 2 == 1 {
        Some(sorted[n / 2])
    } else {
        Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0)
    }
}

fn summarise(group: &'static str, values: &[f64]) -> Summary {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Summary {
        group,
        n: v.len(),
        median: Num::opt(median(&v)),
        min: Num::opt(v.first().copied()),
        max: Num::opt(v.last().copied()),
    }
}

fn continuous(variable: &'static str, subjects: &[&Subject], value: impl Fn(&Subject) -> Option<f64>) -> Table1Row {
    let rt = |s: &Subject| s.labels.rt.any.unwrap_or(false);
    let all: Vec<f64> = subjects.iter().filter_map(|s| value(s)).collect();
    let no: Vec<f64> = subjects.iter().filter(|s| !rt(s)).filter_map(|s| value(s)).collect();
    let yes: Vec<f64> = subjects.iter().filter(|s| rt(s)).filter_map(|s| value(s)).collect();
    let missing = Missing {
        all: subjects.iter().filter(|s| value(s).is_none()).count(),
        no: subjects.iter().filter(|s| !rt(s) && value(s).is_none()).count(),
        yes: subjects.iter().filter(|s| rt(s) && value(s).is_none()).count(),
    };
    // wilcox.test(no, yes): the first group in sorted order ("no") first.
    let (test, statistic, p) = match rank_sum(&no, &yes) {
        Ok(w) => (Some("wilcoxon"), Num::new(w.statistic), Num::new(w.p)),
        Err(_) => (None, Num(None), Num(None)),
    };
    Table1Row::Continuous {
        variable,
        kind: "continuous",
        summaries: vec![summarise("all", &all), summarise("no", &no), summarise("yes", &yes)],
        missing,
        test,
        statistic,
        p,
    }
}

/// A two-level variable: `value` is `Some(true)` for the second level.
fn binary(
    variable: &'static str,
    levels: [&'static str; 2],
    subjects: &[&Subject],
    value: impl Fn(&Subject) -> Option<bool>,
) -> Table1Row {
    let rt = |s: &Subject| s.labels.rt.any.unwrap_or(false);
    let count = |lvl: bool, grp: Option<bool>| {
        subjects.iter().filter(|s| value(s) == Some(lvl) && grp.is_none_or(|g| rt(s) == g)).count()
    };
    let lv: Vec<LevelCounts> = [false, true]
        .iter()
        .map(|&l| LevelCounts {
            level: levels[usize::from(l)],
            all: count(l, None),
            no: count(l, Some(false)),
            yes: count(l, Some(true)),
        })
        .collect();
    let missing = Missing {
        all: subjects.iter().filter(|s| value(s).is_none()).count(),
        no: subjects.iter().filter(|s| !rt(s) && value(s).is_none()).count(),
        yes: subjects.iter().filter(|s| rt(s) && value(s).is_none()).count(),
    };
    let table: Vec<Vec<u64>> = lv.iter().map(|l| vec![l.no as u64, l.yes as u64]).collect();
    let t = table_test(&table);
    Table1Row::Categorical {
        variable,
        kind: "categorical",
        levels: lv,
        missing,
        test: t.test,
        statistic: t.statistic,
        p: t.p,
    }
}

/// Table 1's metastatic-site rows: every organ of the contract but the brain (the `bbm` row), in
/// the study's order (lung, liver, adrenal, bone), then the others.
pub(crate) const TABLE1_SITES: [(Organ, &str); 8] = [
    (Organ::Lung, "metastasis_lung"),
    (Organ::Liver, "metastasis_liver"),
    (Organ::Adrenal, "metastasis_adrenal"),
    (Organ::Bone, "metastasis_bone"),
    (Organ::Pleura, "metastasis_pleura"),
    (Organ::RegionalLn, "metastasis_regional_ln"),
    (Organ::DistantLn, "metastasis_distant_ln"),
    (Organ::Other, "metastasis_other"),
];

/// Table 1: baseline characteristics by any radiotherapy during the course (`rt.any`).
pub(crate) fn table1(subjects: &[&Subject]) -> Table1 {
    let rt = |s: &Subject| s.labels.rt.any.unwrap_or(false);
    let yes = subjects.iter().filter(|s| rt(s)).count();
    let mut rows = vec![
        continuous("age_years", subjects, |s| s.age),
        binary("sex", ["male", "female"], subjects, Subject::female),
        binary("histology", ["adenocarcinoma", "non_adenocarcinoma"], subjects, |s| s.adenocarcinoma().map(|a| !a)),
        binary("ecog", ["0-1", "2+"], subjects, Subject::ecog_2plus),
        continuous("primary_size_mm", subjects, |s| s.primary_size_mm),
        binary("t_stage", ["T1-2", "T3-4"], subjects, Subject::t3_4),
        binary("n_stage", ["N0", "N1-3"], subjects, Subject::n1_3),
        binary("bbm", ["no", "yes"], subjects, Subject::bbm),
        binary("metastatic_organs", ["1-2", "3+"], subjects, Subject::organs_3plus),
        binary("metastatic_lesions", ["1-5", "6+"], subjects, Subject::lesions_6plus),
    ];
    for (organ, variable) in TABLE1_SITES {
        rows.push(binary(variable, ["no", "yes"], subjects, |s| s.metastasis_in(organ)));
    }
    Table1 {
        population: "indexed patients",
        by: "rt.any",
        columns: vec![
            Column { label: "all", n: subjects.len() },
            Column { label: "no", n: subjects.len() - yes },
            Column { label: "yes", n: yes },
        ],
        rows,
    }
}

// ---- Table 2 ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case)]
pub(crate) struct PatternCounts {
    pub(crate) name: &'static str,
    pub(crate) all: usize,
    pub(crate) OF: usize,
    pub(crate) DF: usize,
    pub(crate) ODF: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table2 {
    pub(crate) population: &'static str,
    pub(crate) columns: Vec<Column>,
    pub(crate) extent: Vec<PatternCounts>,
    pub(crate) sites: Vec<PatternCounts>,
}

pub(crate) const EXTENTS: [&str; 3] = ["primary_only", "metastasis_only", "primary_and_metastasis"];
/// Organs in the study's row order (Table 2), then the contract's remaining organs.
pub(crate) const ORGANS: [&str; 9] =
    ["lung", "liver", "brain", "bone", "adrenal", "regional_ln", "distant_ln", "pleura", "other"];

/// Table 2: extent and organs of the initial failure, per pattern (patients with PD1).
pub(crate) fn table2(subjects: &[&Subject]) -> Table2 {
    let with_pd1: Vec<&Subject> = subjects.iter().copied().filter(|s| s.labels.pd1.is_some()).collect();
    let counts = |name: &'static str, pred: &dyn Fn(&Subject) -> bool| {
        let c = |p: Option<&str>| with_pd1.iter().filter(|s| pred(s) && (p.is_none() || s.pattern() == p)).count();
        PatternCounts { name, all: c(None), OF: c(Some("OF")), DF: c(Some("DF")), ODF: c(Some("ODF")) }
    };
    fn extent_of(s: &Subject) -> Option<&str> {
        s.labels.pd1.as_ref().and_then(|p| p.extent.as_deref())
    }
    let mut extent: Vec<PatternCounts> =
        EXTENTS.iter().map(|e| counts(e, &|s: &Subject| extent_of(s) == Some(*e))).collect();
    extent.push(counts("unknown", &|s: &Subject| extent_of(s).is_none()));
    let sites = ORGANS
        .iter()
        .map(|o| counts(o, &|s: &Subject| s.labels.pd1.as_ref().is_some_and(|p| p.sites.iter().any(|x| x == o))))
        .collect();
    let col = |label: &'static str, p: Option<&str>| Column {
        label,
        n: with_pd1.iter().filter(|s| p.is_none() || s.pattern() == p).count(),
    };
    Table2 {
        population: "indexed patients with a first progression (PD1)",
        columns: vec![col("all", None), col("OF", Some("OF")), col("DF", Some("DF")), col("ODF", Some("ODF"))],
        extent,
        sites,
    }
}

// ---- Table 3 ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FgRow {
    pub(crate) covariate: &'static str,
    pub(crate) contrast: &'static str,
    pub(crate) n: usize,
    pub(crate) events: usize,
    pub(crate) shr: Num,
    pub(crate) shr_ci: [Num; 2],
    pub(crate) p: Num,
    pub(crate) converged: Option<bool>,
    pub(crate) note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FgModel {
    pub(crate) covariates: Vec<&'static str>,
    pub(crate) dropped: Vec<&'static str>,
    pub(crate) n: usize,
    pub(crate) events: usize,
    pub(crate) converged: Option<bool>,
    pub(crate) iterations: Option<usize>,
    pub(crate) coefficients: Vec<FgRow>,
    pub(crate) note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table3 {
    pub(crate) population: &'static str,
    pub(crate) time: &'static str,
    pub(crate) cause: &'static str,
    pub(crate) competing: Vec<&'static str>,
    pub(crate) method: &'static str,
    pub(crate) n: usize,
    pub(crate) events_of: usize,
    pub(crate) events_competing: usize,
    pub(crate) censored: usize,
    pub(crate) univariate: Vec<FgRow>,
    pub(crate) multivariate: FgModel,
}

type Extract = fn(&Subject) -> Option<bool>;

/// The candidate predictors of original-site failure, coded 1 for the named contrast.
pub(crate) fn predictors() -> Vec<(&'static str, &'static str, Extract)> {
    vec![
        ("age_gt_50", "age > 50 vs <= 50 years", |s| s.age.map(|a| a > 50.0)),
        ("female", "female vs male", Subject::female),
        ("non_adenocarcinoma", "non-adenocarcinoma vs adenocarcinoma", |s| s.adenocarcinoma().map(|a| !a)),
        ("ecog_2plus", "ECOG >= 2 vs 0-1", Subject::ecog_2plus),
        ("primary_size_ge_35mm", "primary >= 35 mm vs < 35 mm", |s| s.primary_size_mm.map(|v| v >= 35.0)),
        ("t3_4", "T3-4 vs T1-2", Subject::t3_4),
        ("n1_3", "N1-3 vs N0", Subject::n1_3),
        ("metastatic_organs_3plus", ">= 3 vs 1-2 metastatic organs", Subject::organs_3plus),
        ("metastatic_lesions_6plus", ">= 6 vs 1-5 metastatic lesions", Subject::lesions_6plus),
        ("bbm", "baseline brain metastases yes vs no", Subject::bbm),
        ("metastasis_lung", "baseline lung metastases yes vs no", |s| s.metastasis_in(Organ::Lung)),
        ("metastasis_liver", "baseline liver metastases yes vs no", |s| s.metastasis_in(Organ::Liver)),
        ("metastasis_adrenal", "baseline adrenal metastases yes vs no", |s| s.metastasis_in(Organ::Adrenal)),
        ("metastasis_bone", "baseline bone metastases yes vs no", |s| s.metastasis_in(Organ::Bone)),
        ("prior_systemic_lines_1plus", ">= 1 vs 0 prior systemic lines", |s| s.prior_lines.map(|l| l >= 1)),
        ("prior_rt", "radiotherapy before crizotinib yes vs no", |s| s.labels.rt.prior),
        ("objective_response", "objective response yes vs no", |s| s.labels.objective_response),
    ]
}

/// The multivariate model: the study's (univariate p < 0.05 in the paper), fixed so that the model
/// does not change with the data cut-off.
pub(crate) const MULTIVARIATE: [&str; 5] =
    ["non_adenocarcinoma", "primary_size_ge_35mm", "metastatic_organs_3plus", "metastatic_lesions_6plus", "bbm"];

fn fg_code(o: Pfs1Outcome) -> u32 {
    match o {
        Pfs1Outcome::Censored => 0,
        Pfs1Outcome::Progression(PatternCode::Of) => 1,
        // DF, ODF, an unclassified progression and death without progression compete with OF.
        _ => 2,
    }
}

fn fit_rows(
    rows: &[(f64, u32, Vec<f64>)],
    names: &[(&'static str, &'static str)],
) -> (usize, usize, Result<registry_stats::finegray::FineGrayFit, String>) {
    let time: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let status: Vec<u32> = rows.iter().map(|r| r.1).collect();
    let events = status.iter().filter(|s| **s == 1).count();
    let covs: Vec<Covariate> = names
        .iter()
        .enumerate()
        .map(|(j, (name, _))| Covariate { name: (*name).to_owned(), values: rows.iter().map(|r| r.2[j]).collect() })
        .collect();
    let fit = if events == 0 {
        Err("no original-site failure".to_owned())
    } else {
        fine_gray(&time, &status, 1, &covs, &FineGrayConfig::default()).map_err(|e| e.to_string())
    };
    (rows.len(), events, fit)
}

/// A binary covariate with no OF event at one of its levels: the likelihood is monotone and the
/// SHR diverges (crr still "converges" to a huge number with a spuriously narrow CI). Returns the
/// note, and the row's numbers are reported as null.
fn monotone(rows: &[(f64, u32, Vec<f64>)], j: usize) -> Option<String> {
    [0.0, 1.0].iter().find_map(|&level| {
        let none = !rows.iter().any(|r| r.2[j] == level && r.1 == 1);
        none.then(|| format!("no OF event with the covariate = {level}: the SHR diverges (monotone likelihood)"))
    })
}

fn fg_row(
    covariate: &'static str,
    contrast: &'static str,
    n: usize,
    events: usize,
    fit: &Result<registry_stats::finegray::FineGrayFit, String>,
    j: usize,
    diverges: Option<String>,
) -> FgRow {
    if let (Some(note), Ok(f)) = (&diverges, fit) {
        return FgRow {
            covariate,
            contrast,
            n,
            events,
            shr: Num(None),
            shr_ci: [Num(None); 2],
            p: Num(None),
            converged: Some(f.converged),
            note: Some(note.clone()),
        };
    }
    match fit {
        Ok(f) => {
            let c = f.coefficients.get(j);
            let shr = Num::opt(c.map(|c| c.shr));
            FgRow {
                covariate,
                contrast,
                n,
                events,
                shr,
                shr_ci: [Num::opt(c.map(|c| c.shr_ci[0])), Num::opt(c.map(|c| c.shr_ci[1]))],
                p: Num::opt(c.map(|c| c.p)),
                converged: Some(f.converged),
                note: shr.get().is_none().then(|| "estimate not finite".to_owned()),
            }
        }
        Err(e) => FgRow {
            covariate,
            contrast,
            n,
            events,
            shr: Num(None),
            shr_ci: [Num(None); 2],
            p: Num(None),
            converged: None,
            note: Some(e.clone()),
        },
    }
}

/// Table 3: Fine–Gray (`cmprsk::crr`) for OF (cause 1) on the PFS1 clock; DF, ODF and death
/// without progression compete (cause 2). Complete cases per model; a covariate that does not
/// vary among them is not fitted (univariate) or dropped (multivariate), with a note.
pub(crate) fn table3(subjects: &[&Subject]) -> Table3 {
    let outcomes: Vec<(&Subject, f64, u32)> =
        subjects.iter().filter_map(|s| pfs1_outcome(s).map(|(t, o)| (*s, t, fg_code(o)))).collect();
    let preds = predictors();
    let mut univariate = Vec::new();
    for (name, contrast, f) in &preds {
        let rows: Vec<(f64, u32, Vec<f64>)> = outcomes
            .iter()
            .filter_map(|(s, t, c)| f(s).map(|x| (*t, *c, vec![f64::from(u8::from(x))])))
            .collect();
        let varies = rows.iter().any(|r| r.2[0] == 1.0) && rows.iter().any(|r| r.2[0] == 0.0);
        if !varies {
            let events = rows.iter().filter(|r| r.1 == 1).count();
            let fit = Err("covariate does not vary".to_owned());
            univariate.push(fg_row(name, contrast, rows.len(), events, &fit, 0, None));
            continue;
        }
        let (n, events, fit) = fit_rows(&rows, &[(*name, *contrast)]);
        univariate.push(fg_row(name, contrast, n, events, &fit, 0, monotone(&rows, 0)));
    }
    // Multivariate: complete cases on the model's covariates, constant columns dropped.
    let chosen: Vec<&(&'static str, &'static str, Extract)> =
        MULTIVARIATE.iter().filter_map(|m| preds.iter().find(|p| p.0 == *m)).collect();
    let complete: Vec<(f64, u32, Vec<f64>)> = outcomes
        .iter()
        .filter_map(|(s, t, c)| {
            let xs: Option<Vec<f64>> = chosen.iter().map(|p| p.2(s).map(|x| f64::from(u8::from(x)))).collect();
            xs.map(|xs| (*t, *c, xs))
        })
        .collect();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (j, p) in chosen.iter().enumerate() {
        let varies = complete.iter().any(|r| r.2[j] == 1.0) && complete.iter().any(|r| r.2[j] == 0.0);
        if varies {
            kept.push(j);
        } else {
            dropped.push(p.0);
        }
    }
    let rows: Vec<(f64, u32, Vec<f64>)> =
        complete.iter().map(|(t, c, xs)| (*t, *c, kept.iter().map(|&j| xs[j]).collect())).collect();
    let names: Vec<(&'static str, &'static str)> = kept.iter().map(|&j| (chosen[j].0, chosen[j].1)).collect();
    let multivariate = if names.is_empty() {
        FgModel {
            covariates: Vec::new(),
            dropped,
            n: rows.len(),
            events: rows.iter().filter(|r| r.1 == 1).count(),
            converged: None,
            iterations: None,
            coefficients: Vec::new(),
            note: Some("no covariate varies".to_owned()),
        }
    } else {
        let (n, events, fit) = fit_rows(&rows, &names);
        let coefficients =
            names
            .iter()
            .enumerate()
            .map(|(j, (name, contrast))| fg_row(name, contrast, n, events, &fit, j, monotone(&rows, j)))
            .collect();
        FgModel {
            covariates: names.iter().map(|n| n.0).collect(),
            dropped,
            n,
            events,
            converged: fit.as_ref().ok().map(|f| f.converged),
            iterations: fit.as_ref().ok().map(|f| f.iterations),
            coefficients,
            note: fit.as_ref().err().cloned(),
        }
    };
    Table3 {
        population: "indexed patients with a PFS1 clock (complete cases per model)",
        time: "pfs1.days (from crizotinib start)",
        cause: "OF",
        competing: vec!["DF", "ODF", "death_without_progression"],
        method: "Fine-Gray subdistribution hazards (cmprsk::crr), cause 1 = OF, cause 2 = DF/ODF/death without progression",
        n: outcomes.len(),
        events_of: outcomes.iter().filter(|o| o.2 == 1).count(),
        events_competing: outcomes.iter().filter(|o| o.2 == 2).count(),
        censored: outcomes.iter().filter(|o| o.2 == 0).count(),
        univariate,
        multivariate,
    }
}

// ---- brain evolution (Fig. 3) -------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pd1Brain {
    pub(crate) none: usize,
    pub(crate) oligo: usize,
    pub(crate) multiple: usize,
    pub(crate) no_pd1: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrainRow {
    pub(crate) baseline: &'static str,
    pub(crate) prior_brain_rt: &'static str,
    pub(crate) n: usize,
    pub(crate) pd1_brain: Pd1Brain,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrainTest {
    pub(crate) id: &'static str,
    pub(crate) question: &'static str,
    /// Rows: BBM no, yes; columns: outcome no, yes.
    pub(crate) table: Vec<Vec<u64>>,
    pub(crate) test: Option<&'static str>,
    pub(crate) statistic: Num,
    pub(crate) p: Num,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrainEvolution {
    pub(crate) population: &'static str,
    pub(crate) rows: Vec<BrainRow>,
    pub(crate) tests: Vec<BrainTest>,
}

pub(crate) const BRAIN_CLASSES: [&str; 3] = ["none", "oligo", "multiple"];

/// Fig. 3: baseline brain (none / oligo / multiple) × prior brain RT × brain at PD1.
pub(crate) fn brain_evolution(subjects: &[&Subject]) -> BrainEvolution {
    let with_baseline: Vec<&Subject> = subjects.iter().copied().filter(|s| s.baseline_brain().is_some()).collect();
    fn pd1_brain(s: &Subject) -> &str {
        match &s.labels.pd1 {
            None => "no_pd1",
            Some(p) => p.brain.as_deref().unwrap_or("none"),
        }
    }
    let mut rows = Vec::new();
    for b in BRAIN_CLASSES {
        for (rt_label, rt) in [("no", false), ("yes", true)] {
            let cell: Vec<&Subject> = with_baseline
                .iter()
                .copied()
                .filter(|s| s.baseline_brain() == Some(b) && s.labels.rt.prior_brain.unwrap_or(false) == rt)
                .collect();
            let c = |k: &str| cell.iter().filter(|s| pd1_brain(s) == k).count();
            rows.push(BrainRow {
                baseline: b,
                prior_brain_rt: rt_label,
                n: cell.len(),
                pd1_brain: Pd1Brain { none: c("none"), oligo: c("oligo"), multiple: c("multiple"), no_pd1: c("no_pd1") },
            });
        }
    }
    let bbm = |s: &Subject| s.bbm().unwrap_or(false);
    let brain_pd = |s: &Subject| matches!(pd1_brain(s), "oligo" | "multiple");
    let tab = |subset: &[&Subject], outcome: &dyn Fn(&Subject) -> bool| -> Vec<Vec<u64>> {
        [false, true]
            .iter()
            .map(|&b| {
                let g: Vec<&&Subject> = subset.iter().filter(|s| bbm(s) == b).collect();
                vec![g.iter().filter(|s| !outcome(s)).count() as u64, g.iter().filter(|s| outcome(s)).count() as u64]
            })
            .collect()
    };
    let t1 = tab(&with_baseline, &brain_pd);
    let progressors: Vec<&Subject> = with_baseline.iter().copied().filter(|s| brain_pd(s)).collect();
    let t2 = tab(&progressors, &|s: &Subject| pd1_brain(s) == "multiple");
    let mk = |id, question, table: Vec<Vec<u64>>| {
        let t = table_test(&table);
        BrainTest { id, question, table, test: t.test, statistic: t.statistic, p: t.p }
    };
    BrainEvolution {
        population: "indexed patients with a baseline",
        rows,
        tests: vec![
            mk("brain_pd_by_bbm", "brain progression at PD1, by baseline brain metastases", t1),
            mk(
                "multiple_brain_pd_by_bbm",
                "multiple (vs oligo) brain progression among patients with brain progression at PD1, by baseline brain metastases",
                t2,
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_test_uses_fisher_when_an_expected_count_is_below_five() {
        let t = table_test(&[vec![1, 4], vec![6, 9]]); // expected 5·7/20 = 1.75
        assert_eq!(t.test, Some("fisher"));
        let t = table_test(&[vec![30, 20], vec![25, 25]]);
        assert_eq!(t.test, Some("chisq"));
        assert!(t.statistic.get().is_some());
    }

    #[test]
    fn table_test_is_undefined_with_a_single_level() {
        let t = table_test(&[vec![0, 0], vec![3, 4]]);
        assert!(t.test.is_none() && t.p.get().is_none());
    }

    #[test]
    fn cif_at_is_a_right_continuous_step() {
        assert_eq!(cif_at(&[10.0, 20.0], &[0.1, 0.3], 5.0), 0.0);
        assert_eq!(cif_at(&[10.0, 20.0], &[0.1, 0.3], 10.0), 0.1);
        assert_eq!(cif_at(&[10.0, 20.0], &[0.1, 0.3], 25.0), 0.3);
    }
}
