//! `registry report` and `registry export adtte` as a user runs them, on the synthetic study
//! cohort: synth → import → report (json, html, md) and export, checked against `registry labels`
//! in the same view, and byte-identical across runs with the same `--as-of`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const AS_OF: &str = "2018-05-31";

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn run(args: &[&str], data: &Path, what: &str) -> String {
    let out = registry().args(args).arg("--data").arg(data).output().expect("run registry");
    String::from_utf8(ok(out, what).stdout).expect("utf-8 output")
}

/// The study cohort imported into a fresh store.
fn cohort(dir: &Path) -> std::path::PathBuf {
    let synth = ok(
        registry().args(["synth", "--patients", "93", "--seed", "2019"]).output().expect("run synth"),
        "synth",
    );
    let file = dir.join("cohort.ndjson");
    std::fs::write(&file, &synth.stdout).expect("write cohort");
    let data = dir.join("data");
    ok(registry().arg("import").arg(&file).arg("--data").arg(&data).output().expect("run import"), "import");
    data
}

fn labels(data: &Path) -> Vec<Value> {
    run(&["labels", "--as-of", AS_OF], data, "labels")
        .lines()
        .map(|l| serde_json::from_str(l).expect("labels line is JSON"))
        .collect()
}

#[test]
fn report_and_adtte_agree_with_the_labels_and_are_reproducible() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = cohort(tmp.path());
    let labels = labels(&data);
    assert!(!labels.is_empty());
    let indexed: Vec<&Value> = labels.iter().filter(|l| l["status"] == "indexed").collect();

    // JSON report: the interface's keys, consistent with the labels.
    let json_text = run(&["report", "--as-of", AS_OF, "--format", "json"], &data, "report json");
    let r: Value = serde_json::from_str(&json_text).expect("report is JSON");
    let keys: Vec<&str> = r.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "as_of", "known_at", "n_patients", "n_indexed", "orr", "dcr", "pfs1", "pfs2", "os", "patterns",
            "comparisons", "cumulative_incidence", "table1", "table2", "table3", "brain_evolution"
        ]
    );
    assert_eq!(r["as_of"], AS_OF);
    assert_eq!(r["n_patients"].as_u64(), Some(labels.len() as u64));
    assert_eq!(r["n_indexed"].as_u64(), Some(indexed.len() as u64));
    let count = |f: &dyn Fn(&Value) -> bool| indexed.iter().filter(|l| f(l)).count() as u64;
    assert_eq!(r["pfs1"]["n"].as_u64(), Some(count(&|l| !l["pfs1"].is_null())));
    assert_eq!(r["pfs1"]["events"].as_u64(), Some(count(&|l| l["pfs1"]["event"] == true)));
    assert_eq!(r["pfs2"]["events"].as_u64(), Some(count(&|l| l["pfs2"]["event"] == true)));
    assert_eq!(r["os"]["events"].as_u64(), Some(count(&|l| l["os"]["event"] == true)));
    for p in ["OF", "DF", "ODF"] {
        assert_eq!(r["patterns"][p].as_u64(), Some(count(&|l| l["pd1"]["pattern"] == p)), "pattern {p}");
    }
    let responders = count(&|l| l["best_response"] == "CR" || l["best_response"] == "PR");
    let orr = r["orr"].as_f64().expect("orr is a number");
    assert!((orr - responders as f64 / indexed.len() as f64).abs() < 1e-12);
    assert_eq!(r["comparisons"].as_array().map(Vec::len), Some(4));
    assert!(r["pfs1"]["median_days"].is_number(), "the study cohort reaches its PFS1 median");
    assert!(!json_text.contains("NaN"));
    // Every indexed patient's enrolment was found: Table 1 knows every age.
    assert_eq!(r["table1"]["rows"][0]["variable"], "age_years");
    assert_eq!(r["table1"]["rows"][0]["summaries"][0]["n"].as_u64(), Some(indexed.len() as u64));

    // Same view, same bytes.
    let again = run(&["report", "--as-of", AS_OF, "--format", "json"], &data, "report json again");
    assert_eq!(json_text, again);

    // HTML: self-contained, one SVG per plot, numbers at risk; reproducible.
    let html = run(&["report", "--as-of", AS_OF, "--format", "html"], &data, "report html");
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    assert_eq!(html.matches("<svg").count(), 9);
    assert_eq!(html.matches("Number at risk").count(), 7);
    assert!(html.trim_end().ends_with("</html>"));
    let out = tmp.path().join("report.html");
    run(&["report", "--as-of", AS_OF, "--format", "html", "--out", out.to_str().expect("path")], &data, "report --out");
    assert_eq!(std::fs::read_to_string(&out).expect("read report.html"), html);

    // Markdown.
    let md = run(&["report", "--as-of", AS_OF, "--format", "md"], &data, "report md");
    assert!(md.starts_with("# Cohort report"));
    assert!(md.contains("## Table 3"));

    // ADTTE: exact header, one row per non-null clock, consistent with the labels.
    let csv_text = run(&["export", "adtte", "--as-of", AS_OF], &data, "export adtte");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL", "CNSR", "EVNTDESC", "BBM", "BBMCLASS", "PRIORBRT",
            "SALVRT", "CBPD", "ANYRT", "PATTERN"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("csv record")).collect();
    let clocks: usize = labels
        .iter()
        .map(|l| ["pfs1", "pfs2", "os"].iter().filter(|c| !l[**c].is_null()).count())
        .sum();
    assert_eq!(rows.len(), clocks);
    let pfs1_events = rows.iter().filter(|r| &r[1] == "PFS1" && &r[6] == "0").count() as u64;
    assert_eq!(Some(pfs1_events), r["pfs1"]["events"].as_u64());
    for row in &rows {
        assert!(["PFS1", "PFS2", "OS"].contains(&&row[1]));
        assert!(["0", "1"].contains(&&row[6]));
        assert!(row[5].parse::<i64>().is_ok(), "AVAL {:?}", &row[5]);
        for flag in [8, 10, 11, 12, 13] {
            assert!(["Y", "N", ""].contains(&&row[flag]), "flag {flag}: {:?}", &row[flag]);
        }
        assert!(["OF", "DF", "ODF", ""].contains(&&row[14]));
    }
    let csv_again = run(&["export", "adtte", "--as-of", AS_OF], &data, "export adtte again");
    assert_eq!(csv_text, csv_again);
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = registry()
        .args(["report", "--format", "pdf", "--data"])
        .arg(tmp.path().join("data"))
        .output()
        .expect("run registry");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pdf"));
}
