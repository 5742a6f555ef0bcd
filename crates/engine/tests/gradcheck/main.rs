//! Finite-difference gradient checks (f64, ≤ 1e-6 relative) of every op's backward pass, one
//! model per op and convention variant; each also checks the f32 path against f64.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod conv;
mod dense;
mod elementwise;
mod embedding;
mod norm;
mod rnn;
mod shape;
mod window;

use common::{Builder, Check, assert_grads};
use model_ir::{Activation, Framework, Op};

/// Input → one op (with its params) → output, checked at a random input of `shape`
/// (`lo..hi`).
#[track_caller]
fn check_unary_op(
    op: Op,
    shape: &[usize],
    params: impl FnOnce(&mut Builder) -> Vec<model_ir::Param>,
    lo: f64,
    hi: f64,
) {
    check_with(op, shape, params, lo, hi, Check::default());
}

#[track_caller]
fn check_with(
    op: Op,
    shape: &[usize],
    params: impl FnOnce(&mut Builder) -> Vec<model_ir::Param>,
    lo: f64,
    hi: f64,
    check: Check,
) {
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &shape[1..]);
    let ps = params(&mut b);
    let y = b.add("op", op, &[&x], ps);
    b.output(&y);
    let x = b.rng.array(shape, lo, hi);
    let model = b.finish();
    assert_grads(&model, &[x], &check);
}

fn act(function: Activation) -> Op {
    Op::Activation { function }
}

fn no_params(_: &mut Builder) -> Vec<model_ir::Param> {
    Vec::new()
}
