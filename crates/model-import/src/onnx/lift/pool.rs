//! Pooling and reductions: `MaxPool`/`AveragePool`, the global pools and `Reduce*`.

use model_ir::{DataLayout, Op, PoolKind, ReduceKind};

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
    fn pool(&mut self, i: usize) -> R<()> {
        if let Some(idx) = self.g.output(i, 1)
            && (!self.g.consumers(idx).is_empty() || self.g.is_output(idx))
        {
            return Err(self.unsupported(i, "MaxPool indices output is used"));
        }
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
        if a.int_or("storage_order", 0)? != 0 {
            return Err(self.unsupported(i, "storage_order=1"));
        }
        let dilation = if pool == PoolKind::Max {
            self.spatial_attr(i, "dilations", rank)?
        } else {
            vec![1; rank]
        };
        let op = Op::Pool {
            pool,
            rank,
            pool_size: kernel.into_iter().map(|k| k as usize).collect(),
            strides: self.spatial_attr(i, "strides", rank)?,
            dilation,
            padding: self.padding(i, rank)?,
            layout: DataLayout::ChannelsFirst,
            count_include_pad: pool == PoolKind::Avg && a.int_or("count_include_pad", 0)? != 0,
            ceil_mode: a.int_or("ceil_mode", 0)? != 0,
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
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
        let axes: Vec<i64> = match (axes, rank) {
            (Some(ax), _) if !ax.is_empty() => ax,
            (_, Some(r)) if a.int_or("noop_with_empty_axes", 0)? == 0 => (0..r as i64).collect(),
            _ => return Err(self.unsupported(i, "reduction over unknown axes")),
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
