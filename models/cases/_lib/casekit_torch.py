"""torch half of the case kit: the faithful port of the case's Keras model, with the case's plants.

    from casekit_torch import generate
    generate(__file__)          # in models/cases/<name>/gen_torch.py

Reads the Keras half's output (`keras/model.keras` with zipfile/h5py through
export/keras_archive.py, `keras/inputs.safetensors`, `keras/expected.safetensors`,
`measured.json`), builds the faithful port, checks that its eval-mode forward
reproduces Keras, then builds the port with every planted difference and
exports it as the torch bundle.  It measures the training of the port and of
the ablations (each difference removed, each difference alone, none), and
writes `measured.json`, `expected.json` and `README.md`.  Imports torch, never
tensorflow/keras.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import casekit_common as ck  # noqa: E402  (puts models/export on sys.path)
from pins import check_pins  # noqa: E402

check_pins(["torch", "onnx", "onnxscript", "numpy", "safetensors", "scikit-learn", "h5py"])

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from keras_archive import KerasArchive  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from torch_bundle import export_torch_bundle, write_expected  # noqa: E402

TOLERANCE = 2e-6  # eval-mode probabilities of the faithful port vs Keras inference


def _tf_same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


# ---------------------------------------------------------------------------
# the port


class Net(nn.Module):
    """The torch port of a Sequential case architecture (modules named as the Keras layers)."""

    def __init__(self, case: dict, active: set):
        super().__init__()
        self.plan = []  # (kind, name, extra) in forward order
        self.outputs_probs = False
        specs, outs = ck.layers_of(case), ck.shapes(case)
        shape = ck.input_shape(case)
        last = len(specs) - 1
        self.descr = []
        for i, (spec, out_shape) in enumerate(zip(specs, outs)):
            k, name = spec["kind"], spec["name"]
            extra = {}
            if k == "dense":
                self.add_module(name, nn.Linear(shape[-1], spec["units"]))
                act = spec["activation"]
                self.descr.append(f"Linear({shape[-1]}, {spec['units']})")
                if act == "gelu":
                    approx = "tanh" if "gelu-approximate" in active else "none"
                    self.add_module(name + "_act", nn.GELU(approximate=approx))
                    extra["act_module"] = name + "_act"
                    self.descr.append("GELU()" if approx == "none" else "GELU(approximate='tanh')")
                elif act in ("relu", "tanh"):
                    extra["act"] = act
                    self.descr.append(act)
                elif i == last and act == "softmax" and "double-softmax" in active:
                    extra["act"] = "softmax"
                    self.outputs_probs = True
                    self.descr.append("softmax (kept in forward)")
                elif i == last and act == "sigmoid" and "bce-clipping" in active:
                    extra["act"] = "sigmoid"
                    self.outputs_probs = True
                    self.descr.append("sigmoid (kept in forward)")
                elif i == last:
                    self.descr[-1] += " (logits)"
            elif k == "leaky_relu":
                slope = 0.01 if "leaky-relu-slope" in active else 0.3
                self.add_module(name, nn.LeakyReLU(slope) if slope != 0.01 else nn.LeakyReLU())
                self.descr.append(f"LeakyReLU({slope})" if slope != 0.01 else "LeakyReLU()")
            elif k == "relu":
                self.descr.append("relu")
            elif k == "bn":
                momentum = 0.99 if "bn-momentum-convention" in active else 0.01
                kw = {"momentum": momentum}
                if "bn-epsilon" not in active:
                    kw["eps"] = 1e-3
                cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
                self.add_module(name, cls(shape[-1], **kw))
                self.descr.append(f"{cls.__name__}({shape[-1]}, " + ", ".join(f"{a}={b}" for a, b in kw.items()) + ")")
            elif k == "conv":
                kk, s = spec["kernel"], spec["strides"]
                pads = (0, 0)
                if spec["padding"] == "same":
                    pads = _tf_same_pads(shape[0], kk, s)
                if pads[0] == pads[1]:
                    padding = pads[0]
                elif "same-padding-asymmetric" in active:
                    padding = kk // 2
                else:
                    padding = 0
                    extra["pad"] = (pads[0], pads[1], pads[0], pads[1])  # F.pad order: left, right, top, bottom
                    self.descr.append(f"F.pad(x, {extra['pad']})")
                self.add_module(name, nn.Conv2d(shape[-1], spec["filters"], kk, stride=s, padding=padding))
                self.descr.append(f"Conv2d({shape[-1]}, {spec['filters']}, {kk}, stride={s}, padding={padding})")
            elif k == "maxpool":
                self.add_module(name, nn.MaxPool2d(spec["pool"]))
                self.descr.append(f"MaxPool2d({spec['pool']})")
            elif k == "avgpool":
                p, s = spec["pool"], spec["strides"]
                before, after = _tf_same_pads(shape[0], p, s)
                if "pooling-padding" in active:
                    self.add_module(name, nn.AvgPool2d(p, s, padding=p // 2))
                    self.descr.append(f"AvgPool2d({p}, {s}, padding={p // 2})")
                else:
                    assert before == 0 and after >= 1, (before, after)  # ceil_mode reproduces exactly this case
                    self.add_module(name, nn.AvgPool2d(p, s, ceil_mode=True))
                    self.descr.append(f"AvgPool2d({p}, {s}, ceil_mode=True)")
            elif k == "flatten":
                self.add_module(name, nn.Flatten())
                self.descr.append("Flatten()")
                extra["from"] = shape  # (h, w, c) before flattening
            elif k == "dropout":
                self.add_module(name, nn.Dropout(spec["rate"]))
                self.descr.append(f"Dropout({spec['rate']})")
            elif k == "embedding":
                self.add_module(name, nn.Embedding(spec["input_dim"], spec["output_dim"]))
                self.descr.append(f"Embedding({spec['input_dim']}, {spec['output_dim']})")
            elif k == "layernorm":
                kw = {} if "layernorm-eps-axis" in active else {"eps": 1e-3}
                self.add_module(name, nn.LayerNorm(shape[-1], **kw))
                self.descr.append(f"LayerNorm({shape[-1]}" + (", eps=0.001)" if kw else ")"))
            elif k in ("lstm", "gru"):
                cls = nn.LSTM if k == "lstm" else nn.GRU
                self.add_module(name, cls(shape[-1], spec["units"], batch_first=True))
                self.descr.append(f"{cls.__name__}({shape[-1]}, {spec['units']}, batch_first=True) → h_n[-1]")
            else:
                raise ValueError(k)
            self.plan.append((k, name, extra))
            shape = out_shape

    def forward(self, x):
        for k, name, extra in self.plan:
            if k == "relu":
                x = torch.relu(x)
                continue
            if k == "lstm":
                _, (h, _) = self.lstm(x)
                x = h[-1]
                continue
            if k == "gru":
                _, h = self.gru(x)
                x = h[-1]
                continue
            if "pad" in extra:
                x = F.pad(x, extra["pad"])
            x = getattr(self, name)(x)
            act = extra.get("act")
            if act == "relu":
                x = torch.relu(x)
            elif act == "tanh":
                x = torch.tanh(x)
            elif act == "softmax":
                x = torch.softmax(x, dim=1)
            elif act == "sigmoid":
                x = torch.sigmoid(x)
            if "act_module" in extra:
                x = getattr(self, extra["act_module"])(x)
        return x


class BranchNet(nn.Module):
    """The torch port of the `branch` Functional model (as models/functional)."""

    def __init__(self, case: dict, active: set):
        super().__init__()
        f = case["features"]
        out = 1 if case["loss"] == "binary" else case["classes"]
        self.branch_a = nn.Linear(f, 32)
        self.branch_b = nn.Linear(f, 32)
        self.hidden = nn.Linear(32 + f, 16)
        self.probs = nn.Linear(16, out)
        self.final = None
        if case["loss"] == "binary" and "bce-clipping" in active:
            self.final = "sigmoid"
        elif case["loss"] != "binary" and "double-softmax" in active:
            self.final = "softmax"
        self.outputs_probs = self.final is not None
        self.descr = [f"relu(branch_a: Linear({f}, 32)) + tanh(branch_b: Linear({f}, 32))", f"cat([merged, x]) ({32 + f})",
                      f"relu(hidden: Linear({32 + f}, 16))", f"probs: Linear(16, {out})"
                      + (f" → {self.final} (kept in forward)" if self.final else " (logits)")]

    def forward(self, x):
        merged = torch.relu(self.branch_a(x)) + torch.tanh(self.branch_b(x))
        z = self.probs(torch.relu(self.hidden(torch.cat([merged, x], dim=1))))
        if self.final == "softmax":
            z = torch.softmax(z, dim=1)
        elif self.final == "sigmoid":
            z = torch.sigmoid(z)
        return z


def swap_zr(a: np.ndarray) -> np.ndarray:
    """Keras GRU blocks (z, r, h) along the last axis -> torch order (r, z, n)."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def load_keras_weights(model, case: dict, archive: KerasArchive, active: set) -> list[str]:
    """Copy the Keras initial weights into the port; returns what was left at torch's init."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    skipped = []
    with torch.no_grad():
        if case["arch"] == "branch":
            for name in ["branch_a", "branch_b", "hidden", "probs"]:
                if "dense-init" in active:
                    skipped.append(name)
                    continue
                kernel, bias = archive.layer_vars(name)
                getattr(model, name).weight.copy_(t(kernel.T))
                getattr(model, name).bias.copy_(t(bias))
            return skipped
        prev_shape = None
        for (k, name, extra) in model.plan:
            mod = getattr(model, name, None)
            if k == "flatten":
                prev_shape = extra["from"]
                continue
            if k == "dense":
                if "dense-init" in active:
                    skipped.append(name)
                    continue
                kernel, bias = archive.layer_vars(name)
                if prev_shape is not None and len(prev_shape) == 3 and "flatten-order" not in active:
                    h, w, c = prev_shape
                    weight = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
                else:
                    weight = kernel.T
                mod.weight.copy_(t(weight))
                mod.bias.copy_(t(bias))
            elif k == "conv":
                if "conv-init" in active:
                    skipped.append(name)
                    continue
                kernel, bias = archive.layer_vars(name)
                kh, kw, cin, cout = kernel.shape
                if "conv-layout" in active:
                    weight = kernel.reshape(cout, cin, kh, kw)
                else:
                    weight = kernel.transpose(3, 2, 0, 1)
                mod.weight.copy_(t(weight))
                mod.bias.copy_(t(bias))
            elif k == "bn":
                gamma, beta, mean, var = archive.layer_vars(name)
                mod.weight.copy_(t(gamma))
                mod.bias.copy_(t(beta))
                mod.running_mean.copy_(t(mean))
                mod.running_var.copy_(t(var))
                mod.num_batches_tracked.zero_()
            elif k == "layernorm":
                gamma, beta = archive.layer_vars(name)
                mod.weight.copy_(t(gamma))
                mod.bias.copy_(t(beta))
            elif k == "embedding":
                if "embedding-init" in active:
                    skipped.append(name)
                    continue
                (emb,) = archive.layer_vars(name)
                mod.weight.copy_(t(emb))
            elif k == "lstm":
                if "rnn-init" in active:
                    skipped.append(name)
                    continue
                kernel, recurrent, bias = archive.layer_vars(name)  # Keras gates i, f, c, o == torch i, f, g, o
                if "lstm-layout" in active:
                    mod.weight_ih_l0.copy_(t(kernel.reshape(kernel.shape[1], kernel.shape[0])))
                    mod.weight_hh_l0.copy_(t(recurrent.reshape(recurrent.shape[1], recurrent.shape[0])))
                else:
                    mod.weight_ih_l0.copy_(t(kernel.T))
                    mod.weight_hh_l0.copy_(t(recurrent.T))
                mod.bias_ih_l0.copy_(t(bias))
                mod.bias_hh_l0.zero_()
            elif k == "gru":
                if "rnn-init" in active:
                    skipped.append(name)
                    continue
                kernel, recurrent, bias = archive.layer_vars(name)  # bias (2, 3H): input row, recurrent row
                swap = (lambda a: a) if "gru-layout-reset-after" in active else swap_zr
                mod.weight_ih_l0.copy_(t(swap(kernel).T))
                mod.weight_hh_l0.copy_(t(swap(recurrent).T))
                mod.bias_ih_l0.copy_(t(swap(bias[0])))
                mod.bias_hh_l0.copy_(t(swap(bias[1])))
    return skipped


# ---------------------------------------------------------------------------
# training setup


def _fmt(v):
    return repr(v) if not isinstance(v, float) else f"{v:g}"


def torch_optimizer(case: dict, model, active: set):
    """(optimizer, before_step(t) hook or None, description, per-tensor clip value or None, global clip dict or None)."""
    cls, kwargs, full = ck.keras_optimizer(case)
    lr = full["learning_rate"]
    hook = None
    per_tensor = None
    global_clip = None
    if kwargs.get("clipnorm"):
        if "clipnorm-per-tensor-vs-global" in active:
            global_clip = {"max_norm": float(kwargs["clipnorm"]), "norm_type": 2.0}
        else:
            per_tensor = float(kwargs["clipnorm"])

    # parameter groups: the Keras L2 kernel regularizer becomes coupled weight decay on those tensors;
    # a Keras LSTM has one bias, torch two: b_hh stays 0 and is frozen (lr 0), otherwise the effective
    # bias b_ih + b_hh would receive twice the gradient
    decayed_names = [f"{n}.weight" for n in ck.l2_layers(case)]
    frozen_names = ["lstm.bias_hh_l0"] if case["arch"] == "rnn" and case["opts"].get("cell", "lstm") == "lstm" else []
    named = dict(model.named_parameters())
    rest = [p for n, p in named.items() if n not in decayed_names and n not in frozen_names]
    groups, gdesc = [], []
    if decayed_names:
        l2 = case["opts"]["l2"]
        wd = l2 if "l2-regularizer-factor-two" in active else 2 * l2
        groups.append({"params": [named[n] for n in decayed_names], "weight_decay": wd})
        gdesc.append(f"{{'params': [{', '.join(decayed_names)}], 'weight_decay': {wd:g}}}")
    if groups or frozen_names:
        groups.append({"params": rest})
        gdesc.append("{'params': rest}")
    if frozen_names:
        groups.append({"params": [named[n] for n in frozen_names], "lr": 0.0})
        gdesc.append(f"{{'params': [{', '.join(frozen_names)}], 'lr': 0}}")
    if groups:
        params, pdesc = groups, "[" + ", ".join(gdesc) + "]"
    else:
        params, pdesc = model.parameters(), "model.parameters()"

    if cls == "SGD":
        tkw = {} if "sgd-default-lr" in active else {"lr": lr}
        if full["momentum"]:
            tkw["momentum"] = full["momentum"]
        if full["nesterov"]:
            tkw["nesterov"] = True
        tcls = "SGD"
    elif cls in ("Adam", "AdamW"):
        wd = full.get("weight_decay")
        if cls == "AdamW":
            tcls = "AdamW"
            tkw = {"lr": lr}
            if "adamw-default-decay" not in active:
                tkw["weight_decay"] = wd
        elif wd:
            tcls = "Adam" if "adam-weight-decay-coupling" in active else "AdamW"
            tkw = {"lr": lr, "weight_decay": wd}
        else:
            tcls, tkw = "Adam", {"lr": lr}
        if (full["beta_1"], full["beta_2"]) != (0.9, 0.999):
            tkw["betas"] = (full["beta_1"], full["beta_2"])
        if "adam-epsilon-hat" not in active:
            eps_hat, beta_2 = full["epsilon"], full["beta_2"]
            tkw["eps"] = eps_hat

            def hook(opt, t):  # t = 1-based update count: torch eps_t = ε̂ / sqrt(1 - β2^t) is Keras's update
                for g in opt.param_groups:
                    g["eps"] = eps_hat / math.sqrt(1 - beta_2**t)
    elif cls == "RMSprop":
        tcls = "RMSprop"
        if "rmsprop-eps-and-rho" in active:
            tkw = {}
        else:
            # Keras: g / sqrt(v + 1e-7); eps=0 is the catalogue's mapping, 1e-12 only keeps 0/0 out
            tkw = {"lr": lr, "alpha": full["rho"], "eps": 1e-12}
        if full["momentum"]:
            tkw["momentum"] = full["momentum"]
        if full["centered"]:
            tkw["centered"] = True
    elif cls == "Adagrad":
        tcls = "Adagrad"
        tkw = {} if "adagrad-init-eps" in active else {"lr": lr, "initial_accumulator_value": full["initial_accumulator_value"], "eps": 0.0}
    elif cls == "Adadelta":
        tcls = "Adadelta"
        tkw = {} if "adadelta-defaults" in active else {"lr": lr, "rho": full["rho"], "eps": full["epsilon"]}
    elif cls == "Nadam":
        tcls = "NAdam"
        tkw = {} if "nadam-momentum-schedule" in active else {"lr": lr, "eps": full["epsilon"], "momentum_decay": 1.0}
    elif cls == "Adamax":
        tcls = "Adamax"
        tkw = {} if "adamax-eps-placement" in active else {"lr": lr, "eps": full["epsilon"]}
    else:
        raise ValueError(cls)
    opt = getattr(torch.optim, tcls)(params, **tkw)
    desc = f"torch.optim.{tcls}({pdesc}" + "".join(f", {a}={_fmt(b)}" for a, b in tkw.items()) + ")"
    if hook is not None:
        desc += f", eps re-set before each step to {full['epsilon']:g}/√(1−{full['beta_2']:g}^t) (measurement only)"
    if per_tensor is not None:
        desc += f"; clip_grad_norm_([p], {per_tensor:g}) per parameter (measurement only)"
    if global_clip is not None:
        desc += f"; clip_grad_norm_(model.parameters(), {global_clip['max_norm']:g})"
    return opt, hook, desc, per_tensor, global_clip


def torch_loss(case: dict, active: set):
    if case["loss"] == "binary":
        if "bce-clipping" in active:
            return nn.BCELoss(), "nn.BCELoss() on sigmoid outputs"
        return nn.BCEWithLogitsLoss(), "nn.BCEWithLogitsLoss() on logits"
    ls = case["label_smoothing"]
    if ls and "label-smoothing" not in active:
        return nn.CrossEntropyLoss(label_smoothing=ls), f"nn.CrossEntropyLoss(label_smoothing={ls:g})"
    return nn.CrossEntropyLoss(), "nn.CrossEntropyLoss()" + (" on softmax outputs" if "double-softmax" in active else " on logits")


def torch_data(case: dict, data: dict, active: set):
    """(x, y) in the torch layout; x carries the std-ddof plant."""
    x = data["x"]
    if case["arch"] == "cnn":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW, row-major
    x = torch.from_numpy(np.ascontiguousarray(x))
    if "std-ddof" in active:
        raw_all = torch.from_numpy(data["raw_all"])
        mean = raw_all.mean(0)
        std = raw_all.std(0)  # torch default: correction=1
        std[std == 0] = 1
        x = ((torch.from_numpy(data["raw"]) - mean) / std).float()
    labels = torch.from_numpy(data["labels"])
    y = labels.float().reshape(-1, 1) if case["loss"] == "binary" else labels
    return x, y


def build(case: dict, data: dict, archive: KerasArchive, active: set):
    """Everything one torch variant needs (the model at its initial weights, optimizer, loss, data)."""
    torch.manual_seed(ck.SEED)
    model = BranchNet(case, active) if case["arch"] == "branch" else Net(case, active)
    skipped = load_keras_weights(model, case, archive, active)
    opt, hook, opt_desc, per_tensor, global_clip = torch_optimizer(case, model, active)
    loss_fn, loss_desc = torch_loss(case, active)
    x, y = torch_data(case, data, active)
    batch_size = 1 if "fit-batch-shuffle-defaults" in active else case["batch_size"]
    return {"model": model, "opt": opt, "hook": hook, "opt_desc": opt_desc, "per_tensor": per_tensor,
            "global_clip": global_clip, "loss_fn": loss_fn, "loss_desc": loss_desc, "x": x, "y": y,
            "batch_size": batch_size, "skipped": skipped}


def probabilities(model, x) -> np.ndarray:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was)
    if model.outputs_probs:
        return out.numpy()
    return (torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)).numpy()


def measure(v: dict, labels: np.ndarray, steps: int = ck.STEPS) -> list[float]:
    """Train one variant for `steps` steps in torch; returns the metric curve (see casekit_keras.measure)."""
    model, opt, loss_fn, x, y = v["model"], v["opt"], v["loss_fn"], v["x"], v["y"]
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
    model.train()
    curve = []
    for t, idx in enumerate(ck.batches(len(x), v["batch_size"], steps)):
        if t % ck.EVAL_EVERY == 0:
            curve.append(ck.cross_entropy(probabilities(model, x), labels))
        idx = torch.from_numpy(idx)
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"torch loss is {loss.item()} at step {t}")
        loss.backward()
        if v["per_tensor"] is not None:
            for p in model.parameters():
                torch.nn.utils.clip_grad_norm_([p], v["per_tensor"])
        if v["global_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), v["global_clip"]["max_norm"])
        if v["hook"] is not None:
            v["hook"](opt, t + 1)
        opt.step()
    curve.append(ck.cross_entropy(probabilities(model, x), labels))
    return curve


def _gaps(keras_curve, torch_curve) -> dict:
    d = np.abs(np.asarray(keras_curve) - np.asarray(torch_curve))
    return {"final_gap": float(d[-1]), "mean_gap": float(d.mean())}


# ---------------------------------------------------------------------------
# the case


def generate(gen_file) -> None:
    case_dir = Path(gen_file).resolve().parent
    case = ck.load_case(case_dir)
    random.seed(ck.SEED)
    np.random.seed(ck.SEED)
    torch.manual_seed(ck.SEED)
    torch.use_deterministic_algorithms(True)

    keras_dir = case_dir / "keras"
    data = ck.load_data(case["data"])
    archive = KerasArchive(keras_dir / "model.keras")
    keras_inputs = load_file(str(keras_dir / "inputs.safetensors"))
    assert np.array_equal(keras_inputs["x"].astype(data["x"].dtype), data["x"]), "not the Keras samples"
    keras_probs = load_file(str(keras_dir / "expected.safetensors"))["output"]
    keras_curve = json.loads((case_dir / "measured.json").read_text())["keras_loss"]
    labels = data["labels"]

    plants = list(case["plants"])
    present = ck.present_ids(case)

    # 1. the faithful port reproduces Keras inference
    faithful = build(case, data, archive, set())
    err = float(np.abs(probabilities(faithful["model"], faithful["x"]) - keras_probs).max())
    assert err < TOLERANCE, f"faithful port differs from Keras inference by {err}"

    # 2. the planted port: the torch bundle
    ported = build(case, data, archive, set(present))
    port_err = float(np.abs(probabilities(ported["model"], ported["x"]) - keras_probs).max())
    out = case_dir / "torch"
    shutil.rmtree(out, ignore_errors=True)
    n, b = len(ported["x"]), ported["batch_size"]
    export_torch_bundle(
        ported["model"], ported["opt"], ported["loss_fn"], out, example_input=ported["x"][:2], x=ported["x"], y=ported["y"],
        grad_clip=ported["global_clip"], batch_size=b, epochs=ck.epochs_for(n, case["batch_size"]), shuffle=False,
    )
    write_expected(ported["model"], out, ported["x"])

    # 3. measurements: the port, the faithful port, and the ablations
    variants = {"port": set(present), "faithful": set()}
    if len(present) > 1:
        for p in present:
            variants[f"without {p}"] = set(present) - {p}
            variants[f"only {p}"] = {p}
    curves = {"port": measure(ported, labels)}
    for name, act in variants.items():
        if name == "faithful" and not present:
            curves[name] = curves["port"]
        elif name != "port":
            curves[name] = measure(build(case, data, archive, act), labels)
    gaps = {name: _gaps(keras_curve, c) for name, c in curves.items()}

    # impact of each difference: how much of the port's curve gap disappears without it
    base = gaps["port"]["mean_gap"]
    impact = {}
    for p in present:
        without = gaps["faithful" if len(present) == 1 else f"without {p}"]["mean_gap"]
        impact[p] = base - without
    alone = {p: gaps["port" if len(present) == 1 else f"only {p}"]["mean_gap"] for p in present}
    negligible = [p for p in present if alone[p] < ck.NEGLIGIBLE]
    top = max(present, key=lambda p: impact[p]) if present else None
    if case.get("top", "unset") != "unset" and case["top"] != top:
        raise AssertionError(f"{case['name']}: case.py says top={case['top']}, measured top={top} (impact {impact})")

    measured = {
        "what": f"metric = mean cross-entropy (probabilities clipped to [{ck.PROB_FLOOR:g}, 1-{ck.PROB_FLOOR:g}]) of each "
        f"model's eval-mode prediction on all {n} rows of its inputs.safetensors, before training and after every "
        f"{ck.EVAL_EVERY} optimizer steps; {ck.STEPS} steps per side, batches in order (no shuffling, last partial batch "
        "kept), dropout off, BatchNorm in training mode; each side trained by its real framework with its bundle's "
        "optimizer, loss and batch size",
        "steps": ck.eval_steps(),
        "keras_loss": keras_curve,
        "torch_loss": curves["port"],
        "final": {"keras": keras_curve[-1], "torch": curves["port"][-1], "gap": gaps["port"]["final_gap"]},
        "mean_gap": gaps["port"]["mean_gap"],
        "forward_max_abs_diff": {"faithful": err, "port": port_err},
        "variants": {name: {"torch_loss": curves[name], **gaps[name]} for name in curves if name != "port"},
        "impact": impact,
        "alone": alone,
        "top": top,
        "negligible": negligible,
    }
    ck.write_json(case_dir / "measured.json", measured)

    expected = {"top": top, "present": present, "absent": ck.default_absent(case)}
    (case_dir / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    write_readme(case, data, ported, faithful, measured, expected)
    print(f"{case['name']}: faithful |dp| {err:.2g}; port |dp| {port_err:.3g}; final keras {keras_curve[-1]:.4f} "
          f"torch {curves['port'][-1]:.4f} gap {gaps['port']['final_gap']:.4f} (faithful gap "
          f"{gaps['faithful']['final_gap']:.2g}); top {top}; impact {impact}")


# ---------------------------------------------------------------------------
# README.md


def _keras_model_text(case: dict) -> str:
    if case["arch"] == "branch":
        o = case["opts"]
        reg = f", kernel_regularizer=L2({o['l2']:g})" if o.get("l2") else ""
        out = "Dense(1, 'sigmoid')" if case["loss"] == "binary" else f"Dense({case['classes']}, 'softmax')"
        return (f"Functional: `a = Dense(32, 'relu'{reg}, name='branch_a')(x)`, `b = Dense(32, 'tanh', name='branch_b')(x)`, "
                f"`Add()([a, b])`, `Concatenate()([merged, x])`, `Dense(16, 'relu', name='hidden')`, `{out}` (name `probs`)")
    parts = []
    for s in ck.layers_of(case):
        k = s["kind"]
        if k == "dense":
            parts.append(f"Dense({s['units']}" + (f", '{s['activation']}'" if s["activation"] else "") + ")")
        elif k == "conv":
            parts.append(f"Conv2D({s['filters']}, {s['kernel']}" + (f", strides={s['strides']}" if s["strides"] != 1 else "")
                         + f", padding='{s['padding']}')")
        elif k == "bn":
            parts.append("BatchNormalization()")
        elif k == "relu":
            parts.append("ReLU()")
        elif k == "leaky_relu":
            parts.append("LeakyReLU()")
        elif k == "maxpool":
            parts.append(f"MaxPooling2D({s['pool']})")
        elif k == "avgpool":
            parts.append(f"AveragePooling2D({s['pool']}, strides={s['strides']}, padding='{s['padding']}')")
        elif k == "flatten":
            parts.append("Flatten()")
        elif k == "dropout":
            parts.append(f"Dropout({s['rate']})")
        elif k == "embedding":
            parts.append(f"Embedding({s['input_dim']}, {s['output_dim']})")
        elif k == "layernorm":
            parts.append("LayerNormalization()")
        elif k == "lstm":
            parts.append(f"LSTM({s['units']})")
        elif k == "gru":
            parts.append(f"GRU({s['units']})")
    return "`" + " → ".join(parts) + "`"


def _keras_opt_text(case: dict) -> str:
    cls, kwargs, _ = ck.keras_optimizer(case)
    return f"keras.optimizers.{cls}(" + ", ".join(f"{a}={_fmt(b)}" for a, b in kwargs.items()) + ")"


def _keras_loss_text(case: dict) -> str:
    if case["loss"] == "categorical":
        if case["label_smoothing"]:
            return f"CategoricalCrossentropy(label_smoothing={case['label_smoothing']:g}) (one-hot y)"
        return "'categorical_crossentropy' (one-hot y)"
    return {"sparse": "'sparse_categorical_crossentropy' (integer y)", "binary": "'binary_crossentropy' (y float (N, 1))"}[case["loss"]]


DATA_TEXT = {
    "digits": "scikit-learn `load_digits`, 64 pixel features standardized with `StandardScaler` fitted on the 1437-row "
    "training split (`train_test_split(test_size=0.2, random_state=0, stratify=y)`), first 256 rows",
    "digits_images": "scikit-learn `load_digits` as 8×8 images, pixels / 16, first 256 training rows; Keras NHWC "
    "(256, 8, 8, 1), torch NCHW (256, 1, 8, 8)",
    "signals": f"256 numpy-generated float sequences (T={ck.SEQ_T}, 3 features, N(0, 1) noise, PCG64 seed 1); the label "
    "c ∈ {0, 1, 2} adds 0.5 to feature c at every step",
    "sequences": f"256 numpy-generated sequences of {ck.SEQ_T} tokens from 0..{ck.SEQ_V - 1} (PCG64 seed 0); label = the third "
    "of the vocabulary that occurs most often (3 classes)",
    "wine": "scikit-learn `load_wine`, 13 features standardized with `StandardScaler` fitted on the 142-row training split, "
    "all 142 rows (3 classes)",
    "breast_cancer_raw": "scikit-learn `load_breast_cancer`, the 30 raw (unscaled) features, first 256 rows of the 455-row "
    "training split (binary)",
    "breast_cancer": "scikit-learn `load_breast_cancer`, 30 features standardized with `StandardScaler` fitted on the 455-row "
    "training split, first 256 rows (binary)",
}


def write_readme(case, data, ported, faithful, measured, expected) -> None:
    present = expected["present"]
    L = [f"# {case['name']}", "", case["summary"], ""]
    L += ["| | Keras (`keras/`) | PyTorch port (`torch/`) |", "|---|---|---|"]
    L.append(f"| model | {_keras_model_text(case)} | `" + " → ".join(ported["model"].descr) + "` |")
    L.append(f"| optimizer | `{_keras_opt_text(case)}` | `{ported['opt_desc']}` |")
    L.append(f"| loss | `{_keras_loss_text(case)}` | `{ported['loss_desc']}` |")
    L.append(f"| batches | `fit(batch_size={case['batch_size']}, shuffle=False)` | `batch_size={ported['batch_size']}, shuffle=False` |")
    L.append(f"| data | {DATA_TEXT[case['data']]} | same rows" + (", re-standardized with `torch.std` (ddof 1)" if "std-ddof" in present else ", same values") + " |")
    if case["pretrain"]:
        L += ["", f"The Keras model was trained for {case['pretrain']} steps before the export (same optimizer configuration, "
              "same batches, dropout off; the optimizer state is not saved), so both bundles start from trained weights: "
              "what porting a trained model looks like."]
    if any(k == "lstm" for k, _n, _e in getattr(ported["model"], "plan", [])):
        L += ["", "LSTM bias: Keras's LSTM has one bias `b`, torch's two (`bias_ih_l0`, `bias_hh_l0`). The port copies "
              "`b` into `bias_ih_l0`, sets `bias_hh_l0 = 0` and keeps it there with its own param group `lr=0`: if both "
              "were trained, their sum would move with twice the gradient of the Keras bias (measured: the forward is "
              "exact but the training runs part after the first step)."]
    L += ["", "Weights: the torch port starts from the Keras initial weights (read from `keras/model.keras` with h5py), "
          "mapped correctly" + (f" except {', '.join('`' + s + '`' for s in ported['skipped'])}, left at torch's default init" if ported["skipped"] else "")
          + ". The faithful port (no plant) reproduces Keras inference to "
          f"{measured['forward_max_abs_diff']['faithful']:.1g} (max |Δp|); the planted port differs by "
          f"{measured['forward_max_abs_diff']['port']:.3g} at the initial weights.", ""]
    L += ["## Differences", ""]
    if not present:
        L += ["None: a faithful port. Every convention is mapped (optimizer with an exact torch equivalent, BatchNorm "
              "`momentum = 1 − Keras momentum` and the same eps, logits + `CrossEntropyLoss`, weights copied with the correct "
              "layouts, same batches).", ""]
    for p in present:
        good, bad = ck.PLANTS[p]
        how = "planted in the torch port" if p in case["plants"] else "not planted, but no torch.optim constructor avoids it for this Keras optimizer"
        L += [f"- **`{p}`** ({ck.CATEGORY[p]}; {how}).", f"  - faithful port: {good}.", f"  - this port: {bad}."]
    if case["notes"]:
        L += ["", case["notes"].strip()]
    L += ["", "## Measured effect", ""]
    L += [measured["what"] + ". Numbers in `measured.json`.", ""]
    steps = measured["steps"]
    L += ["| step | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---|" * len(steps)]
    L.append("| Keras | " + " | ".join(f"{v:.4f}" for v in measured["keras_loss"]) + " |")
    L.append("| torch port | " + " | ".join(f"{v:.4f}" for v in measured["torch_loss"]) + " |")
    fc = measured["variants"]["faithful"]["torch_loss"]
    L.append("| faithful port | " + " | ".join(f"{v:.4f}" for v in fc) + " |")
    fin = measured["final"]
    L += ["", f"Final loss after {ck.STEPS} steps: Keras {fin['keras']:.4f}, torch port {fin['torch']:.4f}, gap "
          f"**{fin['gap']:.4f}** (mean gap over the curve {measured['mean_gap']:.4f}); the faithful port ends "
          f"{measured['variants']['faithful']['final_gap']:.2g} from Keras."]
    if len(present) > 1:
        L += ["", "Ablation (gap to the Keras curve: final / mean over the curve):", "",
              "| torch variant | final gap | mean gap |", "|---|---|---|",
              f"| port (all differences) | {fin['gap']:.4f} | {measured['mean_gap']:.4f} |"]
        for name, v in measured["variants"].items():
            L.append(f"| {name} | {v['final_gap']:.4f} | {v['mean_gap']:.4f} |")
        L += ["", "Impact (mean gap of the port minus mean gap without that difference): "
              + ", ".join(f"`{p}` {measured['impact'][p]:.4f}" for p in present) + f"; so `top` = `{measured['top']}`."]
    if measured["negligible"]:
        L += ["", "Negligible here (alone, its curve stays within "
              f"{ck.NEGLIGIBLE:g} nats of Keras): " + ", ".join(f"`{p}`" for p in measured["negligible"])
              + ". Still present: the configs differ, the analysis must name it, with a small impact."]
    L += ["", "## expected.json", "",
          f"`top` = {json.dumps(expected['top'])}, `present` = {json.dumps(expected['present'])}; `absent` lists plausible ids "
          "that are not in this pair: " + ", ".join(f"`{a}`" for a in expected["absent"]) + ".", ""]
    L += ["## Regenerate", "", "    PARALLAX_PYTHON=/work/pyenv/venv/bin/python cargo xtask fixtures --only " + case["name"],
          "", f"(`gen_keras.py`, then `gen_torch.py`; both read `case.py`; the code is in `../_lib/`.)", ""]
    (case["dir"] / "README.md").write_text("\n".join(L))
