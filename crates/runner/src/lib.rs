//! The library half of `cargo xtask run`: load a model, feed it the tensors of an inputs file,
//! run the engine, return the named output tensors. No argument parsing, no printing, no file
//! writing, no exit codes; dependencies on `model-ir`, `model-import` and `engine` only. The
//! command (`xtask`) and the validation tests (this crate's `tests/`) call the same functions,
//! so the tests run exactly what the command runs.

use std::collections::BTreeMap;
use std::path::Path;

use engine::loss::{self, Regularizer};
use engine::{Float, Mode, OutputGrad, ParamStore, Program, TrainConfig, backward, forward};
use model_import::{Loaded, TensorFile};
use model_ir::{Model, Tensor};
use ndarray::ArrayD;

/// What to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Training-mode forward (BatchNorm batch statistics; dropout without a mask is identity).
    pub train: bool,
    /// Also the model's own loss (`loss`) and every trainable parameter's gradient
    /// (`grad.<native name>`); needs `y` in the inputs.
    pub grads: bool,
    /// Compute in f64 instead of f32 (also chosen when an input tensor is f64).
    pub f64: bool,
}

/// Loads a `.keras` / `.onnx` file or a bundle directory (whose training config then supplies
/// the loss: `fit.json` + compile_config, or `train.json`).
pub fn load_model(path: &Path) -> Result<Model, String> {
    match model_import::load_path(path).map_err(|e| e.to_string())? {
        Loaded::Model(b) => Ok(b.model),
        Loaded::Tensors { path, .. } => Err(format!(
            "{}: is a safetensors file; MODEL must be a .keras or .onnx file or a bundle directory",
            path.display()
        )),
    }
}

/// The tensor fed to each graph input, in the program's input order: `x` when the model has one
/// input and the file holds `x`, else `x.<input name>`.
pub fn graph_inputs<'a>(
    program: &Program,
    file: &'a TensorFile,
) -> Result<Vec<&'a Tensor>, String> {
    let names = program.input_names();
    names
        .iter()
        .map(|n| {
            let key = format!("x.{n}");
            let t = if names.len() == 1 {
                file.get("x").or_else(|| file.get(&key))
            } else {
                file.get(&key)
            };
            t.ok_or_else(|| {
                if names.len() == 1 {
                    format!("the inputs file has no tensor `x` (or `{key}`) for the model's input")
                } else {
                    format!(
                        "the inputs file has no tensor `{key}` (the model's inputs are {})",
                        names
                            .iter()
                            .map(|n| format!("`x.{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            })
        })
        .collect()
}

/// Runs `model` on the tensors of `inputs` and returns what `cargo xtask run` writes:
/// `output` (one model output) or `output.<name>`, and with `opts.grads` also `loss` and
/// `grad.<param>`. Tensors are in the compute dtype (f32, or f64 with `opts.f64`).
pub fn run_model(
    model: &Model,
    inputs: &TensorFile,
    opts: Options,
) -> Result<BTreeMap<String, Tensor>, String> {
    // An f64 graph input (ONNX `double`) computes in f64, as the framework would.
    let f64_input = inputs
        .tensors
        .iter()
        .any(|(k, t)| k.starts_with('x') && t.dtype() == model_ir::DType::F64);
    if opts.f64 || f64_input {
        run_typed::<f64>(model, inputs, opts)
    } else {
        run_typed::<f32>(model, inputs, opts)
    }
}

fn run_typed<F: Float>(
    model: &Model,
    inputs: &TensorFile,
    opts: Options,
) -> Result<BTreeMap<String, Tensor>, String> {
    let program = Program::new(model).map_err(|e| e.to_string())?;
    let params: ParamStore<F> = ParamStore::from_model(model);
    let xs: Vec<ArrayD<F>> = graph_inputs(&program, inputs)?
        .into_iter()
        .map(F::array_from)
        .collect();
    let mode = if opts.train {
        Mode::Training
    } else {
        Mode::Inference
    };
    // The loss is resolved before running so that a model without one fails fast.
    let config = if opts.grads {
        Some(TrainConfig::from_model(model, 1).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let fwd = forward(&program, &params, &xs, mode, &BTreeMap::new()).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    let names = program.output_names();
    for (name, y) in names.iter().zip(&fwd.outputs) {
        let key = if names.len() == 1 {
            "output".to_string()
        } else {
            format!("output.{name}")
        };
        out.insert(key, F::into_tensor(y.clone()));
    }
    if let Some(config) = config {
        let y = inputs
            .get("y")
            .ok_or("--grads needs the target `y` in the inputs file")?;
        let target = F::array_from(y);
        let logits = if config.logits_shortcut && config.loss.uses_logits_shortcut() {
            fwd.tape.output_logits(0).map(|(_, z)| z)
        } else {
            None
        };
        let l = loss::compute(&config.loss, &fwd.outputs[0], &target, None, logits)
            .map_err(|e| e.to_string())?;
        let mut d_outputs = vec![OutputGrad::None; fwd.outputs.len()];
        d_outputs[0] = l.grad;
        let mut grads = backward(&fwd.tape, &d_outputs).map_err(|e| e.to_string())?;
        let regs: BTreeMap<String, Regularizer> = config.regularizers.clone();
        let (reg, rgrads) = loss::regularization(&regs, &params).map_err(|e| e.to_string())?;
        for (name, g) in rgrads {
            if let Some(acc) = grads.params.get_mut(&name) {
                *acc += &g;
            }
        }
        let total = l.value + reg;
        out.insert(
            "loss".into(),
            F::into_tensor(ArrayD::from_elem(ndarray::IxDyn(&[]), total)),
        );
        for (name, g) in grads.params {
            out.insert(format!("grad.{name}"), F::into_tensor(g));
        }
    }
    Ok(out)
}
