//! Keras 3 and PyTorch 2 optimizers, gradient transforms and learning-rate schedules, each
//! in its framework's own arithmetic, so that a training comparison's remaining difference is
//! the model's and not the optimizer's.
//!
//! - [`keras`]: Keras 3 optimizers with the base-optimizer pipeline (loss-scale unscaling,
//!   gradient accumulation, clipping, decoupled weight decay with the scheduled learning rate
//!   and `exclude_from_weight_decay`, EMA) and [`keras::Schedule`]s.
//! - [`torch`]: `torch.optim` single-tensor updates, parameter groups
//!   ([`torch::ParamGroups`]), `clip_grad_norm_`, `clip_grad_value_` and the
//!   [`torch::lr_scheduler`] schedulers.
//! - [`equiv`]: exact cross-framework counterparts, or the catalogue reason there is none.
//! - [`driver`]: one training step per framework (what the training loop does around the
//!   optimizer on every batch), built from the IR's training configuration.
//! - [`constraint`]: Keras weight constraints, applied after every Keras optimizer update.
//! - [`replay`]: run a golden trajectory through an emulator and measure the error.
//!
//! Every emulator is generic over [`Real`]: `f32` follows the framework's float32 operation
//! order, `f64` is the reference mode. Optimizers are built over [`Variable`]s (name and
//! shape). This crate does no IO and does not know the engine.

mod config;
pub mod constraint;
pub mod driver;
pub mod equiv;
pub mod keras;
mod real;
pub mod replay;
pub mod torch;
mod variable;

pub use config::ConfigError;
pub use real::{Precision, Real};
pub use variable::Variable;
