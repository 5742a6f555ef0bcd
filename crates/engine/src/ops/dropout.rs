//! Dropout with an explicit keep-mask, so both frameworks' runs can share masks.
//!
//! Training mode with a mask `m` (0/1, broadcastable to `x`; a spatial-dropout mask is
//! `(N, 1, …, 1, C)` or `(N, C, 1, …)`) registered under the node's name:
//! `y = x ⊙ m / (1 − rate)` (inverted dropout, as `keras/src/backend/*/random.py::dropout` and
//! `torch.nn.functional.dropout` scale); `dx = dy ⊙ m / (1 − rate)`. Without a mask, or in
//! inference mode: `y = x`, `dx = dy`. A rate of 1 zeroes everything.

use ndarray::{ArrayD, IxDyn};

use super::kernel_cx::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};
use crate::mode::Mode;

#[derive(Debug, Clone)]
pub(crate) struct Dropout {
    pub(crate) rate: f64,
}

impl Dropout {
    pub(crate) fn compile(cx: &NodeCx<'_>, rate: f64) -> Result<Dropout, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(cx.invalid(format!("rate {rate} is outside [0, 1]")));
        }
        Ok(Dropout { rate })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        Ok(vec![xs[0].to_vec()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let mask = match (cx.mode, cx.masks.get(cx.node)) {
            (Mode::Training, Some(m)) => m,
            _ => return Ok(Out::one(x.clone())),
        };
        if mask.broadcast(IxDyn(x.shape())).is_none() {
            return Err(format!(
                "dropout mask of shape {:?} does not broadcast to the input {:?}",
                mask.shape(),
                x.shape()
            ));
        }
        let scale: F = if self.rate < 1.0 {
            c(1.0 / (1.0 - self.rate))
        } else {
            F::zero()
        };
        let scaled = mask.mapv(|m| m * scale);
        let y = x * &scaled;
        let mut saved = Saved::default();
        saved.arrays.push(scaled);
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dy = &cx.dys[0];
        match cx.saved.arrays.first() {
            Some(m) => NodeGrads::input(dy * m),
            None => NodeGrads::input(dy.clone()),
        }
    }
}
