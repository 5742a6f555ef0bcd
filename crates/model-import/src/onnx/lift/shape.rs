//! Layout and indexing: `Flatten`, `Reshape`, `Transpose`, `Squeeze`/`Unsqueeze`, `Concat`,
//! `Split`, `Slice`, `Gather` (an embedding lookup or a selection), `Tile` and `Pad`.

use model_ir::{DataLayout, Framework, MergeOp, Op, PadMode, ParamLayout, ParamRole};

use crate::onnx::eval::axes_of;
use crate::onnx::value::{Dim, Val, int_vec, norm_axis, scalar_f64};

use super::{Alias, Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(&["Concat"], &["axis"], |l, i| l.concat(i));
    reg.add(&["Tile"], &[], |l, i| l.tile(i));
    reg.add(&["Flatten"], &["axis"], |l, i| l.flatten(i));
    reg.add(&["Reshape"], &["allowzero"], |l, i| l.reshape(i));
    reg.add(&["Transpose"], &["perm"], |l, i| l.transpose(i));
    reg.add(&["Pad"], &["mode", "pads", "value"], |l, i| l.pad(i));
    reg.add(&["Gather"], &["axis"], |l, i| l.gather(i));
    reg.add(&["Slice"], &["starts", "ends", "axes"], |l, i| l.slice(i));
    reg.add(&["Split"], &["axis", "split", "num_outputs"], |l, i| {
        l.split(i)
    });
    reg.add(&["Squeeze", "Unsqueeze"], &["axes"], |l, i| l.squeeze(i));
}

impl Lifter<'_> {
    /// `Concat` of computed values and constants (the class token prepended to a sequence).
    /// A constant operand `c` becomes a computed value exactly: `Ones` of a one-long slice of
    /// a computed operand along the axis (shape `[…, 1, …]`), times `c` as a constant
    /// (`1·c = c` for every float, NaN and ±∞ included); its gradient reaches `c` when it is
    /// trainable (a torch initializer). Its other axes must equal the computed operand's.
    fn concat(&mut self, i: usize) -> R<()> {
        let n = self.g.nodes[i].input.len();
        let axis = self.attrs(i).int_or("axis", 0)?;
        let out = self.out(i, 0)?;
        let source = (0..n).find(|&k| self.g.input(i, k).is_some_and(|v| self.g.is_runtime(v)));
        let mut ins = Vec::with_capacity(n);
        for k in 0..n {
            let v = self.g.input(i, k).unwrap_or_default().to_string();
            if self.g.is_runtime(&v) {
                ins.push(self.rt(i, k)?);
                continue;
            }
            let Some(src) = source else {
                return Err(self.unsupported_op(i, "Concat of constants only"));
            };
            ins.push(self.concat_constant(i, k, src, axis, &out)?);
        }
        self.emit(
            i,
            Op::Merge {
                op: MergeOp::Concatenate(axis),
            },
            ins,
            vec![out],
            Vec::new(),
            "Concat",
        )?;
        Ok(())
    }

    /// Constant operand `k` of Concat node `i` as a computed value (see [`Self::concat`]),
    /// shaped after computed operand `src`.
    fn concat_constant(
        &mut self,
        i: usize,
        k: usize,
        src: usize,
        axis: i64,
        out: &str,
    ) -> R<String> {
        let sv = self.g.input(i, src).unwrap_or_default().to_string();
        let c = self.konst(i, k)?;
        if !c.dtype().is_float() {
            return Err(
                self.unsupported(i, format!("Concat with a {:?} constant operand", c.dtype()))
            );
        }
        let cshape = c.shape().to_vec();
        let sshape = self.g.shape(&sv).ok_or_else(|| {
            self.unsupported(
                i,
                "Concat with a constant operand and a computed operand of unknown shape",
            )
        })?;
        let ax = norm_axis(axis, sshape.len(), "Concat").map_err(|e| self.malformed(i, e))?;
        let fits = cshape.len() == sshape.len()
            && (0..cshape.len()).all(|j| j == ax || sshape[j].known() == Some(cshape[j] as i64));
        if !fits {
            return Err(self.unsupported(
                i,
                format!(
                    "Concat of constant operand {k} of shape {cshape:?} with a computed operand of shape [{}] on axis {axis}",
                    join_dims(&sshape)
                ),
            ));
        }
        let x = self.rt(i, src)?;
        let one_long = format!("{out}::slice_{k}");
        let ones = format!("{out}::ones_{k}");
        let value = format!("{out}::constant_{k}");
        self.emit(
            i,
            Op::Slice {
                axis,
                start: 0,
                end: 1,
                step: 1,
            },
            vec![x],
            vec![one_long.clone()],
            Vec::new(),
            "Concat",
        )?;
        self.emit(
            i,
            Op::Unary {
                op: model_ir::UnaryOp::Ones,
            },
            vec![one_long],
            vec![ones.clone()],
            Vec::new(),
            "Concat",
        )?;
        let mut p = self.param(
            i,
            k,
            ParamRole::Constant,
            ParamLayout::AsIs,
            &format!("constant_{k}"),
        )?;
        p.trainable = self.framework == Framework::Torch
            && self.g.input(i, k).is_some_and(|v| self.g.is_initializer(v));
        self.emit(
            i,
            Op::ConstantBinary {
                op: model_ir::BinaryOp::Mul,
                constant_first: true,
            },
            vec![ones],
            vec![value.clone()],
            vec![p],
            "Concat",
        )?;
        Ok(value)
    }

    /// `Tile` with constant repeats: each repeated axis becomes a concatenation of the input
    /// with itself (forward and backward from Concatenate).
    fn tile(&mut self, i: usize) -> R<()> {
        let reps = self.konst(i, 1)?.to_i64();
        let reps: Vec<i64> = reps.iter().copied().collect();
        if reps.iter().any(|&r| r < 1) {
            return Err(self.unsupported(i, format!("Tile with repeats {reps:?}")));
        }
        if let Some(r) = self.rank(self.g.input(i, 0).unwrap_or_default())
            && r != reps.len()
        {
            return Err(self.malformed(i, format!("repeats {reps:?} for a rank-{r} value")));
        }
        let mut cur = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let todo: Vec<(usize, i64)> = reps
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, r)| r > 1)
            .collect();
        if todo.is_empty() {
            self.alias.insert(out.clone(), Alias::Same(cur));
            return Ok(());
        }
        for (k, &(axis, r)) in todo.iter().enumerate() {
            let dst = if k + 1 == todo.len() {
                out.clone()
            } else {
                format!("{out}::tile_{axis}")
            };
            self.emit(
                i,
                Op::Merge {
                    op: MergeOp::Concatenate(axis as i64),
                },
                vec![cur.clone(); r as usize],
                vec![dst.clone()],
                Vec::new(),
                "Tile",
            )?;
            cur = dst;
        }
        Ok(())
    }

    fn flatten_order(&self, x: &str, rank: Option<usize>) -> DataLayout {
        match (self.layout_of(x), rank) {
            (Some(DataLayout::ChannelsLast), _) => DataLayout::ChannelsLast,
            _ => DataLayout::ChannelsFirst,
        }
    }

    fn flatten(&mut self, i: usize) -> R<()> {
        let axis = self.attrs(i).int_or("axis", 1)?;
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self.rank(&v);
        // ONNX allows axis in [−r, r]; the result is always 2-D.
        let norm = match rank {
            Some(r) if axis < 0 => axis + r as i64,
            _ => axis,
        };
        if norm != 1 || rank == Some(1) && axis != 1 {
            // `[d0·…·d(axis−1), d(axis)·…]`: the batch axis merged with others (axis ≥ 2),
            // or a leading axis of 1 (axis 0).
            let out = self.out(i, 0)?;
            return self.reshape_all(i, &out, "Flatten");
        }
        let x = self.rt(i, 0)?;
        if rank == Some(1) {
            // ONNX Flatten of a vector is `[n, 1]`: a reshape of the one non-batch axis.
            let out = self.out(i, 0)?;
            self.emit(
                i,
                Op::Reshape {
                    target_shape: vec![1],
                },
                vec![x],
                vec![out],
                Vec::new(),
                "Flatten",
            )?;
            return Ok(());
        }
        let order = self.flatten_order(&x, rank);
        let out = self.out(i, 0)?;
        self.emit(
            i,
            Op::Flatten {
                start_axis: 1,
                order,
            },
            vec![x],
            vec![out],
            Vec::new(),
            "Flatten",
        )?;
        Ok(())
    }

    fn reshape(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let (Some(ins), Some(outs)) = (self.g.shape(&v), self.g.shape(&out)) else {
            return Err(
                self.unsupported(i, "Reshape whose target shape is not known before run time")
            );
        };
        // A result length of 0 (allowzero=1, or an empty value) is a literal length for the
        // whole-tensor reshape; the batch-keeping reshape reads 0 as "copy the input's".
        if outs.is_empty()
            || ins.is_empty()
            || outs[0] != ins[0]
            || outs.iter().any(|d| d.known() == Some(0))
        {
            return self.reshape_all(i, &out, "Reshape");
        }
        let x = self.rt(i, 0)?;
        let rest_in: Vec<i64> = ins[1..].iter().filter_map(Dim::known).collect();
        let flat = outs.len() == 2
            && ins.len() > 2
            && rest_in.len() == ins.len() - 1
            && outs[1].known() == rest_in.iter().try_fold(1i64, |a, &b| a.checked_mul(b));
        if flat {
            let order = self.flatten_order(&x, Some(ins.len()));
            self.emit(
                i,
                Op::Flatten {
                    start_axis: 1,
                    order,
                },
                vec![x],
                vec![out],
                Vec::new(),
                "Reshape",
            )?;
            return Ok(());
        }
        let mut target = Vec::new();
        let mut inferred = 0;
        for d in &outs[1..] {
            target.push(match d.known() {
                Some(v) => v,
                None => {
                    inferred += 1;
                    -1
                }
            });
        }
        if inferred > 1 {
            return Err(self.unsupported(
                i,
                format!(
                    "Reshape to [{}] with more than one unknown axis",
                    join_dims(&outs)
                ),
            ));
        }
        self.emit(
            i,
            Op::Reshape {
                target_shape: target,
            },
            vec![x],
            vec![out],
            Vec::new(),
            "Reshape",
        )?;
        Ok(())
    }

    /// A row-major reshape of the whole tensor (batch axis included) to the output shape
    /// that shape inference found for ONNX value `out`; one unknown length is inferred at run
    /// time, more are refused.
    fn reshape_all(&mut self, i: usize, out: &str, class: &str) -> R<()> {
        let outs = self.g.shape(out).ok_or_else(|| {
            self.unsupported(
                i,
                format!("{class} whose result shape is not known before run time"),
            )
        })?;
        let unknown = outs.iter().filter(|d| d.known().is_none()).count();
        if unknown > 1 {
            return Err(self.unsupported(
                i,
                format!(
                    "{class} to [{}], which moves the batch axis and has more than one unknown length",
                    join_dims(&outs)
                ),
            ));
        }
        let shape: Vec<i64> = outs.iter().map(|d| d.known().unwrap_or(-1)).collect();
        if shape.iter().any(|&d| d < -1) {
            return Err(self.malformed(i, format!("result shape [{}]", join_dims(&outs))));
        }
        let x = self.rt(i, 0)?;
        self.emit(
            i,
            Op::ReshapeAll { shape },
            vec![x],
            vec![out.to_string()],
            Vec::new(),
            class,
        )?;
        Ok(())
    }

    fn transpose(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "Transpose of a value of unknown rank"))?;
        let perm = match self.attrs(i).ints("perm")? {
            Some(p) => {
                crate::onnx::value::check_perm(&p, rank).map_err(|e| self.malformed(i, e))?
            }
            None => (0..rank).rev().collect(),
        };
        let out = self.out(i, 0)?;
        let swap01 = rank == 3 && perm == [1, 0, 2];
        if swap01 {
            // Undoing a deferred swap, or feeding only recurrent layers: absorb.
            if let Some(Alias::Swap01(x)) = self.alias.get(&v).cloned() {
                self.alias.insert(out, Alias::Same(x));
                return Ok(());
            }
            let consumers = self.g.consumers(&out);
            let only_rnn = !consumers.is_empty()
                && !self.g.is_output(&out)
                && consumers.iter().all(|&c| {
                    matches!(self.g.op(c), "LSTM" | "GRU" | "RNN")
                        && self.g.input(c, 0) == Some(out.as_str())
                        && self.attrs(c).int_or("layout", 0).unwrap_or(0) == 0
                });
            if only_rnn {
                let x = self.rt(i, 0)?;
                self.alias.insert(out, Alias::Swap01(x));
                return Ok(());
            }
        }
        let x = self.rt(i, 0)?;
        let layout = match (rank, perm.as_slice(), self.layout_of(&x)) {
            (4, [0, 2, 3, 1], _) | (3, [0, 2, 1], Some(DataLayout::ChannelsFirst)) => {
                Some(DataLayout::ChannelsLast)
            }
            (4, [0, 3, 1, 2], _) => Some(DataLayout::ChannelsFirst),
            (3, [0, 2, 1], Some(DataLayout::ChannelsLast)) => Some(DataLayout::ChannelsFirst),
            _ => None,
        };
        match self
            .scopes
            .module(&self.g.nodes[i])
            .filter(|_| self.framework == Framework::Keras)
        {
            // tf2onnx puts layout transposes inside the layer's scope: keep the name for the layer.
            Some(layer) => self.emit_named(
                i,
                &format!("{layer}.transpose"),
                Op::Permute { perm },
                vec![x],
                vec![out.clone()],
                Vec::new(),
                "Transpose",
            )?,
            None => self.emit(
                i,
                Op::Permute { perm },
                vec![x],
                vec![out.clone()],
                Vec::new(),
                "Transpose",
            )?,
        };
        self.set_layout(&out, layout);
        Ok(())
    }

    fn pad(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let mode = a.string("mode")?.unwrap_or_else(|| "constant".into());
        let pads = match a.ints("pads")? {
            Some(p) => p,
            None => int_vec(self.konst(i, 1)?)
                .ok_or_else(|| self.malformed(i, "pads are not integers"))?,
        };
        let value = match a.float("value")? {
            Some(v) => v,
            None => match self.opt_konst(i, 2)? {
                Some(t) => scalar_f64(t)
                    .ok_or_else(|| self.malformed(i, "constant_value is not a scalar"))?,
                None => 0.0,
            },
        };
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "padding of a value of unknown rank"))?;
        let pads: Vec<i64> = match self.opt_konst(i, 3)? {
            Some(axes_t) => {
                let axes =
                    int_vec(axes_t).ok_or_else(|| self.malformed(i, "axes are not integers"))?;
                if pads.len() != 2 * axes.len() {
                    return Err(self.malformed(i, format!("pads {pads:?} for axes {axes:?}")));
                }
                let mut full = vec![0; 2 * rank];
                for (j, &ax) in axes.iter().enumerate() {
                    let ax = norm_axis(ax, rank, "Pad").map_err(|e| self.malformed(i, e))?;
                    full[ax] = pads[j];
                    full[rank + ax] = pads[axes.len() + j];
                }
                full
            }
            None => pads,
        };
        if pads.len() != 2 * rank {
            return Err(self.malformed(i, format!("pads {pads:?} for rank {rank}")));
        }
        if rank < 3 {
            return Err(
                self.unsupported(i, format!("Pad of a rank-{rank} value (not a feature map)"))
            );
        }
        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x).unwrap_or(DataLayout::ChannelsFirst);
        let (channel, spatial): (usize, Vec<usize>) = match layout {
            DataLayout::ChannelsFirst => (1, (2..rank).collect()),
            DataLayout::ChannelsLast => (rank - 1, (1..rank - 1).collect()),
        };
        let zero_at = |ax: usize| pads[ax] == 0 && pads[rank + ax] == 0;
        if !zero_at(0) || !zero_at(channel) {
            return Err(self.unsupported(i, format!("Pad {pads:?} pads the batch or channel axis")));
        }
        if pads.iter().any(|&p| p < 0) {
            return Err(self.unsupported(i, format!("Pad {pads:?} crops (negative pads)")));
        }
        let mode = match mode.as_str() {
            "constant" => PadMode::Constant(value),
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            "wrap" => PadMode::Wrap,
            other => return Err(self.unsupported(i, format!("Pad mode {other}"))),
        };
        let op = Op::Pad {
            rank: spatial.len(),
            begin: spatial.iter().map(|&ax| pads[ax] as usize).collect(),
            end: spatial.iter().map(|&ax| pads[rank + ax] as usize).collect(),
            layout,
            mode,
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), "Pad")?;
        self.set_layout(&out, Some(layout));
        Ok(())
    }

    fn gather(&mut self, i: usize) -> R<()> {
        let data = self.g.input(i, 0).unwrap_or_default().to_string();
        let axis = self.attrs(i).int_or("axis", 0)?;
        let out = self.out(i, 0)?;
        if let Some(table) = self.g.konst(&data) {
            if table.shape().len() != 2 || !table.dtype().is_float() || axis != 0 {
                return Err(
                    self.unsupported_op(i, "Gather from a constant that is not an embedding table")
                );
            }
            let (input_dim, output_dim) = (table.shape()[0], table.shape()[1]);
            let ids = self.rt(i, 1)?;
            let p = self.param(
                i,
                0,
                ParamRole::Embeddings,
                ParamLayout::Embedding,
                "weight",
            )?;
            let values = table.to_f64();
            let zero_rows: Vec<usize> = (0..input_dim)
                .filter(|&r| {
                    values
                        .index_axis(ndarray::Axis(0), r)
                        .iter()
                        .all(|&v| v == 0.0)
                })
                .collect();
            let name = self.emit(
                i,
                Op::Embedding {
                    input_dim,
                    output_dim,
                    mask_zero: false,
                    padding_idx: None,
                },
                vec![ids],
                vec![out],
                vec![p],
                "Gather",
            )?;
            if self.framework == Framework::Torch {
                let hint = match zero_rows.as_slice() {
                    [r] => {
                        format!("; row {r} is all zeros, as torch initializes the padding_idx row")
                    }
                    _ => String::new(),
                };
                self.notes.push(format!(
                    "{name}: ONNX does not record Embedding padding_idx (it only changes gradients), so padding_idx is unknown{hint}"
                ));
            }
            return Ok(());
        }
        let idx = self.konst(i, 1)?;
        if idx.dtype().is_float() {
            return Err(self.malformed(i, "float indices"));
        }
        let values: Vec<i64> = idx.to_i64().iter().copied().collect();
        let idx_shape = idx.shape().to_vec();
        let x = self.rt(i, 0)?;
        if let ([], [index]) = (idx_shape.as_slice(), values.as_slice()) {
            let op = Op::Select {
                axis,
                index: *index,
            };
            self.emit(i, op, vec![x], vec![out], Vec::new(), "Gather")?;
            return Ok(());
        }
        self.gather_slices(i, x, &data, axis, &values, &idx_shape, out)
    }

    /// `Gather` of constant indices (any shape) from a computed value, along any axis: the
    /// runs of consecutive indices become slices, concatenated along the axis (each slice's
    /// backward scatters its part of `dy` back, so repeated indices add up), and a reshape
    /// replaces the axis by the indices' shape. The axis length must be known (an index out
    /// of range is an error in ONNX, not an empty slice).
    #[allow(clippy::too_many_arguments)]
    fn gather_slices(
        &mut self,
        i: usize,
        x: String,
        data: &str,
        axis: i64,
        values: &[i64],
        idx_shape: &[usize],
        out: String,
    ) -> R<()> {
        const MAX_RUNS: usize = 256;
        let shape = self
            .g
            .shape(data)
            .ok_or_else(|| self.unsupported(i, "Gather from a value of unknown shape"))?;
        let ax = norm_axis(axis, shape.len(), "Gather").map_err(|e| self.malformed(i, e))?;
        let len = shape[ax].known().ok_or_else(|| {
            self.unsupported(
                i,
                format!("Gather along axis={axis}, whose length is not known before run time"),
            )
        })?;
        if values.is_empty() {
            return Err(self.unsupported(i, "Gather of no indices (an empty result)"));
        }
        let mut norm = Vec::with_capacity(values.len());
        for &v in values {
            let j = if v < 0 { v.saturating_add(len) } else { v };
            if !(0..len).contains(&j) {
                return Err(self.malformed(
                    i,
                    format!("index {v} is out of range for axis {axis} of length {len}"),
                ));
            }
            norm.push(j);
        }
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for &j in &norm {
            match runs.last_mut() {
                Some((_, end)) if *end == j => *end += 1,
                _ => runs.push((j, j + 1)),
            }
        }
        if runs.len() > MAX_RUNS {
            return Err(self.unsupported(
                i,
                format!(
                    "Gather of {} indices in {} runs (lowered to one slice per run, at most {MAX_RUNS})",
                    values.len(),
                    runs.len()
                ),
            ));
        }
        // The result's shape: the axis replaced by the indices' shape.
        let mut out_shape: Vec<Dim> = shape[..ax].to_vec();
        out_shape.extend(idx_shape.iter().map(|&d| Dim::Known(d as i64)));
        out_shape.extend_from_slice(&shape[ax + 1..]);
        let needs_reshape = idx_shape.len() != 1;
        if needs_reshape && ax == 0 {
            return Err(self.unsupported(
                i,
                format!(
                    "Gather along the batch axis with indices of shape {idx_shape:?} (the result reshapes the batch axis)"
                ),
            ));
        }
        let target: Vec<i64> = if needs_reshape {
            out_shape[1..]
                .iter()
                .map(|d| d.known())
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| {
                    self.unsupported(
                        i,
                        format!(
                            "Gather result [{}] has an unknown axis",
                            join_dims(&out_shape)
                        ),
                    )
                })?
        } else {
            Vec::new()
        };
        if target.contains(&0) {
            // The engine's Reshape reads 0 as "keep the input's size" (ONNX allowzero=0).
            return Err(self.unsupported(
                i,
                format!("Gather result [{}] is empty", join_dims(&out_shape)),
            ));
        }
        let gathered = if needs_reshape {
            format!("{out}::gathered")
        } else {
            out.clone()
        };
        let mut parts = Vec::with_capacity(runs.len());
        for (k, &(start, end)) in runs.iter().enumerate() {
            let dst = if runs.len() == 1 {
                gathered.clone()
            } else {
                format!("{out}::run_{k}")
            };
            self.emit(
                i,
                Op::Slice {
                    axis,
                    start,
                    end,
                    step: 1,
                },
                vec![x.clone()],
                vec![dst.clone()],
                Vec::new(),
                "Gather",
            )?;
            parts.push(dst);
        }
        if parts.len() > 1 {
            self.emit(
                i,
                Op::Merge {
                    op: MergeOp::Concatenate(axis),
                },
                parts,
                vec![gathered.clone()],
                Vec::new(),
                "Gather",
            )?;
        }
        if needs_reshape {
            self.emit(
                i,
                Op::Reshape {
                    target_shape: target,
                },
                vec![gathered],
                vec![out],
                Vec::new(),
                "Gather",
            )?;
        }
        Ok(())
    }

    fn slice(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let (starts, ends, axes, steps) = match a.ints("starts")? {
            Some(s) => (
                s,
                a.ints("ends")?.unwrap_or_default(),
                a.ints("axes")?,
                None,
            ),
            None => {
                let get = |k: usize| -> R<Option<Vec<i64>>> {
                    match self.opt_konst(i, k)? {
                        Some(t) => Ok(Some(int_vec(t).ok_or_else(|| {
                            self.malformed(i, "slice parameters are not integers")
                        })?)),
                        None => Ok(None),
                    }
                };
                (
                    get(1)?.unwrap_or_default(),
                    get(2)?.unwrap_or_default(),
                    get(3)?,
                    get(4)?,
                )
            }
        };
        if starts.len() != ends.len() || starts.is_empty() {
            return Err(self.malformed(i, format!("starts {starts:?}, ends {ends:?}")));
        }
        let shape = self.g.shape(&v);
        let mut cur = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let mut parts = Vec::new();
        for (j, (&s, &e)) in starts.iter().zip(&ends).enumerate() {
            let axis = axes
                .as_ref()
                .and_then(|x| x.get(j).copied())
                .unwrap_or(j as i64);
            let step = steps.as_ref().and_then(|x| x.get(j).copied()).unwrap_or(1);
            let len = shape.as_ref().and_then(|sh| {
                let ax = norm_axis(axis, sh.len(), "Slice").ok()?;
                sh[ax].known()
            });
            let full = step == 1 && s == 0 && len.is_some_and(|n| e >= n);
            if !full {
                parts.push((axis, s, e, step));
            }
        }
        if parts.is_empty() {
            self.alias.insert(out, Alias::Same(cur));
            return Ok(());
        }
        let n = parts.len();
        for (j, (axis, start, end, step)) in parts.into_iter().enumerate() {
            let o = if j + 1 == n {
                out.clone()
            } else {
                format!("{out}.{j}")
            };
            self.emit(
                i,
                Op::Slice {
                    axis,
                    start,
                    end,
                    step,
                },
                vec![cur],
                vec![o.clone()],
                Vec::new(),
                "Slice",
            )?;
            cur = o;
        }
        Ok(())
    }

    fn split(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let shape = self
            .g
            .shape(&v)
            .ok_or_else(|| self.unsupported(i, "Split of a value of unknown shape"))?;
        let axis = a.int_or("axis", 0)?;
        let ax = norm_axis(axis, shape.len(), "Split").map_err(|e| self.malformed(i, e))?;
        let n_out = self.g.nodes[i].output.len();
        let sizes: Vec<i64> = match a.ints("split")? {
            Some(s) => s,
            None => match self.opt_konst(i, 1)? {
                Some(t) => int_vec(t).ok_or_else(|| self.malformed(i, "split sizes"))?,
                None => {
                    let len = shape[ax].known().ok_or_else(|| {
                        self.unsupported(i, "even Split of an axis of unknown length")
                    })?;
                    let len = usize::try_from(len).map_err(|_| self.malformed(i, "axis length"))?;
                    crate::onnx::eval::even_split(len, n_out, a)
                        .map_err(|e| self.malformed(i, e))?
                }
            },
        };
        if let Some(len) = shape[ax].known()
            && (sizes.iter().try_fold(0i64, |a, &b| a.checked_add(b)) != Some(len)
                || sizes.iter().any(|&s| s < 0))
        {
            return Err(self.malformed(
                i,
                format!("split sizes {sizes:?} for an axis of length {len}"),
            ));
        }
        if sizes.len() != self.g.nodes[i].output.len() {
            return Err(self.malformed(
                i,
                format!(
                    "{} split sizes for {} outputs",
                    sizes.len(),
                    self.g.nodes[i].output.len()
                ),
            ));
        }
        let x = self.rt(i, 0)?;
        let mut start = 0i64;
        for (k, &s) in sizes.iter().enumerate() {
            if let Some(o) = self.g.output(i, k).map(str::to_string) {
                self.emit(
                    i,
                    Op::Slice {
                        axis,
                        start,
                        end: start.saturating_add(s),
                        step: 1,
                    },
                    vec![x.clone()],
                    vec![o],
                    Vec::new(),
                    "Split",
                )?;
            }
            start = start.saturating_add(s);
        }
        Ok(())
    }

    fn squeeze(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let ins: Vec<Option<&Val>> = self.g.nodes[i]
            .input
            .iter()
            .map(|s| self.g.val(s))
            .collect();
        let axes = axes_of(self.attrs(i), &ins, 1).map_err(|e| self.unsupported(i, e))?;
        let unsq = self.g.op(i) == "Unsqueeze";
        let axes = match axes {
            Some(a) => a,
            None if unsq => return Err(self.malformed(i, "Unsqueeze without axes")),
            None => {
                let shape = self
                    .g
                    .shape(&v)
                    .ok_or_else(|| self.unsupported(i, "Squeeze of a value of unknown shape"))?;
                // ONNX removes every axis of length 1 at run time: an axis of unknown length
                // (the batch) might be one.
                if let Some(k) = shape.iter().position(|d| d.known().is_none()) {
                    return Err(self.unsupported(
                        i,
                        format!("Squeeze without axes of a value whose axis {k} has a length unknown before run time"),
                    ));
                }
                (0..shape.len())
                    .filter(|&k| shape[k] == Dim::Known(1))
                    .map(|k| k as i64)
                    .collect()
            }
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let op = if unsq {
            Op::Unsqueeze { axes }
        } else {
            Op::Squeeze { axes }
        };
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out], Vec::new(), &class)?;
        Ok(())
    }
}

fn join_dims(d: &[Dim]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
