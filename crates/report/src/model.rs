//! The diagnosis data model: plain structs with public fields, serialized as the JSON report.

use serde::Serialize;

/// Everything a comparison found, in the order a reader needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// One sentence: what is wrong and what matters most.
    pub verdict: String,
    pub keras: ModelSummary,
    pub torch: ModelSummary,
    /// How the layers of the two models were paired.
    pub alignment: Alignment,
    /// Ranked: measured impact first (highest share first), then severity.
    pub findings: Vec<Finding>,
    /// Per-layer forward parity from the same weights and inputs (when measured).
    pub forward: Option<ForwardReport>,
    /// Training curves of both sides and the ablations (when measured).
    pub training: Option<TrainingReport>,
    /// Seed-to-seed spread of each side against itself (when measured).
    pub noise_floor: Option<NoiseFloor>,
    /// What this comparison did not decide, and why.
    pub not_checked: Vec<NotChecked>,
    /// The requested training settings (recorded even when training did not run).
    pub settings: Settings,
}

/// One side of the comparison in a few words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// `keras` or `torch`.
    pub framework: String,
    /// The bundle path as the user gave it.
    pub source: String,
    /// The model's own name.
    pub name: String,
    /// Producer and version recorded in the file.
    pub producer: Option<String>,
    /// Number of layers (graph nodes, inputs included).
    pub layers: usize,
    /// Number of trainable scalars.
    pub trainable: usize,
    /// Optimizer as configured (`Adam(lr=0.001, eps=1e-8)`).
    pub optimizer: Option<String>,
    /// Loss as configured.
    pub loss: Option<String>,
    /// What `inputs.safetensors` holds (`x [256,64] f32, y [256] i64`), when present.
    pub inputs: Option<String>,
}

/// The pairing of layers between the two models.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Alignment {
    pub pairs: Vec<LayerPair>,
    /// Layers with parameters that have no counterpart on the torch side.
    pub keras_only: Vec<String>,
    /// Layers with parameters that have no counterpart on the Keras side.
    pub torch_only: Vec<String>,
}

/// Two layers that compute the same thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerPair {
    pub keras: String,
    pub torch: String,
    /// Layer kind (`dense`, `conv`, `batch_norm`, ...).
    pub kind: String,
    pub params: Vec<ParamPair>,
    /// How the torch initial weights relate to the Keras ones (`copied`, `independent`, ...).
    pub weights: String,
}

/// Two parameters that hold the same quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamPair {
    pub keras: String,
    pub torch: String,
    /// The exact transform from the Keras tensor to the torch one (`permute [1, 0]`).
    pub mapping: String,
}

/// How serious a finding is, before (or without) measuring it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One difference between the two sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Catalogue id (`double-softmax`).
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// The measured share of the gap this finding closes (when measured).
    pub impact: Option<Impact>,
    /// Values on both sides.
    pub evidence: Vec<Evidence>,
    pub fix: Fix,
}

/// The measured effect of aligning one finding: its Shapley share of the gap, and the gap
/// it closes aligned alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    /// The finding's Shapley share of the gap, `gap_closed / gap_total` (negative when
    /// aligning it widens the gap on average). The shares of the distinct switches and the
    /// part no finding explains add up to the gap.
    pub share: f64,
    /// Its Shapley value, in `metric` units: its contribution to closing the gap averaged
    /// over every order of aligning the findings (findings one switch aligns share one).
    pub gap_closed: f64,
    /// Standard error of `gap_closed` when it is estimated from sampled orders; `None` when
    /// exact.
    pub sampling_error: Option<f64>,
    /// Share of the gap closed when only this finding is aligned, 0–1.
    pub alone_share: f64,
    /// Gap closed when only this finding is aligned, in `metric` units.
    pub alone_closed: f64,
    /// The whole gap, in `metric` units.
    pub gap_total: f64,
    /// What the gap is measured in (`mean |Δ categorical crossentropy| over the run`).
    pub metric: String,
}

/// One observation behind a finding: the value on each side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub what: String,
    pub keras: String,
    pub torch: String,
    /// The layer (or layers, `keras ↔ torch`) it was seen in.
    pub layer: Option<String>,
}

/// The change that removes a finding, as code for each side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    pub torch: String,
    pub keras: String,
}

/// Forward parity from the same weights on the same inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForwardReport {
    /// `inference` or `training`.
    pub mode: String,
    pub layers: Vec<LayerError>,
    /// The first layer whose error (carried forward) exceeds `threshold`.
    pub first_divergence: Option<String>,
    /// The first layer whose error with the reference input fed in (isolated) exceeds `threshold`.
    pub first_divergence_isolated: Option<String>,
    /// Max-abs error above which two outputs count as parted.
    pub threshold: f64,
}

/// Output error of one aligned layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerError {
    pub keras: String,
    pub torch: String,
    pub max_abs: f64,
    /// max |a − b| / max |a|.
    pub rel: f64,
    pub cosine: f64,
    /// Max-abs error when the layer is fed the reference input.
    pub isolated_max_abs: Option<f64>,
}

/// Training both sides from the same start, and the ablations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingReport {
    pub steps: usize,
    pub seeds: usize,
    /// What the curves show (`training loss`).
    pub metric: String,
    pub keras: Curve,
    pub torch: Curve,
    /// The gap between the two sides, in the units of `Impact::metric`.
    pub gap: f64,
    /// One run per finding aligned alone.
    pub ablations: Vec<Ablation>,
    /// Every finding aligned together.
    pub all_aligned: Option<Ablation>,
    /// Gap left after aligning everything, when it exceeds the noise floor.
    pub unexplained: Option<f64>,
    /// How the gap is split among the findings (when any finding was aligned).
    pub attribution: Option<Attribution>,
}

/// The Shapley attribution of the gap among the findings' simulation switches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    /// Players: the distinct simulation switches among the findings.
    pub players: usize,
    /// Orders sampled; 0 when every coalition was run (exact).
    pub orders: usize,
    /// The sum of the Shapley values: the gap closed with every finding aligned.
    pub explained: f64,
    /// The gap left with every finding aligned: not explained by the findings.
    pub rest: f64,
    /// Distinct training runs the coalitions needed beyond the base, single and
    /// all-aligned runs.
    pub runs: usize,
    /// What the gap is measured in.
    pub metric: String,
}

impl Attribution {
    /// The one sentence saying what a finding's share and its "alone" figure mean.
    pub fn explain(&self) -> String {
        let how = if self.orders == 0 {
            format!(
                "exact over all {} coalitions of the {} switch{}",
                2u64.saturating_pow(self.players as u32),
                self.players,
                if self.players == 1 { "" } else { "es" }
            )
        } else {
            format!(
                "estimated from {} sampled orders of the {} switches, ± one standard error",
                self.orders, self.players
            )
        };
        format!(
            "Share: a finding's Shapley value, its average contribution to closing the gap over every order of aligning the findings ({how}); the shares ({} in all) and the part not explained by the findings ({}) add up to the measured gap ({}, {metric}). Alone: the gap closed when only that finding is aligned.",
            crate::sig(self.explained),
            crate::sig(self.rest),
            crate::sig(self.explained + self.rest),
            metric = self.metric,
        )
    }
}

/// A named series of values, one per step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub label: String,
    pub values: Vec<f64>,
}

/// The torch side with some findings aligned to Keras.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ablation {
    pub label: String,
    pub ids: Vec<String>,
    pub curve: Vec<f64>,
    /// Gap remaining with these findings aligned.
    pub gap: f64,
    /// Share of the gap closed, 0–1.
    pub closed: f64,
}

/// Spread of each side against itself across seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseFloor {
    pub seeds: usize,
    pub metric: String,
    pub keras: f64,
    pub torch: f64,
    /// What the seeds vary (sample order, dropout masks, re-initialisation).
    pub sources: String,
    /// The floor of float32 round-off, in the units of the metric: a gap below it is noise
    /// even when nothing in either pipeline is random.
    pub numerical: f64,
}

impl NoiseFloor {
    /// The floor a gap is compared with: the larger side's spread, at least the numerical floor.
    pub fn floor(&self) -> f64 {
        self.keras.max(self.torch).max(self.numerical)
    }
}

/// Something the comparison did not decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotChecked {
    /// A catalogue id or a stage (`forward parity`).
    pub what: String,
    pub reason: String,
}

/// Requested settings of the training stages.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Settings {
    pub steps: Option<usize>,
    pub seeds: Option<usize>,
}

/// Sorts findings by measured impact (highest Shapley share first, then the larger absolute gap
/// closed, so that of two findings closing nothing the one widening the gap less comes
/// first; unmeasured last), then by severity. The sort is stable: equal findings keep the
/// order they were given in.
pub fn rank_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| f.impact.as_ref().map(|i| (i.share, i.gap_closed));
        match (key(a), key(b)) {
            (Some(x), Some(y)) => y.0.total_cmp(&x.0).then(y.1.total_cmp(&x.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(a.severity.cmp(&b.severity))
    });
}

impl Diagnosis {
    /// Findings at or above `severity`.
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity <= severity)
            .count()
    }
}
