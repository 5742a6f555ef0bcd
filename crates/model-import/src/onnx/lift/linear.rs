//! Dense layers: `Gemm`, and `MatMul` (with the `Add` of its bias when one follows).

use model_ir::{Activation, Framework, Op, Param, ParamLayout, ParamRole};

use super::{Lifter, R, Registry, approx};

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
    fn gemm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        if a.int_or("transA", 0)? != 0 {
            return Err(
                self.unsupported(i, "transA=1 (the input transposed) has no Dense equivalent")
            );
        }
        let alpha = a.float_or("alpha", 1.0)?;
        let beta = a.float_or("beta", 1.0)?;
        if !approx(alpha, 1.0) {
            return Err(self.unsupported(
                i,
                format!("alpha={alpha} scales the product; only alpha=1 lifts to Dense"),
            ));
        }
        let trans_b = a.int_or("transB", 0)? != 0;
        let x = self.rt(i, 0)?;
        let has_c = self.g.input(i, 2).is_some() && beta != 0.0;
        if has_c && !approx(beta, 1.0) {
            return Err(self.unsupported(
                i,
                format!("beta={beta} scales the bias; only beta=1 lifts to Dense"),
            ));
        }
        let out = self.out(i, 0)?;
        self.dense(
            i,
            x,
            1,
            trans_b,
            if has_c { Some(2) } else { None },
            None,
            out,
            "Gemm",
        )
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
        if self.g.konst(b).is_none_or(|t| t.shape().len() != 2) {
            return Err(self.unsupported_op(
                i,
                "MatMul (of two computed values or a non-matrix constant)",
            ));
        }
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let units = {
            let w = self.konst(i, 1)?;
            w.shape()[1]
        };
        // A following Add of a constant vector is the bias.
        let mut bias = None;
        if let Some(add) = self
            .g
            .sole_consumer(&out)
            .filter(|&a| self.g.op(a) == "Add")
        {
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
}
