//! `registry stats …` end to end: the real binary on the R fixtures' CSVs must print R's numbers
//! (same cases as crates/stats/tests/fixtures_vs_r.rs), and bad input must exit 2 with one line.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "../../stats/tests/common/mod.rs"]
mod common;

fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_registry"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stats/tests/fixtures").join(name)
}

fn str_arg(args: &Value, key: &str) -> String {
    match &args[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        other => panic!("arg {key}: {other}"),
    }
}

fn cli_args(case: &Value) -> Vec<String> {
    let a = &case["args"];
    let command = case["command"].as_str().expect("command").to_string();
    let mut out = vec!["stats".to_string(), command.clone(), "--csv".to_string()];
    out.push(fixture(case["dataset"].as_str().expect("dataset")).display().to_string());
    let flags: &[(&str, &str)] = match command.as_str() {
        "km" => &[("time", "--time"), ("event", "--event"), ("group", "--group"),
                  ("conf_type", "--conf-type"), ("median_ci", "--median-ci")],
        "logrank" | "cuminc" => &[("time", "--time"), ("event", "--event"), ("group", "--group")],
        "cox" => &[("time", "--time"), ("event", "--event"), ("covariates", "--covariates"), ("ties", "--ties")],
        "finegray" => &[("time", "--time"), ("event", "--event"), ("cause", "--cause"), ("covariates", "--covariates")],
        "chisq" | "fisher" => &[("row", "--row"), ("col", "--col")],
        "wilcoxon" => &[("value", "--value"), ("group", "--group")],
        other => panic!("unknown command {other}"),
    };
    for (key, flag) in flags {
        if a.get(*key).is_some_and(|v| !v.is_null()) {
            out.push((*flag).to_string());
            out.push(str_arg(a, key));
        }
    }
    if a["correct"] == true {
        out.push("--correct".to_string());
    }
    out
}

#[test]
fn every_r_fixture_case_through_the_binary() {
    let cases = common::load_cases();
    assert!(cases.len() > 40, "expected the full fixture set");
    let mut failures = Vec::new();
    for case in &cases {
        let args = cli_args(case);
        let output = registry().args(&args).output().expect("run registry");
        if !output.status.success() {
            failures.push(format!("{}: exit {:?}: {}", common::label(case), output.status.code(),
                String::from_utf8_lossy(&output.stderr)));
            continue;
        }
        let actual: Value = match serde_json::from_slice(&output.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: stdout is not JSON: {e}", common::label(case)));
                continue;
            }
        };
        let mut diffs = Vec::new();
        common::compare("", &case["expected"], &actual, "", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("{}: {}", common::label(case), diffs[..diffs.len().min(5)].join("; ")));
        }
    }
    assert!(failures.is_empty(), "{} cases differ:\n{}", failures.len(), failures.join("\n"));
}

fn expect_usage_error(args: &[&str], needle: &str) {
    let output = registry().args(args).output().expect("run registry");
    assert_eq!(output.status.code(), Some(2), "args {args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "stderr {stderr:?} should mention {needle:?}");
    assert!(output.stdout.is_empty(), "no JSON on error");
}

#[test]
fn unknown_column_exits_2_naming_it() {
    let csv = fixture("lung.csv").display().to_string();
    expect_usage_error(&["stats", "km", "--csv", &csv, "--time", "tyme", "--event", "status"], "unknown column `tyme`");
}

#[test]
fn non_numeric_covariate_exits_2_with_line() {
    let csv = fixture("veteran.csv").display().to_string();
    expect_usage_error(
        &["stats", "cox", "--csv", &csv, "--time", "time", "--event", "status", "--covariates", "age,celltype"],
        "column `celltype`, line 2",
    );
}

#[test]
fn event_code_outside_coding_exits_2() {
    // mgus2's event column is 0/1/2: fine for cuminc, outside the 0/1 coding of km.
    let csv = fixture("mgus2.csv").display().to_string();
    expect_usage_error(&["stats", "km", "--csv", &csv, "--time", "etime", "--event", "event"], "is not 0 (censored) or 1 (event)");
}

#[test]
fn missing_file_exits_2() {
    expect_usage_error(&["stats", "fisher", "--csv", "/nonexistent/x.csv", "--row", "a", "--col", "b"], "cannot read");
}

#[test]
fn dropped_rows_are_counted() {
    let csv = fixture("lung.csv").display().to_string();
    let output = registry()
        .args(["stats", "cox", "--csv", &csv, "--time", "time", "--event", "status", "--covariates", "age,ph_ecog,wt_loss"])
        .output()
        .expect("run registry");
    assert!(output.status.success());
    let v: Value = serde_json::from_slice(&output.stdout).expect("json");
    // lung: ph.ecog NA once, wt.loss NA 14 times, never together.
    assert_eq!(v["dropped"], 15);
    assert_eq!(v["n"], 228 - 15);
}
