//! `cargo xtask`: the parallax command line.
//!
//! Subcommands: `compare` (what differs between a Keras model and its PyTorch port),
//! `inspect` (canonical layer table of a model or bundle), `run` (the reference engine on a
//! model and an inputs file), `replay` (golden optimizer trajectories through the emulators),
//! `fixtures` (regenerate the framework-made fixtures under `models/` with real Keras and
//! PyTorch), `codegen` (regenerate the checked-in ONNX protobuf types). The command line is
//! declared with clap's derive API: this module owns the top-level command, each subcommand's
//! module owns its arguments. This is the only crate that parses arguments and sets exit codes.

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

use clap::{CommandFactory, Parser, Subcommand};

/// parallax: why does my Keras model perform differently in PyTorch?
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    after_help = "Examples:
  cargo xtask compare                  the bundled seed example
  cargo xtask inspect models/cnn/keras
  cargo xtask compare --help           a subcommand's arguments"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Name what differs between a Keras model and its PyTorch port, with evidence and fixes
    Compare(compare::Args),
    /// Print the canonical layer table of a bundle directory or a .keras / .onnx /
    /// .safetensors file
    Inspect(inspect::Args),
    /// Run the reference engine on a .keras / .onnx model or bundle directory
    Run(run::Args),
    /// Replay golden optimizer trajectories through the emulators
    Replay(replay::Args),
    /// Regenerate the fixtures under models/ with the real frameworks
    Fixtures(fixtures::Args),
    /// Regenerate crates/onnx-proto/src/generated/onnx.rs from proto/onnx.proto
    Codegen(codegen::Args),
}

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; `--help` prints and exits 0.
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context chain joined.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => {
            print!("{}", Cli::command().render_help());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Compare(a)) => compare::run(&a),
        Some(Command::Inspect(a)) => Ok(inspect::run(&a)),
        Some(Command::Run(a)) => run::run(&a),
        Some(Command::Replay(a)) => replay::run(&a),
        Some(Command::Fixtures(a)) => {
            fixtures::run(a.only.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Codegen(a)) => {
            codegen::run(a.check)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn project_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_help_with_an_example() {
        let mut cmd = Cli::command();
        cmd.build();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in ["compare", "inspect", "run", "replay", "fixtures", "codegen"] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let after = sub
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            assert!(
                after.contains("cargo xtask"),
                "{}: no example",
                sub.get_name()
            );
        }
    }
}
