//! Shared by the R-fixture tests: loading the cases written by scripts/r/make_stats_fixtures.R
//! and comparing JSON documents with the project's tolerance (docs/statistics.md):
//! numbers within 1e-6 relative (or 1e-10 absolute, for values that are 0 up to rounding),
//! p-values within 1e-6 absolute; strings, booleans and nulls exactly; extra keys in the actual
//! document are allowed (fields R has no counterpart for), missing ones are not.
#![allow(dead_code, unreachable_pub)]
use std::path::{Path, PathBuf};

use serde_json::Value;

/// crates/stats/tests/fixtures, whether included from the stats crate or from the CLI's tests.
pub fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = manifest.join("tests").join("fixtures");
    if own.join("cases.json").exists() {
        own
    } else {
        manifest.join("..").join("stats").join("tests").join("fixtures")
    }
}

pub fn load_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("cases.json")).expect("cases.json (run scripts/r/make_stats_fixtures.R)");
    match serde_json::from_str::<Value>(&text).expect("valid cases.json") {
        Value::Array(cases) => cases,
        other => panic!("cases.json is not an array: {other}"),
    }
}

const P_VALUE_KEYS: &[&str] = &["p", "lr_p", "wald_p", "score_p"];

/// Appends one line per difference to `out`.
pub fn compare(path: &str, expected: &Value, actual: &Value, key: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap_or(f64::NAN), a.as_f64().unwrap_or(f64::NAN));
            let diff = (e - a).abs();
            let ok = if P_VALUE_KEYS.contains(&key) {
                diff <= 1e-6
            } else {
                diff <= 1e-6 * e.abs().max(a.abs()) || diff <= 1e-10
            };
            if !ok {
                out.push(format!("{path}: expected {e:e}, got {a:e}"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => compare(&format!("{path}.{k}"), ev, av, k, out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!("{path}: expected {} elements, got {}", e.len(), a.len()));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(&format!("{path}[{i}]"), ev, av, key, out);
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {e}, got {a}")),
    }
}

/// Short label of a case for messages.
pub fn label(case: &Value) -> String {
    format!("{} {} {}", case["command"], case["dataset"], case["args"])
}
