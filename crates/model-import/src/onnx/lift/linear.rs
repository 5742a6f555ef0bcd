//! Dense layers: `Gemm`, and `MatMul` (with the `Add` of its bias when one follows).

use model_ir::{Activation, BinaryOp, Framework, Op, Param, ParamLayout, ParamRole, ReduceKind};

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    // Opset < 7: `broadcast=1` broadcasts C to the product's shape, as numpy does.
    reg.add(
        &["Gemm"],
        &["alpha", "beta", "transA", "transB", "broadcast"],
        |l, i| l.gemm(i),
    );
    reg.add(&["MatMul"], &[], |l, i| l.matmul(i));
}

impl Lifter<'_> {
    /// `Y = alpha · A' · B' + beta · C` (A' = Aᵀ when `transA`, B' = Bᵀ when `transB`), with B
    /// a constant matrix: a Dense layer of B (after a Permute of A for `transA`), its bias C
    /// when C is a vector of the units and `alpha = beta = 1`; otherwise the product scaled by
    /// `alpha/beta`, C added (broadcast, numpy-style: scalar, `[1]`, `[N]`, `[M, 1]`, `[M, N]`,
    /// as opset < 7's `broadcast=1` also allows) and the sum scaled by `beta`, so every
    /// parameter keeps its own values.
    fn gemm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let alpha = a.float_or("alpha", 1.0)?;
        let beta = a.float_or("beta", 1.0)?;
        let trans_a = a.int_or("transA", 0)? != 0;
        let trans_b = a.int_or("transB", 0)? != 0;
        if let Some(r) = self.rank(self.g.input(i, 0).unwrap_or_default())
            && r != 2
        {
            return Err(self.malformed(i, format!("operand A of rank {r}, not a matrix")));
        }
        if !alpha.is_finite() || !beta.is_finite() {
            return Err(self.unsupported(i, format!("alpha={alpha}, beta={beta}")));
        }
        let mut x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let units = {
            let w = self.konst(i, 1)?;
            if !w.dtype().is_float() {
                return Err(
                    self.unsupported(i, format!("Gemm of {:?} (integer) operands", w.dtype()))
                );
            }
            if w.shape().len() != 2 {
                return Err(self.unsupported(
                    i,
                    format!("operand B of shape {:?} is not a matrix", w.shape()),
                ));
            }
            if trans_b { w.shape()[0] } else { w.shape()[1] }
        };
        // beta = 0: C contributes 0·C, nothing unless C holds an infinity or a NaN.
        let c_shape = match self.g.input(i, 2) {
            Some(_) if beta != 0.0 => Some(self.konst(i, 2)?.shape().to_vec()),
            Some(_) if self.konst(i, 2)?.to_f64().iter().any(|v| !v.is_finite()) => {
                return Err(self.unsupported(i, "beta=0 times a C holding inf or NaN"));
            }
            _ => None,
        };
        let c_in_dense = c_shape.as_ref().is_some_and(|s| {
            unit(alpha) && unit(beta) && (s.as_slice() == [units] || s.as_slice() == [1, units])
        });
        if trans_a {
            let t = format!("{out}::gemm_a_transposed");
            let layout = self.layout_of(&x);
            let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
            self.emit_named(
                i,
                &format!("{base}.transpose_a"),
                Op::Permute { perm: vec![1, 0] },
                vec![x],
                vec![t.clone()],
                Vec::new(),
                "Gemm (transA)",
            )?;
            self.set_layout(&t, layout);
            x = t;
        }
        let c_extra = c_shape.is_some() && !c_in_dense;
        let scale = if c_extra { alpha / beta } else { alpha };
        if unit(scale) && !c_extra {
            return self.dense(
                i,
                x,
                1,
                trans_b,
                if c_in_dense { Some(2) } else { None },
                None,
                out,
                "Gemm",
            );
        }
        let mut cur = format!("{out}::gemm_product");
        self.dense(i, x, 1, trans_b, None, None, cur.clone(), "Gemm")?;
        let steps = [
            (!unit(scale)).then_some(("scaled", scale)),
            c_extra.then_some(("plus_c", f64::NAN)),
            (c_extra && !unit(beta)).then_some(("times_beta", beta)),
        ];
        let steps: Vec<(&str, f64)> = steps.into_iter().flatten().collect();
        for (k, &(what, factor)) in steps.iter().enumerate() {
            let next = if k + 1 == steps.len() {
                out.clone()
            } else {
                format!("{out}::gemm_{what}")
            };
            if what == "plus_c" {
                let mut p = self.param(i, 2, ParamRole::Constant, ParamLayout::AsIs, "c")?;
                p.trainable = self.framework == Framework::Torch
                    && self.g.input(i, 2).is_some_and(|v| self.g.is_initializer(v))
                    && p.tensor.dtype().is_float();
                self.emit(
                    i,
                    Op::ConstantBinary {
                        op: BinaryOp::Add,
                        constant_first: false,
                    },
                    vec![cur],
                    vec![next.clone()],
                    vec![p],
                    "Gemm (+C)",
                )?;
            } else {
                self.emit(
                    i,
                    Op::Rescaling {
                        scale: factor,
                        offset: 0.0,
                    },
                    vec![cur],
                    vec![next.clone()],
                    Vec::new(),
                    &format!("Gemm ({what})"),
                )?;
            }
            cur = next;
        }
        Ok(())
    }

    /// A Dense layer from weight input `wk` of node `i` (`out_in`: whether the operand is
    /// used as `(out, in)`), with an optional bias from input `bk` of node `i` or of `bias_node`.
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &mut self,
        i: usize,
        x: String,
        wk: usize,
        out_in: bool,
        bk: Option<usize>,
        bias_node: Option<(usize, usize)>,
        out: String,
        class: &str,
    ) -> R<()> {
        let wv = self
            .g
            .input(i, wk)
            .ok_or_else(|| self.malformed(i, "weight input missing"))?
            .to_string();
        let w = self.konst(i, wk)?;
        if w.shape().len() != 2 {
            return Err(self.unsupported(
                i,
                format!("weight of shape {:?} is not a matrix", w.shape()),
            ));
        }
        let traced = self.g.trace_init(&wv);
        // The initializer itself when the operand is it, or its transpose (torch's bias-free
        // Linear: `MatMul(x, Transpose(weight))`); anything else is kept as evaluated.
        let original = traced.as_ref().and_then(|t| {
            let orig = self.g.konst(&t.init)?;
            let same = if t.transposed {
                orig.permuted(&[1, 0]) == *w
            } else {
                orig == w
            };
            (orig.shape().len() == 2 && same)
                .then(|| (orig.clone(), t.init.clone(), out_in ^ t.transposed))
        });
        let (tensor, name, out_in) = match original {
            Some(o) => o,
            None => {
                let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
                (w.clone(), format!("{base}.weight"), out_in)
            }
        };
        let units = if out_in {
            tensor.shape()[0]
        } else {
            tensor.shape()[1]
        };
        let layout = if out_in {
            ParamLayout::DenseOutIn
        } else {
            ParamLayout::DenseInOut
        };
        let kernel = Param {
            name,
            role: ParamRole::Kernel,
            layout,
            tensor,
            trainable: true,
        };
        let mut params = vec![kernel];
        let bias = match (bk, bias_node) {
            (Some(k), _) => Some((i, k)),
            (None, Some(nk)) => Some(nk),
            _ => None,
        };
        if let Some((bn, k)) = bias {
            let mut p = self.param(bn, k, ParamRole::Bias, ParamLayout::Vector, "bias")?;
            if p.tensor.len() != units {
                return Err(self.unsupported(
                    bn,
                    format!(
                        "bias of shape {:?} does not match {units} units",
                        p.tensor.shape()
                    ),
                ));
            }
            if p.tensor.shape().len() != 1 {
                self.notes.push(format!(
                    "{}: bias `{}` of shape {:?} reshaped to ({units},)",
                    self.g.name(i),
                    p.name,
                    p.tensor.shape()
                ));
                p.tensor = p.tensor.reshaped(&[units]).unwrap_or(p.tensor);
            }
            params.push(p);
        }
        let use_bias = params.len() == 2;
        let name = self.emit(
            i,
            Op::Dense {
                units,
                use_bias,
                activation: Activation::Linear,
            },
            vec![x],
            vec![out],
            params,
            class,
        )?;
        if !out_in && self.framework == Framework::Torch {
            self.notes.push(format!(
                "{name}: {class} multiplies by its weight as stored, so the weight is kept as (in, out) (DenseInOut), not torch's Linear layout (out, in)"
            ));
        }
        Ok(())
    }

    fn matmul(&mut self, i: usize) -> R<()> {
        let b = self.g.input(i, 1).unwrap_or_default();
        let rb = match self.g.konst(b) {
            Some(t) if !t.dtype().is_float() => {
                return Err(
                    self.unsupported(i, format!("MatMul of {:?} (integer) operands", t.dtype()))
                );
            }
            Some(t) => t.shape().len(),
            None => {
                return Err(self.unsupported_op(i, "MatMul of two computed values"));
            }
        };
        if rb != 2 {
            return self.matmul_general(i, rb);
        }
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let units = {
            let w = self.konst(i, 1)?;
            w.shape()[1]
        };
        // A following Add of a constant vector is the bias.
        let mut bias = None;
        // An Add with a legacy `axis` may align the constant elsewhere: it lifts on its own.
        if let Some(add) = self.g.sole_consumer(&out).filter(|&a| {
            self.g.op(a) == "Add" && self.attrs(a).int("axis").ok().flatten().is_none()
        }) {
            let other = (0..2).find(|&k| self.g.input(add, k) != Some(out.as_str()));
            if let Some(k) = other {
                let is_bias = self
                    .g
                    .input(add, k)
                    .and_then(|v| self.g.konst(v))
                    .is_some_and(|t| {
                        t.len() == units
                            && t.shape().last() == Some(&units)
                            && t.shape().iter().rev().skip(1).all(|&d| d == 1)
                    });
                if is_bias {
                    bias = Some((add, k));
                }
            }
        }
        match bias {
            Some((add, k)) => {
                self.claimed.insert(add);
                let out = self.out(add, 0)?;
                self.dense(i, x, 1, false, None, Some((add, k)), out, "MatMul+Add")
            }
            None => self.dense(i, x, 1, false, None, None, out, "MatMul"),
        }
    }

    /// `MatMul(A, B)` with a constant B of rank 1 or ≥ 3 (numpy `matmul`): a vector B
    /// `[K]` is a one-unit Dense layer whose unit axis is squeezed; a stack of matrices
    /// `[..., K, N]` multiplies `A[..., M, K, 1]` element-wise with B viewed as
    /// `[..., 1, K, N]` (batch axes broadcast) and sums over K. A vector A `[K]` is read as
    /// `[1, K]` and its axis dropped from the result, as numpy does.
    fn matmul_general(&mut self, i: usize, rb: usize) -> R<()> {
        let a_val = self.g.input(i, 0).unwrap_or_default();
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let bshape = self.konst(i, 1)?.shape().to_vec();
        if rb == 0 {
            return Err(self.malformed(i, "operand B is a scalar"));
        }
        if rb == 1 {
            let k = bshape[0];
            let mut p = self.param(i, 1, ParamRole::Kernel, ParamLayout::DenseInOut, "weight")?;
            p.tensor = p
                .tensor
                .reshaped(&[k, 1])
                .ok_or_else(|| self.malformed(i, "operand B cannot be read as a column"))?;
            let col = format!("{out}::matmul_column");
            let name = self.emit(
                i,
                Op::Dense {
                    units: 1,
                    use_bias: false,
                    activation: Activation::Linear,
                },
                vec![x],
                vec![col.clone()],
                vec![p],
                "MatMul (vector B)",
            )?;
            self.notes.push(format!(
                "{name}: MatMul by the vector of shape [{k}] lifted as a one-unit Dense layer (its kernel viewed as ({k}, 1)) whose unit axis is removed"
            ));
            self.emit(
                i,
                Op::Squeeze { axes: vec![-1] },
                vec![col],
                vec![out],
                Vec::new(),
                "MatMul (vector B)",
            )?;
            return Ok(());
        }
        let ra = self.rank(a_val).ok_or_else(|| {
            self.unsupported(
                i,
                "MatMul of an operand A of unknown rank by a stack of matrices",
            )
        })?;
        if ra == 0 {
            return Err(self.malformed(i, "operand A is a scalar"));
        }
        let (kk, n) = (bshape[rb - 2], bshape[rb - 1]);
        let mut view = bshape[..rb - 2].to_vec();
        view.extend([1, kk, n]);
        let mut p = self.param(i, 1, ParamRole::Constant, ParamLayout::AsIs, "weight")?;
        p.trainable = self.framework == Framework::Torch
            && self.g.input(i, 1).is_some_and(|v| self.g.is_initializer(v))
            && p.tensor.dtype().is_float();
        p.tensor = p
            .tensor
            .reshaped(&view)
            .ok_or_else(|| self.malformed(i, format!("operand B of shape {bshape:?}")))?;
        let expanded = format!("{out}::matmul_a_expanded");
        let products = format!("{out}::matmul_products");
        let summed = if ra == 1 {
            format!("{out}::matmul_row")
        } else {
            out.clone()
        };
        let class = "MatMul (stack of matrices B)";
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        self.emit_named(
            i,
            &format!("{base}.expand_a"),
            Op::Unsqueeze {
                axes: if ra == 1 { vec![0, 2] } else { vec![-1] },
            },
            vec![x],
            vec![expanded.clone()],
            Vec::new(),
            class,
        )?;
        let name = self.emit(
            i,
            Op::ConstantBinary {
                op: BinaryOp::Mul,
                constant_first: false,
            },
            vec![expanded],
            vec![products.clone()],
            vec![p],
            class,
        )?;
        self.emit(
            i,
            Op::Reduce {
                reduce: ReduceKind::Sum,
                axes: vec![-2],
                keepdims: false,
            },
            vec![products],
            vec![summed.clone()],
            Vec::new(),
            class,
        )?;
        if ra == 1 {
            self.emit(
                i,
                Op::Squeeze { axes: vec![-2] },
                vec![summed],
                vec![out],
                Vec::new(),
                class,
            )?;
        }
        self.notes.push(format!(
            "{name}: MatMul by the constant of shape {bshape:?} lifted as a broadcast product summed over K (the constant viewed as {view:?})"
        ));
        Ok(())
    }
}

/// Whether a factor read from a float attribute is 1: within f64's epsilon, closer than any
/// other f32 value, so a factor that changes a result is never taken for 1.
fn unit(v: f64) -> bool {
    (v - 1.0).abs() < f64::EPSILON
}
