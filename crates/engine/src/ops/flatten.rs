//! Flatten every axis from `start_axis` on, in the element order the IR states.
//!
//! `order` names the order of the flattened elements in terms of the logical axes:
//! `channels_last` = H, W, C (every Keras `Flatten`: with `data_format='channels_first'` it first
//! transposes to channels-last, `keras/src/layers/reshaping/flatten.py`), `channels_first` =
//! C, H, W (`torch.flatten` of an NCHW tensor). When the tensor's own layout (inferred by the
//! program from the nearest upstream layer with a `layout`, through layout-preserving ops) differs
//! from `order`, the channel axis is moved before flattening; when it is unknown or equal, the
//! flatten is a plain row-major reshape (catalogue `flatten-order`).
//! VJP: reshape `dy` back and undo the permutation.

use model_ir::DataLayout;
use ndarray::ArrayD;

use super::util::{inverse_perm, norm_axis, permuted, reshape, to_first_perm, to_last_perm};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Flatten {
    pub(crate) start_axis: i64,
    pub(crate) order: DataLayout,
    /// Layout of the input tensor, when the program could infer it.
    pub(crate) input_layout: Option<DataLayout>,
}

impl Flatten {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        start_axis: i64,
        order: DataLayout,
        input_layout: Option<DataLayout>,
    ) -> Result<Flatten, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Flatten {
            start_axis,
            order,
            input_layout,
        })
    }

    /// The permutation applied before the reshape, if any.
    fn perm(&self, rank: usize, start: usize) -> Option<Vec<usize>> {
        if start != 1 || rank < 3 {
            return None;
        }
        match (self.input_layout, self.order) {
            (Some(DataLayout::ChannelsFirst), DataLayout::ChannelsLast) => Some(to_last_perm(rank)),
            (Some(DataLayout::ChannelsLast), DataLayout::ChannelsFirst) => {
                Some(to_first_perm(rank))
            }
            _ => None,
        }
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        let ax = norm_axis(self.start_axis, x.len())?;
        let mut y = x[..ax].to_vec();
        y.push(x[ax..].iter().product());
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let out = self.infer(&[x.shape()])?.remove(0);
        let ax = norm_axis(self.start_axis, x.ndim())?;
        let y = match self.perm(x.ndim(), ax) {
            Some(p) => reshape(permuted(x, &p), &out),
            None => reshape(x.clone(), &out),
        };
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let ax = norm_axis(self.start_axis, x.ndim()).unwrap_or(1);
        let dy = cx.dys[0].clone();
        let dx = match self.perm(x.ndim(), ax) {
            Some(p) => {
                let pshape: Vec<usize> = p.iter().map(|&i| x.shape()[i]).collect();
                permuted(&reshape(dy, &pshape), &inverse_perm(&p))
            }
            None => reshape(dy, x.shape()),
        };
        NodeGrads::input(dx)
    }
}
