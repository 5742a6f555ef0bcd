//! Upsampling layers: interpolation mode and coordinate convention.

use catalogue::Id;
use model_ir::{DataLayout, NearestRounding, Op, ResizeAxis, ResizeCoordinate, ResizeMode};
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

/// The sampling of an [`Op::Resize`] in words.
fn describe_resize(op: &Op) -> String {
    let Op::Resize {
        mode,
        coordinate,
        exclude_outside,
        antialias,
        ..
    } = op
    else {
        return String::new();
    };
    let mode = match mode {
        ResizeMode::Nearest(r) => format!("nearest ({r:?})"),
        ResizeMode::Linear => "linear".into(),
        ResizeMode::Cubic(a) => format!("cubic a={a}"),
        ResizeMode::CubicTable { a, entries } => {
            format!("cubic a={a} (ratio rounded to 1/{entries})")
        }
    };
    let mut s = format!("{mode}, {coordinate:?}");
    if *exclude_outside {
        s.push_str(", taps outside dropped");
    }
    if *antialias {
        s.push_str(", antialiased");
    }
    s
}

/// The torch call computing the sampling of a Keras-side resize, when torch has one.
fn torch_equivalent(op: &Op) -> Option<&'static str> {
    let Op::Resize {
        mode,
        coordinate,
        antialias,
        ..
    } = op
    else {
        return None;
    };
    Some(match (mode, coordinate, antialias) {
        (ResizeMode::Linear, ResizeCoordinate::HalfPixel, false) => {
            "F.interpolate(x, size=…, mode='bilinear', align_corners=False)"
        }
        (ResizeMode::Linear, ResizeCoordinate::HalfPixel, true) => {
            "F.interpolate(x, size=…, mode='bilinear', align_corners=False, antialias=True)"
        }
        (
            ResizeMode::Nearest(NearestRounding::Floor),
            ResizeCoordinate::TfHalfPixelForNn,
            false,
        ) => "F.interpolate(x, size=…, mode='nearest-exact')",
        _ => return None,
    })
}

/// Resizes (`Op::Resize`, e.g. Keras `Resizing` or `UpSampling2D(interpolation='bicubic')`,
/// torch `F.interpolate` to a size) paired in graph order: the taps each side reads along
/// every resized axis, for the Keras side's input lengths, must be the same (they are
/// compared, not the parameter names, since different conventions can coincide). Pairs
/// where one side is an integer [`Op::UpSampling`] are left to [`upsampling`].
pub(super) fn resizes(c: &Ctx<'_>, out: &mut Findings) {
    let is_resize = |op: &Op| matches!(op, Op::Resize { .. });
    let (kr, tr) = (nodes_of(c.keras, is_resize), nodes_of(c.torch, is_resize));
    if kr.len() != tr.len() {
        return;
    }
    for (k, t) in kr.iter().zip(&tr) {
        let (Op::Resize { axes: ka, .. }, Op::Resize { axes: ta, .. }) = (&k.op, &t.op) else {
            continue;
        };
        if ka.len() != ta.len() {
            continue;
        }
        let shape = input_shape(c.kshapes, k);
        let mut differs = false;
        let mut known = true;
        for (a, b) in ka.iter().zip(ta) {
            let Some(n) = shape.and_then(|s| s.get(a.axis).copied().flatten()) else {
                known = false;
                continue;
            };
            match (taps_of(&k.op, a, n), taps_of(&t.op, b, n)) {
                (Some(x), Some(y)) => differs |= !same_taps(&x, &y),
                _ => known = false,
            }
        }
        if !known {
            // Unknown lengths: compare the parameters.
            let strip = |op: &Op| match op {
                Op::Resize {
                    mode,
                    coordinate,
                    exclude_outside,
                    antialias,
                    ..
                } => Some((*mode, *coordinate, *exclude_outside, *antialias)),
                _ => None,
            };
            differs |= strip(&k.op) != strip(&t.op);
        }
        if !differs {
            continue;
        }
        let keras_text = describe_resize(&k.op);
        let torch_text = describe_resize(&t.op);
        let torch_fix = match torch_equivalent(&k.op) {
            Some(call) => format!("{call}  # {keras_text}, as Keras"),
            None => format!(
                "no F.interpolate mode samples as Keras does ({keras_text}); resize on the Keras side instead, or accept the difference"
            ),
        };
        out.title_item(
            Id::ResizeSemantics,
            "resizing differs",
            format!("`{}` Keras {keras_text}, torch {torch_text}", k.name),
        );
        out.add(
            Id::ResizeSemantics,
            Severity::High,
            1.0,
            vec![ev(
                "resize sampling",
                keras_text,
                torch_text,
                pair_label(&k.name, &t.name),
            )],
            torch_fix,
            "nothing to change on this side".to_string(),
        );
    }
}

/// The taps of one resized axis of input length `n` (`None`: the length does not resize).
fn taps_of(op: &Op, a: &ResizeAxis, n: usize) -> Option<engine::ResizeTaps> {
    let Op::Resize {
        mode,
        coordinate,
        exclude_outside,
        antialias,
        ..
    } = op
    else {
        return None;
    };
    if n == 0 {
        return None;
    }
    let (m, s) = match (a.size, a.scale) {
        (Some(m), Some(s)) => (m, s),
        (Some(m), None) => (m, m as f64 / n as f64),
        (None, Some(s)) => ((s * n as f64).floor() as usize, s),
        (None, None) => return None,
    };
    if m == 0 || m > 1 << 16 {
        return None;
    }
    Some(engine::resize_taps(
        n,
        m,
        s,
        a.roi,
        *mode,
        *coordinate,
        *exclude_outside,
        *antialias,
    ))
}

/// Whether two tap lists compute the same map (weights per input index within 1e-9).
fn same_taps(x: &engine::ResizeTaps, y: &engine::ResizeTaps) -> bool {
    let dense = |t: &Option<Vec<(usize, f64)>>| {
        let mut m = std::collections::BTreeMap::new();
        for &(i, w) in t.iter().flatten() {
            *m.entry(i).or_insert(0.0) += w;
        }
        m
    };
    x.len() == y.len()
        && x.iter().zip(y).all(|(a, b)| {
            if a.is_none() != b.is_none() {
                return false;
            }
            let (da, db) = (dense(a), dense(b));
            da.keys().chain(db.keys()).all(|i| {
                (da.get(i).copied().unwrap_or(0.0) - db.get(i).copied().unwrap_or(0.0)).abs()
                    <= 1e-9
            })
        })
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

    fn resize_pair(
        keras: (model_ir::ResizeMode, model_ir::ResizeCoordinate),
        torch: (model_ir::ResizeMode, model_ir::ResizeCoordinate),
    ) -> (model_ir::Model, model_ir::Model) {
        let op = |axes: [usize; 2], (mode, coordinate)| Op::Resize {
            axes: axes
                .iter()
                .map(|&axis| model_ir::ResizeAxis {
                    axis,
                    size: Some(3),
                    scale: None,
                    roi: (0.0, 1.0),
                })
                .collect(),
            mode,
            coordinate,
            exclude_outside: false,
            antialias: false,
        };
        let k = model(
            Framework::Keras,
            &[5, 5, 2],
            vec![node(Framework::Keras, "rs", op([1, 2], keras), "x", vec![])],
        );
        let t = model(
            Framework::Torch,
            &[2, 5, 5],
            vec![node(Framework::Torch, "rs", op([2, 3], torch), "x", vec![])],
        );
        (k, t)
    }

    #[test]
    fn resizes_compare_their_taps() {
        use model_ir::{NearestRounding, ResizeCoordinate as C, ResizeMode as M};
        let tf_bilinear = (M::Linear, C::HalfPixel);
        check_pair(resize_pair(tf_bilinear, tf_bilinear), &[]);
        // TF2 nearest ⌊(j + ½)·n/m⌋ is ONNX half_pixel with round_prefer_ceil (torch
        // 'nearest-exact'): different names, the same taps.
        let tf_nearest = (M::Nearest(NearestRounding::Floor), C::TfHalfPixelForNn);
        let exact = (M::Nearest(NearestRounding::RoundPreferCeil), C::HalfPixel);
        check_pair(resize_pair(tf_nearest, exact), &[]);
        // Keras Resizing (half-pixel) against torch align_corners=True.
        let (k, t) = resize_pair(tf_bilinear, (M::Linear, C::AlignCorners));
        let d = run(k, t);
        assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
        let f = &d.findings[0];
        assert_eq!(
            (f.id.as_str(), f.severity),
            ("resize-semantics", Severity::High)
        );
        assert!(
            f.evidence[0].keras.contains("HalfPixel"),
            "{:?}",
            f.evidence
        );
        assert!(
            f.evidence[0].torch.contains("AlignCorners"),
            "{:?}",
            f.evidence
        );
        assert!(
            f.fix.torch.contains("mode='bilinear', align_corners=False"),
            "{}",
            f.fix.torch
        );
    }

    fn check_pair(p: (model_ir::Model, model_ir::Model), want: &[(&str, Severity)]) {
        check(p.0, p.1, want);
    }
}
