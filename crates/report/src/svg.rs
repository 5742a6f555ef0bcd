//! Inline SVG charts for the HTML report: line charts of curves and horizontal bar charts.
//! No scripts, no external resources.

use std::fmt::Write as _;

use crate::fmt::{html_escape, sig};

/// Colours for series, chosen to stay distinguishable in greyscale order.
pub(crate) const PALETTE: [&str; 8] = [
    "#1f4e9c", "#c0392b", "#2e8b57", "#b8860b", "#6a3d9a", "#008b8b", "#d35400", "#555555",
];

/// One line of a chart.
pub(crate) struct Series<'a> {
    pub(crate) label: &'a str,
    pub(crate) values: &'a [f64],
    pub(crate) dashed: bool,
}

/// A line chart of several series over their index (step), with min/max axis labels and a
/// legend. Non-finite values are skipped.
pub(crate) fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let h = 300.0f64.max(28.0 + 18.0 * series.len() as f64 + 20.0);
    let w = 760.0;
    let (left, right, top, bottom) = (64.0, 250.0, 28.0, 36.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        lo -= 0.5;
        hi += 0.5;
    }
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let x = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + ph * (1.0 - (v - lo) / (hi - lo));
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
        t = html_escape(title)
    );
    let _ = write!(
        o,
        r##"<text x="{left}" y="18" class="ct">{}</text>"##,
        html_escape(title)
    );
    // Axes and grid.
    let _ = write!(
        o,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = write!(
            o,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" class="ax" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            sig(v)
        );
    }
    let _ = write!(
        o,
        r##"<text x="{left}" y="{:.1}" class="ax">0</text><text x="{:.1}" y="{:.1}" class="ax" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" class="ax" text-anchor="middle">step</text>"##,
        top + ph + 16.0,
        left + pw,
        top + ph + 16.0,
        n - 1,
        left + pw / 2.0,
        top + ph + 30.0
    );
    let _ = write!(
        o,
        r##"<text x="14" y="{:.1}" class="ax" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"##,
        top + ph / 2.0,
        top + ph / 2.0,
        html_escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(j, v)| format!("{:.1},{:.1}", x(j), y(*v)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        let ly = top + 14.0 + 18.0 * i as f64;
        let lx = left + pw + 12.0;
        let _ = write!(
            o,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{ly:.1}" class="lg">{}</text>"#,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            lx + 24.0,
            html_escape(&short(s.label, 36))
        );
    }
    o.push_str("</svg>");
    o
}

/// `s` cut to `n` characters with an ellipsis.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// One bar of a bar chart: a label and up to two values (drawn as two thin bars).
pub(crate) struct Bar<'a> {
    pub(crate) label: &'a str,
    pub(crate) value: f64,
    pub(crate) second: Option<f64>,
}

/// Horizontal bars. With `log` the bar length is log10 of the value between the smallest and
/// largest positive value (errors spanning many decades); otherwise linear from 0 to the
/// maximum. `marker` draws a vertical reference line (a threshold).
pub(crate) fn bar_chart(
    title: &str,
    legend: (&str, Option<&str>),
    bars: &[Bar<'_>],
    log: bool,
    marker: Option<f64>,
) -> String {
    let row = 22.0;
    let (left, right, top) = (190.0, 90.0, 30.0);
    let w = 680.0;
    let pw = w - left - right;
    let h = top + row * bars.len().max(1) as f64 + 30.0;
    let values: Vec<f64> = bars
        .iter()
        .flat_map(|b| std::iter::once(b.value).chain(b.second))
        .chain(marker)
        .filter(|v| v.is_finite())
        .collect();
    let floor = 1e-12;
    let (lo, hi) = if log {
        let pos = values.iter().map(|v| v.max(floor));
        let lo = pos.clone().fold(f64::INFINITY, f64::min).log10().floor();
        let hi = pos.fold(0.0f64, f64::max).log10().ceil();
        (lo.min(hi - 1.0), hi)
    } else {
        (
            0.0,
            values.iter().fold(0.0f64, |a, v| a.max(*v)).max(1e-300),
        )
    };
    let len = |v: f64| -> f64 {
        if !v.is_finite() {
            return 0.0;
        }
        let f = if log {
            (v.max(floor).log10() - lo) / (hi - lo)
        } else {
            v.max(0.0) / hi
        };
        pw * f.clamp(0.0, 1.0)
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><text x="8" y="18" class="ct">{t}</text>"#,
        t = html_escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y0 = top + row * i as f64;
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" class="ax" text-anchor="end">{}</text>"#,
            left - 6.0,
            y0 + 14.0,
            html_escape(&short(b.label, 30))
        );
        let (hh, off) = if b.second.is_some() {
            (8.0, 2.0)
        } else {
            (14.0, 3.0)
        };
        let _ = write!(
            o,
            r#"<rect x="{left}" y="{:.1}" width="{:.1}" height="{hh}" fill="{}"/>"#,
            y0 + off,
            len(b.value),
            PALETTE[0]
        );
        if let Some(s) = b.second {
            let _ = write!(
                o,
                r#"<rect x="{left}" y="{:.1}" width="{:.1}" height="{hh}" fill="{}"/>"#,
                y0 + off + hh + 1.0,
                len(s),
                PALETTE[2]
            );
        }
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" class="ax">{}</text>"#,
            left + len(b.value).max(len(b.second.unwrap_or(0.0))) + 4.0,
            y0 + 14.0,
            sig(b.value)
        );
    }
    if let Some(m) = marker {
        let mx = left + len(m);
        let _ = write!(
            o,
            r##"<line x1="{mx:.1}" y1="{top}" x2="{mx:.1}" y2="{:.1}" stroke="#c0392b" stroke-dasharray="4 3"/>"##,
            top + row * bars.len() as f64
        );
    }
    let ly = h - 10.0;
    let _ = write!(
        o,
        r#"<rect x="{left}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}" class="lg">{}</text>"#,
        ly - 9.0,
        PALETTE[0],
        left + 14.0,
        html_escape(legend.0)
    );
    if let Some(l2) = legend.1 {
        let _ = write!(
            o,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}" class="lg">{}</text>"#,
            left + 200.0,
            ly - 9.0,
            PALETTE[2],
            left + 214.0,
            html_escape(l2)
        );
    }
    if log {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{ly:.1}" class="ax" text-anchor="end">log scale 1e{} … 1e{}</text>"#,
            w - 8.0,
            lo as i64,
            hi as i64
        );
    }
    o.push_str("</svg>");
    o
}
