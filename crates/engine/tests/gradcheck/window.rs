//! Gradient checks: pooling, padding, upsampling.

use crate::{check_unary_op, no_params};
use model_ir::{DataLayout, Interpolation, Op, PadMode, Padding, PoolKind};

#[allow(clippy::too_many_arguments)]
fn pool(
    kind: PoolKind,
    k: &[usize],
    s: &[usize],
    padding: Padding,
    layout: DataLayout,
    cip: bool,
    ceil: bool,
) -> Op {
    Op::Pool {
        pool: kind,
        rank: k.len(),
        pool_size: k.to_vec(),
        strides: s.to_vec(),
        dilation: vec![],
        padding,
        layout,
        count_include_pad: cip,
        ceil_mode: ceil,
    }
}

#[test]
fn pooling_variants() {
    let cl = DataLayout::ChannelsLast;
    let cf = DataLayout::ChannelsFirst;
    for kind in [PoolKind::Max, PoolKind::Avg] {
        check_unary_op(
            pool(kind, &[2, 2], &[], Padding::Valid, cl, false, false),
            &[2, 4, 5, 3],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(kind, &[3, 3], &[2, 2], Padding::SameUpper, cl, false, false),
            &[2, 5, 6, 2],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(
                kind,
                &[3, 3],
                &[2, 2],
                Padding::symmetric(&[1, 1]),
                cf,
                true,
                true,
            ),
            &[2, 2, 6, 5],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(kind, &[3], &[2], Padding::symmetric(&[1]), cf, false, true),
            &[2, 3, 6],
            no_params,
            -1.0,
            1.0,
        );
    }
    let dilated = Op::Pool {
        pool: PoolKind::Max,
        rank: 2,
        pool_size: vec![2, 2],
        strides: vec![1, 1],
        dilation: vec![2, 2],
        padding: Padding::Valid,
        layout: cf,
        count_include_pad: false,
        ceil_mode: false,
    };
    check_unary_op(dilated, &[1, 2, 5, 5], no_params, -1.0, 1.0);
}

#[test]
fn global_pooling() {
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (layout, keepdims) in [
            (DataLayout::ChannelsLast, false),
            (DataLayout::ChannelsFirst, true),
        ] {
            let op = Op::GlobalPool {
                pool: kind,
                rank: 2,
                layout,
                keepdims,
            };
            check_unary_op(op, &[2, 3, 4, 2], no_params, -1.0, 1.0);
        }
    }
}

#[test]
fn padding_modes() {
    for mode in [
        PadMode::Constant(0.5),
        PadMode::Reflect,
        PadMode::Edge,
        PadMode::Wrap,
    ] {
        let op = Op::Pad {
            rank: 2,
            begin: vec![1, 2],
            end: vec![2, 1],
            layout: DataLayout::ChannelsFirst,
            mode,
        };
        check_unary_op(op, &[2, 2, 3, 4], no_params, -1.0, 1.0);
    }
}

#[test]
fn upsampling_nearest_and_bilinear() {
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::BilinearAlignCorners,
    ] {
        let op = Op::UpSampling {
            rank: 2,
            size: vec![2, 3],
            interpolation,
            layout: DataLayout::ChannelsLast,
        };
        check_unary_op(op, &[2, 3, 2, 2], no_params, -1.0, 1.0);
    }
}

#[test]
fn upsampling_bilinear_align_corners_edge_sizes() {
    // A length-1 axis (all outputs read input 0) next to a length-4 axis, channels first.
    let op = Op::UpSampling {
        rank: 2,
        size: vec![3, 2],
        interpolation: Interpolation::BilinearAlignCorners,
        layout: DataLayout::ChannelsFirst,
    };
    check_unary_op(op, &[2, 2, 1, 4], no_params, -1.0, 1.0);
    let op = Op::UpSampling {
        rank: 1,
        size: vec![1],
        interpolation: Interpolation::BilinearAlignCorners,
        layout: DataLayout::ChannelsLast,
    };
    check_unary_op(op, &[2, 1, 3], no_params, -1.0, 1.0);
}
