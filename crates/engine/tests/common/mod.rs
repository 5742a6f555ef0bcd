//! Test helpers: a small builder for IR models, a deterministic random source, and the
//! finite-difference gradient check every op and loss goes through.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use engine::{DropoutMasks, Mode, OutputGrad, ParamStore, Program, backward, forward};
use model_ir::{
    DType, Framework, Model, Node, Op, Origin, Param, ParamLayout, ParamRole, Tensor, ValueInfo,
};
use ndarray::{ArrayD, IxDyn};

/// SplitMix64: deterministic, dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    pub fn array(&mut self, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| self.uniform(lo, hi)).collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    /// Integers in `[0, n)` stored as floats.
    pub fn ids(&mut self, shape: &[usize], n: usize) -> ArrayD<f64> {
        let len = shape.iter().product();
        let v: Vec<f64> = (0..len)
            .map(|_| (self.next_u64() % n as u64) as f64)
            .collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    /// A 0/1 keep-mask with keep probability `keep`.
    pub fn mask(&mut self, shape: &[usize], keep: f64) -> ArrayD<f64> {
        self.array(shape, 0.0, 1.0)
            .mapv(|u| if u < keep { 1.0 } else { 0.0 })
    }
}

/// Builds small models node by node.
#[derive(Debug)]
pub struct Builder {
    pub model: Model,
    pub rng: Rng,
}

impl Builder {
    pub fn new(framework: Framework) -> Builder {
        Builder {
            model: Model::new(framework, "test"),
            rng: Rng::new(7),
        }
    }

    pub fn seeded(framework: Framework, seed: u64) -> Builder {
        Builder {
            model: Model::new(framework, "test"),
            rng: Rng::new(seed),
        }
    }

    /// A graph input with a dynamic batch axis and the given per-sample shape.
    pub fn input(&mut self, name: &str, sample: &[usize]) -> String {
        let mut shape = vec![None];
        shape.extend(sample.iter().map(|&d| Some(d)));
        self.model.inputs.push(ValueInfo {
            name: name.into(),
            shape,
            dtype: DType::F32,
        });
        name.into()
    }

    /// A node with one output named like the node.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[&str], params: Vec<Param>) -> String {
        self.add_n(name, op, inputs, 1, params).remove(0)
    }

    /// A node with `n` outputs `name`, `name:1`, ...
    pub fn add_n(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[&str],
        n: usize,
        params: Vec<Param>,
    ) -> Vec<String> {
        let outputs: Vec<String> = (0..n)
            .map(|i| {
                if i == 0 {
                    name.to_string()
                } else {
                    format!("{name}:{i}")
                }
            })
            .collect();
        let framework = self.model.framework;
        self.model.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.clone(),
            params,
            origin: Origin {
                framework,
                name: name.into(),
                class: "Test".into(),
            },
        });
        outputs
    }

    /// A trainable parameter with uniform values in `[-1, 1)`.
    pub fn param(
        &mut self,
        name: &str,
        role: ParamRole,
        layout: ParamLayout,
        shape: &[usize],
    ) -> Param {
        let v = self.rng.array(shape, -1.0, 1.0);
        param(name, role, layout, v, true)
    }

    pub fn output(&mut self, v: &str) {
        self.model.outputs.push(v.into());
    }

    pub fn finish(self) -> Model {
        self.model
    }
}

/// A parameter from f64 values (stored as f64).
pub fn param(
    name: &str,
    role: ParamRole,
    layout: ParamLayout,
    v: ArrayD<f64>,
    trainable: bool,
) -> Param {
    Param {
        name: name.into(),
        role,
        layout,
        tensor: Tensor::F64(v),
        trainable,
    }
}

/// What a gradient check runs.
#[derive(Debug, Clone)]
pub struct Check {
    pub mode: Mode,
    pub masks: DropoutMasks<f64>,
    /// Inputs that are not differentiable (ids).
    pub skip_inputs: Vec<usize>,
    /// Finite-difference step.
    pub h: f64,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            mode: Mode::Inference,
            masks: BTreeMap::new(),
            skip_inputs: Vec::new(),
            h: 1e-5,
        }
    }
}

/// `Σ_i Σ r_i ⊙ y_i` for fixed random weights `r`.
fn objective(
    program: &Program,
    params: &ParamStore<f64>,
    inputs: &[ArrayD<f64>],
    check: &Check,
    r: &[ArrayD<f64>],
) -> f64 {
    let out = forward(program, params, inputs, check.mode, &check.masks).unwrap();
    out.outputs.iter().zip(r).map(|(y, r)| (y * r).sum()).sum()
}

/// Finite-difference check of every trainable parameter's and every differentiable input's
/// gradient; returns the worst relative error `‖g − fd‖∞ / max(‖fd‖∞, ‖g‖∞)` and its place.
/// Also runs the model in f32 and checks outputs and gradients against f64.
pub fn gradcheck(model: &Model, inputs: &[ArrayD<f64>], check: &Check) -> (f64, String) {
    let program = Program::new(model).unwrap();
    let params = ParamStore::<f64>::from_model(model);
    let fwd = forward(&program, &params, inputs, check.mode, &check.masks).unwrap();
    let mut rng = Rng::new(99);
    let r: Vec<ArrayD<f64>> = fwd
        .outputs
        .iter()
        .map(|y| rng.array(y.shape(), -1.0, 1.0))
        .collect();
    let d: Vec<OutputGrad<f64>> = r.iter().map(|r| OutputGrad::Value(r.clone())).collect();
    let grads = backward(&fwd.tape, &d).unwrap();
    let outputs = fwd.outputs.clone();
    drop(fwd);
    let h = check.h;
    let mut worst = (0.0f64, String::from("nothing checked"));
    let mut record = |name: String, g: &ArrayD<f64>, fd: &ArrayD<f64>| {
        let scale = fd
            .iter()
            .chain(g.iter())
            .fold(0.0f64, |a, v| a.max(v.abs()));
        let diff = g
            .iter()
            .zip(fd.iter())
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        let rel = if scale < 1e-12 { diff } else { diff / scale };
        if rel >= worst.0 {
            worst = (rel, name);
        }
    };
    for name in program.trainable() {
        let base = params.get(name).unwrap().clone();
        let mut fd = ArrayD::zeros(base.raw_dim());
        for i in 0..base.len() {
            let mut p = params.clone();
            let v = p.get_mut(name).unwrap();
            let flat = v.as_slice_mut().unwrap();
            flat[i] = base.as_slice().unwrap()[i] + h;
            let up = objective(&program, &p, inputs, check, &r);
            let flat = p.get_mut(name).unwrap().as_slice_mut().unwrap();
            flat[i] = base.as_slice().unwrap()[i] - h;
            let down = objective(&program, &p, inputs, check, &r);
            fd.as_slice_mut().unwrap()[i] = (up - down) / (2.0 * h);
        }
        record(format!("param {name}"), &grads.params[name], &fd);
    }
    for (k, x) in inputs.iter().enumerate() {
        if check.skip_inputs.contains(&k) {
            continue;
        }
        let x = x.as_standard_layout().into_owned();
        let mut fd = ArrayD::zeros(x.raw_dim());
        for i in 0..x.len() {
            let mut xs = inputs.to_vec();
            xs[k] = x.clone();
            xs[k].as_slice_mut().unwrap()[i] += h;
            let up = objective(&program, &params, &xs, check, &r);
            xs[k].as_slice_mut().unwrap()[i] -= 2.0 * h;
            let down = objective(&program, &params, &xs, check, &r);
            fd.as_slice_mut().unwrap()[i] = (up - down) / (2.0 * h);
        }
        record(format!("input {k}"), &grads.inputs[k], &fd);
    }
    // The f32 path computes the same numbers to single precision.
    let p32 = ParamStore::<f32>::from_model(model);
    let x32: Vec<ArrayD<f32>> = inputs.iter().map(|x| x.mapv(|v| v as f32)).collect();
    let m32: DropoutMasks<f32> = check
        .masks
        .iter()
        .map(|(k, v)| (k.clone(), v.mapv(|x| x as f32)))
        .collect();
    let f32run = forward(&program, &p32, &x32, check.mode, &m32).unwrap();
    for (a, b) in f32run.outputs.iter().zip(&outputs) {
        let scale = b.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b.iter())
            .fold(0.0f64, |m, (x, y)| m.max((f64::from(*x) - y).abs()));
        assert!(
            diff / scale < 1e-4,
            "f32 forward differs from f64 by {:e} relative",
            diff / scale
        );
    }
    let d32: Vec<OutputGrad<f32>> = r
        .iter()
        .map(|r| OutputGrad::Value(r.mapv(|v| v as f32)))
        .collect();
    let g32 = backward(&f32run.tape, &d32).unwrap();
    for (name, g) in &grads.params {
        let a = &g32.params[name];
        let scale = g.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(g.iter())
            .fold(0.0f64, |m, (x, y)| m.max((f64::from(*x) - y).abs()));
        assert!(
            diff / scale < 1e-3,
            "f32 gradient of {name} differs from f64 by {:e} relative",
            diff / scale
        );
    }
    worst
}

/// Asserts the gradient check passes at 1e-6.
#[track_caller]
pub fn assert_grads(model: &Model, inputs: &[ArrayD<f64>], check: &Check) {
    let (err, at) = gradcheck(model, inputs, check);
    assert!(
        err <= 1e-6,
        "gradient check failed: relative error {err:e} at {at}"
    );
}

/// `|a − b| ≤ atol + rtol·|b|` element-wise.
#[track_caller]
pub fn assert_close(a: &ArrayD<f64>, b: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        a.len(),
        b.len(),
        "lengths differ: {:?} vs {}",
        a.shape(),
        b.len()
    );
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= atol + rtol * y.abs(),
            "element {i}: {x} vs expected {y}\n{a:?}"
        );
    }
}

/// Scalars within a tolerance.
#[track_caller]
pub fn assert_near(a: f64, b: f64, tol: f64) {
    assert!(
        (a - b).abs() <= tol,
        "{a} vs expected {b} (tolerance {tol})"
    );
}
