//! `registry export adtte`: one row per patient and clock (PFS1, PFS2, OS), CDISC ADaM ADTTE
//! style (`interfaces.md`). A null clock gives no row. Flags are `Y` / `N` / empty when null.
//! The CSV is written into memory with the `csv` crate (quoting); the caller does the IO.

use crate::input::{parse_labels, ClockIn, LabelsIn, PatientRow, ReportError};

/// The header, in order.
pub const HEADER: [&str; 15] = [
    "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL", "CNSR", "EVNTDESC", "BBM", "BBMCLASS", "PRIORBRT",
    "SALVRT", "CBPD", "ANYRT", "PATTERN",
];

const PARAMS: [(&str, &str); 3] = [
    ("PFS1", "Progression-free survival 1: crizotinib start to first progression or death (days)"),
    ("PFS2", "Progression-free survival 2: first progression to second progression or death (days)"),
    ("OS", "Overall survival: diagnosis to death (days)"),
];

fn flag(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "Y",
        Some(false) => "N",
        None => "",
    }
}

fn rows_of(l: &LabelsIn) -> Vec<[String; 15]> {
    let clocks: [&Option<ClockIn>; 3] = [&l.pfs1, &l.pfs2, &l.os];
    let baseline = l.baseline.as_ref();
    let mut out = Vec::new();
    for ((code, param), clock) in PARAMS.iter().zip(clocks) {
        let Some(c) = clock else { continue };
        out.push([
            l.patient_id.clone(),
            (*code).to_owned(),
            (*param).to_owned(),
            c.start.to_string(),
            c.end.to_string(),
            c.days.to_string(),
            if c.event { "0" } else { "1" }.to_owned(),
            c.reason.clone(),
            flag(baseline.and_then(|b| b.bbm)).to_owned(),
            baseline.and_then(|b| b.bbm_class.clone()).unwrap_or_default(),
            flag(l.rt.prior_brain).to_owned(),
            flag(l.rt.salvage).to_owned(),
            flag(l.cbpd).to_owned(),
            flag(l.rt.any).to_owned(),
            l.pd1.as_ref().and_then(|p| p.pattern.clone()).unwrap_or_default(),
        ]);
    }
    out
}

/// The ADTTE CSV (header and rows, `\n` line ends) for the given labels, patients sorted by id.
pub fn to_csv(labels: &[serde_json::Value]) -> Result<String, ReportError> {
    let mut parsed = Vec::with_capacity(labels.len());
    for (i, v) in labels.iter().enumerate() {
        parsed.push(parse_labels(i, v)?);
    }
    Ok(csv_of(parsed))
}

/// [`to_csv`] from the patients' [`PatientRow`]s (which hold the labels as [`to_csv`] reads
/// them): the same bytes.
pub fn to_csv_from_rows(rows: &[PatientRow]) -> String {
    csv_of(rows.iter().map(|r| r.labels().clone()).collect())
}

fn csv_of(mut parsed: Vec<LabelsIn>) -> String {
    parsed.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing into a Vec cannot fail with an IO error; a csv error here would be a bug.
    let _ = w.write_record(HEADER);
    for l in &parsed {
        for row in rows_of(l) {
            let _ = w.write_record(&row);
        }
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
