//! `cargo xtask replay FILE... [--as keras|torch] [--json] [--f64]`: run golden optimizer
//! trajectories (`models/trajectories/*.safetensors`) through the `optim` emulators and
//! print the worst normalized error per file, then `replay: N passed, N failed`. The files'
//! optional training-loop metadata (torch `param_groups`, `scheduler`, `grad_clip`; Keras
//! `exclude_from_weight_decay`, `backend`), the tensor shapes and the I64 `slices.*.indices`
//! tensors are passed on to `optim::replay`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, format_err};
use model_ir::Framework;
use optim::Precision;
use optim::replay::{Outcome, PASS_THRESHOLD, Trajectory, replay};
use safetensors::{Dtype, SafeTensors};

/// Arguments of `cargo xtask replay`.
#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Prints the worst normalized error per file (pass <= 1e-6), then
`replay: N passed, N failed`; exit 1 when a file failed.

Examples:
  cargo xtask replay models/trajectories/*.safetensors
  cargo xtask replay models/trajectories/keras_adadelta_default.safetensors --as torch --json"
)]
pub(crate) struct Args {
    /// Golden trajectory files (safetensors)
    #[arg(value_name = "FILE", required = true, value_parser = clap::value_parser!(PathBuf))]
    files: Vec<PathBuf>,
    /// Emulate as this framework instead of the one that recorded the file
    #[arg(long = "as", value_name = "FRAMEWORK")]
    as_framework: Option<AsFramework>,
    /// Print JSON instead of one line per file
    #[arg(long)]
    json: bool,
    /// Emulate in f64
    #[arg(long)]
    f64: bool,
}

/// The values of `--as`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AsFramework {
    Keras,
    Torch,
}

impl From<AsFramework> for Framework {
    fn from(f: AsFramework) -> Framework {
        match f {
            AsFramework::Keras => Framework::Keras,
            AsFramework::Torch => Framework::Torch,
        }
    }
}

/// Read one trajectory file into memory.
fn load(path: &Path) -> anyhow::Result<Trajectory> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| format_err!("not a safetensors file: {e}"))?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| format_err!("not a safetensors file: {e}"))?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = BTreeMap::new();
    let mut int_tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        match view.dtype() {
            Dtype::F32 => {
                let data = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                tensors.insert(name, (view.shape().to_vec(), data));
            }
            // `slices.<t>.<p>.indices` of IndexedSlices gradients.
            Dtype::I64 => {
                let data = view
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                int_tensors.insert(name, (view.shape().to_vec(), data));
            }
            other => bail!("tensor `{name}` is {other:?}, expected F32 (or I64 indices)"),
        }
    }
    Ok(Trajectory::from_all_parts(&meta, &tensors, &int_tensors)?)
}

fn fw(f: Framework) -> &'static str {
    f.name()
}

fn line(path: &Path, o: &Outcome) -> String {
    let how = if o.emulated_as == o.framework {
        String::new()
    } else {
        format!(" as {}", fw(o.emulated_as))
    };
    format!(
        "{} {}: {} {}{how}, {} steps, worst {:.3e} at step {}",
        if o.passed { "ok  " } else { "FAIL" },
        path.display(),
        fw(o.framework),
        o.class_name,
        o.steps,
        o.worst,
        o.worst_step
    )
}

/// Run the subcommand; `Ok(FAILURE)` when any file failed or could not be read.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let as_framework = args.as_framework.map(Framework::from);
    let precision = if args.f64 {
        Precision::F64
    } else {
        Precision::F32
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut records = Vec::new();
    for path in &args.files {
        let result = load(path).and_then(|t| Ok(replay(&t, as_framework, precision)?));
        match result {
            Ok(o) => {
                if o.passed {
                    passed += 1;
                } else {
                    failed += 1;
                }
                if args.json {
                    records.push(serde_json::json!({
                        "file": path.display().to_string(),
                        "framework": fw(o.framework),
                        "emulated_as": fw(o.emulated_as),
                        "optimizer": o.class_name,
                        "steps": o.steps,
                        "worst": if o.worst.is_finite() { serde_json::json!(o.worst) } else { serde_json::json!(o.worst.to_string()) },
                        "worst_step": o.worst_step,
                        "threshold": PASS_THRESHOLD,
                        "passed": o.passed,
                    }));
                } else {
                    println!("{}", line(path, &o));
                }
            }
            Err(e) => {
                failed += 1;
                let msg = format!("{e:#}").replace('\n', " ");
                if args.json {
                    records.push(serde_json::json!({"file": path.display().to_string(), "error": msg, "passed": false}));
                } else {
                    println!("FAIL {}: error: {msg}", path.display());
                }
            }
        }
    }
    if args.json {
        let doc = serde_json::json!({"files": records, "passed": passed, "failed": failed});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("replay: {passed} passed, {failed} failed");
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
