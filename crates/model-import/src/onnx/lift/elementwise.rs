//! Element-wise arithmetic: unary math (`Erf`, `Sqrt`, ...) and the binary ops (`Add`, `Mul`,
//! ...) as merges of computed tensors or as binaries with a constant.

use model_ir::{BinaryOp, DType, Framework, MergeOp, Op, Param, ParamLayout, ParamRole, UnaryOp};

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["Erf", "Abs", "Neg", "Sqrt", "Exp", "Log", "Reciprocal"],
        &[],
        |l, i| l.unary(i),
    );
    reg.add(
        &["Add", "Sub", "Mul", "Div", "Pow"],
        // Opset < 7: `broadcast=1` aligns the second operand's shape with the trailing axes of
        // the first, as numpy broadcasting does; an `axis` that aligns it elsewhere is refused
        // (checked in `binary`).
        &["broadcast", "axis"],
        |l, i| l.binary(i),
    );
    reg.add(&["Max", "Min", "Sum"], &[], |l, i| l.binary(i));
}

impl Lifter<'_> {
    fn unary(&mut self, i: usize) -> R<()> {
        let op = match self.g.op(i) {
            "Erf" => UnaryOp::Erf,
            "Abs" => UnaryOp::Abs,
            "Neg" => UnaryOp::Neg,
            "Sqrt" => UnaryOp::Sqrt,
            "Exp" => UnaryOp::Exp,
            "Log" => UnaryOp::Log,
            "Reciprocal" => UnaryOp::Reciprocal,
            other => return Err(self.unsupported_op(i, other)),
        };
        // Integer Neg/Abs wrap at the type's minimum: checked at run time.
        let class = self.g.op(i).to_string();
        let check = match self
            .g
            .input(i, 0)
            .and_then(|v| self.g.dtype(v))
            .filter(|t| !t.is_float())
        {
            Some(t) => Some(self.integer_check(i, &class, t)?),
            None => None,
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        match check {
            None => {
                self.emit(i, Op::Unary { op }, vec![x], vec![out], Vec::new(), &class)?;
            }
            Some(check) => {
                let raw = format!("{out}::integer");
                self.emit(
                    i,
                    Op::Unary { op },
                    vec![x],
                    vec![raw.clone()],
                    Vec::new(),
                    &class,
                )?;
                self.emit(
                    i,
                    Op::Unary { op: check },
                    vec![raw],
                    vec![out],
                    Vec::new(),
                    &class,
                )?;
            }
        }
        Ok(())
    }

    fn binary(&mut self, i: usize) -> R<()> {
        let op = self.g.op(i).to_string();
        let inputs: Vec<String> = self.g.nodes[i]
            .input
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let runtime: Vec<bool> = inputs.iter().map(|v| self.g.is_runtime(v)).collect();
        let out = self.out(i, 0)?;
        // The engine computes in floating point: integer sums, differences and products wrap
        // (uint8 200 + 100 = 44), integer division truncates, and above 2^24 an f32 does not
        // hold every integer. Integer Add/Sub/Mul/Div/Sum are followed by a run-time check
        // that refuses any result that is not an integer held exactly inside the type's range;
        // integer powers are refused. Max and Min select one of their operands: exact. Pow's
        // exponent may be an integer (a float base raised to it is computed exactly).
        let checked = match op.as_str() {
            "Add" | "Sub" | "Mul" | "Div" | "Sum" => inputs.len(),
            "Pow" => 1,
            _ => 0,
        };
        if let Some(axis) = self.attrs(i).int("axis")? {
            let ra = inputs.first().and_then(|v| self.rank(v));
            let rb = inputs.get(1).and_then(|v| self.rank(v));
            let aligned = match (ra, rb) {
                (Some(ra), Some(rb)) => {
                    let axis = if axis < 0 { axis + ra as i64 } else { axis };
                    axis + rb as i64 == ra as i64
                }
                _ => false,
            };
            if !aligned {
                return Err(self.unsupported(
                    i,
                    format!(
                        "legacy broadcast with axis={axis} (operand ranks {ra:?} and {rb:?}) does not align the second operand with the trailing axes"
                    ),
                ));
            }
        }
        let integer = inputs
            .iter()
            .take(checked)
            .filter_map(|v| self.g.dtype(v))
            .find(|t| !t.is_float());
        let check = match integer {
            None => None,
            Some(t) if op == "Pow" => {
                return Err(self.unsupported(
                    i,
                    format!("{op} of a {t:?} (integer) base: integer powers wrap, parallax computes in floating point"),
                ));
            }
            Some(t) => Some(self.integer_check(i, &op, t)?),
        };
        let Some(check) = check else {
            return self.binary_body(i, &op, &inputs, &runtime, out);
        };
        let raw = format!("{out}::integer");
        self.binary_body(i, &op, &inputs, &runtime, raw.clone())?;
        self.emit(
            i,
            Op::Unary { op: check },
            vec![raw],
            vec![out],
            Vec::new(),
            &op,
        )?;
        Ok(())
    }

    /// The run-time check that keeps integer arithmetic exact or refused (see
    /// [`UnaryOp::CheckI32`]): ONNX wraps around and truncates, the engine computes in floating
    /// point, exactly while results stay integers it holds inside the type's range.
    fn integer_check(&self, i: usize, op: &str, t: DType) -> R<UnaryOp> {
        match t {
            DType::U8 => Ok(UnaryOp::CheckU8),
            DType::I32 => Ok(UnaryOp::CheckI32),
            DType::I64 => Ok(UnaryOp::CheckI64),
            other => Err(self.unsupported(i, format!("{op} of {other:?} operands"))),
        }
    }

    fn binary_body(
        &mut self,
        i: usize,
        op: &str,
        inputs: &[String],
        runtime: &[bool],
        out: String,
    ) -> R<()> {
        let op = op.to_string();
        if runtime.iter().all(|&r| r) {
            let merge = match op.as_str() {
                "Add" | "Sum" => MergeOp::Add,
                "Sub" => MergeOp::Subtract,
                "Mul" => MergeOp::Multiply,
                "Div" => MergeOp::Divide,
                "Max" => MergeOp::Maximum,
                "Min" => MergeOp::Minimum,
                "Pow" => MergeOp::Power,
                _ => return Err(self.unsupported_op(i, &format!("{op} of two computed values"))),
            };
            if inputs.len() != 2 && !matches!(op.as_str(), "Max" | "Min" | "Sum") {
                return Err(self.malformed(i, format!("{} inputs", inputs.len())));
            }
            let mut ir_inputs = Vec::new();
            for k in 0..inputs.len() {
                ir_inputs.push(self.rt(i, k)?);
            }
            let layout = self.layout_of(&ir_inputs[0]);
            self.emit(
                i,
                Op::Merge { op: merge },
                ir_inputs,
                vec![out.clone()],
                Vec::new(),
                &op,
            )?;
            self.set_layout(&out, layout);
            return Ok(());
        }
        if matches!(op.as_str(), "Max" | "Min" | "Sum") {
            return self.variadic_with_constants(i, &op, inputs, runtime, out);
        }
        if inputs.len() != 2 || runtime.iter().filter(|&&r| r).count() != 1 {
            return Err(self.unsupported_op(
                i,
                &format!(
                    "{op} of {} constants",
                    runtime.iter().filter(|&&r| !r).count()
                ),
            ));
        }
        let bop = match op.as_str() {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            "Pow" => BinaryOp::Pow,
            _ => return Err(self.unsupported_op(i, &format!("{op} with a constant"))),
        };
        let (xk, ck) = if runtime[0] { (0, 1) } else { (1, 0) };
        let x = self.rt(i, xk)?;
        let mut p = self.param(i, ck, ParamRole::Constant, ParamLayout::AsIs, "constant")?;
        p.trainable = self.framework == Framework::Torch
            && self
                .g
                .input(i, ck)
                .is_some_and(|v| self.g.is_initializer(v))
            && p.tensor.dtype().is_float();
        let layout = self.layout_of(&x);
        self.emit(
            i,
            Op::ConstantBinary {
                op: bop,
                constant_first: ck == 0,
            },
            vec![x],
            vec![out.clone()],
            vec![p],
            &op,
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// `Max`/`Min`/`Sum` of computed values and constants, folded left to right as ONNX
    /// does (`((a ∘ b) ∘ c) …`; a leading constant is swapped with the first computed
    /// operand, the ops being commutative): a computed operand joins through a merge, a
    /// constant through a constant binary (`<node>.constant_<k>`). A NaN constant is refused for Max/Min (ONNX
    /// propagates NaN; the engine's maximum keeps the computed operand).
    fn variadic_with_constants(
        &mut self,
        i: usize,
        op: &str,
        inputs: &[String],
        runtime: &[bool],
        out: String,
    ) -> R<()> {
        let (merge, bop) = match op {
            "Max" => (MergeOp::Maximum, BinaryOp::Maximum),
            "Min" => (MergeOp::Minimum, BinaryOp::Minimum),
            _ => (MergeOp::Add, BinaryOp::Add),
        };
        if runtime.len() < 2 || !runtime[0] && !runtime[1] {
            return Err(self.unsupported(
                i,
                format!("{op} whose first two operands are both constants"),
            ));
        }
        let n = inputs.len();
        let mut cur: Option<String> = None;
        // A leading constant is applied to the first computed operand with `constant_first`.
        let mut pending_first: Option<usize> = None;
        for (k, &is_runtime) in runtime.iter().enumerate() {
            let last = k + 1 == n;
            let dst = if last {
                out.clone()
            } else {
                format!("{out}::{}_{k}", op.to_lowercase())
            };
            if is_runtime {
                let x = self.rt(i, k)?;
                let layout = self.layout_of(&x);
                match (cur.take(), pending_first.take()) {
                    (None, None) => {
                        if last {
                            return Err(self.malformed(i, "one operand"));
                        }
                        cur = Some(x);
                        continue;
                    }
                    (None, Some(c)) => {
                        // Max, Min and Sum are commutative: the constant goes second.
                        let p = self.operand_constant(i, c, op)?;
                        self.emit(
                            i,
                            Op::ConstantBinary {
                                op: bop,
                                constant_first: false,
                            },
                            vec![x],
                            vec![dst.clone()],
                            vec![p],
                            op,
                        )?;
                    }
                    (Some(prev), _) => {
                        self.emit(
                            i,
                            Op::Merge { op: merge },
                            vec![prev, x],
                            vec![dst.clone()],
                            Vec::new(),
                            op,
                        )?;
                    }
                }
                self.set_layout(&dst, layout);
                cur = Some(dst);
            } else {
                match cur.take() {
                    None => pending_first = Some(k),
                    Some(prev) => {
                        let layout = self.layout_of(&prev);
                        let p = self.operand_constant(i, k, op)?;
                        self.emit(
                            i,
                            Op::ConstantBinary {
                                op: bop,
                                constant_first: false,
                            },
                            vec![prev],
                            vec![dst.clone()],
                            vec![p],
                            op,
                        )?;
                        self.set_layout(&dst, layout);
                        cur = Some(dst);
                    }
                }
            }
        }
        Ok(())
    }

    /// Constant operand `k` of a variadic op as a non-trainable constant parameter.
    fn operand_constant(&mut self, i: usize, k: usize, op: &str) -> R<Param> {
        let mut p = self.param(
            i,
            k,
            ParamRole::Constant,
            ParamLayout::AsIs,
            &format!("constant_{k}"),
        )?;
        if op != "Sum" && p.tensor.to_f64().iter().any(|v| v.is_nan()) {
            return Err(self.unsupported(i, format!("{op} with a NaN constant (operand {k})")));
        }
        p.trainable = self.framework == Framework::Torch
            && self.g.input(i, k).is_some_and(|v| self.g.is_initializer(v))
            && p.tensor.dtype().is_float();
        Ok(p)
    }
}
