//! The canonical, framework-neutral model description.
//!
//! A [`Model`] is a layer-level graph of [`Node`]s. Each node has an [`Op`] with typed
//! attributes, named [`Param`]s in their framework-native names and layouts, and an
//! [`Origin`]. Every convention on which Keras and PyTorch disagree is a value in the IR
//! ([`conventions`]), never an assumption, so the engine can execute either framework's
//! semantics and the diagnosis can compare them.
//!
//! This crate does no IO and knows no file format.

pub mod conventions;
pub mod graph;
pub mod init;
pub mod layout;
pub mod loss;
pub mod op;
pub mod tensor;
pub mod training;

pub use conventions::{
    Activation, DataLayout, Framework, GateOrder, GruReset, HardSigmoid, MomentumForm, Padding,
    RnnBias, VarianceEstimate, WindowAxis, WindowError,
};
pub use graph::{Model, Node, Origin, Param, ParamRole, ValueInfo};
pub use init::{Constraint, FanMode, InitKind, Initializer, ScalingDist};
pub use layout::{ParamLayout, Step, Transform};
pub use loss::{
    KerasLoss, KerasReduction, LossError, LossFamily, TorchLoss, TorchReduction, TypedLoss,
};
pub use op::{
    BidiMerge, BinaryOp, Interpolation, MergeOp, NearestRounding, Op, PadMode, PoolKind,
    ReduceKind, ResizeAxis, ResizeCoordinate, ResizeMode, RnnCell, RnnDirection, UnaryOp,
};
pub use tensor::{DType, Tensor};
pub use training::{
    GradClip, KerasBackend, LossSpec, OptimizerSpec, ParamGroup, SchedulerSpec, StepInterval,
    TrainingConfig, WeightRegularizer,
};

/// A structural problem in a model graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IrError {
    #[error("two nodes are named `{0}`")]
    DuplicateNode(String),
    #[error("two parameters are named `{0}`")]
    DuplicateParam(String),
    #[error("node `{node}` reads `{value}`, which nothing defines before it")]
    UndefinedValue { node: String, value: String },
}
