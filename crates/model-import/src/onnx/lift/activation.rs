//! Activations: the element-wise functions torch and Keras have as layers (`Relu`, `Softmax`,
//! `Clip`, ...), fused into the preceding Keras layer where tf2onnx split them off, and `PRelu`.

use model_ir::{
    Activation, BinaryOp, Framework, HardSigmoid, MergeOp, Op, Param, ParamLayout, ParamRole,
    Tensor, UnaryOp,
};

use crate::onnx::value::{norm_axis, scalar_f64};

use super::{Lifter, R, Registry, approx};

pub(super) fn register(reg: &mut Registry) {
    let act: super::LiftFn = |l, i| l.activation(i);
    reg.add(
        &[
            "Relu",
            "Sigmoid",
            "HardSwish",
            "Tanh",
            "Softplus",
            "Softsign",
            "Mish",
        ],
        &[],
        act,
    );
    reg.add(&["LeakyRelu", "Elu"], &["alpha"], act);
    reg.add(&["Selu"], &["alpha", "gamma"], act);
    reg.add(&["HardSigmoid"], &["alpha", "beta"], act);
    reg.add(&["Softmax", "LogSoftmax"], &["axis"], act);
    reg.add(&["Clip"], &["min", "max"], act);
    reg.add(&["Gelu"], &["approximate"], act);
    reg.add(&["PRelu"], &[], |l, i| l.prelu(i));
}

impl Lifter<'_> {
    fn softmax_axis(&mut self, i: usize) -> R<i64> {
        let opset = self.g.opset;
        let axis = self
            .attrs(i)
            .int_or("axis", if opset < 13 { 1 } else { -1 })?;
        if opset < 13 {
            let rank = self
                .rank(self.g.input(i, 0).unwrap_or_default())
                .ok_or_else(|| {
                    self.unsupported(
                        i,
                        format!("opset {opset} Softmax on a value of unknown rank"),
                    )
                })?;
            let a = norm_axis(axis, rank, "Softmax").map_err(|e| self.malformed(i, e))?;
            if a + 1 != rank {
                return Err(self.unsupported(
                    i,
                    format!("opset {opset} < 13 Softmax normalizes over every axis from {axis} on, not one axis"),
                ));
            }
            let note = format!(
                "opset {opset} < 13: Softmax/LogSoftmax normalize over every axis from `axis` on; lifted only where that is the last axis, where both meanings agree"
            );
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        Ok(axis)
    }

    /// Opset < 13 Softmax/LogSoftmax over a value whose `axis` is not the last: ONNX coerces
    /// the input to 2-D `[d0·…·d(axis−1), d(axis)·…]` and normalizes each row. Lowered to a
    /// whole-tensor reshape to that matrix, the softmax over axis 1, and the reshape back.
    fn coerced_softmax(&mut self, i: usize) -> R<bool> {
        let opset = self.g.opset;
        if opset >= 13 {
            return Ok(false);
        }
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let Some(shape) = self.g.shape(&v) else {
            return Ok(false);
        };
        let rank = shape.len();
        let axis = self.attrs(i).int_or("axis", 1)?;
        let a = norm_axis(axis, rank, "Softmax").map_err(|e| self.malformed(i, e))?;
        if a + 1 == rank {
            return Ok(false);
        }
        let inner: Option<i64> = shape[a..]
            .iter()
            .try_fold(1i64, |acc, d| d.known().and_then(|d| acc.checked_mul(d)));
        let back: Vec<i64> = shape.iter().map(|d| d.known().unwrap_or(-1)).collect();
        let (Some(inner), true) = (inner, back.iter().filter(|&&d| d == -1).count() <= 1) else {
            return Err(self.unsupported(
                i,
                format!("opset {opset} {} over axis={axis} of a value with lengths unknown before run time", self.g.op(i)),
            ));
        };
        if inner == 0 {
            return Err(self.unsupported(i, format!("opset {opset} Softmax of an empty value")));
        }
        let log = self.g.op(i) == "LogSoftmax";
        let class = self.g.op(i).to_string();
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let rows = format!("{out}::rows");
        let normed = format!("{out}::normalized");
        self.emit(
            i,
            Op::ReshapeAll {
                shape: vec![-1, inner],
            },
            vec![x],
            vec![rows.clone()],
            Vec::new(),
            &class,
        )?;
        let function = if log {
            Activation::LogSoftmax { axis: 1 }
        } else {
            Activation::Softmax { axis: 1 }
        };
        self.emit(
            i,
            Op::Activation { function },
            vec![rows],
            vec![normed.clone()],
            Vec::new(),
            &class,
        )?;
        self.emit(
            i,
            Op::ReshapeAll { shape: back },
            vec![normed],
            vec![out],
            Vec::new(),
            &class,
        )?;
        Ok(true)
    }

    fn activation(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let op = self.g.op(i).to_string();
        if matches!(op.as_str(), "Softmax" | "LogSoftmax") && self.coerced_softmax(i)? {
            return Ok(());
        }
        let function = match op.as_str() {
            "Relu" => Activation::RELU,
            "LeakyRelu" => Activation::LeakyRelu {
                slope: a.float_or("alpha", 0.01)?,
            },
            "Elu" => Activation::Elu {
                alpha: a.float_or("alpha", 1.0)?,
            },
            "Selu" => {
                let alpha = a.float_or("alpha", 1.673_263_192_176_818_8)?;
                let gamma = a.float_or("gamma", 1.050_700_902_938_842_8)?;
                if !approx(alpha, 1.673_263_192_176_818_8)
                    || !approx(gamma, 1.050_700_902_938_842_8)
                {
                    // `γ·elu_α(x)`: exactly ONNX's `γ·x` above 0, `γ·α·(eˣ − 1)` below.
                    return self.scaled_elu(i, alpha, gamma);
                }
                Activation::Selu
            }
            "Sigmoid" => Activation::Sigmoid,
            "HardSigmoid" => Activation::HardSigmoid(HardSigmoid {
                slope: a.float_or("alpha", 0.2)?,
                offset: a.float_or("beta", 0.5)?,
            }),
            "HardSwish" => Activation::HardSwish,
            "Tanh" => Activation::Tanh,
            "Softplus" => {
                if self.framework == Framework::Torch {
                    let note = "Softplus: ONNX has no threshold; torch's Softplus (linear above threshold=20 by default) is read as plain log(1 + exp(x))".to_string();
                    if !self.notes.contains(&note) {
                        self.notes.push(note);
                    }
                }
                Activation::Softplus {
                    beta: 1.0,
                    threshold: None,
                }
            }
            "Softsign" => Activation::Softsign,
            "Softmax" => Activation::Softmax {
                axis: self.softmax_axis(i)?,
            },
            "LogSoftmax" => Activation::LogSoftmax {
                axis: self.softmax_axis(i)?,
            },
            "Gelu" => match a.string("approximate")?.as_deref() {
                None | Some("none") => Activation::Gelu { approximate: false },
                Some("tanh") => Activation::Gelu { approximate: true },
                Some(other) => {
                    return Err(self.unsupported(i, format!("Gelu approximate={other}")));
                }
            },
            "Mish" => Activation::Mish,
            "Clip" => match self.clip_bounds(i)? {
                (Some(0.0), _) => self.clip(i)?,
                (lo, hi) => return self.general_clip(i, lo, hi),
            },
            other => return Err(self.unsupported_op(i, other)),
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        if self.framework == Framework::Keras && self.fuse_activation(i, &x, &function, &op) {
            self.set_layout(&out, layout);
            return Ok(());
        }
        self.emit(
            i,
            Op::Activation { function },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            &op,
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// Keras layers carry their activation (`Dense(activation="relu")`), which tf2onnx writes
    /// as a separate node in the layer's scope: fold it back into the layer.
    fn fuse_activation(&mut self, i: usize, x: &str, function: &Activation, op: &str) -> bool {
        let Some(p) = self.g.producer(x) else {
            return false;
        };
        let same_layer = self.scopes.module(&self.g.nodes[p]).is_some()
            && self.scopes.module(&self.g.nodes[p]) == self.scopes.module(&self.g.nodes[i]);
        if !same_layer || self.g.sole_consumer(x) != Some(i) {
            return false;
        }
        let Ok(out) = self.out(i, 0) else {
            return false;
        };
        let Some(last) = self.nodes.last_mut() else {
            return false;
        };
        if last.outputs != [x] {
            return false;
        }
        // Only a layer's own activation slot takes it, not a standalone activation.
        if matches!(last.op, Op::Activation { .. }) {
            return false;
        }
        let Some(slot) = last.op.activation_mut() else {
            return false;
        };
        if *slot != Activation::Linear {
            return false;
        }
        *slot = function.clone();
        last.outputs = vec![out.clone()];
        last.origin.class = format!("{}+{op}", last.origin.class);
        self.defined.insert(out);
        true
    }

    /// ONNX `Selu` with non-default constants: `Elu(α)` then a multiplication by the scalar
    /// constant `<node>.gamma` (forward and backward from the existing ops).
    fn scaled_elu(&mut self, i: usize, alpha: f64, gamma: f64) -> R<()> {
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let elu = format!("{out}::elu");
        self.emit(
            i,
            Op::Activation {
                function: Activation::Elu { alpha },
            },
            vec![x],
            vec![elu.clone()],
            Vec::new(),
            "Selu",
        )?;
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        let p = Param {
            name: format!("{base}.gamma"),
            role: ParamRole::Constant,
            layout: ParamLayout::AsIs,
            tensor: Tensor::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), gamma)),
            trainable: false,
        };
        self.emit(
            i,
            Op::ConstantBinary {
                op: BinaryOp::Mul,
                constant_first: false,
            },
            vec![elu],
            vec![out.clone()],
            vec![p],
            "Selu",
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// `Clip(min, max)` that is not a ReLU: `max(x, min)` then `min(·, max)` as constant
    /// binaries with scalar constants `<node>.min` / `<node>.max`.
    fn general_clip(&mut self, i: usize, lo: Option<f64>, hi: Option<f64>) -> R<()> {
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        let bounds: Vec<(BinaryOp, f64, &str)> = [
            lo.map(|v| (BinaryOp::Maximum, v, "min")),
            hi.map(|v| (BinaryOp::Minimum, v, "max")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if bounds.is_empty() {
            return self.identity(i);
        }
        let mut cur = x;
        for (k, (op, v, what)) in bounds.iter().enumerate() {
            let dst = if k + 1 == bounds.len() {
                out.clone()
            } else {
                format!("{out}::clip_{what}")
            };
            // The bound exactly as stored (an f64 or integer bound keeps every digit); the
            // attributes of opset < 11 are f32.
            let stored = if self.g.opset < 11 {
                None
            } else {
                self.opt_konst(i, if *what == "min" { 1 } else { 2 })?
                    .and_then(|t| t.to_f64().iter().next().copied())
            };
            let tensor = match stored {
                Some(exact) => Tensor::F64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), exact)),
                None => Tensor::F32(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), *v as f32)),
            };
            let p = Param {
                name: format!("{base}.{what}"),
                role: ParamRole::Constant,
                layout: ParamLayout::AsIs,
                tensor,
                trainable: false,
            };
            self.emit(
                i,
                Op::ConstantBinary {
                    op: *op,
                    constant_first: false,
                },
                vec![cur],
                vec![dst.clone()],
                vec![p],
                "Clip",
            )?;
            self.set_layout(&dst, layout);
            cur = dst;
        }
        Ok(())
    }

    /// The bounds of a `Clip` node (attributes before opset 11, inputs from 11 on).
    fn clip_bounds(&self, i: usize) -> R<(Option<f64>, Option<f64>)> {
        let a = self.attrs(i);
        if self.g.opset < 11 {
            return Ok((a.float("min")?, a.float("max")?));
        }
        let get = |k: usize| -> R<Option<f64>> {
            match self.opt_konst(i, k)? {
                Some(t) => {
                    Ok(Some(scalar_f64(t).ok_or_else(|| {
                        self.malformed(i, "bound is not a scalar")
                    })?))
                }
                None => Ok(None),
            }
        };
        Ok((get(1)?, get(2)?))
    }

    fn clip(&self, i: usize) -> R<Activation> {
        let a = self.attrs(i);
        let (min, max) = if self.g.opset < 11 {
            (a.float("min")?, a.float("max")?)
        } else {
            let get = |k: usize| -> R<Option<f64>> {
                match self.opt_konst(i, k)? {
                    Some(t) => {
                        Ok(Some(scalar_f64(t).ok_or_else(|| {
                            self.malformed(i, "bound is not a scalar")
                        })?))
                    }
                    None => Ok(None),
                }
            };
            (get(1)?, get(2)?)
        };
        match (min, max) {
            (Some(0.0), Some(hi)) if hi.to_bits() == 6.0f64.to_bits() => Ok(Activation::Relu6),
            (Some(0.0), hi) => Ok(Activation::Relu {
                negative_slope: 0.0,
                max_value: hi,
                threshold: 0.0,
            }),
            (lo, hi) => Err(self.unsupported(
                i,
                format!("Clip({lo:?}, {hi:?}) has no IR equivalent (only Clip(0, max) lifts, to ReLU with a maximum)"),
            )),
        }
    }

    /// PReLU `y = max(0, x) + slope·min(0, x)`, lowered to
    /// `relu(x) − slope · relu(−x)` (the slope a trainable constant; a 1-D per-channel slope of
    /// old exports is reshaped to `[C, 1, …]` so it broadcasts over axis 1, as torch applies it).
    /// Forward and backward (w.r.t. x and slope) come from the existing ops.
    fn prelu(&mut self, i: usize) -> R<()> {
        let xv = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self.rank(&xv);
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let mut p = self.param(i, 1, ParamRole::Constant, ParamLayout::AsIs, "weight")?;
        p.trainable = p.tensor.dtype().is_float()
            && self.g.input(i, 1).is_some_and(|v| self.g.is_initializer(v));
        // Opset < 7: a 1-D slope holds one value per channel (axis 1); from opset 7 on the
        // slope broadcasts unidirectionally (numpy rules, trailing axes aligned).
        if self.g.opset < 7
            && let Some(r) = rank
            && r > 2
            && p.tensor.shape().len() == 1
            && p.tensor.len() > 1
        {
            let mut shape = vec![p.tensor.len()];
            shape.resize(r - 1, 1);
            p.tensor = p
                .tensor
                .reshaped(&shape)
                .ok_or_else(|| self.malformed(i, "slope cannot be reshaped"))?;
        }
        let pos = format!("{out}::prelu_pos");
        let neg = format!("{out}::prelu_negx");
        let negr = format!("{out}::prelu_neg");
        let scaled = format!("{out}::prelu_scaled");
        let act = |v: &str| {
            (
                Op::Activation {
                    function: Activation::RELU,
                },
                v.to_string(),
            )
        };
        let (op, v) = act(&x);
        self.emit(i, op, vec![v], vec![pos.clone()], Vec::new(), "PRelu")?;
        self.emit(
            i,
            Op::Unary { op: UnaryOp::Neg },
            vec![x],
            vec![neg.clone()],
            Vec::new(),
            "PRelu",
        )?;
        let (op, v) = act(&neg);
        self.emit(i, op, vec![v], vec![negr.clone()], Vec::new(), "PRelu")?;
        self.emit(
            i,
            Op::ConstantBinary {
                op: BinaryOp::Mul,
                constant_first: false,
            },
            vec![negr],
            vec![scaled.clone()],
            vec![p],
            "PRelu",
        )?;
        self.emit(
            i,
            Op::Merge {
                op: MergeOp::Subtract,
            },
            vec![pos, scaled],
            vec![out.clone()],
            Vec::new(),
            "PRelu",
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }
}
