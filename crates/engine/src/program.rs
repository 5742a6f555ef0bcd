//! A model compiled for execution: every node resolved to a kernel, values numbered, parameters
//! checked, once; shapes are inferred per run from the input shapes.

use std::collections::BTreeMap;

use model_ir::{DataLayout, Framework, Model, Op};

use crate::error::EngineError;
use crate::float::Float;
use crate::ops::{self, Kernel, NodeCx, ParamShapes};
use crate::params::ParamStore;

/// A validated, executable model.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) name: String,
    pub(crate) framework: Framework,
    /// Graph inputs in call order: (name, value slot).
    pub(crate) inputs: Vec<(String, usize)>,
    /// Declared shape of each graph input (`None` = free dimension; empty = unknown).
    pub(crate) input_shapes: Vec<Vec<Option<usize>>>,
    /// Model outputs: value slots and names.
    pub(crate) outputs: Vec<usize>,
    pub(crate) output_names: Vec<String>,
    /// Name of each value slot.
    pub(crate) slots: Vec<String>,
    /// Which node produced each slot (`None` for graph inputs).
    pub(crate) producer: Vec<Option<usize>>,
    pub(crate) nodes: Vec<PNode>,
    pub(crate) param_shapes: ParamShapes,
    /// Trainable parameter names in model order.
    pub(crate) trainable: Vec<String>,
}

/// One compiled node.
#[derive(Debug, Clone)]
pub(crate) struct PNode {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) kernel: Kernel,
    pub(crate) inputs: Vec<usize>,
    pub(crate) outputs: Vec<usize>,
    /// Every parameter of the node (trainable or not), in stored order.
    pub(crate) params: Vec<String>,
}

impl Program {
    /// Validates `model` and resolves every node. Errors name the node and the problem.
    pub fn new(model: &Model) -> Result<Program, EngineError> {
        model.validate()?;
        let mut slots: Vec<String> = Vec::new();
        let mut producer: Vec<Option<usize>> = Vec::new();
        let mut slot_of: BTreeMap<String, usize> = BTreeMap::new();
        let mut layouts: Vec<Option<DataLayout>> = Vec::new();
        let mut inputs = Vec::new();
        let mut input_shapes = Vec::new();
        for vi in &model.inputs {
            input_shapes.push(vi.shape.clone());
            let s = slots.len();
            slots.push(vi.name.clone());
            producer.push(None);
            layouts.push(None);
            slot_of.insert(vi.name.clone(), s);
            inputs.push((vi.name.clone(), s));
        }
        let mut nodes = Vec::with_capacity(model.nodes.len());
        let mut param_shapes = BTreeMap::new();
        let mut trainable = Vec::new();
        for (ni, node) in model.nodes.iter().enumerate() {
            let cx = NodeCx::new(node);
            // An Input node without an operand reads the graph input of its output's name (or
            // its own name), which becomes a graph input if the model does not list it.
            let in_slots: Vec<usize> =
                if matches!(node.op, Op::Input { .. }) && node.inputs.is_empty() {
                    let key = node
                        .outputs
                        .first()
                        .filter(|o| inputs.iter().any(|(n, _)| n == *o))
                        .cloned()
                        .or_else(|| {
                            inputs
                                .iter()
                                .find(|(n, _)| *n == node.name)
                                .map(|(n, _)| n.clone())
                        });
                    let s = match key {
                        Some(k) => slot_of[&k],
                        None => {
                            let name = node
                                .outputs
                                .first()
                                .cloned()
                                .unwrap_or_else(|| node.name.clone());
                            let s = slots.len();
                            slots.push(name.clone());
                            producer.push(None);
                            layouts.push(None);
                            slot_of.insert(name.clone(), s);
                            inputs.push((name, s));
                            input_shapes.push(Vec::new());
                            s
                        }
                    };
                    vec![s]
                } else {
                    node.inputs
                        .iter()
                        .map(|v| {
                            slot_of.get(v).copied().ok_or_else(|| {
                                cx.invalid(format!("reads `{v}`, which nothing defines before it"))
                            })
                        })
                        .collect::<Result<_, _>>()?
                };
            let in_layout = in_slots.first().and_then(|&s| layouts[s]);
            let kernel = compile(&cx, in_layout)?;
            let out_layout = output_layout(&node.op, in_layout);
            let mut out_slots = Vec::new();
            for o in &node.outputs {
                let s = slots.len();
                slots.push(o.clone());
                producer.push(Some(ni));
                layouts.push(out_layout);
                slot_of.insert(o.clone(), s);
                out_slots.push(s);
            }
            for p in &node.params {
                param_shapes.insert(p.name.clone(), p.tensor.shape().to_vec());
                if p.trainable {
                    trainable.push(p.name.clone());
                }
            }
            nodes.push(PNode {
                name: node.name.clone(),
                kind: cx.kind,
                kernel,
                inputs: in_slots,
                outputs: out_slots,
                params: node.params.iter().map(|p| p.name.clone()).collect(),
            });
        }
        let outputs = model
            .outputs
            .iter()
            .map(|o| {
                slot_of.get(o).copied().ok_or_else(|| EngineError::Input {
                    input: o.clone(),
                    message: "model output is never defined".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if outputs.is_empty() {
            return Err(EngineError::Input {
                input: model.name.clone(),
                message: "the model has no outputs".into(),
            });
        }
        Ok(Program {
            name: model.name.clone(),
            framework: model.framework,
            inputs,
            input_shapes,
            outputs,
            output_names: model.outputs.clone(),
            slots,
            producer,
            nodes,
            param_shapes,
            trainable,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The framework the model came from.
    pub fn framework(&self) -> Framework {
        self.framework
    }

    /// Graph input names in the order `forward` expects them.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Model output names in the order `forward` returns them.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Node names in execution order.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Parameters of a node, in stored order.
    pub fn node_params(&self, node: &str) -> Option<&[String]> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.params.as_slice())
    }

    /// Trainable parameter names in model order.
    pub fn trainable(&self) -> &[String] {
        &self.trainable
    }

    /// Shapes of every parameter as the model stores them.
    pub fn param_shapes(&self) -> &BTreeMap<String, Vec<usize>> {
        &self.param_shapes
    }

    /// Infers the shape of every value (by name) from the input shapes.
    pub fn infer_shapes(
        &self,
        inputs: &[&[usize]],
    ) -> Result<BTreeMap<String, Vec<usize>>, EngineError> {
        let shapes = self.slot_shapes(inputs)?;
        Ok(self.slots.iter().cloned().zip(shapes).collect())
    }

    /// Shapes per value slot.
    pub(crate) fn slot_shapes(&self, inputs: &[&[usize]]) -> Result<Vec<Vec<usize>>, EngineError> {
        if inputs.len() != self.inputs.len() {
            return Err(EngineError::Input {
                input: self.input_names().join(", "),
                message: format!(
                    "expected {} input(s), got {}",
                    self.inputs.len(),
                    inputs.len()
                ),
            });
        }
        let mut shapes: Vec<Vec<usize>> = vec![Vec::new(); self.slots.len()];
        for (((name, s), shape), declared) in self.inputs.iter().zip(inputs).zip(&self.input_shapes)
        {
            ops::input::check_declared(declared, shape).map_err(|message| EngineError::Input {
                input: name.clone(),
                message,
            })?;
            shapes[*s] = shape.to_vec();
        }
        for node in &self.nodes {
            let xs: Vec<&[usize]> = node.inputs.iter().map(|&s| shapes[s].as_slice()).collect();
            let ys = infer(&node.kernel, &self.param_shapes, &xs).map_err(|message| {
                EngineError::Shape {
                    node: node.name.clone(),
                    kind: node.kind,
                    message,
                }
            })?;
            if ys.len() < node.outputs.len() {
                return Err(EngineError::Shape {
                    node: node.name.clone(),
                    kind: node.kind,
                    message: format!(
                        "produces {} outputs, the node declares {}",
                        ys.len(),
                        node.outputs.len()
                    ),
                });
            }
            for (&s, y) in node.outputs.iter().zip(ys) {
                shapes[s] = y;
            }
        }
        Ok(shapes)
    }

    /// Checks that the store holds every parameter with the model's shape.
    pub fn check_params<F: Float>(&self, params: &ParamStore<F>) -> Result<(), EngineError> {
        for (name, shape) in &self.param_shapes {
            match params.values.get(name) {
                None => {
                    return Err(EngineError::Param {
                        name: name.clone(),
                        message: "missing from the parameter store".into(),
                    });
                }
                Some(v) if v.shape() != shape.as_slice() => {
                    return Err(EngineError::Param {
                        name: name.clone(),
                        message: format!("has shape {:?}, the model stores {shape:?}", v.shape()),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Resolves one node (exhaustive over [`Op`], by family).
fn compile(cx: &NodeCx<'_>, in_layout: Option<DataLayout>) -> Result<Kernel, EngineError> {
    match &cx.node.op {
        Op::Dense { .. }
        | Op::Conv { .. }
        | Op::DepthwiseConv { .. }
        | Op::SeparableConv { .. }
        | Op::ConvTranspose { .. }
        | Op::Embedding { .. }
        | Op::Rnn { .. } => compile_weighted(cx),
        Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::Normalization { .. }
        | Op::Rescaling { .. } => compile_normalization(cx),
        Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::ReshapeAll { .. }
        | Op::Permute { .. }
        | Op::Pool { .. }
        | Op::GlobalPool { .. }
        | Op::Pad { .. }
        | Op::UpSampling { .. }
        | Op::Resize { .. }
        | Op::Reduce { .. }
        | Op::Select { .. }
        | Op::Slice { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. } => compile_shape(cx, in_layout),
        Op::Input { .. }
        | Op::Activation { .. }
        | Op::Dropout { .. }
        | Op::Merge { .. }
        | Op::ConstantBinary { .. }
        | Op::Unary { .. }
        | Op::Identity => compile_pointwise(cx),
    }
}

/// Layers with weights: Dense, the convolutions, Embedding, the recurrent layers.
fn compile_weighted(cx: &NodeCx<'_>) -> Result<Kernel, EngineError> {
    use ops::*;
    Ok(match &cx.node.op {
        Op::Dense {
            units,
            use_bias,
            activation,
        } => Kernel::Dense(dense::Dense::compile(cx, *units, *use_bias, activation)?),
        Op::Conv {
            filters, groups, ..
        } => Kernel::Conv(conv::Conv::compile(
            cx,
            &conv::ConvSpec::of(cx)?,
            *filters,
            *groups,
        )?),
        Op::DepthwiseConv {
            depth_multiplier, ..
        } => Kernel::DepthwiseConv(depthwise_conv::DepthwiseConv::compile(
            cx,
            &conv::ConvSpec::of(cx)?,
            *depth_multiplier,
        )?),
        Op::SeparableConv {
            filters,
            depth_multiplier,
            ..
        } => Kernel::SeparableConv(separable_conv::SeparableConv::compile(
            cx,
            &conv::ConvSpec::of(cx)?,
            *filters,
            *depth_multiplier,
        )?),
        Op::ConvTranspose {
            filters,
            groups,
            output_padding,
            ..
        } => Kernel::ConvTranspose(conv_transpose::ConvTranspose::compile(
            cx,
            &conv::ConvSpec::of(cx)?,
            *filters,
            *groups,
            output_padding,
        )?),
        Op::Embedding {
            input_dim,
            output_dim,
            mask_zero,
            padding_idx,
        } => Kernel::Embedding(embedding::Embedding::compile(
            cx,
            *input_dim,
            *output_dim,
            *mask_zero,
            *padding_idx,
        )?),
        Op::Rnn {
            cell,
            units,
            activation,
            recurrent_activation,
            gate_order,
            bias,
            gru_reset,
            direction,
            return_sequences,
            return_state,
            go_backwards,
            batch_first,
            unit_forget_bias: _,
            dropout: _,
            recurrent_dropout: _,
        } => Kernel::Rnn(rnn::Rnn::compile(
            cx,
            *cell,
            *units,
            activation,
            recurrent_activation,
            *gate_order,
            *bias,
            *gru_reset,
            *direction,
            *return_sequences,
            *return_state,
            *go_backwards,
            *batch_first,
        )?),
        other => unreachable!("{} is not compiled as weighted", other.kind()),
    })
}

/// The normalizations and Rescaling.
fn compile_normalization(cx: &NodeCx<'_>) -> Result<Kernel, EngineError> {
    use ops::*;
    Ok(match &cx.node.op {
        Op::BatchNorm {
            axis,
            epsilon,
            momentum,
            running_variance,
            center,
            scale,
            trainable,
            track_running_stats,
            training_mode: _,
        } => Kernel::BatchNorm(batch_norm::BatchNorm::compile(
            cx,
            *axis,
            *epsilon,
            *momentum,
            *running_variance,
            *center,
            *scale,
            *trainable,
            *track_running_stats,
        )?),
        Op::LayerNorm {
            axes,
            epsilon,
            center,
            scale,
            rms_scaling,
        } => Kernel::LayerNorm(layer_norm::LayerNorm::compile(
            cx,
            axes,
            *epsilon,
            *center,
            *scale,
            *rms_scaling,
        )?),
        Op::GroupNorm {
            groups,
            axis,
            epsilon,
            center,
            scale,
        } => Kernel::GroupNorm(group_norm::GroupNorm::compile(
            cx, *groups, *axis, *epsilon, *center, *scale,
        )?),
        Op::Normalization {
            axes,
            invert,
            epsilon,
        } => Kernel::Normalization(normalization::Normalization::compile(
            cx, axes, *invert, *epsilon,
        )?),
        Op::Rescaling { scale, offset } => {
            Kernel::Rescaling(rescaling::Rescaling::compile(cx, *scale, *offset)?)
        }
        other => unreachable!("{} is not compiled as normalization", other.kind()),
    })
}

/// Ops that move, select, pool, pad or resample elements (`in_layout`: Flatten's order).
fn compile_shape(cx: &NodeCx<'_>, in_layout: Option<DataLayout>) -> Result<Kernel, EngineError> {
    use ops::*;
    Ok(match &cx.node.op {
        Op::Flatten { start_axis, order } => Kernel::Flatten(flatten::Flatten::compile(
            cx,
            *start_axis,
            *order,
            in_layout,
        )?),
        Op::Reshape { target_shape } => {
            Kernel::Reshape(reshape::Reshape::compile(cx, target_shape)?)
        }
        Op::ReshapeAll { shape } => Kernel::ReshapeAll(reshape::ReshapeAll::compile(cx, shape)?),
        Op::Permute { perm } => Kernel::Permute(permute::Permute::compile(cx, perm)?),
        Op::Pool {
            pool,
            rank,
            pool_size,
            strides,
            dilation,
            padding,
            layout,
            count_include_pad,
            ceil_mode,
        } => Kernel::Pool(pool::Pool::compile(
            cx,
            *pool,
            *rank,
            pool_size,
            strides,
            dilation,
            padding,
            *layout,
            *count_include_pad,
            *ceil_mode,
        )?),
        Op::GlobalPool {
            pool,
            rank,
            layout,
            keepdims,
        } => Kernel::GlobalPool(global_pool::GlobalPool::compile(
            cx, *pool, *rank, *layout, *keepdims,
        )?),
        Op::Pad {
            rank,
            begin,
            end,
            layout,
            mode,
        } => Kernel::Pad(pad::Pad::compile(cx, *rank, begin, end, *layout, *mode)?),
        Op::UpSampling {
            rank,
            size,
            interpolation,
            layout,
        } => Kernel::UpSampling(up_sampling::UpSampling::compile(
            cx,
            *rank,
            size,
            *interpolation,
            *layout,
        )?),
        Op::Resize {
            axes,
            mode,
            coordinate,
            exclude_outside,
            antialias,
        } => Kernel::Resize(resize::Resize::compile(
            cx,
            axes,
            *mode,
            *coordinate,
            *exclude_outside,
            *antialias,
        )?),
        Op::Reduce {
            reduce,
            axes,
            keepdims,
        } => Kernel::Reduce(reduce::Reduce::compile(cx, *reduce, axes, *keepdims)?),
        Op::Select { axis, index } => Kernel::Select(select::Select::compile(cx, *axis, *index)?),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => Kernel::Slice(slice::Slice::compile(cx, *axis, *start, *end, *step)?),
        Op::Squeeze { axes } => Kernel::Squeeze(squeeze::Squeeze::compile(cx, axes)?),
        Op::Unsqueeze { axes } => Kernel::Unsqueeze(unsqueeze::Unsqueeze::compile(cx, axes)?),
        other => unreachable!("{} is not compiled as shape", other.kind()),
    })
}

/// Inputs, activations, dropout, merges and the element-wise ops.
fn compile_pointwise(cx: &NodeCx<'_>) -> Result<Kernel, EngineError> {
    use ops::*;
    Ok(match &cx.node.op {
        Op::Input { shape, .. } => Kernel::Input(input::Input::compile(cx, shape)?),
        Op::Activation { function } => {
            Kernel::Activation(activation::ActivationOp::compile(cx, function)?)
        }
        Op::Dropout { rate, spatial: _ } => Kernel::Dropout(dropout::Dropout::compile(cx, *rate)?),
        Op::Merge { op } => Kernel::Merge(merge::Merge::compile(cx, *op)?),
        Op::ConstantBinary { op, constant_first } => Kernel::ConstantBinary(
            constant_binary::ConstantBinary::compile(cx, *op, *constant_first)?,
        ),
        Op::Unary { op } => Kernel::Unary(unary::Unary::compile(cx, *op)?),
        Op::Identity => Kernel::Identity(identity::Identity::compile(cx)?),
        other => unreachable!("{} is not compiled as pointwise", other.kind()),
    })
}

/// The data layout of a node's output, for Flatten's element order: set by layers with a
/// `layout`, carried through layout-preserving ops, unknown after anything else.
fn output_layout(op: &Op, input: Option<DataLayout>) -> Option<DataLayout> {
    match op {
        Op::Conv { layout, .. }
        | Op::DepthwiseConv { layout, .. }
        | Op::SeparableConv { layout, .. }
        | Op::ConvTranspose { layout, .. }
        | Op::Pool { layout, .. }
        | Op::Pad { layout, .. }
        | Op::UpSampling { layout, .. } => Some(*layout),
        Op::GlobalPool {
            layout, keepdims, ..
        } => keepdims.then_some(*layout),
        Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::Activation { .. }
        | Op::Dropout { .. }
        | Op::Merge { .. }
        | Op::ConstantBinary { .. }
        | Op::Unary { .. }
        | Op::Rescaling { .. }
        | Op::Normalization { .. }
        | Op::Resize { .. }
        | Op::Identity
        | Op::Input { .. } => input,
        Op::Dense { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::ReshapeAll { .. }
        | Op::Permute { .. }
        | Op::Embedding { .. }
        | Op::Rnn { .. }
        | Op::Reduce { .. }
        | Op::Select { .. }
        | Op::Slice { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. } => None,
    }
}

/// Output shapes of a kernel (exhaustive over [`Kernel`]).
fn infer(k: &Kernel, ps: &ParamShapes, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
    match k {
        Kernel::Input(k) => k.infer(xs),
        Kernel::Dense(k) => k.infer(ps, xs),
        Kernel::Conv(k) => k.infer(ps, xs),
        Kernel::DepthwiseConv(k) => k.infer(ps, xs),
        Kernel::SeparableConv(k) => k.infer(ps, xs),
        Kernel::ConvTranspose(k) => k.infer(ps, xs),
        Kernel::BatchNorm(k) => k.infer(ps, xs),
        Kernel::LayerNorm(k) => k.infer(ps, xs),
        Kernel::GroupNorm(k) => k.infer(ps, xs),
        Kernel::Activation(k) => k.infer(xs),
        Kernel::Dropout(k) => k.infer(xs),
        Kernel::Flatten(k) => k.infer(xs),
        Kernel::Reshape(k) => k.infer(xs),
        Kernel::ReshapeAll(k) => k.infer(xs),
        Kernel::Permute(k) => k.infer(xs),
        Kernel::Pool(k) => k.infer(xs),
        Kernel::GlobalPool(k) => k.infer(xs),
        Kernel::Pad(k) => k.infer(xs),
        Kernel::UpSampling(k) => k.infer(xs),
        Kernel::Resize(k) => k.infer(xs),
        Kernel::Embedding(k) => k.infer(ps, xs),
        Kernel::Rnn(k) => k.infer(ps, xs),
        Kernel::Merge(k) => k.infer(xs),
        Kernel::ConstantBinary(k) => k.infer(ps, xs),
        Kernel::Unary(k) => k.infer(xs),
        Kernel::Rescaling(k) => k.infer(xs),
        Kernel::Normalization(k) => k.infer(ps, xs),
        Kernel::Identity(k) => k.infer(xs),
        Kernel::Reduce(k) => k.infer(xs),
        Kernel::Select(k) => k.infer(xs),
        Kernel::Slice(k) => k.infer(xs),
        Kernel::Squeeze(k) => k.infer(xs),
        Kernel::Unsqueeze(k) => k.infer(xs),
    }
}
