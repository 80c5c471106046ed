//! `/openapi.json`: the hand-written OpenAPI 3.1 document of every route in [`crate::ROUTES`]
//! (a test checks that the two agree, both ways).

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
