//! Lifting: ONNX nodes (and the multi-node patterns found by [`super::patterns`]) become
//! model-ir layers, one IR node per torch layer.
//!
//! Values keep their ONNX names. Nodes that only pass a value on (`Identity`, a no-op `Cast`,
//! the `Transpose` pairs torch puts around batch-first recurrent layers) are absorbed through
//! aliases; secondary outputs nothing reads (BatchNormalization running statistics, Dropout
//! masks) are dropped. An op or pattern that cannot be lifted is an error naming the node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use model_ir::{DataLayout, Framework, Node, Op, Origin, Param, ParamLayout, ParamRole, Tensor};

use super::decode::Attrs;
use super::graph::Graph;
use super::naming::{Scopes, param_module, unique};
use super::patterns::Group;
use super::value::Val;
use crate::error::ErrorKind;

mod activation;
mod conv;
mod elementwise;
mod groups;
mod linear;
mod norm;
mod passthrough;
mod pool;
mod resize;
mod rnn;
mod shape;

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

    /// Lifts one node through the lifter its op type is registered with.
    fn lift_node(&mut self, i: usize) -> R<()> {
        let node = &self.g.nodes[i];
        if let Some(d) = node
            .domain
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "ai.onnx")
        {
            return Err(self.unsupported_op(i, &format!("{d}::{}", self.g.op(i))));
        }
        match REGISTRY.get(self.g.op(i)) {
            Some(entry) => {
                self.check_attrs(i, entry.attrs)?;
                (entry.lift)(self, i)
            }
            None => Err(self.unsupported_op(i, self.g.op(i))),
        }
    }

    /// Refuses every attribute of node `i` that its lifter does not compute: an attribute
    /// missing from `handled` (see [`Registry::add`]), or one listed as `name=value` that
    /// holds another value. No attribute is ever ignored.
    pub(crate) fn check_attrs(&self, i: usize, handled: &[&str]) -> R<()> {
        let node = &self.g.nodes[i];
        for a in &node.attribute {
            let name = a.name.as_deref().unwrap_or("");
            let value = attr_value(a);
            let ok = handled.iter().any(|h| match h.split_once('=') {
                None => *h == name,
                Some((n, want)) => n == name && same_value(&value, want),
            });
            if !ok {
                return Err(self.unsupported(
                    i,
                    format!("attribute {name}={value} is not computed by parallax"),
                ));
            }
        }
        Ok(())
    }
}

/// An attribute's value as text (ints and floats as numbers, strings as they are, lists in
/// brackets), for refusals and for the `name=value` entries of a handled-attribute list.
fn attr_value(a: &onnx_proto::onnx::AttributeProto) -> String {
    let list = |v: Vec<String>| format!("[{}]", v.join(", "));
    match a.r#type {
        Some(1) => format!("{}", a.f.unwrap_or(0.0)),
        Some(2) => format!("{}", a.i.unwrap_or(0)),
        Some(3) => String::from_utf8_lossy(a.s.as_deref().unwrap_or_default()).into_owned(),
        Some(6) => list(a.floats.iter().map(|f| f.to_string()).collect()),
        Some(7) => list(a.ints.iter().map(|f| f.to_string()).collect()),
        Some(8) => list(
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        Some(4) => "<tensor>".into(),
        Some(t) => format!("<attribute of type {t}>"),
        None => "<untyped>".into(),
    }
}

/// Whether an attribute's rendered value equals the `want` of a `name=want` entry (numbers
/// compared as numbers, so `0` matches `0.0`).
fn same_value(value: &str, want: &str) -> bool {
    match (value.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()),
        _ => value == want,
    }
}

/// Lifts ONNX node `i` into IR nodes (or aliases), or says why it cannot.
pub(crate) type LiftFn = fn(&mut Lifter<'_>, usize) -> R<()>;

/// A lifter and the attributes it computes.
#[derive(Clone, Copy)]
struct Entry {
    lift: LiftFn,
    /// Attribute names the lifter computes (`name`), or accepts only at one value
    /// (`name=value`, e.g. a default that changes nothing). Any other attribute is refused
    /// before the lifter runs.
    attrs: &'static [&'static str],
}

/// The ONNX op types that lift, each mapped to its lifter. Every family module adds its own
/// op types in its `register`.
struct Registry {
    by_op: HashMap<&'static str, Entry>,
}

impl Registry {
    fn new() -> Registry {
        let mut reg = Registry {
            by_op: HashMap::new(),
        };
        linear::register(&mut reg);
        conv::register(&mut reg);
        norm::register(&mut reg);
        passthrough::register(&mut reg);
        activation::register(&mut reg);
        elementwise::register(&mut reg);
        shape::register(&mut reg);
        pool::register(&mut reg);
        resize::register(&mut reg);
        rnn::register(&mut reg);
        reg
    }

    /// Maps each of `op_types` to `lift`, which computes the attributes `attrs` (see
    /// [`Entry::attrs`]); an op type has one lifter.
    fn add(&mut self, op_types: &[&'static str], attrs: &'static [&'static str], lift: LiftFn) {
        for &op in op_types {
            let previous = self.by_op.insert(op, Entry { lift, attrs });
            debug_assert!(previous.is_none(), "ONNX op `{op}` registered twice");
        }
    }

    fn get(&self, op_type: &str) -> Option<Entry> {
        self.by_op.get(op_type).copied()
    }

    /// The attributes the lifter of `op_type` computes, for the lifters of multi-node
    /// patterns.
    pub(crate) fn attrs(op_type: &str) -> Option<&'static [&'static str]> {
        REGISTRY.get(op_type).map(|e| e.attrs)
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

#[cfg(test)]
mod tests {
    use super::REGISTRY;

    #[test]
    fn every_lifted_op_type_has_one_lifter() {
        let mut expected = vec![
            "Gemm",
            "MatMul",
            "Conv",
            "ConvTranspose",
            "BatchNormalization",
            "LayerNormalization",
            "InstanceNormalization",
            "Dropout",
            "Identity",
            "Cast",
            "Relu",
            "LeakyRelu",
            "Elu",
            "Selu",
            "Sigmoid",
            "HardSigmoid",
            "HardSwish",
            "Tanh",
            "Softplus",
            "Softsign",
            "Softmax",
            "LogSoftmax",
            "Clip",
            "Gelu",
            "Mish",
            "PRelu",
            "Erf",
            "Abs",
            "Neg",
            "Sqrt",
            "Exp",
            "Log",
            "Reciprocal",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Pow",
            "Max",
            "Min",
            "Sum",
            "Concat",
            "Tile",
            "Flatten",
            "Reshape",
            "Transpose",
            "Pad",
            "Gather",
            "Slice",
            "Split",
            "Squeeze",
            "Unsqueeze",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "GlobalMaxPool",
            "ReduceMean",
            "ReduceMax",
            "ReduceSum",
            "ReduceMin",
            "Resize",
            "Upsample",
            "LSTM",
            "GRU",
            "RNN",
        ];
        expected.sort_unstable();
        let mut known: Vec<&str> = REGISTRY.by_op.keys().copied().collect();
        known.sort_unstable();
        assert_eq!(known, expected);
        assert!(REGISTRY.get("Conv").is_some() && REGISTRY.get("Loop").is_none());
    }
}
