//! Sequential and Functional configs (nested ones too) → IR nodes, wiring and parameters.
//!
//! Naming, which the rest of parallax sees:
//! - **Nodes** are named after the Keras layer. A layer inside a nested model whose name is
//!   used by another layer anywhere in the model gets its enclosing models' names as a
//!   prefix (`inner_seq/proj`); otherwise it keeps its plain name. A channels_first
//!   `Flatten` gets an extra `Permute` node `<flatten>/to_channels_last` before it, because
//!   Keras transposes to channels_last before flattening.
//! - **Values** are `<node>:0:<output index>` (Keras `keras_history` with the call index,
//!   always 0 because every layer is called once); graph inputs are named after their
//!   `InputLayer`. Nested models are inlined: their inputs and outputs are the outer values.
//! - **Parameters** are `<node>/<Keras variable name>` (`dense/kernel`,
//!   `batch_normalization/moving_variance`); recurrent layers drop Keras's cell level
//!   (`lstm/kernel`, `lstm/recurrent_kernel`, `lstm/bias`) and Bidirectional layers insert the
//!   direction's layer name (`bidirectional/forward_lstm/kernel`,
//!   `bidirectional/backward_lstm/kernel`).
//!
//! Weight regularizers are filed under these parameter names, for trainable parameters only
//! (Keras penalizes `trainable_weights`).
//!
//! Weights come from `model.weights.h5` groups named by Keras's *saving names*
//! ([`super::naming`]), checked against the `name` attribute Keras ≥ 3.14 writes on each
//! `vars` group when it is there. A layer called more than once (shared weights) is
//! unsupported: the IR has one node per layer.

use std::collections::{BTreeMap, BTreeSet};

use model_ir::{
    Framework, Node, Op, Origin, Param, ParamLayout, ParamRole, ValueInfo, WeightRegularizer,
};
use serde_json::{Map, Value};

use super::config::{Cfg, shape_of, show};
use super::layers::{self, VarGroup};
use super::naming::Uniquifier;
use crate::error::ErrorKind;
use crate::hdf5::{AttrValue, H5File};

/// Which archive member a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Member {
    Config,
    Weights,
}

/// An error located in an archive member.
#[derive(Debug)]
pub(super) struct Fail {
    pub(super) member: Member,
    pub(super) kind: ErrorKind,
}

fn cfg_err(kind: ErrorKind) -> Fail {
    Fail {
        member: Member::Config,
        kind,
    }
}

fn w_err(kind: ErrorKind) -> Fail {
    Fail {
        member: Member::Weights,
        kind,
    }
}

fn malformed(msg: impl Into<String>) -> Fail {
    cfg_err(ErrorKind::Malformed(msg.into()))
}

/// Upper bound on model nesting.
const MAX_NESTING: usize = 32;

/// The result of walking a model config.
#[derive(Debug, Default)]
pub(super) struct Built {
    pub(super) inputs: Vec<ValueInfo>,
    pub(super) outputs: Vec<String>,
    pub(super) nodes: Vec<Node>,
    pub(super) notes: Vec<String>,
    /// Weight regularizers by parameter name.
    pub(super) regularizers: BTreeMap<String, WeightRegularizer>,
    /// Initializers by parameter name.
    pub(super) initializers: BTreeMap<String, model_ir::Initializer>,
    /// Constraints of trainable parameters by parameter name.
    pub(super) constraints: BTreeMap<String, model_ir::Constraint>,
}

/// Walks the model config `root` (`{"class_name", "config"}`) with the weights in `h5`.
pub(super) fn build(root: &Value, h5: &H5File<'_>) -> Result<Built, Fail> {
    let mut counts = BTreeMap::new();
    count_names(root, 0, &mut counts)?;
    let mut b = Builder {
        h5,
        out: Built::default(),
        counts,
        used: BTreeSet::new(),
        node_names: BTreeSet::new(),
    };
    let outputs = b.model(root, &[], "", true, None)?;
    b.out.outputs = outputs;
    let unused: Vec<&String> = h5
        .datasets
        .keys()
        .filter(|p| !p.starts_with("optimizer/") && !b.used.contains(*p))
        .collect();
    if !unused.is_empty() {
        let shown: Vec<&str> = unused.iter().take(5).map(|s| s.as_str()).collect();
        b.out.notes.push(format!(
            "model.weights.h5 holds {} dataset(s) no layer in config.json claims: {}{}",
            unused.len(),
            shown.join(", "),
            if unused.len() > 5 { ", ..." } else { "" }
        ));
    }
    Ok(b.out)
}

fn class_and_config(v: &Value) -> Result<(&str, &Map<String, Value>), Fail> {
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(format!("a layer entry has no class_name: {}", show(v))))?;
    let config = v
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed(format!("the {class} entry has no config object")))?;
    Ok((class, config))
}

fn name_of<'a>(class: &str, config: &'a Map<String, Value>) -> Result<&'a str, Fail> {
    config
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| cfg_err(ErrorKind::Missing(format!("the name of a {class} layer"))))
}

fn is_model(class: &str) -> bool {
    matches!(class, "Sequential" | "Functional" | "Model")
}

fn layer_list(config: &Map<String, Value>) -> Result<&Vec<Value>, Fail> {
    config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| cfg_err(ErrorKind::Missing("the `layers` list of a model".into())))
}

/// Counts every layer name in the tree (nested models' own InputLayers excluded: they
/// become no node).
fn count_names(
    model: &Value,
    depth: usize,
    counts: &mut BTreeMap<String, usize>,
) -> Result<(), Fail> {
    if depth > MAX_NESTING {
        return Err(cfg_err(ErrorKind::TooLarge(format!(
            "models nested deeper than {MAX_NESTING}"
        ))));
    }
    let (_, config) = class_and_config(model)?;
    for layer in layer_list(config)? {
        let (class, lc) = class_and_config(layer)?;
        if class == "InputLayer" && depth > 0 {
            continue;
        }
        *counts.entry(name_of(class, lc)?.to_string()).or_default() += 1;
        if is_model(class) {
            count_names(layer, depth + 1, counts)?;
        }
    }
    Ok(())
}

/// A `keras_history`-style triple `[layer, node_index, tensor_index]`.
type TensorKey = (String, u64, u64);

fn triple(v: &Value) -> Option<TensorKey> {
    let a = v.as_array()?;
    match a.as_slice() {
        [name, node, tensor] => {
            Some((name.as_str()?.to_string(), node.as_u64()?, tensor.as_u64()?))
        }
        _ => None,
    }
}

/// `input_layers` / `output_layers`: one triple or a list of triples.
fn triples(v: Option<&Value>, what: &str) -> Result<Vec<TensorKey>, Fail> {
    let v = v.ok_or_else(|| {
        cfg_err(ErrorKind::Missing(format!(
            "`{what}` of a Functional model"
        )))
    })?;
    if let Some(t) = triple(v) {
        return Ok(vec![t]);
    }
    v.as_array()
        .and_then(|a| a.iter().map(triple).collect::<Option<Vec<_>>>())
        .ok_or_else(|| malformed(format!("`{what}` is {}", show(v))))
}

/// The keras tensors a call's `args` refer to, in order (lists of tensors are flattened).
fn call_tensors(v: &Value, layer: &str, out: &mut Vec<TensorKey>) -> Result<(), Fail> {
    match v {
        Value::Array(items) => {
            for it in items {
                call_tensors(it, layer, out)?;
            }
            Ok(())
        }
        Value::Object(m)
            if m.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            let hist = m
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(triple)
                .ok_or_else(|| {
                    malformed(format!(
                        "layer `{layer}`: a keras tensor without a keras_history"
                    ))
                })?;
            out.push(hist);
            Ok(())
        }
        other => Err(cfg_err(ErrorKind::Unsupported(format!(
            "layer `{layer}` is called with a non-tensor argument {}",
            show(other)
        )))),
    }
}

fn contains_tensor(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().any(contains_tensor),
        Value::Object(m) => {
            m.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__")
                || m.values().any(contains_tensor)
        }
        _ => false,
    }
}

struct Builder<'h, 'a> {
    h5: &'h H5File<'a>,
    out: Built,
    counts: BTreeMap<String, usize>,
    used: BTreeSet<String>,
    node_names: BTreeSet<String>,
}

impl Builder<'_, '_> {
    /// Walks one model; returns the values of its outputs. `inputs` is `None` for the
    /// top-level model and the outer values feeding a nested model otherwise.
    fn model(
        &mut self,
        model: &Value,
        scope: &[String],
        h5_prefix: &str,
        parent_trainable: bool,
        inputs: Option<&[String]>,
    ) -> Result<Vec<String>, Fail> {
        let (class, config) = class_and_config(model)?;
        let trainable = parent_trainable
            && config
                .get("trainable")
                .and_then(Value::as_bool)
                .unwrap_or(true);
        match class {
            "Sequential" => self.sequential(model, config, scope, h5_prefix, trainable, inputs),
            "Functional" | "Model" => self.functional(config, scope, h5_prefix, trainable, inputs),
            other => Err(cfg_err(ErrorKind::Unsupported(format!(
                "model class `{other}` (only Sequential and Functional models)"
            )))),
        }
    }

    fn input_node(
        &mut self,
        lc: &Map<String, Value>,
        name: &str,
        scope: &[String],
    ) -> Result<String, Fail> {
        let c = Cfg::new(lc, name, "InputLayer");
        let (shape, dtype) = layers::input_layer(&c).map_err(cfg_err)?;
        let node = self.node_name(scope, name)?;
        let value = node.clone();
        self.out.inputs.push(ValueInfo {
            name: value.clone(),
            shape: shape.clone(),
            dtype,
        });
        self.out.nodes.push(Node {
            name: node,
            op: Op::Input { shape, dtype },
            inputs: Vec::new(),
            outputs: vec![value.clone()],
            params: Vec::new(),
            origin: Origin {
                framework: Framework::Keras,
                name: name.to_string(),
                class: "InputLayer".into(),
            },
        });
        Ok(value)
    }

    fn sequential(
        &mut self,
        model: &Value,
        config: &Map<String, Value>,
        scope: &[String],
        h5_prefix: &str,
        trainable: bool,
        inputs: Option<&[String]>,
    ) -> Result<Vec<String>, Fail> {
        let layers = layer_list(config)?;
        let mut rest = layers.as_slice();
        let mut current = match (rest.first().map(class_and_config).transpose()?, inputs) {
            (Some(("InputLayer", lc)), None) => {
                let name = name_of("InputLayer", lc)?;
                rest = &rest[1..];
                self.input_node(lc, name, scope)?
            }
            (Some(("InputLayer", _)), Some(ins)) => {
                rest = &rest[1..];
                single(ins, scope)?
            }
            (_, Some(ins)) => single(ins, scope)?,
            (_, None) => {
                // No InputLayer: Keras builds from `build_input_shape`.
                let shape = config
                    .get("build_input_shape")
                    .or_else(|| model.get("build_config").and_then(|b| b.get("input_shape")))
                    .and_then(shape_of)
                    .ok_or_else(|| {
                        cfg_err(ErrorKind::Missing(
                            "an InputLayer or build_input_shape for the Sequential model".into(),
                        ))
                    })?;
                let name = format!(
                    "{}_input",
                    config
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("sequential")
                );
                let mut lc = Map::new();
                lc.insert(
                    "batch_shape".into(),
                    serde_json::to_value(&shape).unwrap_or(Value::Null),
                );
                self.out.notes.push(format!(
                    "the Sequential model has no InputLayer; input `{name}` takes build_input_shape {shape:?} as float32"
                ));
                self.input_node(&lc, &name, scope)?
            }
        };
        let mut names = Uniquifier::default();
        for layer in rest {
            let (class, lc) = class_and_config(layer)?;
            let lname = name_of(class, lc)?;
            if class == "InputLayer" {
                return Err(malformed(format!(
                    "InputLayer `{lname}` in the middle of a Sequential model"
                )));
            }
            let group = format!("{h5_prefix}layers/{}", names.next(class));
            let outs = self.layer(layer, scope, &group, trainable, vec![current])?;
            current = match outs.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(cfg_err(ErrorKind::Unsupported(format!(
                        "layer `{lname}` returns {} tensors inside a Sequential model",
                        outs.len()
                    ))));
                }
            };
        }
        Ok(vec![current])
    }

    fn functional(
        &mut self,
        config: &Map<String, Value>,
        scope: &[String],
        h5_prefix: &str,
        trainable: bool,
        inputs: Option<&[String]>,
    ) -> Result<Vec<String>, Fail> {
        let layers = layer_list(config)?;
        let input_keys = triples(config.get("input_layers"), "input_layers")?;
        let output_keys = triples(config.get("output_layers"), "output_layers")?;
        let mut tensors: BTreeMap<TensorKey, String> = BTreeMap::new();
        // Saving names follow the order of `layers`, InputLayers included.
        let mut names = Uniquifier::default();
        let mut pending: Vec<(&Value, String)> = Vec::new();
        let mut by_name: BTreeMap<&str, (&str, &Map<String, Value>)> = BTreeMap::new();
        for layer in layers {
            let (class, lc) = class_and_config(layer)?;
            let lname = name_of(class, lc)?;
            if by_name.insert(lname, (class, lc)).is_some() {
                return Err(malformed(format!("two layers are named `{lname}`")));
            }
            let group = format!("{h5_prefix}layers/{}", names.next(class));
            if class != "InputLayer" {
                pending.push((layer, group));
            }
        }
        match inputs {
            None => {
                for key in &input_keys {
                    let (class, lc) = by_name.get(key.0.as_str()).copied().ok_or_else(|| {
                        malformed(format!("input layer `{}` is not in `layers`", key.0))
                    })?;
                    if class != "InputLayer" {
                        return Err(malformed(format!(
                            "input `{}` is a {class}, not an InputLayer",
                            key.0
                        )));
                    }
                    let v = self.input_node(lc, &key.0, scope)?;
                    tensors.insert(key.clone(), v);
                }
            }
            Some(ins) => {
                if ins.len() != input_keys.len() {
                    return Err(malformed(format!(
                        "nested model `{}` takes {} inputs but is called with {}",
                        scope.join("/"),
                        input_keys.len(),
                        ins.len()
                    )));
                }
                for (key, v) in input_keys.iter().zip(ins) {
                    tensors.insert(key.clone(), v.clone());
                }
            }
        }
        // Config order is topological in files Keras writes; passes make any order work.
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for (layer, group) in pending {
                let (class, lc) = class_and_config(layer)?;
                let lname = name_of(class, lc)?;
                let nodes = layer
                    .get("inbound_nodes")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        cfg_err(ErrorKind::Missing(format!(
                            "the inbound_nodes of layer `{lname}`"
                        )))
                    })?;
                let call = match nodes.as_slice() {
                    [call] => call,
                    [] => {
                        self.out
                            .notes
                            .push(format!("layer `{lname}` is never called; skipped"));
                        continue;
                    }
                    many => {
                        return Err(cfg_err(ErrorKind::Unsupported(format!(
                            "layer `{lname}` is called {} times (shared weights)",
                            many.len()
                        ))));
                    }
                };
                let mut keys = Vec::new();
                if let Some(args) = call.get("args") {
                    call_tensors(args, lname, &mut keys)?;
                }
                if let Some(kwargs) = call.get("kwargs").and_then(Value::as_object) {
                    for (k, v) in kwargs {
                        if contains_tensor(v) {
                            return Err(cfg_err(ErrorKind::Unsupported(format!(
                                "layer `{lname}` receives a tensor through keyword argument `{k}`"
                            ))));
                        }
                        if !v.is_null() {
                            self.out.notes.push(format!(
                                "layer `{lname}` is called with {k}={}; the IR does not record call arguments",
                                show(v)
                            ));
                        }
                    }
                }
                let values: Option<Vec<String>> =
                    keys.iter().map(|k| tensors.get(k).cloned()).collect();
                let Some(values) = values else {
                    waiting.push((layer, group));
                    continue;
                };
                let outs = self.layer(layer, scope, &group, trainable, values)?;
                for (t, v) in outs.into_iter().enumerate() {
                    tensors.insert((lname.to_string(), 0, t as u64), v);
                }
            }
            if waiting.len() == before {
                let (layer, _) = waiting[0];
                let name = layer
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                return Err(malformed(format!(
                    "layer `{name}` reads a tensor that no layer produces (or the graph has a cycle)"
                )));
            }
            pending = waiting;
        }
        output_keys
            .iter()
            .map(|k| {
                tensors.get(k).cloned().ok_or_else(|| {
                    malformed(format!(
                        "output [{}, {}, {}] is not produced by any layer",
                        k.0, k.1, k.2
                    ))
                })
            })
            .collect()
    }

    /// A unique node name for layer `name` in `scope`.
    fn node_name(&mut self, scope: &[String], name: &str) -> Result<String, Fail> {
        let shared = self.counts.get(name).copied().unwrap_or(0) > 1;
        let node = if scope.is_empty() || !shared {
            name.to_string()
        } else {
            format!("{}/{name}", scope.join("/"))
        };
        if !self.node_names.insert(node.clone()) {
            return Err(malformed(format!("two layers would both be node `{node}`")));
        }
        Ok(node)
    }

    /// Converts one layer called on `inputs`; returns its output values.
    fn layer(
        &mut self,
        layer: &Value,
        scope: &[String],
        group: &str,
        parent_trainable: bool,
        inputs: Vec<String>,
    ) -> Result<Vec<String>, Fail> {
        let (class, lc) = class_and_config(layer)?;
        let lname = name_of(class, lc)?;
        self.check_group_name(group, lname)?;
        if is_model(class) {
            if scope.len() >= MAX_NESTING {
                return Err(cfg_err(ErrorKind::TooLarge(format!(
                    "models nested deeper than {MAX_NESTING}"
                ))));
            }
            let mut inner = scope.to_vec();
            inner.push(lname.to_string());
            return self.model(
                layer,
                &inner,
                &format!("{group}/"),
                parent_trainable,
                Some(&inputs),
            );
        }
        let trainable =
            parent_trainable && lc.get("trainable").and_then(Value::as_bool).unwrap_or(true);
        let c = Cfg::new(lc, lname, class);
        let input_shape = if inputs.len() == 1 {
            layer
                .get("build_config")
                .and_then(|b| b.get("input_shape"))
                .and_then(shape_of)
        } else {
            None
        };
        let mut conv =
            layers::convert(&c, input_shape.as_deref(), &mut self.out.notes).map_err(cfg_err)?;
        // A BatchNormalization inside a frozen model runs in inference mode too.
        if let Op::BatchNorm { trainable: bn, .. } = &mut conv.op {
            *bn = *bn && trainable;
        }
        if inputs.len() < conv.arity.0 || inputs.len() > conv.arity.1 {
            return Err(malformed(format!(
                "layer `{lname}` ({class}) is called on {} tensors",
                inputs.len()
            )));
        }
        let node = self.node_name(scope, lname)?;
        let mut params = self.params(&node, group, &conv.groups, trainable, lname, class)?;
        if class == "Normalization" && conv.groups.is_empty() {
            for (key, role) in [("mean", ParamRole::Mean), ("variance", ParamRole::Variance)] {
                let tensor =
                    layers::normalization_stat(&c, key, input_shape.as_deref()).map_err(cfg_err)?;
                let layout = if tensor.shape().len() == 1 {
                    ParamLayout::Vector
                } else {
                    ParamLayout::AsIs
                };
                params.push(Param {
                    name: format!("{node}/{key}"),
                    role,
                    layout,
                    tensor,
                    trainable: false,
                });
            }
            self.out.notes.push(format!(
                "layer `{lname}` (Normalization): mean and variance come from config.json (float32)"
            ));
        }
        let origin = Origin {
            framework: Framework::Keras,
            name: lname.to_string(),
            class: class.to_string(),
        };
        let mut node_inputs = inputs;
        if let Some(perm) = conv.transpose_first {
            let pname = format!("{node}/to_channels_last");
            if !self.node_names.insert(pname.clone()) {
                return Err(malformed(format!(
                    "two layers would both be node `{pname}`"
                )));
            }
            let value = format!("{pname}:0:0");
            self.out.nodes.push(Node {
                name: pname,
                op: Op::Permute { perm },
                inputs: node_inputs,
                outputs: vec![value.clone()],
                params: Vec::new(),
                origin: origin.clone(),
            });
            node_inputs = vec![value];
        }
        let outputs: Vec<String> = (0..conv.outputs).map(|t| format!("{node}:0:{t}")).collect();
        if !params.is_empty() {
            let saving = group.rsplit('/').next().unwrap_or(group);
            if saving != lname {
                self.out.notes.push(format!(
                    "weights of layer `{node}` are stored under the saving name `{group}`"
                ));
            }
        }
        self.out.nodes.push(Node {
            name: node,
            op: conv.op,
            inputs: node_inputs,
            outputs: outputs.clone(),
            params,
            origin,
        });
        Ok(outputs)
    }

    /// Checks the `name` attribute Keras writes on `<group>/vars` against the layer name.
    fn check_group_name(&self, group: &str, lname: &str) -> Result<(), Fail> {
        let vars = format!("{group}/vars");
        if let Some(AttrValue::Str(stored)) = self.h5.groups.get(&vars).and_then(|a| a.get("name"))
            && stored != lname
        {
            return Err(w_err(ErrorKind::Malformed(format!(
                "group `{vars}` belongs to layer `{stored}`, but the layer order in config.json puts layer `{lname}` there"
            ))));
        }
        Ok(())
    }

    fn params(
        &mut self,
        node: &str,
        group: &str,
        groups: &[VarGroup],
        trainable: bool,
        lname: &str,
        class: &str,
    ) -> Result<Vec<Param>, Fail> {
        let mut params = Vec::new();
        for g in groups {
            let vars = if g.sub.is_empty() {
                format!("{group}/vars")
            } else {
                format!("{group}/{}/vars", g.sub)
            };
            for (i, spec) in g.vars.iter().enumerate() {
                let path = format!("{vars}/{i}");
                let pname = format!("{node}/{}{}", g.prefix, spec.name);
                let ds = self.h5.datasets.get(&path).ok_or_else(|| {
                    w_err(ErrorKind::Missing(format!(
                        "weight `{pname}` of layer `{lname}` ({class}): no dataset `{path}`"
                    )))
                })?;
                let found = ds.shape.clone();
                let fits = found.len() == spec.shape.len()
                    && spec
                        .shape
                        .iter()
                        .zip(&found)
                        .all(|(e, f)| e.is_none_or(|e| e == *f));
                if !fits {
                    let expected = spec
                        .shape
                        .iter()
                        .enumerate()
                        .map(|(k, e)| e.or_else(|| found.get(k).copied()).unwrap_or(0))
                        .collect();
                    return Err(w_err(ErrorKind::ShapeMismatch {
                        what: format!("`{pname}` of layer `{lname}` ({class}, dataset `{path}`)"),
                        expected,
                        found,
                    }));
                }
                let tensor = ds.tensor().map_err(|k| {
                    w_err(match k {
                        ErrorKind::Unsupported(m) => {
                            ErrorKind::Unsupported(format!("{m} in `{path}`"))
                        }
                        other => other,
                    })
                })?;
                self.used.insert(path);
                let param_trainable = spec.trainable && trainable;
                if let Some(r) = &spec.regularizer {
                    let note = if param_trainable {
                        self.out.regularizers.insert(pname.clone(), r.value);
                        format!("{} adds a penalty to the loss", r.describe)
                    } else {
                        format!(
                            "{}: `{pname}` is not trainable, so Keras adds no penalty",
                            r.describe
                        )
                    };
                    // One note per layer argument (Bidirectional: both directions).
                    if !self.out.notes.contains(&note) {
                        self.out.notes.push(note);
                    }
                }
                if let Some(i) = &spec.initializer {
                    self.out.initializers.insert(pname.clone(), i.clone());
                }
                // Keras applies constraints to `trainable_variables` only.
                if let Some(k) = &spec.constraint
                    && param_trainable
                {
                    self.out.constraints.insert(pname.clone(), k.clone());
                }
                params.push(Param {
                    name: pname,
                    role: spec.role,
                    layout: spec.layout.clone(),
                    tensor,
                    trainable: param_trainable,
                });
            }
            // Keras stores exactly the layer's variables: anything more means the config and
            // the weights disagree.
            let prefix = format!("{vars}/");
            let extra: Vec<&String> = self
                .h5
                .datasets
                .keys()
                .filter(|p| {
                    p.strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .filter(|p| !self.used.contains(*p))
                .collect();
            if let Some(first) = extra.first() {
                return Err(w_err(ErrorKind::Malformed(format!(
                    "layer `{lname}` ({class}) stores {} variable(s) in `{vars}` but its config implies {} (first extra: `{first}`)",
                    g.vars.len() + extra.len(),
                    g.vars.len()
                ))));
            }
        }
        if groups.is_empty() {
            let prefix = format!("{group}/vars/");
            if let Some(extra) = self.h5.datasets.keys().find(|p| p.starts_with(&prefix)) {
                return Err(w_err(ErrorKind::Malformed(format!(
                    "layer `{lname}` ({class}) has no variables in parallax's reading of its config, but `{extra}` is stored"
                ))));
            }
        }
        Ok(params)
    }
}

fn single(ins: &[String], scope: &[String]) -> Result<String, Fail> {
    match ins {
        [one] => Ok(one.clone()),
        _ => Err(malformed(format!(
            "nested Sequential model `{}` is called with {} tensors",
            scope.join("/"),
            ins.len()
        ))),
    }
}
