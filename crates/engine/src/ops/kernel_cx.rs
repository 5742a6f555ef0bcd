//! What every kernel sees: the compile-time [`NodeCx`], the forward and backward contexts
//! ([`FwdCx`], [`BwdCx`]), what a kernel returns ([`Out`], [`Saved`], [`NodeGrads`]). A leaf
//! of the op modules: it knows no kernel, so each op depends on it without a circle through
//! the [`super::Kernel`] enum.

use std::collections::BTreeMap;

use model_ir::{Node, Param, ParamRole};
use ndarray::ArrayD;

use crate::error::EngineError;
use crate::float::Float;
use crate::mode::{DropoutMasks, Mode};
use crate::params::ParamStore;

/// Parameter shapes as recorded by the program, for shape inference.
pub(crate) type ParamShapes = BTreeMap<String, Vec<usize>>;

/// What a kernel's forward pass can reach.
pub(crate) struct FwdCx<'a, F> {
    pub(crate) params: &'a ParamStore<F>,
    pub(crate) mode: Mode,
    pub(crate) masks: &'a DropoutMasks<F>,
    pub(crate) node: &'a str,
    /// Running-statistic updates produced by this pass (parameter name → new value).
    pub(crate) stats: &'a mut BTreeMap<String, ArrayD<F>>,
}

impl<F: Float> FwdCx<'_, F> {
    /// A parameter the program validated; present by construction.
    pub(crate) fn param(&self, name: &str) -> &ArrayD<F> {
        param(self.params, name)
    }
}

/// Looks up a parameter the program validated before the pass started.
pub(crate) fn param<'a, F>(params: &'a ParamStore<F>, name: &str) -> &'a ArrayD<F> {
    match params.values.get(name) {
        Some(v) => v,
        None => panic!("parameter `{name}` was checked before the pass but is missing"),
    }
}

/// A kernel's outputs and what its backward pass needs.
#[derive(Debug)]
pub(crate) struct Out<F> {
    pub(crate) ys: Vec<ArrayD<F>>,
    pub(crate) saved: Saved<F>,
}

impl<F> Out<F> {
    /// One output, nothing saved.
    pub(crate) fn one(y: ArrayD<F>) -> Out<F> {
        Out {
            ys: vec![y],
            saved: Saved::default(),
        }
    }
}

/// Per-node state kept on the tape for the backward pass.
#[derive(Debug, Clone)]
pub(crate) struct Saved<F> {
    /// The input of the node's final activation (`z` in `y = act(z)`), when it has one.
    pub(crate) pre: Option<ArrayD<F>>,
    /// Op-specific arrays (normalized inputs, gate values, ...).
    pub(crate) arrays: Vec<ArrayD<F>>,
    /// Op-specific indices (arg-max positions, ...).
    pub(crate) idx: Vec<usize>,
    /// Op-specific flag (e.g. BatchNorm used batch statistics).
    pub(crate) flag: bool,
}

impl<F> Default for Saved<F> {
    fn default() -> Self {
        Saved {
            pre: None,
            arrays: Vec::new(),
            idx: Vec::new(),
            flag: false,
        }
    }
}

/// What a kernel's backward pass can reach.
pub(crate) struct BwdCx<'a, F> {
    pub(crate) params: &'a ParamStore<F>,
    pub(crate) xs: Vec<&'a ArrayD<F>>,
    pub(crate) ys: Vec<&'a ArrayD<F>>,
    pub(crate) saved: &'a Saved<F>,
    /// Gradient of the objective w.r.t. each output (zeros where none flowed).
    pub(crate) dys: &'a [ArrayD<F>],
    /// Extra gradient w.r.t. the pre-activation `z` (the loss's logits shortcut).
    pub(crate) seed: Option<&'a ArrayD<F>>,
}

impl<F: Float> BwdCx<'_, F> {
    pub(crate) fn param(&self, name: &str) -> &ArrayD<F> {
        param(self.params, name)
    }
}

/// Gradients a kernel returns: per input (`None` = not differentiable) and per parameter.
#[derive(Debug)]
pub(crate) struct NodeGrads<F> {
    pub(crate) dxs: Vec<Option<ArrayD<F>>>,
    pub(crate) dparams: Vec<(String, ArrayD<F>)>,
}

impl<F> NodeGrads<F> {
    /// A single input gradient, no parameters.
    pub(crate) fn input(dx: ArrayD<F>) -> NodeGrads<F> {
        NodeGrads {
            dxs: vec![Some(dx)],
            dparams: Vec::new(),
        }
    }
}

/// Compile-time context: the node being resolved, for error messages and parameter lookup.
pub(crate) struct NodeCx<'a> {
    pub(crate) node: &'a Node,
    pub(crate) kind: &'static str,
}

impl<'a> NodeCx<'a> {
    pub(crate) fn new(node: &'a Node) -> NodeCx<'a> {
        NodeCx {
            node,
            kind: node.op.kind(),
        }
    }

    pub(crate) fn unsupported(&self, what: impl Into<String>) -> EngineError {
        EngineError::Unsupported {
            node: self.node.name.clone(),
            kind: self.kind,
            what: what.into(),
        }
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            node: self.node.name.clone(),
            kind: self.kind,
            message: message.into(),
        }
    }

    /// Every parameter with this role, in stored order.
    pub(crate) fn params_with(&self, role: ParamRole) -> Vec<&'a Param> {
        self.node.params.iter().filter(|p| p.role == role).collect()
    }

    /// The only parameter with this role, if any.
    pub(crate) fn opt_param(&self, role: ParamRole) -> Result<Option<&'a Param>, EngineError> {
        let found = self.params_with(role);
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(found[0])),
            n => Err(self.invalid(format!("{n} parameters with role {}", role.name()))),
        }
    }

    /// The only parameter with this role.
    pub(crate) fn req_param(&self, role: ParamRole) -> Result<&'a Param, EngineError> {
        self.opt_param(role)?
            .ok_or_else(|| self.invalid(format!("missing parameter with role {}", role.name())))
    }

    /// Checks the node's input count.
    pub(crate) fn inputs(&self, min: usize, max: usize) -> Result<(), EngineError> {
        let n = self.node.inputs.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.invalid(format!("expects {want} input(s), has {n}")));
        }
        Ok(())
    }

    /// Checks that the node declares at most `max` outputs (and at least one).
    pub(crate) fn outputs(&self, max: usize) -> Result<(), EngineError> {
        let n = self.node.outputs.len();
        if n == 0 || n > max {
            return Err(self.invalid(format!("declares {n} outputs, the op produces {max}")));
        }
        Ok(())
    }
}
