//! Conventions that differ between Keras and PyTorch, stated explicitly.
//!
//! Nothing in the IR assumes one framework: every place where the frameworks disagree on
//! what a number means (layout, padding rule, momentum form, gate order, ...) carries one
//! of these values, filled in by the importer from what the file actually says.

use serde::Serialize;

/// The framework a model, layer or parameter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    Keras,
    Torch,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::Keras => "keras",
            Framework::Torch => "torch",
        }
    }

    /// The other framework.
    pub fn other(self) -> Framework {
        match self {
            Framework::Keras => Framework::Torch,
            Framework::Torch => Framework::Keras,
        }
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Position of the channel axis in activations of spatial layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataLayout {
    /// `(N, *spatial, C)`: Keras's default `channels_last`.
    ChannelsLast,
    /// `(N, C, *spatial)`: PyTorch's layout, Keras `channels_first`.
    ChannelsFirst,
}

impl DataLayout {
    pub fn name(self) -> &'static str {
        match self {
            DataLayout::ChannelsLast => "channels_last",
            DataLayout::ChannelsFirst => "channels_first",
        }
    }

    /// The axis permutation (`perm[i]` = source axis) that turns a `(N, *spatial, C)` tensor of
    /// rank `rank` into `(N, C, *spatial)`; `None` below rank 3 (no spatial axis to move past).
    pub fn last_to_first_perm(rank: usize) -> Option<Vec<usize>> {
        if rank < 3 {
            return None;
        }
        let mut perm = vec![0, rank - 1];
        perm.extend(1..rank - 1);
        Some(perm)
    }
}

/// How a convolution or pooling window is padded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum Padding {
    /// No padding (`'valid'`, or all-zero explicit pads).
    Valid,
    /// TensorFlow `'same'`: output = ceil(in / stride); the total pad
    /// `max((out − 1)·stride + (k − 1)·dilation + 1 − in, 0)` is split with the extra
    /// element at the end (bottom/right). Depends on the input size.
    SameUpper,
    /// ONNX `auto_pad=SAME_LOWER`: like [`Padding::SameUpper`] with the extra element at the start.
    SameLower,
    /// Keras `'causal'` (Conv1D): pad `(k − 1)·dilation` at the start only.
    Causal,
    /// Fixed pads per spatial axis, as PyTorch `padding=(p, ...)` (symmetric) or ONNX `pads`.
    Explicit { begin: Vec<usize>, end: Vec<usize> },
}

impl Padding {
    /// Symmetric explicit padding.
    pub fn symmetric(p: &[usize]) -> Padding {
        Padding::Explicit {
            begin: p.to_vec(),
            end: p.to_vec(),
        }
    }

    /// Pads `(begin, end)` on one spatial axis for a given input size.
    pub fn pads_for(
        &self,
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> (usize, usize) {
        let eff = (kernel.saturating_sub(1)) * dilation + 1;
        match self {
            Padding::Valid => (0, 0),
            Padding::SameUpper | Padding::SameLower => {
                let stride = stride.max(1);
                let out = input.div_ceil(stride);
                let total = ((out.saturating_sub(1)) * stride + eff).saturating_sub(input);
                let small = total / 2;
                if matches!(self, Padding::SameUpper) {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            }
            Padding::Causal => (eff - 1, 0),
            Padding::Explicit { begin, end } => (
                begin.get(axis).copied().unwrap_or(0),
                end.get(axis).copied().unwrap_or(0),
            ),
        }
    }

    /// Output length and pads `(begin, end)` of a sliding window (kernel `kernel`, stride
    /// `stride`, dilation `dilation`) over spatial axis `axis` of length `input`.
    ///
    /// With effective kernel `e = (k − 1)·d + 1` and the pads of [`Padding::pads_for`]:
    /// - TF `'same'` (either side): `⌈n/s⌉`
    ///   (`tensorflow/core/framework/kernel_shape_util.cc`, `GetWindowedOutputSizeVerbose`);
    /// - otherwise `⌊(n + b + a − e)/s⌋ + 1`; with `ceil_mode` (torch pooling) `⌈·⌉ + 1`, minus one
    ///   when the last window would start inside the end padding
    ///   (`aten/src/ATen/native/Pool.h`, `pooling_output_shape_pad_lr`).
    ///
    /// [`WindowError`] when a size is zero or the window does not fit the padded input.
    pub fn window(
        &self,
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        ceil_mode: bool,
    ) -> Result<WindowAxis, WindowError> {
        if kernel == 0 || stride == 0 || dilation == 0 {
            return Err(WindowError::NonPositive);
        }
        let eff = (kernel - 1) * dilation + 1;
        let (begin, end) = self.pads_for(axis, input, kernel, stride, dilation);
        let out = match self {
            Padding::SameUpper | Padding::SameLower => input.div_ceil(stride),
            _ => {
                let total = input + begin + end;
                if total < eff {
                    return Err(WindowError::TooLarge {
                        window: eff,
                        padded: total,
                    });
                }
                let num = total - eff;
                if ceil_mode {
                    let mut o = num.div_ceil(stride) + 1;
                    if (o - 1) * stride >= input + begin {
                        o -= 1;
                    }
                    o
                } else {
                    num / stride + 1
                }
            }
        };
        Ok(WindowAxis { out, begin, end })
    }

    /// A short human-readable form (`same(tf)`, `valid`, `pads[1,1|1,1]`).
    pub fn describe(&self) -> String {
        match self {
            Padding::Valid => "valid".into(),
            Padding::SameUpper => "same(tf: extra at end)".into(),
            Padding::SameLower => "same(extra at start)".into(),
            Padding::Causal => "causal".into(),
            Padding::Explicit { begin, end } => {
                let b: Vec<String> = begin.iter().map(|v| v.to_string()).collect();
                let e: Vec<String> = end.iter().map(|v| v.to_string()).collect();
                format!("pads[{}|{}]", b.join(","), e.join(","))
            }
        }
    }
}

/// How a running statistic is blended with the batch statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "form", content = "value")]
pub enum MomentumForm {
    /// Keras and ONNX: `running = m · running + (1 − m) · batch` (m is the weight on the old value;
    /// Keras default 0.99, ONNX's 0.9 is torch's 0.1).
    KeepOld(f64),
    /// PyTorch: `running = (1 − m) · running + m · batch` (m is the weight on the new value; default 0.1).
    TakeNew(f64),
    /// PyTorch `momentum=None`: cumulative moving average over `num_batches_tracked`.
    CumulativeAverage,
}

impl MomentumForm {
    /// The weight on the old running value, when it is a constant.
    pub fn keep_fraction(self) -> Option<f64> {
        match self {
            MomentumForm::KeepOld(m) => Some(m),
            MomentumForm::TakeNew(m) => Some(1.0 - m),
            MomentumForm::CumulativeAverage => None,
        }
    }

    pub fn describe(self) -> String {
        match self {
            MomentumForm::KeepOld(m) => format!("keep-old {m}"),
            MomentumForm::TakeNew(m) => format!("take-new {m}"),
            MomentumForm::CumulativeAverage => "cumulative".into(),
        }
    }
}

/// Which variance estimate updates the running variance in training mode.
///
/// Both frameworks normalize the batch with the biased variance; they differ in what they store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceEstimate {
    /// Divide by n (Keras 3).
    Biased,
    /// Divide by n − 1 (PyTorch, Bessel's correction).
    Unbiased,
}

/// Order in which an LSTM/GRU stores its gate blocks along the stacked axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOrder {
    /// Keras LSTM `i, f, c, o` (same as PyTorch's `i, f, g, o`).
    Ifco,
    /// ONNX LSTM `i, o, f, c`.
    Iofc,
    /// Keras GRU `z, r, h`, also ONNX GRU.
    Zrh,
    /// PyTorch GRU `r, z, n`.
    Rzn,
    /// SimpleRNN: a single block.
    Single,
}

impl GateOrder {
    /// Gate names in stored order, using the LSTM letters i,f,c,o and GRU letters z,r,h.
    pub fn gates(self) -> &'static [&'static str] {
        match self {
            GateOrder::Ifco => &["i", "f", "c", "o"],
            GateOrder::Iofc => &["i", "o", "f", "c"],
            GateOrder::Zrh => &["z", "r", "h"],
            GateOrder::Rzn => &["r", "z", "h"],
            GateOrder::Single => &["h"],
        }
    }

    /// For each gate position of `to`, the index of that gate in `self`.
    ///
    /// `None` when the two orders do not describe the same cell type.
    pub fn permutation_to(self, to: GateOrder) -> Option<Vec<usize>> {
        let from = self.gates();
        let target = to.gates();
        if from.len() != target.len() {
            return None;
        }
        target
            .iter()
            .map(|g| from.iter().position(|f| f == g))
            .collect()
    }
}

/// How recurrent biases are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnBias {
    /// One bias vector `(G·H)` added to the input projection (Keras LSTM, SimpleRNN, GRU with `reset_after=False`).
    Single,
    /// Keras GRU `reset_after=True`: bias `(2, 3H)`, row 0 input bias, row 1 recurrent bias.
    KerasInputRecurrentRows,
    /// PyTorch: separate `bias_ih` and `bias_hh`, each `(G·H)`.
    InputAndRecurrent,
    /// No bias at all.
    None,
}

/// Where the GRU reset gate is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GruReset {
    /// `h̃ = tanh(W x + r ⊙ (R h + b_R) + b_W)`: Keras `reset_after=True`, PyTorch, ONNX `linear_before_reset=1`.
    AfterMatmul,
    /// `h̃ = tanh(W x + R (r ⊙ h) + b)`: Keras `reset_after=False`, ONNX `linear_before_reset=0`.
    BeforeMatmul,
}

/// Definition of `hard_sigmoid`: `clip(slope · x + offset, 0, 1)`.
///
/// Keras 3 and PyTorch: slope 1/6, offset 1/2. tf.keras 2.x and ONNX `HardSigmoid` default: slope 0.2, offset 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HardSigmoid {
    pub slope: f64,
    pub offset: f64,
}

impl HardSigmoid {
    pub const KERAS3_TORCH: HardSigmoid = HardSigmoid {
        slope: 1.0 / 6.0,
        offset: 0.5,
    };
    pub const LEGACY: HardSigmoid = HardSigmoid {
        slope: 0.2,
        offset: 0.5,
    };
}

/// One spatial axis of a sliding window ([`Padding::window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowAxis {
    /// Output length.
    pub out: usize,
    /// Pad before the input.
    pub begin: usize,
    /// Pad after the input.
    pub end: usize,
}

/// Why a sliding window has no output ([`Padding::window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    /// Kernel, stride or dilation is zero.
    NonPositive,
    /// The effective window is longer than the padded input.
    TooLarge { window: usize, padded: usize },
}

/// An element-wise activation with its exact variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "fn")]
pub enum Activation {
    Linear,
    /// `min(max(x, threshold) ..., max_value)` with `negative_slope` below the threshold (Keras `relu` / `ReLU` layer).
    Relu {
        negative_slope: f64,
        max_value: Option<f64>,
        threshold: f64,
    },
    /// `x` for x ≥ 0, `slope · x` otherwise (Keras layer default 0.3, function 0.2, PyTorch 0.01).
    LeakyRelu {
        slope: f64,
    },
    Elu {
        alpha: f64,
    },
    Selu,
    /// `approximate=false`: `x Φ(x)` with erf; `true`: the tanh approximation.
    Gelu {
        approximate: bool,
    },
    Sigmoid,
    HardSigmoid(HardSigmoid),
    /// `x · hard_sigmoid(x)` (Keras `hard_silu`/`hard_swish`, PyTorch `Hardswish`).
    HardSwish,
    Tanh,
    /// Keras `softmax(axis)`; the axis is counted on the full tensor including batch, negative from the end.
    Softmax {
        axis: i64,
    },
    LogSoftmax {
        axis: i64,
    },
    /// `log(1 + exp(β x)) / β`; PyTorch's linear above `threshold`.
    Softplus {
        beta: f64,
        threshold: Option<f64>,
    },
    Softsign,
    /// `x · sigmoid(β x)`: Keras `silu`/`swish`, PyTorch `SiLU` (β = 1).
    Silu,
    Mish,
    Exponential,
    Relu6,
    LogSigmoid,
    /// Keras `tanh_shrink`, PyTorch `Tanhshrink`.
    TanhShrink,
}

impl Activation {
    /// Plain ReLU.
    pub const RELU: Activation = Activation::Relu {
        negative_slope: 0.0,
        max_value: None,
        threshold: 0.0,
    };

    /// Short name for tables.
    pub fn describe(&self) -> String {
        match self {
            Activation::Linear => "linear".into(),
            Activation::Relu {
                negative_slope,
                max_value,
                threshold,
            } => {
                let mut s = "relu".to_string();
                if *negative_slope != 0.0 {
                    s += &format!(" slope={negative_slope}");
                }
                if let Some(m) = max_value {
                    s += &format!(" max={m}");
                }
                if *threshold != 0.0 {
                    s += &format!(" threshold={threshold}");
                }
                s
            }
            Activation::LeakyRelu { slope } => format!("leaky_relu slope={slope}"),
            Activation::Elu { alpha } => format!("elu alpha={alpha}"),
            Activation::Selu => "selu".into(),
            Activation::Gelu { approximate } => {
                if *approximate {
                    "gelu(tanh)".into()
                } else {
                    "gelu(erf)".into()
                }
            }
            Activation::Sigmoid => "sigmoid".into(),
            Activation::HardSigmoid(h) => {
                format!("hard_sigmoid {}x+{}", fmt_num(h.slope), fmt_num(h.offset))
            }
            Activation::HardSwish => "hard_swish".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Softmax { axis } => format!("softmax axis={axis}"),
            Activation::LogSoftmax { axis } => format!("log_softmax axis={axis}"),
            Activation::Softplus { beta, threshold } => match threshold {
                Some(t) => format!("softplus beta={beta} threshold={t}"),
                None => format!("softplus beta={beta}"),
            },
            Activation::Softsign => "softsign".into(),
            Activation::Silu => "silu".into(),
            Activation::Mish => "mish".into(),
            Activation::Exponential => "exponential".into(),
            Activation::Relu6 => "relu6".into(),
            Activation::LogSigmoid => "log_sigmoid".into(),
            Activation::TanhShrink => "tanh_shrink".into(),
        }
    }
}

/// Formats a float with at most 6 significant digits, without trailing zeros
/// (`1`, `0.001`, `0.166667`, `1e-10`).
pub fn fmt_num(v: f64) -> String {
    let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
    let plain = format!("{rounded}");
    if plain.len() <= 10 {
        plain
    } else {
        format!("{rounded:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_last_to_first_permutation() {
        assert_eq!(DataLayout::last_to_first_perm(2), None);
        assert_eq!(DataLayout::last_to_first_perm(3), Some(vec![0, 2, 1]));
        assert_eq!(DataLayout::last_to_first_perm(4), Some(vec![0, 3, 1, 2]));
    }

    #[test]
    fn window_lengths_follow_each_rule() {
        let w = |p: &Padding, n, k, s, d, ceil| p.window(0, n, k, s, d, ceil);
        // TF same: ceil(n / s) whatever the kernel.
        let same = w(&Padding::SameUpper, 8, 3, 2, 1, false).unwrap();
        assert_eq!((same.out, same.begin, same.end), (4, 0, 1));
        // valid: floor((n - e) / s) + 1 with e = (k - 1)·d + 1.
        assert_eq!(w(&Padding::Valid, 10, 3, 2, 2, false).unwrap().out, 3);
        // torch ceil_mode: the last window may not start in the end padding.
        let pads = Padding::symmetric(&[1]);
        assert_eq!(w(&pads, 5, 2, 2, 1, false).unwrap().out, 3);
        assert_eq!(w(&pads, 5, 2, 2, 1, true).unwrap().out, 3);
        assert_eq!(w(&Padding::Valid, 5, 2, 2, 1, true).unwrap().out, 3);
        assert_eq!(
            w(&Padding::Valid, 2, 3, 1, 1, false),
            Err(WindowError::TooLarge {
                window: 3,
                padded: 2
            })
        );
        assert_eq!(
            w(&Padding::Valid, 2, 0, 1, 1, false),
            Err(WindowError::NonPositive)
        );
    }

    #[test]
    fn tf_same_padding_puts_extra_at_end() {
        // in 8, k 3, s 2: out 4, total = 3*2 + 3 - 8 = 1 -> (0, 1)
        assert_eq!(Padding::SameUpper.pads_for(0, 8, 3, 2, 1), (0, 1));
        assert_eq!(Padding::SameLower.pads_for(0, 8, 3, 2, 1), (1, 0));
        assert_eq!(Padding::SameUpper.pads_for(0, 7, 3, 1, 1), (1, 1));
        assert_eq!(Padding::Causal.pads_for(0, 7, 3, 1, 2), (4, 0));
    }

    #[test]
    fn numbers_print_short() {
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(0.001), "0.001");
        assert_eq!(fmt_num(1e-7), "0.0000001");
        assert_eq!(fmt_num(1.0 / 6.0), "0.166667");
        assert_eq!(fmt_num(1e-10), "1e-10");
        assert_eq!(fmt_num(0.99), "0.99");
    }

    #[test]
    fn gate_permutations() {
        // ONNX i,o,f,c taken from Keras i,f,c,o.
        assert_eq!(
            GateOrder::Ifco.permutation_to(GateOrder::Iofc),
            Some(vec![0, 3, 1, 2])
        );
        assert_eq!(
            GateOrder::Zrh.permutation_to(GateOrder::Rzn),
            Some(vec![1, 0, 2])
        );
        assert_eq!(GateOrder::Zrh.permutation_to(GateOrder::Ifco), None);
    }

    #[test]
    fn momentum_forms_agree_on_keep_fraction() {
        let k = MomentumForm::KeepOld(0.9).keep_fraction().unwrap();
        let t = MomentumForm::TakeNew(0.1).keep_fraction().unwrap();
        assert!((k - t).abs() < 1e-12);
    }
}
