//! Upsampling layers: interpolation mode and coordinate convention.

use catalogue::Id;
use model_ir::{DataLayout, Op};
use report::Severity;

use super::{Ctx, input_shape, nodes_of};
use crate::findings::{Findings, ev, pair_label};

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
pub(super) fn upsampling(c: &Ctx<'_>, out: &mut Findings) {
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
        out.title_item(
            Id::ResizeSemantics,
            "upsampling differs",
            format!("`{}` Keras {keras_text}, torch {torch_text}", k.name),
        );
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

#[cfg(test)]
mod tests {
    use model_ir::{DataLayout, Framework, Op};
    use report::Severity;

    use super::super::tests::check;
    use crate::testkit::*;

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
}
