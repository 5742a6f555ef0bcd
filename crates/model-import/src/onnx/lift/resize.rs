//! `Resize` (opsets 10–19+) and the deprecated `Upsample` (7, 9), lifted exactly: onto
//! [`Op::UpSampling`] where they equal Keras and torch integer upsampling (the conventions
//! both frameworks share, which the diagnosis compares), and onto the general [`Op::Resize`]
//! (ONNX reference semantics, `onnx/reference/ops/op_resize.py`) for every other mode,
//! coordinate transformation, rounding, scale, size, axis subset, aspect-ratio policy, cubic
//! coefficient, `exclude_outside`, `antialias` and `tf_crop_and_resize` region.
//!
//! Opset differences: `Upsample` and `Resize-10` take `scales` (attribute in Upsample-7,
//! input 1 otherwise) and have no coordinate attribute: `x = j / scale` (asymmetric) with
//! `⌊x⌋` for nearest, which is what ONNX Runtime computes when upsampling; their nearest
//! downsampling (ONNX Runtime rounds up there, the spec says nothing) is refused. From
//! Resize-11 on, `roi`, `scales`, `sizes` are inputs 1–3 (an empty tensor is absent);
//! `tf_half_pixel_for_nn` exists only in opsets 11–12, `antialias`, `axes` and
//! `keep_aspect_ratio_policy` from 18, `half_pixel_symmetric` from 19.

use model_ir::{
    DataLayout, Interpolation, NearestRounding, Op, ResizeAxis, ResizeCoordinate, ResizeMode,
};

use crate::onnx::value::is_one;

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["Resize"],
        &[
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "antialias",
            "cubic_coeff_a",
            "extrapolation_value",
            "exclude_outside",
            "keep_aspect_ratio_policy",
            "axes",
        ],
        |l, i| l.resize(i),
    );
    reg.add(&["Upsample"], &["mode", "scales"], |l, i| l.resize(i));
}

/// Scales or sizes, one per resized axis.
enum Target {
    Scales(Vec<f64>),
    Sizes(Vec<i64>),
}

impl Lifter<'_> {
    fn resize(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let upsample = self.g.op(i) == "Upsample";
        let opset = self.g.opset;
        // Upsample and Resize-10: scales only, asymmetric coordinates, floor for nearest.
        let legacy = upsample || opset < 11;
        let mode_name = a.string("mode")?.unwrap_or_else(|| "nearest".into());
        let (coord_name, nearest_name) = if legacy {
            ("asymmetric".to_string(), "floor".to_string())
        } else {
            (
                a.string("coordinate_transformation_mode")?
                    .unwrap_or_else(|| "half_pixel".into()),
                a.string("nearest_mode")?
                    .unwrap_or_else(|| "round_prefer_floor".into()),
            )
        };
        let flag = |name: &str| -> R<bool> {
            match a.int(name)? {
                None | Some(0) => Ok(false),
                Some(1) => Ok(true),
                Some(v) => Err(self.unsupported(i, format!("{name}={v} (0 or 1 expected)"))),
            }
        };
        let antialias = flag("antialias")?;
        let exclude_outside = flag("exclude_outside")?;
        let cubic_a = a.float("cubic_coeff_a")?.unwrap_or(-0.75);
        let extrapolation = a.float("extrapolation_value")?.unwrap_or(0.0);
        let policy = a
            .string("keep_aspect_ratio_policy")?
            .unwrap_or_else(|| "stretch".into());

        let rounding = match nearest_name.as_str() {
            "round_prefer_floor" => NearestRounding::RoundPreferFloor,
            "round_prefer_ceil" => NearestRounding::RoundPreferCeil,
            "floor" => NearestRounding::Floor,
            "ceil" => NearestRounding::Ceil,
            other => return Err(self.unsupported(i, format!("nearest_mode={other}"))),
        };
        let mode = match mode_name.as_str() {
            "nearest" if antialias => {
                return Err(self.unsupported(
                    i,
                    "antialias=1 with mode=nearest (the spec defines antialias for linear and cubic only)",
                ));
            }
            "nearest" => ResizeMode::Nearest(rounding),
            "linear" => ResizeMode::Linear,
            "bilinear" if upsample => ResizeMode::Linear,
            "cubic" if !legacy => {
                if !cubic_a.is_finite() {
                    return Err(self.unsupported(i, format!("cubic_coeff_a={cubic_a}")));
                }
                ResizeMode::Cubic(cubic_a)
            }
            other => return Err(self.unsupported(i, format!("mode={other}"))),
        };
        let coordinate = match coord_name.as_str() {
            "half_pixel" => ResizeCoordinate::HalfPixel,
            "half_pixel_symmetric" if opset >= 19 => ResizeCoordinate::HalfPixelSymmetric,
            "pytorch_half_pixel" => ResizeCoordinate::PytorchHalfPixel,
            "align_corners" => ResizeCoordinate::AlignCorners,
            "asymmetric" => ResizeCoordinate::Asymmetric,
            "tf_half_pixel_for_nn" if opset < 13 => ResizeCoordinate::TfHalfPixelForNn,
            "tf_crop_and_resize" => {
                if extrapolation.is_nan() {
                    return Err(self.unsupported(i, "extrapolation_value=NaN"));
                }
                ResizeCoordinate::TfCropAndResize(extrapolation)
            }
            other => {
                return Err(self.unsupported(
                    i,
                    format!("coordinate_transformation_mode={other} (opset {opset})"),
                ));
            }
        };

        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let Some(ins) = self.g.shape(&v) else {
            return Err(self.unsupported(i, "resize of a value of unknown rank"));
        };
        let rank = ins.len();
        let known = |ax: usize| ins[ax].known().and_then(|v| usize::try_from(v).ok());

        // The resized axes (Resize-18 `axes`; every axis otherwise).
        let axes: Vec<usize> = match a.ints("axes")? {
            Some(list) if !upsample && opset >= 18 => {
                let mut axes = Vec::new();
                for &ax in &list {
                    let p = if ax < 0 { ax + rank as i64 } else { ax };
                    let p = usize::try_from(p)
                        .ok()
                        .filter(|&p| p < rank && !axes.contains(&p))
                        .ok_or_else(|| {
                            self.unsupported(i, format!("axes={list:?} for a rank-{rank} input"))
                        })?;
                    axes.push(p);
                }
                axes
            }
            Some(list) => {
                return Err(self.unsupported(i, format!("axes={list:?} before opset 18")));
            }
            None => (0..rank).collect(),
        };

        let target = self.resize_target(i, &a, upsample, legacy)?;
        let count = match &target {
            Target::Scales(s) => s.len(),
            Target::Sizes(s) => s.len(),
        };
        if count != axes.len() {
            return Err(self.unsupported(
                i,
                format!(
                    "{count} scales/sizes for {} resized axes of a rank-{rank} input",
                    axes.len()
                ),
            ));
        }

        // The region of interest, read only by tf_crop_and_resize.
        let roi: Vec<(f64, f64)> = if matches!(coordinate, ResizeCoordinate::TfCropAndResize(_)) {
            let t = self
                .g
                .input(i, 1)
                .and_then(|r| self.g.konst(r))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    self.unsupported(
                        i,
                        "coordinate_transformation_mode=tf_crop_and_resize without a constant roi",
                    )
                })?;
            let r: Vec<f64> = t.to_f64().iter().copied().collect();
            if r.len() != 2 * axes.len() || r.iter().any(|v| !v.is_finite()) {
                return Err(
                    self.unsupported(i, format!("roi={r:?} for {} resized axes", axes.len()))
                );
            }
            (0..axes.len()).map(|k| (r[k], r[axes.len() + k])).collect()
        } else {
            vec![(0.0, 1.0); axes.len()]
        };

        // Per axis: output length (None: ⌊n·scale⌋) and coordinate scale (None: size / n).
        let mut spec: Vec<(Option<usize>, Option<f64>)> = Vec::new();
        match &target {
            Target::Scales(scales) => {
                for (&s, &ax) in scales.iter().zip(&axes) {
                    if !(s.is_finite() && s > 0.0) {
                        return Err(self.unsupported(i, format!("scales={scales:?}")));
                    }
                    if legacy && matches!(mode, ResizeMode::Nearest(_)) && s < 1.0 {
                        return Err(self.unsupported(
                            i,
                            format!(
                                "nearest scales={scales:?} downsample axis {ax}: {} (opset {opset}) does not define its rounding",
                                self.g.op(i)
                            ),
                        ));
                    }
                    spec.push((None, Some(s)));
                }
            }
            Target::Sizes(sizes) => {
                let mut lens = Vec::new();
                for &m in sizes {
                    let m = usize::try_from(m)
                        .ok()
                        .filter(|&m| m > 0)
                        .ok_or_else(|| self.unsupported(i, format!("sizes={sizes:?}")))?;
                    lens.push(m);
                }
                match policy.as_str() {
                    "stretch" => spec.extend(lens.iter().map(|&m| (Some(m), None))),
                    "not_larger" | "not_smaller" => {
                        let mut ratios = Vec::new();
                        for (&m, &ax) in lens.iter().zip(&axes) {
                            let n = known(ax).filter(|&n| n > 0).ok_or_else(|| {
                                self.unsupported(
                                    i,
                                    format!(
                                        "keep_aspect_ratio_policy={policy} on axis {ax} of unknown length"
                                    ),
                                )
                            })?;
                            ratios.push((m as f64 / n as f64, n));
                        }
                        let pick = ratios.iter().map(|r| r.0);
                        let s = if policy == "not_larger" {
                            pick.fold(f64::INFINITY, f64::min)
                        } else {
                            pick.fold(f64::NEG_INFINITY, f64::max)
                        };
                        for &(_, n) in &ratios {
                            // The reference's round_half_up, int(x + 0.5).
                            let m = (s * n as f64 + 0.5).floor() as usize;
                            if m == 0 {
                                return Err(self.unsupported(
                                    i,
                                    format!("sizes={sizes:?} with keep_aspect_ratio_policy={policy} give an empty axis"),
                                ));
                            }
                            spec.push((Some(m), Some(s)));
                        }
                    }
                    other => {
                        return Err(
                            self.unsupported(i, format!("keep_aspect_ratio_policy={other}"))
                        );
                    }
                }
            }
        }

        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x);
        let class = self.g.op(i).to_string();
        let factors: Option<Vec<f64>> = (axes.len() == rank)
            .then(|| {
                spec.iter()
                    .enumerate()
                    .map(|(ax, &(m, s))| match (m, s) {
                        (None, Some(s)) => Some(s),
                        (Some(m), None) => known(ax).map(|n| m as f64 / n as f64),
                        _ => None,
                    })
                    .collect()
            })
            .flatten();
        let plain = !antialias
            && !exclude_outside
            && !matches!(coordinate, ResizeCoordinate::TfCropAndResize(_))
            && policy == "stretch";
        if let (true, Some(f)) = (plain, factors.as_ref())
            && let Some(op) = self.as_upsampling(
                mode,
                &coord_name,
                &nearest_name,
                f,
                &ins.iter().map(|d| d.known()).collect::<Vec<_>>(),
                layout.unwrap_or(DataLayout::ChannelsFirst),
            )
        {
            self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
            self.set_layout(&out, layout.or(Some(DataLayout::ChannelsFirst)));
            return Ok(());
        }

        // Axes the reference skips as identities (scale 1, same length, whole region).
        // A scale within 1e-12 above 1 keeps every length below 10¹² (⌊n·s⌋ = n), and the
        // reference treats it as 1 (`math.isclose`).
        let unit = |s: f64| s >= 1.0 && is_one(s);
        let mut resized = Vec::new();
        for ((&ax, &(size, scale)), &roi) in axes.iter().zip(&spec).zip(&roi) {
            let whole = roi.0 == 0.0 && is_one(roi.1);
            let same = match (size, scale) {
                (None, Some(s)) => unit(s),
                (Some(m), None) => known(ax) == Some(m),
                (Some(m), Some(s)) => known(ax) == Some(m) && unit(s),
                (None, None) => false,
            };
            if whole && same {
                continue;
            }
            resized.push(ResizeAxis {
                axis: ax,
                size,
                scale,
                roi,
            });
        }
        let op = Op::Resize {
            axes: resized,
            mode,
            coordinate,
            exclude_outside,
            antialias,
        };
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// The scales or sizes of node `i`, one per resized axis.
    fn resize_target(
        &self,
        i: usize,
        a: &crate::onnx::decode::Attrs<'_>,
        upsample: bool,
        legacy: bool,
    ) -> R<Target> {
        if upsample && self.g.opset < 9 {
            return match a.floats("scales")? {
                Some(s) => Ok(Target::Scales(s)),
                None => Err(self.unsupported(i, "Upsample without scales")),
            };
        }
        let read = |k: usize, what: &str| -> R<Option<Vec<f64>>> {
            match self.g.input(i, k) {
                None => Ok(None),
                Some(v) => match self.g.konst(v) {
                    Some(t) if t.is_empty() => Ok(None),
                    Some(t) => Ok(Some(t.to_f64().iter().copied().collect())),
                    None => Err(self.unsupported(i, format!("{what} (`{v}`) is not a constant"))),
                },
            }
        };
        if legacy {
            return match read(1, "scales")? {
                Some(s) => Ok(Target::Scales(s)),
                None => Err(self.unsupported(i, "no scales")),
            };
        }
        let scales = read(2, "scales")?;
        let sizes = match self.g.input(i, 3) {
            None => None,
            Some(v) => match self.g.konst(v) {
                Some(t) if t.is_empty() => None,
                Some(t) => Some(t.to_i64().iter().copied().collect::<Vec<i64>>()),
                None => return Err(self.unsupported(i, format!("sizes (`{v}`) is not a constant"))),
            },
        };
        match (scales, sizes) {
            (Some(s), None) => Ok(Target::Scales(s)),
            (None, Some(s)) => Ok(Target::Sizes(s)),
            (Some(_), Some(_)) => {
                Err(self.unsupported(i, "both scales and sizes are given (the spec allows one)"))
            }
            (None, None) => Err(self.unsupported(i, "neither scales nor sizes is given")),
        }
    }

    /// The integer-factor [`Op::UpSampling`] equal to this resize, when there is one: the
    /// batch and channel factors 1, the spatial ones integers, nearest reading `⌊j/s⌋`, linear
    /// with half-pixel (`half_pixel_symmetric` and `pytorch_half_pixel` coincide with it for
    /// integer factors ≥ 1: the output is never one element unless the input is) or aligned
    /// corners.
    fn as_upsampling(
        &self,
        mode: ResizeMode,
        coord: &str,
        nearest_mode: &str,
        factors: &[f64],
        ins: &[Option<i64>],
        layout: DataLayout,
    ) -> Option<Op> {
        let rank = ins.len();
        if factors.len() != rank || rank < 3 {
            return None;
        }
        let (channel, spatial): (usize, Vec<usize>) = match layout {
            DataLayout::ChannelsFirst => (1, (2..rank).collect()),
            DataLayout::ChannelsLast => (rank - 1, (1..rank - 1).collect()),
        };
        let int = |f: f64| f.is_finite() && f >= 1.0 && f.fract() == 0.0;
        let unit = |s: f64| s >= 1.0 && is_one(s);
        if !unit(factors[0])
            || !unit(factors[channel])
            || !spatial.iter().all(|&ax| int(factors[ax]))
        {
            return None;
        }
        let interpolation = match mode {
            ResizeMode::Nearest(_) => {
                for &ax in &spatial {
                    let n = ins[ax].and_then(|v| usize::try_from(v).ok());
                    nearest_is_repeat(coord, nearest_mode, n, factors[ax] as usize).ok()?;
                }
                Interpolation::Nearest
            }
            ResizeMode::Linear => match coord {
                "half_pixel" | "pytorch_half_pixel" | "half_pixel_symmetric" => {
                    Interpolation::Bilinear
                }
                "align_corners" => Interpolation::BilinearAlignCorners,
                _ => return None,
            },
            ResizeMode::Cubic(_) | ResizeMode::CubicTable { .. } => return None,
        };
        Some(Op::UpSampling {
            rank: spatial.len(),
            size: spatial.iter().map(|&ax| factors[ax] as usize).collect(),
            interpolation,
            layout,
        })
    }
}

/// Whether ONNX nearest resizing by the integer factor `s` reads input `⌊j / s⌋` for every
/// output `j` (the IR's `Interpolation::Nearest`, which every Keras and torch nearest
/// upsampling gives), along an axis of length `n` (`None`: unknown). The mapping follows the
/// ONNX `Resize` reference: the coordinate transformation, then `nearest_mode` rounding,
/// clamped to the input.
fn nearest_is_repeat(
    coord: &str,
    nearest_mode: &str,
    n: Option<usize>,
    s: usize,
) -> Result<(), String> {
    let n = match (coord, n) {
        ("align_corners", None) => {
            return Err("the axis length is unknown, so the sampled positions are too".into());
        }
        ("align_corners", Some(n)) => n,
        // The other transformations are `j/s` plus a constant: the pattern repeats every `s`
        // outputs, so the first, two inner and the last (clamped) period decide.
        (_, n) => n.map_or(4, |n| n.min(4)),
    };
    let out = n
        .checked_mul(s)
        .filter(|&o| o <= 1 << 20)
        .ok_or_else(|| format!("a length-{n} axis upsampled ×{s} is too long to check"))?;
    for j in 0..out {
        let (jf, sf) = (j as f64, s as f64);
        let x = match coord {
            "half_pixel" | "half_pixel_symmetric" => (jf + 0.5) / sf - 0.5,
            "pytorch_half_pixel" if out > 1 => (jf + 0.5) / sf - 0.5,
            "pytorch_half_pixel" => 0.0,
            "asymmetric" => jf / sf,
            "tf_half_pixel_for_nn" => (jf + 0.5) / sf,
            "align_corners" if out > 1 => jf * (n - 1) as f64 / (out - 1) as f64,
            "align_corners" => 0.0,
            other => {
                return Err(format!(
                    "coordinate_transformation_mode={other} does not lift"
                ));
            }
        };
        let f = x.floor();
        // Exact halves, allowing for the round-off of the divisions above.
        let half = (x - f - 0.5).abs() <= 1e-9;
        let r = match nearest_mode {
            "round_prefer_floor" if half => f,
            "round_prefer_ceil" if half => f + 1.0,
            "round_prefer_floor" | "round_prefer_ceil" => x.round(),
            "floor" => f,
            "ceil" => x.ceil(),
            other => return Err(format!("nearest_mode={other} does not lift")),
        };
        let i = (r.max(0.0) as usize).min(n - 1);
        if i != j / s {
            return Err(format!(
                "output {j} of a length-{n} axis upsampled ×{s} reads input {i}, not {} as Keras and torch nearest upsampling do",
                j / s
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::nearest_is_repeat;

    #[test]
    fn nearest_conventions_that_equal_repeat_for_integer_factors() {
        for s in 1..=4 {
            for n in [Some(1), Some(3), Some(5), None] {
                // torch 'nearest' (asymmetric, floor) and the ONNX defaults.
                assert!(nearest_is_repeat("asymmetric", "floor", n, s).is_ok());
                assert!(nearest_is_repeat("half_pixel", "round_prefer_floor", n, s).is_ok());
                assert!(nearest_is_repeat("pytorch_half_pixel", "round_prefer_ceil", n, s).is_ok());
                assert!(nearest_is_repeat("tf_half_pixel_for_nn", "floor", n, s).is_ok());
            }
        }
        // asymmetric with rounding reads j/s rounded: output 1 of ×2 reads input 1.
        let e = nearest_is_repeat("asymmetric", "round_prefer_ceil", Some(3), 2).unwrap_err();
        assert!(e.contains("output 1") && e.contains("reads input 1"), "{e}");
        assert!(nearest_is_repeat("asymmetric", "round_prefer_floor", Some(3), 2).is_ok());
        assert!(nearest_is_repeat("asymmetric", "round_prefer_floor", Some(3), 3).is_err());
        // align_corners: src = j·(n − 1)/(n·s − 1); rounding happens to give ⌊j/s⌋ for ×2,
        // not for ×3 of five (output 2 reads round(4/7) = 1).
        assert!(nearest_is_repeat("align_corners", "round_prefer_floor", Some(4), 2).is_ok());
        assert!(nearest_is_repeat("align_corners", "round_prefer_floor", Some(5), 3).is_err());
        assert!(nearest_is_repeat("align_corners", "floor", None, 2).is_err());
        assert!(nearest_is_repeat("align_corners", "floor", Some(1), 2).is_ok());
        assert!(nearest_is_repeat("tf_crop_and_resize", "floor", Some(3), 2).is_err());
        assert!(nearest_is_repeat("half_pixel", "nearest", Some(3), 2).is_err());
    }
}
