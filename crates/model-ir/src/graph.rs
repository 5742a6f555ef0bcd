//! The layer graph: nodes, named parameters, values flowing between them, and provenance.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conventions::Framework;
use crate::init::Initializer;
use crate::layout::ParamLayout;
use crate::op::Op;
use crate::tensor::{DType, Tensor};
use crate::training::TrainingConfig;

/// A whole model as one framework describes it.
#[derive(Debug, Clone)]
pub struct Model {
    /// Which framework's file this came from.
    pub framework: Framework,
    /// The model's own name (Keras model name, ONNX graph name).
    pub name: String,
    /// Graph inputs, in call order.
    pub inputs: Vec<ValueInfo>,
    /// Names of the values the model returns, in order.
    pub outputs: Vec<String>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Optimizer, loss and fit/train settings, when the bundle provides them.
    pub training: Option<TrainingConfig>,
    /// What the importer did or could not do: renames, folds, dropped information.
    pub notes: Vec<String>,
    /// Producer and version as recorded in the file (`keras 3.12.0`, `pytorch 2.9.1`).
    pub producer: Option<String>,
    /// The initializer each parameter was drawn from, by parameter name, where the file
    /// records it (Keras layer configs' `*_initializer`); empty for torch, which records none.
    pub initializers: BTreeMap<String, Initializer>,
}

/// A named value in the graph with its known shape (`None` = dynamic dimension).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueInfo {
    pub name: String,
    pub shape: Vec<Option<usize>>,
    pub dtype: DType,
}

/// One layer.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique name within the model (the Keras layer name, or a name made from the torch module path).
    pub name: String,
    pub op: Op,
    /// Names of the values consumed, in operand order.
    pub inputs: Vec<String>,
    /// Names of the values produced.
    pub outputs: Vec<String>,
    pub params: Vec<Param>,
    pub origin: Origin,
}

/// Where a node came from in the framework's own terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    pub framework: Framework,
    /// The name the framework used (Keras layer name; ONNX node name or module path).
    pub name: String,
    /// Keras class name (`Conv2D`) or the ONNX op types that were lifted (`Gemm`, `MatMul+Add`).
    pub class: String,
}

/// A stored tensor belonging to a node, under its framework-native name and layout.
#[derive(Debug, Clone)]
pub struct Param {
    /// Framework-native name: `dense/kernel`, `fc1.weight`, `bn.running_var`.
    pub name: String,
    pub role: ParamRole,
    /// Meaning of each axis, which also says how to convert to the other framework.
    pub layout: ParamLayout,
    pub tensor: Tensor,
    /// Whether the optimizer updates it.
    pub trainable: bool,
}

/// What a parameter is for, independent of the framework's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamRole {
    Kernel,
    Bias,
    /// Depthwise part of a SeparableConv.
    DepthwiseKernel,
    /// Pointwise part of a SeparableConv.
    PointwiseKernel,
    Gamma,
    Beta,
    MovingMean,
    MovingVariance,
    /// PyTorch BatchNorm `num_batches_tracked`.
    NumBatchesTracked,
    Embeddings,
    /// RNN input-to-hidden kernel (Keras `kernel`, torch `weight_ih_l0`).
    InputKernel,
    /// RNN hidden-to-hidden kernel (Keras `recurrent_kernel`, torch `weight_hh_l0`).
    RecurrentKernel,
    /// RNN bias on the input projection (torch `bias_ih_l0`, Keras `bias` or its row 0).
    InputBias,
    /// RNN bias on the recurrent projection (torch `bias_hh_l0`, Keras GRU bias row 1).
    RecurrentBias,
    /// Keras Normalization statistics.
    Mean,
    Variance,
    /// A constant operand (ConstantBinary).
    Constant,
    /// Reverse direction of a bidirectional RNN: input kernel (Keras `backward_<layer>/.../kernel`,
    /// torch `weight_ih_l0_reverse`). The forward direction uses [`ParamRole::InputKernel`].
    ReverseInputKernel,
    /// Reverse direction of a bidirectional RNN: recurrent kernel (torch `weight_hh_l0_reverse`).
    ReverseRecurrentKernel,
    /// Reverse direction of a bidirectional RNN: input bias (torch `bias_ih_l0_reverse`, Keras
    /// backward-layer `bias`, also the `(2, 3H)` GRU bias of the backward layer).
    ReverseInputBias,
    /// Reverse direction of a bidirectional RNN: recurrent bias (torch `bias_hh_l0_reverse`).
    ReverseRecurrentBias,
    /// ONNX LSTM peephole weights `P` `(directions, 3H)`, blocks in ONNX order `i, o, f`.
    Peephole,
    /// ONNX RNN `initial_h` `(directions, batch, H)` given as a constant.
    InitialHidden,
    /// ONNX LSTM `initial_c` `(directions, batch, H)` given as a constant.
    InitialCell,
    /// ONNX RNN `sequence_lens` `(batch)` given as a constant (integers, not trained).
    SequenceLengths,
}

impl ParamRole {
    pub fn name(self) -> &'static str {
        match self {
            ParamRole::Kernel => "kernel",
            ParamRole::Bias => "bias",
            ParamRole::DepthwiseKernel => "depthwise_kernel",
            ParamRole::PointwiseKernel => "pointwise_kernel",
            ParamRole::Gamma => "gamma",
            ParamRole::Beta => "beta",
            ParamRole::MovingMean => "moving_mean",
            ParamRole::MovingVariance => "moving_variance",
            ParamRole::NumBatchesTracked => "num_batches_tracked",
            ParamRole::Embeddings => "embeddings",
            ParamRole::InputKernel => "input_kernel",
            ParamRole::RecurrentKernel => "recurrent_kernel",
            ParamRole::InputBias => "input_bias",
            ParamRole::RecurrentBias => "recurrent_bias",
            ParamRole::Mean => "mean",
            ParamRole::Variance => "variance",
            ParamRole::Constant => "constant",
            ParamRole::ReverseInputKernel => "reverse_input_kernel",
            ParamRole::ReverseRecurrentKernel => "reverse_recurrent_kernel",
            ParamRole::ReverseInputBias => "reverse_input_bias",
            ParamRole::ReverseRecurrentBias => "reverse_recurrent_bias",
            ParamRole::Peephole => "peephole",
            ParamRole::InitialHidden => "initial_h",
            ParamRole::InitialCell => "initial_c",
            ParamRole::SequenceLengths => "sequence_lens",
        }
    }
}

impl Model {
    /// An empty model of a framework.
    pub fn new(framework: Framework, name: impl Into<String>) -> Model {
        Model {
            framework,
            name: name.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            nodes: Vec::new(),
            training: None,
            notes: Vec::new(),
            producer: None,
            initializers: BTreeMap::new(),
        }
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every parameter with the node that owns it.
    pub fn params(&self) -> impl Iterator<Item = (&Node, &Param)> {
        self.nodes
            .iter()
            .flat_map(|n| n.params.iter().map(move |p| (n, p)))
    }

    /// The parameter with this framework-native name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params().map(|(_, p)| p).find(|p| p.name == name)
    }

    /// Total number of trainable scalars.
    pub fn trainable_count(&self) -> usize {
        self.params()
            .filter(|(_, p)| p.trainable)
            .map(|(_, p)| p.tensor.len())
            .sum()
    }

    /// Checks structural invariants: unique node names, every input defined before use,
    /// outputs defined, unique parameter names. Returns the first violation.
    pub fn validate(&self) -> Result<(), crate::IrError> {
        use std::collections::BTreeSet;
        let mut defined: BTreeSet<&str> = self.inputs.iter().map(|v| v.name.as_str()).collect();
        let mut names = BTreeSet::new();
        let mut params = BTreeSet::new();
        for node in &self.nodes {
            if !names.insert(node.name.as_str()) {
                return Err(crate::IrError::DuplicateNode(node.name.clone()));
            }
            for input in &node.inputs {
                if !defined.contains(input.as_str()) {
                    return Err(crate::IrError::UndefinedValue {
                        node: node.name.clone(),
                        value: input.clone(),
                    });
                }
            }
            for out in &node.outputs {
                defined.insert(out.as_str());
            }
            for p in &node.params {
                if !params.insert(p.name.as_str()) {
                    return Err(crate::IrError::DuplicateParam(p.name.clone()));
                }
            }
        }
        for out in &self.outputs {
            if !defined.contains(out.as_str()) {
                return Err(crate::IrError::UndefinedValue {
                    node: "<model outputs>".into(),
                    value: out.clone(),
                });
            }
        }
        Ok(())
    }
}
