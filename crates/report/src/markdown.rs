//! The report as a document: a list of [`Block`]s (headings, paragraphs, tables, figure slots)
//! built once from the report and rendered as Markdown here, as HTML in `html`.

use crate::analysis::{Table1Row, EXTENTS};
use crate::num::{fmt_fixed, fmt_months, fmt_p, Num};
use crate::Report;

/// One piece of the document.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    Heading(u8, String),
    Para(String),
    Table { header: Vec<String>, rows: Vec<Vec<String>> },
    /// A figure slot: Kaplan–Meier plot by id, `cif`, or `brain`. Markdown skips it.
    Figure(String),
}

fn pct(k: usize, n: usize) -> String {
    if n == 0 {
        format!("{k}")
    } else {
        format!("{k} ({:.1})", 100.0 * k as f64 / n as f64)
    }
}

fn frac(v: Num) -> String {
    match v.get() {
        None => "—".to_owned(),
        Some(x) => format!("{:.1}%", 100.0 * x),
    }
}

fn median_ci(m: Num, ci: [Num; 2]) -> (String, String) {
    (fmt_months(m.get()), format!("{}–{}", fmt_months(ci[0].get()), fmt_months(ci[1].get())))
}

fn s<T: ToString>(v: T) -> String {
    v.to_string()
}

/// The document, in the study's order.
pub(crate) fn blocks(r: &Report) -> Vec<Block> {
    let mut b = Vec::new();
    b.push(Block::Heading(1, "Cohort report".into()));
    b.push(Block::Para(format!(
        "Data cut-off (as_of): {}. Known at: {}. Patients listed: {}; indexed (crizotinib started): {}. \
         Times in months (days / 30.4375); medians by Kaplan–Meier with the 95% CI where the log band crosses 0.5 (as R prints it).",
        r.as_of,
        r.known_at.as_deref().unwrap_or("everything received"),
        r.n_patients,
        r.n_indexed
    )));

    b.push(Block::Heading(2, "Response to crizotinib".into()));
    let mut rows: Vec<Vec<String>> =
        r.best_response.iter().map(|(k, n)| vec![s(k), pct(*n, r.n_indexed)]).collect();
    rows.push(vec!["ORR (CR+PR)".into(), frac(r.orr)]);
    rows.push(vec!["DCR (CR+PR+SD)".into(), frac(r.dcr)]);
    b.push(Block::Table { header: vec!["best overall response".into(), "n (% of indexed)".into()], rows });

    b.push(Block::Heading(2, "Survival".into()));
    let mut rows = Vec::new();
    for (name, e) in [("PFS1", &r.pfs1), ("PFS2", &r.pfs2), ("OS", &r.os)] {
        let (m, ci) = median_ci(e.median_days, e.median_ci_days);
        rows.push(vec![s(name), s(e.n), s(e.events), m, ci]);
    }
    b.push(Block::Table {
        header: vec!["endpoint".into(), "n".into(), "events".into(), "median (months)".into(), "95% CI".into()],
        rows,
    });
    for id in ["pfs1", "pfs2", "os"] {
        b.push(Block::Figure(id.into()));
    }

    b.push(Block::Heading(2, "Figure 1: survival by radiotherapy and CBPD".into()));
    let mut rows = Vec::new();
    for c in &r.comparisons {
        for g in &c.groups {
            let (m, ci) = median_ci(g.median_days, g.median_ci_days);
            rows.push(vec![
                s(c.id),
                c.endpoint.to_uppercase(),
                s(c.by),
                s(g.label),
                s(g.n),
                s(g.events),
                m,
                ci,
                fmt_p(c.logrank_p.get()),
                format!(
                    "{} ({}–{})",
                    fmt_fixed(c.hr.get(), 2),
                    fmt_fixed(c.hr_ci[0].get(), 2),
                    fmt_fixed(c.hr_ci[1].get(), 2)
                ),
            ]);
        }
    }
    b.push(Block::Table {
        header: ["figure", "endpoint", "by", "group", "n", "events", "median (months)", "95% CI", "log-rank p", "HR yes vs no (95% CI)"]
            .iter()
            .map(s)
            .collect(),
        rows,
    });
    for c in &r.comparisons {
        b.push(Block::Para(format!("{}: {} by {} among {}.", c.id, c.endpoint.to_uppercase(), c.by, c.population)));
        b.push(Block::Figure(c.id.into()));
    }

    b.push(Block::Heading(2, "Figure 2: patterns of failure and cumulative incidence".into()));
    let total = r.patterns.OF + r.patterns.DF + r.patterns.ODF;
    b.push(Block::Table {
        header: vec!["pattern at PD1".into(), "n (% of PD1)".into()],
        rows: vec![
            vec!["OF".into(), pct(r.patterns.OF, total)],
            vec!["DF".into(), pct(r.patterns.DF, total)],
            vec!["ODF".into(), pct(r.patterns.ODF, total)],
        ],
    });
    let ci = &r.cumulative_incidence;
    b.push(Block::Para(format!("Cumulative incidence on the PFS1 clock, {} patients. {}.", ci.n, ci.method)));
    b.push(Block::Table {
        header: vec!["curve".into(), "events".into(), "CIF at 12 months".into(), "CIF at 24 months".into()],
        rows: ci
            .curves
            .iter()
            .map(|c| vec![s(c.name), s(c.events), frac(c.at_12_months), frac(c.at_24_months)])
            .collect(),
    });
    b.push(Block::Figure("cif".into()));

    b.push(Block::Heading(2, "Table 1: baseline characteristics by any radiotherapy".into()));
    let t1 = &r.table1;
    let n_of = |label: &str| t1.columns.iter().find(|c| c.label == label).map_or(0, |c| c.n);
    let (na, nn, ny) = (n_of("all"), n_of("no"), n_of("yes"));
    let mut rows = Vec::new();
    for row in &t1.rows {
        match row {
            Table1Row::Continuous { variable, summaries, test, p, .. } => {
                let cell = |i: usize| {
                    summaries.get(i).map_or_else(String::new, |x| {
                        format!("{} ({}–{})", fmt_fixed(x.median.get(), 1), fmt_fixed(x.min.get(), 1), fmt_fixed(x.max.get(), 1))
                    })
                };
                rows.push(vec![
                    format!("{variable}, median (range)"),
                    cell(0),
                    cell(1),
                    cell(2),
                    test.unwrap_or("—").into(),
                    fmt_p(p.get()),
                ]);
            }
            Table1Row::Categorical { variable, levels, missing, test, p, .. } => {
                let (ma, mn, my) = (na - missing.all, nn - missing.no, ny - missing.yes);
                for (i, l) in levels.iter().enumerate() {
                    let first = i == 0;
                    rows.push(vec![
                        format!("{variable}: {}", l.level),
                        pct(l.all, ma),
                        pct(l.no, mn),
                        pct(l.yes, my),
                        if first { test.unwrap_or("—").into() } else { String::new() },
                        if first { fmt_p(p.get()) } else { String::new() },
                    ]);
                }
                if missing.all > 0 {
                    rows.push(vec![
                        format!("{variable}: unknown"),
                        s(missing.all),
                        s(missing.no),
                        s(missing.yes),
                        String::new(),
                        String::new(),
                    ]);
                }
            }
        }
    }
    b.push(Block::Table {
        header: vec![
            "characteristic".into(),
            format!("all (n = {na})"),
            format!("non-RT (n = {nn})"),
            format!("RT (n = {ny})"),
            "test".into(),
            "p".into(),
        ],
        rows,
    });

    b.push(Block::Heading(2, "Table 2: sites of initial failure".into()));
    let t2 = &r.table2;
    let cn = |i: usize| t2.columns.get(i).map_or(0, |c| c.n);
    let mut rows = Vec::new();
    for (group, list) in [("extent", &t2.extent), ("site", &t2.sites)] {
        for row in list.iter() {
            if group == "extent" && row.name == "unknown" && row.all == 0 {
                continue;
            }
            rows.push(vec![
                format!("{group}: {}", row.name),
                pct(row.all, cn(0)),
                pct(row.OF, cn(1)),
                pct(row.DF, cn(2)),
                pct(row.ODF, cn(3)),
            ]);
        }
    }
    debug_assert_eq!(EXTENTS.len(), 3);
    b.push(Block::Table {
        header: vec![
            "initial PD".into(),
            format!("all (n = {})", cn(0)),
            format!("OF (n = {})", cn(1)),
            format!("DF (n = {})", cn(2)),
            format!("ODF (n = {})", cn(3)),
        ],
        rows,
    });

    b.push(Block::Heading(2, "Table 3: predictors of original-site failure (Fine–Gray)".into()));
    let t3 = &r.table3;
    b.push(Block::Para(format!(
        "{} patients: {} OF, {} competing (DF, ODF, death without progression), {} censored. {}.",
        t3.n, t3.events_of, t3.events_competing, t3.censored, t3.method
    )));
    let shr = |x: &crate::analysis::FgRow| {
        format!("{} ({}–{})", fmt_fixed(x.shr.get(), 2), fmt_fixed(x.shr_ci[0].get(), 2), fmt_fixed(x.shr_ci[1].get(), 2))
    };
    let mut rows = Vec::new();
    for u in &t3.univariate {
        let m = t3.multivariate.coefficients.iter().find(|m| m.covariate == u.covariate);
        rows.push(vec![
            s(u.contrast),
            s(u.n),
            shr(u),
            fmt_p(u.p.get()),
            m.map_or_else(String::new, shr),
            m.map_or_else(String::new, |m| fmt_p(m.p.get())),
            u.note.clone().unwrap_or_default(),
        ]);
    }
    b.push(Block::Table {
        header: ["covariate", "n", "univariate SHR (95% CI)", "p", "multivariate SHR (95% CI)", "p", "note"]
            .iter()
            .map(s)
            .collect(),
        rows,
    });
    let mv = &t3.multivariate;
    b.push(Block::Para(format!(
        "Multivariate model: n = {}, converged: {}{}{}.",
        mv.n,
        mv.converged.map_or("—".to_owned(), |c| c.to_string()),
        if mv.dropped.is_empty() { String::new() } else { format!("; dropped (constant): {}", mv.dropped.join(", ")) },
        mv.note.as_ref().map_or(String::new(), |n| format!("; {n}"))
    )));

    b.push(Block::Heading(2, "Figure 3: evolution of brain disease".into()));
    let be = &r.brain_evolution;
    b.push(Block::Table {
        header: ["baseline brain", "prior brain RT", "n", "PD1: no brain PD", "PD1: oligo brain PD", "PD1: multiple brain PD", "no PD1"]
            .iter()
            .map(s)
            .collect(),
        rows: be
            .rows
            .iter()
            .map(|x| {
                vec![
                    s(x.baseline),
                    s(x.prior_brain_rt),
                    s(x.n),
                    s(x.pd1_brain.none),
                    s(x.pd1_brain.oligo),
                    s(x.pd1_brain.multiple),
                    s(x.pd1_brain.no_pd1),
                ]
            })
            .collect(),
    });
    b.push(Block::Figure("brain".into()));
    b.push(Block::Table {
        header: ["question", "BBM no: no / yes", "BBM yes: no / yes", "test", "p"].iter().map(s).collect(),
        rows: be
            .tests
            .iter()
            .map(|t| {
                let cell = |i: usize| t.table.get(i).map_or_else(String::new, |r| format!("{} / {}", r[0], r[1]));
                vec![s(t.question), cell(0), cell(1), t.test.unwrap_or("—").into(), fmt_p(t.p.get())]
            })
            .collect(),
    });
    b
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown: headings, paragraphs, pipe tables.
pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    for block in blocks(r) {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&"#".repeat(usize::from(level)));
                out.push(' ');
                out.push_str(&text);
                out.push_str("\n\n");
            }
            Block::Para(text) => {
                out.push_str(&text);
                out.push_str("\n\n");
            }
            Block::Table { header, rows } => {
                out.push_str(&format!("| {} |\n", header.iter().map(|h| md_cell(h)).collect::<Vec<_>>().join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                for row in rows {
                    out.push_str(&format!("| {} |\n", row.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")));
                }
                out.push('\n');
            }
            Block::Figure(_) => {}
        }
    }
    out
}
