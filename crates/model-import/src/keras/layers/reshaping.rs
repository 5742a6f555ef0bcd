//! Reshaping layers: `Flatten`, `Reshape`, `Permute`, `ZeroPadding*`, `UpSampling*` and the
//! `Resizing` preprocessing layer.

use model_ir::{
    DataLayout, Interpolation, NearestRounding, Op, PadMode, ResizeAxis, ResizeCoordinate,
    ResizeMode,
};
use serde_json::Value;

use super::{Converted, layout_of, rank_of, unsupported_layer};
use crate::error::ErrorKind;
use crate::keras::config::{Cfg, show};

/// `Flatten`, after a transpose to channels-last for channels_first input.
pub(super) fn flatten(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let layout = layout_of(c, notes)?;
    let mut conv = Converted::unary(Op::Flatten {
        start_axis: 1,
        // keras/src/layers/reshaping/flatten.py transposes channels_first input to
        // channels_last before reshaping: the element order is always H, W, C.
        order: DataLayout::ChannelsLast,
    });
    if layout == DataLayout::ChannelsFirst {
        let rank = input.map(<[_]>::len).ok_or_else(|| {
            c.unsupported("channels_first Flatten whose input rank is unknown (no build_config)")
        })?;
        if rank > 2 {
            let mut perm = vec![0];
            perm.extend(2..rank);
            perm.push(1);
            conv.transpose_first = Some(perm);
        }
    }
    Ok(conv)
}

/// `Reshape`.
pub(super) fn reshape(c: &Cfg<'_>) -> Result<Converted, ErrorKind> {
    let v = c.req("target_shape")?;
    let target_shape = v
        .as_array()
        .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
        .ok_or_else(|| c.malformed(format!("target_shape {}", show(v))))?;
    Ok(Converted::unary(Op::Reshape { target_shape }))
}

/// `Permute` (1-based dims, batch axis excluded).
pub(super) fn permute(c: &Cfg<'_>) -> Result<Converted, ErrorKind> {
    let v = c.req("dims")?;
    let dims = v
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| c.malformed(format!("dims {}", show(v))))?;
    // Keras dims are 1-based and exclude the batch axis.
    let mut sorted = dims.clone();
    sorted.sort_unstable();
    if sorted != (1..=dims.len()).collect::<Vec<_>>() {
        return Err(c.malformed(format!(
            "dims {dims:?} are not a permutation of 1..={}",
            dims.len()
        )));
    }
    let mut perm = vec![0];
    perm.extend(dims);
    Ok(Converted::unary(Op::Permute { perm }))
}

/// `ZeroPadding1D/2D/3D`.
pub(super) fn zero_padding_layer(
    c: &Cfg<'_>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let v = c.req("padding")?;
    let (begin, end) = zero_padding(c, v, rank)?;
    Ok(Converted::unary(Op::Pad {
        rank,
        begin,
        end,
        layout: layout_of(c, notes)?,
        mode: PadMode::Constant(0.0),
    }))
}

/// `UpSampling1D/2D/3D`. `UpSampling2D` repeats for `nearest` and otherwise calls
/// `ops.image.resize` to `n·size` (`keras/src/layers/reshaping/up_sampling2d.py`), which on
/// the TensorFlow backend is `tf.image.resize(antialias=False)`: `bilinear` is the integer
/// half-pixel [`Interpolation::Bilinear`], `bicubic` the general resize of [`tf_resize`].
pub(super) fn upsampling(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let size = c.tuple("size", rank)?;
    let layout = layout_of(c, notes)?;
    let interpolation = match c.get("interpolation").and_then(Value::as_str) {
        None | Some("nearest") => Interpolation::Nearest,
        Some("bilinear") => Interpolation::Bilinear,
        Some(other) => {
            let (mode, coordinate, exclude_outside) = tf_resize(c, other, false)?;
            let axes = (0..rank)
                .map(|k| ResizeAxis {
                    axis: spatial_axis(layout, k),
                    size: None,
                    scale: Some(size[k] as f64),
                    roi: (0.0, 1.0),
                })
                .collect();
            return Ok(Converted::unary(Op::Resize {
                axes,
                mode,
                coordinate,
                exclude_outside,
                antialias: false,
            }));
        }
    };
    Ok(Converted::unary(Op::UpSampling {
        rank,
        size,
        interpolation,
        layout,
    }))
}

/// Axis `k` of the spatial axes of a rank-`2 + …` input.
fn spatial_axis(layout: DataLayout, k: usize) -> usize {
    match layout {
        DataLayout::ChannelsLast => 1 + k,
        DataLayout::ChannelsFirst => 2 + k,
    }
}

/// `tf.image.resize(method=…, antialias=…)` (TF2, half-pixel centres) as the ONNX resize
/// parameters (`tensorflow/core/kernels/image/resize_*_op.cc`, `scale_and_translate_op.cc`):
/// - `nearest`: `⌊(j + ½)·n/m⌋` clamped (`resize_nearest_neighbor`, half-pixel, with or
///   without antialias), ONNX `tf_half_pixel_for_nn` + `floor`;
/// - `bilinear`: half-pixel linear with clamped taps (`resize_bilinear`); with antialias the
///   triangle kernel widened by `n/m` when downsampling, taps outside the image dropped and
///   the rest renormalised (`scale_and_translate`, kernel `triangle`);
/// - `bicubic`: the Keys kernel with `a = −0.5`, taps outside the image dropped and the rest
///   renormalised (`resize_bicubic` with half-pixel centres, whose 1024-step coefficient
///   table rounds the ratio: [`ResizeMode::CubicTable`]; with antialias
///   `scale_and_translate`, kernel `keyscubic`, widened, exact).
///
/// `lanczos3`, `lanczos5` (kernels ONNX has no mode for) and `area` are refused.
fn tf_resize(
    c: &Cfg<'_>,
    interpolation: &str,
    antialias: bool,
) -> Result<(ResizeMode, ResizeCoordinate, bool), ErrorKind> {
    Ok(match interpolation {
        "nearest" => (
            ResizeMode::Nearest(NearestRounding::Floor),
            ResizeCoordinate::TfHalfPixelForNn,
            false,
        ),
        "bilinear" => (ResizeMode::Linear, ResizeCoordinate::HalfPixel, antialias),
        "bicubic" if antialias => (ResizeMode::Cubic(-0.5), ResizeCoordinate::HalfPixel, true),
        "bicubic" => (
            ResizeMode::CubicTable {
                a: -0.5,
                entries: 1024,
            },
            ResizeCoordinate::HalfPixel,
            true,
        ),
        other => {
            return Err(c.unsupported(format!(
                "interpolation \"{other}\" (nearest, bilinear and bicubic lift)"
            )));
        }
    })
}

/// `Resizing(height, width)` on the TensorFlow backend: `tf.image.resize` of the two spatial
/// axes to the fixed size (coordinate scale `size / n`), see [`tf_resize`]. The aspect-ratio
/// crop and pad are refused; `fill_mode` / `fill_value` act only with the pad.
pub(super) fn resizing(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let height = c.usize("height")?;
    let width = c.usize("width")?;
    if height == 0 || width == 0 {
        return Err(c.unsupported(format!("size ({height}, {width})")));
    }
    for key in ["crop_to_aspect_ratio", "pad_to_aspect_ratio"] {
        if c.bool_or(key, false, notes)? {
            return Err(c.unsupported(format!("{key}=True")));
        }
    }
    let antialias = c.bool_or("antialias", false, notes)?;
    let interpolation = match c.get("interpolation") {
        None => "bilinear",
        Some(v) => v
            .as_str()
            .ok_or_else(|| c.malformed(format!("interpolation {}", show(v))))?,
    };
    let layout = layout_of(c, notes)?;
    let (mode, coordinate, exclude_outside) = tf_resize(c, interpolation, antialias)?;
    let axes = [height, width]
        .iter()
        .enumerate()
        .map(|(k, &m)| ResizeAxis {
            axis: spatial_axis(layout, k),
            size: Some(m),
            scale: None,
            roi: (0.0, 1.0),
        })
        .collect();
    Ok(Converted::unary(Op::Resize {
        axes,
        mode,
        coordinate,
        exclude_outside,
        // Nearest ignores antialias in TensorFlow (`resize_nearest_neighbor` either way).
        antialias: antialias && !matches!(mode, ResizeMode::Nearest(_)),
    }))
}

/// ZeroPadding `padding`: an int, a list of `rank` ints, or a list of `rank` `[begin, end]` pairs.
fn zero_padding(
    c: &Cfg<'_>,
    v: &Value,
    rank: usize,
) -> Result<(Vec<usize>, Vec<usize>), ErrorKind> {
    let bad = || c.malformed(format!("padding {}", show(v)));
    let num = |x: &Value| {
        x.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad)
    };
    match v {
        Value::Array(items)
            if rank == 1 && items.len() == 2 && items.iter().all(Value::is_number) =>
        {
            Ok((vec![num(&items[0])?], vec![num(&items[1])?]))
        }
        Value::Array(items) if items.len() == rank => {
            let mut begin = Vec::new();
            let mut end = Vec::new();
            for it in items {
                match it {
                    Value::Array(pair) if pair.len() == 2 => {
                        begin.push(num(&pair[0])?);
                        end.push(num(&pair[1])?);
                    }
                    other => {
                        let p = num(other)?;
                        begin.push(p);
                        end.push(p);
                    }
                }
            }
            Ok((begin, end))
        }
        other => {
            let p = num(other)?;
            Ok((vec![p; rank], vec![p; rank]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padding_forms() {
        let map = serde_json::Map::new();
        let c = Cfg::new(&map, "p", "ZeroPadding2D");
        let v = serde_json::json!([[1, 0], [0, 2]]);
        assert_eq!(zero_padding(&c, &v, 2).ok(), Some((vec![1, 0], vec![0, 2])));
        let v = serde_json::json!(3);
        assert_eq!(zero_padding(&c, &v, 2).ok(), Some((vec![3, 3], vec![3, 3])));
        let v = serde_json::json!([1, 2]);
        assert_eq!(zero_padding(&c, &v, 1).ok(), Some((vec![1], vec![2])));
    }
}
