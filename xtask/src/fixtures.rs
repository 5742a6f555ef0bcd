//! `cargo xtask fixtures`: regenerates every framework-made fixture under `models/`.
//!
//! A fixture directory holds generator scripts named `gen_*.py`. Scripts whose name starts
//! with `gen_keras` import Keras/TensorFlow and run first; the others (`gen_torch.py`) import
//! PyTorch and may read what the Keras half wrote. Each runs as its own process (TensorFlow
//! and PyTorch cannot share one), with the fixture directory as working directory, using the
//! interpreter in `PARALLAX_PYTHON` (default `python3`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// Arguments of `cargo xtask fixtures`.
#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Needs PARALLAX_PYTHON: a Python with the pinned packages of models/requirements.txt.

Examples:
  PARALLAX_PYTHON=.venv/bin/python cargo xtask fixtures
  PARALLAX_PYTHON=.venv/bin/python cargo xtask fixtures --only zoo/torch"
)]
pub(crate) struct Args {
    /// Only the fixture directories whose path contains NAME
    #[arg(long, value_name = "NAME")]
    pub(crate) only: Option<String>,
}

pub(crate) fn run(only: Option<&str>) -> anyhow::Result<()> {
    let python = std::env::var("PARALLAX_PYTHON").unwrap_or_else(|_| "python3".into());
    let root = crate::project_root();
    let mut dirs = Vec::new();
    collect(&root.join("models"), &mut dirs)?;
    dirs.sort();
    if let Some(o) = only {
        dirs.retain(|(d, _)| d.to_string_lossy().contains(o));
    }
    if dirs.is_empty() {
        bail!("no fixture generators (gen_*.py) found under models/");
    }
    let total = dirs.len();
    for (i, (dir, scripts)) in dirs.iter().enumerate() {
        let rel = dir.strip_prefix(&root).unwrap_or(dir);
        for script in scripts {
            let start = Instant::now();
            eprintln!("[{}/{}] {} {}", i + 1, total, rel.display(), script);
            let status = Command::new(&python)
                .arg(script)
                .current_dir(dir)
                .env("PYTHONHASHSEED", "0")
                .env("TF_CPP_MIN_LOG_LEVEL", "3")
                .status()
                .with_context(|| format!("starting `{python}` (set PARALLAX_PYTHON)"))?;
            if !status.success() {
                bail!("{}/{script} failed ({status})", rel.display());
            }
            eprintln!("      done in {:.1}s", start.elapsed().as_secs_f64());
        }
    }
    eprintln!("fixtures: {total} directories regenerated; review with `git status` and commit");
    Ok(())
}

/// Finds directories with `gen_*.py` scripts, ordered Keras halves first.
fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<String>)>) -> anyhow::Result<()> {
    let mut scripts = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut subdirs = Vec::new();
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type()?;
        if ft.is_dir() && !name.starts_with('.') && name != "__pycache__" {
            subdirs.push(e.path());
        } else if ft.is_file() && name.starts_with("gen_") && name.ends_with(".py") {
            scripts.push(name);
        }
    }
    scripts.sort_by_key(|s| (!s.starts_with("gen_keras"), s.clone()));
    if !scripts.is_empty() {
        out.push((dir.to_path_buf(), scripts));
    }
    for d in subdirs {
        collect(&d, out)?;
    }
    Ok(())
}
