//! `cargo xtask`: the parallax command line.
//!
//! Subcommands: `inspect` (canonical layer table of a model or bundle), `fixtures`
//! (regenerate the framework-made fixtures under `models/` with real Keras and PyTorch),
//! `codegen` (regenerate the checked-in ONNX protobuf types). This is the only crate that
//! parses arguments and sets exit codes.

#![allow(clippy::disallowed_methods)]

mod codegen;
mod compare;
mod fixtures;
mod inspect;
mod replay;
mod run;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HELP: &str = "\
parallax: why does my Keras model perform differently in PyTorch?

USAGE:
    cargo xtask <COMMAND> [ARGS]

COMMANDS:
    compare [KERAS_BUNDLE TORCH_BUNDLE] [--out DIR] [--json FILE] [--steps N] [--seeds K]
                              name what differs between a Keras model and its PyTorch port,
                              with evidence and fixes (default: the bundled seed example;
                              --out writes report.md, report.html, report.json)
    compare --all             every case under models/cases/ against its expected.json
    inspect [PATH] [--json]   print the canonical layer table of a bundle directory or a
                              .keras / .onnx / .safetensors file (default: the bundled
                              seed example, both sides)
    fixtures [--only NAME]    regenerate the fixtures under models/ with the real frameworks
                              (needs PARALLAX_PYTHON: a Python with the pinned packages of
                              models/requirements.txt)
    replay FILE... [--as keras|torch] [--json] [--f64]
                              replay golden optimizer trajectories through the emulators;
                              worst normalized error per file, pass <= 1e-6
    run MODEL --inputs FILE --out FILE [--train] [--grads] [--f64]
                              run the reference engine on a .keras/.onnx model or bundle
                              directory: reads x / x.<input> (and y), writes output /
                              output.<name> (with --grads also loss and grad.<param>)
    codegen [--check]         regenerate crates/onnx-proto/src/generated/onnx.rs from
                              proto/onnx.proto (--check: fail if it is stale)
    help                      print this help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context chain joined.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(cmd) = args.first() else {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "inspect" => {
            let mut json = false;
            let mut paths = Vec::new();
            for a in rest {
                match a.as_str() {
                    "--json" => json = true,
                    s if s.starts_with('-') => anyhow::bail!("inspect: unknown flag `{s}`"),
                    s => paths.push(PathBuf::from(s)),
                }
            }
            if paths.is_empty() {
                let root = project_root().join("models/seed-mlp");
                paths = vec![root.join("keras"), root.join("torch")];
            }
            let mut failed = false;
            for (i, p) in paths.iter().enumerate() {
                match inspect::inspect(p, json) {
                    Ok(text) => {
                        if i > 0 && !json {
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
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        "fixtures" => {
            let mut only = None;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--only" => {
                        only = Some(
                            it.next()
                                .ok_or_else(|| anyhow::format_err!("--only needs a name"))?
                                .clone(),
                        )
                    }
                    s => anyhow::bail!("fixtures: unexpected argument `{s}`"),
                }
            }
            fixtures::run(only.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        "compare" => compare::run(rest),
        "replay" => replay::run(rest),
        "run" => run::run(rest),
        "codegen" => {
            let check = match rest {
                [] => false,
                [f] if f == "--check" => true,
                _ => anyhow::bail!("codegen: usage: cargo xtask codegen [--check]"),
            };
            codegen::run(check)?;
            Ok(ExitCode::SUCCESS)
        }
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => anyhow::bail!("unknown command `{other}` (try `cargo xtask help`)"),
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn project_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
