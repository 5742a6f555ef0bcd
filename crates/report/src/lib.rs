//! The plain data model of a diagnosis and its renderings.
//!
//! [`Diagnosis`] is a tree of plain-data structs with public fields: what differs between a
//! Keras model and its PyTorch port ([`Finding`]s with evidence and fixes), how the layers
//! were paired ([`Alignment`]), and, when measured, forward parity, training curves with
//! ablations and the noise floor. Renderers turn it into a terminal summary
//! ([`render_terminal`]), Markdown ([`render_markdown`]), one self-contained HTML page with
//! inline SVG ([`render_html`]) and JSON ([`render_json`]).
//!
//! This crate does not know how the numbers were produced, nor what the catalogue ids mean:
//! it renders what it is given, with a fixed number of significant digits ([`sig`]).
//! Float comparisons anywhere in parallax go through [`Tolerance`].

mod fmt;
mod html;
mod markdown;
mod model;
mod svg;
mod terminal;
mod tolerance;

pub use fmt::{SIG_DIGITS, sig, sig_n};
pub use html::render_html;
pub use markdown::render_markdown;
pub use model::{
    Ablation, Alignment, Attribution, Curve, Diagnosis, Evidence, Finding, Fix, ForwardReport,
    Impact, LayerError, LayerPair, ModelSummary, NoiseFloor, NotChecked, ParamPair, Settings,
    Severity, TrainingReport, rank_findings,
};
pub use terminal::{WIDTH, render_terminal};
pub use tolerance::Tolerance;

/// The diagnosis as pretty-printed JSON (`{"verdict", ..., "findings": [...], "forward",
/// "training", "noise_floor", ...}`), ending with a newline.
pub fn render_json(d: &Diagnosis) -> String {
    // Serializing plain structs of strings, numbers and options cannot fail; non-finite
    // floats become `null`.
    let mut s =
        serde_json::to_string_pretty(d).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
