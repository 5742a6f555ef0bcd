//! The ONNX graph indexed for lifting: nodes in file order, who produces and who reads each
//! value, and what is known about every value after constant evaluation.

use std::collections::{BTreeMap, BTreeSet};

use model_ir::{DType, Tensor, ValueInfo};
use onnx_proto::onnx::{GraphProto, NodeProto, tensor_shape_proto::dimension, type_proto};

use super::decode::{dtype_of, tensor_from_proto};
use super::eval::{EvalCtx, eval};
use super::value::{Dim, Val, scalar_f64};
use crate::error::ErrorKind;

/// A decoded, evaluated graph.
#[derive(Debug)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<NodeProto>,
    /// What is known about each value, by name.
    pub(crate) vals: BTreeMap<String, Val>,
    producer: BTreeMap<String, usize>,
    consumers: BTreeMap<String, Vec<usize>>,
    /// Graph outputs, in order.
    pub(crate) outputs: Vec<String>,
    /// Names of the initializers, in file order.
    pub(crate) initializers: Vec<String>,
    init_set: BTreeSet<String>,
    /// Graph inputs that are not initializers.
    pub(crate) inputs: Vec<ValueInfo>,
    /// Version of the default operator set.
    pub(crate) opset: i64,
}

impl Graph {
    /// Indexes `graph` and evaluates every node in order.
    pub(crate) fn build(
        graph: GraphProto,
        opset: i64,
        file_len: usize,
    ) -> Result<Graph, ErrorKind> {
        let mut vals = BTreeMap::new();
        let mut initializers = Vec::new();
        for t in &graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(ErrorKind::Malformed("an initializer has no name".into()));
            }
            let tensor = tensor_from_proto(t, &format!("initializer `{name}`"), file_len)?;
            if vals.insert(name.clone(), Val::Const(tensor)).is_some() {
                return Err(ErrorKind::Malformed(format!(
                    "two initializers are named `{name}`"
                )));
            }
            initializers.push(name);
        }
        let mut inputs = Vec::new();
        for vi in &graph.input {
            let name = vi.name.clone().unwrap_or_default();
            if vals.contains_key(&name) {
                continue; // an initializer listed as input (older exporters)
            }
            if name.is_empty() {
                return Err(ErrorKind::Malformed("a graph input has no name".into()));
            }
            let (shape, dtype) = value_type(vi, &name)?;
            let dims: Vec<Dim> = shape
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    TypeDim::Value(v) => Dim::Known(*v),
                    TypeDim::Param(p) => Dim::Sym(p.clone()),
                    TypeDim::Unknown => Dim::Sym(format!("{name}:{i}")),
                })
                .collect();
            let ir_shape = shape
                .iter()
                .map(|d| match d {
                    TypeDim::Value(v) => usize::try_from(*v).ok(),
                    _ => None,
                })
                .collect();
            vals.insert(name.clone(), Val::runtime(Some(dims), Some(dtype)));
            inputs.push(ValueInfo {
                name,
                shape: ir_shape,
                dtype,
            });
        }
        let mut ctx = EvalCtx {
            file_len,
            fresh: 0,
            budget: super::eval::CONST_BUDGET,
        };
        let mut producer = BTreeMap::new();
        let mut consumers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            let name = node_label(node, i);
            let mut refs: Vec<Option<&Val>> = Vec::with_capacity(node.input.len());
            for v in &node.input {
                if v.is_empty() {
                    refs.push(None);
                    continue;
                }
                let val = vals.get(v).ok_or_else(|| {
                    ErrorKind::Missing(format!(
                        "value `{v}` read by node `{name}`: no initializer, graph input or earlier node defines it"
                    ))
                })?;
                refs.push(Some(val));
                let c = consumers.entry(v.clone()).or_default();
                if c.last() != Some(&i) {
                    c.push(i);
                }
            }
            let outs = if node
                .domain
                .as_deref()
                .is_none_or(|d| d.is_empty() || d == "ai.onnx")
            {
                eval(node, &refs, &mut ctx).map_err(|e| in_node(e, &name, node))?
            } else {
                vec![Val::runtime(None, None); node.output.len()]
            };
            for (k, out) in node.output.iter().enumerate() {
                if out.is_empty() {
                    continue;
                }
                if vals.contains_key(out) {
                    return Err(ErrorKind::Malformed(format!(
                        "value `{out}` is defined twice (again by node `{name}`)"
                    )));
                }
                let v = outs
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Val::runtime(None, None));
                vals.insert(out.clone(), v);
                producer.insert(out.clone(), i);
            }
        }
        let mut outputs = Vec::new();
        for o in &graph.output {
            let name = o.name.clone().unwrap_or_default();
            if !vals.contains_key(&name) {
                return Err(ErrorKind::Missing(format!(
                    "graph output `{name}`: nothing in the graph defines it"
                )));
            }
            outputs.push(name);
        }
        if outputs.is_empty() {
            return Err(ErrorKind::Missing(
                "graph outputs: the graph declares none".into(),
            ));
        }
        Ok(Graph {
            nodes: graph.node,
            vals,
            producer,
            consumers,
            outputs,
            init_set: initializers.iter().cloned().collect(),
            initializers,
            inputs,
            opset,
        })
    }

    pub(crate) fn op(&self, i: usize) -> &str {
        self.nodes[i].op_type.as_deref().unwrap_or("")
    }

    /// The node's name, or `<op>_<index>` when it has none.
    pub(crate) fn name(&self, i: usize) -> String {
        node_label(&self.nodes[i], i)
    }

    /// Input `k` of node `i`, if present and not empty.
    pub(crate) fn input(&self, i: usize, k: usize) -> Option<&str> {
        self.nodes[i]
            .input
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn output(&self, i: usize, k: usize) -> Option<&str> {
        self.nodes[i]
            .output
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn val(&self, v: &str) -> Option<&Val> {
        self.vals.get(v)
    }

    pub(crate) fn konst(&self, v: &str) -> Option<&Tensor> {
        self.vals.get(v).and_then(Val::as_const)
    }

    /// The value of a one-element constant.
    pub(crate) fn scalar(&self, v: &str) -> Option<f64> {
        self.konst(v).and_then(scalar_f64)
    }

    pub(crate) fn is_runtime(&self, v: &str) -> bool {
        self.vals.get(v).is_some_and(Val::is_runtime)
    }

    pub(crate) fn dtype(&self, v: &str) -> Option<DType> {
        self.vals.get(v).and_then(Val::dtype)
    }

    pub(crate) fn shape(&self, v: &str) -> Option<Vec<Dim>> {
        self.vals.get(v).and_then(Val::shape)
    }

    pub(crate) fn producer(&self, v: &str) -> Option<usize> {
        self.producer.get(v).copied()
    }

    pub(crate) fn consumers(&self, v: &str) -> &[usize] {
        self.consumers.get(v).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn is_output(&self, v: &str) -> bool {
        self.outputs.iter().any(|o| o == v)
    }

    /// The one node reading `v`, when exactly one does and `v` is not a graph output.
    pub(crate) fn sole_consumer(&self, v: &str) -> Option<usize> {
        match self.consumers(v) {
            [only] if !self.is_output(v) => Some(*only),
            _ => None,
        }
    }

    pub(crate) fn is_initializer(&self, v: &str) -> bool {
        self.init_set.contains(v)
    }

    /// Follows value-preserving reshapes (`Identity`, `Unsqueeze`, `Squeeze`, `Reshape`,
    /// `Flatten`) and at most one 2-D `Transpose` back to an initializer.
    pub(crate) fn trace_init(&self, v: &str) -> Option<Traced> {
        let mut cur = v.to_string();
        let mut transposed = false;
        for _ in 0..16 {
            if self.is_initializer(&cur) {
                return Some(Traced {
                    init: cur,
                    transposed,
                });
            }
            let p = self.producer(&cur)?;
            match self.op(p) {
                "Identity" | "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => {}
                "Transpose" if !transposed && self.shape(&cur).is_some_and(|s| s.len() == 2) => {
                    transposed = true;
                }
                _ => return None,
            }
            cur = self.input(p, 0)?.to_string();
        }
        None
    }

    /// Every initializer that the constant `v` was computed from.
    pub(crate) fn init_ancestors(&self, v: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![v.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(cur) = stack.pop() {
            if !seen.insert(cur.clone()) {
                continue;
            }
            if self.is_initializer(&cur) {
                out.insert(cur);
                continue;
            }
            if let Some(p) = self.producer(&cur) {
                for inp in self.nodes[p].input.iter().filter(|s| !s.is_empty()) {
                    stack.push(inp.clone());
                }
            }
        }
        out
    }
}

/// An initializer a constant operand comes from.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    pub(crate) init: String,
    /// Whether a 2-D `Transpose` sits between the initializer and the operand.
    pub(crate) transposed: bool,
}

pub(crate) fn node_label(node: &NodeProto, i: usize) -> String {
    match node.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("{}_{i}", node.op_type.as_deref().unwrap_or("node")),
    }
}

/// Adds the node to an error message that does not name it yet.
fn in_node(e: ErrorKind, name: &str, node: &NodeProto) -> ErrorKind {
    let op = node.op_type.as_deref().unwrap_or("");
    let ctx = |m: String| format!("node `{name}` ({op}): {m}");
    match e {
        ErrorKind::Malformed(m) => ErrorKind::Malformed(ctx(m)),
        ErrorKind::Unsupported(m) => ErrorKind::Unsupported(ctx(m)),
        ErrorKind::TooLarge(m) => ErrorKind::TooLarge(ctx(m)),
        other => other,
    }
}

enum TypeDim {
    Value(i64),
    Param(String),
    Unknown,
}

fn value_type(
    vi: &onnx_proto::onnx::ValueInfoProto,
    name: &str,
) -> Result<(Vec<TypeDim>, DType), ErrorKind> {
    let what = format!("graph input `{name}`");
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(ErrorKind::Unsupported(format!("{what} is not a tensor")));
    };
    let dtype = dtype_of(t.elem_type.unwrap_or(0), &what)?;
    let Some(shape) = &t.shape else {
        return Err(ErrorKind::Unsupported(format!("{what} has no shape")));
    };
    let dims = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(v)) if *v >= 0 => TypeDim::Value(*v),
            Some(dimension::Value::DimParam(p)) if !p.is_empty() => TypeDim::Param(p.clone()),
            _ => TypeDim::Unknown,
        })
        .collect();
    Ok((dims, dtype))
}
