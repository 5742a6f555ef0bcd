"""Golden PyTorch optimizer trajectories.

Run from this directory: `/work/pyenv/venv/bin/python gen_torch.py`. Imports torch only.
Each case writes torch_<stem>.safetensors: init.<p>, grad.<t>.<p>, param.<t>.<p> (float32)
plus metadata framework, framework_version, optimizer ({"class_name", "defaults"}), steps,
param_order and optionally grad_clip (clip_grad_norm_ / clip_grad_value_ over all
parameters before every step), param_groups (train.json form: [{"params": [names],
<overrides>}]) and scheduler ({"class_name", "config", "interval", "steps_per_epoch"}:
`scheduler.step()` after every optimizer step, or after every `steps_per_epoch`-th one).
"""

import json
import math
import os
import struct

import numpy as np
import torch

import grads as shared


def main():
    torch.manual_seed(0)
    _, torch_cases = shared.cases()
    for stem, cls, kwargs, clip, *rest in torch_cases:
        extras = rest[0] if rest else {}
        init, seq, order = shared.inputs(extras.get("extra_params", False))
        params = [torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n in order]
        groups = extras.get("param_groups")
        if groups is None:
            opt = getattr(torch.optim, cls)(params, foreach=False, **kwargs)
        else:
            by_name = dict(zip(order, params))
            torch_groups = [
                {**{k: v for k, v in g.items() if k != "params"}, "params": [by_name[n] for n in g["params"]]}
                for g in groups
            ]
            opt = getattr(torch.optim, cls)(torch_groups, foreach=False, **kwargs)
        sched_spec = extras.get("scheduler")
        sched = None
        if sched_spec is not None:
            sched = getattr(torch.optim.lr_scheduler, sched_spec["class_name"])(opt, **sched_spec["config"])
        tensors = {f"init.{n}": init[n] for n in order}
        for t, step in enumerate(seq, start=1):
            for n, p in zip(order, params):
                p.grad = torch.from_numpy(step[n].copy())
            if clip is not None:
                if "max_norm" in clip:
                    nt = clip["norm_type"]
                    nt = math.inf if nt == "inf" else float(nt)
                    torch.nn.utils.clip_grad_norm_(params, clip["max_norm"], norm_type=nt, foreach=False)
                else:
                    torch.nn.utils.clip_grad_value_(params, clip["clip_value"], foreach=False)
            opt.step()
            if sched is not None and (
                sched_spec["interval"] == "step" or t % sched_spec["steps_per_epoch"] == 0
            ):
                sched.step()
            for n, p in zip(order, params):
                tensors[f"grad.{t}.{n}"] = step[n]
                tensors[f"param.{t}.{n}"] = p.detach().numpy().astype(np.float32).copy()
        defaults = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opt.defaults.items()}
        meta = {
            "framework": "torch",
            "framework_version": torch.__version__,
            "optimizer": json.dumps({"class_name": cls, "defaults": defaults}),
            "steps": str(len(seq)),
            "param_order": json.dumps(order),
        }
        if clip is not None:
            meta["grad_clip"] = json.dumps(clip)
        if groups is not None:
            meta["param_groups"] = json.dumps(groups)
        if sched_spec is not None:
            meta["scheduler"] = json.dumps(sched_spec)
        written = shared.save_if_changed(tensors, f"torch_{stem}.safetensors", meta)
        print("wrote" if written else "unchanged", stem)


def scheduler_sequences():
    """torch_lr_schedulers.json: each scheduler's learning rate (and cycled momentum) right
    after construction and after each `scheduler.step()`, as the bits of the Python float, so
    tests can check that the emulator rounds exactly like torch's recursive `get_lr`."""
    cases = []
    for opt_cls, opt_kwargs, cls, cfg, steps in shared.scheduler_cases():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = getattr(torch.optim, opt_cls)([p], foreach=False, **opt_kwargs)
        sched = getattr(torch.optim.lr_scheduler, cls)(opt, **cfg)
        lrs, moms = [], []
        for i in range(steps + 1):
            if i > 0:
                opt.step()
                sched.step()
            g = opt.param_groups[0]
            lrs.append(g["lr"])
            moms.append(g["betas"][0] if "betas" in g else g.get("momentum", 0.0))
        bits = lambda xs: [struct.pack(">d", float(x)).hex() for x in xs]
        cases.append({
            "optimizer": {"class_name": opt_cls, "defaults": opt_kwargs},
            "scheduler": {"class_name": cls, "config": cfg},
            "lr": lrs,
            "lr_bits": bits(lrs),
            "momentum_bits": bits(moms),
        })
    text = json.dumps({"framework_version": torch.__version__, "cases": cases}, indent=1) + "\n"
    path = "torch_lr_schedulers.json"
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
        print("wrote", path)
    else:
        print("unchanged", path)


if __name__ == "__main__":
    main()
    scheduler_sequences()
