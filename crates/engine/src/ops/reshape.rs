//! Reshape of every non-batch axis to `target_shape` in row-major order (Keras `Reshape`,
//! torch `view`/`reshape`, ONNX Reshape with the batch axis kept). `−1` is inferred; `0`
//! copies the input's size at that position (ONNX). VJP: reshape `dy` back.
//!
//! [`ReshapeAll`]: row-major reshape of the whole tensor, batch axis included (ONNX `Reshape`
//! and `Flatten` that merge, move or split the batch axis); `−1` is inferred from the element
//! count, every other entry is a length (0 included). VJP: reshape `dy` back.

use ndarray::ArrayD;

use super::util::reshape;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

/// A target shape has at most one `−1` and no other negative entry.
fn check_target(cx: &NodeCx<'_>, target: &[i64]) -> Result<(), EngineError> {
    if target.iter().filter(|&&d| d == -1).count() > 1 || target.iter().any(|&d| d < -1) {
        return Err(cx.invalid(format!("target shape {target:?}")));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub(crate) struct Reshape {
    pub(crate) target: Vec<i64>,
}

impl Reshape {
    pub(crate) fn compile(cx: &NodeCx<'_>, target: &[i64]) -> Result<Reshape, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        check_target(cx, target)?;
        Ok(Reshape {
            target: target.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        if x.is_empty() {
            return Err("cannot reshape a scalar".into());
        }
        let total: usize = x[1..].iter().product();
        let mut out = vec![x[0]];
        let mut known = 1usize;
        let mut infer_at = None;
        for (i, &d) in self.target.iter().enumerate() {
            let v = match d {
                -1 => {
                    infer_at = Some(i + 1);
                    1
                }
                0 => *x.get(i + 1).ok_or_else(|| {
                    format!("target {:?}: no input axis to copy at {i}", self.target)
                })?,
                d => d as usize,
            };
            known *= v;
            out.push(v);
        }
        if let Some(at) = infer_at {
            if known == 0 || !total.is_multiple_of(known) {
                return Err(format!(
                    "cannot reshape {x:?} to (batch, {:?})",
                    self.target
                ));
            }
            out[at] = total / known;
        } else if known != total {
            return Err(format!(
                "cannot reshape {x:?} to (batch, {:?})",
                self.target
            ));
        }
        Ok(vec![out])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let shape = self.infer(&[xs[0].shape()])?.remove(0);
        Ok(Out::one(reshape(xs[0].clone(), &shape)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(reshape(cx.dys[0].clone(), cx.xs[0].shape()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ReshapeAll {
    pub(crate) shape: Vec<i64>,
}

impl ReshapeAll {
    pub(crate) fn compile(cx: &NodeCx<'_>, shape: &[i64]) -> Result<ReshapeAll, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        check_target(cx, shape)?;
        Ok(ReshapeAll {
            shape: shape.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        let total: usize = x.iter().product();
        let mut known = 1usize;
        let mut infer_at = None;
        let mut out = Vec::with_capacity(self.shape.len());
        for (i, &d) in self.shape.iter().enumerate() {
            let v = if d == -1 {
                infer_at = Some(i);
                1
            } else {
                usize::try_from(d).map_err(|_| format!("target shape {:?}", self.shape))?
            };
            known = known
                .checked_mul(v)
                .ok_or_else(|| format!("target shape {:?} overflows", self.shape))?;
            out.push(v);
        }
        match infer_at {
            Some(at) if known != 0 && total.is_multiple_of(known) => out[at] = total / known,
            None if known == total => {}
            _ => return Err(format!("cannot reshape {x:?} to {:?}", self.shape)),
        }
        Ok(vec![out])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let shape = self.infer(&[xs[0].shape()])?.remove(0);
        Ok(Out::one(reshape(xs[0].clone(), &shape)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(reshape(cx.dys[0].clone(), cx.xs[0].shape()))
    }
}
