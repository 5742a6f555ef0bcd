//! Transitional: `crates/engine/tests/fixtures.rs` still compiles this path with `#[path]`.
//! The code lives in the `runner` crate (`crates/runner/src/lib.rs`); this file only includes
//! it as a module for that test and is no module of `xtask`. Delete it once `fixtures.rs` has
//! moved to `crates/runner/tests/` and says `use runner as exec;`.

#[allow(unreachable_pub)]
#[path = "../../../crates/runner/src/lib.rs"]
mod runner_lib;

pub(crate) use runner_lib::*;
