"""Check the committed reference.safetensors files against the real frameworks.

    python verify_reference.py [FIXTURE_DIR ...]   (default: models/{seed-mlp,cnn,rnn,functional})

For each fixture this runs two child processes (TensorFlow and PyTorch are
never imported together) and then a numpy-only cross-check:

  --side keras FIXTURE   loads keras/model.keras with keras.saving.load_model
      (compiled: loss and optimizer come from the archive's compile_config) and
      recomputes forward.inference and forward.training (eager), bn.*, loss and
      grad.* (eager GradientTape + model.compute_loss, where the generator used
      a tf.function), then replays the 20-step run with model.train_on_batch,
      i.e. Model.fit's own train_function, on the rows in train.index, and
      compares train.loss, every train.param.<t>.* and train.bn.*.
  --side torch FIXTURE   builds the fixture's nn.Module (the `Net` class of
      FIXTURE/gen_torch.py, whose script body only runs under __main__),
      loads torch/state_dict.safetensors, rebuilds the loss and optimizer from
      torch/train.json (foreach=False), and recomputes the same tensors.
  cross-check (numpy): for the ports that copy the Keras weights (cnn, rnn,
      functional) the two references must describe the same function: initial
      parameters equal after the layout mapping, softmax(torch forward) = Keras
      forward in both modes, torch loss = Keras loss.compiled, gradients equal
      after the mapping (Keras adds 2*l2*W to branch_a/kernel in functional),
      BatchNorm moving means equal and the moving variances related by the
      biased/unbiased factor n/(n-1); for functional the whole SGD run must
      agree (torch's weight decay 2*l2 = Keras's L2 gradient).

Relative error = max|a - b| / max|b|.  Exits non-zero on the first failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

EXPORT = Path(__file__).resolve().parent
MODELS = EXPORT.parent
FIXTURES = ["seed-mlp", "cnn", "rnn", "functional"]

TOL_FORWARD = 1e-6
TOL_GRAD = 1e-5
TOL_PARAM = 1e-5
TOL_CROSS = 1e-4  # Keras vs torch on the same function (different kernels, float32)


def rel(a, b, scale=None) -> float:
    """max|a - b| / max|b| (or / scale when given)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if scale is None:
        scale = float(np.abs(b).max()) if b.size else 0.0
    return float(np.abs(a - b).max()) / (scale if scale > 0 else 1.0)


def grad_scale(ref: dict, prefix: str = "grad.") -> float:
    """The largest |entry| over all tensors named prefix*: the scale gradients are compared on.

    Per-tensor relative error is meaningless for a gradient that is zero in
    exact arithmetic, like the bias of a convolution followed by BatchNorm in
    training mode (cnn: conv2d/bias, conv1.bias ...), whose stored values are
    float32 rounding noise (~1e-7 against a largest gradient of ~0.5).
    """
    return max(float(np.abs(np.asarray(v)).max()) for k, v in ref.items() if k.startswith(prefix))


class Checker:
    def __init__(self, label: str):
        self.label = label
        self.worst: dict[str, float] = {}

    def close(self, what: str, got, want, tol: float, scale=None) -> None:
        err = rel(got, want, scale)
        group = what.split(".")[0] if not what.startswith("train.") else ".".join(what.split(".")[:2])
        self.worst[group] = max(self.worst.get(group, 0.0), err)
        if not err <= tol:
            raise AssertionError(f"{self.label}: {what} differs: relative error {err:.3g} > {tol:g}")

    def report(self) -> None:
        parts = ", ".join(f"{k} {v:.2g}" for k, v in sorted(self.worst.items()))
        print(f"  {self.label}: OK (max rel err: {parts})")


def load_reference(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    assert set(meta) == {"framework", "framework_version", "description"}, meta
    description = json.loads(meta["description"])
    return tensors, meta, description


def recorded(description) -> list[int]:
    return description["train"]["recorded_steps"]


# --------------------------------------------------------------------------- keras


def side_keras(fixture: Path) -> None:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import warnings

    warnings.filterwarnings("ignore")
    import keras
    import tensorflow as tf
    from safetensors.numpy import load_file

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    bundle = fixture / "keras"
    ref, meta, desc = load_reference(bundle / "reference.safetensors")
    assert meta["framework"] == "keras" and meta["framework_version"] == keras.__version__, meta
    inputs = load_file(str(bundle / "inputs.safetensors"))
    x, y = inputs["x"], inputs["y"]
    model = keras.saving.load_model(str(bundle / "model.keras"))
    c = Checker(f"{fixture.name}/keras")
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    names = {id(v): f"{l.name}/{v.name}" for l in layers for v in l.weights}
    trainable = list(model.trainable_variables)
    bns = [l for l in layers if isinstance(l, keras.layers.BatchNormalization)]

    for name, v in zip((names[id(v)] for v in trainable), trainable):
        c.close(f"train.param.0.{name}", v.numpy(), ref[f"train.param.0.{name}"], 0.0)
    xb, yb = x[:32], y[:32]
    c.close("forward.inference", model(xb, training=False), ref["forward.inference"], TOL_FORWARD)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    snapshot = [(v, v.numpy()) for v in model.variables]
    c.close("forward.training", model(xb, training=True), ref["forward.training"], TOL_FORWARD)
    for l in bns:
        c.close(f"bn.{l.name}/moving_mean", l.moving_mean, ref[f"bn.{l.name}/moving_mean"], TOL_FORWARD)
        c.close(f"bn.{l.name}/moving_variance", l.moving_variance, ref[f"bn.{l.name}/moving_variance"], TOL_FORWARD)
    for v, value in snapshot:
        v.assign(value)

    with tf.GradientTape() as tape:  # eager, where the generator used a tf.function
        y_pred = model(xb, training=True)
        loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=True)
    grads = tape.gradient(loss, trainable)
    c.close("loss", loss, ref["loss"], TOL_GRAD)
    if "loss.regularization" in ref:
        reg = sum(float(tf.reduce_sum(r)) for r in model.losses)
        c.close("loss.regularization", reg, ref["loss.regularization"], TOL_GRAD)
    grad_names = {k[len("grad."):] for k in ref if k.startswith("grad.")}
    assert grad_names == {names[id(v)] for v in trainable}, grad_names
    for v, g in zip(trainable, grads):
        c.close(f"grad.{names[id(v)]}", tf.convert_to_tensor(g), ref[f"grad.{names[id(v)]}"], TOL_GRAD, grad_scale(ref))
    for v, value in snapshot:
        v.assign(value)

    # Model.fit's own train_function, one call per fixed batch.
    index = ref["train.index"]
    steps = len(index)
    losses = []
    for t in range(steps + 1):
        if t in recorded(desc):
            for v in trainable:
                name = names[id(v)]
                c.close(f"train.param.{t}.{name}", v.numpy(), ref[f"train.param.{t}.{name}"], TOL_PARAM)
        if t == steps:
            break
        logs = model.train_on_batch(x[index[t]], y[index[t]], return_dict=True)
        losses.append(logs["loss"])
    c.close("train.loss", np.asarray(losses), ref["train.loss"], TOL_GRAD)
    for l in bns:
        c.close(f"train.bn.{steps}.{l.name}/moving_mean", l.moving_mean, ref[f"train.bn.{steps}.{l.name}/moving_mean"], TOL_PARAM)
        c.close(f"train.bn.{steps}.{l.name}/moving_variance", l.moving_variance, ref[f"train.bn.{steps}.{l.name}/moving_variance"], TOL_PARAM)
    c.report()


# --------------------------------------------------------------------------- torch


def side_torch(fixture: Path) -> None:
    import importlib.util

    import torch
    from safetensors.torch import load_file

    sys.dont_write_bytecode = True
    sys.path[:0] = [str(fixture), str(EXPORT)]
    spec = importlib.util.spec_from_file_location("gen_torch", fixture / "gen_torch.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # defines Net; main() only runs as a script
    torch.use_deterministic_algorithms(True)

    bundle = fixture / "torch"
    ref_np, meta, desc = load_reference(bundle / "reference.safetensors")
    assert meta["framework"] == "torch" and meta["framework_version"] == torch.__version__, meta
    ref = {k: torch.from_numpy(v) for k, v in ref_np.items()}
    inputs = load_file(str(bundle / "inputs.safetensors"))
    x, y = inputs["x"], inputs["y"]
    train = json.loads((bundle / "train.json").read_text())
    c = Checker(f"{fixture.name}/torch")

    model = gen.Net()
    state = load_file(str(bundle / "state_dict.safetensors"))
    model.load_state_dict(state)
    loss_fn = getattr(torch.nn, train["loss"]["class_name"])(**train["loss"]["config"])
    assert train["grad_clip"] is None and train["scheduler"] is None
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    params = dict(model.named_parameters())

    xb, yb = x[:32], y[:32]
    with torch.no_grad():
        c.close("forward.inference", model.eval()(xb), ref["forward.inference"], TOL_FORWARD)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.dropout._DropoutNd):
                m.p = 0.0
        c.close("forward.training", model.train()(xb), ref["forward.training"], TOL_FORWARD)
    for n, m in bns:
        c.close(f"bn.{n}.running_mean", m.running_mean, ref[f"bn.{n}.running_mean"], TOL_FORWARD)
        c.close(f"bn.{n}.running_var", m.running_var, ref[f"bn.{n}.running_var"], TOL_FORWARD)
    model.load_state_dict(state)

    loss = loss_fn(model(xb), yb)
    loss.backward()
    c.close("loss", loss.detach(), ref["loss"], TOL_GRAD)
    assert {k[len("grad."):] for k in ref if k.startswith("grad.")} == set(params)
    for n, p in params.items():
        c.close(f"grad.{n}", p.grad, ref[f"grad.{n}"], TOL_GRAD, grad_scale(ref_np))
    model.zero_grad(set_to_none=True)
    model.load_state_dict(state)

    # The optimizer as train.json describes it, single-tensor path.
    cls = getattr(torch.optim, train["optimizer"]["class_name"])
    defaults = dict(train["optimizer"]["defaults"], foreach=False)
    if train["param_groups"] is None:
        groups = [{"params": list(params.values())}]
    else:
        groups = [{**g, "params": [params[n] for n in g["params"]]} for g in train["param_groups"]]
    opt = cls(groups, **defaults)
    index = ref["train.index"]
    steps = len(index)
    losses = []
    for t in range(steps + 1):
        if t in recorded(desc):
            for n, p in params.items():
                c.close(f"train.param.{t}.{n}", p.detach(), ref[f"train.param.{t}.{n}"], TOL_PARAM)
        if t == steps:
            break
        opt.zero_grad()
        loss = loss_fn(model(x[index[t]]), y[index[t]])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    c.close("train.loss", torch.stack(losses), ref["train.loss"], TOL_GRAD)
    for n, m in bns:
        c.close(f"train.bn.{steps}.{n}.running_mean", m.running_mean, ref[f"train.bn.{steps}.{n}.running_mean"], TOL_PARAM)
        c.close(f"train.bn.{steps}.{n}.running_var", m.running_var, ref[f"train.bn.{steps}.{n}.running_var"], TOL_PARAM)
    c.report()


# --------------------------------------------------------------------------- cross-check


def _swap_zr(a):
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _cnn_map(t: dict) -> dict:
    """torch-layout tensors (prefix stripped) -> Keras names and layouts."""
    fc = t["fc.weight"].reshape(10, 16, 2, 2).transpose(2, 3, 1, 0).reshape(64, 10)  # cols (c,h,w) -> rows (h,w,c)
    return {
        "conv2d/kernel": t["conv1.weight"].transpose(2, 3, 1, 0),
        "conv2d/bias": t["conv1.bias"],
        "batch_normalization/gamma": t["bn1.weight"],
        "batch_normalization/beta": t["bn1.bias"],
        "conv2d_1/kernel": t["conv2.weight"].transpose(2, 3, 1, 0),
        "conv2d_1/bias": t["conv2.bias"],
        "batch_normalization_1/gamma": t["bn2.weight"],
        "batch_normalization_1/beta": t["bn2.bias"],
        "dense/kernel": fc,
        "dense/bias": t["fc.bias"],
    }


def _rnn_map(t: dict, grads: bool) -> dict:
    lstm_bias = t["lstm.bias_ih_l0"] + (0 if grads else t["lstm.bias_hh_l0"])  # one Keras bias (grads: both equal it)
    return {
        "embedding/embeddings": t["embedding.weight"],
        "lstm/kernel": t["lstm.weight_ih_l0"].T,
        "lstm/recurrent_kernel": t["lstm.weight_hh_l0"].T,
        "lstm/bias": lstm_bias,
        "gru/kernel": _swap_zr(t["gru.weight_ih_l0"].T),
        "gru/recurrent_kernel": _swap_zr(t["gru.weight_hh_l0"].T),
        "gru/bias": np.stack([_swap_zr(t["gru.bias_ih_l0"]), _swap_zr(t["gru.bias_hh_l0"])]),
        "dense/kernel": t["fc.weight"].T,
        "dense/bias": t["fc.bias"],
    }


def _functional_map(t: dict) -> dict:
    out = {}
    for layer in ["branch_a", "branch_b", "hidden", "probs"]:
        out[f"{layer}/kernel"] = t[f"{layer}.weight"].T
        out[f"{layer}/bias"] = t[f"{layer}.bias"]
    return out


def _mapped(fixture: str, ref: dict, prefix: str, grads=False) -> dict:
    t = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
    if fixture == "cnn":
        return _cnn_map(t)
    if fixture == "rnn":
        return _rnn_map(t, grads)
    return _functional_map(t)


def _keras_l2(fixture: Path, layer: str) -> float:
    """The l2 factor of a layer's kernel_regularizer, from model.keras's config.json."""
    import zipfile

    with zipfile.ZipFile(fixture / "keras" / "model.keras") as z:
        config = json.loads(z.read("config.json"))
    for entry in config["config"]["layers"]:
        if entry["config"]["name"] == layer:
            return float(entry["config"]["kernel_regularizer"]["config"]["l2"])
    raise KeyError(layer)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z.astype(np.float64))
    return e / e.sum(axis=1, keepdims=True)


def cross_check(fixture: Path) -> None:
    name = fixture.name
    k, _, kdesc = load_reference(fixture / "keras" / "reference.safetensors")
    t, _, tdesc = load_reference(fixture / "torch" / "reference.safetensors")
    assert np.array_equal(k["train.index"], t["train.index"]), "the two runs use different rows"
    if name not in ("cnn", "rnn", "functional"):
        print(f"  {name}: cross-check skipped (the port is deliberately different); same train.index")
        return
    c = Checker(f"{name}/keras~torch")
    for key, want in _mapped(name, t, "train.param.0.").items():
        c.close(f"param0.{key}", want, k[f"train.param.0.{key}"], 0.0)  # weights were copied
    for mode in ["inference", "training"]:
        c.close(f"forward.{mode}", _softmax(t[f"forward.{mode}"]), k[f"forward.{mode}"], TOL_CROSS)
    c.close("loss", t["loss"], k["loss.compiled"], TOL_CROSS)
    want = _mapped(name, t, "grad.", grads=True)
    if name == "functional":
        l2 = _keras_l2(fixture, "branch_a")
        want["branch_a/kernel"] = want["branch_a/kernel"] + 2 * l2 * k["train.param.0.branch_a/kernel"]
    if name == "rnn":
        assert rel(t["grad.lstm.bias_hh_l0"], t["grad.lstm.bias_ih_l0"]) == 0.0
    for key, g in want.items():
        c.close(f"grad.{key}", g, k[f"grad.{key}"], TOL_CROSS, grad_scale(k))
    if name == "cnn":
        counts = {"batch_normalization": 32 * 8 * 8, "batch_normalization_1": 32 * 2 * 2}  # n per channel
        for layer, tm in [("batch_normalization", "bn1"), ("batch_normalization_1", "bn2")]:
            c.close(f"bn.{layer}.mean", t[f"bn.{tm}.running_mean"], k[f"bn.{layer}/moving_mean"], TOL_CROSS)
            # both start at 1 with momentum 0.99 (Keras) / 0.01 (torch): recover the batch variances
            biased = (k[f"bn.{layer}/moving_variance"].astype(np.float64) - 0.99) / 0.01
            unbiased = (t[f"bn.{tm}.running_var"].astype(np.float64) - 0.99) / 0.01
            n = counts[layer]
            c.close(f"bn.{layer}.var", unbiased * (n - 1) / n, biased, 1e-3)
    if name == "functional":  # SGD(0.01, 0.9) both sides, decay 2*l2 == Keras L2 gradient: same trajectory
        for step in recorded(kdesc):
            for key, v in _mapped(name, t, f"train.param.{step}.").items():
                c.close(f"train.param.{step}", v, k[f"train.param.{step}.{key}"], TOL_CROSS)
        penalty = l2 * (k["train.param.0.branch_a/kernel"].astype(np.float64) ** 2).sum()
        c.close("train.loss[0]", t["train.loss"][0] + penalty, k["train.loss"][0], TOL_CROSS)
    c.report()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--side"]:
        side, fixture = argv[1], Path(argv[2]).resolve()
        {"keras": side_keras, "torch": side_torch}[side](fixture)
        return 0
    dirs = [Path(a).resolve() for a in argv] or [MODELS / f for f in FIXTURES]
    for d in dirs:
        print(f"== {d.name}")
        for side in ["keras", "torch"]:
            result = subprocess.run([sys.executable, "-B", __file__, "--side", side, str(d)], capture_output=True, text=True)
            lines = [l for l in result.stdout.splitlines() if l.strip()]
            print("\n".join(lines))
            if result.returncode != 0:
                print(result.stderr[-3000:], file=sys.stderr)
                print(f"FAILED: {d.name} {side}", file=sys.stderr)
                return 1
        cross_check(d)
    print("all reference files OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
