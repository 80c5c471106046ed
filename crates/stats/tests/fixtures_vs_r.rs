//! Every statistic against R: the inputs and R's answers are fixtures written by
//! scripts/r/make_stats_fixtures.R (survival 3.5, cmprsk 2.2, base R). Covers lung, veteran,
//! mgus2, a simulated heavily tied data set and the edge cases (ties between events and
//! censorings, last observation censored, S exactly 0.5, a group without events, an event at
//! time 0, perfect separation, a collinear covariate, a group with zero expected deaths).
mod common;

use registry_stats::cox::Ties;
use registry_stats::km::{ConfType, MedianCi};
use registry_stats::request::{run, Frame, Request};
use serde_json::Value;

fn read_frame(name: &str) -> Frame {
    let mut reader = csv::Reader::from_path(common::fixtures_dir().join(name)).expect("fixture csv");
    let names = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader
        .records()
        .map(|r| r.expect("csv record").iter().map(str::to_string).collect())
        .collect();
    Frame { names, rows }
}

fn s(args: &Value, key: &str) -> String {
    args[key].as_str().unwrap_or_else(|| panic!("arg {key}")).to_string()
}

fn opt_s(args: &Value, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_string)
}

fn list(args: &Value, key: &str) -> Vec<String> {
    args[key].as_array().expect("list arg").iter().filter_map(Value::as_str).map(str::to_string).collect()
}

fn request_of(case: &Value) -> Request {
    let a = &case["args"];
    match case["command"].as_str().expect("command") {
        "km" => Request::Km {
            time: s(a, "time"),
            event: s(a, "event"),
            group: opt_s(a, "group"),
            conf_type: match a["conf_type"].as_str() {
                Some("log-log") => ConfType::LogLog,
                Some("plain") => ConfType::Plain,
                _ => ConfType::Log,
            },
            median_ci: if a["median_ci"] == "symmetric" { MedianCi::Symmetric } else { MedianCi::Band },
        },
        "logrank" => Request::LogRank { time: s(a, "time"), event: s(a, "event"), group: s(a, "group") },
        "cox" => Request::Cox {
            time: s(a, "time"),
            event: s(a, "event"),
            covariates: list(a, "covariates"),
            ties: if a["ties"] == "breslow" { Ties::Breslow } else { Ties::Efron },
        },
        "cuminc" => Request::CumInc { time: s(a, "time"), event: s(a, "event"), group: opt_s(a, "group") },
        "finegray" => Request::FineGray {
            time: s(a, "time"),
            event: s(a, "event"),
            cause: a["cause"].as_u64().expect("cause") as u32,
            covariates: list(a, "covariates"),
        },
        "chisq" => Request::ChiSquare { row: s(a, "row"), col: s(a, "col"), correct: a["correct"] == true },
        "fisher" => Request::Fisher { row: s(a, "row"), col: s(a, "col") },
        "wilcoxon" => Request::Wilcoxon { value: s(a, "value"), group: s(a, "group") },
        other => panic!("unknown command {other}"),
    }
}

fn check_command(command: &str) {
    let cases: Vec<Value> =
        common::load_cases().into_iter().filter(|c| c["command"] == command).collect();
    assert!(!cases.is_empty(), "no fixtures for {command}");
    let mut failures = Vec::new();
    for case in &cases {
        let frame = read_frame(case["dataset"].as_str().expect("dataset"));
        match run(&frame, &request_of(case)) {
            Ok(actual) => {
                let mut diffs = Vec::new();
                common::compare("", &case["expected"], &actual, "", &mut diffs);
                if !diffs.is_empty() {
                    let shown: Vec<&String> = diffs.iter().take(8).collect();
                    failures.push(format!("{} ({} differences):\n  {}", common::label(case), diffs.len(),
                        shown.iter().map(|d| d.as_str()).collect::<Vec<_>>().join("\n  ")));
                }
            }
            Err(e) => failures.push(format!("{}: error {e}", common::label(case))),
        }
    }
    assert!(failures.is_empty(), "{} of {} {command} cases differ from R:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn kaplan_meier_matches_survfit() {
    check_command("km");
}

#[test]
fn log_rank_matches_survdiff() {
    check_command("logrank");
}

#[test]
fn cox_matches_coxph() {
    check_command("cox");
}

#[test]
fn cumulative_incidence_matches_cmprsk_cuminc() {
    check_command("cuminc");
}

#[test]
fn fine_gray_matches_cmprsk_crr() {
    check_command("finegray");
}

#[test]
fn chi_square_matches_chisq_test() {
    check_command("chisq");
}

#[test]
fn fisher_matches_fisher_test() {
    check_command("fisher");
}

#[test]
fn wilcoxon_matches_wilcox_test() {
    check_command("wilcoxon");
}
