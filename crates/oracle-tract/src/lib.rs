//! tract-onnx as an independent ONNX forward oracle.
//!
//! [`run`] loads an ONNX model (a file, or bytes already in memory), fixes every graph input's
//! dtype and shape from the tensors it is given, lets tract analyse and optimize the graph for
//! exactly those shapes, runs it once and returns the outputs by graph output name. [`compile`]
//! does the expensive part once for benchmarks that run the same shapes many times.
//!
//! The engine's parity tests compare against this runtime, so nothing here knows the engine,
//! safetensors or the IR graph: it speaks [`model_ir::Tensor`] on both sides and nothing else.
//!
//! tract 0.23 runs inference graphs only. Its `BatchNormalization` ignores `training_mode`: the
//! torch training export (three outputs) fails its analysis with "Wrong number of outputs", and a
//! single-output training-mode node would silently use the running statistics. So such a node
//! (the bundles' `model.onnx`) is refused up front with [`ErrorKind::TrainingBatchNorm`]; use the
//! eval-mode twin (`model.eval.onnx`) instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use model_ir::{DType, Tensor};
use tract_onnx::pb;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModelExt, IntoRunnable, IntoTValue, IntoTensor,
    TVec, Tensor as TractTensor, TypedSimplePlan,
};

/// Where the ONNX model comes from.
#[derive(Debug, Clone, Copy)]
pub enum ModelSource<'a> {
    /// An `.onnx` file; it is read into memory whole (external data files are not supported).
    File(&'a Path),
    /// The bytes of an ONNX file; `name` stands for the file in errors.
    Bytes { name: &'a str, bytes: &'a [u8] },
}

impl<'a> From<&'a Path> for ModelSource<'a> {
    fn from(path: &'a Path) -> Self {
        ModelSource::File(path)
    }
}

impl<'a> From<&'a PathBuf> for ModelSource<'a> {
    fn from(path: &'a PathBuf) -> Self {
        ModelSource::File(path)
    }
}

/// The names of a graph's real inputs (initializers listed as inputs excluded) and of its
/// outputs, in graph order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphIo {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// A failure of the oracle, naming the model file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {kind}")]
pub struct OracleError {
    /// The model's path, or the name given with [`ModelSource::Bytes`].
    pub file: String,
    pub kind: ErrorKind,
}

/// What went wrong. Every message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("not an ONNX model: {0}")]
    Decode(String),
    #[error(
        "node `{node}` is a training-mode BatchNormalization (training_mode=1), which tract does not run; use the eval-mode export"
    )]
    TrainingBatchNorm { node: String },
    #[error("no tensor given for graph input `{name}`")]
    MissingInput { name: String },
    #[error("tensor `{name}` is not a graph input (graph inputs: {})", .inputs.join(", "))]
    UnknownInput { name: String, inputs: Vec<String> },
    #[error("input `{name}` is {dtype}, which tract cannot hold")]
    UnsupportedInputDtype { name: String, dtype: DType },
    #[error("output `{name}` is {dtype} in tract, which model-ir cannot hold")]
    UnsupportedOutputDtype { name: String, dtype: String },
    #[error("input `{name}` is {actual}, the plan was compiled for {compiled}")]
    InputChanged {
        name: String,
        actual: String,
        compiled: String,
    },
    #[error("tract cannot type the graph for the given inputs: {0}")]
    Analyse(String),
    #[error("tract cannot optimize the graph: {0}")]
    Optimize(String),
    #[error("tract failed running the graph: {0}")]
    Run(String),
}

/// A graph analysed and optimized by tract for one set of input dtypes and shapes.
pub struct Compiled {
    /// The file named in errors.
    pub file: String,
    /// Graph input and output names, in the order tract takes and returns them.
    pub io: GraphIo,
    /// dtype and shape of each input, in `io.inputs` order, as fixed at compile time.
    pub input_facts: Vec<(DType, Vec<usize>)>,
    plan: Arc<TypedSimplePlan>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("file", &self.file)
            .field("io", &self.io)
            .field("input_facts", &self.input_facts)
            .field("nodes", &self.plan.model().nodes().len())
            .finish()
    }
}

/// Loads, optimizes and runs `model` on `inputs` (keyed by graph input name), returning the
/// outputs keyed by graph output name.
pub fn run<'a>(
    model: impl Into<ModelSource<'a>>,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, OracleError> {
    compile(model, inputs)?.run(inputs)
}

/// The graph's input and output names, without building the model.
pub fn graph_io<'a>(model: impl Into<ModelSource<'a>>) -> Result<GraphIo, OracleError> {
    let (_, proto) = decode(model.into())?;
    Ok(io_of(&proto))
}

/// Loads `model` and optimizes it for the dtypes and shapes of `inputs` (keyed by graph input
/// name; only their dtype and shape are read).
pub fn compile<'a>(
    model: impl Into<ModelSource<'a>>,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Compiled, OracleError> {
    let (file, proto) = decode(model.into())?;
    let err = |kind| OracleError {
        file: file.clone(),
        kind,
    };
    if let Some(node) = training_batch_norm(&proto) {
        return Err(err(ErrorKind::TrainingBatchNorm { node }));
    }
    let io = io_of(&proto);
    let input_facts = check_inputs(&io, inputs).map_err(err)?;

    // The given tensors fix every shape. `value_info` may still carry the exporter's symbolic
    // dims (dynamo writes `batch`), which cannot unify with a concrete input shape: ignore it.
    let mut model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_proto_model(&proto)
        .map_err(|e| err(ErrorKind::Analyse(one_line(&e))))?;
    // tract lists sources in graph order, skipping initializers, exactly as `io.inputs`.
    let sources: Vec<String> = model
        .input_outlets()
        .map_err(|e| err(ErrorKind::Analyse(one_line(&e))))?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    assert_eq!(
        sources, io.inputs,
        "tract's sources differ from the graph inputs"
    );
    for (ix, (name, (dtype, shape))) in io.inputs.iter().zip(&input_facts).enumerate() {
        let dt = datum_type(*dtype).ok_or_else(|| {
            err(ErrorKind::UnsupportedInputDtype {
                name: name.clone(),
                dtype: *dtype,
            })
        })?;
        let fact = InferenceFact::dt_shape(dt, shape.as_slice());
        model
            .set_input_fact(ix, fact)
            .map_err(|e| err(ErrorKind::Analyse(one_line(&e))))?;
    }
    let typed = model
        .into_typed()
        .map_err(|e| err(ErrorKind::Analyse(one_line(&e))))?;
    let plan = typed
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| err(ErrorKind::Optimize(one_line(&e))))?;
    Ok(Compiled {
        file,
        io,
        input_facts,
        plan,
    })
}

impl Compiled {
    /// Runs the plan on `inputs` (keyed by graph input name), which must have the dtypes and
    /// shapes the plan was compiled for.
    pub fn run(
        &self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, OracleError> {
        let err = |kind| OracleError {
            file: self.file.clone(),
            kind,
        };
        let facts = check_inputs(&self.io, inputs).map_err(err)?;
        let mut values = TVec::new();
        for ((name, fact), compiled) in self.io.inputs.iter().zip(facts).zip(&self.input_facts) {
            if fact != *compiled {
                return Err(err(ErrorKind::InputChanged {
                    name: name.clone(),
                    actual: format!("{} {:?}", fact.0, fact.1),
                    compiled: format!("{} {:?}", compiled.0, compiled.1),
                }));
            }
            let tensor = to_tract(&inputs[name]).ok_or_else(|| {
                err(ErrorKind::UnsupportedInputDtype {
                    name: name.clone(),
                    dtype: fact.0,
                })
            })?;
            values.push(tensor.into_tvalue());
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|e| err(ErrorKind::Run(one_line(&e))))?;
        let mut out = BTreeMap::new();
        for (name, value) in self.io.outputs.iter().zip(outputs) {
            let tensor = from_tract(value.into_tensor()).map_err(|dtype| {
                err(ErrorKind::UnsupportedOutputDtype {
                    name: name.clone(),
                    dtype,
                })
            })?;
            out.insert(name.clone(), tensor);
        }
        Ok(out)
    }
}

fn decode(source: ModelSource<'_>) -> Result<(String, pb::ModelProto), OracleError> {
    let owned;
    let (file, bytes) = match source {
        ModelSource::File(path) => {
            let file = path.display().to_string();
            owned = std::fs::read(path).map_err(|e| OracleError {
                file: file.clone(),
                kind: ErrorKind::Io(e.to_string()),
            })?;
            (file, owned.as_slice())
        }
        ModelSource::Bytes { name, bytes } => (name.to_owned(), bytes),
    };
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &*bytes)
        .map_err(|e| OracleError {
            file: file.clone(),
            kind: ErrorKind::Decode(one_line(&e)),
        })?;
    if proto.graph.is_none() {
        return Err(OracleError {
            file,
            kind: ErrorKind::Decode("the model has no graph".into()),
        });
    }
    Ok((file, proto))
}

fn io_of(proto: &pb::ModelProto) -> GraphIo {
    let Some(graph) = &proto.graph else {
        return GraphIo::default();
    };
    let initializers: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    GraphIo {
        inputs: graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .map(|i| i.name.clone())
            .collect(),
        outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
    }
}

/// The first `BatchNormalization` node with `training_mode=1`, by name (or first output).
fn training_batch_norm(proto: &pb::ModelProto) -> Option<String> {
    let graph = proto.graph.as_ref()?;
    graph
        .node
        .iter()
        .find(|n| {
            n.op_type == "BatchNormalization"
                && n.attribute
                    .iter()
                    .any(|a| a.name == "training_mode" && a.i != 0)
        })
        .map(|n| {
            if n.name.is_empty() {
                n.output.first().cloned().unwrap_or_default()
            } else {
                n.name.clone()
            }
        })
}

/// The dtype and shape of each graph input, in graph order; every input given, nothing else.
fn check_inputs(
    io: &GraphIo,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Vec<(DType, Vec<usize>)>, ErrorKind> {
    if let Some(name) = inputs.keys().find(|k| !io.inputs.contains(k)) {
        return Err(ErrorKind::UnknownInput {
            name: name.clone(),
            inputs: io.inputs.clone(),
        });
    }
    io.inputs
        .iter()
        .map(|name| match inputs.get(name) {
            Some(t) => Ok((t.dtype(), t.shape().to_vec())),
            None => Err(ErrorKind::MissingInput { name: name.clone() }),
        })
        .collect()
}

fn datum_type(dtype: DType) -> Option<DatumType> {
    Some(match dtype {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::F16 => DatumType::F16,
        DType::I64 => DatumType::I64,
        DType::I32 => DatumType::I32,
        DType::U8 => DatumType::U8,
        DType::Bool => DatumType::Bool,
        DType::BF16 => return None,
    })
}

/// tract and model-ir share ndarray 0.17 and half 2, so this is one copy per tensor.
fn to_tract(t: &Tensor) -> Option<TractTensor> {
    Some(match t {
        Tensor::F32(a) => a.clone().into(),
        Tensor::F64(a) => a.clone().into(),
        Tensor::F16(a) => a.clone().into(),
        Tensor::I64(a) => a.clone().into(),
        Tensor::I32(a) => a.clone().into(),
        Tensor::U8(a) => a.clone().into(),
        Tensor::Bool(a) => a.clone().into(),
        Tensor::BF16(_) => return None,
    })
}

/// Converts an output; the error is tract's name of a dtype model-ir cannot hold.
fn from_tract(t: TractTensor) -> Result<Tensor, String> {
    let dt = t.datum_type();
    let bad = |_| format!("{dt:?}");
    Ok(match dt {
        DatumType::F32 => Tensor::F32(t.into_plain_array().map_err(bad)?),
        DatumType::F64 => Tensor::F64(t.into_plain_array().map_err(bad)?),
        DatumType::F16 => Tensor::F16(t.into_plain_array().map_err(bad)?),
        DatumType::I64 => Tensor::I64(t.into_plain_array().map_err(bad)?),
        DatumType::I32 => Tensor::I32(t.into_plain_array().map_err(bad)?),
        DatumType::U8 => Tensor::U8(t.into_plain_array().map_err(bad)?),
        DatumType::Bool => Tensor::Bool(t.into_plain_array().map_err(bad)?),
        _ => return Err(format!("{dt:?}")),
    })
}

/// tract's error chain on one line, shortened: some messages embed a whole node's protobuf.
fn one_line(e: &impl fmt::Display) -> String {
    const MAX: usize = 400;
    let text = format!("{e:#}");
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str(" …");
    }
    line
}
