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


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that stays in eval mode: Keras's BatchNormalization with `trainable = False`."""

    def train(self, mode: bool = True):
        return super().train(False)


class Lion(torch.optim.Optimizer):
    """Keras 3 `Lion` (keras/src/optimizers/lion.py) written with torch ops: torch.optim has no Lion.

    update = sign(β1·m + (1−β1)·g); θ ← θ − η·update; m ← β2·m + (1−β2)·g.  Used for measurements only.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99)):
        super().__init__(params, {"lr": lr, "betas": betas})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-group["lr"])
                m.mul_(b2).add_(p.grad, alpha=1 - b2)


class Net(nn.Module):
    """The torch port of a Sequential case architecture (modules named as the Keras layers)."""

    def __init__(self, case: dict, active: set):
        super().__init__()
        self.plan = []  # (kind, name, extra) in forward order
        self.output_kind = "logits"
        specs, outs = ck.layers_of(case), ck.shapes(case)
        shape = ck.input_shape(case)
        last = len(specs) - 1
        self.descr = []
        self.masked = False
        frozen = set(case["opts"].get("frozen_bn", []))
        head_swapped = False
        for i, (spec, out_shape) in enumerate(zip(specs, outs)):
            k, name = spec["kind"], spec["name"]
            extra = {}
            if head_swapped:  # the Keras Dense head has no counterpart in this port
                continue
            if k == "flatten" and "architecture-mismatch" in active:
                # a port that changed the architecture: a 1x1 conv classifier + global average pool instead of Flatten → Dense
                self.add_module("head", nn.Conv2d(shape[-1], case["classes"], 1))
                self.add_module("gap", nn.AdaptiveAvgPool2d(1))
                self.descr.append(f"head: Conv2d({shape[-1]}, {case['classes']}, 1) → AdaptiveAvgPool2d(1) → flatten (logits)")
                self.plan.append(("convhead", "head", {}))
                head_swapped = True
                continue
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
                elif i == last and act == "softmax":
                    if case["loss"] == "kld":
                        extra["act"] = "log_softmax"
                        self.output_kind = "logprobs"
                        self.descr.append("log_softmax (for KLDivLoss)")
                    elif case["loss"] == "categorical_mse_sum":
                        extra["act"] = "softmax"
                        self.output_kind = "probs"
                        self.descr.append("softmax (the loss is on probabilities)")
                    elif "double-softmax" in active:
                        extra["act"] = "softmax"
                        self.output_kind = "probs"
                        self.descr.append("softmax (kept in forward)")
                    else:
                        self.descr[-1] += " (logits)"
                elif i == last and act == "sigmoid":
                    if case["loss"] == "binary_mse":
                        extra["act"] = "sigmoid"
                        self.output_kind = "probs"
                        self.descr.append("sigmoid (the loss is on probabilities)")
                    elif "bce-clipping" in active:
                        extra["act"] = "sigmoid"
                        self.output_kind = "probs"
                        self.descr.append("sigmoid (kept in forward)")
                    else:
                        self.descr[-1] += " (logits)"
                elif i == last and act is None and case["loss"] in ck.REGRESSION_LOSSES:
                    self.output_kind = "values"
                    self.descr[-1] += " (linear output)"
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
                elif "bn_eps" in case["plant_values"]:  # the port's own eps (GAN code uses 0.8)
                    kw["eps"] = case["plant_values"]["bn_eps"]
                cls = nn.BatchNorm2d if len(shape) == 3 and case["arch"] == "cnn" else nn.BatchNorm1d
                if len(shape) == 2:  # (T, D) features: BatchNorm1d wants (N, D, T)
                    extra["seq"] = True
                if name in frozen and "bn-frozen-means-inference" not in active:
                    cls = FrozenBatchNorm2d
                self.add_module(name, cls(shape[-1], **kw))
                self.descr.append(f"{cls.__name__}({shape[-1]}, " + ", ".join(f"{a}={b}" for a, b in kw.items()) + ")"
                                  + (" (weight/bias lr 0)" if name in frozen else ""))
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
            elif k == "dwconv":
                kk, c = spec["kernel"], shape[-1]
                self.add_module(name, nn.Conv2d(c, c, kk, padding=kk // 2, groups=c))
                self.descr.append(f"Conv2d({c}, {c}, {kk}, padding={kk // 2}, groups={c})")
            elif k == "sepconv":
                kk, c = spec["kernel"], shape[-1]
                self.add_module(name + "_dw", nn.Conv2d(c, c, kk, groups=c, bias=False))
                self.add_module(name + "_pw", nn.Conv2d(c, spec["filters"], 1))
                self.descr.append(f"Conv2d({c}, {c}, {kk}, groups={c}, bias=False) → Conv2d({c}, {spec['filters']}, 1)")
            elif k == "convT":
                kk, s, c = spec["kernel"], spec["strides"], shape[-1]
                if "conv-transpose-same-crop" in active:
                    self.add_module(name, nn.ConvTranspose2d(c, spec["filters"], kk, stride=s, padding=(kk - 1) // 2, output_padding=s - 1))
                    self.descr.append(f"ConvTranspose2d({c}, {spec['filters']}, {kk}, stride={s}, padding={(kk - 1) // 2}, output_padding={s - 1})")
                else:
                    crop = kk - s  # TF 'same': the full (n-1)s+k output cropped to n*s, floor(c/2) at the start
                    extra["crop"] = (crop // 2, crop // 2 + out_shape[0])
                    self.add_module(name, nn.ConvTranspose2d(c, spec["filters"], kk, stride=s))
                    self.descr.append(f"ConvTranspose2d({c}, {spec['filters']}, {kk}, stride={s}) → y[:, :, {extra['crop'][0]}:{extra['crop'][1]}, {extra['crop'][0]}:{extra['crop'][1]}]")
            elif k == "upsample":
                extra["align_corners"] = "resize-semantics" in active
                self.descr.append(f"F.interpolate(scale_factor={spec['size']}, mode='bilinear', align_corners={extra['align_corners']})")
                extra["size"] = spec["size"]
            elif k == "softmax":
                if "softmax-implicit-dim" in active:
                    self.add_module(name, nn.Softmax())
                    self.descr.append("nn.Softmax()")
                else:
                    self.add_module(name, nn.Softmax(dim=-1))
                    self.descr.append("nn.Softmax(dim=-1)")
            elif k == "gap1d":
                self.descr.append("mean over time")
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
                if case["opts"].get("flatten_view"):
                    extra["view"] = True  # x.view(N, -1): needs a contiguous activation
                    self.descr.append("x.view(x.size(0), -1)")
                else:
                    self.add_module(name, nn.Flatten())
                    self.descr.append("Flatten()")
                extra["from"] = shape  # (h, w, c) before flattening
            elif k == "sdropout":
                self.add_module(name, nn.Dropout2d(spec["rate"]))
                self.descr.append(f"Dropout2d({spec['rate']})")
            elif k == "gap2d":
                self.add_module(name, nn.AdaptiveAvgPool2d(1))
                self.descr.append("AdaptiveAvgPool2d(1)")
            elif k == "out_softmax":
                self.add_module(name, nn.LogSoftmax(dim=1))
                self.output_kind = "logprobs"
                self.descr.append("LogSoftmax(dim=1)")
            elif k == "dropout":
                self.add_module(name, nn.Dropout(spec["rate"]))
                self.descr.append(f"Dropout({spec['rate']})")
            elif k == "embedding":
                self.add_module(name, nn.Embedding(spec["input_dim"], spec["output_dim"]))
                self.descr.append(f"Embedding({spec['input_dim']}, {spec['output_dim']})")
                self.masked = spec.get("mask_zero", False) and "rnn-dropout-and-masking" not in active
            elif k == "layernorm":
                kw = {} if "layernorm-eps-axis" in active else {"eps": 1e-3}
                self.add_module(name, nn.LayerNorm(shape[-1], **kw))
                self.descr.append(f"LayerNorm({shape[-1]}" + (", eps=0.001)" if kw else ")"))
            elif k in ("lstm", "gru"):
                cls = nn.LSTM if k == "lstm" else nn.GRU
                self.add_module(name, cls(shape[-1], spec["units"], batch_first=True))
                if self.masked:
                    self.descr.append(f"{cls.__name__}({shape[-1]}, {spec['units']}, batch_first=True) → out[arange(N), (x != 0).sum(1) − 1]")
                else:
                    self.descr.append(f"{cls.__name__}({shape[-1]}, {spec['units']}, batch_first=True) → h_n[-1]")
            else:
                raise ValueError(k)
            self.plan.append((k, name, extra))
            shape = out_shape

    def forward(self, x):
        tokens = x
        for k, name, extra in self.plan:
            if k == "relu":
                x = torch.relu(x)
                continue
            if k in ("lstm", "gru"):
                out, state = getattr(self, name)(x)
                if self.masked:  # the output at each sequence's last non-padding step (post-padding)
                    last = (tokens != 0).sum(dim=1) - 1
                    x = out[torch.arange(out.shape[0]), last]
                else:
                    x = (state[0] if k == "lstm" else state)[-1]
                continue
            if k == "gap1d":
                x = x.mean(dim=1)
                continue
            if k == "convhead":
                x = torch.flatten(self.gap(self.head(x)), 1)
                continue
            if extra.get("view"):
                x = x.view(x.size(0), -1)
                continue
            if k == "upsample":
                x = F.interpolate(x, scale_factor=extra["size"], mode="bilinear", align_corners=extra["align_corners"])
                continue
            if k == "sepconv":
                x = getattr(self, name + "_pw")(getattr(self, name + "_dw")(x))
                continue
            if "pad" in extra:
                x = F.pad(x, extra["pad"])
            if extra.get("seq"):
                x = getattr(self, name)(x.transpose(1, 2)).transpose(1, 2)
                continue
            x = getattr(self, name)(x)
            if "crop" in extra:
                a, b = extra["crop"]
                x = x[:, :, a:b, a:b]
            act = extra.get("act")
            if act == "relu":
                x = torch.relu(x)
            elif act == "tanh":
                x = torch.tanh(x)
            elif act == "softmax":
                x = torch.softmax(x, dim=1)
            elif act == "log_softmax":
                x = torch.log_softmax(x, dim=1)
            elif act == "sigmoid":
                x = torch.sigmoid(x)
            if "act_module" in extra:
                x = getattr(self, extra["act_module"])(x)
        return x


class PrefixedMLP(nn.Module):
    """The `mlp` port with its layers in containers: `blocks = nn.Sequential(fc1, ReLU())`, `heads = nn.ModuleList([fc2])`.

    The state_dict names are then `blocks.0.weight`, `heads.0.weight` (what many real ports look like).
    """

    def __init__(self, net: Net):
        super().__init__()
        kinds = [(k, extra.get("act")) for k, _n, extra in net.plan]
        if kinds != [("dense", "relu"), ("dense", None)]:
            raise ValueError(f"PrefixedMLP needs Dense(relu) → Dense, got {kinds}")
        self.blocks = nn.Sequential(net.fc1, nn.ReLU())
        self.heads = nn.ModuleList([net.fc2])
        self.output_kind = net.output_kind
        self.plan = net.plan
        self.descr = [f"blocks = nn.Sequential({net.descr[0]}, ReLU())", f"heads = nn.ModuleList([{net.descr[2]}])",
                      "forward: heads[0](blocks(x))"]

    def forward(self, x):
        return self.heads[0](self.blocks(x))


class BranchNet(nn.Module):
    """The torch port of the `branch` Functional model (as models/functional)."""

    def __init__(self, case: dict, active: set):
        super().__init__()
        f = case["features"]
        binary = case["loss"] in ck.BINARY_LOSSES
        out = 1 if binary else case["classes"]
        self.branch_a = nn.Linear(f, 32)
        self.branch_b = nn.Linear(f, 32)
        self.hidden = nn.Linear(32 + f, 16)
        self.probs = nn.Linear(16, out)
        self.final = None
        if case["loss"] == "binary_mse" or (case["loss"] == "binary" and "bce-clipping" in active):
            self.final = "sigmoid"
        elif not binary and "double-softmax" in active:
            self.final = "softmax"
        self.output_kind = "probs" if self.final else "logits"
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


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]


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
                weight = kernel.reshape(kernel.shape[1], kernel.shape[0]) if "dense-layout" in active else kernel.T
                getattr(model, name).weight.copy_(t(weight))
                getattr(model, name).bias.copy_(t(bias))
            return skipped
        prev_shape = None
        for (k, name, extra) in model.plan:
            mod = getattr(model, name, None)
            if k == "flatten":
                prev_shape = extra["from"]
                continue
            if k == "convhead":  # no Keras counterpart: torch's default init
                skipped.append(name)
                continue
            if k == "dense":
                if "dense-init" in active:
                    skipped.append(name)
                    continue
                kernel, bias = archive.layer_vars(name)
                if prev_shape is not None and len(prev_shape) == 3 and "flatten-order" not in active:
                    h, w, c = prev_shape
                    weight = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
                elif prev_shape is None and "dense-layout" in active:
                    weight = kernel.reshape(kernel.shape[1], kernel.shape[0])
                else:
                    weight = kernel.T
                mod.weight.copy_(t(weight))
                mod.bias.copy_(t(bias))
                prev_shape = None
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
            elif k == "dwconv":
                if "depthwise-init" in active:
                    skipped.append(name)
                    continue
                kernel, bias = archive.layer_vars(name)
                mod.weight.copy_(t(_depthwise(kernel)))
                mod.bias.copy_(t(bias))
            elif k == "sepconv":
                dw, pw, bias = archive.layer_vars(name)
                kh, kw, c, m = dw.shape
                if "depthwise-separable-layout" in active:
                    getattr(model, name + "_dw").weight.copy_(t(dw.reshape(c * m, 1, kh, kw)))
                else:
                    getattr(model, name + "_dw").weight.copy_(t(_depthwise(dw)))
                getattr(model, name + "_pw").weight.copy_(t(pw.transpose(3, 2, 0, 1)))
                getattr(model, name + "_pw").bias.copy_(t(bias))
            elif k == "convT":
                kernel, bias = archive.layer_vars(name)  # (kh, kw, out, in)
                perm = (2, 3, 0, 1) if "conv-transpose-layout" in active else (3, 2, 0, 1)
                mod.weight.copy_(t(kernel.transpose(*perm)))
                mod.bias.copy_(t(bias))
            elif k == "bn":
                gamma, beta, mean, var = archive.layer_vars(name)
                if "bn-affine-init" in active:  # GAN-style init of the affine parameters
                    nn.init.normal_(mod.weight, 1.0, 0.02)
                    nn.init.zeros_(mod.bias)
                else:
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


def _emulates(p: str, present, active) -> bool:
    """The variant removes difference p by emulating the Keras semantics (measurement only)."""
    return p in present and p not in active


def torch_optimizer(case: dict, model, active: set, present) -> dict:
    """The optimizer, LR scheduler, clipping and measurement-only hooks of one variant."""
    cls, kwargs, full = ck.keras_optimizer(case)
    lr = full["learning_rate"]
    pre_step, post_step, at_end = [], [], []
    notes = []
    per_tensor = None
    global_clip = None
    if kwargs.get("clipnorm"):
        if "clipnorm-per-tensor-vs-global" in active:
            global_clip = {"max_norm": float(kwargs["clipnorm"]), "norm_type": 2.0}
        else:
            per_tensor = float(kwargs["clipnorm"])

    # parameter groups: the Keras L2 kernel regularizer becomes coupled weight decay on those tensors;
    # a Keras LSTM has one bias, torch two: b_hh stays 0 and is frozen (lr 0), otherwise the effective
    # bias b_ih + b_hh would receive twice the gradient; frozen BatchNorm layers' weight/bias: lr 0
    decayed_names = [f"{n}.weight" for n in ck.l2_layers(case)]
    frozen_names = ["lstm.bias_hh_l0"] if case["arch"] == "rnn" and case["opts"].get("cell", "lstm") == "lstm" else []
    for bn in case["opts"].get("frozen_bn", []):
        frozen_names += [f"{bn}.weight", f"{bn}.bias"]
    named = dict(model.named_parameters())
    rest = [n for n in named if n not in decayed_names and n not in frozen_names]
    groups, gdesc = [], []
    if decayed_names:
        l2 = case["opts"]["l2"]
        wd = l2 if "l2-regularizer-factor-two" in active else 2 * l2
        groups.append({"params": [named[n] for n in decayed_names], "weight_decay": wd})
        gdesc.append(f"{{'params': [{', '.join(decayed_names)}], 'weight_decay': {wd:g}}}")
    if groups or frozen_names:
        groups.append({"params": [named[n] for n in rest]})
        gdesc.append("{'params': rest}")
    if frozen_names:
        groups.append({"params": [named[n] for n in frozen_names], "lr": 0.0})
        gdesc.append(f"{{'params': [{', '.join(frozen_names)}], 'lr': 0}}")
    if groups:
        params, pdesc = groups, "[" + ", ".join(gdesc) + "]"
    else:
        params, pdesc = list(model.parameters()), "model.parameters()"

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
        if _emulates("adam-epsilon-hat", present, active):
            eps_hat, beta_2 = full["epsilon"], full["beta_2"]
            tkw["eps"] = eps_hat

            def eps_hook(opt, t):  # t = 1-based update count: torch eps_t = ε̂ / sqrt(1 - β2^t) is Keras's update
                for g in opt.param_groups:
                    g["eps"] = eps_hat / math.sqrt(1 - beta_2**t)

            pre_step.append(eps_hook)
            notes.append(f"eps re-set before each step to {eps_hat:g}/√(1−{beta_2:g}^t) (measurement only)")
    elif cls == "RMSprop":
        tcls = "RMSprop"
        if "rmsprop-eps-and-rho" in active:
            tkw = dict(case["plant_values"].get("rmsprop", {}))  # {} = torch's defaults
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
    elif cls == "Lion":
        if "no-counterpart-optimizers" in active:
            tcls, tkw = "Adam", {"lr": lr}
        else:
            tcls, tkw = "Lion", {"lr": lr, "betas": (full["beta_1"], full["beta_2"])}
    else:
        raise ValueError(cls)
    opt_cls = Lion if tcls == "Lion" else getattr(torch.optim, tcls)
    opt = opt_cls(params, **tkw)
    desc = f"torch.optim.{tcls}({pdesc}" + "".join(f", {a}={_fmt(b)}" for a, b in tkw.items()) + ")"
    if tcls == "Lion":
        desc = desc.replace("torch.optim.Lion", "Lion (hand-written, measurement only)")

    # learning-rate schedule
    scheduler, interval, sdesc = None, "step", None
    if "schedule" in full:
        name, skw = full["schedule"]
        if name == "ExponentialDecay":
            gamma = skw["decay_rate"] ** (1.0 / skw["decay_steps"])
            scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
            interval = "epoch" if "lr-schedule-granularity" in active else "step"
            sdesc = f"ExponentialLR(gamma={gamma:g}), scheduler.step() every {interval}"
        elif name == "CosineDecay":
            if "cosine-decay-semantics" in active:
                scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=skw["decay_steps"], eta_min=skw.get("alpha", 0.0) * lr)
                sdesc = f"CosineAnnealingLR(T_max={skw['decay_steps']}), scheduler.step() every step"
            else:
                sched = full["schedule"]
                scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: ck.keras_lr(sched, s) / lr)
                sdesc = "LambdaLR(the Keras CosineDecay formula, clamped after decay_steps), every step (measurement only)"
        else:
            raise ValueError(name)
        if _emulates("sgd-momentum-lr-in-buffer", present, active):
            last_lr = {}

            def buffer_hook(opt, t):  # Keras's velocity holds lr·g: rescale torch's buffer when the lr changes
                for g in opt.param_groups:
                    if g["lr"] == 0:
                        continue
                    prev = last_lr.get(id(g))
                    if prev is not None and prev != g["lr"]:
                        for p in g["params"]:
                            buf = opt.state[p].get("momentum_buffer")
                            if buf is not None:
                                buf.mul_(prev / g["lr"])
                    last_lr[id(g)] = g["lr"]

            pre_step.append(buffer_hook)
            notes.append("momentum buffers rescaled by η_{t−1}/η_t before each step (measurement only)")

    # Keras use_ema: a moving average of the weights, copied into the model at the end of fit
    if _emulates("ema-weights", present, active):
        mu = kwargs.get("ema_momentum", 0.99)
        params_list = [p for p in model.parameters()]
        avg = {}

        def ema_hook(opt, t):
            with torch.no_grad():
                for p in params_list:
                    if t == 1:
                        avg[p] = p.detach().clone()
                    else:
                        avg[p].mul_(mu).add_(p.detach(), alpha=1 - mu)

        def ema_end():
            with torch.no_grad():
                for p in params_list:
                    p.copy_(avg[p])

        post_step.append(ema_hook)
        at_end.append(ema_end)
        notes.append(f"weight EMA (momentum {mu:g}) copied into the model after the last step (measurement only)")
    if case["opts"].get("max_norm") and "weight-constraints" not in active:
        c = float(case["opts"]["max_norm"])
        weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]

        def max_norm_hook(opt, t):  # keras/src/constraints/constraints.py MaxNorm, axis 0 of the (in, out) kernel
            with torch.no_grad():
                for w in weights:
                    norms = torch.sqrt(torch.sum(torch.square(w), dim=1, keepdim=True))
                    w.mul_(torch.clamp(norms, 0, c) / (1e-7 + norms))

        post_step.append(max_norm_hook)
        notes.append(f"every Linear weight row renormed to norm ≤ {c:g} after each step, as Keras MaxNorm({c:g}) "
                     "(measurement only)")
    if per_tensor is not None:
        notes.append(f"clip_grad_norm_([p], {per_tensor:g}) per parameter (measurement only)")
    if global_clip is not None:
        notes.append(f"clip_grad_norm_(model.parameters(), {global_clip['max_norm']:g})")
    if sdesc:
        desc += "; " + sdesc
    if notes:
        desc += "; " + "; ".join(notes)
    return {"opt": opt, "scheduler": scheduler, "interval": interval, "pre_step": pre_step, "post_step": post_step,
            "at_end": at_end, "opt_desc": desc, "per_tensor": per_tensor, "global_clip": global_clip}


def _one_hot(labels, classes):
    return F.one_hot(torch.from_numpy(labels), classes).float()


def torch_loss(case: dict, active: set, present):
    loss = case["loss"]
    if loss == "mse":
        return nn.MSELoss(), "nn.MSELoss()"
    if loss == "mae":
        return nn.L1Loss(), "nn.L1Loss()"
    if loss == "huber":
        return nn.HuberLoss(delta=1.0), "nn.HuberLoss(delta=1.0)"
    if case["opts"].get("head") == "conv_gap":
        return nn.NLLLoss(), "nn.NLLLoss() on log-probabilities"
    if loss == "binary":
        if "bce-clipping" in active:
            return nn.BCELoss(), "nn.BCELoss() on sigmoid outputs"
        return nn.BCEWithLogitsLoss(), "nn.BCEWithLogitsLoss() on logits"
    if loss == "binary_mse":
        return nn.MSELoss(), "nn.MSELoss() on sigmoid outputs"
    if loss == "kld":
        if "kld-poisson-cosine" in active:
            return nn.KLDivLoss(), "nn.KLDivLoss() (reduction='mean') on log-probabilities, one-hot targets"
        return nn.KLDivLoss(reduction="batchmean"), "nn.KLDivLoss(reduction='batchmean') on log-probabilities, one-hot targets"
    if loss == "categorical_mse_sum":
        if "loss-per-sample-mean-and-sum" in active:
            return nn.MSELoss(reduction="sum"), "nn.MSELoss(reduction='sum') on softmax outputs, one-hot targets"
        c = case["classes"]
        mse = nn.MSELoss(reduction="sum")
        return (lambda p, y: mse(p, y) / c), f"nn.MSELoss(reduction='sum')(p, y) / {c} (measurement only)"
    if case["class_weight"]:
        w = torch.tensor([case["class_weight"][i] for i in range(case["classes"])], dtype=torch.float32)
        if _emulates("loss-reduction-weights", present, active):
            return ((lambda z, y: (F.cross_entropy(z, y, reduction="none") * w[y]).sum() / len(y)),
                    f"(F.cross_entropy(z, y, reduction='none') * w[y]).sum() / N, w = {w.tolist()} (measurement only)")
        return nn.CrossEntropyLoss(weight=w), f"nn.CrossEntropyLoss(weight=torch.tensor({w.tolist()}))"
    if _emulates("cce-probability-clipping", present, active):  # Keras on the torch/JAX backend
        def clipped_ce(z, y):
            p = torch.softmax(z, dim=1).clamp(ck.PROB_FLOOR, 1 - ck.PROB_FLOOR)
            return F.nll_loss(torch.log(p), y)

        return clipped_ce, "F.nll_loss(log(softmax(z).clamp(1e-7, 1 − 1e-7)), y) (measurement only)"
    ls = case["label_smoothing"]
    if ls and "label-smoothing" not in active:
        return nn.CrossEntropyLoss(label_smoothing=ls), f"nn.CrossEntropyLoss(label_smoothing={ls:g})"
    return nn.CrossEntropyLoss(), "nn.CrossEntropyLoss()" + (" on softmax outputs" if "double-softmax" in active else " on logits")


def torch_data(case: dict, data: dict, active: set):
    """(x, y) in the torch layout; carries the data plants (std-ddof, channels-last, target-shape-broadcast)."""
    x = data["x"]
    if case["arch"] == "cnn" and case["opts"].get("permute_input") and "channels-last" not in active:
        x = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC -> NCHW as a view: channels-last in memory
    elif case["arch"] == "cnn":
        if "channels-last" in active:
            x = x.reshape(x.shape[0], x.shape[3], x.shape[1], x.shape[2])  # the NHWC buffer read as NCHW
        else:
            x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(np.ascontiguousarray(x))  # row-major
    if "std-ddof" in active:
        raw_all = torch.from_numpy(data["raw_all"])
        mean = raw_all.mean(0)
        std = raw_all.std(0)  # torch default: correction=1
        std[std == 0] = 1
        x = ((torch.from_numpy(data["raw"]) - mean) / std).float()
    x_eval = x
    labels = torch.from_numpy(data["labels"])
    if case["loss"] == "binary" or case["loss"] in ck.REGRESSION_LOSSES:
        y = labels.float().reshape(-1, 1)
    elif case["loss"] == "binary_mse":
        y = labels.float() if "target-shape-broadcast" in active else labels.float().reshape(-1, 1)
    elif case["loss"] in ("kld", "categorical_mse_sum"):
        y = _one_hot(data["labels"], case["classes"])
    else:
        y = labels
    if case["validation_split"]:
        n = len(x)
        if "validation-split-tail" in active:  # torch.utils.data.random_split(ds, [0.75, 0.25]) with a seeded generator
            rows = torch.randperm(n, generator=torch.Generator().manual_seed(ck.SEED))[: ck.train_rows(case, n)]
        else:
            rows = torch.arange(ck.train_rows(case, n))
        x, y = x[rows], y[rows]
    return x, y, x_eval


def _bn_var_hooks(model) -> None:
    """Make running_var follow Keras: the batch-variance term of the update biased (÷n), not unbiased (÷(n−1))."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, FrozenBatchNorm2d):
            def pre(mod, inp):
                mod._old_var = mod.running_var.detach().clone()

            def post(mod, inp, out):
                if not mod.training:
                    return
                x = inp[0]
                n = x.numel() // x.shape[1]
                keep = (1 - mod.momentum) * mod._old_var
                with torch.no_grad():  # through .data: autograd saved running_var for the backward pass
                    mod.running_var.data.copy_(keep + (mod.running_var - keep) * (n - 1) / n)

            m.register_forward_pre_hook(pre)
            m.register_forward_hook(post)


def build(case: dict, data: dict, archive: KerasArchive, active: set):
    """Everything one torch variant needs (the model at its initial weights, optimizer, loss, data)."""
    present = ck.present_ids(case)
    torch.manual_seed(ck.SEED)
    model = BranchNet(case, active) if case["arch"] == "branch" else Net(case, active)
    skipped = load_keras_weights(model, case, archive, active)
    if case["opts"].get("module_prefix"):
        model = PrefixedMLP(model)
    v = torch_optimizer(case, model, active, present)
    v["loss_fn"], v["loss_desc"] = torch_loss(case, active, present)
    v["x"], v["y"], v["x_eval"] = torch_data(case, data, active)
    v["batch_size"] = case["plant_values"].get("batch_size", 1) if "fit-batch-shuffle-defaults" in active else case["batch_size"]
    v["model"], v["skipped"] = model, skipped
    v["bn_var_fix"] = _emulates("bn-running-var-bias", present, active)
    return v


def probabilities(model, x) -> np.ndarray:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x.clone(memory_format=torch.contiguous_format))  # row-major, as a DataLoader batch
    model.train(was)
    if model.output_kind in ("probs", "values"):
        return out.numpy()
    if model.output_kind == "logprobs":
        return torch.exp(out).numpy()
    return (torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)).numpy()


def measure(v: dict, labels: np.ndarray, steps: int = ck.STEPS, case_loss: str = "categorical") -> list[float]:
    """Train one variant for `steps` steps in torch; returns the metric curve (see casekit_keras.measure)."""
    model, opt, loss_fn, x, y = v["model"], v["opt"], v["loss_fn"], v["x"], v["y"]
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
    if v["bn_var_fix"]:
        _bn_var_hooks(model)
    model.train()
    steps_per_epoch = math.ceil(len(x) / v["batch_size"])
    curve = []
    for t, idx in enumerate(ck.batches(len(x), v["batch_size"], steps)):
        if t % ck.EVAL_EVERY == 0:
            curve.append(ck.metric(probabilities(model, v["x_eval"]), labels, case_loss))
        idx = torch.from_numpy(idx)
        opt.zero_grad()
        loss = loss_fn(model(x[idx].clone(memory_format=torch.contiguous_format)), y[idx])  # row-major, as a DataLoader batch
        if not torch.isfinite(loss):
            raise FloatingPointError(f"torch loss is {loss.item()} at step {t}")
        loss.backward()
        if v["per_tensor"] is not None:
            for p in model.parameters():
                torch.nn.utils.clip_grad_norm_([p], v["per_tensor"])
        if v["global_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), v["global_clip"]["max_norm"])
        for hook in v["pre_step"]:
            hook(opt, t + 1)
        opt.step()
        for hook in v["post_step"]:
            hook(opt, t + 1)
        if v["scheduler"] is not None and (v["interval"] == "step" or (t + 1) % steps_per_epoch == 0):
            v["scheduler"].step()
    for hook in v["at_end"]:
        hook()
    curve.append(ck.metric(probabilities(model, v["x_eval"]), labels, case_loss))
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
    err = float(np.abs(probabilities(faithful["model"], faithful["x_eval"]) - keras_probs).max())
    assert err < TOLERANCE, f"faithful port differs from Keras inference by {err}"

    # 2. the planted port: the torch bundle
    ported = build(case, data, archive, set(present))
    port_err = float(np.abs(probabilities(ported["model"], ported["x_eval"]) - keras_probs).max())
    out = case_dir / "torch"
    shutil.rmtree(out, ignore_errors=True)
    n, b = len(ported["x"]), ported["batch_size"]
    export_torch_bundle(
        ported["model"], ported["opt"], ported["loss_fn"], out, example_input=ported["x"][:2], x=ported["x"], y=ported["y"],
        grad_clip=ported["global_clip"], scheduler=ported["scheduler"], scheduler_interval=ported["interval"],
        batch_size=b, epochs=ck.epochs_for(n, case["batch_size"]), shuffle=False,
    )
    write_expected(ported["model"], out, ported["x"])

    # 3. measurements: the port, the faithful port, and the ablations
    variants = {"port": set(present), "faithful": set()}
    if len(present) > 1:
        for p in present:
            variants[f"without {p}"] = set(present) - {p}
            variants[f"only {p}"] = {p}
    curves = {"port": measure(ported, labels, case_loss=case["loss"])}
    for name, act in variants.items():
        if name == "faithful" and not present:
            curves[name] = curves["port"]
        elif name != "port":
            curves[name] = measure(build(case, data, archive, act), labels, case_loss=case["loss"])
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
        "what": (f"metric = {ck.METRIC_TEXT[case['loss']]} (the Keras loss, float64) of each "
                 if case["loss"] in ck.REGRESSION_LOSSES else
                 f"metric = mean cross-entropy (probabilities clipped to [{ck.PROB_FLOOR:g}, 1-{ck.PROB_FLOOR:g}]) of each ")
        + f"model's eval-mode prediction on all {len(ported['x_eval'])} rows of "
        + ("the Keras inputs.safetensors (the torch bundle holds only its training rows)" if case["validation_split"]
           else "its inputs.safetensors") + ", before training and after every "
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
    for key in ("mentions", "never"):  # strings the Markdown report must / must not contain (only when the case gives them)
        if case.get(key):
            expected[key] = list(case[key])
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
            extra = ""
            if case["opts"].get("kernel_initializer"):
                init_cls, init_kw = case["opts"]["kernel_initializer"]
                extra += f", kernel_initializer={init_cls}(" + ", ".join(f"{a}={_fmt(b)}" for a, b in init_kw.items()) + ")"
            if case["opts"].get("max_norm"):
                extra += f", kernel_constraint=MaxNorm({_fmt(float(case['opts']['max_norm']))})"
            parts.append(f"Dense({s['units']}" + (f", '{s['activation']}'" if s["activation"] else "") + extra + ")")
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
            parts.append(f"Embedding({s['input_dim']}, {s['output_dim']}" + (", mask_zero=True)" if s.get("mask_zero") else ")"))
        elif k == "layernorm":
            parts.append("LayerNormalization()")
        elif k == "lstm":
            parts.append(f"LSTM({s['units']})")
        elif k == "gru":
            parts.append(f"GRU({s['units']})")
        elif k == "dwconv":
            parts.append(f"DepthwiseConv2D({s['kernel']}, padding='same')")
        elif k == "sepconv":
            parts.append(f"SeparableConv2D({s['filters']}, {s['kernel']})")
        elif k == "convT":
            parts.append(f"Conv2DTranspose({s['filters']}, {s['kernel']}, strides={s['strides']}, padding='same')")
        elif k == "upsample":
            parts.append(f"UpSampling2D({s['size']}, interpolation='bilinear')")
        elif k == "softmax":
            parts.append("Softmax()")
        elif k == "gap1d":
            parts.append("GlobalAveragePooling1D()")
        elif k == "sdropout":
            parts.append(f"SpatialDropout2D({s['rate']})")
        elif k == "gap2d":
            parts.append("GlobalAveragePooling2D(keepdims=True)")
        elif k == "out_softmax":
            parts.append("Softmax()")
    return "`" + " → ".join(parts) + "`"


def _keras_opt_text(case: dict) -> str:
    cls, kwargs, _ = ck.keras_optimizer(case)

    def value(v):
        if isinstance(v, tuple):  # a LearningRateSchedule
            return f"keras.optimizers.schedules.{v[0]}(" + ", ".join(f"{a}={_fmt(b)}" for a, b in v[1].items()) + ")"
        return _fmt(v)

    return f"keras.optimizers.{cls}(" + ", ".join(f"{a}={value(b)}" for a, b in kwargs.items()) + ")"


def _keras_loss_text(case: dict) -> str:
    if case["loss"] == "categorical":
        if case["label_smoothing"]:
            return f"CategoricalCrossentropy(label_smoothing={case['label_smoothing']:g}) (one-hot y)"
        return "'categorical_crossentropy' (one-hot y)"
    return {"sparse": "'sparse_categorical_crossentropy' (integer y)", "binary": "'binary_crossentropy' (y float (N, 1))",
            "binary_mse": "'mean_squared_error' on the sigmoid output (y float (N, 1))",
            "kld": "'kl_divergence' (one-hot y)",
            "categorical_mse_sum": "MeanSquaredError(reduction='sum') on the softmax output (one-hot y)",
            "mse": "'mean_squared_error' on the linear output (y float (N, 1))",
            "mae": "'mean_absolute_error' on the linear output (y float (N, 1))",
            "huber": "keras.losses.Huber() (delta 1.0) on the linear output (y float (N, 1))"}[case["loss"]]


DATA_TEXT = {
    "diabetes": "scikit-learn `load_diabetes` (a real regression set), the 353-row training split "
    "(`train_test_split(test_size=0.2, random_state=0)`), 10 features and the target each standardized "
    "(`StandardScaler`, ddof 0), first 256 rows",
    "digits": "scikit-learn `load_digits`, 64 pixel features standardized with `StandardScaler` fitted on the 1437-row "
    "training split (`train_test_split(test_size=0.2, random_state=0, stratify=y)`), first 256 rows",
    "wine_sorted": "scikit-learn `load_wine`, standardized as in the other wine cases, all 142 training rows **sorted by "
    "class** (as a file sorted by label would be)",
    "digits_raw": "scikit-learn `load_digits`, the 64 raw pixel values (0..16, not standardized), first 256 rows of the "
    "1437-row training split",
    "digits_2ch": "scikit-learn `load_digits` as 8×8 images with two channels (pixels / 16, and the same image mirrored "
    "left-right), first 256 training rows; Keras NHWC (256, 8, 8, 2), torch NCHW (256, 2, 8, 8)",
    "padded_sequences": f"256 numpy-generated token sequences (PCG64 seed 2): lengths 3..{ck.SEQ_T}, tokens 1..{ck.SEQ_V - 1}, "
    "post-padded with 0; label = the third of the vocabulary that occurs most often among the real tokens",
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
    if case["validation_split"]:
        tdata = (f"a random {len(ported['x'])} of the rows (`random_split`)" if "validation-split-tail" in present
                 else f"the first {len(ported['x'])} rows")
    elif "std-ddof" in present:
        tdata = "same rows, re-standardized with `torch.std` (ddof 1)"
    elif "channels-last" in present:
        tdata = "same rows, the NHWC buffer reshaped to NCHW"
    elif case["opts"].get("permute_input"):
        tdata = "same rows, same values; `torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)` (a channels-last view)"
    else:
        tdata = "same rows, same values"
    L.append(f"| data | {DATA_TEXT[case['data']]} | {tdata} |")
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
        good, bad = case["plant_text"].get(p, ck.PLANTS[p])
        if p in ck.implied(case):
            how = ("comes with this Keras configuration: no built-in torch optimizer/loss reproduces it, so the faithful "
                   "variant emulates Keras in the measurement only")
        else:
            how = "planted in the torch port"
        L += [f"- **`{p}`** ({ck.CATEGORY[p]}; {how}).", f"  - faithful port: {good}.", f"  - this port: {bad}."]
    if case["notes"]:
        L += ["", case["notes"].strip()]
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in ported["model"].modules())
    if has_bn and "bn-running-var-bias" not in present and "bn-running-var-bias" not in case["notes"]:
        L += ["", "`bn-running-var-bias` is in this pair too, as in every BatchNorm port (torch updates running_var with the "
              "unbiased batch variance; no flag changes that): it is what keeps the faithful port's eval-mode curve a little "
              "off Keras's. It is neither `present` nor `absent` in expected.json (reporting it at `info` is right)."]
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
    backend = "the torch backend of Keras 3.15.1" if case["keras_backend"] == "torch" else "Keras 3.15.1 on TensorFlow 2.21 (CPU)"
    L += [f"Made with {backend} and torch 2.15 (CPU); the measured numbers are from that setup.", ""]
    L += ["## Regenerate", "", "    PARALLAX_PYTHON=/work/pyenv/venv/bin/python cargo xtask fixtures --only " + case["name"],
          "", f"(`gen_keras.py`, then `gen_torch.py`; both read `case.py`; the code is in `../_lib/`.)", ""]
    (case["dir"] / "README.md").write_text("\n".join(L))
