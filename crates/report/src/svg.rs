//! Hand-written SVG: Kaplan–Meier step curves with censor ticks and numbers at risk, cumulative
//! incidence step curves, and the brain-evolution bars. Plain path strings, fixed decimals, no
//! external reference but the SVG namespace.

use std::fmt::Write;

use registry_stats::km::KmCurve;

use crate::analysis::{BrainEvolution, CifPlot, KmPlot};
use crate::num::DAYS_PER_MONTH;

const W: f64 = 640.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const PLOT_H: f64 = 240.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn open(height: f64, class: &str, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{class}\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" role=\"img\"><title>{}</title>\n",
        esc(title)
    )
}

/// A round x-axis end in months and its tick step.
fn month_axis(max_days: f64) -> (f64, f64) {
    let months = (max_days / DAYS_PER_MONTH).max(1.0);
    let step = if months <= 12.0 {
        3.0
    } else if months <= 36.0 {
        6.0
    } else if months <= 96.0 {
        12.0
    } else {
        24.0
    };
    ((months / step).ceil() * step, step)
}

struct Frame {
    x_max_months: f64,
}

impl Frame {
    fn x(&self, days: f64) -> f64 {
        LEFT + (days / DAYS_PER_MONTH) / self.x_max_months * (W - LEFT - RIGHT)
    }
    fn y(&self, p: f64) -> f64 {
        TOP + (1.0 - p) * PLOT_H
    }
}

fn axes(out: &mut String, f: &Frame, step: f64, y_label: &str) {
    let x0 = LEFT;
    let x1 = W - RIGHT;
    let y0 = f.y(0.0);
    let _ = writeln!(out, "<path class=\"axis\" d=\"M{x0:.1} {:.1}V{y0:.1}H{x1:.1}\" fill=\"none\" stroke=\"#333\"/>", f.y(1.0));
    for i in 0..=4 {
        let p = f64::from(i) * 0.25;
        let y = f.y(p);
        let _ = writeln!(
            out,
            "<path d=\"M{:.1} {y:.1}H{x0:.1}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{p:.2}</text>",
            x0 - 4.0,
            x0 - 6.0,
            y + 4.0
        );
    }
    let mut m = 0.0;
    while m <= f.x_max_months + 1e-9 {
        let x = f.x(m * DAYS_PER_MONTH);
        let _ = writeln!(
            out,
            "<path d=\"M{x:.1} {y0:.1}v4\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{m:.0}</text>",
            y0 + 16.0
        );
        m += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">months</text>",
        (x0 + x1) / 2.0,
        y0 + 32.0
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
        TOP + PLOT_H / 2.0,
        esc(y_label)
    );
}

/// Number at risk at `t` days: patients whose time is ≥ t.
pub(crate) fn at_risk(curve: Option<&KmCurve>, t: f64) -> usize {
    let Some(c) = curve else { return 0 };
    let i = c.times.partition_point(|x| *x < t);
    c.n_risk.get(i).copied().unwrap_or(0)
}

/// A Kaplan–Meier figure with a "Number at risk" table under the axis.
pub(crate) fn km(plot: &KmPlot) -> String {
    let max_days = plot
        .curves
        .iter()
        .filter_map(|(_, c)| c.as_ref().and_then(|c| c.times.last().copied()))
        .fold(0.0, f64::max);
    let (x_max_months, step) = month_axis(max_days);
    let f = Frame { x_max_months };
    let risk_top = TOP + PLOT_H + 52.0;
    let height = risk_top + 18.0 * (plot.curves.len() as f64 + 1.0) + 10.0;
    let mut out = open(height, "km", &plot.title);
    let _ = writeln!(out, "<text x=\"{LEFT:.1}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>", esc(&plot.title));
    if !plot.note.is_empty() {
        let _ = writeln!(out, "<text x=\"{LEFT:.1}\" y=\"31\" font-size=\"11\">{}</text>", esc(&plot.note));
    }
    axes(&mut out, &f, step, "probability");
    for (gi, (label, curve)) in plot.curves.iter().enumerate() {
        let colour = COLOURS[gi % COLOURS.len()];
        let Some(c) = curve else { continue };
        let mut d = format!("M{:.1} {:.1}", f.x(0.0), f.y(1.0));
        let mut ticks = String::new();
        for (i, &t) in c.times.iter().enumerate() {
            let s = c.survival[i];
            if c.n_event[i] > 0 {
                let _ = write!(d, "H{:.1}V{:.1}", f.x(t), f.y(s));
            }
            if c.n_censor[i] > 0 {
                let _ = write!(ticks, "M{:.1} {:.1}v8", f.x(t), f.y(s) - 4.0);
            }
        }
        let _ = write!(d, "H{:.1}", f.x(c.times.last().copied().unwrap_or(0.0)));
        let _ = writeln!(out, "<path class=\"curve\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>");
        if !ticks.is_empty() {
            let _ = writeln!(out, "<path class=\"censor\" d=\"{ticks}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>");
        }
        if plot.curves.len() > 1 {
            let ly = TOP + 14.0 + 16.0 * gi as f64;
            let _ = writeln!(
                out,
                "<path d=\"M{:.1} {:.1}h20\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                W - RIGHT - 110.0,
                ly - 4.0,
                W - RIGHT - 84.0,
                ly,
                esc(label)
            );
        }
    }
    // Numbers at risk.
    let _ = writeln!(
        out,
        "<g class=\"at-risk\"><text x=\"4\" y=\"{risk_top:.1}\" font-size=\"11\" font-weight=\"bold\">Number at risk</text>"
    );
    for (gi, (label, curve)) in plot.curves.iter().enumerate() {
        let y = risk_top + 18.0 * (gi as f64 + 1.0);
        let colour = COLOURS[gi % COLOURS.len()];
        let _ = write!(out, "<text x=\"4\" y=\"{y:.1}\" font-size=\"11\" fill=\"{colour}\">{}</text>", esc(label));
        let mut m = 0.0;
        while m <= x_max_months + 1e-9 {
            let n = at_risk(curve.as_ref(), m * DAYS_PER_MONTH);
            let _ = write!(out, "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" font-size=\"11\">{n}</text>", f.x(m * DAYS_PER_MONTH));
            m += step;
        }
        out.push('\n');
    }
    out.push_str("</g></svg>\n");
    out
}

/// Fig. 2: cumulative incidence step curves on the PFS1 clock.
pub(crate) fn cif(plot: &CifPlot, title: &str, note: &str) -> String {
    let (x_max_months, step) = month_axis(plot.max_time);
    let f = Frame { x_max_months };
    let height = TOP + PLOT_H + 50.0;
    let mut out = open(height, "cif", title);
    let _ = writeln!(out, "<text x=\"{LEFT:.1}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>", esc(title));
    let _ = writeln!(out, "<text x=\"{LEFT:.1}\" y=\"31\" font-size=\"11\">{}</text>", esc(note));
    axes(&mut out, &f, step, "cumulative incidence");
    for (gi, (name, times, cif)) in plot.curves.iter().enumerate() {
        let colour = COLOURS[gi % COLOURS.len()];
        let mut d = format!("M{:.1} {:.1}", f.x(0.0), f.y(0.0));
        for (t, p) in times.iter().zip(cif) {
            let _ = write!(d, "H{:.1}V{:.1}", f.x(*t), f.y(*p));
        }
        let _ = write!(d, "H{:.1}", f.x(plot.max_time));
        let dash = if name == "death_without_progression" { " stroke-dasharray=\"4 3\"" } else { "" };
        let _ = writeln!(out, "<path class=\"curve\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>");
        let ly = TOP + 14.0 + 16.0 * gi as f64;
        let _ = writeln!(
            out,
            "<path d=\"M{:.1} {:.1}h20\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            LEFT + 12.0,
            ly - 4.0,
            LEFT + 38.0,
            ly,
            esc(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Fig. 3: one stacked bar per (baseline brain, prior brain RT): brain at PD1.
pub(crate) fn brain(be: &BrainEvolution, title: &str) -> String {
    let bar_h = 22.0;
    let gap = 10.0;
    let label_w = 190.0;
    let top = 50.0;
    let height = top + (bar_h + gap) * be.rows.len() as f64 + 40.0;
    let mut out = open(height, "brain", title);
    let _ = writeln!(out, "<text x=\"10\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>", esc(title));
    let parts: [(&str, &str); 4] =
        [("no brain PD", "#9ecae1"), ("oligo brain PD", "#fdae6b"), ("multiple brain PD", "#d62728"), ("no PD1", "#dddddd")];
    for (i, (name, colour)) in parts.iter().enumerate() {
        let x = label_w + 110.0 * i as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"26\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"36\" font-size=\"11\">{name}</text>",
            x + 16.0
        );
    }
    let max_n = be.rows.iter().map(|r| r.n).max().unwrap_or(0).max(1) as f64;
    let scale = (W - label_w - 50.0) / max_n;
    for (i, row) in be.rows.iter().enumerate() {
        let y = top + (bar_h + gap) * i as f64;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">baseline {}, prior brain RT {}</text>",
            label_w - 8.0,
            y + 15.0,
            row.baseline,
            row.prior_brain_rt
        );
        let counts = [row.pd1_brain.none, row.pd1_brain.oligo, row.pd1_brain.multiple, row.pd1_brain.no_pd1];
        let mut x = label_w;
        for (k, n) in counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let w = *n as f64 * scale;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h:.1}\" fill=\"{}\"><title>{}: {n}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{n}</text>",
                parts[k].1,
                parts[k].0,
                x + w / 2.0,
                y + 15.0
            );
            x += w;
        }
        let _ = writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">n = {}</text>", x + 6.0, y + 15.0, row.n);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_stats::km::{kaplan_meier, KmConfig};

    #[test]
    fn numbers_at_risk_count_patients_still_followed() {
        let c = kaplan_meier(&[10.0, 20.0, 20.0, 40.0], &[true, false, true, true], &KmConfig::default()).expect("km");
        assert_eq!(at_risk(Some(&c), 0.0), 4);
        assert_eq!(at_risk(Some(&c), 15.0), 3);
        assert_eq!(at_risk(Some(&c), 20.0), 3);
        assert_eq!(at_risk(Some(&c), 21.0), 1);
        assert_eq!(at_risk(Some(&c), 41.0), 0);
        assert_eq!(at_risk(None, 0.0), 0);
    }

    #[test]
    fn the_month_axis_is_round() {
        assert_eq!(month_axis(350.0), (12.0, 3.0));
        assert_eq!(month_axis(700.0), (24.0, 6.0));
        assert_eq!(month_axis(2000.0), (72.0, 12.0));
    }
}
