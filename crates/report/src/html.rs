//! The report as one self-contained HTML page: inline CSS, inline SVG, no script, no external
//! reference (the only URL in the page is the SVG namespace).

use crate::markdown::{blocks, Block};
use crate::svg::{self, esc};
use crate::Report;

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}\
th{background:#f3f3f3}td:not(:first-child){font-variant-numeric:tabular-nums}figure{margin:1em 0}svg{max-width:100%;height:auto}";

fn figure(r: &Report, id: &str) -> String {
    match id {
        "cif" => svg::cif(
            &r.plots.cif,
            "Figure 2: cumulative incidence of progression (PFS1 clock)",
            "any progression, OF, DF, ODF; death without progression competes (dashed)",
        ),
        "brain" => svg::brain(&r.brain_evolution, "Figure 3: brain at PD1 by baseline brain disease and prior brain RT"),
        km_id => r.plots.km.iter().find(|p| p.id == km_id).map(svg::km).unwrap_or_default(),
    }
}

pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>Cohort report as of {}</title>\n", r.as_of));
    out.push_str(&format!("<style>{CSS}</style>\n</head>\n<body>\n"));
    for block in blocks(r) {
        match block {
            Block::Heading(level, text) => out.push_str(&format!("<h{level}>{}</h{level}>\n", esc(&text))),
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", esc(&text))),
            Block::Table { header, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in &header {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in &rows {
                    out.push_str("<tr>");
                    for c in row {
                        out.push_str(&format!("<td>{}</td>", esc(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Figure(id) => {
                out.push_str(&format!("<figure id=\"fig-{}\">\n", esc(&id)));
                out.push_str(&figure(r, &id));
                out.push_str("</figure>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}
