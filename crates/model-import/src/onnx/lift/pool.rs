//! Pooling and reductions: `MaxPool`/`AveragePool`, the global pools and `Reduce*`.

use model_ir::{DataLayout, Op, Padding, PoolKind, ReduceKind};

use crate::onnx::eval::axes_of;
use crate::onnx::value::{Val, norm_axis};

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["MaxPool"],
        &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ],
        |l, i| l.pool(i),
    );
    reg.add(
        &["AveragePool"],
        &[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ],
        |l, i| l.pool(i),
    );
    reg.add(&["GlobalAveragePool", "GlobalMaxPool"], &[], |l, i| {
        l.global_pool(i)
    });
    reg.add(
        &["ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"],
        &["axes", "keepdims", "noop_with_empty_axes"],
        |l, i| l.reduce(i),
    );
}

impl Lifter<'_> {
    /// `MaxPool` / `AveragePool`. MaxPool's `Indices` output is the engine's argmax output
    /// (row-major flat index, `storage_order=0`); for `storage_order=1` (column-major spatial
    /// index) the pooling runs on the input with its spatial axes reversed, whose row-major
    /// index is the column-major one, and both outputs are permuted back.
    fn pool(&mut self, i: usize) -> R<()> {
        let indices = self
            .g
            .output(i, 1)
            .filter(|o| !self.g.consumers(o).is_empty() || self.g.is_output(o))
            .map(str::to_string);
        let x = self.rt(i, 0)?;
        let v = self.g.input(i, 0).unwrap_or_default();
        let rank = self
            .rank(v)
            .and_then(|r| r.checked_sub(2))
            .ok_or_else(|| self.unsupported(i, "pooling of a value of unknown rank"))?;
        let a = self.attrs(i);
        let kernel = a
            .ints("kernel_shape")?
            .ok_or_else(|| self.malformed(i, "no kernel_shape"))?;
        if kernel.len() != rank || kernel.iter().any(|&k| k < 1) {
            return Err(self.malformed(i, format!("kernel_shape {kernel:?}")));
        }
        let pool = if self.g.op(i) == "MaxPool" {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        if pool == PoolKind::Avg && indices.is_some() {
            return Err(self.malformed(i, "AveragePool has one output"));
        }
        // storage_order only says how `Indices` are numbered.
        let column_major = match a.int_or("storage_order", 0)? {
            0 => false,
            1 => indices.is_some(),
            other => return Err(self.malformed(i, format!("storage_order={other}"))),
        };
        let mut pool_size: Vec<usize> = kernel.into_iter().map(|k| k as usize).collect();
        let mut strides = self.spatial_attr(i, "strides", rank)?;
        let mut dilation = self.spatial_attr(i, "dilations", rank)?;
        let mut padding = self.padding(i, rank)?;
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        // Spatial axes reversed (its own inverse).
        let perm: Vec<usize> = (0..2).chain((2..rank + 2).rev()).collect();
        let (x, outs) = if column_major {
            pool_size.reverse();
            strides.reverse();
            dilation.reverse();
            if let Padding::Explicit { begin, end } = &mut padding {
                begin.reverse();
                end.reverse();
            }
            let xt = format!("{out}::spatial_reversed_input");
            let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
            self.emit_named(
                i,
                &format!("{base}.reverse_spatial"),
                Op::Permute { perm: perm.clone() },
                vec![x],
                vec![xt.clone()],
                Vec::new(),
                "MaxPool (storage_order=1)",
            )?;
            let outs = vec![
                format!("{out}::spatial_reversed"),
                format!("{out}::spatial_reversed_indices"),
            ];
            (xt, outs)
        } else {
            let mut outs = vec![out.clone()];
            outs.extend(indices.clone());
            (x, outs)
        };
        let op = Op::Pool {
            pool,
            rank,
            pool_size,
            strides,
            dilation,
            padding,
            layout: DataLayout::ChannelsFirst,
            count_include_pad: pool == PoolKind::Avg && a.int_or("count_include_pad", 0)? != 0,
            ceil_mode: a.int_or("ceil_mode", 0)? != 0,
        };
        let name = self.emit(i, op, vec![x], outs.clone(), Vec::new(), &class)?;
        if column_major {
            let finals = [Some(out.clone()), indices.clone()];
            for (t, f) in outs.into_iter().zip(finals) {
                if let Some(f) = f {
                    self.emit_named(
                        i,
                        &format!("{name}.restore_spatial"),
                        Op::Permute { perm: perm.clone() },
                        vec![t],
                        vec![f],
                        Vec::new(),
                        "MaxPool (storage_order=1)",
                    )?;
                }
            }
        }
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn global_pool(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let v = self.g.input(i, 0).unwrap_or_default();
        let rank = self
            .rank(v)
            .and_then(|r| r.checked_sub(2))
            .ok_or_else(|| self.unsupported(i, "global pooling of a value of unknown rank"))?;
        let pool = if self.g.op(i) == "GlobalMaxPool" {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        self.emit(
            i,
            Op::GlobalPool {
                pool,
                rank,
                layout: DataLayout::ChannelsFirst,
                keepdims: true,
            },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            &class,
        )?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn reduce(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let keepdims = a.int_or("keepdims", 1)? != 0;
        let ins: Vec<Option<&Val>> = self.g.nodes[i]
            .input
            .iter()
            .map(|s| self.g.val(s))
            .collect();
        let axes = axes_of(a, &ins, 1).map_err(|e| self.unsupported(i, e))?;
        let x = self.rt(i, 0)?;
        let rank = self.rank(&v);
        let noop = a.int_or("noop_with_empty_axes", 0)? != 0;
        let axes: Vec<i64> = match (axes, rank) {
            (Some(ax), _) if !ax.is_empty() => ax,
            // No axes and noop_with_empty_axes=1: the input unchanged.
            _ if noop => {
                let out = self.out(i, 0)?;
                let layout = self.layout_of(&x);
                let class = format!("{} (noop_with_empty_axes, no axes)", self.g.op(i));
                self.emit(
                    i,
                    Op::Identity,
                    vec![x],
                    vec![out.clone()],
                    Vec::new(),
                    &class,
                )?;
                self.set_layout(&out, layout);
                return Ok(());
            }
            (_, Some(r)) => (0..r as i64).collect(),
            _ => {
                return Err(
                    self.unsupported(i, "reduction over every axis of a value of unknown rank")
                );
            }
        };
        let reduce = match self.g.op(i) {
            "ReduceMean" => ReduceKind::Mean,
            "ReduceMax" => ReduceKind::Max,
            "ReduceSum" => ReduceKind::Sum,
            _ => ReduceKind::Min,
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        if let (Some(r), Some(DataLayout::ChannelsFirst), ReduceKind::Mean | ReduceKind::Max) =
            (rank, self.layout_of(&x), reduce)
        {
            let mut norm: Vec<usize> = axes
                .iter()
                .filter_map(|&ax| norm_axis(ax, r, "Reduce").ok())
                .collect();
            norm.sort_unstable();
            if r >= 3 && norm == (2..r).collect::<Vec<_>>() {
                let pool = if reduce == ReduceKind::Mean {
                    PoolKind::Avg
                } else {
                    PoolKind::Max
                };
                self.emit(
                    i,
                    Op::GlobalPool {
                        pool,
                        rank: r - 2,
                        layout: DataLayout::ChannelsFirst,
                        keepdims,
                    },
                    vec![x],
                    vec![out.clone()],
                    Vec::new(),
                    &class,
                )?;
                if keepdims {
                    self.set_layout(&out, Some(DataLayout::ChannelsFirst));
                }
                return Ok(());
            }
        }
        self.emit(
            i,
            Op::Reduce {
                reduce,
                axes,
                keepdims,
            },
            vec![x],
            vec![out],
            Vec::new(),
            &class,
        )?;
        Ok(())
    }
}
