"""Golden Keras 3 resizing layers (TensorFlow backend) for the engine's `Op::Resize`.

Run from this directory: `/work/pyenv/venv/bin/python gen_keras.py`. Imports keras/TF only.
For every configuration below it builds a one-layer model (`UpSampling2D` with each
interpolation, or the `Resizing` preprocessing layer), saves it as `<name>/model.keras`, and
writes `<name>/data.safetensors` with the input `x` (seeded normal, float32), the Keras output
`y`, a fixed cotangent `r` (seeded normal, the output's shape) and the input gradient
`dx = d(Σ r·y)/dx` from `tf.GradientTape`. Configurations Keras runs but parallax refuses
(lanczos, area, aspect-ratio crop and pad) are listed in `refused.json` with the text their
one-line refusal must contain; only their models are saved.
"""

import json
import os
import shutil
import sys

sys.dont_write_bytecode = True
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

PINNED = {"keras": "3.15.1", "tensorflow": "2.21.0", "numpy": "2.4.6"}


def check_versions():
    got = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}
    for k, want in PINNED.items():
        if got[k] != want:
            print(f"warning: {k} {got[k]} (fixtures were made with {want})", file=sys.stderr)


L = keras.layers

# (name, input shape without batch, layer factory)
CASES = [
    ("up2d_nearest", (3, 4, 2), lambda: L.UpSampling2D((2, 3), interpolation="nearest")),
    ("up2d_bilinear", (3, 4, 2), lambda: L.UpSampling2D((2, 3), interpolation="bilinear")),
    ("up2d_bicubic", (3, 4, 2), lambda: L.UpSampling2D((2, 3), interpolation="bicubic")),
    ("up2d_bicubic_cf", (2, 4, 3),
     lambda: L.UpSampling2D((3, 2), interpolation="bicubic", data_format="channels_first")),
    ("resizing_bilinear_down", (7, 9, 2), lambda: L.Resizing(3, 4)),
    ("resizing_bilinear_up", (4, 3, 2), lambda: L.Resizing(7, 5)),
    ("resizing_bilinear_mixed", (5, 4, 1), lambda: L.Resizing(3, 9)),
    ("resizing_nearest_down", (7, 9, 2), lambda: L.Resizing(3, 4, interpolation="nearest")),
    ("resizing_nearest_up", (4, 3, 2), lambda: L.Resizing(9, 7, interpolation="nearest")),
    ("resizing_bicubic_down", (7, 9, 2), lambda: L.Resizing(3, 4, interpolation="bicubic")),
    ("resizing_bicubic_up", (4, 3, 2), lambda: L.Resizing(7, 5, interpolation="bicubic")),
    ("resizing_bilinear_antialias_down", (8, 9, 2),
     lambda: L.Resizing(3, 4, antialias=True)),
    ("resizing_bilinear_antialias_up", (3, 4, 1),
     lambda: L.Resizing(5, 7, antialias=True)),
    ("resizing_bicubic_antialias_down", (8, 9, 2),
     lambda: L.Resizing(3, 4, interpolation="bicubic", antialias=True)),
    ("resizing_nearest_antialias_down", (7, 9, 1),
     lambda: L.Resizing(3, 4, interpolation="nearest", antialias=True)),
    ("resizing_bilinear_cf", (2, 5, 4),
     lambda: L.Resizing(3, 6, data_format="channels_first")),
]

REFUSED = [
    ("up2d_lanczos3", (3, 4, 1), lambda: L.UpSampling2D((2, 2), interpolation="lanczos3"),
     "interpolation \"lanczos3\""),
    ("resizing_area", (6, 6, 1), lambda: L.Resizing(3, 3, interpolation="area"),
     "interpolation \"area\""),
    ("resizing_crop", (6, 8, 1), lambda: L.Resizing(3, 3, crop_to_aspect_ratio=True),
     "crop_to_aspect_ratio=True"),
    ("resizing_pad", (6, 8, 1), lambda: L.Resizing(3, 3, pad_to_aspect_ratio=True),
     "pad_to_aspect_ratio=True"),
]


def make(name, shape, factory, seed, data=True):
    inp = keras.Input(shape=shape)
    model = keras.Model(inp, factory()(inp), name=name)
    os.makedirs(name, exist_ok=True)
    model.save(os.path.join(name, "model.keras"))
    if not data:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt)
        r = tf.constant(rng.standard_normal(y.shape).astype(np.float32))
        loss = tf.reduce_sum(y * r)
    dx = tape.gradient(loss, xt)
    save_file(
        {"x": x, "y": y.numpy(), "r": r.numpy(), "dx": dx.numpy()},
        os.path.join(name, "data.safetensors"),
        metadata={"source": f"keras {keras.__version__} tensorflow {tf.__version__}"},
    )


def main():
    check_versions()
    here = os.path.dirname(os.path.abspath(__file__))
    os.chdir(here)
    for d in os.listdir("."):
        if os.path.isdir(d):
            shutil.rmtree(d)
    for k, (name, shape, factory) in enumerate(CASES):
        make(name, shape, factory, 1000 + k)
    refused = {}
    for k, (name, shape, factory, why) in enumerate(REFUSED):
        make(name, shape, factory, 2000 + k, data=False)
        refused[name] = why
    with open("refused.json", "w") as f:
        json.dump(refused, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
