"""Baselines for the engine's criterion benchmarks (crates/engine/benches/engine.rs).

Measures, on this machine, with `torch.set_num_threads(2)`:
  1. the seed MLP (64 -> 128 -> 10, batch 32) training step: forward + CrossEntropyLoss +
     backward + Adam step, and the same without the optimizer step;
  2. a small CNN (two 3x3 conv + BN + ReLU + 2x2 max pool, dense; 28x28x1, batch 64) training
     step, with and without the Adam step;
  3. numpy f32 GEMM 512^3 in GFLOP/s, in a subprocess with OPENBLAS_CORETYPE and
     OPENBLAS_L2_SIZE unset (see the environment notes: they slow a current OpenBLAS), and the
     BLAS kernel threadpoolctl reports for it;
  4. torchvision mobilenet_v2(width_mult=0.35), random weights (seed 0), eval mode, 32x32,
     batch 8, forward: PyTorch eager and ONNX Runtime (2 intra-op threads) on its TorchScript
     ONNX export (opset 17, constant folding), written to mobilenet_v2_035.onnx here.

Every figure is the median over `--repeats` timed runs (each the mean over as many calls as fit
in 0.2 s) after a 0.3 s warm-up; the load average (`uptime`) is recorded before and after.
Writes baseline.json next to this file.

    /work/pyenv/venv/bin/python models/bench/bench_torch.py [--repeats 7] [--only gemm]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONNX_PATH = HERE / "mobilenet_v2_035.onnx"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def timeit(fn, repeats: int, target_s: float = 0.2) -> dict:
    """Median seconds per call over `repeats` runs, each calling `fn` until `target_s` passed."""
    t_end = time.perf_counter() + 0.3
    while time.perf_counter() < t_end:  # warm-up
        fn()
    runs, calls = [], []
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= target_s:
                break
        runs.append(dt / n)
        calls.append(n)
    return {
        "median_s": statistics.median(runs),
        "min_s": min(runs),
        "max_s": max(runs),
        "calls_per_repeat": calls,
        "repeats": repeats,
    }


def gemm_child(repeats: int) -> None:
    """Runs in a subprocess with the OpenBLAS overrides unset; prints one JSON line."""
    import numpy as np
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512), dtype=np.float32)
    b = rng.standard_normal((512, 512), dtype=np.float32)
    out = np.empty((512, 512), dtype=np.float32)
    t = timeit(lambda: np.matmul(a, b, out=out), repeats, target_s=0.3)
    info = [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for d in threadpool_info()
    ]
    t["gflops"] = 2 * 512**3 / t["median_s"] / 1e9
    t["numpy"] = np.__version__
    t["blas"] = info
    t["env_OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    t["env_OPENBLAS_L2_SIZE"] = os.environ.get("OPENBLAS_L2_SIZE")
    print(json.dumps(t))


def bench_gemm(repeats: int) -> dict:
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    r = subprocess.run(
        [sys.executable, __file__, "--gemm-child", "--repeats", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["note"] = "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for this subprocess only"
    return res


def train_step_fns(model, loss_fn, x, y):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def with_adam():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def without_adam():
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()

    return with_adam, without_adam


def bench_mlp(repeats: int) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.rand(32, 64) - 0.5
    y = torch.arange(32) % 10
    step, grads = train_step_fns(model, nn.CrossEntropyLoss(), x, y)
    return {
        "what": "Linear(64,128)+ReLU+Linear(128,10), CrossEntropyLoss, batch 32",
        "train_step_adam": timeit(step, repeats),
        "forward_backward": timeit(grads, repeats),
    }


def small_cnn():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def bench_cnn(repeats: int) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = small_cnn().train()
    x = torch.rand(64, 1, 28, 28) - 0.5
    y = torch.arange(64) % 10
    step, grads = train_step_fns(model, nn.CrossEntropyLoss(), x, y)
    return {
        "what": "Conv(1,8,3,p1)+BN+ReLU+MaxPool2, Conv(8,16,3,p1)+BN+ReLU+MaxPool2, Linear(784,10); "
        "CrossEntropyLoss; NCHW 64x1x28x28; BN training mode",
        "train_step_adam": timeit(step, repeats),
        "forward_backward": timeit(grads, repeats),
    }


def bench_mobilenet(repeats: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=0.35).eval()
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        eager = timeit(lambda: model(x), repeats)
        ref = model(x).numpy()
    torch.onnx.export(
        model,
        (x,),
        str(ONNX_PATH),
        dynamo=False,
        opset_version=17,
        do_constant_folding=True,
        input_names=["input"],
        output_names=["output"],
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(ONNX_PATH), so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    got = sess.run(None, {"input": xn})[0]
    ort_t = timeit(lambda: sess.run(None, {"input": xn}), repeats)
    params = sum(p.numel() for p in model.parameters())
    return {
        "what": "torchvision mobilenet_v2(width_mult=0.35), random init (torch.manual_seed(0)), "
        "eval mode, input 8x3x32x32, forward only",
        "torchvision": torchvision.__version__,
        "params": params,
        "onnx_file": ONNX_PATH.name,
        "onnx_bytes": ONNX_PATH.stat().st_size,
        "onnx_export": "torch.onnx.export(dynamo=False), opset 17, do_constant_folding=True",
        "ort_vs_torch_max_abs": float(np.max(np.abs(got - ref))),
        "torch_eager": eager,
        "onnxruntime": ort_t,
        "onnxruntime_version": ort.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--gemm-child", action="store_true")
    ap.add_argument("--only", choices=["mlp", "cnn", "gemm", "mobilenet"])
    ap.add_argument("--out", default=str(HERE / "baseline.json"))
    args = ap.parse_args()
    if args.gemm_child:
        gemm_child(args.repeats)
        return

    import torch

    torch.set_num_threads(2)
    res = {
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": next(
                (
                    line.split(":", 1)[1].strip()
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")
                ),
                platform.processor(),
            ),
            "uptime_before": uptime(),
            "loadavg_before": loadavg(),
        },
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    todo = {
        "mlp": bench_mlp,
        "cnn": bench_cnn,
        "gemm": bench_gemm,
        "mobilenet": bench_mobilenet,
    }
    for name, fn in todo.items():
        if args.only and name != args.only:
            continue
        res[name] = fn(args.repeats)
        print(name, json.dumps(res[name])[:300], file=sys.stderr)
    res["machine"]["uptime_after"] = uptime()
    res["machine"]["loadavg_after"] = loadavg()
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
