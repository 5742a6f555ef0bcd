//! Nodes that pass their input on: `Identity` and a no-op `Cast` become aliases, `Dropout` a
//! dropout layer (its mask output dropped).

use model_ir::Op;

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

    fn cast(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default();
        let out = self.out(i, 0)?;
        if self.g.dtype(v).is_some() && self.g.dtype(v) == self.g.dtype(&out) {
            return self.identity(i);
        }
        Err(self.unsupported_op(i, "Cast (changing the element type)"))
    }
}
