//! Update throughput (parameters per second) of the Adam emulators on 10^6 float32
//! parameters, one tensor; compare with `models/trajectories/bench_torch_adam.py`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use optim::{keras, torch};

const N: usize = 1_000_000;

fn data() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let p: Vec<f32> = (0..N).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
    let g: Vec<f32> = (0..N)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-4)
        .collect();
    (vec![p], vec![g])
}

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam_1e6");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    let (p0, g0) = data();
    let cfg = torch::Config::default_for("Adam").unwrap_or_else(|e| panic!("{e}"));
    let mut opt = torch::Optimizer::<f32>::new(cfg, &[N]);
    let mut p = p0.clone();
    let mut g = g0.clone();
    group.bench_function("torch_f32", |b| {
        b.iter(|| {
            g[0].copy_from_slice(&g0[0]);
            opt.step(black_box(&mut g), black_box(&mut p));
        })
    });
    let cfg = keras::Config::default_for("Adam").unwrap_or_else(|e| panic!("{e}"));
    let mut opt = keras::Optimizer::<f32>::new(cfg, &[N]);
    let mut p = p0.clone();
    group.bench_function("keras_f32", |b| {
        b.iter(|| {
            g[0].copy_from_slice(&g0[0]);
            opt.apply(black_box(&mut g), black_box(&mut p));
        })
    });
    group.finish();
}

criterion_group!(benches, adam);
criterion_main!(benches);
