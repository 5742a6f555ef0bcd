"""Record what real PyTorch computes for a model: `reference.safetensors` of a torch bundle.

    from torch_reference import write_torch_reference
    write_torch_reference(model, optimizer, loss_fn, "out/torch", x, y)   # after export_torch_bundle

`model`, `optimizer`, `loss_fn` are the objects the bundle was exported from
(the optimizer must not have been stepped); `x`, `y` are the bundle's
inputs.safetensors `x`, `y` (all rows).  Everything runs on deep copies: the
model, its RNG and the optimizer are left untouched.

What is written (all floats float32; more in the file's `description`
metadata and the fixture READMEs):

    forward.inference      model.eval()(x[:32])                       no_grad
    forward.training       model.train()(x[:32]), every Dropout p = 0  no_grad
    bn.<module>.running_mean, bn.<module>.running_var
                           running statistics after that one training forward
    loss                   loss_fn(model.train()(x[:32]), y[:32]) at the initial weights
    grad.<param>           autograd gradient of that loss, state_dict names
    train.index            int64 (steps, batch): rows of x/y used at each step
    train.loss             (steps,) loss of each step, before its update
    train.param.<t>.<param>  parameters after t optimizer steps
    train.bn.<steps>.<module>.running_mean|running_var   after the run

The training run uses a new optimizer of the same class, param groups and
hyper-parameters, with `foreach=False` (the single-tensor code path):
`opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()`.
"""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path

import numpy as np
import torch

try:
    from .bundle_io import canonicalize_safetensors
except ImportError:
    from bundle_io import canonicalize_safetensors

FORWARD_ROWS = 32
TRAIN_BATCH = 12
TRAIN_STEPS = 20
RECORD_STEPS = (0, 1, 2, 5, 10, 20)


def train_index(n_rows: int, batch: int = TRAIN_BATCH, steps: int = TRAIN_STEPS) -> np.ndarray:
    """int64 (steps, batch): step t uses rows (t*batch + i) mod n_rows, i < batch."""
    return (np.arange(steps * batch, dtype=np.int64) % n_rows).reshape(steps, batch)


def disable_dropout(model) -> list[str]:
    """Set p = 0 on every dropout module (in place); returns their names."""
    names = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
            names.append(name)
        elif isinstance(module, torch.nn.RNNBase) and module.dropout:
            raise NotImplementedError(f"{name}: RNN dropout {module.dropout} is not disabled")
    return names


def optimizer_like(optimizer, model, new_model, foreach=False):
    """A fresh optimizer of optimizer's class over new_model's parameters: same groups and hyper-parameters."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    new_params = dict(new_model.named_parameters())
    accepted = inspect.signature(type(optimizer).__init__).parameters
    groups = []
    for group in optimizer.param_groups:
        g = {k: v for k, v in group.items() if k != "params" and k in accepted}
        g["params"] = [new_params[by_id[id(p)]] for p in group["params"]]
        if "foreach" in accepted:
            g["foreach"] = foreach
        groups.append(g)
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    if "foreach" in accepted:
        defaults["foreach"] = foreach
    return type(optimizer)(groups, **defaults)


def _bn_modules(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _bn_stats(model, prefix: str) -> dict:
    out = {}
    for name, m in _bn_modules(model):
        out[f"{prefix}{name}.running_mean"] = m.running_mean.detach().clone()
        out[f"{prefix}{name}.running_var"] = m.running_var.detach().clone()
    return out


def _canonical(t):
    """A copy with the default (row-major) strides.

    A tensor made by transposing NHWC data with one channel, e.g.
    torch.from_numpy(a.transpose(0, 3, 1, 2)), has strides (HW, 1, W, 1): it is
    contiguous in both formats and torch runs Conv2d on its channels_last path,
    which rounds differently (~1e-6) from what the same values loaded from
    inputs.safetensors give.  The reference uses the loaded form.
    """
    if isinstance(t, dict):
        return {k: _canonical(v) for k, v in t.items()}
    return t.clone(memory_format=torch.contiguous_format)


def _call(model, x):
    return model(**x) if isinstance(x, dict) else model(x)


def _rows(x, index):
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


def compute_torch_reference(model, optimizer, loss_fn, x, y, steps=TRAIN_STEPS, batch=TRAIN_BATCH, record_steps=RECORD_STEPS):
    """The reference tensors (dict name -> tensor) and a description dict."""
    if any(len(state) for state in optimizer.state.values()):
        raise ValueError("the optimizer has state: pass the optimizer before any step")
    rng = torch.get_rng_state()
    x, y = _canonical(x), _canonical(y)
    net = copy.deepcopy(model)
    dropout = disable_dropout(net)
    initial = copy.deepcopy(net.state_dict())
    out: dict[str, torch.Tensor] = {}
    n_rows = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    xb, yb = _rows(x, slice(0, FORWARD_ROWS)), y[:FORWARD_ROWS]
    try:
        with torch.no_grad():
            out["forward.inference"] = _call(net.eval(), xb).detach().clone()
            out["forward.training"] = _call(net.train(), xb).detach().clone()
        out.update(_bn_stats(net, "bn."))
        net.load_state_dict(initial)

        net.train()
        net.zero_grad(set_to_none=True)
        loss = loss_fn(_call(net, xb), yb)
        loss.backward()
        out["loss"] = loss.detach().clone()
        for name, p in net.named_parameters():
            if p.requires_grad:
                if p.grad is None:
                    raise ValueError(f"no gradient for {name}")
                out[f"grad.{name}"] = p.grad.detach().clone()
        net.zero_grad(set_to_none=True)
        net.load_state_dict(initial)

        opt = optimizer_like(optimizer, model, net)
        index = train_index(n_rows, batch, steps)
        out["train.index"] = torch.from_numpy(index)
        losses = []
        params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        for t in range(steps + 1):
            if t in record_steps:
                for name, p in params:
                    out[f"train.param.{t}.{name}"] = p.detach().clone()
            if t == steps:
                break
            rows = torch.from_numpy(index[t])
            opt.zero_grad()
            loss = loss_fn(_call(net, _rows(x, rows)), y[rows])
            loss.backward()
            opt.step()
            losses.append(loss.detach().clone())
        out["train.loss"] = torch.stack(losses)
        out.update(_bn_stats(net, f"train.bn.{steps}."))
    finally:
        torch.set_rng_state(rng)

    for k, v in out.items():
        if v.is_floating_point():
            out[k] = v.to(torch.float32)
        out[k] = out[k].contiguous()

    try:  # the same JSON as train.json
        from .torch_bundle import loss_json, optimizer_json
    except ImportError:
        from torch_bundle import loss_json, optimizer_json

    opt_json, groups_json = optimizer_json(optimizer, model)
    description = {
        "what": "what real PyTorch computes for this bundle's model at the state_dict.safetensors weights",
        "framework": f"torch {torch.__version__}, CPU, float32",
        "batch": f"x[0:{FORWARD_ROWS}], y[0:{FORWARD_ROWS}] of inputs.safetensors",
        "inputs": "x and y with row-major strides, as loaded from inputs.safetensors (a (N,1,H,W) tensor made by "
        "transposing NHWC data would send Conv2d down its channels_last path, ~1e-6 different)",
        "dropout": "disabled by setting p = 0 on every nn.Dropout* module"
        + ("; modules: " + ", ".join(dropout) if dropout else "; the model has no dropout module"),
        "forward.inference": "model.eval()(x) under no_grad",
        "forward.training": "model.train()(x) under no_grad with dropout disabled (BatchNorm normalizes with batch mean "
        "and biased batch variance and updates its running statistics)",
        "bn": "bn.<module>.running_mean|running_var: running statistics after that one training forward from the "
        "initial ones: running = (1-momentum)*running + momentum*batch, batch variance UNBIASED (n-1)",
        "loss": "loss_fn(model.train()(x), y) with the bundle's loss module (train.json loss), dropout disabled; "
        "optimizer weight_decay is not part of the loss (it is applied by the optimizer in the training run)",
        "loss_fn": loss_json(loss_fn),
        "grad": "grad.<name> = autograd gradient of that loss for every parameter with requires_grad, "
        "names = state_dict keys (model.named_parameters())",
        "train": {
            "steps": steps,
            "batch_size": batch,
            "rows": f"step t (0-based) uses rows train.index[t] = (t*{batch} + i) mod {n_rows} of inputs.safetensors x/y",
            "shuffle": False,
            "procedure": "fresh optimizer of the same class with the bundle's param groups and hyper-parameters "
            "and foreach=False (single-tensor path); per step, model.train() with dropout disabled: "
            "opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step(). No grad clipping, "
            "no scheduler. BatchNorm running statistics updated every step",
            "train.loss": "loss of step t at the parameters before its update",
            "recorded_steps": [t for t in record_steps if t <= steps],
            "train.param.<t>": "parameters after t optimizer steps (t=0: initial)",
            f"train.bn.{steps}": "BatchNorm running statistics after the last step" if _bn_modules(net) else "none (no BatchNorm)",
            "optimizer": opt_json,
            "param_groups": groups_json,
            "foreach": False,
        },
        "dtypes": "float tensors float32; train.index int64",
    }
    return out, description


def write_torch_reference(model, optimizer, loss_fn, out_dir, x, y, **kwargs) -> Path:
    """Compute the reference and write <out_dir>/reference.safetensors."""
    from safetensors.torch import save_file

    tensors, description = compute_torch_reference(model, optimizer, loss_fn, x, y, **kwargs)
    metadata = {
        "framework": "torch",
        "framework_version": torch.__version__,
        "description": json.dumps(description, sort_keys=True),
    }
    path = Path(out_dir) / "reference.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    canonicalize_safetensors(path)
    return path
