"""Small PyTorch modules exported to ONNX, one file per lifting pattern the importer handles.

Run from this directory with the project venv:

    /work/pyenv/venv/bin/python gen_torch.py

For every case it writes, next to this script:

    <name>.onnx              the export (see EXPORTS below)
    <name>.expect.json       what torch itself says about the module: state_dict keys, shapes,
                             dtypes, parameter/buffer and requires_grad; leaf modules by name
                             with their type and key constructor attributes; the export settings
    <name>.io.safetensors    `x` (the example input) and `output` = model.eval()(x)

Exports (torch 2.15, opset 17 unless a case says otherwise):

    training  torch.onnx.export(model.train(), (x,), path, dynamo=False, export_params=True,
              do_constant_folding=False, training=TrainingMode.TRAINING, opset_version=17,
              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}})
              The state_dict and the RNG state are restored afterwards (the export runs one
              training-mode forward, which updates BatchNorm running statistics), and the
              initializers are rewritten with the pre-export values.
    eval      the default eval-mode export (model.eval(), constant folding on): BatchNorm folded
              into Conv, Dropout removed, LSTM weights pre-reordered into ONNX layout.
    dynamo    torch.onnx.export(..., dynamo=True) of the eval-mode model.

Every export is checked with onnx.checker and run with onnxruntime (eval exports are compared with
the eval-mode torch output; training exports only have to run). Imports torch, never tensorflow.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.dont_write_bytecode = True

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "export"))

from bundle_io import canonicalize_safetensors  # noqa: E402
SEED = 0
OPSET = 17


def seed_all(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# The modules
# --------------------------------------------------------------------------------------------


class Mlp(nn.Module):
    """Linear with bias (Gemm), Linear without bias, ReLU/Tanh modules, softmax(dim=1)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(16, 12, bias=False)
        self.act2 = nn.Tanh()
        self.fc3 = nn.Linear(12, 4)

    def forward(self, x):
        return torch.softmax(self.fc3(self.act2(self.fc2(self.act1(self.fc1(x))))), dim=1)


class MlpSeq(nn.Module):
    """Linear on a 3-D input: MatMul + Add, and bias-free MatMul; log_softmax(dim=-1)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)
        self.head = nn.Linear(6, 4, bias=False)

    def forward(self, x):
        return F.log_softmax(self.head(torch.relu(self.proj(x))), dim=-1)


class Cnn(nn.Module):
    """Conv2d/BatchNorm2d/MaxPool2d/AvgPool2d variants/Dropout, flatten via view.

    No Dropout2d: torch 2.15 refuses to export `aten::feature_dropout` in training mode
    ("Unsupported: ONNX export of operator aten::feature_dropout, training mode"), and the
    eval-mode export drops it.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, dilation=1)
        self.bn2 = nn.BatchNorm2d(8, momentum=0.2, eps=1e-3)
        self.avg_incl = nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True (default)
        self.avg_excl = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.pool_ceil = nn.MaxPool2d(2, ceil_mode=True)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = self.pool_ceil(self.avg_excl(self.avg_incl(x)))
        x = x.view(x.size(0), -1)
        return self.fc(self.drop(x))


class Convs(nn.Module):
    """Depthwise (multiplier 2) and grouped convolutions, ConvTranspose2d, AdaptiveAvgPool2d(1)."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.grouped = nn.Conv2d(8, 8, 3, groups=2, bias=False)
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.dw(x))
        x = torch.relu(self.grouped(x))
        x = self.up(x)
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)


class Conv1dNet(nn.Module):
    """Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d(ceil_mode), torch.flatten of an NCW map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm1d(6)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(6, 4, 3, dilation=2, stride=2)
        self.avg = nn.AvgPool1d(2, ceil_mode=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        x = self.avg(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


class LayerNormNet(nn.Module):
    """LayerNorm over the last axis and over the last two axes."""

    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)
        self.ln2 = nn.LayerNorm([4, 8], eps=1e-3)

    def forward(self, x):
        return self.ln2(self.fc(self.ln1(x)))


class GroupNormNet(nn.Module):
    """GroupNorm (InstanceNormalization pattern at opset 17) and x.mean((2, 3)) global pooling."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.gn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


class Acts(nn.Module):
    """Every activation module, chained."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.relu = nn.ReLU()
        self.relu6 = nn.ReLU6()
        self.leaky = nn.LeakyReLU(0.2)
        self.elu = nn.ELU(0.5)
        self.selu = nn.SELU()
        self.gelu = nn.GELU()
        self.gelu_tanh = nn.GELU(approximate="tanh")
        self.sigmoid = nn.Sigmoid()
        self.hardsigmoid = nn.Hardsigmoid()
        self.hardswish = nn.Hardswish()
        self.tanh = nn.Tanh()
        self.softplus = nn.Softplus()
        self.softsign = nn.Softsign()
        self.silu = nn.SiLU()
        self.mish = nn.Mish()
        self.logsigmoid = nn.LogSigmoid()
        self.tanhshrink = nn.Tanhshrink()
        self.softmax = nn.Softmax(dim=1)
        self.logsoftmax = nn.LogSoftmax(dim=1)

    def forward(self, x):
        x = self.fc(x)
        for name in [
            "relu", "relu6", "leaky", "elu", "selu", "gelu", "gelu_tanh", "sigmoid",
            "hardsigmoid", "hardswish", "tanh", "softplus", "softsign", "silu", "mish",
            "logsigmoid", "tanhshrink", "softmax", "logsoftmax",
        ]:
            x = getattr(self, name)(x)
        return x


class PadUp(nn.Module):
    """ZeroPad2d, F.pad reflect, ReplicationPad2d, Upsample nearest and bilinear."""

    def __init__(self):
        super().__init__()
        self.zpad = nn.ZeroPad2d((1, 2, 0, 1))
        self.conv = nn.Conv2d(2, 2, 3)
        self.rpad = nn.ReplicationPad2d(1)
        self.up_nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        x = self.conv(self.zpad(x))
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        x = self.rpad(x)
        return self.up_bilinear(self.up_nearest(x))


class Embed(nn.Module):
    """Embedding with padding_idx, mean over time (ReduceMean on a non-spatial axis)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6, padding_idx=0)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.emb(x).mean(1))


class LstmNet(nn.Module):
    """batch_first LSTM, taking out[:, -1]."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class GruBi(nn.Module):
    """Bidirectional sequence-first GRU, taking h_n and concatenating both directions."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 8, bidirectional=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc(torch.cat([h[0], h[1]], dim=1))


class Lstm2(nn.Module):
    """Two-layer batch_first LSTM, taking out[:, -1]."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class LstmBi(nn.Module):
    """Bidirectional batch_first LSTM without biases, taking out[:, -1] and the last h_n."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 4, batch_first=True, bidirectional=True, bias=False)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, (h, _) = self.lstm(x)
        return self.fc(torch.cat([out[:, -1], h[-1]], dim=1))


class Residual(nn.Module):
    """Residual Add, Sub and Mul of two activations, a constant multiply, torch.cat."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(16, 4)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        r = self.fc2(h) + x
        g = (r - h) * torch.sigmoid(r)
        return self.fc3(torch.cat([r, g * 2.0], dim=1))


class LayerNormOld(nn.Module):
    """LayerNorm and a last-axis softmax exported at opset 11 (decomposed LayerNorm)."""

    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return torch.softmax(self.fc(self.ln(x)), dim=-1)


# name -> (module factory, input factory, export kind, opset)
CASES = {
    "mlp": (Mlp, lambda: torch.randn(2, 8), "training", OPSET),
    "mlp_seq": (MlpSeq, lambda: torch.randn(2, 3, 8), "training", OPSET),
    "cnn": (Cnn, lambda: torch.randn(2, 3, 10, 10), "training", OPSET),
    "convs": (Convs, lambda: torch.randn(2, 4, 6, 6), "training", OPSET),
    "conv1d": (Conv1dNet, lambda: torch.randn(2, 3, 16), "training", OPSET),
    "layernorm": (LayerNormNet, lambda: torch.randn(2, 4, 8), "training", OPSET),
    "groupnorm": (GroupNormNet, lambda: torch.randn(2, 3, 5, 5), "training", OPSET),
    "acts": (Acts, lambda: torch.randn(2, 8), "training", OPSET),
    "pad_up": (PadUp, lambda: torch.randn(2, 2, 4, 4), "training", OPSET),
    "embed": (Embed, lambda: torch.randint(0, 20, (2, 5)), "training", OPSET),
    "lstm": (LstmNet, lambda: torch.randn(2, 5, 6), "training", OPSET),
    "gru_bi": (GruBi, lambda: torch.randn(5, 2, 6), "training", OPSET),
    "lstm2": (Lstm2, lambda: torch.randn(2, 5, 6), "training", OPSET),
    "lstm_bi": (LstmBi, lambda: torch.randn(2, 5, 6), "training", OPSET),
    "residual": (Residual, lambda: torch.randn(2, 8), "training", OPSET),
    "layernorm_op11": (LayerNormOld, lambda: torch.randn(2, 4, 8), "training", 11),
    "cnn_eval": (Cnn, lambda: torch.randn(2, 3, 10, 10), "eval", OPSET),
    "lstm_eval": (LstmNet, lambda: torch.randn(2, 5, 6), "eval", OPSET),
    "mlp_dynamo": (Mlp, lambda: torch.randn(2, 8), "dynamo", 18),
    "cnn_dynamo": (Cnn, lambda: torch.randn(2, 3, 10, 10), "dynamo", 18),
}


# --------------------------------------------------------------------------------------------
# Export and description
# --------------------------------------------------------------------------------------------


def export(model: nn.Module, x: torch.Tensor, path: Path, kind: str, opset: int) -> None:
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    try:
        if kind == "training":
            torch.onnx.export(
                model.train(),
                (x,),
                str(path),
                dynamo=False,
                export_params=True,
                do_constant_folding=False,
                training=torch.onnx.TrainingMode.TRAINING,
                opset_version=opset,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}},
            )
        elif kind == "eval":
            torch.onnx.export(
                model.eval(),
                (x,),
                str(path),
                dynamo=False,
                export_params=True,
                training=torch.onnx.TrainingMode.EVAL,
                opset_version=opset,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}},
            )
        elif kind == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(
                model.eval(),
                (x,),
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=["x"],
                output_names=["y"],
                dynamic_shapes={"x": {0: batch}},
                verbose=False,
            )
        else:
            raise ValueError(kind)
    finally:
        model.load_state_dict(snapshot)
        torch.set_rng_state(rng)
    if kind == "training":
        restore_initializers(path, snapshot)


def restore_initializers(path: Path, state: dict) -> None:
    """Write the pre-export state_dict values over same-named initializers."""
    proto = onnx.load(str(path))
    changed = False
    for i, init in enumerate(proto.graph.initializer):
        if init.name not in state:
            continue
        want = state[init.name].cpu().numpy()
        have = numpy_helper.to_array(init)
        if have.shape != want.shape or not np.array_equal(have, want):
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(want.astype(have.dtype), init.name))
            changed = True
    if changed:
        onnx.save(proto, str(path))


ATTRS = [
    "in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride",
    "padding", "dilation", "groups", "output_padding", "padding_mode", "num_features", "eps",
    "momentum", "affine", "track_running_stats", "normalized_shape", "elementwise_affine",
    "num_groups", "num_channels", "p", "inplace", "negative_slope", "alpha", "approximate",
    "dim", "beta", "threshold", "min_val", "max_val", "ceil_mode", "count_include_pad",
    "output_size", "scale_factor", "mode", "align_corners", "num_embeddings", "embedding_dim",
    "padding_idx", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
    "dropout", "bidirectional", "proj_size",
]


def to_json(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if np.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return [to_json(e) for e in v]
    if isinstance(v, torch.Tensor):
        return to_json(v.tolist())
    return str(v)


def describe(name: str, model: nn.Module, x: torch.Tensor, kind: str, opset: int) -> dict:
    params = {n for n, _ in model.named_parameters()}
    state = []
    for key, t in model.state_dict(keep_vars=True).items():
        state.append({
            "name": key,
            "shape": list(t.shape),
            "dtype": str(t.dtype).removeprefix("torch."),
            "kind": "parameter" if key in params else "buffer",
            "requires_grad": bool(t.requires_grad),
        })
    modules = []
    for mname, m in model.named_modules():
        if mname == "" or list(m.children()):
            continue
        attrs = {}
        for a in ATTRS:
            if hasattr(m, a):
                v = getattr(m, a)
                if a == "bias" and isinstance(v, (torch.Tensor, type(None))):
                    attrs["has_bias"] = v is not None
                    continue
                if callable(v) or isinstance(v, nn.Module):
                    continue
                attrs[a] = to_json(v)
        modules.append({"name": mname, "type": type(m).__name__, "attrs": attrs})
    return {
        "name": name,
        "torch_version": torch.__version__,
        "export": kind,
        "opset": opset,
        "input": {"shape": list(x.shape), "dtype": str(x.dtype).removeprefix("torch.")},
        "state_dict": state,
        "modules": modules,
    }


def check(path: Path, x: torch.Tensor, expected: np.ndarray, kind: str) -> None:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy()})
    if got.shape != expected.shape:
        raise AssertionError(f"{path.name}: onnxruntime shape {got.shape} != torch {expected.shape}")
    if kind != "training":
        # Training-mode graphs use batch statistics and dropout; only eval graphs must agree.
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=path.name)


def main() -> None:
    only = set(sys.argv[1:])
    for name, (factory, make_x, kind, opset) in CASES.items():
        if only and name not in only:
            continue
        seed_all()
        model = factory()
        x = make_x()
        with torch.no_grad():
            expected = model.eval()(x).detach().numpy()
        path = HERE / f"{name}.onnx"
        try:
            export(model, x, path, kind, opset)
        except Exception as e:  # noqa: BLE001
            print(f"{name}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
            path.unlink(missing_ok=True)
            continue
        check(path, x, expected, kind)
        desc = describe(name, model, x, kind, opset)
        (HERE / f"{name}.expect.json").write_text(json.dumps(desc, indent=1) + "\n")
        save_file(
            {"x": x.numpy(), "output": np.ascontiguousarray(expected)},
            str(HERE / f"{name}.io.safetensors"),
            metadata={"framework": "torch", "framework_version": torch.__version__},
        )
        canonicalize_safetensors(HERE / f"{name}.io.safetensors")
        print(f"wrote {name}.onnx ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
