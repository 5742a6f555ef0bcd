"""Framework-free half of the case kit: data, architectures, case specs, plants.

Imported by both `casekit_keras.py` (TensorFlow/Keras process) and
`casekit_torch.py` (PyTorch process); it imports numpy and scikit-learn only.

A case directory `models/cases/<name>/` holds `case.py`, which defines one
dict `CASE` (see `load_case` for the keys), and two three-line generators,
`gen_keras.py` and `gen_torch.py`, that hand the directory to
`casekit_keras.generate` / `casekit_torch.generate`.

The Keras side of a case is fixed: `CASE` describes a Keras model, its
compile arguments and its fit arguments.  The torch side is the *faithful
port* of that Keras model (weights copied with the correct mapping, exact
optimizer/loss/normalization equivalents), with the case's `plants` applied:
each plant is one catalogue id (`/work/shared/catalogue.md`) and changes the
port the way a careless port would.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

LIB = Path(__file__).resolve().parent
CASES = LIB.parent
MODELS = CASES.parent
EXPORT = MODELS / "export"
if str(EXPORT) not in sys.path:
    sys.path.insert(0, str(EXPORT))

SEED = 0
STEPS = 100  # measured training run: optimizer steps on each side
EVAL_EVERY = 10  # the metric is recorded after every 10 steps (and at step 0)
PROB_FLOOR = 1e-7  # probabilities are clipped to [1e-7, 1 - 1e-7] in the metric (both sides alike)
NEGLIGIBLE = 1e-3  # a difference whose own curve gap stays below this (nats) is called negligible

# ---------------------------------------------------------------------------
# data (numpy / scikit-learn only)


def _split(loader):
    from sklearn.model_selection import train_test_split

    X, y = loader(return_X_y=True)
    X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return np.asarray(X_train, dtype=np.float64), np.asarray(y_train, dtype=np.int64)


def load_data(name: str, n_ship: int = 256) -> dict:
    """The case data set.

    Returns {"raw": float64 rows before standardization (None if not
    standardized), "x": float32 Keras-layout inputs, "labels": int64,
    "classes": int, "standardize": bool, "n_stats": rows the statistics come
    from}.  Standardized sets use scikit-learn's StandardScaler (population
    std, ddof 0) fitted on the whole training split; the first `n_ship`
    training rows are shipped.
    """
    from sklearn import datasets

    if name == "digits":
        X, y = _split(datasets.load_digits)
        mean, std = X.mean(0), X.std(0)
        std[std == 0] = 1.0
        return {"raw": X[:n_ship], "mean": mean, "std": std, "x": ((X - mean) / std)[:n_ship].astype(np.float32),
                "labels": y[:n_ship], "classes": 10, "standardize": True, "n_stats": len(X), "raw_all": X}
    if name == "digits_2ch":
        # two channels: the image and its left-right mirror (NHWC)
        X, y = _split(datasets.load_digits)
        img = (X[:n_ship] / 16.0).reshape(-1, 8, 8)
        x = np.stack([img, img[:, :, ::-1]], axis=-1).astype(np.float32)
        return {"raw": None, "x": x, "labels": y[:n_ship], "classes": 10, "standardize": False}
    if name == "digits_images":
        X, y = _split(datasets.load_digits)
        x = (X[:n_ship] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
        return {"raw": None, "x": x, "labels": y[:n_ship], "classes": 10, "standardize": False}
    if name == "digits_raw":
        X, y = _split(datasets.load_digits)
        return {"raw": None, "x": X[:n_ship].astype(np.float32), "labels": y[:n_ship], "classes": 10, "standardize": False}
    if name == "breast_cancer_raw":
        X, y = _split(datasets.load_breast_cancer)
        return {"raw": None, "x": X[:n_ship].astype(np.float32), "labels": y[:n_ship], "classes": 2, "standardize": False}
    if name == "wine_sorted":
        # the wine training split standardized as "wine", rows sorted by class (a file sorted by label)
        d = load_data("wine", n_ship)
        order = np.argsort(d["labels"], kind="stable")
        return {"raw": None, "x": d["x"][order], "labels": d["labels"][order], "classes": 3, "standardize": True}
    if name in ("wine", "breast_cancer"):
        loader = datasets.load_wine if name == "wine" else datasets.load_breast_cancer
        X, y = _split(loader)
        mean, std = X.mean(0), X.std(0)  # what StandardScaler computes (ddof 0)
        std[std == 0] = 1.0
        from sklearn.preprocessing import StandardScaler

        x = StandardScaler().fit(X).transform(X)
        return {"raw": X[:n_ship], "raw_all": X, "mean": mean, "std": std, "x": x[:n_ship].astype(np.float32),
                "labels": y[:n_ship], "classes": 3 if name == "wine" else 2, "standardize": True, "n_stats": len(X)}
    if name == "diabetes":
        # regression: scikit-learn's load_diabetes, X and y standardized (StandardScaler, ddof 0) on the training split
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y = datasets.load_diabetes(return_X_y=True)
        X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.2, random_state=0)
        x = StandardScaler().fit(X_train).transform(X_train)
        t = (y_train - y_train.mean()) / y_train.std()
        return {"raw": None, "x": x[:n_ship].astype(np.float32), "labels": t[:n_ship].astype(np.float32), "classes": 1,
                "standardize": True}
    if name == "sequences":
        # as models/rnn/data.py: N sequences of T tokens from 0..V-1 (PCG64 seed 0);
        # the label is the third of the vocabulary that occurs most often.
        rng = np.random.default_rng(0)
        x = rng.integers(0, SEQ_V, size=(n_ship, SEQ_T), dtype=np.int64)
        counts = np.stack([np.bincount(row // 17, minlength=3) for row in x])
        return {"raw": None, "x": x, "labels": counts.argmax(axis=1).astype(np.int64), "classes": 3, "standardize": False}
    if name == "padded_sequences":
        # tokens 1..V-1 (0 is padding), lengths 3..T, post-padded with 0; label as in "sequences", valid tokens only
        rng = np.random.default_rng(2)
        x = rng.integers(1, SEQ_V, size=(n_ship, SEQ_T), dtype=np.int64)
        lengths = rng.integers(3, SEQ_T + 1, size=n_ship)
        x[np.arange(SEQ_T)[None, :] >= lengths[:, None]] = 0
        counts = np.stack([np.bincount(row[row > 0] // 17, minlength=3) for row in x])
        return {"raw": None, "x": x, "labels": counts.argmax(axis=1).astype(np.int64), "classes": 3, "standardize": False}
    if name == "signals":
        # float sequences: N(0, 1) noise of shape (T, 3); the label c in {0, 1, 2} adds 0.5 to feature c at every step
        rng = np.random.default_rng(1)
        labels = rng.integers(0, 3, size=n_ship).astype(np.int64)
        x = rng.normal(0.0, 1.0, size=(n_ship, SEQ_T, SIG_F))
        x[np.arange(n_ship), :, labels] += 0.5
        return {"raw": None, "x": x.astype(np.float32), "labels": labels, "classes": 3, "standardize": False}
    raise ValueError(f"unknown data set {name!r}")


SEQ_T = 12
SEQ_V = 50
SIG_F = 3


def batches(n_rows: int, batch_size: int, steps: int = STEPS) -> list[np.ndarray]:
    """Row indices of each optimizer step: epochs in order, no shuffling, last partial batch kept.

    This is what `model.fit(shuffle=False)` and `DataLoader(shuffle=False,
    drop_last=False)` both do.
    """
    out = []
    while len(out) < steps:
        for start in range(0, n_rows, batch_size):
            out.append(np.arange(start, min(start + batch_size, n_rows)))
            if len(out) == steps:
                break
    return out


def train_rows(case: dict, n_rows: int) -> int:
    """Rows Model.fit trains on: validation_split holds out the last ones (keras/src/trainers/data_adapters/array_slicing.py)."""
    return int(math.floor(n_rows * (1.0 - case["validation_split"]))) if case["validation_split"] else n_rows


def epochs_for(n_rows: int, batch_size: int, steps: int = STEPS) -> int:
    return math.ceil(steps / math.ceil(n_rows / batch_size))


# ---------------------------------------------------------------------------
# architectures: one list of layer dicts, read by both kits

ARCH_DATA = {"mlp": "digits", "cnn": "digits_images", "rnn": "sequences", "branch": "wine", "seqgate": "signals"}


def layers_of(case: dict) -> list[dict]:
    """The layer list of a Sequential architecture (the `branch` model is built by hand)."""
    arch, o, classes = case["arch"], case["opts"], case["classes"]
    out_act = "sigmoid" if case["loss"] in BINARY_LOSSES else "softmax"
    out_units = 1 if case["loss"] in BINARY_LOSSES else classes
    if case["loss"] in REGRESSION_LOSSES:
        out_act, out_units = None, 1
    if arch == "mlp":
        act = o.get("activation", "relu")
        layers = []
        if act == "leaky_relu":
            layers += [{"kind": "dense", "name": "fc1", "units": o.get("hidden", 32), "activation": None},
                       {"kind": "leaky_relu", "name": "act1"}]
        else:
            layers += [{"kind": "dense", "name": "fc1", "units": o.get("hidden", 32), "activation": act}]
        if o.get("bn"):
            layers += [{"kind": "bn", "name": "bn1"}]
        layers += [{"kind": "dense", "name": "fc2", "units": out_units, "activation": out_act}]
        return layers
    if arch == "cnn":
        act = o.get("activation", "relu")
        act_kind = "leaky_relu" if act == "leaky_relu" else "relu"
        stem = o.get("stem", "same")
        layers = [{"kind": "conv", "name": "conv1", "filters": 8, "kernel": 3,
                   "strides": 2 if stem == "strided" else 1, "padding": "same"}]
        if o.get("bn"):
            layers.append({"kind": "bn", "name": "bn1"})
        layers.append({"kind": act_kind, "name": "act1"})
        if o.get("spatial_dropout"):
            layers.append({"kind": "sdropout", "name": "sdrop", "rate": o["spatial_dropout"]})
        if o.get("depthwise"):
            layers += [{"kind": "dwconv", "name": "dw", "kernel": 3}, {"kind": act_kind, "name": "act_dw"}]
        if o.get("up") == "transpose":
            layers += [{"kind": "convT", "name": "up", "filters": 8, "kernel": 3, "strides": 2},
                       {"kind": act_kind, "name": "act_up"}]
        elif o.get("up") == "bilinear":
            layers += [{"kind": "upsample", "name": "up", "size": 2}]
        pool = o.get("pool", "max" if stem != "strided" or o.get("up") else None)
        if pool == "max":
            layers.append({"kind": "maxpool", "name": "pool", "pool": 2})
        elif pool == "avg_same":
            layers.append({"kind": "avgpool", "name": "pool", "pool": 3, "strides": 2, "padding": "same"})
        if o.get("separable"):
            layers.append({"kind": "sepconv", "name": "conv2", "filters": 16, "kernel": 3})
        else:
            layers.append({"kind": "conv", "name": "conv2", "filters": 16, "kernel": 3, "strides": 1, "padding": "valid"})
        if o.get("bn"):
            layers.append({"kind": "bn", "name": "bn2"})
        layers.append({"kind": act_kind, "name": "act2"})
        if o.get("head") == "conv_gap":
            # classifier as a 1x1 convolution to the classes, global average pool (kept 1x1), softmax, flatten
            layers += [{"kind": "conv", "name": "head", "filters": out_units, "kernel": 1, "strides": 1, "padding": "valid"},
                       {"kind": "gap2d", "name": "gap"}, {"kind": "out_softmax", "name": "softmax"},
                       {"kind": "flatten", "name": "flatten"}]
            return layers
        layers.append({"kind": "flatten", "name": "flatten"})
        if o.get("dropout"):
            layers.append({"kind": "dropout", "name": "dropout", "rate": o["dropout"]})
        layers.append({"kind": "dense", "name": "fc", "units": out_units, "activation": out_act})
        return layers
    if arch == "rnn":
        layers = []
        if case["data"] in ("sequences", "padded_sequences"):
            layers.append({"kind": "embedding", "name": "embedding", "input_dim": SEQ_V, "output_dim": o.get("embed", 8),
                           "mask_zero": case["data"] == "padded_sequences"})
        if o.get("layernorm"):
            layers.append({"kind": "layernorm", "name": "ln"})
        if o.get("bn"):
            layers.append({"kind": "bn", "name": "bn"})
        layers.append({"kind": o.get("cell", "lstm"), "name": o.get("cell", "lstm"), "units": o.get("units", 16)})
        layers.append({"kind": "dense", "name": "fc", "units": out_units, "activation": out_act})
        return layers
    if arch == "seqgate":
        # per-step projection, softmax over its features (a soft gate), mean over time
        return [{"kind": "dense", "name": "proj", "units": 8, "activation": None},
                {"kind": "softmax", "name": "gate"},
                {"kind": "gap1d", "name": "pool"},
                {"kind": "dense", "name": "fc", "units": out_units, "activation": out_act}]
    raise ValueError(f"{arch} is not a Sequential architecture")


BINARY_LOSSES = ("binary", "binary_mse")
# regression losses on a linear (N, 1) output; their metric is the loss itself (see `metric`)
REGRESSION_LOSSES = ("mse", "mae", "huber")


def l2_layers(case: dict) -> list[str]:
    """The Dense layers of the `branch` model that carry `kernel_regularizer=L2(opts["l2"])`."""
    if case["arch"] != "branch" or not case["opts"].get("l2"):
        return []
    return list(case["opts"].get("l2_layers", ["branch_a"]))


def input_shape(case: dict) -> tuple:
    if case["arch"] == "branch":
        return (case["features"],)
    if case["arch"] in ("rnn", "seqgate") and case["data"] == "signals":
        return (SEQ_T, SIG_F)
    if case["arch"] == "cnn" and case["data"] == "digits_2ch":
        return (8, 8, 2)
    if case["arch"] == "mlp" and case["data"] == "diabetes":
        return (10,)
    return {"mlp": (64,), "cnn": (8, 8, 1), "rnn": (SEQ_T,)}[case["arch"]]


def shapes(case: dict) -> list[tuple]:
    """Keras-layout output shape (no batch axis) of every layer of `layers_of(case)`."""
    shape = input_shape(case)
    out = []
    for layer in layers_of(case):
        k = layer["kind"]
        if k == "dense":
            shape = shape[:-1] + (layer["units"],)
        elif k == "conv":
            h, w, _ = shape
            s, kk = layer["strides"], layer["kernel"]
            if layer["padding"] == "same":
                h, w = math.ceil(h / s), math.ceil(w / s)
            else:
                h, w = (h - kk) // s + 1, (w - kk) // s + 1
            shape = (h, w, layer["filters"])
        elif k == "sepconv":
            kk = layer["kernel"]
            shape = (shape[0] - kk + 1, shape[1] - kk + 1, layer["filters"])
        elif k in ("convT", "upsample"):
            s = layer.get("strides", layer.get("size"))
            shape = (shape[0] * s, shape[1] * s, layer.get("filters", shape[2]))
        elif k == "gap1d":
            shape = (shape[-1],)
        elif k == "gap2d":
            shape = (1, 1, shape[-1])
        elif k == "maxpool":
            shape = (shape[0] // layer["pool"], shape[1] // layer["pool"], shape[2])
        elif k == "avgpool":
            s = layer["strides"]
            shape = (math.ceil(shape[0] / s), math.ceil(shape[1] / s), shape[2])
        elif k == "flatten":
            shape = (int(np.prod(shape)),)
        elif k == "embedding":
            shape = shape + (layer["output_dim"],)
        elif k in ("lstm", "gru"):
            shape = (layer["units"],)
        out.append(shape)
    return out


# ---------------------------------------------------------------------------
# optimizers

KERAS_OPT_DEFAULTS = {
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "Adam": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "AdamW": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.004},
    "RMSprop": {"learning_rate": 1e-3, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    "Adagrad": {"learning_rate": 1e-3, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "Adadelta": {"learning_rate": 1e-3, "rho": 0.95, "epsilon": 1e-7},
    "Nadam": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "Adamax": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}

# the torch constructor defaults that a port "with defaults" gets
TORCH_OPT_DEFAULTS = {
    "SGD": {"lr": 1e-3},
    "Adam": {"lr": 1e-3, "eps": 1e-8},
    "AdamW": {"lr": 1e-3, "eps": 1e-8, "weight_decay": 1e-2},
    "RMSprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8},
    "Adagrad": {"lr": 1e-2, "eps": 1e-10, "initial_accumulator_value": 0.0},
    "Adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
    "NAdam": {"lr": 2e-3, "eps": 1e-8, "momentum_decay": 4e-3},
    "Adamax": {"lr": 2e-3, "eps": 1e-8},
}


KERAS_OPT_DEFAULTS["Lion"] = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.99}


def keras_optimizer(case: dict) -> tuple[str, dict, dict]:
    """(class name, the kwargs the case passes, all hyper-parameters with Keras defaults filled in).

    A learning-rate schedule is given as `"learning_rate": (schedule class, kwargs)`; in `full` the
    learning rate is then the schedule's initial rate and `full["schedule"]` the pair.
    """
    cls, kwargs = case["optimizer"]
    full = dict(KERAS_OPT_DEFAULTS[cls])
    full.update(kwargs)
    if isinstance(full["learning_rate"], tuple):
        full["schedule"] = full["learning_rate"]
        sched_kw = full["learning_rate"][1]
        full["learning_rate"] = sched_kw["initial_learning_rate"]
    return cls, dict(kwargs), full


def keras_lr(schedule: tuple, step: int) -> float:
    """The Keras schedule's learning rate at `step` (= optimizer.iterations, 0 for the first update)."""
    name, kw = schedule
    lr0 = kw["initial_learning_rate"]
    if name == "ExponentialDecay":
        p = step / kw["decay_steps"]
        if kw.get("staircase"):
            p = math.floor(p)
        return lr0 * kw["decay_rate"] ** p
    if name == "CosineDecay":
        alpha = kw.get("alpha", 0.0)
        s = min(step, kw["decay_steps"])
        return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / kw["decay_steps"])) + alpha)
    raise ValueError(name)


# ---------------------------------------------------------------------------
# plants: catalogue ids the kit can plant into the torch port

# id -> (what the faithful port does, what the planted port does instead)
PLANTS = {
    # optimizers (the port passes torch's defaults instead of the Keras values)
    "adam-epsilon-hat": ("torch `Adam(lr, eps=1e-7)` with eps re-set before every step to ε̂/√(1−β2^t) (the exact Keras update; "
                         "not expressible in train.json, used for the measurement only)",
                         "torch `Adam(params, lr=1e-3)` as constructed: ε = 1e-8 added to √v̂ (bias-corrected), "
                         "where Keras adds ε̂ = 1e-7 to √v (uncorrected)"),
    "adam-weight-decay-coupling": ("torch `AdamW(weight_decay=λ)` (decoupled, as Keras applies every optimizer's `weight_decay`)",
                                   "torch `Adam(weight_decay=λ)`: coupled L2 (λθ added to the gradient before the moments)"),
    "adamw-default-decay": ("torch `AdamW(weight_decay=0.004)`", "torch `AdamW()` default weight_decay=0.01"),
    "sgd-default-lr": ("torch `SGD(lr=0.01)`", "torch `SGD(lr=1e-3)` (torch's default)"),
    "rmsprop-eps-and-rho": ("torch `RMSprop(lr=1e-3, alpha=0.9, eps=0)` (Keras puts ε=1e-7 inside the square root; eps=0 is the "
                            "closest constant-eps mapping)", "torch `RMSprop()` defaults: lr=1e-2, alpha=0.99, eps=1e-8 outside the root"),
    "adagrad-init-eps": ("torch `Adagrad(lr=1e-3, initial_accumulator_value=0.1, eps=0)`",
                         "torch `Adagrad()` defaults: lr=1e-2, initial_accumulator_value=0, eps=1e-10 outside the root"),
    "adadelta-defaults": ("torch `Adadelta(lr=1e-3, rho=0.95, eps=1e-7)` (bit-exact)", "torch `Adadelta()` defaults: lr=1.0, rho=0.9, eps=1e-6"),
    "nadam-momentum-schedule": ("torch `NAdam(lr=1e-3, eps=1e-7, momentum_decay=1.0)` (exact)",
                                "torch `NAdam()` defaults: lr=2e-3, eps=1e-8, momentum_decay=4e-3 (μ_t schedule 0.96^(0.004·t))"),
    "adamax-eps-placement": ("torch `Adamax(lr=1e-3, eps=1e-7)` (ε inside instead of after the max: a negligible difference)", "torch `Adamax()` defaults: lr=2e-3, eps=1e-8 inside the max"),
    "clipnorm-per-tensor-vs-global": ("`clip_grad_norm_([p], c)` for each parameter separately (Keras `clipnorm` clips every variable's "
                                      "gradient on its own; measurement only, train.json can express only the global form)",
                                      "`torch.nn.utils.clip_grad_norm_(model.parameters(), c)`: one global norm over all gradients"),
    # normalization
    "bn-momentum-convention": ("`nn.BatchNorm2d(C, momentum=0.01, eps=1e-3)` (torch momentum = 1 − Keras momentum)",
                               "`nn.BatchNorm2d(C, momentum=0.99, eps=1e-3)`: the Keras value copied as is, so the running statistics "
                               "are almost replaced by every batch"),
    "bn-epsilon": ("`nn.BatchNorm2d(C, momentum=0.01, eps=1e-3)`", "`nn.BatchNorm2d(C, momentum=0.01)`: torch's default eps=1e-5"),
    "layernorm-eps-axis": ("`nn.LayerNorm(F, eps=1e-3)`", "`nn.LayerNorm(F)`: torch's default eps=1e-5"),
    # initialization
    "dense-init": ("Linear weights and biases copied from the Keras initial values (glorot_uniform kernel, zero bias)",
                   "every `nn.Linear` keeps torch's default init: kaiming_uniform(a=√5) weight, U(±1/√fan_in) bias"),
    "conv-init": ("Conv2d weights and biases copied from the Keras initial values", "every `nn.Conv2d` keeps torch's default init"),
    "embedding-init": ("Embedding weight copied from Keras (U(−0.05, 0.05))", "`nn.Embedding` keeps torch's default N(0, 1)"),
    "rnn-init": ("LSTM/GRU weights copied from Keras (glorot / orthogonal / zero bias, forget bias 1)",
                 "`nn.LSTM`/`nn.GRU` keep torch's default U(±1/√H) for every weight and both biases"),
    # layouts
    "flatten-order": ("the Dense kernel after Flatten permuted from (h, w, c) rows to (c, h, w) columns: "
                      "`K.reshape(H, W, C, out).transpose(3, 2, 0, 1).reshape(out, -1)`",
                      "`K.T` only: the rows stay in Keras's (h, w, c) flatten order while torch flattens NCHW as (c, h, w)"),
    "conv-layout": ("`K.transpose(3, 2, 0, 1)` (HWIO → OIHW)", "`K.reshape(out, in, kh, kw)`: the HWIO buffer reinterpreted, not transposed"),
    "lstm-layout": ("`W_ih = K.T`, `W_hh = R.T`, `b_ih = b`, `b_hh = 0`",
                    "`W_ih = K.reshape(4H, in)`, `W_hh = R.reshape(4H, H)`: reshaped instead of transposed (biases right)"),
    "gru-layout-reset-after": ("z and r blocks swapped (Keras z, r, h → torch r, z, n) in kernel, recurrent kernel and both bias rows",
                               "kernel/recurrent kernel transposed and the (2, 3H) bias split correctly, but the gate blocks left "
                               "in Keras's z, r, h order"),
    # padding / pooling
    "same-padding-asymmetric": ("`F.pad(x, (0, 1, 0, 1))` then `nn.Conv2d(..., stride=2, padding=0)` (TF puts the extra pixel "
                                "at the bottom/right)", "`nn.Conv2d(..., stride=2, padding=1)`: symmetric, the sampling grid shifts by one pixel"),
    "pooling-padding": ("`nn.AvgPool2d(3, 2, ceil_mode=True)`: the last window runs off the bottom/right edge and is divided by its "
                        "valid size, exactly TF's 'same' (pad 0 before, 1 after, padding not counted)",
                        "`nn.AvgPool2d(3, 2, padding=1)`: symmetric padding with count_include_pad=True"),
    # losses
    "double-softmax": ("`forward` returns logits; `nn.CrossEntropyLoss()`",
                       "`forward` ends with `torch.softmax(..., dim=1)` as the Keras Dense(activation='softmax') does, and "
                       "`nn.CrossEntropyLoss()` applies log_softmax again"),
    "label-smoothing": ("`nn.CrossEntropyLoss(label_smoothing=0.1)`", "`nn.CrossEntropyLoss()`: no smoothing"),
    "bce-clipping": ("`forward` returns logits; `nn.BCEWithLogitsLoss()`",
                     "`forward` ends with `torch.sigmoid`; `nn.BCELoss()` on the probabilities (log clamped at −100, "
                     "zero gradient through a saturated sigmoid)"),
    # regularization
    "l2-regularizer-factor-two": ("`weight_decay=2λ` on that kernel's param group only (Keras adds λ·Σw², gradient 2λw)",
                                  "`weight_decay=λ` on that kernel's param group: half the Keras penalty"),
    # activations
    "gelu-approximate": ("`nn.GELU()` (exact erf form, as Keras `activation='gelu'`)", "`nn.GELU(approximate='tanh')`"),
    "leaky-relu-slope": ("`nn.LeakyReLU(0.3)` (Keras `LeakyReLU()` default negative_slope=0.3)", "`nn.LeakyReLU()`: torch default 0.01"),
    # data
    "std-ddof": ("inputs standardized with the population std: `x.std(0, correction=0)` (what StandardScaler does)",
                 "inputs standardized with `torch.std` (correction=1): every feature √(n/(n−1)) smaller on the torch side"),
    "fit-batch-shuffle-defaults": ("`DataLoader(ds, batch_size=32, shuffle=False)`", "`DataLoader(ds, shuffle=False)`: torch's default batch_size=1"),
    # further catalogue entries
    "sgd-momentum-lr-in-buffer": ("torch `SGD(momentum=μ)` with every momentum buffer rescaled by η_{t−1}/η_t before each step "
                                  "(Keras keeps the lr inside its velocity; measurement only, no torch flag does this)",
                                  "torch `SGD(momentum=μ)` + the same per-step schedule: torch's buffer holds raw gradients and the "
                                  "new lr multiplies the whole buffer"),
    "lr-schedule-granularity": ("`scheduler.step()` after every optimizer step (`interval: step`), as Keras evaluates a "
                                "LearningRateSchedule at every update", "`scheduler.step()` once per epoch (`interval: epoch`): the "
                                "per-step decay runs steps_per_epoch× too slowly"),
    "cosine-decay-semantics": ("a per-step `LambdaLR` that stays at the final value after decay_steps, as Keras `CosineDecay` "
                               "clamps (measurement only)", "`CosineAnnealingLR(T_max=decay_steps)` stepped per step: past T_max the "
                               "learning rate rises again"),
    "ema-weights": ("an exponential moving average of the weights (first update copies θ, then μ·avg + (1−μ)·θ) copied into the "
                    "model at the end of training, as Keras `use_ema=True` does at the end of fit (measurement only)",
                    "no weight averaging: the raw final weights"),
    "bn-running-var-bias": ("running_var updated with the biased batch variance (the update term rescaled by (n−1)/n after each "
                            "training forward; measurement only, torch has no flag)",
                            "`nn.BatchNorm1d` as is: running_var is updated with the unbiased batch variance (÷(n−1))"),
    "bn-frozen-means-inference": ("the frozen BatchNorm stays in eval mode during training (a `BatchNorm2d` subclass whose "
                                  "`train()` keeps it in eval), so it normalizes with its running statistics and never updates them, "
                                  "as Keras does for a BatchNormalization layer with `trainable = False`",
                                  "`BatchNorm2d` with its weight/bias frozen (param group lr 0) but in training mode: it normalizes "
                                  "with batch statistics and keeps updating running_mean/var"),
    "depthwise-init": ("depthwise kernel copied from Keras: `K.reshape(kh, kw, C*M).transpose(2, 0, 1)[:, None]`",
                       "`nn.Conv2d(C, C, 3, groups=C)` keeps torch's default init (bound 1/√(kh·kw), bias U(±1/3))"),
    "dense-layout": ("`W = K.T`", "`W = K.reshape(out, in)`: the (in, out) Keras kernel reinterpreted instead of transposed"),
    "conv-transpose-layout": ("`W = K.transpose(3, 2, 0, 1)` (Keras (kh, kw, out, in) → torch (in, out, kh, kw))",
                              "`W = K.transpose(2, 3, 0, 1)`: in and out swapped (the Conv2D mapping applied to a Conv2DTranspose)"),
    "depthwise-separable-layout": ("depthwise `K.reshape(kh, kw, C*M).transpose(2, 0, 1)[:, None]`, pointwise `P.transpose(3, 2, 0, 1)`",
                                   "depthwise `K.reshape(C*M, 1, kh, kw)`: the HWC buffer reinterpreted, not transposed"),
    "conv-transpose-same-crop": ("`nn.ConvTranspose2d(8, 8, 3, stride=2)` then `y[:, :, 0:8, 0:8]` (TF crops k−s = 1 pixel, at the end)",
                                 "`nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)`: crops the pixel at the start"),
    "resize-semantics": ("`F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)` (half-pixel centres, as "
                         "`UpSampling2D(interpolation='bilinear')`)", "`F.interpolate(..., mode='bilinear', align_corners=True)`"),
    "channels-last": ("NHWC inputs permuted to NCHW: `x.transpose(0, 3, 1, 2)`",
                      "NHWC buffer reshaped to NCHW: `x.reshape(N, C, H, W)` (pixels and channels interleaved)"),
    "rnn-dropout-and-masking": ("the LSTM output at each sequence's last non-padding step (`out[arange(N), lengths − 1]`), as "
                                "Keras's `mask_zero=True` makes the LSTM skip padded steps",
                                "`h_n[-1]`: the state after the zero padding, which the LSTM processes like tokens"),
    "softmax-implicit-dim": ("`nn.Softmax(dim=-1)`", "`nn.Softmax()` on a (N, T, F) tensor: the implicit dim is 0, the batch axis"),
    "loss-reduction-weights": ("`(F.cross_entropy(z, y, reduction='none') * w[y]).sum() / N` (Keras: Σ wᵢℓᵢ / N; measurement only)",
                               "`nn.CrossEntropyLoss(weight=w)`: Σ w_yᵢ ℓᵢ / Σ w_yᵢ"),
    "loss-per-sample-mean-and-sum": ("`nn.MSELoss(reduction='sum')(p, y) / C` (Keras `reduction='sum'` sums per-sample means)",
                                     "`nn.MSELoss(reduction='sum')`: sums every element, C× the Keras loss"),
    "target-shape-broadcast": ("targets shaped like the output, (N, 1)", "targets of shape (N,): `MSELoss` broadcasts (N, 1) against (N,) "
                               "to (N, N) (with a UserWarning)"),
    "kld-poisson-cosine": ("`nn.KLDivLoss(reduction='batchmean')` on log-probabilities", "`nn.KLDivLoss()` (reduction='mean'): divides by "
                           "N·C instead of N"),
    "cce-probability-clipping": ("`nn.CrossEntropyLoss()` on logits is what Keras computes on the TensorFlow backend; on the "
                                 "torch backend Keras clips the probabilities to [1e-7, 1 − 1e-7] (measurement only: the torch variant "
                                 "`NLLLoss(log(softmax(z).clamp(1e-7, 1 − 1e-7)))`)",
                                 "`nn.CrossEntropyLoss()` on logits: exact, no cap, full gradient for confidently wrong samples"),
    "validation-split-tail": ("the torch inputs are the rows Keras trains on: the first ⌊N·(1 − v)⌋ (Keras's "
                              "`validation_split` holds out the last rows, before any shuffling)",
                              "the torch inputs are a `random_split(ds, [0.75, 0.25])` training subset: a random 75% of the rows, "
                              "in random order"),
    "weight-constraints": ("after every `opt.step()`, `with torch.no_grad(): w.mul_(clip(‖w‖, 0, c) / (1e-7 + ‖w‖))` on each "
                           "Linear weight row (Keras `MaxNorm(c)`: the norm of each unit's incoming weights, axis 0 of the "
                           "kernel; measurement only, train.json has no field for it)",
                           "no constraint: torch applies none unless the training loop does"),
    "bn-affine-init": ("BatchNorm gamma/beta copied from Keras (ones, zeros)",
                       "GAN-style `nn.init.normal_(bn.weight, 1.0, 0.02)`, `nn.init.zeros_(bn.bias)`"),
    "architecture-mismatch": ("the Keras head: Flatten → `nn.Linear` (weights copied)",
                              "a different head: a 1×1 `nn.Conv2d` to the classes + global average pooling (torch init)"),
    "no-counterpart-optimizers": ("a hand-written Lion step in torch (measurement only: torch.optim has no Lion)",
                                  "`torch.optim.Adam(lr=1e-3)` as a stand-in"),
}

# id -> optimizer classes (Keras) the id belongs to
OPTIMIZER_PLANTS = {
    "adam-epsilon-hat": ("Adam", "AdamW"),
    "adam-weight-decay-coupling": ("Adam",),
    "adamw-default-decay": ("AdamW",),
    "sgd-default-lr": ("SGD",),
    "rmsprop-eps-and-rho": ("RMSprop",),
    "adagrad-init-eps": ("Adagrad",),
    "adadelta-defaults": ("Adadelta",),
    "nadam-momentum-schedule": ("Nadam",),
    "adamax-eps-placement": ("Adamax",),
}

CATEGORY = {
    "adam-epsilon-hat": "optimizer", "adam-weight-decay-coupling": "optimizer", "adamw-default-decay": "optimizer",
    "sgd-default-lr": "optimizer", "rmsprop-eps-and-rho": "optimizer", "adagrad-init-eps": "optimizer",
    "adadelta-defaults": "optimizer", "nadam-momentum-schedule": "optimizer", "adamax-eps-placement": "optimizer",
    "clipnorm-per-tensor-vs-global": "optimizer", "bn-momentum-convention": "normalization", "bn-epsilon": "normalization",
    "layernorm-eps-axis": "normalization", "dense-init": "init", "conv-init": "init", "embedding-init": "init",
    "rnn-init": "init", "flatten-order": "layout", "conv-layout": "layout", "lstm-layout": "layout",
    "gru-layout-reset-after": "layout", "same-padding-asymmetric": "padding", "pooling-padding": "padding",
    "double-softmax": "loss", "label-smoothing": "loss", "bce-clipping": "loss", "l2-regularizer-factor-two": "regularization",
    "gelu-approximate": "activation", "leaky-relu-slope": "activation", "std-ddof": "data", "fit-batch-shuffle-defaults": "data",
    "sgd-momentum-lr-in-buffer": "optimizer", "lr-schedule-granularity": "schedule", "cosine-decay-semantics": "schedule",
    "ema-weights": "optimizer", "bn-running-var-bias": "normalization", "bn-frozen-means-inference": "normalization",
    "depthwise-init": "init", "dense-layout": "layout", "conv-transpose-layout": "layout", "depthwise-separable-layout": "layout",
    "conv-transpose-same-crop": "padding", "resize-semantics": "preprocessing", "channels-last": "layout",
    "rnn-dropout-and-masking": "recurrent", "softmax-implicit-dim": "numerics", "loss-reduction-weights": "loss",
    "loss-per-sample-mean-and-sum": "loss", "target-shape-broadcast": "loss", "kld-poisson-cosine": "loss",
    "no-counterpart-optimizers": "optimizer", "cce-probability-clipping": "loss", "validation-split-tail": "data",
    "weight-constraints": "regularization", "bn-affine-init": "init", "architecture-mismatch": "architecture",
}


def implied(case: dict) -> list[str]:
    """Differences no torch.optim constructor can avoid for this Keras setup (present in every port)."""
    cls, _kw, full = keras_optimizer(case)
    out = ["adam-epsilon-hat"] if cls in ("Adam", "AdamW") else []
    if cls == "SGD" and full["momentum"] and "schedule" in full:
        out.append("sgd-momentum-lr-in-buffer")
    if cls == "Lion":
        out.append("no-counterpart-optimizers")
    if case.get("class_weight"):
        out.append("loss-reduction-weights")
    if case.get("keras_backend", "tensorflow") != "tensorflow" and case["loss"] in ("categorical", "sparse"):
        out.append("cce-probability-clipping")
    if case["optimizer"][1].get("use_ema"):
        out.append("ema-weights")
    return out


def present_ids(case: dict) -> list[str]:
    out = list(case["plants"])
    for i in implied(case):
        if i not in out:
            out.append(i)
    return out


def default_absent(case: dict) -> list[str]:
    """Plausible ids that are NOT in this case (a careless checker might report them)."""
    o, arch, cls = case["opts"], case["arch"], case["optimizer"][0]
    full = keras_optimizer(case)[2]
    kinds = {layer["kind"] for layer in layers_of(case)} if arch != "branch" else {"dense"}
    pool = [p for p, classes in OPTIMIZER_PLANTS.items() if cls in classes]  # this optimizer's own entries
    pool += ["double-softmax", "std-ddof", "fit-batch-shuffle-defaults"]
    if case["loss"] in REGRESSION_LOSSES:
        pool.remove("double-softmax")
    if case["loss"] in BINARY_LOSSES:
        pool = [p for p in pool if p != "double-softmax"] + (["bce-clipping"] if case["loss"] == "binary" else [])
    if "schedule" in full:
        pool += ["lr-schedule-granularity"] + (["cosine-decay-semantics"] if full["schedule"][0] == "CosineDecay" else [])
        if cls == "SGD" and not full["momentum"]:
            pool.append("sgd-momentum-lr-in-buffer")
    if "dwconv" in kinds:
        pool.append("depthwise-init")
    if "sepconv" in kinds:
        pool.append("depthwise-separable-layout")
    if "convT" in kinds:
        pool += ["conv-transpose-layout", "conv-transpose-same-crop"]
    if "upsample" in kinds:
        pool.append("resize-semantics")
    if "softmax" in kinds:
        pool.append("softmax-implicit-dim")
    if case["data"] == "digits_2ch":
        pool.append("channels-last")
    if o.get("frozen_bn"):
        pool.append("bn-frozen-means-inference")
    if case["label_smoothing"] == 0 and case["loss"] not in REGRESSION_LOSSES:
        pool.append("label-smoothing")
    if case["loss"] in ("categorical", "sparse") and case["keras_backend"] == "tensorflow":
        pool.append("cce-probability-clipping")  # TF backend: CE from the softmax's logits, no clipping
    if cls != "SGD":
        pool.append("sgd-default-lr")
    if cls not in ("Adam", "AdamW"):
        pool += ["adam-epsilon-hat", "adam-weight-decay-coupling"]
    if not case["optimizer"][1].get("clipnorm"):
        pool.append("clipnorm-per-tensor-vs-global")
    if "dense" in kinds:
        pool += ["dense-init", "dense-layout"]
    if "conv" in kinds:
        pool += ["conv-init", "conv-layout", "flatten-order", "same-padding-asymmetric"]
    if "bn" in kinds:
        pool += ["bn-momentum-convention", "bn-epsilon"]
    if "embedding" in kinds:
        pool.append("embedding-init")
    if "lstm" in kinds or "gru" in kinds:
        pool.append("rnn-init")
    if "lstm" in kinds:
        pool.append("lstm-layout")
    if "gru" in kinds:
        pool.append("gru-layout-reset-after")
    if "layernorm" in kinds:
        pool.append("layernorm-eps-axis")
    if "leaky_relu" in kinds:
        pool.append("leaky-relu-slope")
    if o.get("activation") == "gelu":
        pool.append("gelu-approximate")
    if arch == "branch":
        pool.append("l2-regularizer-factor-two")
    if "avgpool" in kinds:
        pool.append("pooling-padding")
    present = set(present_ids(case))
    out = []
    for i in pool + list(case.get("absent_extra", [])):
        if i not in present and i not in out and i not in case.get("absent_drop", []):
            out.append(i)
    return out


# ---------------------------------------------------------------------------
# case specs


def load_case(case_dir) -> dict:
    """Read `<case_dir>/case.py` and fill in defaults.

    CASE keys: `summary` (one line), `arch` ("mlp" | "cnn" | "rnn" |
    "branch"), `opts` (architecture options), `data` (default per arch),
    `optimizer` (Keras class name, kwargs), `loss` ("categorical" |
    "sparse" | "binary"), `label_smoothing`, `batch_size` (32), `plants`
    (catalogue ids planted into the torch port), `top` (the id expected to
    have the largest measured impact; None for a faithful port),
    `absent_extra` (ids added to the automatic `absent` list), `absent_drop`
    (ids removed from it), `mentions` / `never` (strings the Markdown report
    must / must not contain; written to expected.json only when given),
    `plant_values` (values a plant puts into the port: `bn_eps`, `batch_size`,
    `rmsprop` kwargs, instead of torch's defaults), `plant_text` (README
    wording of a plant for this case), `pretrain`
    (Keras optimizer steps run before the export, so that the bundle holds
    trained weights; 0 = untrained), `notes` (free text for README.md).
    """
    case_dir = Path(case_dir).resolve()
    spec = importlib.util.spec_from_file_location(f"case_{case_dir.name.replace('-', '_')}", case_dir / "case.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    case = dict(module.CASE)
    case["name"] = case_dir.name
    case["dir"] = case_dir
    case.setdefault("opts", {})
    case.setdefault("data", ARCH_DATA[case["arch"]])
    case.setdefault("loss", "categorical")
    case.setdefault("label_smoothing", 0.0)
    case.setdefault("batch_size", 32)
    case.setdefault("plants", [])
    case.setdefault("notes", "")
    case.setdefault("pretrain", 0)
    case.setdefault("class_weight", None)
    case.setdefault("keras_backend", "tensorflow")
    case.setdefault("validation_split", 0.0)
    case.setdefault("plant_values", {})  # e.g. {"bn_eps": 0.8}: the value a plant puts in the port instead of torch's default
    case.setdefault("plant_text", {})  # id -> (faithful, this port): overrides PLANTS for this case's README
    unknown = [p for p in case["plants"] if p not in PLANTS]
    if unknown:
        raise ValueError(f"{case['name']}: unknown plants {unknown}")
    for p, classes in OPTIMIZER_PLANTS.items():
        if p in case["plants"] and case["optimizer"][0] not in classes:
            raise ValueError(f"{case['name']}: {p} needs a Keras {classes} optimizer")
    data = load_data(case["data"])
    case["classes"] = data["classes"]
    if case["arch"] == "branch":
        case["features"] = data["x"].shape[1]
    return case


def json_round(value, digits: int = 6):
    """Round floats to `digits` significant digits (measured.json stays readable and stable)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: json_round(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_round(v, digits) for v in value]
    return value


def write_json(path, value) -> None:
    """JSON with 2-space indents, lists of plain values kept on one line."""
    import re

    text = json.dumps(json_round(value), indent=2, ensure_ascii=False)
    text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    Path(path).write_text(text + "\n")


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """The measurement metric: mean cross-entropy of predicted probabilities, clipped to [1e-7, 1-1e-7].

    probs (N, C) class probabilities, or (N, 1) sigmoid outputs for binary
    labels.  Computed in float64 the same way for both sides.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
    labels = np.asarray(labels).reshape(-1)
    if p.shape[1] == 1:
        q = p[:, 0]
        return float(-np.mean(labels * np.log(q) + (1 - labels) * np.log(1 - q)))
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))


def metric(outputs: np.ndarray, labels: np.ndarray, loss: str) -> float:
    """The measurement metric of a case: cross-entropy of probabilities, or for a regression loss
    the Keras loss itself (mean squared error, mean absolute error, Huber with δ = 1) of the
    (N, 1) outputs against the float targets, in float64, the same code for both sides."""
    if loss not in REGRESSION_LOSSES:
        return cross_entropy(outputs, labels)
    d = np.asarray(outputs, dtype=np.float64).reshape(-1) - np.asarray(labels, dtype=np.float64).reshape(-1)
    if loss == "mse":
        return float(np.mean(d * d))
    if loss == "mae":
        return float(np.mean(np.abs(d)))
    a = np.abs(d)
    return float(np.mean(np.where(a <= 1.0, 0.5 * d * d, a - 0.5)))


METRIC_TEXT = {"mse": "mean squared error", "mae": "mean absolute error", "huber": "Huber loss (δ = 1)"}


def eval_steps(steps: int = STEPS) -> list[int]:
    return list(range(0, steps + 1, EVAL_EVERY))
