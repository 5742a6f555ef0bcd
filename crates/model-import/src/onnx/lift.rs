//! Lifting: ONNX nodes (and the multi-node patterns found by [`super::patterns`]) become
//! model-ir layers, one IR node per torch layer.
//!
//! Values keep their ONNX names. Nodes that only pass a value on (`Identity`, a no-op `Cast`,
//! the `Transpose` pairs torch puts around batch-first recurrent layers) are absorbed through
//! aliases; secondary outputs nothing reads (BatchNormalization running statistics, Dropout
//! masks) are dropped. An op or pattern that cannot be lifted is an error naming the node.

use std::collections::{BTreeMap, BTreeSet};

use model_ir::{
    Activation, BinaryOp, DataLayout, Framework, HardSigmoid, Interpolation, MergeOp, MomentumForm,
    Node, Op, Origin, PadMode, Padding, Param, ParamLayout, ParamRole, PoolKind, ReduceKind,
    Tensor, UnaryOp, VarianceEstimate,
};

use super::decode::Attrs;
use super::eval::axes_of;
use super::graph::Graph;
use super::naming::{Scopes, param_module, unique};
use super::patterns::{Group, GroupKind};
use super::value::{Dim, Val, int_vec, is_one, norm_axis, scalar_f64};
use crate::error::ErrorKind;

/// How an ONNX value maps onto an IR value.
#[derive(Debug, Clone)]
pub(crate) enum Alias {
    /// The same tensor under another name.
    Same(String),
    /// The IR value with axes 0 and 1 swapped: the time-major view of a batch-first sequence.
    Swap01(String),
}

/// State of the lifting pass.
#[derive(Debug)]
pub(crate) struct Lifter<'g> {
    pub(crate) g: &'g Graph,
    pub(crate) scopes: &'g Scopes,
    pub(crate) framework: Framework,
    pub(crate) nodes: Vec<Node>,
    names: BTreeSet<String>,
    params_used: BTreeMap<String, String>,
    defined: BTreeSet<String>,
    pub(crate) alias: BTreeMap<String, Alias>,
    /// ONNX nodes absorbed by an earlier lift.
    pub(crate) claimed: BTreeSet<usize>,
    groups: Vec<Group>,
    group_of: BTreeMap<usize, usize>,
    layouts: BTreeMap<String, DataLayout>,
    pub(crate) notes: Vec<String>,
    /// `(node, ONNX momentum)` of every BatchNormalization, for one note.
    pub(crate) bn_momenta: Vec<(String, f64)>,
    /// `(initializer, node)` for parameters whose names are not `<module>.<leaf>`.
    pub(crate) renamed: Vec<(String, String)>,
    /// Nodes the exporter rewrote (dynamo `FuseBatchNormIntoConv`), by rule.
    pub(crate) rewritten: Vec<(String, String)>,
    /// How many RNN layers each module path has produced so far.
    pub(crate) rnn_layers: BTreeMap<String, usize>,
}

pub(crate) type R<T> = Result<T, ErrorKind>;

pub(crate) fn approx(v: f64, target: f64) -> bool {
    (v - target).abs() <= 1e-5 * target.abs().max(1.0)
}

impl<'g> Lifter<'g> {
    pub(crate) fn new(
        g: &'g Graph,
        scopes: &'g Scopes,
        framework: Framework,
        groups: Vec<Group>,
    ) -> Lifter<'g> {
        let mut group_of = BTreeMap::new();
        for (k, grp) in groups.iter().enumerate() {
            for &n in &grp.nodes {
                group_of.insert(n, k);
            }
        }
        Lifter {
            g,
            scopes,
            framework,
            nodes: Vec::new(),
            names: BTreeSet::new(),
            params_used: BTreeMap::new(),
            defined: g.inputs.iter().map(|v| v.name.clone()).collect(),
            alias: BTreeMap::new(),
            claimed: BTreeSet::new(),
            groups,
            group_of,
            layouts: BTreeMap::new(),
            notes: Vec::new(),
            bn_momenta: Vec::new(),
            renamed: Vec::new(),
            rewritten: Vec::new(),
            rnn_layers: BTreeMap::new(),
        }
    }

    /// Emits an IR `Input` node for every graph input, then lifts every node in order.
    pub(crate) fn run(&mut self) -> R<()> {
        for vi in &self.g.inputs {
            let name = unique(&vi.name, &self.names);
            self.names.insert(name.clone());
            self.nodes.push(Node {
                name,
                op: Op::Input {
                    shape: vi.shape.clone(),
                    dtype: vi.dtype,
                },
                inputs: Vec::new(),
                outputs: vec![vi.name.clone()],
                params: Vec::new(),
                origin: Origin {
                    framework: self.framework,
                    name: vi.name.clone(),
                    class: "graph input".into(),
                },
            });
        }
        for i in 0..self.g.nodes.len() {
            if self.claimed.contains(&i) {
                continue;
            }
            if let Some(&k) = self.group_of.get(&i) {
                if self.groups[k].nodes.last() == Some(&i) {
                    self.lift_group(k)?;
                }
                continue;
            }
            let outs = &self.g.nodes[i].output;
            let any_runtime = outs.iter().any(|o| !o.is_empty() && self.g.is_runtime(o));
            if !any_runtime {
                continue; // folded into constants, shape vectors or zero states
            }
            self.lift_node(i)?;
        }
        Ok(())
    }

    /// The IR names of the graph outputs.
    pub(crate) fn model_outputs(&mut self) -> R<Vec<String>> {
        let outs = self.g.outputs.clone();
        outs.iter()
            .map(|o| self.resolve(o, "<model outputs>"))
            .collect()
    }

    // ----------------------------------------------------------------------------------
    // helpers
    // ----------------------------------------------------------------------------------

    pub(crate) fn unsupported_op(&self, i: usize, what: &str) -> ErrorKind {
        ErrorKind::UnsupportedOp {
            node: self.g.name(i),
            op_type: what.to_string(),
        }
    }

    pub(crate) fn unsupported(&self, i: usize, msg: impl std::fmt::Display) -> ErrorKind {
        ErrorKind::Unsupported(format!(
            "node `{}` ({}): {msg}",
            self.g.name(i),
            self.g.op(i)
        ))
    }

    pub(crate) fn malformed(&self, i: usize, msg: impl std::fmt::Display) -> ErrorKind {
        ErrorKind::Malformed(format!(
            "node `{}` ({}): {msg}",
            self.g.name(i),
            self.g.op(i)
        ))
    }

    pub(crate) fn attrs(&self, i: usize) -> Attrs<'g> {
        Attrs::new(&self.g.nodes[i])
    }

    /// The IR value behind an ONNX value, materializing a deferred transpose if needed.
    pub(crate) fn resolve(&mut self, v: &str, reader: &str) -> R<String> {
        let mut cur = v.to_string();
        for _ in 0..64 {
            match self.alias.get(&cur).cloned() {
                Some(Alias::Same(x)) => cur = x,
                Some(Alias::Swap01(x)) => {
                    let x = self.resolve(&x, reader)?;
                    let base = format!(
                        "{}.time_major",
                        self.node_of_value(&x).unwrap_or_else(|| x.clone())
                    );
                    let name = unique(&base, &self.names);
                    self.names.insert(name.clone());
                    let rank = self.g.shape(&cur).map(|s| s.len()).unwrap_or(3);
                    let mut perm: Vec<usize> = (0..rank).collect();
                    perm.swap(0, 1);
                    self.nodes.push(Node {
                        name: name.clone(),
                        op: Op::Permute { perm },
                        inputs: vec![x],
                        outputs: vec![cur.clone()],
                        params: Vec::new(),
                        origin: Origin {
                            framework: self.framework,
                            name,
                            class: "Transpose (batch-first sequence read time-major)".into(),
                        },
                    });
                    self.alias.remove(&cur);
                    self.defined.insert(cur.clone());
                    return Ok(cur);
                }
                None => break,
            }
        }
        if self.defined.contains(&cur) {
            return Ok(cur);
        }
        let what = match self.g.val(&cur) {
            Some(Val::Const(_)) => "a constant",
            Some(Val::Shape { .. }) => "a shape computation",
            Some(Val::Zeros { .. }) => "a zero tensor sized by the batch",
            _ => "a value no lifted layer produces (a dropped secondary output?)",
        };
        Err(ErrorKind::Unsupported(format!(
            "`{reader}` reads `{v}`, which is {what}, where a computed tensor is expected"
        )))
    }

    fn node_of_value(&self, v: &str) -> Option<String> {
        self.nodes
            .iter()
            .rev()
            .find(|n| n.outputs.iter().any(|o| o == v))
            .map(|n| n.name.clone())
    }

    /// Input `k` of node `i`, which must be a runtime value, as an IR value name.
    pub(crate) fn rt(&mut self, i: usize, k: usize) -> R<String> {
        let v = self
            .g
            .input(i, k)
            .ok_or_else(|| self.malformed(i, format!("input {k} is missing")))?
            .to_string();
        let reader = self.g.name(i);
        self.resolve(&v, &reader)
    }

    /// Input `k` of node `i`, which must be a constant.
    pub(crate) fn konst(&self, i: usize, k: usize) -> R<&'g Tensor> {
        let v = self
            .g
            .input(i, k)
            .ok_or_else(|| self.malformed(i, format!("input {k} is missing")))?;
        self.g
            .konst(v)
            .ok_or_else(|| self.unsupported(i, format!("input {k} (`{v}`) must be a constant")))
    }

    pub(crate) fn opt_konst(&self, i: usize, k: usize) -> R<Option<&'g Tensor>> {
        match self.g.input(i, k) {
            None => Ok(None),
            Some(_) => self.konst(i, k).map(Some),
        }
    }

    /// The ONNX output `k` of node `i` (its IR name), or an error if it is absent.
    pub(crate) fn out(&self, i: usize, k: usize) -> R<String> {
        self.g
            .output(i, k)
            .map(str::to_string)
            .ok_or_else(|| self.malformed(i, format!("output {k} is missing")))
    }

    pub(crate) fn layout_of(&self, ir_value: &str) -> Option<DataLayout> {
        self.layouts.get(ir_value).copied()
    }

    pub(crate) fn set_layout(&mut self, ir_value: &str, layout: Option<DataLayout>) {
        if let Some(l) = layout {
            self.layouts.insert(ir_value.to_string(), l);
        }
    }

    /// The rank of an ONNX value, if known.
    pub(crate) fn rank(&self, v: &str) -> Option<usize> {
        self.g.shape(v).map(|s| s.len())
    }

    /// A parameter from constant input `k` of node `i`: the initializer it comes from, under its
    /// own name, or the constant itself named `<node>.<suffix>`.
    pub(crate) fn param(
        &mut self,
        i: usize,
        k: usize,
        role: ParamRole,
        layout: ParamLayout,
        suffix: &str,
    ) -> R<Param> {
        let v = self
            .g
            .input(i, k)
            .ok_or_else(|| self.malformed(i, format!("input {k} is missing")))?
            .to_string();
        self.param_of_value(i, &v, role, layout, suffix)
    }

    pub(crate) fn param_of_value(
        &mut self,
        i: usize,
        v: &str,
        role: ParamRole,
        layout: ParamLayout,
        suffix: &str,
    ) -> R<Param> {
        let trainable = !matches!(
            role,
            ParamRole::MovingMean
                | ParamRole::MovingVariance
                | ParamRole::NumBatchesTracked
                | ParamRole::Constant
        );
        // Reshapes of an initializer (torch's `Unsqueeze(gn.weight)`) keep its values: store the
        // initializer itself, under its name.
        if let Some(tr) = self.g.trace_init(v).filter(|t| !t.transposed)
            && let Some(t) = self.g.konst(&tr.init)
            && self.g.konst(v).is_some_and(|e| e.len() == t.len())
        {
            return Ok(Param {
                name: tr.init,
                role,
                layout,
                tensor: t.clone(),
                trainable,
            });
        }
        let t = self
            .g
            .konst(v)
            .ok_or_else(|| self.unsupported(i, format!("`{v}` must be a constant")))?;
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        Ok(Param {
            name: format!("{base}.{suffix}"),
            role,
            layout,
            tensor: t.clone(),
            trainable: trainable && self.g.is_initializer(v),
        })
    }

    /// Pushes an IR node named after the module of its first parameter, else after its ONNX
    /// scope or name; returns the node's name.
    pub(crate) fn emit(
        &mut self,
        i: usize,
        op: Op,
        inputs: Vec<String>,
        outputs: Vec<String>,
        params: Vec<Param>,
        class: &str,
    ) -> R<String> {
        let from_param = params
            .iter()
            .find(|p| !matches!(p.role, ParamRole::Constant))
            .and_then(|p| param_module(&p.name).map(|(m, _)| m.to_string()));
        let base =
            from_param.unwrap_or_else(|| self.scopes.node_name(&self.g.nodes[i], &self.g.name(i)));
        self.emit_named(i, &base, op, inputs, outputs, params, class)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_named(
        &mut self,
        i: usize,
        base: &str,
        op: Op,
        inputs: Vec<String>,
        outputs: Vec<String>,
        params: Vec<Param>,
        class: &str,
    ) -> R<String> {
        let name = unique(base, &self.names);
        let mut params = params;
        for p in &mut params {
            if let Some(other) = self.params_used.get(&p.name).cloned() {
                // The exporter stored one tensor for several layers (torch's eval-mode export
                // deduplicates equal initializers): this layer gets its own copy.
                let leaf = param_module(&p.name)
                    .map(|(_, l)| l.to_string())
                    .unwrap_or_else(|| p.role.name().to_string());
                let mut copy = format!("{name}.{leaf}");
                let mut k = 1;
                while self.params_used.contains_key(&copy) {
                    copy = format!("{name}.{leaf}_{k}");
                    k += 1;
                }
                self.notes.push(format!(
                    "{name}: initializer `{}` is shared with layer `{other}` (the exporter keeps one copy of equal tensors); this layer's copy is named `{copy}`",
                    p.name
                ));
                p.name = copy;
            }
            if self.g.is_initializer(&p.name)
                && param_module(&p.name).is_none()
                && self.framework == Framework::Torch
            {
                self.renamed.push((p.name.clone(), name.clone()));
            }
            self.params_used.insert(p.name.clone(), name.clone());
        }
        if let Some(rule) = self.g.nodes[i]
            .metadata_props
            .iter()
            .find(|m| m.key.as_deref() == Some("pkg.onnxscript.rewriter.rule_name"))
            .and_then(|m| m.value.clone())
        {
            self.rewritten.push((name.clone(), rule));
        }
        self.names.insert(name.clone());
        for o in &outputs {
            self.defined.insert(o.clone());
        }
        self.nodes.push(Node {
            name: name.clone(),
            op,
            inputs,
            outputs,
            params,
            origin: Origin {
                framework: self.framework,
                name: self.g.name(i),
                class: class.to_string(),
            },
        });
        Ok(name)
    }

    // ----------------------------------------------------------------------------------
    // single nodes
    // ----------------------------------------------------------------------------------

    fn lift_node(&mut self, i: usize) -> R<()> {
        let node = &self.g.nodes[i];
        if let Some(d) = node
            .domain
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "ai.onnx")
        {
            return Err(self.unsupported_op(i, &format!("{d}::{}", self.g.op(i))));
        }
        let op = self.g.op(i).to_string();
        match op.as_str() {
            "Gemm" => self.gemm(i),
            "MatMul" => self.matmul(i),
            "Conv" => self.conv(i),
            "ConvTranspose" => self.conv_transpose(i),
            "BatchNormalization" => self.batch_norm(i),
            "Dropout" => self.dropout(i),
            "Relu" | "LeakyRelu" | "Elu" | "Selu" | "Sigmoid" | "HardSigmoid" | "HardSwish"
            | "Tanh" | "Softplus" | "Softsign" | "Softmax" | "LogSoftmax" | "Clip" | "Gelu"
            | "Mish" => self.activation(i),
            "Erf" | "Abs" | "Neg" | "Sqrt" | "Exp" | "Log" | "Reciprocal" => self.unary(i),
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" => self.binary(i),
            "Concat" => self.concat(i),
            "PRelu" => self.prelu(i),
            "Tile" => self.tile(i),
            "Identity" => self.identity(i),
            "Cast" => self.cast(i),
            "Flatten" => self.flatten(i),
            "Reshape" => self.reshape(i),
            "Transpose" => self.transpose(i),
            "MaxPool" | "AveragePool" => self.pool(i),
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(i),
            "ReduceMean" | "ReduceMax" | "ReduceSum" | "ReduceMin" => self.reduce(i),
            "Pad" => self.pad(i),
            "Resize" | "Upsample" => self.resize(i),
            "Gather" => self.gather(i),
            "Slice" => self.slice(i),
            "Split" => self.split(i),
            "Squeeze" | "Unsqueeze" => self.squeeze(i),
            "LayerNormalization" => self.layer_norm(i),
            "InstanceNormalization" => self.instance_norm(i),
            "LSTM" | "GRU" | "RNN" => super::rnn::lift_rnn(self, i),
            other => Err(self.unsupported_op(i, other)),
        }
    }

    fn gemm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        if a.int_or("transA", 0)? != 0 {
            return Err(
                self.unsupported(i, "transA=1 (the input transposed) has no Dense equivalent")
            );
        }
        let alpha = a.float_or("alpha", 1.0)?;
        let beta = a.float_or("beta", 1.0)?;
        if !approx(alpha, 1.0) {
            return Err(self.unsupported(
                i,
                format!("alpha={alpha} scales the product; only alpha=1 lifts to Dense"),
            ));
        }
        let trans_b = a.int_or("transB", 0)? != 0;
        let x = self.rt(i, 0)?;
        let has_c = self.g.input(i, 2).is_some() && beta != 0.0;
        if has_c && !approx(beta, 1.0) {
            return Err(self.unsupported(
                i,
                format!("beta={beta} scales the bias; only beta=1 lifts to Dense"),
            ));
        }
        let out = self.out(i, 0)?;
        self.dense(
            i,
            x,
            1,
            trans_b,
            if has_c { Some(2) } else { None },
            None,
            out,
            "Gemm",
        )
    }

    /// A Dense layer from weight input `wk` of node `i` (`out_in`: whether the operand is
    /// used as `(out, in)`), with an optional bias from input `bk` of node `i` or of `bias_node`.
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &mut self,
        i: usize,
        x: String,
        wk: usize,
        out_in: bool,
        bk: Option<usize>,
        bias_node: Option<(usize, usize)>,
        out: String,
        class: &str,
    ) -> R<()> {
        let wv = self
            .g
            .input(i, wk)
            .ok_or_else(|| self.malformed(i, "weight input missing"))?
            .to_string();
        let w = self.konst(i, wk)?;
        if w.shape().len() != 2 {
            return Err(self.unsupported(
                i,
                format!("weight of shape {:?} is not a matrix", w.shape()),
            ));
        }
        let traced = self.g.trace_init(&wv);
        // The initializer itself when the operand is it, or its transpose (torch's bias-free
        // Linear: `MatMul(x, Transpose(weight))`); anything else is kept as evaluated.
        let original = traced.as_ref().and_then(|t| {
            let orig = self.g.konst(&t.init)?;
            let same = if t.transposed {
                orig.permuted(&[1, 0]) == *w
            } else {
                orig == w
            };
            (orig.shape().len() == 2 && same)
                .then(|| (orig.clone(), t.init.clone(), out_in ^ t.transposed))
        });
        let (tensor, name, out_in) = match original {
            Some(o) => o,
            None => {
                let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
                (w.clone(), format!("{base}.weight"), out_in)
            }
        };
        let units = if out_in {
            tensor.shape()[0]
        } else {
            tensor.shape()[1]
        };
        let layout = if out_in {
            ParamLayout::DenseOutIn
        } else {
            ParamLayout::DenseInOut
        };
        let kernel = Param {
            name,
            role: ParamRole::Kernel,
            layout,
            tensor,
            trainable: true,
        };
        let mut params = vec![kernel];
        let bias = match (bk, bias_node) {
            (Some(k), _) => Some((i, k)),
            (None, Some(nk)) => Some(nk),
            _ => None,
        };
        if let Some((bn, k)) = bias {
            let mut p = self.param(bn, k, ParamRole::Bias, ParamLayout::Vector, "bias")?;
            if p.tensor.len() != units {
                return Err(self.unsupported(
                    bn,
                    format!(
                        "bias of shape {:?} does not match {units} units",
                        p.tensor.shape()
                    ),
                ));
            }
            if p.tensor.shape().len() != 1 {
                self.notes.push(format!(
                    "{}: bias `{}` of shape {:?} reshaped to ({units},)",
                    self.g.name(i),
                    p.name,
                    p.tensor.shape()
                ));
                p.tensor = p.tensor.reshaped(&[units]).unwrap_or(p.tensor);
            }
            params.push(p);
        }
        let use_bias = params.len() == 2;
        let name = self.emit(
            i,
            Op::Dense {
                units,
                use_bias,
                activation: Activation::Linear,
            },
            vec![x],
            vec![out],
            params,
            class,
        )?;
        if !out_in && self.framework == Framework::Torch {
            self.notes.push(format!(
                "{name}: {class} multiplies by its weight as stored, so the weight is kept as (in, out) (DenseInOut), not torch's Linear layout (out, in)"
            ));
        }
        Ok(())
    }

    fn matmul(&mut self, i: usize) -> R<()> {
        let b = self.g.input(i, 1).unwrap_or_default();
        if self.g.konst(b).is_none_or(|t| t.shape().len() != 2) {
            return Err(self.unsupported_op(
                i,
                "MatMul (of two computed values or a non-matrix constant)",
            ));
        }
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let units = {
            let w = self.konst(i, 1)?;
            w.shape()[1]
        };
        // A following Add of a constant vector is the bias.
        let mut bias = None;
        if let Some(add) = self
            .g
            .sole_consumer(&out)
            .filter(|&a| self.g.op(a) == "Add")
        {
            let other = (0..2).find(|&k| self.g.input(add, k) != Some(out.as_str()));
            if let Some(k) = other {
                let is_bias = self
                    .g
                    .input(add, k)
                    .and_then(|v| self.g.konst(v))
                    .is_some_and(|t| {
                        t.len() == units
                            && t.shape().last() == Some(&units)
                            && t.shape().iter().rev().skip(1).all(|&d| d == 1)
                    });
                if is_bias {
                    bias = Some((add, k));
                }
            }
        }
        match bias {
            Some((add, k)) => {
                self.claimed.insert(add);
                let out = self.out(add, 0)?;
                self.dense(i, x, 1, false, None, Some((add, k)), out, "MatMul+Add")
            }
            None => self.dense(i, x, 1, false, None, None, out, "MatMul"),
        }
    }

    fn padding(&self, i: usize, rank: usize) -> R<Padding> {
        let a = self.attrs(i);
        match a.string("auto_pad")?.as_deref() {
            Some("SAME_UPPER") => return Ok(Padding::SameUpper),
            Some("SAME_LOWER") => return Ok(Padding::SameLower),
            Some("VALID") => return Ok(Padding::Valid),
            Some("NOTSET") | Some("") | None => {}
            Some(other) => return Err(self.malformed(i, format!("auto_pad={other}"))),
        }
        let pads = a.ints("pads")?.unwrap_or_else(|| vec![0; 2 * rank]);
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(self.malformed(i, format!("pads {pads:?} for {rank} spatial axes")));
        }
        if pads.iter().all(|&p| p == 0) {
            return Ok(Padding::Valid);
        }
        let p: Vec<usize> = pads.iter().map(|&v| v as usize).collect();
        Ok(Padding::Explicit {
            begin: p[..rank].to_vec(),
            end: p[rank..].to_vec(),
        })
    }

    fn spatial_attr(&self, i: usize, name: &str, rank: usize) -> R<Vec<usize>> {
        let v = self.attrs(i).ints(name)?.unwrap_or_else(|| vec![1; rank]);
        if v.len() != rank || v.iter().any(|&x| x < 1) {
            return Err(self.malformed(i, format!("{name} {v:?} for {rank} spatial axes")));
        }
        Ok(v.into_iter().map(|x| x as usize).collect())
    }

    fn conv(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let w = self.konst(i, 1)?;
        let ws = w.shape().to_vec();
        if ws.len() < 3 {
            return Err(self.malformed(i, format!("weight of shape {ws:?}")));
        }
        let rank = ws.len() - 2;
        let group = usize::try_from(self.attrs(i).int_or("group", 1)?)
            .ok()
            .filter(|&g| g >= 1)
            .ok_or_else(|| self.malformed(i, "group < 1"))?;
        let kernel_size = ws[2..].to_vec();
        if let Some(k) = self.attrs(i).ints("kernel_shape")?
            && k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel_size
        {
            return Err(self.malformed(
                i,
                format!("kernel_shape {k:?} disagrees with weight {ws:?}"),
            ));
        }
        let strides = self.spatial_attr(i, "strides", rank)?;
        let dilation = self.spatial_attr(i, "dilations", rank)?;
        let padding = self.padding(i, rank)?;
        let filters = ws[0];
        if filters % group != 0 {
            return Err(self.malformed(i, format!("{filters} filters in {group} groups")));
        }
        let depthwise = group > 1 && ws[1] == 1;
        let layout = if depthwise {
            ParamLayout::DepthwiseOutOneSpatial { rank }
        } else {
            ParamLayout::ConvOutInSpatial { rank }
        };
        let mut params = vec![self.param(i, 1, ParamRole::Kernel, layout, "weight")?];
        if self.g.input(i, 2).is_some() {
            params.push(self.param(i, 2, ParamRole::Bias, ParamLayout::Vector, "bias")?);
        }
        let use_bias = params.len() == 2;
        let layout = DataLayout::ChannelsFirst;
        let op = if depthwise {
            Op::DepthwiseConv {
                rank,
                depth_multiplier: filters / group,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation: Activation::Linear,
            }
        } else {
            Op::Conv {
                rank,
                filters,
                kernel_size,
                strides,
                dilation,
                groups: group,
                padding,
                layout,
                use_bias,
                activation: Activation::Linear,
            }
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], params, "Conv")?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn conv_transpose(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let ws = self.konst(i, 1)?.shape().to_vec();
        if ws.len() < 3 {
            return Err(self.malformed(i, format!("weight of shape {ws:?}")));
        }
        let rank = ws.len() - 2;
        let a = self.attrs(i);
        if a.ints("output_shape")?.is_some() {
            return Err(self.unsupported(i, "output_shape (instead of pads/output_padding)"));
        }
        let group = usize::try_from(a.int_or("group", 1)?)
            .ok()
            .filter(|&g| g >= 1)
            .ok_or_else(|| self.malformed(i, "group < 1"))?;
        let strides = self.spatial_attr(i, "strides", rank)?;
        let dilation = self.spatial_attr(i, "dilations", rank)?;
        let padding = self.padding(i, rank)?;
        let output_padding = match a.ints("output_padding")? {
            Some(p) if p.len() == rank && p.iter().all(|&v| v >= 0) => {
                p.into_iter().map(|v| v as usize).collect()
            }
            Some(p) => return Err(self.malformed(i, format!("output_padding {p:?}"))),
            None => vec![0; rank],
        };
        let mut params = vec![self.param(
            i,
            1,
            ParamRole::Kernel,
            ParamLayout::ConvTransposeInOutSpatial { rank },
            "weight",
        )?];
        if self.g.input(i, 2).is_some() {
            params.push(self.param(i, 2, ParamRole::Bias, ParamLayout::Vector, "bias")?);
        }
        let use_bias = params.len() == 2;
        let op = Op::ConvTranspose {
            rank,
            filters: ws[1]
                .checked_mul(group)
                .ok_or_else(|| self.malformed(i, format!("group {group}")))?,
            kernel_size: ws[2..].to_vec(),
            strides,
            dilation,
            groups: group,
            padding,
            output_padding: Some(output_padding),
            layout: DataLayout::ChannelsFirst,
            use_bias,
            activation: Activation::Linear,
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], params, "ConvTranspose")?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn batch_norm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        if a.int("spatial")? == Some(0) {
            return Err(self.unsupported(i, "spatial=0 (per-element statistics)"));
        }
        let epsilon = a.float_or("epsilon", 1e-5)?;
        let momentum = a.float_or("momentum", 0.9)?;
        let training_mode = a.int("training_mode")?.map(|v| v != 0);
        let x = self.rt(i, 0)?;
        let rank = self.rank(self.g.input(i, 0).unwrap_or_default());
        let params = vec![
            self.param(i, 1, ParamRole::Gamma, ParamLayout::Vector, "weight")?,
            self.param(i, 2, ParamRole::Beta, ParamLayout::Vector, "bias")?,
            self.param(
                i,
                3,
                ParamRole::MovingMean,
                ParamLayout::Vector,
                "running_mean",
            )?,
            self.param(
                i,
                4,
                ParamRole::MovingVariance,
                ParamLayout::Vector,
                "running_var",
            )?,
        ];
        let op = Op::BatchNorm {
            axis: 1,
            epsilon,
            momentum: MomentumForm::KeepOld(momentum),
            running_variance: match self.framework {
                Framework::Torch => VarianceEstimate::Unbiased,
                Framework::Keras => VarianceEstimate::Biased,
            },
            center: true,
            scale: true,
            trainable: true,
            track_running_stats: true,
            training_mode,
        };
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x).or(if rank.is_some_and(|r| r >= 3) {
            Some(DataLayout::ChannelsFirst)
        } else {
            None
        });
        let name = self.emit(
            i,
            op,
            vec![x],
            vec![out.clone()],
            params,
            "BatchNormalization",
        )?;
        self.set_layout(&out, layout);
        self.bn_momenta.push((name, momentum));
        Ok(())
    }

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

    fn softmax_axis(&mut self, i: usize) -> R<i64> {
        let opset = self.g.opset;
        let axis = self
            .attrs(i)
            .int_or("axis", if opset < 13 { 1 } else { -1 })?;
        if opset < 13 {
            let rank = self
                .rank(self.g.input(i, 0).unwrap_or_default())
                .ok_or_else(|| {
                    self.unsupported(
                        i,
                        format!("opset {opset} Softmax on a value of unknown rank"),
                    )
                })?;
            let a = norm_axis(axis, rank, "Softmax").map_err(|e| self.malformed(i, e))?;
            if a + 1 != rank {
                return Err(self.unsupported(
                    i,
                    format!("opset {opset} < 13 Softmax normalizes over every axis from {axis} on, not one axis"),
                ));
            }
            let note = format!(
                "opset {opset} < 13: Softmax/LogSoftmax normalize over every axis from `axis` on; lifted only where that is the last axis, where both meanings agree"
            );
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        Ok(axis)
    }

    fn activation(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let op = self.g.op(i).to_string();
        let function = match op.as_str() {
            "Relu" => Activation::RELU,
            "LeakyRelu" => Activation::LeakyRelu {
                slope: a.float_or("alpha", 0.01)?,
            },
            "Elu" => Activation::Elu {
                alpha: a.float_or("alpha", 1.0)?,
            },
            "Selu" => {
                let alpha = a.float_or("alpha", 1.673_263_192_176_818_8)?;
                let gamma = a.float_or("gamma", 1.050_700_902_938_842_8)?;
                if !approx(alpha, 1.673_263_192_176_818_8)
                    || !approx(gamma, 1.050_700_902_938_842_8)
                {
                    return Err(
                        self.unsupported(i, format!("Selu with alpha={alpha}, gamma={gamma}"))
                    );
                }
                Activation::Selu
            }
            "Sigmoid" => Activation::Sigmoid,
            "HardSigmoid" => Activation::HardSigmoid(HardSigmoid {
                slope: a.float_or("alpha", 0.2)?,
                offset: a.float_or("beta", 0.5)?,
            }),
            "HardSwish" => Activation::HardSwish,
            "Tanh" => Activation::Tanh,
            "Softplus" => {
                if self.framework == Framework::Torch {
                    let note = "Softplus: ONNX has no threshold; torch's Softplus (linear above threshold=20 by default) is read as plain log(1 + exp(x))".to_string();
                    if !self.notes.contains(&note) {
                        self.notes.push(note);
                    }
                }
                Activation::Softplus {
                    beta: 1.0,
                    threshold: None,
                }
            }
            "Softsign" => Activation::Softsign,
            "Softmax" => Activation::Softmax {
                axis: self.softmax_axis(i)?,
            },
            "LogSoftmax" => Activation::LogSoftmax {
                axis: self.softmax_axis(i)?,
            },
            "Gelu" => Activation::Gelu {
                approximate: a.string("approximate")?.as_deref() == Some("tanh"),
            },
            "Mish" => Activation::Mish,
            "Clip" => match self.clip_bounds(i)? {
                (Some(0.0), _) => self.clip(i)?,
                (lo, hi) => return self.general_clip(i, lo, hi),
            },
            other => return Err(self.unsupported_op(i, other)),
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        if self.framework == Framework::Keras && self.fuse_activation(i, &x, &function, &op) {
            self.set_layout(&out, layout);
            return Ok(());
        }
        self.emit(
            i,
            Op::Activation { function },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            &op,
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// Keras layers carry their activation (`Dense(activation="relu")`), which tf2onnx writes
    /// as a separate node in the layer's scope: fold it back into the layer.
    fn fuse_activation(&mut self, i: usize, x: &str, function: &Activation, op: &str) -> bool {
        let Some(p) = self.g.producer(x) else {
            return false;
        };
        let same_layer = self.scopes.module(&self.g.nodes[p]).is_some()
            && self.scopes.module(&self.g.nodes[p]) == self.scopes.module(&self.g.nodes[i]);
        if !same_layer || self.g.sole_consumer(x) != Some(i) {
            return false;
        }
        let Ok(out) = self.out(i, 0) else {
            return false;
        };
        let Some(last) = self.nodes.last_mut() else {
            return false;
        };
        if last.outputs != [x] {
            return false;
        }
        let slot = match &mut last.op {
            Op::Dense { activation, .. }
            | Op::Conv { activation, .. }
            | Op::DepthwiseConv { activation, .. }
            | Op::ConvTranspose { activation, .. } => activation,
            _ => return false,
        };
        if *slot != Activation::Linear {
            return false;
        }
        *slot = function.clone();
        last.outputs = vec![out.clone()];
        last.origin.class = format!("{}+{op}", last.origin.class);
        self.defined.insert(out);
        true
    }

    /// `Clip(min, max)` that is not a ReLU: `max(x, min)` then `min(·, max)` as constant
    /// binaries with scalar constants `<node>.min` / `<node>.max`.
    fn general_clip(&mut self, i: usize, lo: Option<f64>, hi: Option<f64>) -> R<()> {
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        let bounds: Vec<(BinaryOp, f64, &str)> = [
            lo.map(|v| (BinaryOp::Maximum, v, "min")),
            hi.map(|v| (BinaryOp::Minimum, v, "max")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if bounds.is_empty() {
            return self.identity(i);
        }
        let mut cur = x;
        for (k, (op, v, what)) in bounds.iter().enumerate() {
            let dst = if k + 1 == bounds.len() {
                out.clone()
            } else {
                format!("{out}::clip_{what}")
            };
            let p = Param {
                name: format!("{base}.{what}"),
                role: ParamRole::Constant,
                layout: ParamLayout::AsIs,
                tensor: Tensor::F32(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), *v as f32)),
                trainable: false,
            };
            self.emit(
                i,
                Op::ConstantBinary {
                    op: *op,
                    constant_first: false,
                },
                vec![cur],
                vec![dst.clone()],
                vec![p],
                "Clip",
            )?;
            self.set_layout(&dst, layout);
            cur = dst;
        }
        Ok(())
    }

    /// The bounds of a `Clip` node (attributes before opset 11, inputs from 11 on).
    fn clip_bounds(&self, i: usize) -> R<(Option<f64>, Option<f64>)> {
        let a = self.attrs(i);
        if self.g.opset < 11 {
            return Ok((a.float("min")?, a.float("max")?));
        }
        let get = |k: usize| -> R<Option<f64>> {
            match self.opt_konst(i, k)? {
                Some(t) => {
                    Ok(Some(scalar_f64(t).ok_or_else(|| {
                        self.malformed(i, "bound is not a scalar")
                    })?))
                }
                None => Ok(None),
            }
        };
        Ok((get(1)?, get(2)?))
    }

    /// PReLU `y = max(0, x) + slope·min(0, x)`, lowered to
    /// `relu(x) − slope · relu(−x)` (the slope a trainable constant; a 1-D per-channel slope of
    /// old exports is reshaped to `[C, 1, …]` so it broadcasts over axis 1, as torch applies it).
    /// Forward and backward (w.r.t. x and slope) come from the existing ops.
    fn prelu(&mut self, i: usize) -> R<()> {
        let xv = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self.rank(&xv);
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x);
        let mut p = self.param(i, 1, ParamRole::Constant, ParamLayout::AsIs, "weight")?;
        p.trainable = p.tensor.dtype().is_float()
            && self.g.input(i, 1).is_some_and(|v| self.g.is_initializer(v));
        if let Some(r) = rank
            && r > 2
            && p.tensor.shape().len() == 1
            && p.tensor.len() > 1
        {
            let mut shape = vec![p.tensor.len()];
            shape.resize(r - 1, 1);
            p.tensor = p
                .tensor
                .reshaped(&shape)
                .ok_or_else(|| self.malformed(i, "slope cannot be reshaped"))?;
        }
        let pos = format!("{out}::prelu_pos");
        let neg = format!("{out}::prelu_negx");
        let negr = format!("{out}::prelu_neg");
        let scaled = format!("{out}::prelu_scaled");
        let act = |v: &str| {
            (
                Op::Activation {
                    function: Activation::RELU,
                },
                v.to_string(),
            )
        };
        let (op, v) = act(&x);
        self.emit(i, op, vec![v], vec![pos.clone()], Vec::new(), "PRelu")?;
        self.emit(
            i,
            Op::Unary { op: UnaryOp::Neg },
            vec![x],
            vec![neg.clone()],
            Vec::new(),
            "PRelu",
        )?;
        let (op, v) = act(&neg);
        self.emit(i, op, vec![v], vec![negr.clone()], Vec::new(), "PRelu")?;
        self.emit(
            i,
            Op::ConstantBinary {
                op: BinaryOp::Mul,
                constant_first: false,
            },
            vec![negr],
            vec![scaled.clone()],
            vec![p],
            "PRelu",
        )?;
        self.emit(
            i,
            Op::Merge {
                op: MergeOp::Subtract,
            },
            vec![pos, scaled],
            vec![out.clone()],
            Vec::new(),
            "PRelu",
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    /// `Tile` with constant repeats: each repeated axis becomes a concatenation of the input
    /// with itself (forward and backward from Concatenate).
    fn tile(&mut self, i: usize) -> R<()> {
        let reps = self.konst(i, 1)?.to_i64();
        let reps: Vec<i64> = reps.iter().copied().collect();
        if reps.iter().any(|&r| r < 1) {
            return Err(self.unsupported(i, format!("Tile with repeats {reps:?}")));
        }
        let mut cur = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let todo: Vec<(usize, i64)> = reps
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, r)| r > 1)
            .collect();
        if todo.is_empty() {
            self.alias.insert(out.clone(), Alias::Same(cur));
            return Ok(());
        }
        for (k, &(axis, r)) in todo.iter().enumerate() {
            let dst = if k + 1 == todo.len() {
                out.clone()
            } else {
                format!("{out}::tile_{axis}")
            };
            self.emit(
                i,
                Op::Merge {
                    op: MergeOp::Concatenate(axis as i64),
                },
                vec![cur.clone(); r as usize],
                vec![dst.clone()],
                Vec::new(),
                "Tile",
            )?;
            cur = dst;
        }
        Ok(())
    }

    fn clip(&self, i: usize) -> R<Activation> {
        let a = self.attrs(i);
        let (min, max) = if self.g.opset < 11 {
            (a.float("min")?, a.float("max")?)
        } else {
            let get = |k: usize| -> R<Option<f64>> {
                match self.opt_konst(i, k)? {
                    Some(t) => {
                        Ok(Some(scalar_f64(t).ok_or_else(|| {
                            self.malformed(i, "bound is not a scalar")
                        })?))
                    }
                    None => Ok(None),
                }
            };
            (get(1)?, get(2)?)
        };
        match (min, max) {
            (Some(0.0), Some(hi)) if approx(hi, 6.0) => Ok(Activation::Relu6),
            (Some(0.0), hi) => Ok(Activation::Relu {
                negative_slope: 0.0,
                max_value: hi,
                threshold: 0.0,
            }),
            (lo, hi) => Err(self.unsupported(
                i,
                format!("Clip({lo:?}, {hi:?}) has no IR equivalent (only Clip(0, max) lifts, to ReLU with a maximum)"),
            )),
        }
    }

    fn unary(&mut self, i: usize) -> R<()> {
        let op = match self.g.op(i) {
            "Erf" => UnaryOp::Erf,
            "Abs" => UnaryOp::Abs,
            "Neg" => UnaryOp::Neg,
            "Sqrt" => UnaryOp::Sqrt,
            "Exp" => UnaryOp::Exp,
            "Log" => UnaryOp::Log,
            "Reciprocal" => UnaryOp::Reciprocal,
            other => return Err(self.unsupported_op(i, other)),
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        self.emit(i, Op::Unary { op }, vec![x], vec![out], Vec::new(), &class)?;
        Ok(())
    }

    fn binary(&mut self, i: usize) -> R<()> {
        let op = self.g.op(i).to_string();
        let inputs: Vec<String> = self.g.nodes[i]
            .input
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let runtime: Vec<bool> = inputs.iter().map(|v| self.g.is_runtime(v)).collect();
        let out = self.out(i, 0)?;
        if runtime.iter().all(|&r| r) {
            let merge = match op.as_str() {
                "Add" | "Sum" => MergeOp::Add,
                "Sub" => MergeOp::Subtract,
                "Mul" => MergeOp::Multiply,
                "Div" => MergeOp::Divide,
                "Max" => MergeOp::Maximum,
                "Min" => MergeOp::Minimum,
                "Pow" => MergeOp::Power,
                _ => return Err(self.unsupported_op(i, &format!("{op} of two computed values"))),
            };
            if inputs.len() != 2 && !matches!(op.as_str(), "Max" | "Min" | "Sum") {
                return Err(self.malformed(i, format!("{} inputs", inputs.len())));
            }
            let mut ir_inputs = Vec::new();
            for k in 0..inputs.len() {
                ir_inputs.push(self.rt(i, k)?);
            }
            let layout = self.layout_of(&ir_inputs[0]);
            self.emit(
                i,
                Op::Merge { op: merge },
                ir_inputs,
                vec![out.clone()],
                Vec::new(),
                &op,
            )?;
            self.set_layout(&out, layout);
            return Ok(());
        }
        if inputs.len() != 2 || runtime.iter().filter(|&&r| r).count() != 1 {
            return Err(self.unsupported_op(
                i,
                &format!(
                    "{op} of {} constants",
                    runtime.iter().filter(|&&r| !r).count()
                ),
            ));
        }
        let bop = match op.as_str() {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            "Pow" => BinaryOp::Pow,
            _ => return Err(self.unsupported_op(i, &format!("{op} with a constant"))),
        };
        let (xk, ck) = if runtime[0] { (0, 1) } else { (1, 0) };
        let x = self.rt(i, xk)?;
        let mut p = self.param(i, ck, ParamRole::Constant, ParamLayout::AsIs, "constant")?;
        p.trainable = self.framework == Framework::Torch
            && self
                .g
                .input(i, ck)
                .is_some_and(|v| self.g.is_initializer(v))
            && p.tensor.dtype().is_float();
        let layout = self.layout_of(&x);
        self.emit(
            i,
            Op::ConstantBinary {
                op: bop,
                constant_first: ck == 0,
            },
            vec![x],
            vec![out.clone()],
            vec![p],
            &op,
        )?;
        self.set_layout(&out, layout);
        Ok(())
    }

    fn concat(&mut self, i: usize) -> R<()> {
        let n = self.g.nodes[i].input.len();
        let mut ins = Vec::with_capacity(n);
        for k in 0..n {
            if self.g.input(i, k).is_some_and(|v| !self.g.is_runtime(v)) {
                return Err(self.unsupported_op(i, "Concat with a constant operand"));
            }
            ins.push(self.rt(i, k)?);
        }
        let axis = self.attrs(i).int_or("axis", 0)?;
        let out = self.out(i, 0)?;
        self.emit(
            i,
            Op::Merge {
                op: MergeOp::Concatenate(axis),
            },
            ins,
            vec![out],
            Vec::new(),
            "Concat",
        )?;
        Ok(())
    }

    fn identity(&mut self, i: usize) -> R<()> {
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

    fn flatten_order(&self, x: &str, rank: Option<usize>) -> DataLayout {
        match (self.layout_of(x), rank) {
            (Some(DataLayout::ChannelsLast), _) => DataLayout::ChannelsLast,
            _ => DataLayout::ChannelsFirst,
        }
    }

    fn flatten(&mut self, i: usize) -> R<()> {
        let axis = self.attrs(i).int_or("axis", 1)?;
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self.rank(&v);
        if axis != 1 && !(axis == -1 && rank == Some(2)) {
            return Err(self.unsupported(
                i,
                format!(
                    "Flatten(axis={axis}) merges the batch axis or keeps more than one leading axis"
                ),
            ));
        }
        let x = self.rt(i, 0)?;
        if rank == Some(1) {
            // ONNX Flatten of a vector is `[n, 1]`: a reshape of the one non-batch axis.
            let out = self.out(i, 0)?;
            self.emit(
                i,
                Op::Reshape {
                    target_shape: vec![1],
                },
                vec![x],
                vec![out],
                Vec::new(),
                "Flatten",
            )?;
            return Ok(());
        }
        let order = self.flatten_order(&x, rank);
        let out = self.out(i, 0)?;
        self.emit(
            i,
            Op::Flatten {
                start_axis: 1,
                order,
            },
            vec![x],
            vec![out],
            Vec::new(),
            "Flatten",
        )?;
        Ok(())
    }

    fn reshape(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let (Some(ins), Some(outs)) = (self.g.shape(&v), self.g.shape(&out)) else {
            return Err(
                self.unsupported(i, "Reshape whose target shape is not known before run time")
            );
        };
        if outs.is_empty() || ins.is_empty() || outs[0] != ins[0] {
            return Err(self.unsupported(
                i,
                format!(
                    "Reshape from [{}] to [{}] does not keep the batch axis",
                    join_dims(&ins),
                    join_dims(&outs)
                ),
            ));
        }
        let x = self.rt(i, 0)?;
        let rest_in: Vec<i64> = ins[1..].iter().filter_map(Dim::known).collect();
        let flat = outs.len() == 2
            && ins.len() > 2
            && rest_in.len() == ins.len() - 1
            && outs[1].known() == rest_in.iter().try_fold(1i64, |a, &b| a.checked_mul(b));
        if flat {
            let order = self.flatten_order(&x, Some(ins.len()));
            self.emit(
                i,
                Op::Flatten {
                    start_axis: 1,
                    order,
                },
                vec![x],
                vec![out],
                Vec::new(),
                "Reshape",
            )?;
            return Ok(());
        }
        let mut target = Vec::new();
        let mut inferred = 0;
        for d in &outs[1..] {
            target.push(match d.known() {
                Some(v) => v,
                None => {
                    inferred += 1;
                    -1
                }
            });
        }
        if inferred > 1 {
            return Err(self.unsupported(
                i,
                format!(
                    "Reshape to [{}] with more than one unknown axis",
                    join_dims(&outs)
                ),
            ));
        }
        self.emit(
            i,
            Op::Reshape {
                target_shape: target,
            },
            vec![x],
            vec![out],
            Vec::new(),
            "Reshape",
        )?;
        Ok(())
    }

    fn transpose(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "Transpose of a value of unknown rank"))?;
        let perm = match self.attrs(i).ints("perm")? {
            Some(p) => super::value::check_perm(&p, rank).map_err(|e| self.malformed(i, e))?,
            None => (0..rank).rev().collect(),
        };
        let out = self.out(i, 0)?;
        let swap01 = rank == 3 && perm == [1, 0, 2];
        if swap01 {
            // Undoing a deferred swap, or feeding only recurrent layers: absorb.
            if let Some(Alias::Swap01(x)) = self.alias.get(&v).cloned() {
                self.alias.insert(out, Alias::Same(x));
                return Ok(());
            }
            let consumers = self.g.consumers(&out);
            let only_rnn = !consumers.is_empty()
                && !self.g.is_output(&out)
                && consumers.iter().all(|&c| {
                    matches!(self.g.op(c), "LSTM" | "GRU" | "RNN")
                        && self.g.input(c, 0) == Some(out.as_str())
                        && self.attrs(c).int_or("layout", 0).unwrap_or(0) == 0
                });
            if only_rnn {
                let x = self.rt(i, 0)?;
                self.alias.insert(out, Alias::Swap01(x));
                return Ok(());
            }
        }
        let x = self.rt(i, 0)?;
        let layout = match (rank, perm.as_slice(), self.layout_of(&x)) {
            (4, [0, 2, 3, 1], _) | (3, [0, 2, 1], Some(DataLayout::ChannelsFirst)) => {
                Some(DataLayout::ChannelsLast)
            }
            (4, [0, 3, 1, 2], _) => Some(DataLayout::ChannelsFirst),
            (3, [0, 2, 1], Some(DataLayout::ChannelsLast)) => Some(DataLayout::ChannelsFirst),
            _ => None,
        };
        match self
            .scopes
            .module(&self.g.nodes[i])
            .filter(|_| self.framework == Framework::Keras)
        {
            // tf2onnx puts layout transposes inside the layer's scope: keep the name for the layer.
            Some(layer) => self.emit_named(
                i,
                &format!("{layer}.transpose"),
                Op::Permute { perm },
                vec![x],
                vec![out.clone()],
                Vec::new(),
                "Transpose",
            )?,
            None => self.emit(
                i,
                Op::Permute { perm },
                vec![x],
                vec![out.clone()],
                Vec::new(),
                "Transpose",
            )?,
        };
        self.set_layout(&out, layout);
        Ok(())
    }

    fn pool(&mut self, i: usize) -> R<()> {
        if let Some(idx) = self.g.output(i, 1)
            && (!self.g.consumers(idx).is_empty() || self.g.is_output(idx))
        {
            return Err(self.unsupported(i, "MaxPool indices output is used"));
        }
        let x = self.rt(i, 0)?;
        let v = self.g.input(i, 0).unwrap_or_default();
        let rank = self
            .rank(v)
            .and_then(|r| r.checked_sub(2))
            .ok_or_else(|| self.unsupported(i, "pooling of a value of unknown rank"))?;
        let a = self.attrs(i);
        let kernel = a
            .ints("kernel_shape")?
            .ok_or_else(|| self.malformed(i, "no kernel_shape"))?;
        if kernel.len() != rank || kernel.iter().any(|&k| k < 1) {
            return Err(self.malformed(i, format!("kernel_shape {kernel:?}")));
        }
        let pool = if self.g.op(i) == "MaxPool" {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        if a.int_or("storage_order", 0)? != 0 {
            return Err(self.unsupported(i, "storage_order=1"));
        }
        let dilation = if pool == PoolKind::Max {
            self.spatial_attr(i, "dilations", rank)?
        } else {
            vec![1; rank]
        };
        let op = Op::Pool {
            pool,
            rank,
            pool_size: kernel.into_iter().map(|k| k as usize).collect(),
            strides: self.spatial_attr(i, "strides", rank)?,
            dilation,
            padding: self.padding(i, rank)?,
            layout: DataLayout::ChannelsFirst,
            count_include_pad: pool == PoolKind::Avg && a.int_or("count_include_pad", 0)? != 0,
            ceil_mode: a.int_or("ceil_mode", 0)? != 0,
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn global_pool(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let v = self.g.input(i, 0).unwrap_or_default();
        let rank = self
            .rank(v)
            .and_then(|r| r.checked_sub(2))
            .ok_or_else(|| self.unsupported(i, "global pooling of a value of unknown rank"))?;
        let pool = if self.g.op(i) == "GlobalMaxPool" {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        self.emit(
            i,
            Op::GlobalPool {
                pool,
                rank,
                layout: DataLayout::ChannelsFirst,
                keepdims: true,
            },
            vec![x],
            vec![out.clone()],
            Vec::new(),
            &class,
        )?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn reduce(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let keepdims = a.int_or("keepdims", 1)? != 0;
        let ins: Vec<Option<&Val>> = self.g.nodes[i]
            .input
            .iter()
            .map(|s| self.g.val(s))
            .collect();
        let axes = axes_of(a, &ins, 1).map_err(|e| self.unsupported(i, e))?;
        let x = self.rt(i, 0)?;
        let rank = self.rank(&v);
        let axes: Vec<i64> = match (axes, rank) {
            (Some(ax), _) if !ax.is_empty() => ax,
            (_, Some(r)) if a.int_or("noop_with_empty_axes", 0)? == 0 => (0..r as i64).collect(),
            _ => return Err(self.unsupported(i, "reduction over unknown axes")),
        };
        let reduce = match self.g.op(i) {
            "ReduceMean" => ReduceKind::Mean,
            "ReduceMax" => ReduceKind::Max,
            "ReduceSum" => ReduceKind::Sum,
            _ => ReduceKind::Min,
        };
        let out = self.out(i, 0)?;
        let class = self.g.op(i).to_string();
        if let (Some(r), Some(DataLayout::ChannelsFirst), ReduceKind::Mean | ReduceKind::Max) =
            (rank, self.layout_of(&x), reduce)
        {
            let mut norm: Vec<usize> = axes
                .iter()
                .filter_map(|&ax| norm_axis(ax, r, "Reduce").ok())
                .collect();
            norm.sort_unstable();
            if r >= 3 && norm == (2..r).collect::<Vec<_>>() {
                let pool = if reduce == ReduceKind::Mean {
                    PoolKind::Avg
                } else {
                    PoolKind::Max
                };
                self.emit(
                    i,
                    Op::GlobalPool {
                        pool,
                        rank: r - 2,
                        layout: DataLayout::ChannelsFirst,
                        keepdims,
                    },
                    vec![x],
                    vec![out.clone()],
                    Vec::new(),
                    &class,
                )?;
                if keepdims {
                    self.set_layout(&out, Some(DataLayout::ChannelsFirst));
                }
                return Ok(());
            }
        }
        self.emit(
            i,
            Op::Reduce {
                reduce,
                axes,
                keepdims,
            },
            vec![x],
            vec![out],
            Vec::new(),
            &class,
        )?;
        Ok(())
    }

    fn pad(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let mode = a.string("mode")?.unwrap_or_else(|| "constant".into());
        let pads = match a.ints("pads")? {
            Some(p) => p,
            None => int_vec(self.konst(i, 1)?)
                .ok_or_else(|| self.malformed(i, "pads are not integers"))?,
        };
        let value = match a.float("value")? {
            Some(v) => v,
            None => match self.opt_konst(i, 2)? {
                Some(t) => scalar_f64(t)
                    .ok_or_else(|| self.malformed(i, "constant_value is not a scalar"))?,
                None => 0.0,
            },
        };
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "padding of a value of unknown rank"))?;
        let pads: Vec<i64> = match self.opt_konst(i, 3)? {
            Some(axes_t) => {
                let axes =
                    int_vec(axes_t).ok_or_else(|| self.malformed(i, "axes are not integers"))?;
                if pads.len() != 2 * axes.len() {
                    return Err(self.malformed(i, format!("pads {pads:?} for axes {axes:?}")));
                }
                let mut full = vec![0; 2 * rank];
                for (j, &ax) in axes.iter().enumerate() {
                    let ax = norm_axis(ax, rank, "Pad").map_err(|e| self.malformed(i, e))?;
                    full[ax] = pads[j];
                    full[rank + ax] = pads[axes.len() + j];
                }
                full
            }
            None => pads,
        };
        if pads.len() != 2 * rank {
            return Err(self.malformed(i, format!("pads {pads:?} for rank {rank}")));
        }
        if rank < 3 {
            return Err(
                self.unsupported(i, format!("Pad of a rank-{rank} value (not a feature map)"))
            );
        }
        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x).unwrap_or(DataLayout::ChannelsFirst);
        let (channel, spatial): (usize, Vec<usize>) = match layout {
            DataLayout::ChannelsFirst => (1, (2..rank).collect()),
            DataLayout::ChannelsLast => (rank - 1, (1..rank - 1).collect()),
        };
        let zero_at = |ax: usize| pads[ax] == 0 && pads[rank + ax] == 0;
        if !zero_at(0) || !zero_at(channel) {
            return Err(self.unsupported(i, format!("Pad {pads:?} pads the batch or channel axis")));
        }
        if pads.iter().any(|&p| p < 0) {
            return Err(self.unsupported(i, format!("Pad {pads:?} crops (negative pads)")));
        }
        let mode = match mode.as_str() {
            "constant" => PadMode::Constant(value),
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            other => return Err(self.unsupported(i, format!("Pad mode {other}"))),
        };
        let op = Op::Pad {
            rank: spatial.len(),
            begin: spatial.iter().map(|&ax| pads[ax] as usize).collect(),
            end: spatial.iter().map(|&ax| pads[rank + ax] as usize).collect(),
            layout,
            mode,
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), "Pad")?;
        self.set_layout(&out, Some(layout));
        Ok(())
    }

    fn resize(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let mode = a.string("mode")?.unwrap_or_else(|| "nearest".into());
        // The deprecated Upsample op has no coordinate attributes: `src = j / scale`, floor.
        let upsample = self.g.op(i) == "Upsample";
        let (coord, nearest_mode) = if upsample {
            ("asymmetric".to_string(), "floor".to_string())
        } else {
            (
                a.string("coordinate_transformation_mode")?
                    .unwrap_or_else(|| "half_pixel".into()),
                a.string("nearest_mode")?
                    .unwrap_or_else(|| "round_prefer_floor".into()),
            )
        };
        let interpolation = match mode.as_str() {
            // Checked against ⌊j / s⌋ below, once the factors are known.
            "nearest" => Interpolation::Nearest,
            "linear" | "bilinear" => match coord.as_str() {
                // With integer factors `half_pixel_symmetric` is `half_pixel`, and
                // `pytorch_half_pixel` differs only for a one-element output (both read 0).
                "half_pixel" | "pytorch_half_pixel" | "half_pixel_symmetric" => {
                    Interpolation::Bilinear
                }
                "align_corners" => Interpolation::BilinearAlignCorners,
                other => {
                    return Err(self.unsupported(
                        i,
                        format!(
                            "linear resize with coordinate_transformation_mode={other}; only half_pixel (torch align_corners=False) and align_corners (align_corners=True) lift"
                        ),
                    ));
                }
            },
            other => return Err(self.unsupported(i, format!("resize mode {other}"))),
        };
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let out = self.out(i, 0)?;
        let (Some(ins), Some(outs)) = (self.g.shape(&v), self.g.shape(&out)) else {
            return Err(self.unsupported(i, "resize of a value of unknown shape"));
        };
        let scales: Option<Vec<f64>> = match a.floats("scales")? {
            Some(s) => Some(s),
            None => {
                let k = if self.g.op(i) == "Upsample" || self.g.opset < 11 {
                    1
                } else {
                    2
                };
                self.g
                    .input(i, k)
                    .and_then(|s| self.g.konst(s))
                    .filter(|t| !t.is_empty())
                    .map(|t| t.to_f64().iter().copied().collect())
            }
        };
        let factors: Vec<f64> = match scales {
            Some(s) => s,
            None => ins
                .iter()
                .zip(&outs)
                .map(|(a, b)| match (a.known(), b.known()) {
                    (Some(x), Some(y)) if x > 0 => y as f64 / x as f64,
                    _ if a == b => 1.0,
                    _ => f64::NAN,
                })
                .collect(),
        };
        let x = self.rt(i, 0)?;
        let layout = self.layout_of(&x).unwrap_or(DataLayout::ChannelsFirst);
        let rank = ins.len();
        if factors.len() != rank || rank < 3 {
            return Err(self.unsupported(i, format!("resize scales {factors:?}")));
        }
        let (channel, spatial): (usize, Vec<usize>) = match layout {
            DataLayout::ChannelsFirst => (1, (2..rank).collect()),
            DataLayout::ChannelsLast => (rank - 1, (1..rank - 1).collect()),
        };
        let int = |f: f64| f.is_finite() && f >= 1.0 && f.fract() == 0.0;
        if !is_one(factors[0])
            || !is_one(factors[channel])
            || !spatial.iter().all(|&ax| int(factors[ax]))
        {
            return Err(self.unsupported(
                i,
                format!(
                    "resize scales {factors:?}: only integer upsampling of the spatial axes lifts"
                ),
            ));
        }
        if interpolation == Interpolation::Nearest {
            for &ax in &spatial {
                let n = ins[ax].known().and_then(|v| usize::try_from(v).ok());
                if let Err(why) = nearest_is_repeat(&coord, &nearest_mode, n, factors[ax] as usize)
                {
                    return Err(self.unsupported(
                        i,
                        format!(
                            "nearest resize with coordinate_transformation_mode={coord}, nearest_mode={nearest_mode}: {why}"
                        ),
                    ));
                }
            }
        }
        let op = Op::UpSampling {
            rank: spatial.len(),
            size: spatial.iter().map(|&ax| factors[ax] as usize).collect(),
            interpolation,
            layout,
        };
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out.clone()], Vec::new(), &class)?;
        self.set_layout(&out, Some(layout));
        Ok(())
    }

    fn gather(&mut self, i: usize) -> R<()> {
        let data = self.g.input(i, 0).unwrap_or_default().to_string();
        let axis = self.attrs(i).int_or("axis", 0)?;
        let out = self.out(i, 0)?;
        if let Some(table) = self.g.konst(&data) {
            if table.shape().len() != 2 || !table.dtype().is_float() || axis != 0 {
                return Err(
                    self.unsupported_op(i, "Gather from a constant that is not an embedding table")
                );
            }
            let (input_dim, output_dim) = (table.shape()[0], table.shape()[1]);
            let ids = self.rt(i, 1)?;
            let p = self.param(
                i,
                0,
                ParamRole::Embeddings,
                ParamLayout::Embedding,
                "weight",
            )?;
            let values = table.to_f64();
            let zero_rows: Vec<usize> = (0..input_dim)
                .filter(|&r| {
                    values
                        .index_axis(ndarray::Axis(0), r)
                        .iter()
                        .all(|&v| v == 0.0)
                })
                .collect();
            let name = self.emit(
                i,
                Op::Embedding {
                    input_dim,
                    output_dim,
                    mask_zero: false,
                    padding_idx: None,
                },
                vec![ids],
                vec![out],
                vec![p],
                "Gather",
            )?;
            if self.framework == Framework::Torch {
                let hint = match zero_rows.as_slice() {
                    [r] => {
                        format!("; row {r} is all zeros, as torch initializes the padding_idx row")
                    }
                    _ => String::new(),
                };
                self.notes.push(format!(
                    "{name}: ONNX does not record Embedding padding_idx (it only changes gradients), so padding_idx is unknown{hint}"
                ));
            }
            return Ok(());
        }
        let idx = self.konst(i, 1)?;
        if idx.dtype().is_float() {
            return Err(self.malformed(i, "float indices"));
        }
        let values: Vec<i64> = idx.to_i64().iter().copied().collect();
        let x = self.rt(i, 0)?;
        let op = match (idx.shape().len(), values.as_slice()) {
            (0, [index]) => Op::Select {
                axis,
                index: *index,
            },
            (1, [index]) => Op::Slice {
                axis,
                start: *index,
                end: if *index == -1 {
                    i64::MAX
                } else {
                    index.saturating_add(1)
                },
                step: 1,
            },
            _ => {
                return Err(
                    self.unsupported_op(i, "Gather of several indices from a computed value")
                );
            }
        };
        self.emit(i, op, vec![x], vec![out], Vec::new(), "Gather")?;
        Ok(())
    }

    fn slice(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let (starts, ends, axes, steps) = match a.ints("starts")? {
            Some(s) => (
                s,
                a.ints("ends")?.unwrap_or_default(),
                a.ints("axes")?,
                None,
            ),
            None => {
                let get = |k: usize| -> R<Option<Vec<i64>>> {
                    match self.opt_konst(i, k)? {
                        Some(t) => Ok(Some(int_vec(t).ok_or_else(|| {
                            self.malformed(i, "slice parameters are not integers")
                        })?)),
                        None => Ok(None),
                    }
                };
                (
                    get(1)?.unwrap_or_default(),
                    get(2)?.unwrap_or_default(),
                    get(3)?,
                    get(4)?,
                )
            }
        };
        if starts.len() != ends.len() || starts.is_empty() {
            return Err(self.malformed(i, format!("starts {starts:?}, ends {ends:?}")));
        }
        let shape = self.g.shape(&v);
        let mut cur = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let mut parts = Vec::new();
        for (j, (&s, &e)) in starts.iter().zip(&ends).enumerate() {
            let axis = axes
                .as_ref()
                .and_then(|x| x.get(j).copied())
                .unwrap_or(j as i64);
            let step = steps.as_ref().and_then(|x| x.get(j).copied()).unwrap_or(1);
            let len = shape.as_ref().and_then(|sh| {
                let ax = norm_axis(axis, sh.len(), "Slice").ok()?;
                sh[ax].known()
            });
            let full = step == 1 && s == 0 && len.is_some_and(|n| e >= n);
            if !full {
                parts.push((axis, s, e, step));
            }
        }
        if parts.is_empty() {
            self.alias.insert(out, Alias::Same(cur));
            return Ok(());
        }
        let n = parts.len();
        for (j, (axis, start, end, step)) in parts.into_iter().enumerate() {
            let o = if j + 1 == n {
                out.clone()
            } else {
                format!("{out}.{j}")
            };
            self.emit(
                i,
                Op::Slice {
                    axis,
                    start,
                    end,
                    step,
                },
                vec![cur],
                vec![o.clone()],
                Vec::new(),
                "Slice",
            )?;
            cur = o;
        }
        Ok(())
    }

    fn split(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let a = self.attrs(i);
        let shape = self
            .g
            .shape(&v)
            .ok_or_else(|| self.unsupported(i, "Split of a value of unknown shape"))?;
        let axis = a.int_or("axis", 0)?;
        let ax = norm_axis(axis, shape.len(), "Split").map_err(|e| self.malformed(i, e))?;
        let n_out = self.g.nodes[i].output.len();
        let sizes: Vec<i64> = match a.ints("split")? {
            Some(s) => s,
            None => match self.opt_konst(i, 1)? {
                Some(t) => int_vec(t).ok_or_else(|| self.malformed(i, "split sizes"))?,
                None => {
                    let len = shape[ax].known().ok_or_else(|| {
                        self.unsupported(i, "even Split of an axis of unknown length")
                    })?;
                    let len = usize::try_from(len).map_err(|_| self.malformed(i, "axis length"))?;
                    super::eval::even_split(len, n_out, a).map_err(|e| self.malformed(i, e))?
                }
            },
        };
        let x = self.rt(i, 0)?;
        let mut start = 0i64;
        for (k, &s) in sizes.iter().enumerate() {
            if let Some(o) = self.g.output(i, k).map(str::to_string) {
                self.emit(
                    i,
                    Op::Slice {
                        axis,
                        start,
                        end: start.saturating_add(s),
                        step: 1,
                    },
                    vec![x.clone()],
                    vec![o],
                    Vec::new(),
                    "Split",
                )?;
            }
            start = start.saturating_add(s);
        }
        Ok(())
    }

    fn squeeze(&mut self, i: usize) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let ins: Vec<Option<&Val>> = self.g.nodes[i]
            .input
            .iter()
            .map(|s| self.g.val(s))
            .collect();
        let axes = axes_of(self.attrs(i), &ins, 1).map_err(|e| self.unsupported(i, e))?;
        let unsq = self.g.op(i) == "Unsqueeze";
        let axes = match axes {
            Some(a) => a,
            None if unsq => return Err(self.malformed(i, "Unsqueeze without axes")),
            None => {
                let shape = self
                    .g
                    .shape(&v)
                    .ok_or_else(|| self.unsupported(i, "Squeeze of a value of unknown shape"))?;
                (0..shape.len())
                    .filter(|&k| shape[k] == Dim::Known(1))
                    .map(|k| k as i64)
                    .collect()
            }
        };
        let x = self.rt(i, 0)?;
        let out = self.out(i, 0)?;
        let op = if unsq {
            Op::Unsqueeze { axes }
        } else {
            Op::Squeeze { axes }
        };
        let class = self.g.op(i).to_string();
        self.emit(i, op, vec![x], vec![out], Vec::new(), &class)?;
        Ok(())
    }

    fn layer_norm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let axis = a.int_or("axis", -1)?;
        let epsilon = a.float_or("epsilon", 1e-5)?;
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "LayerNormalization of a value of unknown rank"))?;
        let first =
            norm_axis(axis, rank, "LayerNormalization").map_err(|e| self.malformed(i, e))?;
        let axes: Vec<i64> = (first..rank).map(|ax| ax as i64 - rank as i64).collect();
        let x = self.rt(i, 0)?;
        let mut params = vec![self.param(
            i,
            1,
            ParamRole::Gamma,
            gamma_layout(self.konst(i, 1)?),
            "weight",
        )?];
        if self.g.input(i, 2).is_some() {
            let layout = gamma_layout(self.konst(i, 2)?);
            params.push(self.param(i, 2, ParamRole::Beta, layout, "bias")?);
        }
        let center = params.len() == 2;
        let out = self.out(i, 0)?;
        self.emit(
            i,
            Op::LayerNorm {
                axes,
                epsilon,
                center,
                scale: true,
                rms_scaling: false,
            },
            vec![x],
            vec![out],
            params,
            "LayerNormalization",
        )?;
        Ok(())
    }

    fn instance_norm(&mut self, i: usize) -> R<()> {
        let epsilon = self.attrs(i).float_or("epsilon", 1e-5)?;
        let x = self.rt(i, 0)?;
        let scale = self.konst(i, 1)?;
        let groups = scale.len();
        let params = vec![
            self.param(i, 1, ParamRole::Gamma, ParamLayout::Vector, "weight")?,
            self.param(i, 2, ParamRole::Beta, ParamLayout::Vector, "bias")?,
        ];
        let out = self.out(i, 0)?;
        let name = self.emit(
            i,
            Op::GroupNorm {
                groups,
                axis: 1,
                epsilon,
                center: true,
                scale: true,
            },
            vec![x],
            vec![out.clone()],
            params,
            "InstanceNormalization",
        )?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        self.notes.push(format!("{name}: InstanceNormalization lifted as GroupNorm with one group per channel ({groups})"));
        Ok(())
    }

    // ----------------------------------------------------------------------------------
    // patterns
    // ----------------------------------------------------------------------------------

    fn lift_group(&mut self, k: usize) -> R<()> {
        let grp = self.groups[k].clone();
        let first = grp.nodes[0];
        let last = *grp.nodes.last().unwrap_or(&first);
        let x = self.resolve(&grp.input, &self.g.name(first))?;
        let class: String = grp
            .nodes
            .iter()
            .map(|&n| self.g.op(n))
            .collect::<Vec<_>>()
            .join("+");
        let layout = self.layout_of(&x);
        match grp.kind {
            GroupKind::Act(function) => {
                self.emit(
                    first,
                    Op::Activation { function },
                    vec![x],
                    vec![grp.output.clone()],
                    Vec::new(),
                    &class,
                )?;
            }
            GroupKind::LayerNorm {
                axes,
                epsilon,
                weight,
                bias,
            } => {
                let mut params = Vec::new();
                if let Some(w) = &weight {
                    let layout = gamma_layout(
                        self.g
                            .konst(w)
                            .ok_or_else(|| self.malformed(last, "weight"))?,
                    );
                    params.push(self.param_of_value(
                        last,
                        w,
                        ParamRole::Gamma,
                        layout,
                        "weight",
                    )?);
                }
                if let Some(b) = &bias {
                    let layout = gamma_layout(
                        self.g
                            .konst(b)
                            .ok_or_else(|| self.malformed(last, "bias"))?,
                    );
                    params.push(self.param_of_value(last, b, ParamRole::Beta, layout, "bias")?);
                }
                self.emit(
                    first,
                    Op::LayerNorm {
                        axes,
                        epsilon,
                        center: bias.is_some(),
                        scale: weight.is_some(),
                        rms_scaling: false,
                    },
                    vec![x],
                    vec![grp.output.clone()],
                    params,
                    &class,
                )?;
            }
            GroupKind::GroupNorm {
                groups,
                epsilon,
                weight,
                bias,
            } => {
                let mut params = Vec::new();
                if let Some(w) = &weight {
                    params.push(self.flat_param(last, w, ParamRole::Gamma, "weight")?);
                }
                if let Some(b) = &bias {
                    params.push(self.flat_param(last, b, ParamRole::Beta, "bias")?);
                }
                self.emit(
                    first,
                    Op::GroupNorm {
                        groups,
                        axis: 1,
                        epsilon,
                        center: bias.is_some(),
                        scale: weight.is_some(),
                    },
                    vec![x],
                    vec![grp.output.clone()],
                    params,
                    &class,
                )?;
            }
        }
        self.set_layout(&grp.output, layout);
        Ok(())
    }

    /// A per-channel parameter stored broadcastable (`(C, 1, 1)`), as a vector.
    fn flat_param(&mut self, i: usize, v: &str, role: ParamRole, suffix: &str) -> R<Param> {
        let mut p = self.param_of_value(i, v, role, ParamLayout::Vector, suffix)?;
        let n = p.tensor.len();
        if p.tensor.shape() != [n] {
            p.tensor = p.tensor.reshaped(&[n]).unwrap_or(p.tensor);
        }
        Ok(p)
    }
}

fn gamma_layout(t: &Tensor) -> ParamLayout {
    if t.shape().len() == 1 {
        ParamLayout::Vector
    } else {
        ParamLayout::AsIs
    }
}

fn join_dims(d: &[Dim]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether ONNX nearest resizing by the integer factor `s` reads input `⌊j / s⌋` for every
/// output `j` (the IR's `Interpolation::Nearest`, which every Keras and torch nearest
/// upsampling gives), along an axis of length `n` (`None`: unknown). The mapping follows the
/// ONNX `Resize` reference: the coordinate transformation, then `nearest_mode` rounding,
/// clamped to the input.
fn nearest_is_repeat(
    coord: &str,
    nearest_mode: &str,
    n: Option<usize>,
    s: usize,
) -> Result<(), String> {
    let n = match (coord, n) {
        ("align_corners", None) => {
            return Err("the axis length is unknown, so the sampled positions are too".into());
        }
        ("align_corners", Some(n)) => n,
        // The other transformations are `j/s` plus a constant: the pattern repeats every `s`
        // outputs, so the first, two inner and the last (clamped) period decide.
        (_, n) => n.map_or(4, |n| n.min(4)),
    };
    let out = n
        .checked_mul(s)
        .filter(|&o| o <= 1 << 20)
        .ok_or_else(|| format!("a length-{n} axis upsampled ×{s} is too long to check"))?;
    for j in 0..out {
        let (jf, sf) = (j as f64, s as f64);
        let x = match coord {
            "half_pixel" | "half_pixel_symmetric" => (jf + 0.5) / sf - 0.5,
            "pytorch_half_pixel" if out > 1 => (jf + 0.5) / sf - 0.5,
            "pytorch_half_pixel" => 0.0,
            "asymmetric" => jf / sf,
            "tf_half_pixel_for_nn" => (jf + 0.5) / sf,
            "align_corners" if out > 1 => jf * (n - 1) as f64 / (out - 1) as f64,
            "align_corners" => 0.0,
            other => {
                return Err(format!(
                    "coordinate_transformation_mode={other} does not lift"
                ));
            }
        };
        let f = x.floor();
        // Exact halves, allowing for the round-off of the divisions above.
        let half = (x - f - 0.5).abs() <= 1e-9;
        let r = match nearest_mode {
            "round_prefer_floor" if half => f,
            "round_prefer_ceil" if half => f + 1.0,
            "round_prefer_floor" | "round_prefer_ceil" => x.round(),
            "floor" => f,
            "ceil" => x.ceil(),
            other => return Err(format!("nearest_mode={other} does not lift")),
        };
        let i = (r.max(0.0) as usize).min(n - 1);
        if i != j / s {
            return Err(format!(
                "output {j} of a length-{n} axis upsampled ×{s} reads input {i}, not {} as Keras and torch nearest upsampling do",
                j / s
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::nearest_is_repeat;

    #[test]
    fn nearest_conventions_that_equal_repeat_for_integer_factors() {
        for s in 1..=4 {
            for n in [Some(1), Some(3), Some(5), None] {
                // torch 'nearest' (asymmetric, floor) and the ONNX defaults.
                assert!(nearest_is_repeat("asymmetric", "floor", n, s).is_ok());
                assert!(nearest_is_repeat("half_pixel", "round_prefer_floor", n, s).is_ok());
                assert!(nearest_is_repeat("pytorch_half_pixel", "round_prefer_ceil", n, s).is_ok());
                assert!(nearest_is_repeat("tf_half_pixel_for_nn", "floor", n, s).is_ok());
            }
        }
        // asymmetric with rounding reads j/s rounded: output 1 of ×2 reads input 1.
        let e = nearest_is_repeat("asymmetric", "round_prefer_ceil", Some(3), 2).unwrap_err();
        assert!(e.contains("output 1") && e.contains("reads input 1"), "{e}");
        assert!(nearest_is_repeat("asymmetric", "round_prefer_floor", Some(3), 2).is_ok());
        assert!(nearest_is_repeat("asymmetric", "round_prefer_floor", Some(3), 3).is_err());
        // align_corners: src = j·(n − 1)/(n·s − 1); rounding happens to give ⌊j/s⌋ for ×2,
        // not for ×3 of five (output 2 reads round(4/7) = 1).
        assert!(nearest_is_repeat("align_corners", "round_prefer_floor", Some(4), 2).is_ok());
        assert!(nearest_is_repeat("align_corners", "round_prefer_floor", Some(5), 3).is_err());
        assert!(nearest_is_repeat("align_corners", "floor", None, 2).is_err());
        assert!(nearest_is_repeat("align_corners", "floor", Some(1), 2).is_ok());
        assert!(nearest_is_repeat("tf_crop_and_resize", "floor", Some(3), 2).is_err());
        assert!(nearest_is_repeat("half_pixel", "nearest", Some(3), 2).is_err());
    }
}
