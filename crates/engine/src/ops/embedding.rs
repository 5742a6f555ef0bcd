//! Embedding lookup: `y[…, :] = E[ids[…], :]` (Keras `Embedding`, torch `nn.Embedding`).
//!
//! Ids arrive as floats holding integers and must lie in `[0, input_dim)`.
//! VJP: scatter-add `dE[ids[…], :] += dy[…, :]`; the ids get no gradient. torch's `padding_idx`
//! row receives no gradient (`torch/nn/functional.py::embedding`; catalogue `embedding-init`).
//! The same gradient is also returned as TensorFlow's `IndexedSlices` (duplicates apart), see
//! [`crate::IndexedSlices`].
//! Keras `mask_zero=True` (mask propagation to later layers) is not executed: compiling such a
//! node is an error.

use model_ir::ParamRole;
use ndarray::{ArrayD, Axis, IxDyn};

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
use crate::error::EngineError;
use crate::float::Float;
use crate::params::IndexedSlices;

#[derive(Debug, Clone)]
pub(crate) struct Embedding {
    pub(crate) input_dim: usize,
    pub(crate) output_dim: usize,
    pub(crate) padding_idx: Option<usize>,
    pub(crate) table: String,
}

impl Embedding {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        input_dim: usize,
        output_dim: usize,
        mask_zero: bool,
        padding_idx: Option<i64>,
    ) -> Result<Embedding, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if mask_zero {
            return Err(cx.unsupported("mask_zero=True (Keras mask propagation)"));
        }
        let t = match cx.opt_param(ParamRole::Embeddings)? {
            Some(p) => p,
            None => cx.req_param(ParamRole::Kernel)?,
        };
        if t.tensor.shape() != [input_dim, output_dim] {
            return Err(cx.invalid(format!(
                "table `{}` has shape {:?}, expected [{input_dim}, {output_dim}]",
                t.name,
                t.tensor.shape()
            )));
        }
        let padding_idx = match padding_idx {
            None => None,
            Some(p) => {
                let q = if p < 0 { p + input_dim as i64 } else { p };
                if q < 0 || q >= input_dim as i64 {
                    return Err(cx.invalid(format!("padding_idx {p} outside [0, {input_dim})")));
                }
                Some(q as usize)
            }
        };
        Ok(Embedding {
            input_dim,
            output_dim,
            padding_idx,
            table: t.name.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        _ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let mut y = xs[0].to_vec();
        y.push(self.output_dim);
        Ok(vec![y])
    }

    fn ids<F: Float>(&self, x: &ArrayD<F>) -> Result<Vec<usize>, String> {
        x.iter()
            .map(|&v| {
                let r = v.round();
                let f = r.as_f64();
                if (f - v.as_f64()).abs() > 1e-6 || f < 0.0 || f >= self.input_dim as f64 {
                    Err(format!(
                        "id {v} is not an integer in [0, {})",
                        self.input_dim
                    ))
                } else {
                    Ok(f as usize)
                }
            })
            .collect()
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let ids = self.ids(xs[0])?;
        let table = cx.param(&self.table);
        let mut shape = xs[0].shape().to_vec();
        shape.push(self.output_dim);
        let mut y = ArrayD::zeros(IxDyn(&[ids.len(), self.output_dim]));
        for (r, &id) in ids.iter().enumerate() {
            y.index_axis_mut(Axis(0), r)
                .assign(&table.index_axis(Axis(0), id));
        }
        let y = y
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| e.to_string())?;
        Ok(Out::one(y))
    }

    /// The table gradient as TensorFlow's `IndexedSlices`: one row of `dy` per looked-up id.
    pub(crate) fn slices<F: Float>(&self, cx: &BwdCx<'_, F>) -> (String, IndexedSlices<F>) {
        let ids = match self.ids(cx.xs[0]) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let values = super::util::reshape(cx.dys[0].clone(), &[ids.len(), self.output_dim]);
        let values = match values.into_dimensionality::<ndarray::Ix2>() {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        (
            self.table.clone(),
            IndexedSlices {
                indices: ids,
                values,
                rows: self.input_dim,
            },
        )
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let ids = match self.ids(cx.xs[0]) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let mut dt = ArrayD::<F>::zeros(IxDyn(&[self.input_dim, self.output_dim]));
        let dy = super::util::reshape(cx.dys[0].clone(), &[ids.len(), self.output_dim]);
        for (r, &id) in ids.iter().enumerate() {
            if Some(id) == self.padding_idx {
                continue;
            }
            let mut row = dt.index_axis_mut(Axis(0), id);
            row += &dy.index_axis(Axis(0), r);
        }
        NodeGrads {
            dxs: vec![None],
            dparams: vec![(self.table.clone(), dt)],
        }
    }
}
