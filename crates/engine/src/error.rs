//! The engine's error type: one line, naming the node, parameter or input at fault.

/// Why a model cannot be compiled or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The graph itself is malformed (duplicate names, undefined values).
    #[error("invalid graph: {0}")]
    Graph(#[from] model_ir::IrError),
    /// A node uses an op, attribute value or parameter arrangement the engine does not execute.
    #[error("node `{node}` ({kind}): unsupported: {what}")]
    Unsupported {
        node: String,
        kind: &'static str,
        what: String,
    },
    /// A node's attributes or parameters contradict each other.
    #[error("node `{node}` ({kind}): {message}")]
    Invalid {
        node: String,
        kind: &'static str,
        message: String,
    },
    /// A node cannot run on the shapes it receives at run time.
    #[error("node `{node}` ({kind}): {message}")]
    Shape {
        node: String,
        kind: &'static str,
        message: String,
    },
    /// The inputs passed to `forward` do not match the program's inputs.
    #[error("input `{input}`: {message}")]
    Input { input: String, message: String },
    /// A parameter in the store is missing or has a different shape than the model's.
    #[error("parameter `{name}`: {message}")]
    Param { name: String, message: String },
    /// A dropout mask does not fit its node's input.
    #[error("dropout mask for `{node}`: {message}")]
    Mask { node: String, message: String },
    /// The output gradients passed to `backward` do not fit the outputs.
    #[error("backward: {0}")]
    Backward(String),
    /// A loss cannot be computed on the given prediction and target.
    #[error("loss {loss}: {message}")]
    Loss { loss: &'static str, message: String },
}
