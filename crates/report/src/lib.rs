//! `registry-report`: the cohort report of `interfaces.md` ("Report") — the study's tables and
//! figures (Ni et al. 2019, Tables 1–3, Figs 1–3) recomputed from the patients' labels at any
//! cut-off — as JSON, Markdown or one self-contained HTML page with hand-written SVG plots; and
//! the CDISC-style ADTTE export.
//!
//! Architecture invariant: this crate does no IO and reads no clock. The caller hands in every
//! patient's labels (their JSON) and enrolment facts with the view (`as_of`, `known_at`); the
//! output is a pure function of that input, byte for byte (patients are sorted by id, maps have a
//! fixed key order, floats one formatting: [`num`]).
//!
//! Code map:
//! - [`input`]: what is read of each patient; the lenient labels shape.
//! - `analysis`: every table and figure (KM, log-rank, Cox, CIF, Fine–Gray, contingency tests).
//! - `markdown`, `html` (with `svg`): the renderings.
//! - [`adtte`]: `registry export adtte`.
//!
//! Choices (populations, codings, tests) are documented in `docs/report.md`.

pub mod adtte;
mod analysis;
mod html;
pub mod input;
mod markdown;
mod num;
mod svg;

use chrono::NaiveDate;
use serde::Serialize;

use analysis::{
    BrainEvolution, Comparison, CumIncSection, CifPlot, Endpoint, KmPlot, Table1, Table2, Table3,
};
pub use input::{PatientInput, PatientRow, ReportError, ReportInput};
use input::Subject;
use num::Num;

/// Failure-pattern counts at PD1.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case)]
struct Patterns {
    OF: usize,
    DF: usize,
    ODF: usize,
}

/// The cohort report. Serialises to exactly the top-level keys of `interfaces.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    as_of: NaiveDate,
    known_at: Option<String>,
    n_patients: usize,
    n_indexed: usize,
    orr: Num,
    dcr: Num,
    pfs1: Endpoint,
    pfs2: Endpoint,
    os: Endpoint,
    patterns: Patterns,
    comparisons: Vec<Comparison>,
    cumulative_incidence: CumIncSection,
    table1: Table1,
    table2: Table2,
    table3: Table3,
    brain_evolution: BrainEvolution,
    #[serde(skip)]
    plots: Plots,
    #[serde(skip)]
    best_response: Vec<(&'static str, usize)>,
}

/// What the figures draw, beyond the JSON numbers.
#[derive(Debug, Clone, Default)]
struct Plots {
    /// Overall PFS1, PFS2, OS, then Fig. 1 a–d.
    km: Vec<KmPlot>,
    cif: CifPlot,
}

/// Builds the report from every listed patient's labels and enrolment.
pub fn build(input: &ReportInput) -> Result<Report, ReportError> {
    let mut rows = Vec::with_capacity(input.patients.len());
    for (i, p) in input.patients.iter().enumerate() {
        rows.push(PatientRow::from_input(i, p)?);
    }
    Ok(build_from_rows(input.as_of, input.known_at, rows))
}

/// Builds the report from every listed patient's [`PatientRow`] (any order) in the view
/// (`as_of`, `known_at`): what [`build`] does after reading its input into rows.
pub fn build_from_rows(as_of: NaiveDate, known_at: Option<chrono::DateTime<chrono::Utc>>, rows: Vec<PatientRow>) -> Report {
    let mut subjects: Vec<Subject> = rows.into_iter().map(PatientRow::into_subject).collect();
    subjects.sort_by(|a, b| a.labels.patient_id.cmp(&b.labels.patient_id));
    let indexed: Vec<&Subject> = subjects.iter().filter(|s| s.indexed).collect();
    let n_indexed = indexed.len();

    let bor = |r: &str| indexed.iter().filter(|s| s.labels.best_response.as_deref() == Some(r)).count();
    let best_response: Vec<(&'static str, usize)> =
        ["CR", "PR", "SD", "PD", "NE"].iter().map(|r| (*r, bor(r))).collect();
    let bor_none = indexed.iter().filter(|s| s.labels.best_response.is_none()).count();
    let mut best_response = best_response;
    best_response.push(("none", bor_none));
    let fraction = |k: usize| if n_indexed == 0 { Num(None) } else { Num::new(k as f64 / n_indexed as f64) };
    let orr = fraction(bor("CR") + bor("PR"));
    let dcr = fraction(bor("CR") + bor("PR") + bor("SD"));

    let mut km_plots = Vec::new();
    let mut overall = |name: &str, title: &str, obs: Vec<input::Obs>| {
        let (e, curve) = analysis::km(&obs);
        km_plots.push(KmPlot { id: name.to_owned(), title: title.to_owned(), curves: vec![("all".to_owned(), curve)], note: String::new() });
        e
    };
    let pfs1 = overall("pfs1", "PFS1: crizotinib start to first progression or death (indexed patients)", indexed.iter().filter_map(|s| s.pfs1()).collect());
    let pfs2 = overall("pfs2", "PFS2: first to second progression or death (patients with PD1)", indexed.iter().filter_map(|s| s.pfs2()).collect());
    let os = overall("os", "OS: diagnosis to death (indexed patients)", indexed.iter().filter_map(|s| s.os()).collect());

    let pattern = |p: &str| indexed.iter().filter(|s| s.pattern() == Some(p)).count();
    let patterns = Patterns { OF: pattern("OF"), DF: pattern("DF"), ODF: pattern("ODF") };

    let pair = |obs: Option<input::Obs>, by: Option<bool>| obs.zip(by);
    let fig1a: Vec<_> = indexed
        .iter()
        .filter(|s| s.bbm() == Some(true))
        .filter_map(|s| pair(s.pfs1(), s.labels.rt.prior_brain))
        .collect();
    let fig1b: Vec<_> = indexed.iter().filter_map(|s| pair(s.pfs2(), s.labels.rt.salvage)).collect();
    let fig1c: Vec<_> = indexed.iter().filter_map(|s| pair(s.pfs2(), s.labels.cbpd)).collect();
    let fig1d: Vec<_> = indexed.iter().filter_map(|s| pair(s.os(), s.labels.rt.any)).collect();
    let specs = [
        ("fig1a", "pfs1", "indexed patients with baseline brain metastases", "rt.prior_brain", fig1a),
        ("fig1b", "pfs2", "indexed patients with PD1", "rt.salvage", fig1b),
        ("fig1c", "pfs2", "indexed patients with PD1 and a known CBPD", "cbpd", fig1c),
        ("fig1d", "os", "indexed patients", "rt.any", fig1d),
    ];
    let mut comparisons = Vec::new();
    for (id, endpoint, population, by, rows) in specs {
        let (c, plot) = analysis::compare(id, endpoint, population, by, &rows);
        comparisons.push(c);
        km_plots.push(plot);
    }
    let (cumulative_incidence, cif_plot) = analysis::cumulative(&indexed);

    Report {
        as_of,
        known_at: known_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        n_patients: subjects.len(),
        n_indexed,
        orr,
        dcr,
        pfs1,
        pfs2,
        os,
        patterns,
        comparisons,
        cumulative_incidence,
        table1: analysis::table1(&indexed),
        table2: analysis::table2(&indexed),
        table3: analysis::table3(&indexed),
        brain_evolution: analysis::brain_evolution(&indexed),
        plots: Plots { km: km_plots, cif: cif_plot },
        best_response,
    }
}

impl Report {
    /// The report as a JSON value (the wire shape).
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, integers and finite numbers only: serialisation cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Pretty-printed JSON with a trailing newline: `registry report --format json`.
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The tables as Markdown: `--format md`.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// One self-contained HTML page (inline CSS and SVG, no external reference): `--format html`.
    pub fn to_html(&self) -> String {
        html::render(self)
    }
}
