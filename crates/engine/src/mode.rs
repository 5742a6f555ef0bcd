//! What a pass runs in: [`Mode`] (inference or training semantics) and the caller's
//! [`DropoutMasks`]. A leaf module: the kernels under `ops/` and the passes both read it.

use std::collections::BTreeMap;

use ndarray::ArrayD;

/// Inference (`model(x)`, `model.eval()`) or training (`fit`, `model.train()`) semantics:
/// BatchNorm batch statistics and running updates, dropout masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Training,
}

/// Dropout keep-masks (0/1, broadcastable to the node's input) by Dropout node name. In
/// training mode a Dropout node with a mask applies it with inverted scaling; without one it is
/// the identity.
pub type DropoutMasks<F> = BTreeMap<String, ArrayD<F>>;
