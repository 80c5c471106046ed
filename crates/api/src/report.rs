//! The cohort report and ADTTE export over the visible patients, with `registry-report` (the same
//! numbers as `registry report` / `registry export adtte` when the token sees every site).

use axum::http::StatusCode;
use registry_domain::view::View;
use registry_report::{PatientInput, Report, ReportInput};

use crate::handlers::{labels_value, ApiError, Visible};

fn failed(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "report failed");
    ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "the report could not be computed".into() }
}

/// The report of the visible patients in the view.
pub(crate) fn build(visible: &[Visible], view: &View) -> Result<Report, ApiError> {
    let patients = visible.iter().map(|v| PatientInput::from_projection(&v.projection)).collect();
    registry_report::build(&ReportInput { as_of: view.as_of, known_at: view.known_at, patients }).map_err(failed)
}

/// `GET /cohort/report`: the JSON of `registry report --format json`.
pub(crate) fn report_json(visible: &[Visible], view: &View) -> Result<String, ApiError> {
    Ok(build(visible, view)?.to_json_string())
}

/// `GET /cohort/adtte.csv`: the CSV of `registry export adtte`.
pub(crate) fn adtte_csv(visible: &[Visible], _view: &View) -> Result<String, ApiError> {
    let labels: Vec<serde_json::Value> = visible.iter().map(|v| labels_value(&v.projection)).collect();
    registry_report::adtte::to_csv(&labels).map_err(failed)
}

/// The `<figure id="fig-…">` blocks of the report's HTML page (inline SVG), by figure id.
pub(crate) fn figure<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let open = format!("<figure id=\"fig-{id}\">");
    let start = html.find(&open)?;
    let end = html[start..].find("</figure>")? + start + "</figure>".len();
    Some(&html[start..end])
}
