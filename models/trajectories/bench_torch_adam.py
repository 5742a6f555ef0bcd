"""PyTorch baseline for crates/optim/benches/adam.rs: Adam on 10^6 float32 parameters.

Run: `/work/pyenv/venv/bin/python bench_torch_adam.py`. Prints parameters per second for
foreach=False (the single-tensor path the emulator transcribes) and foreach=True.
"""

import time

import torch

N = 1_000_000
torch.set_num_threads(1)


def bench(foreach, reps=50):
    p = torch.nn.Parameter(torch.randn(N))
    g = torch.randn(N) * 1e-2
    opt = torch.optim.Adam([p], foreach=foreach)
    for _ in range(5):
        p.grad = g.clone()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(reps):
        p.grad = g.clone()
        opt.step()
    dt = (time.perf_counter() - t0) / reps
    return N / dt, dt


for fe in (False, True):
    rate, dt = bench(fe)
    print(f"torch {torch.__version__} Adam foreach={fe} threads=1: {dt * 1e3:.2f} ms/step, {rate:.3e} params/s")
