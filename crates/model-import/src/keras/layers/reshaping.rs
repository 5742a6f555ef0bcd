//! Reshaping layers: `Flatten`, `Reshape`, `Permute`, `ZeroPadding*` and `UpSampling*`.

use model_ir::{DataLayout, Interpolation, Op, PadMode};
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

/// `UpSampling1D/2D/3D`.
pub(super) fn upsampling(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let size = c.tuple("size", rank)?;
    let interpolation = match c.get("interpolation").and_then(Value::as_str) {
        None | Some("nearest") => Interpolation::Nearest,
        Some("bilinear") => Interpolation::Bilinear,
        Some(other) => return Err(c.unsupported(format!("interpolation \"{other}\""))),
    };
    Ok(Converted::unary(Op::UpSampling {
        rank,
        size,
        interpolation,
        layout: layout_of(c, notes)?,
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
