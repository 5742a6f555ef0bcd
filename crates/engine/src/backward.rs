//! The backward pass: walks the tape in reverse and applies each node's vector-Jacobian product.
//! One exhaustive `match` over the kernels ([`vjp`]) so that no op can lack a gradient.

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};

use crate::error::EngineError;
use crate::float::Float;
use crate::forward::{Tape, fused_activation};
use crate::ops::{BwdCx, Kernel, NodeGrads};
use crate::params::{Grads, IndexedSlices};

/// The gradient of the objective with respect to one model output.
#[derive(Debug, Clone)]
pub enum OutputGrad<F> {
    /// The output does not enter the objective.
    None,
    /// `∂L/∂output`.
    Value(ArrayD<F>),
    /// `∂L/∂logits` for an output produced by a softmax or sigmoid (see
    /// [`Tape::output_logits`]): the loss scored the logits directly (Keras TF backend), so the
    /// activation's own VJP is bypassed.
    Logits(ArrayD<F>),
}

/// Gradients of a scalar objective for every trainable parameter (by its framework-native
/// name) and every graph input, given the gradients w.r.t. the model outputs.
pub fn backward<F: Float>(
    tape: &Tape<'_, F>,
    d_outputs: &[OutputGrad<F>],
) -> Result<Grads<F>, EngineError> {
    let program = tape.program;
    if d_outputs.len() != program.outputs.len() {
        return Err(EngineError::Backward(format!(
            "{} output gradient(s) for {} output(s)",
            d_outputs.len(),
            program.outputs.len()
        )));
    }
    let mut grads: Vec<Option<ArrayD<F>>> = vec![None; program.slots.len()];
    let mut seeds: BTreeMap<usize, &ArrayD<F>> = BTreeMap::new();
    for (i, d) in d_outputs.iter().enumerate() {
        let slot = program.outputs[i];
        match d {
            OutputGrad::None => {}
            OutputGrad::Value(g) => {
                let v = &tape.values[slot];
                if g.shape() != v.shape() {
                    return Err(EngineError::Backward(format!(
                        "gradient of output `{}` has shape {:?}, the output {:?}",
                        program.output_names[i],
                        g.shape(),
                        v.shape()
                    )));
                }
                add(&mut grads[slot], g.clone());
            }
            OutputGrad::Logits(g) => {
                let (_, logits) = tape.output_logits(i).ok_or_else(|| {
                    EngineError::Backward(format!(
                        "output `{}` is not produced by a softmax or sigmoid",
                        program.output_names[i]
                    ))
                })?;
                if g.shape() != logits.shape() {
                    return Err(EngineError::Backward(format!(
                        "logits gradient of output `{}` has shape {:?}, the logits {:?}",
                        program.output_names[i],
                        g.shape(),
                        logits.shape()
                    )));
                }
                let ni = program.producer[slot].unwrap_or(usize::MAX);
                seeds.insert(ni, g);
            }
        }
    }
    let mut pgrads: BTreeMap<String, ArrayD<F>> = BTreeMap::new();
    let mut slices: BTreeMap<String, IndexedSlices<F>> = BTreeMap::new();
    for (ni, node) in program.nodes.iter().enumerate().rev() {
        let seed = seeds.get(&ni).copied();
        let mut stand_alone_seed = None;
        if let (Some(s), Kernel::Activation(_)) = (seed, &node.kernel) {
            // A stand-alone softmax: the logits are its input; pass the seed straight through.
            stand_alone_seed = Some(s.clone());
        }
        let has_grad = node.outputs.iter().any(|&s| grads[s].is_some());
        if !has_grad && seed.is_none() {
            continue;
        }
        if let Some(s) = stand_alone_seed
            && !has_grad
        {
            add(&mut grads[node.inputs[0]], s);
            continue;
        }
        if seed.is_some() && fused_activation(&node.kernel).is_none() {
            return Err(EngineError::Backward(format!(
                "node `{}` has no activation to bypass",
                node.name
            )));
        }
        let dys: Vec<ArrayD<F>> = node
            .outputs
            .iter()
            .map(|&s| {
                grads[s]
                    .take()
                    .unwrap_or_else(|| ArrayD::zeros(tape.values[s].raw_dim()))
            })
            .collect();
        let cx = BwdCx {
            params: tape.params,
            xs: node.inputs.iter().map(|&s| &tape.values[s]).collect(),
            ys: node.outputs.iter().map(|&s| &tape.values[s]).collect(),
            saved: &tape.saved[ni],
            dys: &dys,
            seed,
        };
        let NodeGrads { dxs, dparams } = vjp(&node.kernel, &cx);
        if let Kernel::Embedding(e) = &node.kernel {
            let (name, s) = e.slices(&cx);
            if program.trainable.contains(&name) {
                match slices.get_mut(&name) {
                    Some(acc) => {
                        let acc: &mut IndexedSlices<F> = acc;
                        acc.indices.extend(&s.indices);
                        acc.values = ndarray::concatenate(
                            ndarray::Axis(0),
                            &[acc.values.view(), s.values.view()],
                        )
                        .map_err(|e| EngineError::Backward(e.to_string()))?;
                    }
                    None => {
                        slices.insert(name, s);
                    }
                }
            }
        }
        for (&s, dx) in node.inputs.iter().zip(dxs) {
            if let Some(dx) = dx {
                if dx.shape() != tape.values[s].shape() {
                    return Err(EngineError::Backward(format!(
                        "node `{}` returned an input gradient of shape {:?} for a value of shape {:?}",
                        node.name,
                        dx.shape(),
                        tape.values[s].shape()
                    )));
                }
                add(&mut grads[s], dx);
            }
        }
        for (name, g) in dparams {
            let shape = &program.param_shapes[&name];
            let g = if g.shape() == shape.as_slice() {
                g
            } else if g.len() == shape.iter().product::<usize>() {
                let v: Vec<F> = g.iter().copied().collect();
                ArrayD::from_shape_vec(IxDyn(shape), v)
                    .map_err(|e| EngineError::Backward(e.to_string()))?
            } else {
                return Err(EngineError::Backward(format!(
                    "node `{}` returned a gradient of shape {:?} for `{name}` of shape {shape:?}",
                    node.name,
                    g.shape()
                )));
            };
            match pgrads.get_mut(&name) {
                Some(acc) => *acc += &g,
                None => {
                    pgrads.insert(name, g);
                }
            }
        }
    }
    let params = program
        .trainable
        .iter()
        .map(|name| {
            let g = pgrads
                .remove(name)
                .unwrap_or_else(|| ArrayD::zeros(IxDyn(&program.param_shapes[name])));
            (name.clone(), g)
        })
        .collect();
    let inputs = program
        .inputs
        .iter()
        .map(|&(_, s)| {
            grads[s]
                .take()
                .unwrap_or_else(|| ArrayD::zeros(tape.values[s].raw_dim()))
        })
        .collect();
    Ok(Grads {
        params,
        inputs,
        indexed_slices: slices,
    })
}

fn add<F: Float>(slot: &mut Option<ArrayD<F>>, g: ArrayD<F>) {
    match slot {
        Some(acc) => *acc += &g,
        None => *slot = Some(g),
    }
}

/// The vector-Jacobian product of one node (exhaustive over [`Kernel`]).
fn vjp<F: Float>(k: &Kernel, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
    match k {
        Kernel::Input(k) => k.backward(cx),
        Kernel::Dense(k) => k.backward(cx),
        Kernel::Conv(k) => k.backward(cx),
        Kernel::DepthwiseConv(k) => k.backward(cx),
        Kernel::SeparableConv(k) => k.backward(cx),
        Kernel::ConvTranspose(k) => k.backward(cx),
        Kernel::BatchNorm(k) => k.backward(cx),
        Kernel::LayerNorm(k) => k.backward(cx),
        Kernel::GroupNorm(k) => k.backward(cx),
        Kernel::Activation(k) => k.backward(cx),
        Kernel::Dropout(k) => k.backward(cx),
        Kernel::Flatten(k) => k.backward(cx),
        Kernel::Reshape(k) => k.backward(cx),
        Kernel::ReshapeAll(k) => k.backward(cx),
        Kernel::Permute(k) => k.backward(cx),
        Kernel::Pool(k) => k.backward(cx),
        Kernel::GlobalPool(k) => k.backward(cx),
        Kernel::Pad(k) => k.backward(cx),
        Kernel::UpSampling(k) => k.backward(cx),
        Kernel::Resize(k) => k.backward(cx),
        Kernel::Embedding(k) => k.backward(cx),
        Kernel::Rnn(k) => k.backward(cx),
        Kernel::Merge(k) => k.backward(cx),
        Kernel::ConstantBinary(k) => k.backward(cx),
        Kernel::Unary(k) => k.backward(cx),
        Kernel::Rescaling(k) => k.backward(cx),
        Kernel::Normalization(k) => k.backward(cx),
        Kernel::Identity(k) => k.backward(cx),
        Kernel::Reduce(k) => k.backward(cx),
        Kernel::Select(k) => k.backward(cx),
        Kernel::Slice(k) => k.backward(cx),
        Kernel::Squeeze(k) => k.backward(cx),
        Kernel::Unsqueeze(k) => k.backward(cx),
    }
}
