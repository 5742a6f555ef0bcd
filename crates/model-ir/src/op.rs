//! Layer kinds and their typed attributes.
//!
//! One variant per layer kind. Attributes keep each framework's meaning explicit through the
//! types of [`crate::conventions`]; the importer fills them from the file, never from an
//! assumption about the framework.

use serde::Serialize;

use crate::conventions::{
    Activation, DataLayout, GateOrder, GruReset, MomentumForm, Padding, RnnBias, VarianceEstimate,
};
use crate::tensor::DType;

/// What a node computes.
///
/// Serialized as `{"kind": "<snake_case name>", "attrs": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "attrs")]
pub enum Op {
    /// A graph input. `shape` excludes nothing: the batch dimension is `None` when dynamic.
    Input {
        shape: Vec<Option<usize>>,
        dtype: DType,
    },
    /// `y = act(x · W + b)` over the last axis (Keras Dense, torch Linear, ONNX Gemm/MatMul+Add).
    Dense {
        units: usize,
        use_bias: bool,
        activation: Activation,
    },
    /// Regular (optionally grouped) convolution.
    Conv {
        rank: usize,
        filters: usize,
        kernel_size: Vec<usize>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        groups: usize,
        padding: Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: Activation,
    },
    /// Depthwise convolution: each input channel convolved with `depth_multiplier` filters.
    DepthwiseConv {
        rank: usize,
        depth_multiplier: usize,
        kernel_size: Vec<usize>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        padding: Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: Activation,
    },
    /// Depthwise convolution followed by a 1×1 pointwise convolution (Keras SeparableConv).
    SeparableConv {
        rank: usize,
        filters: usize,
        depth_multiplier: usize,
        kernel_size: Vec<usize>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        padding: Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: Activation,
    },
    /// Transposed convolution. `padding` is the rule applied to the *output* crop.
    ConvTranspose {
        rank: usize,
        filters: usize,
        kernel_size: Vec<usize>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        groups: usize,
        padding: Padding,
        output_padding: Option<Vec<usize>>,
        layout: DataLayout,
        use_bias: bool,
        activation: Activation,
    },
    /// Batch normalization over the channel `axis` (counted on the full tensor, negative from the end).
    BatchNorm {
        axis: i64,
        epsilon: f64,
        momentum: MomentumForm,
        running_variance: VarianceEstimate,
        center: bool,
        scale: bool,
        /// Keras `trainable=False` makes BatchNormalization run in inference mode even in training.
        trainable: bool,
        /// PyTorch `track_running_stats`.
        track_running_stats: bool,
        /// ONNX `training_mode` as exported, when the file records it.
        training_mode: Option<bool>,
    },
    /// Layer normalization over `axes` (full-tensor axes, negative from the end).
    LayerNorm {
        axes: Vec<i64>,
        epsilon: f64,
        center: bool,
        scale: bool,
        rms_scaling: bool,
    },
    /// Group normalization: channels on `axis` split into `groups`.
    GroupNorm {
        groups: usize,
        axis: i64,
        epsilon: f64,
        center: bool,
        scale: bool,
    },
    /// A stand-alone activation (Keras Activation/ReLU/LeakyReLU/ELU/Softmax layers, torch activation ops).
    Activation { function: Activation },
    /// Dropout with rate `rate` (probability of dropping). Identity in inference mode.
    Dropout {
        rate: f64,
        /// `None` = element-wise; `Some(layout)` = whole channels (SpatialDropout / Dropout2d).
        spatial: Option<DataLayout>,
    },
    /// Flattens every axis from `start_axis` on into one.
    Flatten {
        start_axis: i64,
        /// Order of the flattened elements in terms of the logical (channel, spatial) axes:
        /// `channels_last` = H, W, C order (every Keras Flatten, whatever its data_format),
        /// `channels_first` = C, H, W order (torch.flatten of an NCHW tensor).
        order: DataLayout,
    },
    /// Reshape of every non-batch axis to `target_shape` (−1 = inferred).
    Reshape { target_shape: Vec<i64> },
    /// Row-major reshape of the whole tensor, the batch axis included, to `shape` (−1 =
    /// inferred, at most once; 0 is a length of 0): ONNX `Reshape`/`Flatten` that merge, move
    /// or split the batch axis. Unlike [`Op::Reshape`] its result depends on the batch size
    /// only through the total element count.
    ReshapeAll { shape: Vec<i64> },
    /// Axis permutation of the full tensor including batch (`perm[i]` = source axis).
    Permute { perm: Vec<usize> },
    /// Windowed pooling.
    Pool {
        pool: PoolKind,
        rank: usize,
        pool_size: Vec<usize>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        padding: Padding,
        layout: DataLayout,
        /// Average pooling: whether padded positions count in the divisor
        /// (torch `count_include_pad=True` default; Keras/TF 'same' excludes them).
        count_include_pad: bool,
        ceil_mode: bool,
    },
    /// Pooling over every spatial axis.
    GlobalPool {
        pool: PoolKind,
        rank: usize,
        layout: DataLayout,
        keepdims: bool,
    },
    /// Constant padding of the spatial axes.
    Pad {
        rank: usize,
        begin: Vec<usize>,
        end: Vec<usize>,
        layout: DataLayout,
        mode: PadMode,
    },
    /// Upsampling of the spatial axes by integer factors.
    UpSampling {
        rank: usize,
        size: Vec<usize>,
        interpolation: Interpolation,
        layout: DataLayout,
    },
    /// General resampling of some axes with the ONNX `Resize` semantics
    /// (`onnx/reference/ops/op_resize.py`): each listed axis is resampled on its own
    /// (separable), by a short weighted sum of clamped input indices per output index, or the
    /// `tf_crop_and_resize` extrapolation value outside the region of interest. Axes not
    /// listed pass through. [`Op::UpSampling`] stays the op for the integer-factor
    /// conventions Keras and torch share; this one holds every other.
    Resize {
        axes: Vec<ResizeAxis>,
        mode: ResizeMode,
        coordinate: ResizeCoordinate,
        /// Weights of taps outside the input set to 0 and the rest renormalised.
        exclude_outside: bool,
        /// Linear and cubic: the kernel widened by `1/scale` when downsampling.
        antialias: bool,
    },
    /// Table lookup of integer ids.
    Embedding {
        input_dim: usize,
        output_dim: usize,
        mask_zero: bool,
        padding_idx: Option<i64>,
    },
    /// A recurrent layer (optionally bidirectional), one node per layer.
    Rnn {
        cell: RnnCell,
        units: usize,
        activation: Activation,
        /// Gate activation (LSTM/GRU); `None` for SimpleRNN.
        recurrent_activation: Option<Activation>,
        gate_order: GateOrder,
        bias: RnnBias,
        /// GRU only: where the reset gate applies.
        gru_reset: Option<GruReset>,
        direction: RnnDirection,
        return_sequences: bool,
        return_state: bool,
        /// Keras `go_backwards`: process the sequence reversed (and return it reversed).
        go_backwards: bool,
        /// Sequence axis layout of the input: `true` = (batch, time, features).
        batch_first: bool,
        /// Keras LSTM `unit_forget_bias` (affects initialisation only).
        unit_forget_bias: bool,
        dropout: f64,
        recurrent_dropout: f64,
    },
    /// Element-wise combination of several inputs, or concatenation.
    Merge { op: MergeOp },
    /// Element-wise binary operation of the input with a stored constant parameter `constant`.
    ConstantBinary {
        op: BinaryOp,
        /// `true` when the constant is the left operand (`c − x`, `c / x`).
        constant_first: bool,
    },
    /// Element-wise unary math that is not an activation.
    Unary { op: UnaryOp },
    /// `y = x · scale + offset` (Keras Rescaling).
    Rescaling { scale: f64, offset: f64 },
    /// `y = (x − mean) / max(sqrt(variance), epsilon)` (Keras Normalization; `invert` reverses it).
    Normalization {
        axes: Vec<i64>,
        invert: bool,
        epsilon: f64,
    },
    /// Passes its input through (ONNX Identity, a lifted no-op).
    Identity,
    /// Takes index `index` along `axis` and removes that axis (torch `x[:, -1]`, ONNX Gather
    /// with a scalar index). Negative indices count from the end.
    Select { axis: i64, index: i64 },
    /// `x[start:end:step]` along `axis` (ONNX Slice); `end` is clamped to the axis length.
    Slice {
        axis: i64,
        start: i64,
        end: i64,
        step: i64,
    },
    /// Removes size-1 axes.
    Squeeze { axes: Vec<i64> },
    /// Inserts size-1 axes at `axes` (positions in the result).
    Unsqueeze { axes: Vec<i64> },
    /// Reduction over `axes` (ONNX ReduceMean and friends, torch `x.mean(dim)`).
    Reduce {
        reduce: ReduceKind,
        axes: Vec<i64>,
        keepdims: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "value")]
pub enum PadMode {
    Constant(f64),
    Reflect,
    Edge,
    /// Circular: the axis repeats (ONNX `wrap`, torch `CircularPad`).
    Wrap,
}

/// How upsampling by an integer factor `s` maps output index `j` of an axis of length `n` to
/// the input (the coordinate convention is part of the value: Keras and torch disagree on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Nearest neighbour, input `⌊j / s⌋`. For integer factors every convention in use gives
    /// this: Keras `UpSampling` (`ops.repeat`), TF2 half-pixel nearest, torch `'nearest'` and
    /// `'nearest-exact'`, ONNX `asymmetric`/`floor` and `half_pixel`/`round_prefer_floor`.
    Nearest,
    /// Bilinear with half-pixel centres, `src = (j + ½)/s − ½` clamped at 0: Keras
    /// `UpSampling(interpolation='bilinear')` and TF2 `tf.image.resize`, torch
    /// `align_corners=False`, ONNX `half_pixel`/`pytorch_half_pixel`.
    Bilinear,
    /// Bilinear with aligned corners, `src = j·(n − 1)/(n·s − 1)` (0 when `n·s = 1`): torch
    /// `align_corners=True`, TF1 `align_corners=True`, ONNX `align_corners`.
    BilinearAlignCorners,
}

impl Interpolation {
    /// Whether the value interpolates linearly (either coordinate convention).
    pub fn is_bilinear(self) -> bool {
        matches!(
            self,
            Interpolation::Bilinear | Interpolation::BilinearAlignCorners
        )
    }

    /// The coordinate convention in words.
    pub fn describe(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest neighbour, input ⌊j/s⌋",
            Interpolation::Bilinear => "half-pixel centres",
            Interpolation::BilinearAlignCorners => "corner pixels aligned",
        }
    }
}

/// One resized axis of [`Op::Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResizeAxis {
    /// Axis of the input (0 is the batch axis).
    pub axis: usize,
    /// Output length; `None`: `⌊n · scale⌋` for an input of length `n` (ONNX `scales`).
    pub size: Option<usize>,
    /// Scale of the coordinate transformation; `None`: `size / n` (ONNX `sizes`).
    pub scale: Option<f64>,
    /// `tf_crop_and_resize` region (start, end) as fractions of `n − 1`; `(0, 1)` otherwise.
    pub roi: (f64, f64),
}

/// How the taps of [`Op::Resize`] are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "value")]
pub enum ResizeMode {
    /// One input index, chosen from the source coordinate by the rounding rule.
    Nearest(NearestRounding),
    /// Two taps, `1 − λ` and `λ`.
    Linear,
    /// Four taps of the cubic convolution kernel with coefficient `a` (ONNX `cubic_coeff_a`:
    /// −0.75 torch, −0.5 TensorFlow).
    Cubic(f64),
    /// [`ResizeMode::Cubic`] with the ratio rounded (half to even) to a multiple of
    /// `1/entries`: TensorFlow's `resize_bicubic` reads its coefficients from a table of
    /// `entries + 1` rows (`resize_bicubic_op.cc`, `kTableSize = 1024`).
    CubicTable { a: f64, entries: u32 },
}

/// ONNX `nearest_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NearestRounding {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// ONNX `coordinate_transformation_mode`: the source coordinate of output index `j`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "value")]
pub enum ResizeCoordinate {
    /// `(j + ½)/s − ½`.
    HalfPixel,
    /// `(j + ½)/s − ½` shifted so the centres of the input and the output coincide.
    HalfPixelSymmetric,
    /// `(j + ½)/s − ½`, and −½ when the output has one element.
    PytorchHalfPixel,
    /// `j·(n − 1)/(n·s − 1)`, and 0 when `n·s = 1`.
    AlignCorners,
    /// `j / s`.
    Asymmetric,
    /// `(j + ½)/s` (ONNX opsets 11 and 12 only).
    TfHalfPixelForNn,
    /// The region of interest of each axis sampled with aligned corners; outputs whose source
    /// is outside the input take the value given.
    TfCropAndResize(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnCell {
    SimpleRnn,
    Lstm,
    Gru,
}

impl RnnCell {
    /// Number of stacked gate blocks.
    pub fn gates(self) -> usize {
        match self {
            RnnCell::SimpleRnn => 1,
            RnnCell::Lstm => 4,
            RnnCell::Gru => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "direction", content = "merge")]
pub enum RnnDirection {
    Forward,
    Reverse,
    Bidirectional(BidiMerge),
}

/// How Keras Bidirectional combines the two directions (torch always concatenates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BidiMerge {
    Concat,
    Sum,
    Mul,
    Ave,
    /// No merge: both outputs returned separately.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "axis")]
pub enum MergeOp {
    Add,
    Subtract,
    Multiply,
    /// Element-wise quotient of the first input by the second (ONNX `Div` of two computed
    /// values, torch `a / b`).
    Divide,
    Average,
    Maximum,
    Minimum,
    /// Concatenation along `axis` (full-tensor axis, negative from the end).
    Concatenate(i64),
    /// `a ^ b` of two computed values, broadcast (ONNX `Pow`, torch `a ** b`).
    Power,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// `max(x, c)` (ONNX `Clip` lower bound, `torch.clamp(min=)`).
    Maximum,
    /// `min(x, c)` (ONNX `Clip` upper bound, `torch.clamp(max=)`).
    Minimum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryOp {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Log,
    Reciprocal,
    Erf,
    /// Rounds to the nearest f32 (ONNX `Cast` to FLOAT); the gradient passes through.
    RoundF32,
    /// Rounds to the nearest IEEE half (ONNX `Cast` to FLOAT16); the gradient passes through.
    RoundF16,
    /// Rounds to the nearest bfloat16 (ONNX `Cast` to BFLOAT16); the gradient passes through.
    RoundBf16,
    /// 1 at every element (the all-true mask output of ONNX `Dropout` where it drops nothing);
    /// gradient 0.
    Ones,
    /// The identity on the result of integer arithmetic that fails at run time unless every
    /// value is an integer held exactly (|v| ≤ 2^24 in f32, 2^53 in f64) inside the range of
    /// uint8: ONNX wraps around, truncates divisions; parallax refuses instead.
    CheckU8,
    /// [`UnaryOp::CheckU8`] for int32.
    CheckI32,
    /// [`UnaryOp::CheckU8`] for int64.
    CheckI64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
}

impl Op {
    /// The snake_case kind name used in tables and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Dense { .. } => "dense",
            Op::Conv { .. } => "conv",
            Op::DepthwiseConv { .. } => "depthwise_conv",
            Op::SeparableConv { .. } => "separable_conv",
            Op::ConvTranspose { .. } => "conv_transpose",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::GroupNorm { .. } => "group_norm",
            Op::Activation { .. } => "activation",
            Op::Dropout { .. } => "dropout",
            Op::Flatten { .. } => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::ReshapeAll { .. } => "reshape_all",
            Op::Permute { .. } => "permute",
            Op::Pool { .. } => "pool",
            Op::GlobalPool { .. } => "global_pool",
            Op::Pad { .. } => "pad",
            Op::UpSampling { .. } => "up_sampling",
            Op::Resize { .. } => "resize",
            Op::Embedding { .. } => "embedding",
            Op::Rnn { .. } => "rnn",
            Op::Merge { .. } => "merge",
            Op::ConstantBinary { .. } => "constant_binary",
            Op::Unary { .. } => "unary",
            Op::Rescaling { .. } => "rescaling",
            Op::Normalization { .. } => "normalization",
            Op::Identity => "identity",
            Op::Reduce { .. } => "reduce",
            Op::Select { .. } => "select",
            Op::Slice { .. } => "slice",
            Op::Squeeze { .. } => "squeeze",
            Op::Unsqueeze { .. } => "unsqueeze",
        }
    }

    /// The activation a layer applies to its output: the fused one of Dense and the
    /// convolution family (Keras `activation=`, linear included), or the function of a
    /// stand-alone [`Op::Activation`]. `None` for every other op (a recurrent layer's
    /// activations act inside the cell, not on its output).
    pub fn activation(&self) -> Option<&Activation> {
        match self {
            Op::Dense { activation, .. }
            | Op::Conv { activation, .. }
            | Op::DepthwiseConv { activation, .. }
            | Op::SeparableConv { activation, .. }
            | Op::ConvTranspose { activation, .. } => Some(activation),
            Op::Activation { function } => Some(function),
            Op::Input { .. }
            | Op::BatchNorm { .. }
            | Op::LayerNorm { .. }
            | Op::GroupNorm { .. }
            | Op::Dropout { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::ReshapeAll { .. }
            | Op::Permute { .. }
            | Op::Pool { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::UpSampling { .. }
            | Op::Resize { .. }
            | Op::Embedding { .. }
            | Op::Rnn { .. }
            | Op::Merge { .. }
            | Op::ConstantBinary { .. }
            | Op::Unary { .. }
            | Op::Rescaling { .. }
            | Op::Normalization { .. }
            | Op::Identity
            | Op::Select { .. }
            | Op::Slice { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Reduce { .. } => None,
        }
    }

    /// [`Op::activation`], mutable.
    pub fn activation_mut(&mut self) -> Option<&mut Activation> {
        match self {
            Op::Dense { activation, .. }
            | Op::Conv { activation, .. }
            | Op::DepthwiseConv { activation, .. }
            | Op::SeparableConv { activation, .. }
            | Op::ConvTranspose { activation, .. } => Some(activation),
            Op::Activation { function } => Some(function),
            Op::Input { .. }
            | Op::BatchNorm { .. }
            | Op::LayerNorm { .. }
            | Op::GroupNorm { .. }
            | Op::Dropout { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::ReshapeAll { .. }
            | Op::Permute { .. }
            | Op::Pool { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::UpSampling { .. }
            | Op::Resize { .. }
            | Op::Embedding { .. }
            | Op::Rnn { .. }
            | Op::Merge { .. }
            | Op::ConstantBinary { .. }
            | Op::Unary { .. }
            | Op::Rescaling { .. }
            | Op::Normalization { .. }
            | Op::Identity
            | Op::Select { .. }
            | Op::Slice { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Reduce { .. } => None,
        }
    }

    /// The activation fused into a layer (Keras `activation=`) when it is not linear; `None` for
    /// stand-alone activations and every op without a fused one.
    pub fn fused_activation(&self) -> Option<&Activation> {
        match self {
            Op::Activation { .. } => None,
            _ => self
                .activation()
                .filter(|a| !matches!(a, Activation::Linear)),
        }
    }

    /// The attributes as a JSON object (what `inspect --json` prints under `attrs`).
    pub fn attrs_json(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => m
                .remove("attrs")
                .unwrap_or(serde_json::Value::Object(Default::default())),
            _ => serde_json::Value::Object(Default::default()),
        }
    }
}
