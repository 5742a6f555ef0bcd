//! Reference forward and backward passes over the canonical IR, with each framework's numerics.
//!
//! The engine executes a [`model_ir::Model`] exactly as the framework it came from would: every
//! convention the IR states (layouts, padding rules, BatchNorm momentum form and variance
//! estimate, gate orders, activation variants, ...) is honoured, never assumed. It does no IO.
//!
//! The flow:
//! 1. [`Program::new`] validates a model once (every op supported, parameters present with the
//!    shapes their attributes need) and resolves each node to a kernel.
//! 2. [`ParamStore::from_model`] converts the stored parameters to the compute type (`f32` or
//!    `f64`, see [`Float`]) under their framework-native names.
//! 3. [`forward`] runs the graph in [`Mode::Inference`] or [`Mode::Training`] and returns the
//!    outputs, a [`Tape`] of every intermediate value, and the BatchNorm running-statistic
//!    updates ([`StatUpdates`]), which are returned rather than applied.
//! 4. [`backward`] walks the tape in reverse (one exhaustive `match` over the kernels in
//!    `backward.rs`) and returns a gradient for every trainable parameter under its native name
//!    and for every graph input ([`Grads`]).
//! 5. [`loss`] holds each framework's losses with their exact clipping and reductions, and
//!    [`train`] chains forward, loss, backward and a caller-supplied optimizer step.
//!
//! Each op lives in its own module under `ops/` with the forward formula, the vector-Jacobian
//! product and the framework source it follows in its doc comment.

mod backward;
mod error;
mod float;
mod forward;
pub mod loss;
mod mode;
mod ops;
mod params;
mod program;
mod train;

pub use backward::{OutputGrad, backward};
pub use error::EngineError;
pub use float::Float;
pub use forward::{Forward, Tape, forward};
pub use mode::{DropoutMasks, Mode};
pub use ops::resize::{Taps as ResizeTaps, axis_taps as resize_taps};
pub use params::{Grads, IndexedSlices, ParamStore, StatUpdates};
pub use program::Program;
pub use train::{Batch, StepRecord, TrainConfig, TrainRecord, train};
