//! What the exact-or-refused suites (`onnx_node.rs`, `keras_sweep.rs`) share.

/// The verdict on one case.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every output (and gradient) within the suite's tolerance.
    Pass,
    /// Loading or running failed with this one-line reason.
    Refused(String),
    /// An answer that differs from the framework's, without a word: the suite fails.
    Wrong(String),
}

/// An error message on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}
