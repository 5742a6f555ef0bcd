//! `cargo xtask inspect`: the canonical layer table of a model, bundle or safetensors file.

mod summary;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use model_import::{Bundle, Loaded, TensorFile};
use model_ir::Model;
use serde_json::json;

use summary::summarize;

/// Arguments of `cargo xtask inspect`.
#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Examples:
  cargo xtask inspect                         the bundled seed example, both sides
  cargo xtask inspect models/cnn/keras        a bundle directory
  cargo xtask inspect --json models/cnn/torch/model.onnx"
)]
pub(crate) struct Args {
    /// Bundle directories or .keras / .onnx / .safetensors files [default: the bundled seed
    /// example, both sides]
    #[arg(value_name = "PATH", value_parser = clap::value_parser!(PathBuf))]
    paths: Vec<PathBuf>,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
}

/// `cargo xtask inspect ...`: every path in turn; an unreadable one is reported on stderr
/// (one line) and makes the exit code non-zero without stopping the others.
pub(crate) fn run(args: &Args) -> ExitCode {
    let mut paths = args.paths.clone();
    if paths.is_empty() {
        let root = crate::project_root().join("models/seed-mlp");
        paths = vec![root.join("keras"), root.join("torch")];
    }
    let mut failed = false;
    for (i, p) in paths.iter().enumerate() {
        match inspect(p, args.json) {
            Ok(text) => {
                if i > 0 && !args.json {
                    println!();
                }
                print!("{text}");
            }
            Err(e) => {
                eprintln!("error: {}", e.to_string().replace('\n', " "));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Renders `path` as a table (or JSON with `json`).
pub(crate) fn inspect(path: &Path, json: bool) -> Result<String, model_import::ImportError> {
    let loaded = model_import::load_path(path)?;
    Ok(match (&loaded, json) {
        (Loaded::Model(b), false) => render_bundle(b, path),
        (Loaded::Model(b), true) => to_json(&b.model),
        (Loaded::Tensors { file, .. }, false) => render_tensors(file, path),
        (Loaded::Tensors { file, .. }, true) => tensors_json(file),
    })
}

fn display_path(path: &Path) -> String {
    let root = crate::project_root();
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    abs.strip_prefix(&root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

fn shape_str(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", dims.join(","))
}

fn dims_str(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

fn render_bundle(b: &Bundle, path: &Path) -> String {
    let m = &b.model;
    let mut out = String::new();
    let producer = m
        .producer
        .clone()
        .unwrap_or_else(|| m.framework.to_string());
    let _ = writeln!(
        out,
        "{} ({} model `{}`, {})",
        display_path(path),
        m.framework,
        m.name,
        producer
    );
    for i in &m.inputs {
        let _ = writeln!(out, "input  {} {} {}", i.name, shape_str(&i.shape), i.dtype);
    }
    let _ = writeln!(out, "output {}", m.outputs.join(", "));
    let _ = writeln!(
        out,
        "{} layers, {} parameter tensors, {} trainable scalars",
        m.nodes.len(),
        m.params().count(),
        m.trainable_count()
    );
    if let Some(t) = &m.training {
        let _ = writeln!(out, "training: {}", training_line(t));
    }
    out.push('\n');
    // Table: #, layer, kind, attributes; parameters on their own indented lines.
    let rows: Vec<(String, String, String, String)> = m
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("{}", i + 1),
                n.name.clone(),
                format!("{} <{}>", n.op.kind(), n.origin.class),
                summarize(&n.op),
            )
        })
        .collect();
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(1);
    let w2 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let w3 = rows
        .iter()
        .map(|r| r.2.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:>w1$}  {:<w2$}  {:<w3$}  attributes",
        "#", "layer", "kind"
    );
    for (row, node) in rows.iter().zip(&m.nodes) {
        let line = format!("{:>w1$}  {:<w2$}  {:<w3$}  {}", row.0, row.1, row.2, row.3);
        let _ = writeln!(out, "{}", line.trim_end());
        for p in &node.params {
            let _ = writeln!(
                out,
                "{:w1$}  {:<w2$}  {} {} {} {}{}",
                "",
                "",
                p.name,
                dims_str(p.tensor.shape()),
                p.tensor.dtype(),
                p.layout.describe(),
                if p.trainable { "" } else { " (not trainable)" }
            );
        }
    }
    if let Some(inp) = &b.inputs {
        out.push('\n');
        let _ = writeln!(out, "inputs.safetensors:");
        for (k, t) in &inp.tensors {
            let _ = writeln!(out, "  {k} {} {}", dims_str(t.shape()), t.dtype());
        }
    }
    if let Some(sd) = &b.state_dict {
        let _ = writeln!(out, "state_dict.safetensors: {} tensors", sd.tensors.len());
    }
    if !m.notes.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "notes:");
        for n in &m.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

fn training_line(t: &model_ir::TrainingConfig) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &t.optimizer {
        parts.push(format!(
            "optimizer {} {}",
            o.class_name,
            compact_json(&o.config)
        ));
    }
    if let Some(l) = &t.loss {
        let cfg = compact_json(&l.config);
        parts.push(if cfg == "{}" {
            format!("loss {}", l.class_name)
        } else {
            format!("loss {} {cfg}", l.class_name)
        });
    }
    if let Some(g) = &t.grad_clip {
        parts.push(format!("clip {g:?}"));
    }
    if let Some(s) = &t.scheduler {
        parts.push(format!("scheduler {} per {:?}", s.class_name, s.interval).to_lowercase());
    }
    parts.push(format!(
        "batch {} epochs {} shuffle {}",
        t.batch_size, t.epochs, t.shuffle
    ));
    if let Some(b) = &t.backend {
        parts.push(format!("backend {b}"));
    }
    parts.join("; ")
}

/// JSON with floats rounded to 6 significant digits, for stable one-line display.
fn compact_json(v: &serde_json::Value) -> String {
    fn round(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(0.0);
                let r: f64 = format!("{f:.6e}").parse().unwrap_or(f);
                json!(r)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(round).collect()),
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), round(v))).collect())
            }
            other => other.clone(),
        }
    }
    round(v).to_string()
}

fn to_json(m: &Model) -> String {
    let layers: Vec<serde_json::Value> = m
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "kind": n.op.kind(),
                "attrs": n.op.attrs_json(),
                "origin": n.origin,
                "inputs": n.inputs,
                "outputs": n.outputs,
                "params": n.params.iter().map(|p| json!({
                    "name": p.name,
                    "shape": p.tensor.shape(),
                    "dtype": p.tensor.dtype(),
                    "role": p.role,
                    "layout": p.layout,
                    "trainable": p.trainable,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = json!({
        "framework": m.framework,
        "name": m.name,
        "producer": m.producer,
        "inputs": m.inputs,
        "outputs": m.outputs,
        "layers": layers,
        "training": m.training,
        "notes": m.notes,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn guess_framework(f: &TensorFile) -> &'static str {
    if let Some(fw) = f.metadata.get("framework") {
        return if fw == "keras" {
            "keras"
        } else if fw == "torch" {
            "torch"
        } else {
            "unknown"
        };
    }
    let slash = f.tensors.keys().filter(|k| k.contains('/')).count();
    let dot = f.tensors.keys().filter(|k| k.contains('.')).count();
    if slash > dot {
        "keras"
    } else if dot > 0 {
        "torch"
    } else {
        "unknown"
    }
}

fn render_tensors(f: &TensorFile, path: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (safetensors, {} tensors, names look {})",
        display_path(path),
        f.tensors.len(),
        guess_framework(f)
    );
    for (k, v) in &f.metadata {
        let shown: String = v.chars().take(120).collect();
        let _ = writeln!(out, "meta {k} = {shown}");
    }
    let w = f
        .tensors
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(4);
    for (k, t) in &f.tensors {
        let _ = writeln!(out, "{k:<w$}  {} {}", dims_str(t.shape()), t.dtype());
    }
    out
}

fn tensors_json(f: &TensorFile) -> String {
    let v = json!({
        "framework": guess_framework(f),
        "metadata": f.metadata,
        "tensors": f.tensors.iter().map(|(k, t)| json!({"name": k, "shape": t.shape(), "dtype": t.dtype()})).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every committed model the importers must read, as (snapshot name, path).
    fn fixtures() -> Vec<(String, PathBuf)> {
        let root = crate::project_root().join("models");
        let mut out = Vec::new();
        for fx in ["seed-mlp", "cnn", "rnn", "functional"] {
            for side in ["keras", "torch"] {
                out.push((format!("{fx}-{side}"), root.join(fx).join(side)));
            }
            out.push((
                format!("{fx}-torch-eval"),
                root.join(fx).join("torch/model.eval.onnx"),
            ));
        }
        for zoo in ["zoo/keras", "zoo/torch"] {
            let Ok(entries) = std::fs::read_dir(root.join(zoo)) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("keras") | Some("onnx")
                    )
                })
                .collect();
            files.sort();
            for f in files {
                let stem = f
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let kind = zoo.replace('/', "-");
                out.push((format!("{kind}-{stem}"), f));
            }
        }
        out
    }

    #[test]
    fn inspect_tables_of_every_fixture() {
        let mut failures = Vec::new();
        for (name, path) in fixtures() {
            match super::inspect(&path, false) {
                Ok(text) => {
                    let mut settings = insta::Settings::clone_current();
                    settings.set_prepend_module_to_snapshot(false);
                    settings.set_snapshot_path("../snapshots/inspect");
                    settings.bind(|| insta::assert_snapshot!(name.as_str(), text));
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        assert!(
            failures.is_empty(),
            "imports failed:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let root = crate::project_root().join("models/seed-mlp");
        for side in ["keras", "torch"] {
            let text = super::inspect(&root.join(side), true).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["framework"], side);
            let layers = v["layers"].as_array().unwrap();
            assert!(!layers.is_empty());
            for l in layers {
                assert!(l["name"].is_string() && l["kind"].is_string());
                assert!(l["attrs"].is_object());
                for p in l["params"].as_array().unwrap() {
                    assert!(p["name"].is_string() && p["shape"].is_array());
                    assert!(p["dtype"].is_string());
                }
            }
            assert!(v["notes"].is_array());
        }
    }

    #[test]
    fn bad_paths_are_one_line_errors() {
        let root = crate::project_root();
        let err = super::inspect(&root.join("models/does-not-exist"), false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("does-not-exist") && !msg.contains('\n'),
            "{msg}"
        );
        let err = super::inspect(&root.join("README.md"), false).unwrap_err();
        assert!(err.to_string().contains("README.md"));
    }
}
