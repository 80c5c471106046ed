//! Given a small hand-built cohort of labels whose answers are computed by hand, when the report
//! is built, then its JSON, Markdown, HTML and ADTTE say exactly those answers.

use chrono::NaiveDate;
use registry_domain::events::{AlkMethod, Enrollment, Histology, NStage, Organ, Sex, TStage};
use registry_report::{build, build_from_rows, PatientInput, PatientRow, ReportInput};
use serde_json::{json, Value};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn base(id: &str, status: &str) -> Value {
    json!({
        "patient_id": id, "status": status, "index_date": null, "diagnosis_date": null,
        "baseline": null, "best_response": null, "objective_response": null, "pd1": null, "pd2": null,
        "pfs1": null, "pfs2": null, "os": null,
        "rt": {"prior": null, "prior_brain": null, "prior_brain_modalities": [], "prior_extracranial": null,
               "salvage": null, "salvage_modalities": [], "any": false},
        "cbpd": null, "next_therapy": null, "death_date": null
    })
}

fn clock(start: &str, days: i64, event: bool, reason: &str) -> Value {
    let s = date(start);
    let end = s + chrono::Duration::days(days);
    json!({"start": start, "end": end.to_string(), "days": days, "event": event, "reason": reason})
}

fn baseline(bbm: bool, class: Option<&str>, organs: u32, lesions: u32) -> Value {
    json!({"scan_date": "2015-02-20", "bbm": bbm, "bbm_class": class, "brain_lesions": if bbm { 2 } else { 0 },
           "metastatic_organs": organs, "metastatic_lesions": lesions, "target_sum_mm": 80})
}

fn pd1(pattern: &str, extent: &str, sites: &[&str], brain: &str) -> Value {
    json!({"date": "2015-06-10", "pattern": pattern, "extent": extent, "sites": sites, "brain": brain,
           "salvage_candidate": "none"})
}

#[allow(clippy::too_many_arguments)]
fn indexed(
    id: &str,
    bor: &str,
    bl: Value,
    progression: Value,
    pfs1: Value,
    pfs2: Value,
    os: Value,
    rt: (bool, bool, Option<bool>, bool),
    cbpd: Option<bool>,
) -> Value {
    let mut v = base(id, "indexed");
    v["index_date"] = json!("2015-03-02");
    v["diagnosis_date"] = json!("2014-12-01");
    v["baseline"] = bl;
    v["best_response"] = json!(bor);
    v["objective_response"] = json!(bor == "CR" || bor == "PR");
    v["pd1"] = progression;
    v["pfs1"] = pfs1;
    v["pfs2"] = pfs2;
    v["os"] = os;
    v["rt"]["prior"] = json!(rt.0);
    v["rt"]["prior_brain"] = json!(rt.1);
    v["rt"]["prior_extracranial"] = json!(false);
    v["rt"]["salvage"] = json!(rt.2);
    v["rt"]["any"] = json!(rt.3);
    v["cbpd"] = json!(cbpd);
    v
}

fn enrolment(birth_year: u16, sex: Sex, histology: Histology, size: f64) -> Enrollment {
    Enrollment {
        diagnosis_date: date("2014-12-01"),
        birth_year,
        sex,
        histology,
        ecog: 1,
        t_stage: TStage::T2,
        n_stage: NStage::N2,
        primary_size_mm: size,
        alk_method: AlkMethod::Fish,
        prior_systemic_lines: 0,
    }
}

/// Seven patients: five indexed (P1–P5), one not indexed, one incomplete.
///
/// | id | BOR | PD1 (pattern, extent, sites, brain) | PFS1 | PFS2 | OS | BBM | prior brain RT | salvage | any RT | CBPD |
/// | P1 | PR | OF, primary_only, lung, none | 100 e | 50 e | 400 c | no | no | yes | yes | yes |
/// | P2 | CR | DF, metastasis_only, brain, oligo | 200 e | 80 c | 500 e | oligo | yes | no | yes | no |
/// | P3 | SD | ODF, primary_and_metastasis, brain+lung, multiple | 300 e | 30 e | 600 c | multiple | no | no | no | yes |
/// | P4 | PR | — | 400 c | — | 700 c | no | no | — | no | — |
/// | P5 | NE | — | 50 e (death) | — | 150 e | no | no | — | no | — |
fn cohort() -> ReportInput {
    let p1 = indexed(
        "P1",
        "PR",
        baseline(false, None, 1, 2),
        pd1("OF", "primary_only", &["lung"], "none"),
        clock("2015-03-02", 100, true, "progression"),
        clock("2015-06-10", 50, true, "progression"),
        clock("2014-12-01", 400, false, "censored_last_known_alive"),
        (false, false, Some(true), true),
        Some(true),
    );
    let p2 = indexed(
        "P2",
        "CR",
        baseline(true, Some("oligo"), 2, 4),
        pd1("DF", "metastasis_only", &["brain"], "oligo"),
        clock("2015-03-02", 200, true, "progression"),
        clock("2015-06-10", 80, false, "censored_last_assessment"),
        clock("2014-12-01", 500, true, "death"),
        (true, true, Some(false), true),
        Some(false),
    );
    let p3 = indexed(
        "P3",
        "SD",
        baseline(true, Some("multiple"), 3, 8),
        pd1("ODF", "primary_and_metastasis", &["brain", "lung"], "multiple"),
        clock("2015-03-02", 300, true, "progression"),
        clock("2015-06-10", 30, true, "death"),
        clock("2014-12-01", 600, false, "censored_last_known_alive"),
        (false, false, Some(false), false),
        Some(true),
    );
    let p4 = indexed(
        "P4",
        "PR",
        baseline(false, None, 1, 1),
        Value::Null,
        clock("2015-03-02", 400, false, "censored_last_assessment"),
        Value::Null,
        clock("2014-12-01", 700, false, "censored_last_known_alive"),
        (false, false, None, false),
        None,
    );
    let p5 = indexed(
        "P5",
        "NE",
        baseline(false, None, 2, 3),
        Value::Null,
        clock("2015-03-02", 50, true, "death"),
        Value::Null,
        clock("2014-12-01", 150, true, "death"),
        (false, false, None, false),
        None,
    );
    let mut p6 = base("P6", "not_indexed");
    p6["diagnosis_date"] = json!("2014-12-01");
    p6["os"] = clock("2014-12-01", 300, false, "censored_last_known_alive");
    let p7 = base("P7", "incomplete");
    let e = |y, s, h, size| Some(enrolment(y, s, h, size));
    let input = |labels, enrollment, sites: Option<&[Organ]>| PatientInput {
        labels,
        enrollment,
        baseline_metastatic_sites: sites.map(<[Organ]>::to_vec),
    };
    use Organ::{Bone, Brain, Liver, Lung};
    // Given out of order: the report sorts by patient_id. Baseline metastatic organs agree with
    // the labels' counts: P1 bone; P2 brain, liver; P3 bone, brain, lung; P4 lung; P5 bone, liver.
    let patients = vec![
        input(p3, e(1960, Sex::Female, Histology::Squamous, 40.0), Some(&[Bone, Brain, Lung])),
        input(p1, e(1965, Sex::Male, Histology::Adenocarcinoma, 30.0), Some(&[Bone])),
        input(p2, e(1970, Sex::Male, Histology::Adenocarcinoma, 25.0), Some(&[Brain, Liver])),
        input(p5, e(1950, Sex::Female, Histology::Adenocarcinoma, 50.0), Some(&[Bone, Liver])),
        input(p4, e(1980, Sex::Male, Histology::Adenocarcinoma, 20.0), Some(&[Lung])),
        input(p6, e(1955, Sex::Male, Histology::Adenocarcinoma, 33.0), None),
        input(p7, None, None),
    ];
    ReportInput { as_of: date("2017-01-01"), known_at: None, patients }
}

fn report_json() -> Value {
    build(&cohort()).expect("report").to_json()
}

#[test]
fn top_level_keys_are_exactly_those_of_the_interface() {
    let r = report_json();
    let keys: Vec<&str> = r.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "as_of", "known_at", "n_patients", "n_indexed", "orr", "dcr", "pfs1", "pfs2", "os", "patterns",
            "comparisons", "cumulative_incidence", "table1", "table2", "table3", "brain_evolution"
        ]
    );
    assert_eq!(r["as_of"], "2017-01-01");
    assert_eq!(r["known_at"], Value::Null);
}

#[test]
fn counts_response_rates_and_patterns_are_the_hand_computed_ones() {
    let r = report_json();
    assert_eq!(r["n_patients"], 7);
    assert_eq!(r["n_indexed"], 5);
    // ORR = (CR P2 + PR P1, P4) / 5; DCR adds SD P3.
    assert_eq!(r["orr"], 0.6);
    assert_eq!(r["dcr"], 0.8);
    assert_eq!(r["patterns"], json!({"OF": 1, "DF": 1, "ODF": 1}));
}

#[test]
fn km_medians_are_the_hand_computed_ones() {
    let r = report_json();
    // PFS1: 50 e, 100 e, 200 e, 300 e, 400 c → S = .8, .6, .4: median 200.
    assert_eq!(r["pfs1"]["n"], 5);
    assert_eq!(r["pfs1"]["events"], 4);
    assert_eq!(r["pfs1"]["median_days"], 200);
    assert_eq!(r["pfs1"]["median_ci_days"].as_array().map(Vec::len), Some(2));
    // PFS2: 30 e, 50 e, 80 c → S = 2/3, 1/3: median 50.
    assert_eq!(r["pfs2"]["n"], 3);
    assert_eq!(r["pfs2"]["events"], 2);
    assert_eq!(r["pfs2"]["median_days"], 50);
    // OS among indexed: 150 e, 400 c, 500 e, 600 c, 700 c → S = .8, then 2/3·.8... never ≤ .5: null.
    assert_eq!(r["os"]["n"], 5);
    assert_eq!(r["os"]["events"], 2);
    assert_eq!(r["os"]["median_days"], Value::Null);
}

#[test]
fn comparisons_have_the_interface_shape_and_groups() {
    let r = report_json();
    let comps = r["comparisons"].as_array().expect("list");
    let ids: Vec<&str> = comps.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["fig1a", "fig1b", "fig1c", "fig1d"]);
    for c in comps {
        let keys: Vec<&str> = c.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "endpoint", "population", "by", "groups", "logrank_chisq", "logrank_p", "hr", "hr_ci"]);
        let labels: Vec<&str> = c["groups"].as_array().expect("groups").iter().filter_map(|g| g["label"].as_str()).collect();
        assert_eq!(labels, ["no", "yes"]);
    }
    // fig1a: BBM patients P2 (prior brain RT) and P3 (none).
    assert_eq!(comps[0]["groups"][0]["n"], 1);
    assert_eq!(comps[0]["groups"][1]["n"], 1);
    // fig1b: salvage yes P1 (50 e); no P2 (80 c), P3 (30 e).
    assert_eq!(comps[1]["groups"][1]["n"], 1);
    assert_eq!(comps[1]["groups"][1]["events"], 1);
    assert_eq!(comps[1]["groups"][0]["n"], 2);
    // fig1d: OS by any RT: yes P1, P2; no P3, P4, P5.
    assert_eq!(comps[3]["groups"][0]["n"], 3);
    assert_eq!(comps[3]["groups"][1]["n"], 2);
    assert!(comps[3]["logrank_p"].is_number());
    assert!(comps[3]["hr"].is_number());
    // fig1c: CBPD no is P2 alone, censored: no event there, so the HR diverges and is null
    // while the log-rank test stands.
    assert_eq!(comps[2]["groups"][0]["events"], 0);
    assert_eq!(comps[2]["hr"], Value::Null);
    assert_eq!(comps[2]["hr_ci"], json!([null, null]));
    assert!(comps[2]["logrank_p"].is_number());
}

#[test]
fn table2_counts_extent_and_sites_by_pattern() {
    let r = report_json();
    let t2 = &r["table2"];
    let col: Vec<(String, u64)> = t2["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| (c["label"].as_str().unwrap_or("").to_owned(), c["n"].as_u64().unwrap_or(99)))
        .collect();
    assert_eq!(col, [("all".into(), 3), ("OF".into(), 1), ("DF".into(), 1), ("ODF".into(), 1)]);
    let row = |list: &str, name: &str| {
        t2[list].as_array().expect("rows").iter().find(|x| x["name"] == name).cloned().expect("row")
    };
    assert_eq!(row("extent", "primary_only"), json!({"name": "primary_only", "all": 1, "OF": 1, "DF": 0, "ODF": 0}));
    assert_eq!(row("extent", "metastasis_only"), json!({"name": "metastasis_only", "all": 1, "OF": 0, "DF": 1, "ODF": 0}));
    assert_eq!(row("sites", "lung"), json!({"name": "lung", "all": 2, "OF": 1, "DF": 0, "ODF": 1}));
    assert_eq!(row("sites", "brain"), json!({"name": "brain", "all": 2, "OF": 0, "DF": 1, "ODF": 1}));
    assert_eq!(row("sites", "bone"), json!({"name": "bone", "all": 0, "OF": 0, "DF": 0, "ODF": 0}));
}

#[test]
fn brain_evolution_crosses_baseline_prior_rt_and_pd1() {
    let r = report_json();
    let rows = r["brain_evolution"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6);
    let cell = |b: &str, rt: &str| rows.iter().find(|x| x["baseline"] == b && x["prior_brain_rt"] == rt).cloned().expect("cell");
    assert_eq!(cell("none", "no")["n"], 3);
    assert_eq!(cell("none", "no")["pd1_brain"], json!({"none": 1, "oligo": 0, "multiple": 0, "no_pd1": 2}));
    assert_eq!(cell("oligo", "yes")["pd1_brain"], json!({"none": 0, "oligo": 1, "multiple": 0, "no_pd1": 0}));
    assert_eq!(cell("multiple", "no")["pd1_brain"], json!({"none": 0, "oligo": 0, "multiple": 1, "no_pd1": 0}));
    assert_eq!(cell("oligo", "no")["n"], 0);
}

#[test]
fn cumulative_incidence_separates_patterns_and_death_without_progression() {
    let r = report_json();
    let ci = &r["cumulative_incidence"];
    assert_eq!(ci["n"], 5);
    let curve = |name: &str| ci["curves"].as_array().expect("curves").iter().find(|c| c["name"] == name).cloned().expect("curve");
    assert_eq!(curve("any_progression")["events"], 3);
    assert_eq!(curve("death_without_progression")["events"], 1);
    assert_eq!(curve("OF")["events"], 1);
    // Aalen–Johansen by hand: death at 50 (5 at risk), then progressions at 100, 200, 300 with
    // 4, 3, 2 at risk: F = 0.8/4 + 0.6/3 + 0.4/2 = 0.6 by day 300 (< 12 months = 365.25 days).
    let at12 = curve("any_progression")["at_12_months"].as_f64().expect("number");
    assert!((at12 - 0.6).abs() < 1e-12, "{at12}");
    assert_eq!(curve("death_without_progression")["at_12_months"], 0.2);
}

#[test]
fn table1_and_table3_have_their_rows_and_no_nan() {
    let r = report_json();
    let t1 = &r["table1"];
    let vars: Vec<&str> = t1["rows"].as_array().expect("rows").iter().filter_map(|x| x["variable"].as_str()).collect();
    assert_eq!(
        vars,
        [
            "age_years", "sex", "histology", "ecog", "primary_size_mm", "t_stage", "n_stage", "bbm", "metastatic_organs",
            "metastatic_lesions", "metastasis_lung", "metastasis_liver", "metastasis_adrenal", "metastasis_bone",
            "metastasis_pleura", "metastasis_regional_ln", "metastasis_distant_ln", "metastasis_other"
        ]
    );
    // Age at T0 (2015) of the indexed: 50, 45, 55, 35, 65 → median 50.
    assert_eq!(t1["rows"][0]["summaries"][0]["median"], 50);
    assert_eq!(t1["rows"][0]["summaries"][0]["n"], 5);
    // ECOG is 1 for everyone: no test.
    assert_eq!(t1["rows"][3]["p"], Value::Null);
    let row = |v: &str| t1["rows"].as_array().expect("rows").iter().find(|x| x["variable"] == v).expect("row").clone();
    // Lung metastases: P3, P4 (both without RT); not P1, P2 (RT) nor P5 (no RT).
    // Table no/yes × RT no/yes = [[1, 2], [2, 0]]; expected counts < 5: Fisher, two-sided
    // p = P(a=1) + P(a=3) = 3/10 + 1/10 (hypergeometric, margins 3, 2 / 3, 2).
    let lung = row("metastasis_lung");
    assert_eq!(lung["kind"], "categorical");
    assert_eq!(lung["levels"][0], json!({"level": "no", "all": 3, "no": 1, "yes": 2}));
    assert_eq!(lung["levels"][1], json!({"level": "yes", "all": 2, "no": 2, "yes": 0}));
    assert_eq!(lung["missing"], json!({"all": 0, "no": 0, "yes": 0}));
    assert_eq!(lung["test"], "fisher");
    assert!((lung["p"].as_f64().expect("p") - 0.4).abs() < 1e-12, "{lung}");
    // Bone: P1 (RT), P3, P5 (no RT): [[1, 1], [2, 1]], the observed table is the likeliest: p = 1.
    let bone = row("metastasis_bone");
    assert_eq!(bone["levels"][1], json!({"level": "yes", "all": 3, "no": 2, "yes": 1}));
    assert!((bone["p"].as_f64().expect("p") - 1.0).abs() < 1e-12, "{bone}");
    // Nobody has adrenal metastases: one level, no test.
    let adrenal = row("metastasis_adrenal");
    assert_eq!(adrenal["levels"][1]["all"], 0);
    assert_eq!(adrenal["test"], Value::Null);
    assert_eq!(adrenal["p"], Value::Null);
    let t3 = &r["table3"];
    assert_eq!(t3["events_of"], 1);
    assert_eq!(t3["events_competing"], 3);
    assert_eq!(t3["censored"], 1);
    assert!(t3["univariate"].as_array().expect("rows").len() >= 10);
    // The only OF (P1) is male: no OF among women, the SHR of "female" diverges → null, noted.
    let female = t3["univariate"].as_array().expect("rows").iter().find(|x| x["covariate"] == "female").expect("row");
    assert_eq!(female["shr"], Value::Null);
    assert!(female["note"].as_str().is_some_and(|n| n.contains("monotone")), "{female}");
    let text = serde_json::to_string(&r).expect("json");
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let a = build(&cohort()).expect("report");
    let mut shuffled = cohort();
    shuffled.patients.reverse();
    let b = build(&shuffled).expect("report");
    assert_eq!(a.to_json_string(), b.to_json_string());
    assert_eq!(a.to_html(), b.to_html());
    assert_eq!(a.to_markdown(), b.to_markdown());
}

#[test]
fn html_is_self_contained_with_one_svg_per_plot_and_numbers_at_risk() {
    let html = build(&cohort()).expect("report").to_html();
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    assert!(!html.contains("<script") && !html.contains("<link"));
    // PFS1, PFS2, OS, Fig. 1 a–d, Fig. 2, Fig. 3.
    assert_eq!(html.matches("<svg").count(), 9);
    assert_eq!(html.matches("class=\"km\"").count(), 7);
    assert_eq!(html.matches("Number at risk").count(), 7);
    assert!(html.contains("class=\"censor\""));
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn markdown_has_every_table() {
    let md = build(&cohort()).expect("report").to_markdown();
    for heading in ["## Survival", "## Table 1", "## Table 2", "## Table 3", "## Figure 1", "## Figure 2", "## Figure 3"] {
        assert!(md.contains(heading), "missing {heading}");
    }
    assert!(md.contains("| PFS1 | 5 | 4 | 6.6 |"), "{md}");
}

#[test]
fn adtte_has_the_exact_header_and_one_row_per_non_null_clock() {
    let input = cohort();
    let labels: Vec<Value> = input.patients.iter().map(|p| p.labels.clone()).collect();
    let csv = registry_report::adtte::to_csv(&labels).expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "USUBJID,PARAMCD,PARAM,STARTDT,ADT,AVAL,CNSR,EVNTDESC,BBM,BBMCLASS,PRIORBRT,SALVRT,CBPD,ANYRT,PATTERN"
    );
    // P1–P3: 3 clocks each; P4, P5: PFS1 and OS; P6: OS; P7: none.
    assert_eq!(lines.len() - 1, 3 * 3 + 2 * 2 + 1);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let p1_pfs1 = rows.iter().find(|r| &r[0] == "P1" && &r[1] == "PFS1").expect("row");
    assert_eq!(&p1_pfs1[3], "2015-03-02");
    assert_eq!(&p1_pfs1[5], "100");
    assert_eq!(&p1_pfs1[6], "0");
    assert_eq!(&p1_pfs1[7], "progression");
    assert_eq!((&p1_pfs1[8], &p1_pfs1[11], &p1_pfs1[12], &p1_pfs1[13], &p1_pfs1[14]), ("N", "Y", "Y", "Y", "OF"));
    let p6 = rows.iter().find(|r| &r[0] == "P6").expect("row");
    assert_eq!((&p6[1], &p6[6], &p6[8], &p6[10], &p6[13], &p6[14]), ("OS", "1", "", "", "N", ""));
    let p2_os = rows.iter().find(|r| &r[0] == "P2" && &r[1] == "OS").expect("row");
    assert_eq!((&p2_os[6], &p2_os[9], &p2_os[10]), ("0", "oligo", "Y"));
    // Patients in id order.
    let ids: Vec<&str> = rows.iter().map(|r| r.get(0).unwrap_or("")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[test]
fn an_empty_view_gives_nulls_not_nan_and_every_rendering() {
    let known_at = chrono::DateTime::parse_from_rfc3339("2016-05-04T09:12:00Z").expect("instant").to_utc();
    let input = ReportInput { as_of: date("2016-05-04"), known_at: Some(known_at), patients: Vec::new() };
    let report = build(&input).expect("report");
    let r = report.to_json();
    assert_eq!(r["known_at"], "2016-05-04T09:12:00Z");
    assert_eq!(r["n_patients"], 0);
    assert_eq!((&r["orr"], &r["dcr"]), (&Value::Null, &Value::Null));
    assert_eq!(r["pfs1"], json!({"n": 0, "events": 0, "median_days": null, "median_ci_days": [null, null]}));
    assert_eq!(r["comparisons"][0]["logrank_p"], Value::Null);
    assert_eq!(r["table3"]["multivariate"]["converged"], Value::Null);
    assert!(!report.to_json_string().contains("NaN"));
    assert_eq!(report.to_html().matches("<svg").count(), 9);
    assert!(report.to_markdown().contains("## Table 1"));
}

#[test]
fn metastatic_sites_are_unknown_without_a_baseline() {
    // P4 loses its baseline: its sites are not read (missing), whatever the input says.
    let mut input = cohort();
    let p4 = input.patients.iter_mut().find(|p| p.labels["patient_id"] == "P4").expect("P4");
    p4.labels["baseline"] = Value::Null;
    let r = build(&input).expect("report").to_json();
    let rows = r["table1"]["rows"].as_array().expect("rows");
    let lung = rows.iter().find(|x| x["variable"] == "metastasis_lung").expect("row");
    assert_eq!(lung["missing"], json!({"all": 1, "no": 1, "yes": 0}));
    assert_eq!(lung["levels"][1]["all"], 1);
    // And a patient with a baseline but no sites given counts as missing too.
    let mut input = cohort();
    let p1 = input.patients.iter_mut().find(|p| p.labels["patient_id"] == "P1").expect("P1");
    p1.baseline_metastatic_sites = None;
    let r = build(&input).expect("report").to_json();
    let rows = r["table1"]["rows"].as_array().expect("rows");
    let bone = rows.iter().find(|x| x["variable"] == "metastasis_bone").expect("row");
    assert_eq!(bone["missing"], json!({"all": 1, "no": 0, "yes": 1}));
}

#[test]
fn a_report_from_stored_rows_is_byte_identical_to_one_from_the_input() {
    let input = cohort();
    let direct = build(&input).expect("build");
    // Rows as a snapshot stores them: serialised, read back, in another order.
    let mut rows: Vec<PatientRow> = input
        .patients
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let row = PatientRow::from_input(i, p).expect("row");
            let back = PatientRow::from_bytes(&row.to_bytes()).expect("read back");
            assert_eq!(back, row);
            back
        })
        .collect();
    rows.reverse();
    let from_rows = build_from_rows(input.as_of, input.known_at, rows);
    assert_eq!(from_rows.to_json_string(), direct.to_json_string());
    assert_eq!(from_rows.to_markdown(), direct.to_markdown());
    assert_eq!(from_rows.to_html(), direct.to_html());
}

#[test]
fn a_primary_size_survives_a_row_bit_for_bit() {
    let mut input = cohort();
    // Doubles whose shortest decimal form is long: the stored bits read back exactly.
    for (p, v) in input.patients.iter_mut().zip([0.1 + 0.2, 1e-310, 35.000_000_000_000_01, f64::MAX]) {
        if let Some(e) = p.enrollment.as_mut() {
            e.primary_size_mm = v;
        }
    }
    for (i, p) in input.patients.iter().enumerate() {
        let row = PatientRow::from_input(i, p).expect("row");
        assert_eq!(PatientRow::from_bytes(&row.to_bytes()).expect("read back"), row);
    }
    let rows = input.patients.iter().enumerate().map(|(i, p)| PatientRow::from_input(i, p).expect("row")).collect();
    assert_eq!(build_from_rows(input.as_of, input.known_at, rows).to_json_string(), build(&input).expect("build").to_json_string());
}
