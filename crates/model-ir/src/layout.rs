//! Parameter layouts and the exact transforms between Keras and PyTorch storage.
//!
//! Every parameter records the meaning of its axes ([`ParamLayout`]); [`ParamLayout::counterpart`]
//! gives the layout the other framework uses for the same quantity and the [`Transform`] that
//! converts one into the other (`dense-layout`, `conv-layout`, `lstm-layout`,
//! `gru-layout-reset-after` in the catalogue).

use serde::Serialize;

use crate::conventions::{DataLayout, Framework, GateOrder};
use crate::tensor::Tensor;

/// The meaning of each axis of a stored parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "layout")]
pub enum ParamLayout {
    /// One value per channel or unit (biases, BN statistics), identical in both frameworks.
    Vector,
    /// Keras Dense kernel `(in, out)`.
    DenseInOut,
    /// PyTorch Linear weight `(out, in)` (ONNX Gemm with transB=1).
    DenseOutIn,
    /// Keras convolution kernel `(*k, in/groups, out)` (HWIO for 2-D).
    ConvSpatialInOut { rank: usize },
    /// PyTorch / ONNX convolution weight `(out, in/groups, *k)` (OIHW for 2-D).
    ConvOutInSpatial { rank: usize },
    /// Keras depthwise kernel `(*k, in, multiplier)`.
    DepthwiseSpatialInMult { rank: usize },
    /// PyTorch depthwise weight `(in·multiplier, 1, *k)` (grouped conv with groups=in).
    DepthwiseOutOneSpatial { rank: usize },
    /// Keras transposed-convolution kernel `(*k, out, in)`.
    ConvTransposeSpatialOutIn { rank: usize },
    /// PyTorch / ONNX transposed-convolution weight `(in, out/groups, *k)`.
    ConvTransposeInOutSpatial { rank: usize },
    /// Embedding table `(vocab, dim)`, identical in both frameworks.
    Embedding,
    /// Keras RNN kernel `(in, G·H)` or recurrent kernel `(H, G·H)`, gate blocks along axis 1.
    RnnInGates { gate_order: GateOrder },
    /// PyTorch RNN weight `(G·H, in)`, gate blocks along axis 0.
    RnnGatesIn { gate_order: GateOrder },
    /// An RNN bias vector `(G·H)` with gate blocks.
    RnnGateVector { gate_order: GateOrder },
    /// Keras GRU `reset_after=True` bias `(2, 3H)`: row 0 input bias, row 1 recurrent bias.
    GruBiasRows { gate_order: GateOrder },
    /// ONNX LSTM/GRU `W`/`R` `(directions, G·H, in)`.
    OnnxRnnWeight { gate_order: GateOrder },
    /// ONNX LSTM/GRU `B` `(directions, 2·G·H)`: `[Wb; Rb]`.
    OnnxRnnBias { gate_order: GateOrder },
    /// Stored as-is, with no counterpart convention (constants, scalars).
    AsIs,
}

/// One step of a layout conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// Permute axes (`perm[i]` = source axis of result axis i).
    Permute { perm: Vec<usize> },
    /// Split `axis` into `blocks` equal blocks and reorder them (`order[i]` = source block of result block i).
    ReorderBlocks {
        axis: usize,
        blocks: usize,
        order: Vec<usize>,
    },
}

/// A sequence of steps that converts a tensor from one framework's layout to the other's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Transform {
    pub steps: Vec<Step>,
}

/// Why a transform could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("a tensor of shape {shape:?} cannot take step {step}")]
    BadShape { shape: Vec<usize>, step: String },
}

impl Transform {
    pub fn identity() -> Transform {
        Transform::default()
    }

    pub fn is_identity(&self) -> bool {
        self.steps.iter().all(|s| match s {
            Step::Permute { perm } => perm.iter().enumerate().all(|(i, p)| i == *p),
            Step::ReorderBlocks { order, .. } => order.iter().enumerate().all(|(i, p)| i == *p),
        })
    }

    /// Applies every step in order.
    pub fn apply(&self, t: &Tensor) -> Result<Tensor, TransformError> {
        let mut cur = t.clone();
        for step in &self.steps {
            cur = apply_step(&cur, step)?;
        }
        Ok(cur)
    }

    /// A human-readable summary (`permute [1,0]; reorder gates [1,0,2] on axis 0`).
    pub fn describe(&self) -> String {
        if self.is_identity() {
            return "identity".into();
        }
        self.steps
            .iter()
            .map(|s| match s {
                Step::Permute { perm } => format!("permute {perm:?}"),
                Step::ReorderBlocks { axis, order, .. } => {
                    format!("reorder gate blocks {order:?} on axis {axis}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn apply_step(t: &Tensor, step: &Step) -> Result<Tensor, TransformError> {
    let bad = || TransformError::BadShape {
        shape: t.shape().to_vec(),
        step: format!("{step:?}"),
    };
    match step {
        Step::Permute { perm } => {
            let n = t.shape().len();
            let mut seen = vec![false; n];
            if perm.len() != n {
                return Err(bad());
            }
            for &p in perm {
                if p >= n || seen[p] {
                    return Err(bad());
                }
                seen[p] = true;
            }
            Ok(t.permuted(perm))
        }
        Step::ReorderBlocks {
            axis,
            blocks,
            order,
        } => {
            let len = *t.shape().get(*axis).ok_or_else(bad)?;
            if *blocks == 0 || len % blocks != 0 || order.len() != *blocks {
                return Err(bad());
            }
            if order.iter().any(|&o| o >= *blocks) {
                return Err(bad());
            }
            let size = len / blocks;
            let idx: Vec<usize> = order
                .iter()
                .flat_map(|&b| (b * size)..((b + 1) * size))
                .collect();
            Ok(t.select(*axis, &idx))
        }
    }
}

impl ParamLayout {
    /// The framework whose native layout this is (`None` when both share it).
    pub fn framework(&self) -> Option<Framework> {
        match self {
            ParamLayout::DenseInOut
            | ParamLayout::ConvSpatialInOut { .. }
            | ParamLayout::DepthwiseSpatialInMult { .. }
            | ParamLayout::ConvTransposeSpatialOutIn { .. }
            | ParamLayout::RnnInGates { .. }
            | ParamLayout::GruBiasRows { .. } => Some(Framework::Keras),
            ParamLayout::DenseOutIn
            | ParamLayout::ConvOutInSpatial { .. }
            | ParamLayout::DepthwiseOutOneSpatial { .. }
            | ParamLayout::ConvTransposeInOutSpatial { .. }
            | ParamLayout::RnnGatesIn { .. }
            | ParamLayout::OnnxRnnWeight { .. }
            | ParamLayout::OnnxRnnBias { .. } => Some(Framework::Torch),
            ParamLayout::RnnGateVector { gate_order } => match gate_order {
                GateOrder::Rzn | GateOrder::Iofc => Some(Framework::Torch),
                _ => None,
            },
            ParamLayout::Vector | ParamLayout::Embedding | ParamLayout::AsIs => None,
        }
    }

    /// Short name for tables (`(in,out)`, `OIHW`, `(G·H,in) r,z,h`).
    pub fn describe(&self) -> String {
        fn sp(rank: usize) -> &'static str {
            match rank {
                1 => "W",
                2 => "HW",
                3 => "DHW",
                _ => "*k",
            }
        }
        match self {
            ParamLayout::Vector => "vector".into(),
            ParamLayout::DenseInOut => "(in,out)".into(),
            ParamLayout::DenseOutIn => "(out,in)".into(),
            ParamLayout::ConvSpatialInOut { rank } => format!("{}IO", sp(*rank)),
            ParamLayout::ConvOutInSpatial { rank } => format!("OI{}", sp(*rank)),
            ParamLayout::DepthwiseSpatialInMult { rank } => format!("{}IM", sp(*rank)),
            ParamLayout::DepthwiseOutOneSpatial { rank } => format!("(I·M)1{}", sp(*rank)),
            ParamLayout::ConvTransposeSpatialOutIn { rank } => format!("{}OI", sp(*rank)),
            ParamLayout::ConvTransposeInOutSpatial { rank } => format!("IO{}", sp(*rank)),
            ParamLayout::Embedding => "(vocab,dim)".into(),
            ParamLayout::RnnInGates { gate_order } => {
                format!("(in,G·H) {}", gate_order.gates().join(","))
            }
            ParamLayout::RnnGatesIn { gate_order } => {
                format!("(G·H,in) {}", gate_order.gates().join(","))
            }
            ParamLayout::RnnGateVector { gate_order } => {
                format!("(G·H) {}", gate_order.gates().join(","))
            }
            ParamLayout::GruBiasRows { gate_order } => {
                format!("(2,3H) {}", gate_order.gates().join(","))
            }
            ParamLayout::OnnxRnnWeight { gate_order } => {
                format!("(dir,G·H,in) {}", gate_order.gates().join(","))
            }
            ParamLayout::OnnxRnnBias { gate_order } => {
                format!("(dir,2·G·H) {}", gate_order.gates().join(","))
            }
            ParamLayout::AsIs => "as-is".into(),
        }
    }

    /// The layout the other framework uses for the same quantity, and how to get there.
    ///
    /// For Keras layouts the target is PyTorch's; for PyTorch/ONNX layouts it is Keras's.
    /// Gate reorders use the torch gate order (`r,z,n` for GRU; LSTM's `i,f,g,o` equals Keras's).
    /// `GruBiasRows` maps to a `(2, 3H)` tensor in torch gate order whose rows are
    /// `bias_ih` and `bias_hh`. ONNX RNN layouts map to Keras's per-direction layout after
    /// taking direction 0; callers with two directions slice first.
    pub fn counterpart(&self) -> (ParamLayout, Transform) {
        use ParamLayout as L;
        let perm = |p: Vec<usize>| Transform {
            steps: vec![Step::Permute { perm: p }],
        };
        match self {
            L::Vector | L::Embedding | L::AsIs => (self.clone(), Transform::identity()),
            L::DenseInOut => (L::DenseOutIn, perm(vec![1, 0])),
            L::DenseOutIn => (L::DenseInOut, perm(vec![1, 0])),
            L::ConvSpatialInOut { rank } => (
                L::ConvOutInSpatial { rank: *rank },
                perm(conv_kernel_to_torch_perm(*rank)),
            ),
            L::ConvOutInSpatial { rank } => (
                L::ConvSpatialInOut { rank: *rank },
                perm(conv_kernel_to_keras_perm(*rank)),
            ),
            L::DepthwiseSpatialInMult { rank } => {
                // (*k, i, m) -> (i, m, *k); the caller reshapes to (i·m, 1, *k).
                let r = *rank;
                let mut p = vec![r, r + 1];
                p.extend(0..r);
                (L::DepthwiseOutOneSpatial { rank: r }, perm(p))
            }
            L::DepthwiseOutOneSpatial { rank } => {
                // (i·m, 1, *k) -> (*k, 1, i·m); the caller reshapes to (*k, i, m).
                let r = *rank;
                let mut p: Vec<usize> = (2..r + 2).collect();
                p.extend([1, 0]);
                (L::DepthwiseSpatialInMult { rank: r }, perm(p))
            }
            L::ConvTransposeSpatialOutIn { rank } => {
                // (*k, o, i) -> (i, o, *k)
                let r = *rank;
                let mut p = vec![r + 1, r];
                p.extend(0..r);
                (L::ConvTransposeInOutSpatial { rank: r }, perm(p))
            }
            L::ConvTransposeInOutSpatial { rank } => {
                let r = *rank;
                let mut p: Vec<usize> = (2..r + 2).collect();
                p.extend([1, 0]);
                (L::ConvTransposeSpatialOutIn { rank: r }, perm(p))
            }
            L::RnnInGates { gate_order } => {
                let to = torch_order(*gate_order);
                let mut t = perm(vec![1, 0]);
                push_reorder(&mut t, 0, *gate_order, to);
                (L::RnnGatesIn { gate_order: to }, t)
            }
            L::RnnGatesIn { gate_order } => {
                let to = keras_order(*gate_order);
                let mut t = perm(vec![1, 0]);
                push_reorder(&mut t, 1, *gate_order, to);
                (L::RnnInGates { gate_order: to }, t)
            }
            L::RnnGateVector { gate_order } => {
                let to = match gate_order.framework_hint() {
                    Some(Framework::Torch) => keras_order(*gate_order),
                    _ => torch_order(*gate_order),
                };
                let mut t = Transform::identity();
                push_reorder(&mut t, 0, *gate_order, to);
                (L::RnnGateVector { gate_order: to }, t)
            }
            L::GruBiasRows { gate_order } => {
                let to = torch_order(*gate_order);
                let mut t = Transform::identity();
                push_reorder(&mut t, 1, *gate_order, to);
                (L::GruBiasRows { gate_order: to }, t)
            }
            L::OnnxRnnWeight { gate_order } => {
                // (dir, G·H, in) -> (in, G·H, dir); caller takes dir 0.
                let to = keras_order(*gate_order);
                let mut t = perm(vec![2, 1, 0]);
                push_reorder(&mut t, 1, *gate_order, to);
                (L::RnnInGates { gate_order: to }, t)
            }
            L::OnnxRnnBias { gate_order } => {
                let to = keras_order(*gate_order);
                let mut t = Transform::identity();
                let blocks = 2 * gate_order.gates().len();
                if let Some(p) = gate_order.permutation_to(to) {
                    let g = p.len();
                    let mut order = p.clone();
                    order.extend(p.iter().map(|x| x + g));
                    t.steps.push(Step::ReorderBlocks {
                        axis: 1,
                        blocks,
                        order,
                    });
                }
                (L::OnnxRnnBias { gate_order: to }, t)
            }
        }
    }
}

impl GateOrder {
    fn framework_hint(self) -> Option<Framework> {
        match self {
            GateOrder::Rzn | GateOrder::Iofc => Some(Framework::Torch),
            GateOrder::Zrh | GateOrder::Ifco => Some(Framework::Keras),
            GateOrder::Single => None,
        }
    }
}

fn torch_order(g: GateOrder) -> GateOrder {
    match g {
        GateOrder::Zrh | GateOrder::Rzn => GateOrder::Rzn,
        GateOrder::Ifco | GateOrder::Iofc => GateOrder::Ifco,
        GateOrder::Single => GateOrder::Single,
    }
}

fn keras_order(g: GateOrder) -> GateOrder {
    match g {
        GateOrder::Zrh | GateOrder::Rzn => GateOrder::Zrh,
        GateOrder::Ifco | GateOrder::Iofc => GateOrder::Ifco,
        GateOrder::Single => GateOrder::Single,
    }
}

fn push_reorder(t: &mut Transform, axis: usize, from: GateOrder, to: GateOrder) {
    if let Some(order) = from.permutation_to(to) {
        let blocks = order.len();
        if order.iter().enumerate().any(|(i, o)| i != *o) {
            t.steps.push(Step::ReorderBlocks {
                axis,
                blocks,
                order,
            });
        }
    }
}

/// The permutation (`perm[i]` = source axis) of a convolution kernel of spatial rank `rank`
/// from Keras's `(*k, in, out)` to torch's `(out, in, *k)`.
pub fn conv_kernel_to_torch_perm(rank: usize) -> Vec<usize> {
    let mut p = vec![rank + 1, rank];
    p.extend(0..rank);
    p
}

/// The permutation (`perm[i]` = source axis) of a convolution kernel of spatial rank `rank`
/// from torch's `(out, in, *k)` to Keras's `(*k, in, out)`.
pub fn conv_kernel_to_keras_perm(rank: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (2..rank + 2).collect();
    p.extend([1, 0]);
    p
}

/// Row permutation for the Dense layer after a Flatten when the flatten order changes.
///
/// For a feature map with `channels` channels and spatial shape `spatial`, returns `perm` such
/// that row `i` of the kernel in `to` order is row `perm[i]` of the kernel in `from` order
/// (`flatten-order` in the catalogue).
pub fn flatten_permutation(
    spatial: &[usize],
    channels: usize,
    from: DataLayout,
    to: DataLayout,
) -> Vec<usize> {
    let s: usize = spatial.iter().product();
    let n = s * channels;
    let index = |layout: DataLayout, c: usize, pos: usize| match layout {
        DataLayout::ChannelsLast => pos * channels + c,
        DataLayout::ChannelsFirst => c * s + pos,
    };
    let mut perm = vec![0; n];
    for c in 0..channels {
        for pos in 0..s {
            perm[index(to, c, pos)] = index(from, c, pos);
        }
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_kernel_permutations_are_inverse() {
        for rank in 1..=3 {
            let to_torch = conv_kernel_to_torch_perm(rank);
            let to_keras = conv_kernel_to_keras_perm(rank);
            let round: Vec<usize> = to_keras.iter().map(|&i| to_torch[i]).collect();
            assert_eq!(round, (0..rank + 2).collect::<Vec<_>>());
        }
        assert_eq!(conv_kernel_to_torch_perm(2), vec![3, 2, 0, 1]);
    }

    fn seq(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn conv_round_trip() {
        let k = seq(&[3, 3, 2, 4]);
        let (to, t) = ParamLayout::ConvSpatialInOut { rank: 2 }.counterpart();
        assert_eq!(to, ParamLayout::ConvOutInSpatial { rank: 2 });
        let o = t.apply(&k).unwrap();
        assert_eq!(o.shape(), &[4, 2, 3, 3]);
        // element [o=1, i=0, h=2, w=1] == keras [2, 1, 0, 1]
        assert_eq!(
            o.to_f32()[[1, 0, 2, 1]].to_bits(),
            k.to_f32()[[2, 1, 0, 1]].to_bits()
        );
        let (back, t2) = to.counterpart();
        assert_eq!(back, ParamLayout::ConvSpatialInOut { rank: 2 });
        assert_eq!(t2.apply(&o).unwrap(), k);
    }

    #[test]
    fn gru_kernel_to_torch_reorders_gates() {
        // Keras (in=1, 3H=6) z,r,h with H=2 -> torch (6, 1) r,z,h
        let k = seq(&[1, 6]);
        let (to, t) = ParamLayout::RnnInGates {
            gate_order: GateOrder::Zrh,
        }
        .counterpart();
        assert_eq!(
            to,
            ParamLayout::RnnGatesIn {
                gate_order: GateOrder::Rzn
            }
        );
        let o = t.apply(&k).unwrap();
        assert_eq!(
            o.to_f32().iter().copied().collect::<Vec<_>>(),
            vec![2., 3., 0., 1., 4., 5.]
        );
        let (_, back) = to.counterpart();
        assert_eq!(back.apply(&o).unwrap(), k);
    }

    #[test]
    fn flatten_permutation_maps_hwc_to_chw() {
        // 2 channels, 2 spatial positions: HWC order [p0c0, p0c1, p1c0, p1c1]
        let p = flatten_permutation(&[2], 2, DataLayout::ChannelsLast, DataLayout::ChannelsFirst);
        // CHW order [c0p0, c0p1, c1p0, c1p1] = HWC rows [0, 2, 1, 3]
        assert_eq!(p, vec![0, 2, 1, 3]);
    }

    #[test]
    fn bad_shape_is_an_error() {
        let t = seq(&[5]);
        let tr = Transform {
            steps: vec![Step::ReorderBlocks {
                axis: 0,
                blocks: 3,
                order: vec![1, 0, 2],
            }],
        };
        assert!(tr.apply(&t).is_err());
    }
}
