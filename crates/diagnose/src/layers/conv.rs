//! Convolution padding: effective pads for the actual input size (same-padding asymmetry)
//! and the transposed-convolution crop; the window comparison pooling shares.

use catalogue::Id;
use model_ir::{DataLayout, Model, Node, Op, Padding};
use report::Severity;

use super::Ctx;
use crate::align::Pair;
use crate::findings::{Findings, ev, pair_label};
use crate::graph::{effective_transpose_crop, producer, show_shape};

/// Pads `(begin, end)` per spatial axis of a windowed layer, including a constant-zero Pad
/// layer right before it, for the spatial input sizes `sizes` (before that Pad).
pub(super) fn effective_pads(
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
pub(super) fn spatial_sizes(
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

pub(super) fn show_pads(p: &[(usize, usize)]) -> String {
    let v: Vec<String> = p.iter().map(|(b, e)| format!("{b}|{e}")).collect();
    format!("begin|end per axis {}", v.join(", "))
}

pub(super) fn torch_pad_code(p: &[(usize, usize)]) -> String {
    // F.pad lists the last axis first.
    let v: Vec<String> = p
        .iter()
        .rev()
        .flat_map(|(b, e)| [b.to_string(), e.to_string()])
        .collect();
    format!("F.pad(x, ({}))", v.join(", "))
}

/// Pads of both sides where they differ: (Keras, torch, same output size, input description).
pub(super) type PadDiff = (Vec<(usize, usize)>, Vec<(usize, usize)>, bool, String);

/// A windowed layer's padding rule, kernel, strides and dilation.
pub(super) type Window<'a> = (&'a Padding, &'a [usize], &'a [usize], &'a [usize]);

/// A convolution's padding rule, kernel, strides, dilation, rank and layout.
pub(super) type ConvAttrs = (
    Padding,
    Vec<usize>,
    Vec<usize>,
    Vec<usize>,
    usize,
    DataLayout,
);

pub(super) fn compare_windows(
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

pub(super) fn conv_padding(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
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
        out.title_item(
            Id::SamePaddingAsymmetric,
            "'same' padding is split differently",
            format!(
                "`{}` Keras {}, torch {}",
                p.keras.name,
                show_pads(&a),
                show_pads(&b)
            ),
        );
        out.add(
            Id::SamePaddingAsymmetric,
            Severity::High,
            2.0,
            vec![ev(what, show_pads(&a), show_pads(&b), label)],
            fix_t,
            format!("keras.layers.ZeroPadding2D({:?}) + padding='valid'", b),
        );
    } else {
        out.set_title(
            Id::ArchitectureMismatch,
            format!(
                "convolution padding at `{}` gives different output sizes (Keras {}, torch {})",
                p.keras.name,
                show_pads(&a),
                show_pads(&b)
            ),
        );
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
pub(super) fn conv_transpose_crop(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
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
        out.title_item(
            Id::ConvTransposeSameCrop,
            "transposed convolution output crop differs",
            format!("`{}` Keras {}, torch {}", p.keras.name, show(&a), show(&b)),
        );
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

#[cfg(test)]
mod tests {
    use model_ir::{Activation, DataLayout, Framework, Op, Padding};
    use report::Severity;

    use super::super::tests::check;
    use crate::testkit::*;

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
