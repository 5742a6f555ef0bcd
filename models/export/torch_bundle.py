"""Write a PyTorch model and its training setup as a parallax *torch bundle*.

A torch bundle is a directory with:

    model.onnx             torch.onnx.export of model.train() with
                           TrainingMode.TRAINING, dynamo=False, opset 17,
                           export_params=True, do_constant_folding=False,
                           input names ["x"] / output names ["y"] (or the
                           given ones), dim 0 of each named as "batch".
                           Initializer names are the state_dict keys.
    model.eval.onnx        (eval_twin=True) the same model exported with
                           model.eval(), TrainingMode.EVAL and the default
                           constant folding (BatchNorm folded, Dropout gone)
    state_dict.safetensors the full state_dict (parameters and buffers,
                           including running_mean/var and
                           num_batches_tracked), contiguous CPU tensors;
                           metadata framework="torch", framework_version
    train.json             optimizer, param_groups, loss, grad_clip,
                           scheduler, batch_size, epochs, shuffle, drop_last,
                           framework_version, [spatial_dropout] (schema below)
    inputs.safetensors     (if x is given) `x` (or `x.<input name>`), `y`
                           (or `y.<name>`); metadata framework="torch",
                           framework_version
    expected.safetensors   (optional, `write_expected`) tensor `output` (or
                           `output.<i>`) = model.eval()(x); same metadata

train.json:

    {"optimizer": {"class_name": "Adam", "defaults": {...opt.defaults...}},
     "param_groups": null | [{"params": [state_dict names], <keys that differ
                              from defaults>}, ...],
     "loss": {"class_name": "CrossEntropyLoss", "config": {...}},
     "grad_clip": null | {"max_norm": f, "norm_type": f} | {"clip_value": f},
     "scheduler": null | {"class_name", "config", "interval": "epoch"|"step"},
     "batch_size", "epochs", "shuffle", "drop_last", "framework_version",
     "spatial_dropout": [{"module": "blocks.1", "class_name": "Dropout2d",
                          "p": 0.2, "node": "/blocks/blocks.1/Dropout"}, ...]}

`spatial_dropout` is present only when the model has `nn.Dropout1d`,
`Dropout2d` or `Dropout3d` modules.  torch cannot export those in training
mode, so model.onnx holds each one as a no-op: an ONNX `Dropout` node with
`ratio` = p and `training_mode` = false, named by torch after the module's
scope (the record's `node`).  Each record names the module (its
state_dict-style path), its class, its `p` and that node, in the order the
forward pass calls them; the importer turns that node back into a
channel-wise (spatial) dropout of rate p.  In model.eval.onnx they are
absent, as every dropout is.

JSON conversion: tuples become lists, tensors lists (0-d tensors numbers),
None null, non-finite floats the strings "inf", "-inf", "nan", callables are
dropped, other objects become their str().  `param_groups` is null when there
is one group equal to the defaults holding every model parameter.  A group's `initial_lr` (set by an LR
scheduler) is reported as its `lr`, and scheduler bookkeeping keys
(initial_lr, max_lr, min_lr, max_momentum, base_momentum) are not listed.
Loss and scheduler configs are the constructor arguments that can be read
back from the object's attributes (deprecated `size_average`/`reduce` are
folded into `reduction` by torch; `last_epoch`/`verbose` are skipped); an
argument that cannot be recovered is left out with a warning on stderr.

Training-mode export runs one forward pass, which in torch updates
BatchNorm running statistics and `num_batches_tracked` and consumes RNG for
Dropout.  The exporter snapshots the state_dict and the RNG state before the
export and restores both afterwards, and writes the pre-export buffer values
into model.onnx's initializers, so the bundle holds the model exactly as it
was handed in.

Python API:

    from torch_bundle import export_torch_bundle, write_expected
    export_torch_bundle(model, opt, loss_fn, "out/torch", example_input=x[:2],
                        x=x, y=y, batch_size=32, epochs=5)
    write_expected(model, "out/torch", x)

CLI:

    python torch_bundle.py path/to/script.py:build OUT_DIR [--expected]

`build()` is called with no arguments and returns a dict of keyword
arguments for `export_torch_bundle` (model, optimizer, loss_fn,
example_input, and optionally x, y, grad_clip, scheduler, ...).
`--expected` also writes expected.safetensors (needs `x`).
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from collections import Counter
from pathlib import Path

import torch

try:
    from .bundle_io import canonicalize_safetensors
except ImportError:
    from bundle_io import canonicalize_safetensors

import warnings
from contextlib import contextmanager

# Warnings torch prints for every export of a bundle that are harmless here: the
# exporter's own deprecation notice, the BatchNorm buffer update that the
# exporter undoes (it restores the state_dict after the export), the batch-size
# caveat of exporting RNNs (the batch axis is dynamic), and tracer notes about
# Python values baked into the trace (the bundle fixes the input shapes anyway).
# Anything else is shown.
_HARMLESS_WARNINGS = [
    (DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export"),
    (UserWarning, r".*num_batches_tracked"),
    (UserWarning, r"Exporting a model to ONNX with a batch_size other than 1"),
    (UserWarning, r".*_jit_pass_onnx_remove_inplace_ops_for_onnx"),
    (UserWarning, r"Constant folding - Only steps=1 can be constant folded"),
]


@contextmanager
def _quiet_export():
    with warnings.catch_warnings():
        for category, message in _HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        try:
            from torch.jit import TracerWarning

            warnings.filterwarnings("ignore", category=TracerWarning)
        except ImportError:  # pragma: no cover - every supported torch has it
            pass
        yield


def _wrote(path) -> None:
    print(f"wrote {path}")


OPSET = 17

# Keys an LR scheduler adds to the optimizer's param groups.
_SCHEDULER_GROUP_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
_SKIPPED_ARGS = {"self", "optimizer", "last_epoch", "verbose", "size_average", "reduce"}


def _metadata() -> dict:
    return {"framework": "torch", "framework_version": torch.__version__}


def to_json(value):
    """Convert a Python/torch value into something json.dumps accepts."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return to_json(value.item() if value.dim() == 0 else value.tolist())
    if isinstance(value, Counter):
        return to_json(sorted(value.elements()))
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value if not callable(v)]
    if isinstance(value, (set, frozenset)):
        return to_json(sorted(value))
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items() if not callable(v)}
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return to_json(value.item())
    return str(value)


def _drop_callables(d: dict) -> dict:
    return {k: to_json(v) for k, v in d.items() if not callable(v)}


def _param_names(model) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        names.setdefault(id(tensor), name)
    return names


def optimizer_json(optimizer, model) -> tuple[dict, list | None]:
    defaults = _drop_callables(optimizer.defaults)
    names = _param_names(model)
    groups = []
    for group in optimizer.param_groups:
        values = dict(group)
        if "initial_lr" in values:
            values["lr"] = values["initial_lr"]
        params = []
        for p in values.pop("params"):
            if id(p) not in names:
                raise ValueError("the optimizer holds a tensor that is not in model.state_dict()")
            params.append(names[id(p)])
        diff = {}
        for key, v in values.items():
            if key in _SCHEDULER_GROUP_KEYS or callable(v):
                continue
            v = to_json(v)
            if key not in defaults or defaults[key] != v:
                diff[key] = v
        groups.append({"params": params, **diff})
    # null only when one group with the defaults holds every parameter of the model: a
    # group that leaves some out (frozen layers, a fine-tuned head) must be listed, or the
    # parameters it does not hold would read as trained.
    every = {n for n, _ in model.named_parameters()}
    if len(groups) == 1 and len(groups[0]) == 1 and set(groups[0]["params"]) == every:
        return {"class_name": type(optimizer).__name__, "defaults": defaults}, None
    return {"class_name": type(optimizer).__name__, "defaults": defaults}, groups


def _constructor_config(obj, special=None) -> dict:
    """Constructor arguments of obj, read back from its attributes."""
    special = special or {}
    config = {}
    try:
        params = inspect.signature(type(obj).__init__).parameters
    except (TypeError, ValueError):
        return config
    for name, param in params.items():
        if name in _SKIPPED_ARGS or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in special:
            value = special[name](obj)
        elif hasattr(obj, name):
            value = getattr(obj, name)
        elif hasattr(obj, "_" + name):
            value = getattr(obj, "_" + name)
        else:
            print(
                f"warning: {type(obj).__name__}: constructor argument {name!r} "
                "cannot be read back; left out of train.json",
                file=sys.stderr,
            )
            continue
        if callable(value) and not isinstance(value, torch.Tensor):
            continue
        config[name] = value
    return config


def loss_json(loss_fn) -> dict:
    if not isinstance(loss_fn, torch.nn.Module):
        return {"class_name": getattr(loss_fn, "__name__", type(loss_fn).__name__), "config": {}}
    return {"class_name": type(loss_fn).__name__, "config": to_json(_constructor_config(loss_fn))}


def _one_or_list(values):
    values = list(values)
    return values[0] if len(set(values)) == 1 else values


def _group_values(key):
    return lambda sched: _one_or_list(g[key] for g in sched.optimizer.param_groups)


_SCHEDULER_SPECIAL = {
    "ReduceLROnPlateau": {
        "min_lr": lambda s: _one_or_list(s.min_lrs),
    },
    "OneCycleLR": {
        "max_lr": _group_values("max_lr"),
        "div_factor": lambda s: s.optimizer.param_groups[0]["max_lr"] / s.optimizer.param_groups[0]["initial_lr"],
        "final_div_factor": lambda s: s.optimizer.param_groups[0]["initial_lr"] / s.optimizer.param_groups[0]["min_lr"],
        "base_momentum": _group_values("base_momentum"),
        "max_momentum": _group_values("max_momentum"),
        "pct_start": lambda s: (s._schedule_phases[0]["end_step"] + 1) / s.total_steps,
        "anneal_strategy": lambda s: getattr(s, "_anneal_func_type", None),
        "three_phase": lambda s: len(s._schedule_phases) == 3,
        "epochs": lambda s: None,
        "steps_per_epoch": lambda s: None,
    },
    "CyclicLR": {
        "base_lr": lambda s: _one_or_list(s.base_lrs),
        "max_lr": lambda s: _one_or_list(s.max_lrs),
        "step_size_up": lambda s: s.total_size * s.step_ratio,
        "step_size_down": lambda s: s.total_size * (1 - s.step_ratio),
        "base_momentum": lambda s: _one_or_list(getattr(s, "base_momentums", [0.8])),
        "max_momentum": lambda s: _one_or_list(getattr(s, "max_momentums", [0.9])),
    },
}


def scheduler_json(scheduler, interval="epoch") -> dict | None:
    if scheduler is None:
        return None
    if interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', not {interval!r}")
    out = _scheduler_entry(scheduler)
    out["interval"] = interval
    return out


def _scheduler_entry(scheduler) -> dict:
    name = type(scheduler).__name__
    config = _constructor_config(scheduler, _SCHEDULER_SPECIAL.get(name))
    if "schedulers" in config:  # SequentialLR, ChainedScheduler
        config["schedulers"] = [_scheduler_entry(s) for s in config["schedulers"]]
    return {"class_name": name, "config": to_json(config)}


def grad_clip_json(grad_clip) -> dict | None:
    if grad_clip is None:
        return None
    if "max_norm" in grad_clip and "clip_value" not in grad_clip:
        return {"max_norm": float(grad_clip["max_norm"]), "norm_type": to_json(float(grad_clip.get("norm_type", 2.0)))}
    if set(grad_clip) == {"clip_value"}:
        return {"clip_value": float(grad_clip["clip_value"])}
    raise ValueError("grad_clip must be None, {'max_norm', 'norm_type'} or {'clip_value'}")


def _contiguous(value):
    """A row-major copy of a tensor (or of each tensor in a tuple/list/dict); other values as is.

    An input made with `torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)` is channels-last in
    memory, and a model that calls `.view` on it fails inside the exporter.
    """
    if isinstance(value, torch.Tensor):
        # clone(contiguous_format), not .contiguous(): a permuted (N, 1, H, W) view counts as
        # contiguous (size-1 axes are ignored) yet keeps channels-last strides, which convolutions
        # propagate to their outputs
        return value.detach().clone(memory_format=torch.contiguous_format)
    if isinstance(value, tuple):
        return tuple(_contiguous(v) for v in value)
    if isinstance(value, list):
        return [_contiguous(v) for v in value]
    if isinstance(value, dict):
        return {k: _contiguous(v) for k, v in value.items()}
    return value


_SPATIAL_DROPOUT = (torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d)


class _SpatialDropoutNoOp(torch.autograd.Function):
    """Identity in torch; in ONNX a `Dropout(x, ratio=p, training_mode=false)` node."""

    @staticmethod
    def forward(ctx, x, p):
        return x.clone()

    @staticmethod
    def symbolic(g, x, p):
        ratio = g.op("Constant", value_t=torch.tensor(p, dtype=torch.float32))
        training = g.op("Constant", value_t=torch.tensor(False))
        return g.op("Dropout", x, ratio, training)


@contextmanager
def _spatial_dropout_as_noop(model):
    """Swap every Dropout1d/2d/3d's forward for the no-op; yields the calls in forward order."""
    calls: list[dict] = []
    patched = []
    for name, module in model.named_modules():
        if isinstance(module, _SPATIAL_DROPOUT) and "forward" not in vars(module):

            def forward(x, _name=name, _module=module):
                calls.append({"module": _name, "class_name": type(_module).__name__, "p": float(_module.p)})
                return _SpatialDropoutNoOp.apply(x, float(_module.p))

            module.forward = forward
            patched.append(module)
    try:
        yield calls
    finally:
        for module in patched:
            del module.forward


def _noop_nodes(onnx_path: Path) -> list[str]:
    """Names of the Dropout nodes whose training_mode is the constant false, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    constants = {}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attr.t)
    out = []
    for node in graph.node:
        if node.op_type == "Dropout" and len(node.input) >= 3:
            flag = constants.get(node.input[2])
            if flag is not None and flag.size == 1 and not bool(flag.reshape(-1)[0]):
                out.append(node.name)
    return out


def _named_tensors(prefix: str, value) -> dict:
    if isinstance(value, dict):
        items = [(f"{prefix}.{k}", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"{prefix}.{i}", v) for i, v in enumerate(value)]
    else:
        items = [(prefix, value)]
    return {k: torch.as_tensor(v).detach().cpu().contiguous().clone() for k, v in items}


def _save(tensors: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=_metadata())
    canonicalize_safetensors(path)


def _restore_initializers(onnx_path: Path, state: dict) -> list[str]:
    """Write the given state_dict values over same-named ONNX initializers."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    patched = []
    for i, init in enumerate(proto.graph.initializer):
        if init.name not in state:
            continue
        want = state[init.name].cpu().numpy()
        have = numpy_helper.to_array(init)
        if have.shape != want.shape or not np.array_equal(have, want):
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(want.astype(have.dtype), init.name))
            patched.append(init.name)
    if patched:
        onnx.save(proto, str(onnx_path))
    return patched


def export_onnx(model, example_input, path, training=True, input_names=None, output_names=None, spatial_dropout=None) -> list[str]:
    """Export model to ONNX without changing its state; returns the patched initializers.

    In training mode, Dropout1d/2d/3d modules are exported as no-op `Dropout` nodes and, if
    `spatial_dropout` is a list, one record per call is appended to it (see train.json).
    """
    args = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    args = _contiguous(args)
    if input_names is None:
        if len(args) != 1:
            raise ValueError("give input_names for a model with several inputs")
        input_names = ["x"]
    output_names = output_names or ["y"]
    dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    was_training = model.training
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    calls: list[dict] = []
    try:
        if training:
            with _quiet_export(), _spatial_dropout_as_noop(model) as calls:
                torch.onnx.export(
                    model.train(),
                    args,
                    str(path),
                    dynamo=False,
                    export_params=True,
                    do_constant_folding=False,
                    training=torch.onnx.TrainingMode.TRAINING,
                    opset_version=OPSET,
                    input_names=list(input_names),
                    output_names=list(output_names),
                    dynamic_axes=dynamic_axes,
                )
        else:
            with _quiet_export():
                torch.onnx.export(
                    model.eval(),
                    args,
                    str(path),
                    dynamo=False,
                    export_params=True,
                    training=torch.onnx.TrainingMode.EVAL,
                    opset_version=OPSET,
                    input_names=list(input_names),
                    output_names=list(output_names),
                    dynamic_axes=dynamic_axes,
                )
    finally:
        model.load_state_dict(snapshot)
        torch.set_rng_state(rng)
        model.train(was_training)
    if not training:
        return []
    if calls:
        nodes = _noop_nodes(Path(path))
        if len(nodes) != len(calls):
            raise RuntimeError(
                f"{path}: {len(calls)} spatial dropout call(s) but {len(nodes)} no-op Dropout node(s) in the export"
            )
        for call, node in zip(calls, nodes):
            leaf = call["module"].rsplit(".", 1)[-1]
            if f"/{leaf}/" not in node and f".{leaf}/" not in node:
                raise RuntimeError(f"{path}: no-op node {node!r} is not in the scope of module {call['module']!r}")
            call["node"] = node
        if spatial_dropout is not None:
            spatial_dropout.extend(calls)
    return _restore_initializers(Path(path), snapshot)


def export_torch_bundle(
    model,
    optimizer,
    loss_fn,
    out_dir,
    example_input,
    x=None,
    y=None,
    grad_clip=None,
    scheduler=None,
    scheduler_interval="epoch",
    batch_size=32,
    epochs=5,
    shuffle=True,
    drop_last=False,
    eval_twin=True,
    input_names=None,
    output_names=None,
) -> Path:
    """Write model.onnx, model.eval.onnx, state_dict.safetensors, train.json, inputs.safetensors."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}

    spatial_dropout: list[dict] = []
    export_onnx(model, example_input, out / "model.onnx", True, input_names, output_names, spatial_dropout)
    _wrote(out / "model.onnx")
    if eval_twin:
        export_onnx(model, example_input, out / "model.eval.onnx", False, input_names, output_names)
        _wrote(out / "model.eval.onnx")
    _save(state, out / "state_dict.safetensors")
    _wrote(out / "state_dict.safetensors")

    opt, groups = optimizer_json(optimizer, model)
    train = {
        "optimizer": opt,
        "param_groups": groups,
        "loss": loss_json(loss_fn),
        "grad_clip": grad_clip_json(grad_clip),
        "scheduler": scheduler_json(scheduler, scheduler_interval),
        "batch_size": batch_size,
        "epochs": epochs,
        "shuffle": shuffle,
        "drop_last": drop_last,
        "framework_version": torch.__version__,
    }
    if spatial_dropout:
        train["spatial_dropout"] = spatial_dropout
    (out / "train.json").write_text(json.dumps(train, indent=2) + "\n")
    _wrote(out / "train.json")

    if x is not None:
        tensors = _named_tensors("x", x)
        if y is not None:
            tensors.update(_named_tensors("y", y))
        _save(tensors, out / "inputs.safetensors")
        _wrote(out / "inputs.safetensors")
    elif y is not None:
        raise ValueError("y given without x")
    return out


def write_expected(model, out_dir, x) -> Path:
    """Write expected.safetensors: `output` = model.eval()(x), in no_grad."""
    was_training = model.training
    x = _contiguous(x)
    try:
        with torch.no_grad():
            if isinstance(x, dict):
                outputs = model.eval()(**x)
            else:
                outputs = model.eval()(x)
    finally:
        model.train(was_training)
    path = Path(out_dir) / "expected.safetensors"
    _save(_named_tensors("output", outputs), path)
    _wrote(path)
    return path


def _load_builder(spec: str):
    import importlib.util

    script, sep, func = spec.rpartition(":")
    if not sep or not script:
        raise SystemExit(f"expected path/to/script.py:function, got {spec!r}")
    module_spec = importlib.util.spec_from_file_location(Path(script).stem, script)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(Path(script).resolve().parent))
    module_spec.loader.exec_module(module)
    return getattr(module, func)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Export a PyTorch model and its training setup as a parallax torch bundle "
        "(model.onnx, model.eval.onnx, state_dict.safetensors, train.json, inputs.safetensors).",
        epilog="build() returns a dict of export_torch_bundle keyword arguments: model, optimizer, "
        "loss_fn, example_input, and optionally x, y, grad_clip, scheduler, scheduler_interval, "
        "batch_size, epochs, shuffle, drop_last, eval_twin, input_names, output_names.",
    )
    parser.add_argument("builder", help="path/to/script.py:function")
    parser.add_argument("out_dir", help="bundle directory to write")
    parser.add_argument("--expected", action="store_true", help="also write expected.safetensors (needs x)")
    args = parser.parse_args(argv)

    kwargs = _load_builder(args.builder)()
    if not isinstance(kwargs, dict):
        raise SystemExit("build() must return a dict of export_torch_bundle arguments")
    out = export_torch_bundle(out_dir=args.out_dir, **kwargs)
    if args.expected:
        if kwargs.get("x") is None:
            raise SystemExit("--expected needs x")
        write_expected(kwargs["model"], out, kwargs["x"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
