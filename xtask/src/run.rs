//! `cargo xtask run MODEL --inputs FILE.safetensors --out FILE.safetensors [--train] [--grads]
//! [--f64]`: run the reference engine on a `.keras` / `.onnx` model or a bundle directory.
//!
//! Reads `x` (or `x.<input>` per graph input) and, with `--grads`, `y` from the inputs file;
//! writes `output` (or `output.<name>` per model output) and, with `--grads`, `loss` and
//! `grad.<param>` for every trainable parameter under its framework-native name, using the
//! model's own loss (Keras compile_config, torch `train.json`; a bundle directory supplies
//! them). Inference mode unless `--train`. The work is done by the `runner` library, which the
//! validation tests call too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, format_err};
use model_ir::Tensor;

/// Arguments of `cargo xtask run`.
#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Reads x / x.<input> (and y) from the inputs file; writes output / output.<name>
(with --grads also loss and grad.<param>).

Examples:
  cargo xtask run models/cnn/torch/model.onnx --inputs in.safetensors --out out.safetensors
  cargo xtask run models/cnn/keras --inputs in.safetensors --out out.safetensors --train --grads"
)]
pub(crate) struct Args {
    /// A .keras or .onnx model, or a bundle directory
    #[arg(value_name = "MODEL", value_parser = clap::value_parser!(PathBuf))]
    model: PathBuf,
    /// The safetensors file of inputs (`x` or `x.<input>`, and `y` for --grads)
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    inputs: PathBuf,
    /// The safetensors file to write
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    out: PathBuf,
    /// Training-mode forward (BatchNorm batch statistics)
    #[arg(long)]
    train: bool,
    /// Also the model's own loss and every trainable parameter's gradient
    #[arg(long)]
    grads: bool,
    /// Compute in f64
    #[arg(long)]
    f64: bool,
}

impl Args {
    fn options(&self) -> runner::Options {
        runner::Options {
            train: self.train,
            grads: self.grads,
            f64: self.f64,
        }
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let model = runner::load_model(&args.model).map_err(|e| format_err!("{e}"))?;
    let inputs = model_import::load_safetensors(&args.inputs)?;
    let out = runner::run_model(&model, &inputs, args.options())
        .map_err(|e| format_err!("{}: {e}", args.model.display()))?;
    let mut metadata = BTreeMap::new();
    metadata.insert("producer".to_string(), "parallax engine".to_string());
    metadata.insert("model".to_string(), args.model.display().to_string());
    let mode = if args.train { "training" } else { "inference" };
    metadata.insert("mode".to_string(), mode.to_string());
    write_safetensors(&args.out, &out, &metadata)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes f32/f64 tensors as a safetensors file (header keys sorted, data in name order).
fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let start = data.len();
        let dtype = match t {
            Tensor::F32(a) => {
                data.extend(a.iter().flat_map(|v| v.to_le_bytes()));
                "F32"
            }
            Tensor::F64(a) => {
                data.extend(a.iter().flat_map(|v| v.to_le_bytes()));
                "F64"
            }
            other => bail!("tensor `{name}` is {}, expected f32 or f64", other.dtype()),
        };
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype,
                "shape": t.shape(),
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + h.len() + data.len());
    bytes.extend((h.len() as u64).to_le_bytes());
    bytes.extend(h);
    bytes.extend(data);
    std::fs::write(path, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask run ARGS` as clap parses it.
    fn parse_args(argv: &[&str]) -> Result<Args, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let argv = std::iter::once(&"run").chain(argv);
        <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn parses_flags_in_any_order() {
        let a = [
            "--out", "o.st", "m.onnx", "--grads", "--inputs", "i.st", "--f64",
        ];
        let p = parse_args(&a).unwrap();
        assert_eq!(p.model, PathBuf::from("m.onnx"));
        let o = p.options();
        assert!(o.grads && o.f64 && !o.train);
        assert_eq!(parse_args(&a[..2]).unwrap_err().exit_code(), 2);
        assert_eq!(parse_args(&["--bogus"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn written_file_reads_back() {
        let dir = std::env::temp_dir().join(format!("parallax-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.safetensors");
        let mut t = BTreeMap::new();
        t.insert(
            "output".to_string(),
            Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
        );
        write_safetensors(&path, &t, &BTreeMap::new()).unwrap();
        let back = model_import::load_safetensors(&path).unwrap();
        assert_eq!(back.get("output"), t.get("output"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
