//! Number and text formatting shared by the renderers: fixed significant digits, wrapping,
//! escaping.

/// Significant digits of every number in a rendered report.
pub const SIG_DIGITS: usize = 3;

/// `x` with [`SIG_DIGITS`] significant digits: plain notation for 1e-3 ≤ |x| < 1e5,
/// scientific otherwise (`0.0255`, `1437`, `3.48e-4`, `1e-7`). Trailing zeros are dropped.
pub fn sig(x: f64) -> String {
    sig_n(x, SIG_DIGITS)
}

/// `x` with `digits` significant digits (at least 1); see [`sig`].
pub fn sig_n(x: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.abs() < f64::MIN_POSITIVE {
        return "0".into();
    }
    // Round first in scientific form so that 9.996 → 10.0 picks the right exponent.
    let e = format!("{:.*e}", digits - 1, x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-3..5).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        let rounded: f64 = e.parse().unwrap_or(x);
        trim_zeros(&format!("{rounded:.decimals$}"))
    } else {
        format!("{}e{exp}", trim_zeros(mant))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".into() } else { t.into() }
    } else if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Splits `text` into lines of at most `width` characters, breaking at spaces; a word longer
/// than the width is broken inside. Existing newlines are kept.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let mut word = word.to_string();
            loop {
                let need = if line.is_empty() {
                    word.chars().count()
                } else {
                    line.chars().count() + 1 + word.chars().count()
                };
                if need <= width {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(&word);
                    break;
                }
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                    continue;
                }
                // A single word longer than the line: break it.
                let head: String = word.chars().take(width).collect();
                let tail: String = word.chars().skip(width).collect();
                out.push(head);
                word = tail;
                if word.is_empty() {
                    break;
                }
            }
        }
        out.push(line);
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Escapes text for a Markdown table cell (pipes and newlines).
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

/// The detail of a finding's impact after its share: the Shapley value (± its sampling
/// error) of the gap, and the gap it closes aligned alone.
pub(crate) fn impact_detail(i: &crate::model::Impact) -> String {
    let err = i
        .sampling_error
        .map(|e| format!(" ± {}", sig(e)))
        .unwrap_or_default();
    let alone = if i.alone_closed < 0.0 {
        format!(
            "alone it widens the gap by {} ({})",
            percent(-i.alone_share),
            sig(-i.alone_closed)
        )
    } else {
        format!(
            "alone it closes {} ({})",
            percent(i.alone_share),
            sig(i.alone_closed)
        )
    };
    format!(
        "Shapley value {}{err} of {} {}; {alone}",
        sig(i.gap_closed),
        sig(i.gap_total),
        i.metric,
    )
}

/// A share 0–1 as a percentage with [`SIG_DIGITS`] significant digits (`42.5%`).
pub(crate) fn percent(share: f64) -> String {
    format!("{}%", sig(share * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(x: f64, expected: &str) {
        assert_eq!(sig(x), expected);
    }

    #[test]
    fn significant_digits() {
        check(0.0, "0");
        check(-0.0, "0");
        check(1.0, "1");
        check(0.0255123, "0.0255");
        check(1437.0, "1440");
        check(12345.0, "12300");
        check(123456.0, "1.23e5");
        check(3.4806e-4, "3.48e-4");
        check(1e-7, "1e-7");
        check(0.001, "0.001");
        check(9.996, "10");
        check(-2.5, "-2.5");
        check(0.99, "0.99");
        check(f64::NAN, "nan");
        assert_eq!(sig_n(0.123456, 5), "0.12346");
    }

    #[test]
    fn wrapping_respects_width() {
        let lines = wrap("aaa bbb ccc ddd", 8);
        assert_eq!(lines, vec!["aaa bbb", "ccc ddd"]);
        let lines = wrap("abcdefghijkl", 8);
        assert_eq!(lines, vec!["abcdefgh", "ijkl"]);
        assert_eq!(wrap("a\nb", 8), vec!["a", "b"]);
    }
}
