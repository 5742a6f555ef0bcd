//! Pooling layers: padding (same vs symmetric) and the average-pooling divisor.

use catalogue::Id;
use model_ir::{Op, Padding, PoolKind};
use report::Severity;

use super::conv::{compare_windows, show_pads, torch_pad_code};
use super::{Ctx, nodes_of};
use crate::findings::{Findings, ev, pair_label};

pub(super) fn pooling(c: &Ctx<'_>, out: &mut Findings) {
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
            out.set_title(
                Id::ArchitectureMismatch,
                format!(
                    "pooling differs at `{}`: Keras {pool:?} {pool_size:?} stride {strides:?}, torch {tpool:?} {tsize:?} stride {tstr:?}",
                    k.name
                ),
            );
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
            out.title_item(
                Id::PoolingPadding,
                "pooling differs",
                format!(
                    "`{}` {kind} pooling padding (Keras {}, torch {})",
                    k.name,
                    show_pads(&a),
                    show_pads(&b)
                ),
            );
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
            out.title_item(
                Id::PoolingPadding,
                "pooling differs",
                format!(
                    "`{}` average divisor at the border (Keras {}, torch count_include_pad={})",
                    k.name,
                    if *kc {
                        "counts padding"
                    } else {
                        "valid elements only"
                    },
                    if *tc { "True" } else { "False" }
                ),
            );
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
            out.title_item(
                Id::PoolingPadding,
                "pooling differs",
                format!("`{}` ceil_mode (Keras {kceil}, torch {tceil})", k.name),
            );
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

#[cfg(test)]
mod tests {
    use model_ir::{DataLayout, Framework, Op, Padding, PoolKind};
    use report::Severity;

    use super::super::tests::check;
    use crate::testkit::*;

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
}
