//! The forward pass: runs every node in order and records a [`Tape`] of all values and what
//! each node's backward pass needs.

use std::collections::BTreeMap;

use model_ir::Activation;
use ndarray::{ArrayD, IxDyn};

use crate::error::EngineError;
use crate::float::Float;
// Re-exported for the modules that run passes (`train.rs`); the type lives in the leaf `mode`.
pub(crate) use crate::mode::{DropoutMasks, Mode};
use crate::ops::{FwdCx, Kernel, Out, Saved};
use crate::params::{ParamStore, StatUpdates};
use crate::program::Program;

/// Every value computed by a forward pass, with the state the backward pass needs.
#[derive(Debug)]
pub struct Tape<'a, F> {
    pub(crate) program: &'a Program,
    pub(crate) params: &'a ParamStore<F>,
    pub(crate) mode: Mode,
    /// Value per program slot.
    pub(crate) values: Vec<ArrayD<F>>,
    /// Backward state per node.
    pub(crate) saved: Vec<Saved<F>>,
}

/// The result of [`forward`].
#[derive(Debug)]
pub struct Forward<'a, F> {
    /// The model outputs, in the program's output order.
    pub outputs: Vec<ArrayD<F>>,
    pub tape: Tape<'a, F>,
    /// New running statistics (training mode only); apply with [`ParamStore::apply`].
    pub stats: StatUpdates<F>,
}

impl<'a, F: Float> Tape<'a, F> {
    /// The mode the pass ran in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The program the pass ran.
    pub fn program(&self) -> &'a Program {
        self.program
    }

    /// A value by name (graph input or node output; the latest definition of a reused name).
    pub fn value(&self, name: &str) -> Option<&ArrayD<F>> {
        self.program
            .slots
            .iter()
            .rposition(|s| s == name)
            .map(|i| &self.values[i])
    }

    /// The outputs of a node, by node name.
    pub fn node_outputs(&self, node: &str) -> Option<Vec<&ArrayD<F>>> {
        self.program
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.outputs.iter().map(|&s| &self.values[s]).collect())
    }

    /// Every node's outputs in execution order: `(node name, outputs)`.
    pub fn activations(&self) -> Vec<(&str, Vec<&ArrayD<F>>)> {
        self.program
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.outputs.iter().map(|&s| &self.values[s]).collect(),
                )
            })
            .collect()
    }

    /// For model output `i` produced by a softmax or sigmoid (stand-alone or fused into a
    /// Dense/Conv layer): that activation and its input, the logits. This is what the Keras
    /// TensorFlow backend scores instead of the probabilities (`_keras_logits`).
    pub fn output_logits(&self, i: usize) -> Option<(&Activation, &ArrayD<F>)> {
        let slot = *self.program.outputs.get(i)?;
        let ni = self.program.producer[slot]?;
        let node = &self.program.nodes[ni];
        if node.outputs.first() != Some(&slot) {
            return None;
        }
        let (act, logits) = match &node.kernel {
            Kernel::Activation(a) => (&a.function, &self.values[node.inputs[0]]),
            other => (fused_activation(other)?, self.saved[ni].pre.as_ref()?),
        };
        matches!(act, Activation::Softmax { .. } | Activation::Sigmoid).then_some((act, logits))
    }
}

/// The activation fused into a layer, if the layer has one.
pub(crate) fn fused_activation(k: &Kernel) -> Option<&Activation> {
    match k {
        Kernel::Dense(d) => Some(&d.activation),
        Kernel::Conv(d) => Some(&d.activation),
        Kernel::DepthwiseConv(d) => Some(&d.activation),
        Kernel::SeparableConv(d) => Some(&d.activation),
        Kernel::ConvTranspose(d) => Some(&d.activation),
        Kernel::Activation(a) => Some(&a.function),
        _ => None,
    }
}

/// Runs the program on `inputs` (one array per graph input, in [`Program::input_names`] order).
pub fn forward<'a, F: Float>(
    program: &'a Program,
    params: &'a ParamStore<F>,
    inputs: &[ArrayD<F>],
    mode: Mode,
    masks: &DropoutMasks<F>,
) -> Result<Forward<'a, F>, EngineError> {
    program.check_params(params)?;
    for name in masks.keys() {
        let ok = program
            .nodes
            .iter()
            .any(|n| &n.name == name && matches!(n.kernel, Kernel::Dropout(_)));
        if !ok {
            return Err(EngineError::Mask {
                node: name.clone(),
                message: "no Dropout node has that name".into(),
            });
        }
    }
    let in_shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
    let shapes = program.slot_shapes(&in_shapes)?;
    let mut values: Vec<ArrayD<F>> = vec![ArrayD::zeros(IxDyn(&[0])); program.slots.len()];
    for ((_, s), x) in program.inputs.iter().zip(inputs) {
        values[*s] = x.clone();
    }
    let mut saved = Vec::with_capacity(program.nodes.len());
    let mut stats = BTreeMap::new();
    for node in &program.nodes {
        let xs: Vec<&ArrayD<F>> = node.inputs.iter().map(|&s| &values[s]).collect();
        let mut cx = FwdCx {
            params,
            mode,
            masks,
            node: &node.name,
            stats: &mut stats,
        };
        let out = run(&node.kernel, &mut cx, &xs).map_err(|message| EngineError::Shape {
            node: node.name.clone(),
            kind: node.kind,
            message,
        })?;
        for (&s, y) in node.outputs.iter().zip(out.ys) {
            if y.shape() != shapes[s].as_slice() {
                return Err(EngineError::Shape {
                    node: node.name.clone(),
                    kind: node.kind,
                    message: format!(
                        "computed shape {:?} differs from the inferred {:?}",
                        y.shape(),
                        shapes[s]
                    ),
                });
            }
            values[s] = y;
        }
        saved.push(out.saved);
    }
    let outputs = program.outputs.iter().map(|&s| values[s].clone()).collect();
    Ok(Forward {
        outputs,
        tape: Tape {
            program,
            params,
            mode,
            values,
            saved,
        },
        stats: StatUpdates { values: stats },
    })
}

/// Dispatches a kernel's forward pass (exhaustive over [`Kernel`]).
fn run<F: Float>(k: &Kernel, cx: &mut FwdCx<'_, F>, xs: &[&ArrayD<F>]) -> Result<Out<F>, String> {
    match k {
        Kernel::Input(k) => k.forward(cx, xs),
        Kernel::Dense(k) => k.forward(cx, xs),
        Kernel::Conv(k) => k.forward(cx, xs),
        Kernel::DepthwiseConv(k) => k.forward(cx, xs),
        Kernel::SeparableConv(k) => k.forward(cx, xs),
        Kernel::ConvTranspose(k) => k.forward(cx, xs),
        Kernel::BatchNorm(k) => k.forward(cx, xs),
        Kernel::LayerNorm(k) => k.forward(cx, xs),
        Kernel::GroupNorm(k) => k.forward(cx, xs),
        Kernel::Activation(k) => k.forward(cx, xs),
        Kernel::Dropout(k) => k.forward(cx, xs),
        Kernel::Flatten(k) => k.forward(cx, xs),
        Kernel::Reshape(k) => k.forward(cx, xs),
        Kernel::ReshapeAll(k) => k.forward(cx, xs),
        Kernel::Permute(k) => k.forward(cx, xs),
        Kernel::Pool(k) => k.forward(cx, xs),
        Kernel::GlobalPool(k) => k.forward(cx, xs),
        Kernel::Pad(k) => k.forward(cx, xs),
        Kernel::UpSampling(k) => k.forward(cx, xs),
        Kernel::Resize(k) => k.forward(cx, xs),
        Kernel::Embedding(k) => k.forward(cx, xs),
        Kernel::Rnn(k) => k.forward(cx, xs),
        Kernel::Merge(k) => k.forward(cx, xs),
        Kernel::ConstantBinary(k) => k.forward(cx, xs),
        Kernel::Unary(k) => k.forward(cx, xs),
        Kernel::Rescaling(k) => k.forward(cx, xs),
        Kernel::Normalization(k) => k.forward(cx, xs),
        Kernel::Identity(k) => k.forward(cx, xs),
        Kernel::Reduce(k) => k.forward(cx, xs),
        Kernel::Select(k) => k.forward(cx, xs),
        Kernel::Slice(k) => k.forward(cx, xs),
        Kernel::Squeeze(k) => k.forward(cx, xs),
        Kernel::Unsqueeze(k) => k.forward(cx, xs),
    }
}
