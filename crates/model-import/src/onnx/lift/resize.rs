//! Upsampling: `Resize` and the deprecated `Upsample`, lifted where they equal Keras and torch
//! nearest or bilinear upsampling.

use model_ir::{DataLayout, Interpolation, Op};

use crate::onnx::value::is_one;

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["Resize"],
        &[
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "antialias=0",
            // Read only by the cubic and tf_crop_and_resize modes, which are refused.
            "cubic_coeff_a",
            "extrapolation_value",
            "exclude_outside=0",
            "keep_aspect_ratio_policy=stretch",
        ],
        |l, i| l.resize(i),
    );
    reg.add(&["Upsample"], &["mode", "scales"], |l, i| l.resize(i));
}

impl Lifter<'_> {
    fn resize(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let mode = a.string("mode")?.unwrap_or_else(|| "nearest".into());
        // The deprecated Upsample op has no coordinate attributes: `src = j / scale`, floor.
        let upsample = self.g.op(i) == "Upsample";
        let (coord, nearest_mode) = if upsample {
            ("asymmetric".to_string(), "floor".to_string())
        } else {
            (
                a.string("coordinate_transformation_mode")?
                    .unwrap_or_else(|| "half_pixel".into()),
                a.string("nearest_mode")?
                    .unwrap_or_else(|| "round_prefer_floor".into()),
            )
        };
        let interpolation = match mode.as_str() {
            // Checked against ⌊j / s⌋ below, once the factors are known.
            "nearest" => Interpolation::Nearest,
            "linear" | "bilinear" => match coord.as_str() {
                // With integer factors `half_pixel_symmetric` is `half_pixel`, and
                // `pytorch_half_pixel` differs only for a one-element output (both read 0).
                "half_pixel" | "pytorch_half_pixel" | "half_pixel_symmetric" => {
                    Interpolation::Bilinear
                }
                "align_corners" => Interpolation::BilinearAlignCorners,
                other => {
                    return Err(self.unsupported(
                        i,
                        format!(
                            "linear resize with coordinate_transformation_mode={other}; only half_pixel (torch align_corners=False) and align_corners (align_corners=True) lift"
                        ),
                    ));
                }
            },
            other => return Err(self.unsupported(i, format!("resize mode {other}"))),
        };
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let (Some(ins), Some(outs)) = (self.g.shape(&v), self.g.shape(&out)) else {
            return Err(self.unsupported(i, "resize of a value of unknown shape"));
        };
        let scales: Option<Vec<f64>> = match a.floats("scales")? {
            Some(s) => Some(s),
            None => {
                let k = if self.g.op(i) == "Upsample" || self.g.opset < 11 {
                    1
                } else {
                    2
                };
                self.g
                    .input(i, k)
                    .and_then(|s| self.g.konst(s))
                    .filter(|t| !t.is_empty())
                    .map(|t| t.to_f64().iter().copied().collect())
            }
        };
        let factors: Vec<f64> = match scales {
            Some(s) => s,
            None => ins
                .iter()
                .zip(&outs)
                .map(|(a, b)| match (a.known(), b.known()) {
                    (Some(x), Some(y)) if x > 0 => y as f64 / x as f64,
                    _ if a == b => 1.0,
                    _ => f64::NAN,
                })
                .collect(),
        };
        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x).unwrap_or(DataLayout::ChannelsFirst);
        let rank = ins.len();
        if factors.len() != rank || rank < 3 {
            return Err(self.unsupported(i, format!("resize scales {factors:?}")));
        }
        let (channel, spatial): (usize, Vec<usize>) = match layout {
            DataLayout::ChannelsFirst => (1, (2..rank).collect()),
            DataLayout::ChannelsLast => (rank - 1, (1..rank - 1).collect()),
        };
        let int = |f: f64| f.is_finite() && f >= 1.0 && f.fract() == 0.0;
        if !is_one(factors[0])
            || !is_one(factors[channel])
            || !spatial.iter().all(|&ax| int(factors[ax]))
        {
            return Err(self.unsupported(
                i,
                format!(
                    "resize scales {factors:?}: only integer upsampling of the spatial axes lifts"
                ),
            ));
        }
        if interpolation == Interpolation::Nearest {
            for &ax in &spatial {
                let n = ins[ax].known().and_then(|v| usize::try_from(v).ok());
                if let Err(why) = nearest_is_repeat(&coord, &nearest_mode, n, factors[ax] as usize)
                {
                    return Err(self.unsupported(
                        i,
                        format!(
                            "nearest resize with coordinate_transformation_mode={coord}, nearest_mode={nearest_mode}: {why}"
                        ),
                    ));
                }
            }
        }
        let op = Op::UpSampling {
            rank: spatial.len(),
            size: spatial.iter().map(|&ax| factors[ax] as usize).collect(),
            interpolation,
            layout,
        };
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
        self.set_layout(&out, Some(layout));
        Ok(())
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
