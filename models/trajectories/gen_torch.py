"""Golden PyTorch optimizer trajectories.

Run from this directory: `/work/pyenv/venv/bin/python gen_torch.py`. Imports torch only.
Each case writes torch_<stem>.safetensors: init.<p>, grad.<t>.<p>, param.<t>.<p> (float32)
plus metadata framework, framework_version, optimizer ({"class_name", "defaults"}), steps,
param_order and optionally grad_clip (clip_grad_norm_ / clip_grad_value_ over all
parameters before every step).
"""

import json
import math

import numpy as np
import torch
from safetensors.numpy import save_file

import grads as shared


def main():
    torch.manual_seed(0)
    init = shared.initial_params()
    seq = shared.gradient_sequence()
    order = list(shared.PARAMS)
    _, torch_cases = shared.cases()
    for stem, cls, kwargs, clip in torch_cases:
        params = [torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n in order]
        opt = getattr(torch.optim, cls)(params, foreach=False, **kwargs)
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
        save_file(tensors, f"torch_{stem}.safetensors", metadata=meta)
        print("wrote", stem)


if __name__ == "__main__":
    main()
