//! Pooling layers: windowed and global max/average pooling.

use model_ir::{Op, PoolKind};
use serde_json::Value;

use super::{Converted, layout_of, padding_of, rank_of, unsupported_layer};
use crate::error::ErrorKind;
use crate::keras::config::Cfg;

/// `MaxPooling*` and `AveragePooling*`.
pub(super) fn pool(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let pool = if class.starts_with("Max") {
        PoolKind::Max
    } else {
        PoolKind::Avg
    };
    let pool_size = c.tuple("pool_size", rank)?;
    let strides = match c.get("strides") {
        None | Some(Value::Null) => pool_size.clone(),
        Some(v) => c.tuple_of("strides", v, rank)?,
    };
    Ok(Converted::unary(Op::Pool {
        pool,
        rank,
        pool_size,
        strides,
        dilation: vec![1; rank],
        padding: padding_of(c, false)?,
        layout: layout_of(c, notes)?,
        // tf.nn.avg_pool with 'SAME' divides by the number of real elements.
        count_include_pad: false,
        ceil_mode: false,
    }))
}

/// `GlobalAveragePooling*` and `GlobalMaxPooling*`.
pub(super) fn global_pool(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let pool = if class.starts_with("GlobalMax") {
        PoolKind::Max
    } else {
        PoolKind::Avg
    };
    Ok(Converted::unary(Op::GlobalPool {
        pool,
        rank,
        layout: layout_of(c, notes)?,
        keepdims: c.bool_or("keepdims", false, notes)?,
    }))
}
