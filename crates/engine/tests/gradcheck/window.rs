//! Gradient checks: pooling, padding, upsampling, resizing.

use crate::{check_unary_op, no_params};
use model_ir::{
    DataLayout, Interpolation, NearestRounding, Op, PadMode, Padding, PoolKind, ResizeAxis,
    ResizeCoordinate, ResizeMode,
};

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
    // Dilated average pooling (ONNX AveragePool-19 `dilations`), padded, both divisors, ceil.
    for (cip, ceil) in [(false, false), (true, true), (false, true)] {
        let dilated_avg = Op::Pool {
            pool: PoolKind::Avg,
            rank: 2,
            pool_size: vec![2, 3],
            strides: vec![2, 1],
            dilation: vec![2, 2],
            padding: Padding::symmetric(&[1, 1]),
            layout: cf,
            count_include_pad: cip,
            ceil_mode: ceil,
        };
        check_unary_op(dilated_avg, &[1, 2, 6, 7], no_params, -1.0, 1.0);
    }
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

fn resize(
    axes: &[(usize, Option<usize>, Option<f64>)],
    mode: ResizeMode,
    coordinate: ResizeCoordinate,
    exclude_outside: bool,
    antialias: bool,
) -> Op {
    Op::Resize {
        axes: axes
            .iter()
            .map(|&(axis, size, scale)| ResizeAxis {
                axis,
                size,
                scale,
                roi: match coordinate {
                    ResizeCoordinate::TfCropAndResize(_) => (0.2, 0.9),
                    _ => (0.0, 1.0),
                },
            })
            .collect(),
        mode,
        coordinate,
        exclude_outside,
        antialias,
    }
}

#[test]
fn resize_every_mode_and_coordinate() {
    // Down on one axis (sizes), up by a non-integer scale on another, channels last; and a
    // resized channel axis, which the op allows like any other.
    let axes = [(1, Some(3), None), (2, None, Some(1.7))];
    let modes = [
        ResizeMode::Nearest(NearestRounding::RoundPreferCeil),
        ResizeMode::Linear,
        ResizeMode::Cubic(-0.75),
        ResizeMode::CubicTable {
            a: -0.5,
            entries: 1024,
        },
    ];
    let coords = [
        ResizeCoordinate::HalfPixel,
        ResizeCoordinate::HalfPixelSymmetric,
        ResizeCoordinate::PytorchHalfPixel,
        ResizeCoordinate::AlignCorners,
        ResizeCoordinate::Asymmetric,
        ResizeCoordinate::TfHalfPixelForNn,
        ResizeCoordinate::TfCropAndResize(0.5),
    ];
    for mode in modes {
        for coordinate in coords {
            for exclude in [false, true] {
                let op = resize(&axes, mode, coordinate, exclude, false);
                check_unary_op(op, &[2, 5, 3, 2], no_params, -1.0, 1.0);
            }
        }
    }
    for mode in [ResizeMode::Linear, ResizeMode::Cubic(-0.5)] {
        let op = resize(
            &[(1, Some(2), None), (3, Some(4), None)],
            mode,
            ResizeCoordinate::HalfPixel,
            true,
            true,
        );
        check_unary_op(op, &[2, 7, 2, 3], no_params, -1.0, 1.0);
    }
}
