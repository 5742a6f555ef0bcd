//! Nodes that pass their input on: `Identity` and a no-op `Cast` become aliases, `Dropout` a
//! dropout layer (its mask output dropped).

use model_ir::{DType, Op, UnaryOp};

use crate::onnx::value::scalar_f64;

use super::{Alias, Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    // `seed` only picks the random mask, which the engine draws itself.
    reg.add(&["Dropout"], &["ratio", "is_test", "seed"], |l, i| {
        l.dropout(i)
    });
    reg.add(&["Identity"], &[], |l, i| l.identity(i));
    reg.add(&["Cast"], &["to", "saturate"], |l, i| l.cast(i));
}

impl Lifter<'_> {
    fn dropout(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let rate = match a.float("ratio")? {
            Some(r) => r,
            None => match self.opt_konst(i, 1)? {
                Some(t) => {
                    scalar_f64(t).ok_or_else(|| self.malformed(i, "ratio is not a scalar"))?
                }
                None => 0.5,
            },
        };
        let training = match self.opt_konst(i, 2)? {
            Some(t) => scalar_f64(t).is_some_and(|v| v != 0.0),
            None => a.int("is_test")? == Some(0),
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let name = self.emit(
            i,
            Op::Dropout {
                rate,
                spatial: None,
            },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            "Dropout",
        )?;
        self.set_layout(&out, layout);
        // The mask output: all true where nothing is dropped (inference, or ratio 0); a
        // training-mode mask is random.
        if let Some(mask) = self
            .g
            .output(i, 1)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            && self.g.is_runtime(&mask)
            && (!self.g.consumers(&mask).is_empty() || self.g.is_output(&mask))
        {
            if training && rate != 0.0 {
                return Err(self.unsupported(
                    i,
                    format!("mask output of a training-mode Dropout with ratio={rate} (random)"),
                ));
            }
            let xm = self.resolve(&out, &name)?;
            self.emit(
                i,
                Op::Unary { op: UnaryOp::Ones },
                vec![xm],
                vec![mask],
                Vec::new(),
                "Dropout mask",
            )?;
        }
        if !training {
            self.notes.push(format!(
                "{name}: Dropout exported with training_mode=false (a no-op in this graph)"
            ));
        }
        Ok(())
    }

    pub(super) fn identity(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        self.alias.insert(out.clone(), Alias::Same(x));
        self.set_layout(&out, layout);
        Ok(())
    }

    /// `Cast` between element types. The engine holds every value in its compute precision
    /// (f32, or f64 when an input is f64), so:
    /// - to FLOAT: rounding to the nearest f32 (the identity when computing in f32);
    /// - to DOUBLE: exact (every f32 or f64 the engine holds is a double), but lifted only
    ///   where nothing computes on the result (only graph outputs read it): ONNX computes what
    ///   follows in f64, the engine in its own precision;
    /// - to FLOAT16 / BFLOAT16: rounding to the nearest half / bfloat16, likewise only where
    ///   nothing computes on the result (ONNX computes what follows in 16 bits);
    /// - from an integer or bool type to a float type: exact (the integers are held exactly);
    /// - to an integer or bool type: refused (truncation, wrapping and saturation are not
    ///   computed).
    ///
    /// `saturate` only concerns the 8-bit float targets, which are refused.
    fn cast(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let from = self.g.dtype(&v);
        let to = self.g.dtype(&out);
        if from.is_some() && from == to {
            return self.identity(i);
        }
        let to_code = self.attrs(i).int("to")?.unwrap_or(0);
        let Some(to) = to else {
            return Err(self.unsupported(i, format!("Cast to={to_code}: target type unknown")));
        };
        // Widening between bool and the integer types keeps every value.
        let width = |t: DType| match t {
            DType::Bool => Some(0),
            DType::U8 => Some(1),
            DType::I32 => Some(2),
            DType::I64 => Some(3),
            _ => None,
        };
        if let (Some(a), Some(b)) = (from.and_then(width), width(to))
            && a <= b
        {
            return self.identity(i);
        }
        let only_outputs = self.g.consumers(&out).is_empty() && self.g.is_output(&out);
        let round = match to {
            DType::F32 => Some(UnaryOp::RoundF32),
            DType::F64 if only_outputs => None,
            DType::F16 if only_outputs => Some(UnaryOp::RoundF16),
            DType::BF16 if only_outputs => Some(UnaryOp::RoundBf16),
            DType::F64 | DType::F16 | DType::BF16 => {
                return Err(self.unsupported(
                    i,
                    format!(
                        "Cast to={to_code} ({to:?}) feeding further computation: ONNX computes it in {to:?}, parallax in its one compute precision"
                    ),
                ));
            }
            _ => {
                return Err(self.unsupported(
                    i,
                    format!(
                        "Cast to={to_code} ({to:?}): conversion to an integer or bool type (truncation, wrapping) is not computed"
                    ),
                ));
            }
        };
        let Some(op) = round else {
            return self.identity(i);
        };
        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x);
        self.emit(
            i,
            Op::Unary { op },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            "Cast",
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }
}
