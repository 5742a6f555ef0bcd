"""Check the committed fixture bundles (imports neither torch nor tensorflow).

    python verify_bundles.py [FIXTURE_DIR ...]     (default: every models/*/ with keras/ or torch/)

For each fixture:
  torch/  onnx.checker (full_check) on model.onnx and model.eval.onnx;
          ONNX Runtime runs model.eval.onnx on inputs.safetensors `x` and must
          match expected.safetensors `output`; model.onnx's initializer names
          must equal the state_dict keys except `num_batches_tracked`, with
          equal values; prints the op sequence of model.onnx.
  keras/  lists the HDF5 structure of model.keras's model.weights.h5 and
          checks config.json has compile_config.
Exits non-zero on the first failed check.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from safetensors import safe_open
from safetensors.numpy import load_file

from pins import check_pins

check_pins(["onnx", "onnxruntime", "h5py", "safetensors", "numpy"])

MODELS = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5


def check_torch(bundle: Path) -> None:
    for name in ["model.onnx", "model.eval.onnx"]:
        if (bundle / name).exists():
            onnx.checker.check_model(onnx.load(str(bundle / name)), full_check=True)
    proto = onnx.load(str(bundle / "model.onnx"))
    ops = [n.op_type for n in proto.graph.node]
    print(f"  model.onnx ops ({len(ops)}): {' '.join(o for o in ops if o != 'Constant')}")
    attrs = {
        n.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        for n in proto.graph.node
        if n.op_type in ("BatchNormalization", "GRU", "LSTM", "Softmax", "Dropout")
    }
    for op, a in attrs.items():
        print(f"    {op} attributes: {a}")

    with safe_open(str(bundle / "state_dict.safetensors"), "np") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        print(f"  state_dict metadata: {f.metadata()}")
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    want = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(inits) == want, f"initializers {sorted(inits)} != state_dict {sorted(want)}"
    for k, v in inits.items():
        assert np.array_equal(v, state[k]), f"initializer {k} differs from the state_dict"
    print(f"  initializers == state_dict keys minus num_batches_tracked ({len(inits)}), values equal")

    inputs = load_file(str(bundle / "inputs.safetensors"))
    expected = load_file(str(bundle / "expected.safetensors"))
    session = ort.InferenceSession(str(bundle / "model.eval.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name] for i in session.get_inputs()}
    out = session.run(None, feeds)[0]
    err = float(np.abs(out - expected["output"]).max())
    assert err < TOLERANCE, f"onnxruntime model.eval.onnx differs from expected by {err}"
    print(f"  onnxruntime model.eval.onnx vs expected: max |d| = {err:.3g}")
    train_json = json.loads((bundle / "train.json").read_text())
    keys = ["optimizer", "param_groups", "loss", "grad_clip", "scheduler", "batch_size", "epochs", "shuffle", "drop_last", "framework_version"]
    if "spatial_dropout" in train_json:  # only for models with Dropout1d/2d/3d
        keys.append("spatial_dropout")
        noop = {n.name for n in onnx.load(str(bundle / "model.onnx")).graph.node if n.op_type == "Dropout"}
        for record in train_json["spatial_dropout"]:
            assert set(record) == {"module", "class_name", "p", "node"}, record
            assert record["node"] in noop, f"{record['node']} is not a Dropout node of model.onnx"
    assert list(train_json) == keys, list(train_json)


def check_keras(bundle: Path) -> None:
    with zipfile.ZipFile(bundle / "model.keras") as z:
        print(f"  archive: {z.namelist()}  metadata: {json.loads(z.read('metadata.json'))}")
        config = json.loads(z.read("config.json"))
        assert "compile_config" in config, "model.keras has no compile_config"
        h5 = z.read("model.weights.h5")
    with h5py.File(io.BytesIO(h5), "r") as f:

        def show(name, obj):
            if isinstance(obj, h5py.Dataset):
                print(f"    {name} {obj.shape} {obj.dtype}")

        f.visititems(show)
    with safe_open(str(bundle / "inputs.safetensors"), "np") as f:
        print(f"  inputs: { {k: (f.get_slice(k).get_shape(), f.get_slice(k).get_dtype()) for k in f.keys()} } {f.metadata()}")


def main(argv: list[str]) -> int:
    dirs = [Path(a) for a in argv] or sorted(
        d for d in MODELS.iterdir() if d.is_dir() and d.name not in ("export", "zoo") and ((d / "keras").is_dir() or (d / "torch").is_dir())
    )
    for d in dirs:
        print(f"== {d.name}")
        if (d / "keras").is_dir():
            check_keras(d / "keras")
        if (d / "torch").is_dir():
            check_torch(d / "torch")
    print("all bundles OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
