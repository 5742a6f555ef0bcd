//! Step 3a: conventions decidable from the two layer configurations.
//!
//! BatchNorm momentum form (`bn-momentum-convention`, compared as the fraction of the running
//! value kept per step), epsilon (`bn-epsilon`), running-variance estimate
//! (`bn-running-var-bias`), frozen BatchNorm (`bn-frozen-means-inference`); LayerNorm and
//! GroupNorm epsilon and axes (`layernorm-eps-axis`); convolution padding for the actual
//! input size (`same-padding-asymmetric`), pooling padding and divisor (`pooling-padding`),
//! transposed-convolution crop (`conv-transpose-same-crop`), upsampling interpolation
//! (`resize-semantics`); activations after each aligned layer (`gelu-approximate`,
//! `leaky-relu-slope`, `hard-sigmoid-definition`, `softmax-implicit-dim`); RNN reset
//! placement, dropout and masking (`gru-layout-reset-after`, `rnn-dropout-and-masking`).

use catalogue::Id;
use model_ir::{Activation, DataLayout, Model, Node, Op, Padding, PoolKind, VarianceEstimate};
use report::{Severity, Tolerance, sig};

use crate::align::{Aligned, Pair};
use crate::findings::{Findings, ev, pair_label};
use crate::graph::{
    Shapes, activation_chain, effective_transpose_crop, norm_axis, producer, show_shape, source_of,
    spatial_layout,
};

/// Float layer attributes (epsilons, momenta, slopes) compared for equality: configs store
/// float32 round-trips.
const LAYER_ATTR_TOL: Tolerance = Tolerance::Custom {
    atol: 1e-9,
    rtol: 1e-5,
};

pub(crate) struct Ctx<'a> {
    pub(crate) keras: &'a Model,
    pub(crate) torch: &'a Model,
    pub(crate) kshapes: &'a Shapes,
    pub(crate) tshapes: &'a Shapes,
}

fn py(x: f64) -> String {
    sig(x)
}

fn bn_module(rank: Option<usize>) -> &'static str {
    match rank {
        Some(5) => "BatchNorm3d",
        Some(4) => "BatchNorm2d",
        _ => "BatchNorm1d",
    }
}

fn input_shape<'s>(shapes: &'s Shapes, n: &Node) -> Option<&'s Vec<Option<usize>>> {
    shapes.get(n.inputs.first()?)
}

fn batch_norm(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let (
        Op::BatchNorm {
            epsilon: ke,
            momentum: km,
            running_variance: kv,
            trainable: ktrain,
            ..
        },
        Op::BatchNorm {
            epsilon: te,
            momentum: tm,
            running_variance: tv,
            training_mode: tmode,
            ..
        },
    ) = (&p.keras.op, &p.torch.op)
    else {
        return;
    };
    let label = pair_label(&p.keras.name, &p.torch.name);
    let channels = p.keras.params.first().map_or(0, |q| q.tensor.len());
    let rank = input_shape(c.kshapes, p.keras).map(Vec::len);
    let module = bn_module(rank);
    let keep_k = km.keep_fraction();
    let keep_t = tm.keep_fraction();
    let momentum_differs = match (keep_k, keep_t) {
        (Some(a), Some(b)) => !LAYER_ATTR_TOL.close(b, a),
        (None, None) => false,
        _ => true,
    };
    let eps_differs = !LAYER_ATTR_TOL.close(*te, *ke);
    let torch_fix = format!(
        "nn.{module}({channels}, momentum={}, eps={})",
        keep_k.map_or_else(|| "None".to_string(), |k| py(1.0 - k)),
        py(*ke)
    );
    if momentum_differs {
        let show = |k: Option<f64>| {
            k.map_or_else(
                || "cumulative average".to_string(),
                |k| {
                    format!(
                        "keeps {} of the running value per step (torch momentum={})",
                        py(k),
                        py(1.0 - k)
                    )
                },
            )
        };
        let ratio = match (keep_k, keep_t) {
            (Some(a), Some(b)) => ((1.0 - a).max(1e-9) / (1.0 - b).max(1e-9)).ln().abs(),
            _ => 1.0,
        };
        out.add(
            Id::BnMomentumConvention,
            Severity::Medium,
            ratio,
            vec![ev(
                format!("running statistics update ({})", km.describe()),
                show(keep_k),
                show(keep_t),
                label.clone(),
            )],
            torch_fix.clone(),
            format!(
                "keras.layers.BatchNormalization(momentum={})",
                keep_t.map_or_else(|| "0.99".into(), py)
            ),
        );
    }
    if eps_differs {
        // The output scale changes by sqrt((var + eps_t)/(var + eps_k)); with copied running
        // statistics the smallest variance shows the worst case.
        let var = p
            .keras
            .params
            .iter()
            .find(|q| q.role == model_ir::ParamRole::MovingVariance)
            .map(|q| {
                q.tensor
                    .to_f64()
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
            })
            .filter(|v| v.is_finite())
            .unwrap_or(1.0);
        let dev = (((var + te) / (var + ke)).sqrt() - 1.0).abs();
        let sev = if dev > 1e-2 {
            Severity::High
        } else if dev > 1e-3 {
            Severity::Medium
        } else {
            Severity::Low
        };
        out.add(
            Id::BnEpsilon,
            sev,
            dev,
            vec![ev(
                format!(
                    "epsilon (output scale off by {} at running variance {})",
                    sig(dev),
                    sig(var)
                ),
                py(*ke),
                py(*te),
                label.clone(),
            )],
            torch_fix,
            format!("keras.layers.BatchNormalization(epsilon={})", py(*te)),
        );
    }
    if kv != tv {
        let name = |v: &VarianceEstimate| match v {
            VarianceEstimate::Biased => "biased (÷n)",
            VarianceEstimate::Unbiased => "unbiased (÷(n−1))",
        };
        out.add(
            Id::BnRunningVarBias,
            Severity::Info,
            0.0,
            vec![ev(
                "running-variance update".to_string(),
                name(kv),
                name(tv),
                label.clone(),
            )],
            "no flag: scale the running-variance update by (n−1)/n by hand, or accept the difference (≈1/(n−1) relative, n = values per channel in a batch)",
            "no flag: Keras always stores the biased variance",
        );
    }
    // The ONNX export says whether each torch BatchNorm runs in training mode; in an export
    // made in eval mode nothing is known.
    let exported_training = c.torch.nodes.iter().any(|n| {
        matches!(
            n.op,
            Op::BatchNorm {
                training_mode: Some(true),
                ..
            }
        )
    });
    let torch_frozen = *tmode == Some(false);
    let differs = if *ktrain {
        torch_frozen && exported_training
    } else {
        *tmode == Some(true)
    };
    if differs {
        out.add(
            Id::BnFrozenMeansInference,
            Severity::High,
            1.0,
            vec![ev(
                "BatchNorm in training",
                if *ktrain {
                    "trainable: batch statistics, running statistics updated"
                } else {
                    "trainable=False: inference mode, moving statistics used and not updated"
                },
                if torch_frozen {
                    "eval mode: running statistics used and not updated"
                } else {
                    "train mode: batch statistics, running statistics updated"
                },
                label,
            )],
            if *ktrain {
                format!("keep `{}` in train mode while training", p.torch.name)
            } else {
                format!(
                    "after every model.train(): {}.eval()  # requires_grad_(False) alone still updates the statistics",
                    crate::findings::torch_ref(&p.torch.name)
                )
            },
            if *ktrain {
                "nothing to change on this side".to_string()
            } else {
                "layer.trainable = True, if the port is the reference".to_string()
            },
        );
    }
}

/// Logical axis name of a positive axis in a tensor of rank `r` (channel/spatial/batch for
/// feature maps, the index otherwise).
fn logical_axis(p: usize, r: usize, layout: Option<DataLayout>) -> String {
    match layout {
        Some(l) if r >= 3 => match (l, p) {
            (_, 0) => "batch".into(),
            (DataLayout::ChannelsLast, p) if p == r - 1 => "channel".into(),
            (DataLayout::ChannelsFirst, 1) => "channel".into(),
            (DataLayout::ChannelsLast, p) => format!("spatial {}", p - 1),
            (DataLayout::ChannelsFirst, p) => format!("spatial {}", p - 2),
        },
        _ => format!("axis {p}"),
    }
}

fn logical_axes(axes: &[i64], r: Option<usize>, layout: Option<DataLayout>) -> Option<Vec<String>> {
    let r = r?;
    let mut v: Vec<String> = axes
        .iter()
        .map(|a| norm_axis(*a, r).map(|p| logical_axis(p, r, layout)))
        .collect::<Option<_>>()?;
    v.sort();
    Some(v)
}

fn layer_norm(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let label = pair_label(&p.keras.name, &p.torch.name);
    let kl = spatial_layout(c.keras);
    let tl = spatial_layout(c.torch);
    let kr = input_shape(c.kshapes, p.keras).map(Vec::len);
    let tr = input_shape(c.tshapes, p.torch).map(Vec::len);
    match (&p.keras.op, &p.torch.op) {
        (
            Op::LayerNorm {
                axes: ka,
                epsilon: ke,
                rms_scaling: krms,
                ..
            },
            Op::LayerNorm {
                axes: ta,
                epsilon: te,
                rms_scaling: trms,
                ..
            },
        ) => {
            let (kax, tax) = (logical_axes(ka, kr, kl), logical_axes(ta, tr, tl));
            let axes_differ = match (&kax, &tax) {
                (Some(a), Some(b)) => a != b,
                _ => ka.len() != ta.len(),
            };
            let c_dim = p.keras.params.first().map_or(0, |q| q.tensor.len());
            let fix_t = if tl.is_some() {
                format!(
                    "nn.LayerNorm({c_dim}, eps={})  # over the channel axis only; permute NCHW → NHWC first",
                    py(*ke)
                )
            } else {
                format!("nn.LayerNorm({c_dim}, eps={})", py(*ke))
            };
            if axes_differ || krms != trms {
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::High,
                    2.0,
                    vec![ev(
                        "normalized axes",
                        kax.map_or_else(|| format!("{ka:?}"), |v| v.join(", ")),
                        tax.map_or_else(|| format!("{ta:?}"), |v| v.join(", ")),
                        label.clone(),
                    )],
                    fix_t.clone(),
                    "keras.layers.LayerNormalization(axis=...)  # the axes torch normalizes",
                );
            }
            if !LAYER_ATTR_TOL.close(*te, *ke) {
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::Medium,
                    (te / ke).ln().abs(),
                    vec![ev("epsilon", py(*ke), py(*te), label)],
                    fix_t,
                    format!("keras.layers.LayerNormalization(epsilon={})", py(*te)),
                );
            }
        }
        (
            Op::GroupNorm {
                groups: kg,
                epsilon: ke,
                ..
            },
            Op::GroupNorm {
                groups: tg,
                epsilon: te,
                ..
            },
        ) => {
            let c_dim = p.keras.params.first().map_or(0, |q| q.tensor.len());
            if kg != tg {
                out.add(
                    Id::ArchitectureMismatch,
                    Severity::High,
                    1.0,
                    vec![ev(
                        "GroupNorm groups",
                        kg.to_string(),
                        tg.to_string(),
                        label.clone(),
                    )],
                    format!("nn.GroupNorm({kg}, {c_dim}, eps={})", py(*ke)),
                    format!("keras.layers.GroupNormalization(groups={tg})"),
                );
            }
            if !LAYER_ATTR_TOL.close(*te, *ke) {
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::Medium,
                    (te / ke).ln().abs(),
                    vec![ev("GroupNorm epsilon", py(*ke), py(*te), label)],
                    format!("nn.GroupNorm({kg}, {c_dim}, eps={})", py(*ke)),
                    format!("keras.layers.GroupNormalization(epsilon={})", py(*te)),
                );
            }
        }
        _ => {}
    }
}

/// Pads `(begin, end)` per spatial axis of a windowed layer, including a constant-zero Pad
/// layer right before it, for the spatial input sizes `sizes` (before that Pad).
fn effective_pads(
    m: &Model,
    n: &Node,
    padding: &Padding,
    kernel: &[usize],
    strides: &[usize],
    dilation: &[usize],
    sizes: &[usize],
) -> Vec<(usize, usize)> {
    let pre = n
        .inputs
        .first()
        .and_then(|v| producer(m, v))
        .and_then(|p| match &p.op {
            Op::Pad {
                begin,
                end,
                mode: model_ir::PadMode::Constant(c),
                ..
            } if c.abs() < 1e-12 => Some((begin.clone(), end.clone())),
            _ => None,
        });
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let (pb, pe) = pre.as_ref().map_or((0, 0), |(b, e)| {
                (*b.get(i).unwrap_or(&0), *e.get(i).unwrap_or(&0))
            });
            let k = *kernel.get(i).unwrap_or(&1);
            let s = *strides.get(i).unwrap_or(&1);
            let d = *dilation.get(i).unwrap_or(&1);
            let (b, e) = padding.pads_for(i, size + pb + pe, k, s, d);
            (b + pb, e + pe)
        })
        .collect()
}

/// Spatial sizes of the input of a Keras layer (before a preceding Pad), or representative
/// even and odd sizes when unknown.
fn spatial_sizes(
    c: &Ctx<'_>,
    n: &Node,
    rank: usize,
    layout: DataLayout,
) -> (Vec<Vec<usize>>, bool) {
    let mut v = n.inputs.first().cloned();
    if let Some(p) = v.as_deref().and_then(|x| producer(c.keras, x))
        && matches!(p.op, Op::Pad { .. })
    {
        v = p.inputs.first().cloned();
    }
    let shape = v.as_deref().and_then(|x| c.kshapes.get(x));
    if let Some(s) = shape
        && s.len() == rank + 2
    {
        let sp = match layout {
            DataLayout::ChannelsLast => &s[1..=rank],
            DataLayout::ChannelsFirst => &s[2..],
        };
        if let Some(known) = sp.iter().copied().collect::<Option<Vec<usize>>>() {
            return (vec![known], true);
        }
    }
    (vec![vec![32; rank], vec![33; rank]], false)
}

fn show_pads(p: &[(usize, usize)]) -> String {
    let v: Vec<String> = p.iter().map(|(b, e)| format!("{b}|{e}")).collect();
    format!("begin|end per axis {}", v.join(", "))
}

fn torch_pad_code(p: &[(usize, usize)]) -> String {
    // F.pad lists the last axis first.
    let v: Vec<String> = p
        .iter()
        .rev()
        .flat_map(|(b, e)| [b.to_string(), e.to_string()])
        .collect();
    format!("F.pad(x, ({}))", v.join(", "))
}

/// Pads of both sides where they differ: (Keras, torch, same output size, input description).
type PadDiff = (Vec<(usize, usize)>, Vec<(usize, usize)>, bool, String);

/// A windowed layer's padding rule, kernel, strides and dilation.
type Window<'a> = (&'a Padding, &'a [usize], &'a [usize], &'a [usize]);

/// A convolution's padding rule, kernel, strides, dilation, rank and layout.
type ConvAttrs = (
    Padding,
    Vec<usize>,
    Vec<usize>,
    Vec<usize>,
    usize,
    DataLayout,
);

fn compare_windows(
    c: &Ctx<'_>,
    k: &Node,
    t: &Node,
    kp: Window<'_>,
    tp: Window<'_>,
    rank: usize,
    klayout: DataLayout,
) -> Option<PadDiff> {
    let (sizes, known) = spatial_sizes(c, k, rank, klayout);
    for sz in sizes {
        let a = effective_pads(c.keras, k, kp.0, kp.1, kp.2, kp.3, &sz);
        let b = effective_pads(c.torch, t, tp.0, tp.1, tp.2, tp.3, &sz);
        if a != b {
            let size = if known {
                format!(
                    "input {}",
                    show_shape(&sz.iter().map(|v| Some(*v)).collect::<Vec<_>>())
                )
            } else if sz[0] % 2 == 0 {
                "even input sizes".to_string()
            } else {
                "odd input sizes".to_string()
            };
            // Same output size (a shifted sampling grid) or a different one.
            let out_size = |p: &[(usize, usize)], i: usize| {
                let k = *kp.1.get(i).unwrap_or(&1);
                let s = (*kp.2.get(i).unwrap_or(&1)).max(1);
                let d = *kp.3.get(i).unwrap_or(&1);
                let eff = (k.max(1) - 1) * d.max(1) + 1;
                (sz[i] + p[i].0 + p[i].1).saturating_sub(eff) / s
            };
            let same_out = (0..a.len()).all(|i| out_size(&a, i) == out_size(&b, i));
            return Some((a, b, same_out, size));
        }
    }
    None
}

fn conv_padding(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let conv = |op: &Op| -> Option<ConvAttrs> {
        match op {
            Op::Conv {
                padding,
                kernel_size,
                strides,
                dilation,
                rank,
                layout,
                ..
            }
            | Op::DepthwiseConv {
                padding,
                kernel_size,
                strides,
                dilation,
                rank,
                layout,
                ..
            }
            | Op::SeparableConv {
                padding,
                kernel_size,
                strides,
                dilation,
                rank,
                layout,
                ..
            } => Some((
                padding.clone(),
                kernel_size.clone(),
                strides.clone(),
                dilation.clone(),
                *rank,
                *layout,
            )),
            _ => None,
        }
    };
    // A separable port's window is its depthwise convolution's (the 1×1 has none).
    let tw = p.torch_window();
    let (Some(k), Some(t)) = (conv(&p.keras.op), conv(&tw.op)) else {
        return;
    };
    let label = pair_label(&p.keras.name, &tw.name);
    let Some((a, b, same_total, size)) = compare_windows(
        c,
        p.keras,
        tw,
        (&k.0, &k.1, &k.2, &k.3),
        (&t.0, &t.1, &t.2, &t.3),
        k.4,
        k.5,
    ) else {
        return;
    };
    let what = format!(
        "padding ({size}; keras {}, stride {:?})",
        k.0.describe(),
        k.2
    );
    let fix_t = format!(
        "{}, then the conv with padding=0  # TF 'same': the extra pixel at the end",
        torch_pad_code(&a)
    );
    if same_total {
        out.add(
            Id::SamePaddingAsymmetric,
            Severity::High,
            2.0,
            vec![ev(what, show_pads(&a), show_pads(&b), label)],
            fix_t,
            format!("keras.layers.ZeroPadding2D({:?}) + padding='valid'", b),
        );
    } else {
        out.add(
            Id::ArchitectureMismatch,
            Severity::High,
            2.0,
            vec![ev(
                format!("{what}: output sizes differ"),
                show_pads(&a),
                show_pads(&b),
                label,
            )],
            fix_t,
            "nothing to change on this side",
        );
    }
}

/// Compares the effective output crop of aligned transposed convolutions: the layer's own
/// crop plus the spatial crop Slices right after it (the exact torch port of a Keras 'same'
/// crop is `padding=0` then `y[..., 0:n·s]`).
fn conv_transpose_crop(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let (Op::ConvTranspose { layout, rank, .. }, Op::ConvTranspose { .. }) =
        (&p.keras.op, &p.torch.op)
    else {
        return;
    };
    let (sizes, _) = spatial_sizes(c, p.keras, *rank, *layout);
    let sz: Vec<usize> = (0..*rank)
        .map(|i| sizes.first().and_then(|s| s.get(i)).copied().unwrap_or(8))
        .collect();
    let a = effective_transpose_crop(c.keras, c.kshapes, p.keras, &sz);
    let b = effective_transpose_crop(c.torch, c.tshapes, p.torch, &sz);
    if a != b {
        let show = |v: &[(usize, i64)]| {
            v.iter()
                .map(|(x, y)| format!("crop {x}|{y}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let slice: Vec<String> = a
            .iter()
            .map(|(x, y)| {
                format!(
                    "{x}:{}",
                    if *y > 0 {
                        format!("-{y}")
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        out.add(
            Id::ConvTransposeSameCrop,
            Severity::High,
            2.0,
            vec![ev(
                "output crop begin|end per axis",
                show(&a),
                show(&b),
                pair_label(&p.keras.name, &p.torch.name),
            )],
            format!(
                "ConvTranspose with padding=0, output_padding=0, then y[..., {}]",
                slice.join(", ")
            ),
            "nothing to change on this side",
        );
    }
}

/// A canonical form for comparing activations: ReLU with a slope is a leaky ReLU.
fn canon(a: &Activation) -> Activation {
    match a {
        Activation::Relu {
            negative_slope,
            max_value: None,
            threshold,
        } if *negative_slope != 0.0 && *threshold == 0.0 => Activation::LeakyRelu {
            slope: *negative_slope,
        },
        Activation::Relu {
            negative_slope,
            max_value: Some(m),
            threshold,
        } if *negative_slope == 0.0 && *threshold == 0.0 && (*m - 6.0).abs() < 1e-12 => {
            Activation::Relu6
        }
        other => other.clone(),
    }
}

fn is_prob(a: &Activation) -> bool {
    matches!(
        a,
        Activation::Softmax { .. } | Activation::LogSoftmax { .. } | Activation::Sigmoid
    )
}

#[allow(clippy::float_cmp)]
fn same_params(a: &Activation, b: &Activation) -> bool {
    // Exact structural equality on the canonical forms; the values are configuration
    // constants read from the files, not computed.
    a == b
}

struct ActCtx<'a> {
    label: Option<String>,
    krank: Option<usize>,
    trank: Option<usize>,
    kl: Option<DataLayout>,
    tl: Option<DataLayout>,
    tname: &'a str,
}

fn compare_act(x: &ActCtx<'_>, ka: &Activation, ta: &Activation, out: &mut Findings) {
    let (k, t) = (canon(ka), canon(ta));
    match (&k, &t) {
        (Activation::Gelu { approximate: a }, Activation::Gelu { approximate: b }) if a != b => {
            let form = |ap: bool| {
                if ap {
                    "tanh approximation"
                } else {
                    "exact (erf)"
                }
            };
            out.add(
                Id::GeluApproximate,
                Severity::Low,
                0.5,
                vec![ev("GELU", form(*a), form(*b), x.label.clone())],
                format!(
                    "nn.GELU(approximate='{}')",
                    if *a { "tanh" } else { "none" }
                ),
                format!(
                    "keras.activations.gelu(x, approximate={})",
                    if *b { "True" } else { "False" }
                ),
            );
        }
        (Activation::LeakyRelu { slope: a }, Activation::LeakyRelu { slope: b })
            if !LAYER_ATTR_TOL.close(*b, *a) =>
        {
            out.add(
                Id::LeakyReluSlope,
                Severity::Medium,
                (a / b.max(1e-12)).ln().abs(),
                vec![ev(
                    "LeakyReLU negative slope",
                    py(*a),
                    py(*b),
                    x.label.clone(),
                )],
                format!("nn.LeakyReLU(negative_slope={})", py(*a)),
                format!("keras.layers.LeakyReLU(negative_slope={})", py(*b)),
            );
        }
        (Activation::HardSigmoid(a), Activation::HardSigmoid(b))
            if !LAYER_ATTR_TOL.close(b.slope, a.slope)
                || !LAYER_ATTR_TOL.close(b.offset, a.offset) =>
        {
            out.add(
                Id::HardSigmoidDefinition,
                Severity::Medium,
                1.0,
                vec![ev(
                    "hard_sigmoid",
                    ka.describe(),
                    ta.describe(),
                    x.label.clone(),
                )],
                format!("torch.clamp({} * x + {}, 0, 1)", py(a.slope), py(a.offset)),
                "keras.layers.Lambda(lambda x: keras.ops.relu6(x + 3) / 6)".to_string(),
            );
        }
        (Activation::Softmax { axis: a }, Activation::Softmax { axis: b })
        | (Activation::LogSoftmax { axis: a }, Activation::LogSoftmax { axis: b }) => {
            let la = x
                .krank
                .and_then(|r| norm_axis(*a, r).map(|p| logical_axis(p, r, x.kl)));
            let lb = x
                .trank
                .and_then(|r| norm_axis(*b, r).map(|p| logical_axis(p, r, x.tl)));
            let differ = match (&la, &lb) {
                (Some(p), Some(q)) => p != q,
                _ => false,
            };
            if differ {
                out.add(
                    Id::SoftmaxImplicitDim,
                    Severity::High,
                    2.0,
                    vec![ev(
                        "softmax axis",
                        format!("{a} ({})", la.unwrap_or_default()),
                        format!("{b} ({})", lb.unwrap_or_default()),
                        x.label.clone(),
                    )],
                    format!(
                        "torch.softmax(x, dim={})  # always pass dim",
                        x.krank
                            .and_then(|r| norm_axis(*a, r))
                            .map_or("-1".to_string(), |p| if x.kl != x.tl {
                                "1".into()
                            } else {
                                p.to_string()
                            })
                    ),
                    "nothing to change on this side".to_string(),
                );
            }
        }
        _ if same_params(&k, &t) => {}
        _ => {
            out.add(
                Id::ArchitectureMismatch,
                if std::mem::discriminant(&k) == std::mem::discriminant(&t) {
                    Severity::Medium
                } else {
                    Severity::High
                },
                1.0,
                vec![ev(
                    "activation",
                    ka.describe(),
                    ta.describe(),
                    x.label.clone(),
                )],
                format!(
                    "use the Keras activation ({}) after `{}`",
                    ka.describe(),
                    x.tname
                ),
                "nothing to change on this side".to_string(),
            );
        }
    }
}

fn activations(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let mut kc = activation_chain(c.keras, p.keras);
    let mut tc = activation_chain(c.torch, p.torch);
    let is_out = |m: &Model, n: &Node| {
        m.outputs
            .first()
            .and_then(|o| source_of(m, o))
            .is_some_and(|s| s.name == n.name)
    };
    let rank = |shapes: &Shapes, v: Option<&String>| v.and_then(|v| shapes.get(v)).map(Vec::len);
    let x = ActCtx {
        label: pair_label(&p.keras.name, &p.torch.name),
        krank: rank(c.kshapes, p.keras.outputs.first()),
        trank: rank(c.tshapes, p.torch.outputs.first()),
        kl: spatial_layout(c.keras),
        tl: spatial_layout(c.torch),
        tname: &p.torch.name,
    };
    if is_out(c.keras, p.keras) && is_out(c.torch, p.torch) {
        // The loss check owns the output activation; only the softmax axis is compared here.
        if let (Some((ka, _)), Some((ta, _))) = (kc.last(), tc.last())
            && is_prob(ka)
            && is_prob(ta)
            && std::mem::discriminant(*ka) == std::mem::discriminant(*ta)
        {
            compare_act(&x, ka, ta, out);
        }
        while kc.last().is_some_and(|(a, _)| is_prob(a)) {
            kc.pop();
        }
        while tc.last().is_some_and(|(a, _)| is_prob(a)) {
            tc.pop();
        }
    }
    if kc.len() == tc.len() {
        for ((ka, _), (ta, _)) in kc.iter().zip(&tc) {
            compare_act(&x, ka, ta, out);
        }
    } else {
        let show = |v: &[(&Activation, &str)]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|(a, _)| a.describe())
                    .collect::<Vec<_>>()
                    .join(" → ")
            }
        };
        out.add(
            Id::ArchitectureMismatch,
            Severity::High,
            1.0,
            vec![ev(
                "activations after the layer",
                show(&kc),
                show(&tc),
                x.label.clone(),
            )],
            format!("apply {} after `{}`", show(&kc), p.torch.name),
            "nothing to change on this side".to_string(),
        );
    }
}

fn rnn(p: &Pair<'_>, out: &mut Findings) {
    let (
        Op::Rnn {
            cell,
            activation: ka,
            recurrent_activation: kra,
            gru_reset: kreset,
            dropout: kd,
            recurrent_dropout: krd,
            direction: kdir,
            ..
        },
        Op::Rnn {
            activation: ta,
            recurrent_activation: tra,
            gru_reset: treset,
            direction: tdir,
            ..
        },
    ) = (&p.keras.op, &p.torch.op)
    else {
        return;
    };
    let label = pair_label(&p.keras.name, &p.torch.name);
    if kreset != treset {
        out.add(
            Id::GruLayoutResetAfter,
            Severity::High,
            2.0,
            vec![ev(
                "GRU reset gate",
                format!("{kreset:?}"),
                format!("{treset:?}"),
                label.clone(),
            )],
            "no torch equivalent of reset_after=False: write a custom GRU cell with U_h(r ⊙ h)",
            "keras.layers.GRU(..., reset_after=True)",
        );
    }
    if *kd > 0.0 || *krd > 0.0 {
        out.add(
            Id::RnnDropoutAndMasking,
            Severity::Medium,
            kd.max(*krd),
            vec![ev(
                format!("{cell:?} dropout inside the cell (same mask every step)"),
                format!("dropout={}, recurrent_dropout={}", py(*kd), py(*krd)),
                "none (torch RNN dropout acts between stacked layers only)",
                label.clone(),
            )],
            "a custom cell with variational dropout masks on the input and the hidden state",
            "dropout=0.0, recurrent_dropout=0.0 if the port is the reference",
        );
    }
    if kdir != tdir {
        out.add(
            Id::ArchitectureMismatch,
            Severity::High,
            1.0,
            vec![ev(
                "RNN direction",
                format!("{kdir:?}"),
                format!("{tdir:?}"),
                label.clone(),
            )],
            format!("match the Keras direction/merge ({kdir:?})"),
            "nothing to change on this side",
        );
    }
    let x = ActCtx {
        label,
        krank: None,
        trank: None,
        kl: None,
        tl: None,
        tname: &p.torch.name,
    };
    compare_act(&x, ka, ta, out);
    if let (Some(a), Some(b)) = (kra, tra) {
        compare_act(&x, a, b, out);
    }
}

/// Nodes of one kind in graph order.
fn nodes_of(m: &Model, pred: impl Fn(&Op) -> bool) -> Vec<&Node> {
    m.nodes.iter().filter(|n| pred(&n.op)).collect()
}

fn pooling(c: &Ctx<'_>, out: &mut Findings) {
    let is_pool = |op: &Op| matches!(op, Op::Pool { .. });
    let (kp, tp) = (nodes_of(c.keras, is_pool), nodes_of(c.torch, is_pool));
    if kp.len() != tp.len() {
        return;
    }
    for (k, t) in kp.iter().zip(&tp) {
        let (
            Op::Pool {
                pool,
                rank,
                pool_size,
                strides,
                dilation,
                padding,
                layout,
                count_include_pad: kc,
                ceil_mode: kceil,
            },
            Op::Pool {
                pool: tpool,
                pool_size: tsize,
                strides: tstr,
                dilation: tdil,
                padding: tpad,
                count_include_pad: tc,
                ceil_mode: tceil,
                ..
            },
        ) = (&k.op, &t.op)
        else {
            continue;
        };
        let label = pair_label(&k.name, &t.name);
        if pool != tpool || pool_size != tsize || strides != tstr {
            out.add(
                Id::ArchitectureMismatch,
                Severity::High,
                1.0,
                vec![ev(
                    "pooling",
                    format!("{pool:?} {pool_size:?} stride {strides:?}"),
                    format!("{tpool:?} {tsize:?} stride {tstr:?}"),
                    label,
                )],
                "match the Keras pooling kind, size and stride",
                "nothing to change on this side",
            );
            continue;
        }
        let diff = compare_windows(
            c,
            k,
            t,
            (padding, pool_size, strides, dilation),
            (tpad, tsize, tstr, tdil),
            *rank,
            *layout,
        );
        let kind = match pool {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
        };
        let tuple = |v: &[usize]| {
            let s: Vec<String> = v.iter().map(usize::to_string).collect();
            format!("({})", s.join(", "))
        };
        let ks = format!("{}, {}", tuple(pool_size), tuple(strides));
        if let Some((a, b, _, size)) = diff {
            out.add(
                Id::PoolingPadding,
                Severity::High,
                1.5,
                vec![ev(
                    format!("{kind} pooling padding ({size}; keras {})", padding.describe()),
                    show_pads(&a),
                    show_pads(&b),
                    label.clone(),
                )],
                match pool {
                    PoolKind::Max => format!(
                        "F.max_pool2d({}, {ks})  # pad with -inf",
                        torch_pad_code(&a).replace("))", "), value=float('-inf'))")
                    ),
                    PoolKind::Avg => format!(
                        "F.avg_pool2d({p}, {ks}) / F.avg_pool2d({q}, {ks})  # divide by the valid count",
                        p = torch_pad_code(&a),
                        q = torch_pad_code(&a).replace("(x,", "(torch.ones_like(x),")
                    ),
                },
                "nothing to change on this side",
            );
        }
        let padded = padding != &Padding::Valid || tpad != &Padding::Valid;
        if *pool == PoolKind::Avg && padded && kc != tc {
            out.add(
                Id::PoolingPadding,
                Severity::Medium,
                1.0,
                vec![ev(
                    "average pooling divisor at the border",
                    if *kc {
                        "counts padding"
                    } else {
                        "valid elements only"
                    },
                    if *tc {
                        "counts padding (count_include_pad=True)"
                    } else {
                        "valid elements only"
                    },
                    label.clone(),
                )],
                format!(
                    "nn.AvgPool2d(..., count_include_pad={})",
                    if *kc { "True" } else { "False" }
                ),
                "nothing to change on this side",
            );
        }
        if kceil != tceil {
            out.add(
                Id::PoolingPadding,
                Severity::Medium,
                1.0,
                vec![ev("ceil_mode", kceil.to_string(), tceil.to_string(), label)],
                format!("ceil_mode={}", if *kceil { "True" } else { "False" }),
                "nothing to change on this side",
            );
        }
    }
}

/// `nn.Upsample` / `F.interpolate` mode of an interpolation at spatial rank `rank`.
fn torch_resize_mode(i: model_ir::Interpolation, rank: usize) -> String {
    if !i.is_bilinear() {
        return "mode='nearest'".into();
    }
    let mode = match rank {
        1 => "linear",
        3 => "trilinear",
        _ => "bilinear",
    };
    let ac = if i == model_ir::Interpolation::BilinearAlignCorners {
        "True"
    } else {
        "False"
    };
    format!("mode='{mode}', align_corners={ac}")
}

/// `scale_factor=` value: one number when every axis has the same factor.
fn py_scale(size: &[usize]) -> String {
    match size {
        [s, rest @ ..] if rest.iter().all(|r| r == s) => s.to_string(),
        _ => format!(
            "({})",
            size.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Upsampling layers paired in graph order (they have no parameters): interpolation kind, its
/// coordinate convention (half-pixel centres vs align_corners) and the factors.
fn upsampling(c: &Ctx<'_>, out: &mut Findings) {
    use model_ir::Interpolation;
    let is_up = |op: &Op| matches!(op, Op::UpSampling { .. });
    let (ku, tu) = (nodes_of(c.keras, is_up), nodes_of(c.torch, is_up));
    if ku.len() != tu.len() {
        return;
    }
    for (k, t) in ku.iter().zip(&tu) {
        let (
            Op::UpSampling {
                rank,
                interpolation: a,
                size: sa,
                layout,
            },
            Op::UpSampling {
                interpolation: b,
                size: sb,
                ..
            },
        ) = (&k.op, &t.op)
        else {
            continue;
        };
        let (a, b) = (*a, *b);
        if a == b && sa == sb {
            continue;
        }
        // Every convention reads the single input of a length-1 axis: no effect then.
        let spatial: Option<Vec<Option<usize>>> = input_shape(c.kshapes, k).and_then(|s| {
            let first = match layout {
                DataLayout::ChannelsLast => 1,
                DataLayout::ChannelsFirst => 2,
            };
            s.get(first..first + rank).map(<[Option<usize>]>::to_vec)
        });
        let inert = sa == sb && spatial.is_some_and(|sp| sp.iter().all(|d| *d == Some(1)));
        let severity = if inert {
            Severity::Info
        } else {
            Severity::High
        };
        let keras_class = format!("UpSampling{rank}D");
        let kind = if a.is_bilinear() {
            "bilinear"
        } else {
            "nearest"
        };
        let keras_text = format!(
            "{keras_class}(size={}, interpolation='{kind}')  # {}",
            py_scale(sa),
            a.describe()
        );
        let torch_text = format!(
            "F.interpolate(scale_factor={}, {})  # {}",
            py_scale(sb),
            torch_resize_mode(b, *rank),
            b.describe()
        );
        let what = if a != b && a.is_bilinear() && b.is_bilinear() {
            "bilinear upsampling coordinate convention"
        } else {
            "upsampling"
        };
        let args = format!(
            "scale_factor={}, {}",
            py_scale(sa),
            torch_resize_mode(a, *rank)
        );
        let torch_fix = format!(
            "nn.Upsample({args})  # {}, as Keras {keras_class}\nF.interpolate(x, {args})  # the functional form",
            a.describe()
        );
        let keras_fix = if b == Interpolation::BilinearAlignCorners {
            format!(
                "nothing to change on this side: Keras {keras_class} has no align_corners option, change the torch side"
            )
        } else {
            "nothing to change on this side".to_string()
        };
        out.add(
            Id::ResizeSemantics,
            severity,
            1.0,
            vec![ev(
                what,
                keras_text,
                torch_text,
                pair_label(&k.name, &t.name),
            )],
            torch_fix,
            keras_fix,
        );
    }
}

fn dropout(c: &Ctx<'_>, out: &mut Findings) {
    let is_drop = |op: &Op| matches!(op, Op::Dropout { .. });
    let (kd, td) = (nodes_of(c.keras, is_drop), nodes_of(c.torch, is_drop));
    if kd.len() != td.len() {
        let names = |v: &[&Node]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        out.add(
            Id::ArchitectureMismatch,
            Severity::Medium,
            0.5,
            vec![ev("dropout layers", names(&kd), names(&td), None)],
            "add or remove nn.Dropout to match the Keras model",
            "nothing to change on this side",
        );
        return;
    }
    for (k, t) in kd.iter().zip(&td) {
        if let (
            Op::Dropout {
                rate: a,
                spatial: sa,
            },
            Op::Dropout {
                rate: b,
                spatial: sb,
            },
        ) = (&k.op, &t.op)
            && (!LAYER_ATTR_TOL.close(*b, *a) || sa.is_some() != sb.is_some())
        {
            out.add(
                Id::ArchitectureMismatch,
                Severity::Medium,
                (a - b).abs(),
                vec![ev(
                    "dropout rate",
                    format!("{}{}", py(*a), if sa.is_some() { " (spatial)" } else { "" }),
                    format!("{}{}", py(*b), if sb.is_some() { " (spatial)" } else { "" }),
                    pair_label(&k.name, &t.name),
                )],
                format!("nn.Dropout(p={})", py(*a)),
                "nothing to change on this side",
            );
        }
    }
}

fn masking(c: &Ctx<'_>, out: &mut Findings) {
    let has_rnn = c.keras.nodes.iter().any(|n| matches!(n.op, Op::Rnn { .. }));
    for n in &c.keras.nodes {
        if let Op::Embedding {
            mask_zero: true, ..
        } = n.op
            && has_rnn
        {
            out.add(
                Id::RnnDropoutAndMasking,
                Severity::Medium,
                1.0,
                vec![ev(
                    "padding mask",
                    "Embedding(mask_zero=True): padded steps keep the state, the last valid output is returned",
                    "no mask: padded steps are processed",
                    Some(n.name.clone()),
                )],
                "pack_padded_sequence with the true lengths, and gather the last valid output",
                "nothing to change on this side",
            );
        }
    }
}

fn extra_params(p: &Pair<'_>, out: &mut Findings) {
    for q in &p.torch_unpaired {
        out.add(
            Id::ArchitectureMismatch,
            Severity::Medium,
            0.5,
            vec![ev(
                format!("parameter `{}` has no Keras counterpart", q.name),
                "none",
                format!("{:?}", q.tensor.shape()),
                pair_label(&p.keras.name, &p.torch.name),
            )],
            format!(
                "drop `{}` (e.g. bias=False) to match the Keras layer",
                q.name
            ),
            "nothing to change on this side",
        );
    }
}

/// Step 3a over the aligned pairs and the parameter-free layers.
pub(crate) fn check(c: &Ctx<'_>, aligned: &Aligned<'_>, out: &mut Findings) {
    for p in &aligned.pairs {
        batch_norm(c, p, out);
        layer_norm(c, p, out);
        conv_padding(c, p, out);
        conv_transpose_crop(c, p, out);
        activations(c, p, out);
        rnn(p, out);
        extra_params(p, out);
    }
    pooling(c, out);
    upsampling(c, out);
    dropout(c, out);
    masking(c, out);
}

#[cfg(test)]
mod tests {
    use model_ir::{
        Activation, DataLayout, Framework, HardSigmoid, MomentumForm, Op, Padding, PoolKind,
        VarianceEstimate,
    };
    use report::Severity;

    use crate::testkit::*;

    /// The ids found for a Keras and a torch model that differ in one layer only.
    #[track_caller]
    fn check(keras: model_ir::Model, torch: model_ir::Model, expect: &[(&str, Severity)]) {
        let found = ids(keras, torch);
        let want: Vec<(String, Severity)> =
            expect.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(found, want);
    }

    fn bn(fw: Framework, eps: f64, m: MomentumForm, var: VarianceEstimate) -> model_ir::Node {
        let roles = [
            (model_ir::ParamRole::Gamma, 1.0f32, "gamma"),
            (model_ir::ParamRole::Beta, 0.0, "beta"),
            (model_ir::ParamRole::MovingMean, 0.0, "moving_mean"),
            (model_ir::ParamRole::MovingVariance, 1.0, "moving_variance"),
        ];
        node(
            fw,
            "bn",
            Op::BatchNorm {
                axis: -1,
                epsilon: eps,
                momentum: m,
                running_variance: var,
                center: true,
                scale: true,
                trainable: true,
                track_running_stats: true,
                training_mode: None,
            },
            "x",
            roles
                .iter()
                .map(|(r, v, n)| {
                    param(
                        &format!("bn/{n}"),
                        *r,
                        model_ir::ParamLayout::Vector,
                        tensor(&[4], vec![*v; 4]),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn batch_norm_conventions() {
        let k = || {
            model(
                Framework::Keras,
                &[4],
                vec![bn(
                    Framework::Keras,
                    1e-3,
                    MomentumForm::KeepOld(0.99),
                    VarianceEstimate::Biased,
                )],
            )
        };
        let t = |eps, m| {
            model(
                Framework::Torch,
                &[4],
                vec![bn(Framework::Torch, eps, m, VarianceEstimate::Biased)],
            )
        };
        check(k(), t(1e-3, MomentumForm::TakeNew(0.01)), &[]);
        check(
            k(),
            t(1e-3, MomentumForm::TakeNew(0.1)),
            &[("bn-momentum-convention", Severity::Medium)],
        );
        check(
            k(),
            t(1e-5, MomentumForm::TakeNew(0.01)),
            &[("bn-epsilon", Severity::Low)],
        );
        let tv = model(
            Framework::Torch,
            &[4],
            vec![bn(
                Framework::Torch,
                1e-3,
                MomentumForm::TakeNew(0.01),
                VarianceEstimate::Unbiased,
            )],
        );
        check(k(), tv, &[("bn-running-var-bias", Severity::Info)]);
    }

    #[test]
    fn frozen_batch_norm() {
        let mut kn = bn(
            Framework::Keras,
            1e-3,
            MomentumForm::KeepOld(0.99),
            VarianceEstimate::Biased,
        );
        if let Op::BatchNorm { trainable, .. } = &mut kn.op {
            *trainable = false;
        }
        let mut tn = bn(
            Framework::Torch,
            1e-3,
            MomentumForm::TakeNew(0.01),
            VarianceEstimate::Biased,
        );
        if let Op::BatchNorm { training_mode, .. } = &mut tn.op {
            *training_mode = Some(true);
        }
        let k = model(Framework::Keras, &[4], vec![kn]);
        let t = model(Framework::Torch, &[4], vec![tn]);
        check(k, t, &[("bn-frozen-means-inference", Severity::High)]);
    }

    fn act_pair(ka: Activation, ta: Activation) -> (model_ir::Model, model_ir::Model) {
        let (mut k, mut t) = faithful_mlp();
        if let Op::Dense { activation, .. } = &mut k.nodes[0].op {
            *activation = ka;
        }
        t.nodes[1].op = Op::Activation { function: ta };
        (k, t)
    }

    #[test]
    fn activations() {
        let (k, t) = act_pair(
            Activation::LeakyRelu { slope: 0.3 },
            Activation::LeakyRelu { slope: 0.01 },
        );
        check(k, t, &[("leaky-relu-slope", Severity::Medium)]);
        let (k, t) = act_pair(
            Activation::Gelu { approximate: true },
            Activation::Gelu { approximate: false },
        );
        check(k, t, &[("gelu-approximate", Severity::Low)]);
        let (k, t) = act_pair(
            Activation::HardSigmoid(HardSigmoid::LEGACY),
            Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH),
        );
        check(k, t, &[("hard-sigmoid-definition", Severity::Medium)]);
        let (k, t) = act_pair(Activation::RELU, Activation::Tanh);
        check(k, t, &[("architecture-mismatch", Severity::High)]);
        // ReLU(negative_slope=s) is a leaky ReLU.
        let (k, t) = act_pair(
            Activation::Relu {
                negative_slope: 0.01,
                max_value: None,
                threshold: 0.0,
            },
            Activation::LeakyRelu { slope: 0.01 },
        );
        check(k, t, &[]);
    }

    #[test]
    fn softmax_axis_over_the_batch() {
        // (N, T, C) output: Keras softmax over C, torch's implicit dim 0 for 3-D input.
        let kk = tensor(&[4, 3], uniform(12, 0.5, 1));
        let k = model(
            Framework::Keras,
            &[5, 4],
            vec![
                keras_dense("d", "x", kk.clone(), vec![0.0; 3], Activation::Linear),
                act(
                    Framework::Keras,
                    "sm",
                    "d",
                    Activation::Softmax { axis: -1 },
                ),
            ],
        );
        let t = model(
            Framework::Torch,
            &[5, 4],
            vec![
                torch_dense("d", "x", kk.permuted(&[1, 0]), vec![0.0; 3]),
                act(Framework::Torch, "sm", "d", Activation::Softmax { axis: 0 }),
            ],
        );
        check(k, t, &[("softmax-implicit-dim", Severity::High)]);
    }

    fn up_pair(
        ki: model_ir::Interpolation,
        ti: model_ir::Interpolation,
        hw: usize,
    ) -> (model_ir::Model, model_ir::Model) {
        let up = |fw, interpolation, layout| {
            node(
                fw,
                "up",
                Op::UpSampling {
                    rank: 2,
                    size: vec![2, 2],
                    interpolation,
                    layout,
                },
                "x",
                vec![],
            )
        };
        let k = model(
            Framework::Keras,
            &[hw, hw, 2],
            vec![up(Framework::Keras, ki, DataLayout::ChannelsLast)],
        );
        let t = model(
            Framework::Torch,
            &[2, hw, hw],
            vec![up(Framework::Torch, ti, DataLayout::ChannelsFirst)],
        );
        (k, t)
    }

    #[test]
    fn upsampling_coordinate_conventions() {
        use model_ir::Interpolation::{Bilinear, BilinearAlignCorners, Nearest};
        for i in [Nearest, Bilinear] {
            let (k, t) = up_pair(i, i, 4);
            check(k, t, &[]);
        }
        // Keras UpSampling2D(interpolation='bilinear') is half-pixel; torch align_corners=True.
        let (k, t) = up_pair(Bilinear, BilinearAlignCorners, 4);
        let d = run(k, t);
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!(
            (f.id.as_str(), f.severity),
            ("resize-semantics", Severity::High)
        );
        let e = &f.evidence[0];
        assert!(e.keras.contains("interpolation='bilinear'"), "{e:?}");
        assert!(e.keras.contains("half-pixel"), "{e:?}");
        assert!(e.torch.contains("align_corners=True"), "{e:?}");
        assert!(
            f.fix
                .torch
                .contains("nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)"),
            "{}",
            f.fix.torch
        );
        assert!(
            f.fix
                .torch
                .contains("F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)"),
            "{}",
            f.fix.torch
        );
        // Nearest vs bilinear changes the outputs too; the fix keeps Keras's nearest.
        let (k, t) = up_pair(Nearest, Bilinear, 4);
        let d = run(k, t);
        assert_eq!(d.findings[0].severity, Severity::High);
        assert!(d.findings[0].fix.torch.contains("mode='nearest'"));
        // A 1×1 input reads its one pixel under every convention.
        let (k, t) = up_pair(Bilinear, BilinearAlignCorners, 1);
        check(k, t, &[("resize-semantics", Severity::Info)]);
    }

    fn strided_conv(torch_pad: Padding, n: usize) -> (model_ir::Model, model_ir::Model) {
        let kk = tensor(&[3, 3, 1, 2], uniform(18, 0.3, 2));
        let k = model(
            Framework::Keras,
            &[n, n, 1],
            vec![node(
                Framework::Keras,
                "c",
                conv_op(2, 3, 2, Padding::SameUpper, DataLayout::ChannelsLast),
                "x",
                vec![param(
                    "c/kernel",
                    model_ir::ParamRole::Kernel,
                    model_ir::ParamLayout::ConvSpatialInOut { rank: 2 },
                    kk.clone(),
                )],
            )],
        );
        let t = model(
            Framework::Torch,
            &[1, n, n],
            vec![node(
                Framework::Torch,
                "c",
                conv_op(2, 3, 2, torch_pad, DataLayout::ChannelsFirst),
                "x",
                vec![param(
                    "c.weight",
                    model_ir::ParamRole::Kernel,
                    model_ir::ParamLayout::ConvOutInSpatial { rank: 2 },
                    kk.permuted(&[3, 2, 0, 1]),
                )],
            )],
        );
        (k, t)
    }

    #[test]
    fn same_padding_with_stride_two() {
        // Even input: TF pads 0 before, 1 after; padding=1 pads 1|1.
        let (k, t) = strided_conv(Padding::symmetric(&[1, 1]), 8);
        check(k, t, &[("same-padding-asymmetric", Severity::High)]);
        // Odd input: TF pads 1|1 as well.
        let (k, t) = strided_conv(Padding::symmetric(&[1, 1]), 9);
        check(k, t, &[]);
        let (k, t) = strided_conv(
            Padding::Explicit {
                begin: vec![0, 0],
                end: vec![1, 1],
            },
            8,
        );
        check(k, t, &[]);
    }

    #[test]
    fn pooling_same_vs_symmetric() {
        let pool = |fw, padding, layout, cip| {
            node(
                fw,
                "p",
                Op::Pool {
                    pool: PoolKind::Avg,
                    rank: 2,
                    pool_size: vec![3, 3],
                    strides: vec![2, 2],
                    dilation: vec![1, 1],
                    padding,
                    layout,
                    count_include_pad: cip,
                    ceil_mode: false,
                },
                "x",
                vec![],
            )
        };
        let k = model(
            Framework::Keras,
            &[8, 8, 2],
            vec![pool(
                Framework::Keras,
                Padding::SameUpper,
                DataLayout::ChannelsLast,
                false,
            )],
        );
        let t = model(
            Framework::Torch,
            &[2, 8, 8],
            vec![pool(
                Framework::Torch,
                Padding::symmetric(&[1, 1]),
                DataLayout::ChannelsFirst,
                true,
            )],
        );
        check(k, t, &[("pooling-padding", Severity::High)]);
    }

    fn conv_transpose_op(
        padding: Padding,
        output_padding: Option<Vec<usize>>,
        layout: DataLayout,
    ) -> Op {
        Op::ConvTranspose {
            rank: 2,
            filters: 2,
            kernel_size: vec![3, 3],
            strides: vec![2, 2],
            dilation: vec![1, 1],
            groups: 1,
            padding,
            output_padding,
            layout,
            use_bias: true,
            activation: Activation::Linear,
        }
    }

    /// Keras `Conv2DTranspose(2, 3, strides=2, padding='same') → ReLU` on a 4×4×3 input, and
    /// a torch `ConvTranspose2d(3, 2, 3, stride=2, padding=p, output_padding=op)` followed by
    /// the Slices `(axis, start, end)` and a ReLU, with the kernel mapped exactly.
    fn transposed_pair(
        torch_pad: Padding,
        output_padding: Option<Vec<usize>>,
        slices: &[(i64, i64, i64)],
    ) -> (model_ir::Model, model_ir::Model) {
        let kk = tensor(&[3, 3, 2, 3], uniform(54, 0.3, 4));
        let k = model(
            Framework::Keras,
            &[4, 4, 3],
            vec![
                node(
                    Framework::Keras,
                    "up",
                    conv_transpose_op(Padding::SameUpper, None, DataLayout::ChannelsLast),
                    "x",
                    vec![param(
                        "up/kernel",
                        model_ir::ParamRole::Kernel,
                        model_ir::ParamLayout::ConvTransposeSpatialOutIn { rank: 2 },
                        kk.clone(),
                    )],
                ),
                act(Framework::Keras, "act", "up", Activation::RELU),
            ],
        );
        let mut nodes = vec![node(
            Framework::Torch,
            "up",
            conv_transpose_op(torch_pad, output_padding, DataLayout::ChannelsFirst),
            "x",
            vec![param(
                "up.weight",
                model_ir::ParamRole::Kernel,
                model_ir::ParamLayout::ConvTransposeInOutSpatial { rank: 2 },
                kk.permuted(&[3, 2, 0, 1]),
            )],
        )];
        let mut prev = "up".to_string();
        for (j, (axis, start, end)) in slices.iter().enumerate() {
            let name = format!("slice{j}");
            nodes.push(node(
                Framework::Torch,
                &name,
                Op::Slice {
                    axis: *axis,
                    start: *start,
                    end: *end,
                    step: 1,
                },
                &prev,
                vec![],
            ));
            prev = name;
        }
        nodes.push(act(Framework::Torch, "relu", &prev, Activation::RELU));
        let t = model(Framework::Torch, &[3, 4, 4], nodes);
        (k, t)
    }

    #[test]
    fn conv_transpose_crop_through_slices() {
        // padding=0 then y[:, :, 0:8, 0:8]: exactly Keras 'same' (crop 0 at the start, 1 at the end).
        let (k, t) = transposed_pair(Padding::Valid, None, &[(2, 0, 8), (3, 0, 8)]);
        check(k, t, &[]);
        // The same crop written with negative ends (y[..., :-1, :-1]).
        let (k, t) = transposed_pair(Padding::Valid, None, &[(-2, 0, -1), (-1, 0, -1)]);
        check(k, t, &[]);
        // y[:, :, 1:9, 1:9] crops the pixel at the start: a one-pixel shift.
        let (k, t) = transposed_pair(Padding::Valid, None, &[(2, 1, 9), (3, 1, 9)]);
        check(k, t, &[("conv-transpose-same-crop", Severity::High)]);
        // The common padding=1, output_padding=1 port, without a slice.
        let (k, t) = transposed_pair(Padding::symmetric(&[1, 1]), Some(vec![1, 1]), &[]);
        check(k, t, &[("conv-transpose-same-crop", Severity::High)]);
    }
}
