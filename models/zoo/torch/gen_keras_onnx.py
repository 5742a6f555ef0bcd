"""A Keras model exported with `model.export(path, format="onnx")`, for the ONNX importer.

Run from this directory with the project venv (needs `tf2onnx`, which Keras 3 uses for its
ONNX export with the TensorFlow backend: `pip install tf2onnx==1.17.0`):

    /work/pyenv/venv/bin/python gen_keras_onnx.py

Writes `keras_export.onnx`, `keras_export.expect.json` (Keras's own view: weights by layer with
shapes, layer classes and key config values) and `keras_export.io.safetensors` (`x`, `output`).
Imports keras/tensorflow, never torch. The export is checked with onnx.checker and compared with
Keras's own output through onnxruntime. tf2onnx numbers some of its generated names
(`const_fold_opt__NN`, `Transpose__NN`) differently from run to run, so `keras_export.onnx` is
reproducible in content but not byte for byte; the layer scopes and weights are stable.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

sys.dont_write_bytecode = True
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "export"))

from bundle_io import canonicalize_safetensors  # noqa: E402
SEED = 0


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6, 6, 2), name="x"),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(8, activation="relu", name="fc1"),
            keras.layers.Dropout(0.25, name="drop"),
            keras.layers.Dense(3, activation="softmax", name="fc2"),
        ],
        name="keras_export",
    )


def main() -> None:
    random.seed(SEED)
    np.random.seed(SEED)
    keras.utils.set_random_seed(SEED)
    model = build()
    x = np.random.default_rng(SEED).standard_normal((2, 6, 6, 2)).astype(np.float32)
    # Non-trivial BatchNorm statistics, so the folding is visible in the weights.
    bn = model.get_layer("bn")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.1, mean + 0.2, var * 2.0])
    # Non-zero biases for conv and fc1 (tf2onnx keeps them as Add nodes); fc2 keeps its zero
    # bias, which tf2onnx drops.
    conv = model.get_layer("conv")
    conv.set_weights([conv.get_weights()[0], np.full((4,), 0.05, np.float32)])
    fc1 = model.get_layer("fc1")
    fc1.set_weights([fc1.get_weights()[0], np.linspace(-0.2, 0.2, 8).astype(np.float32)])
    expected = np.asarray(model(x, training=False))

    path = HERE / "keras_export.onnx"
    model.export(str(path), format="onnx", verbose=False)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    (got,) = sess.run(None, {name: x})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    layers = []
    for layer in model.layers:
        cfg = layer.get_config()
        keep = {
            k: cfg[k]
            for k in [
                "filters", "kernel_size", "strides", "padding", "activation", "units", "rate",
                "pool_size", "momentum", "epsilon", "data_format",
            ]
            if k in cfg
        }
        layers.append({
            "name": layer.name,
            "class": type(layer).__name__,
            "config": json.loads(json.dumps(keep, default=str)),
            "weights": [
                {"path": w.path, "shape": list(w.shape), "trainable": bool(w.trainable)}
                for w in layer.weights
            ],
        })
    desc = {
        "name": "keras_export",
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "export": "keras",
        "onnx_producer": f"{proto.producer_name} {proto.producer_version}",
        "opset": [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")],
        "input": {"name": name, "shape": list(x.shape), "dtype": "float32"},
        "layers": layers,
    }
    (HERE / "keras_export.expect.json").write_text(json.dumps(desc, indent=1) + "\n")
    save_file(
        {"x": x, "output": np.ascontiguousarray(expected)},
        str(HERE / "keras_export.io.safetensors"),
        metadata={"framework": "keras", "framework_version": keras.__version__},
    )
    canonicalize_safetensors(HERE / "keras_export.io.safetensors")
    print(f"wrote keras_export.onnx ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
