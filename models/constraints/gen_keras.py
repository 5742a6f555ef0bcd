"""Golden Keras 3 weight-constraint trajectories (TensorFlow backend).

Run from this directory: `/work/pyenv/venv/bin/python gen_keras.py` (or `cargo xtask
fixtures`). Imports keras/TF only. For every constraint (MaxNorm, UnitNorm, NonNeg,
MinMaxNorm) on a Dense kernel (4, 3) and a Conv2D kernel (3, 3, 2, 4), with SGD (momentum)
and Adam, it builds the layer with `kernel_constraint=...`, hands fixed gradients to
`optimizer.apply(grads, layer.trainable_variables)` for a few steps (Keras applies the
constraint after each update, `base_optimizer.apply`) and writes `keras_constraints.json`:
per case the serialized constraint and its typed reading (`kind`, arguments, `axes` resolved
to non-negative axes of the kernel), the serialized optimizer, the kernel's shape, initial
value, every step's gradient and every step's value after the update (float32 values as
Python floats).
"""

import json
import os
import sys

sys.dont_write_bytecode = True
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PINNED = {"keras": "3.15.1", "tensorflow": "2.21.0", "numpy": "2.4.6"}
STEPS = 4


def check_versions():
    got = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}
    for k, want in PINNED.items():
        if got[k] != want:
            print(f"warning: {k} {got[k]} (fixtures were made with {want})", file=sys.stderr)


def constraints(rank):
    """(name, constraint object, typed reading) for a kernel of this rank."""
    last = rank - 1
    filt = list(range(rank - 1))  # every axis but the output axis
    return [
        ("max_norm", keras.constraints.MaxNorm(max_value=0.5, axis=filt),
         {"kind": "max_norm", "max_value": 0.5, "axes": filt}),
        ("unit_norm", keras.constraints.UnitNorm(axis=filt),
         {"kind": "unit_norm", "axes": filt}),
        ("non_neg", keras.constraints.NonNeg(), {"kind": "non_neg"}),
        ("min_max_norm", keras.constraints.MinMaxNorm(min_value=0.2, max_value=0.6, rate=0.7, axis=-1),
         {"kind": "min_max_norm", "min_value": 0.2, "max_value": 0.6, "rate": 0.7, "axes": [last]}),
    ]


def layers():
    return [
        ("dense", lambda c: keras.layers.Dense(3, use_bias=False, kernel_constraint=c), (None, 4)),
        ("conv", lambda c: keras.layers.Conv2D(4, 3, use_bias=False, kernel_constraint=c), (None, 6, 6, 2)),
    ]


def optimizers():
    return [
        ("sgd", lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)),
        ("adam", lambda: keras.optimizers.Adam(learning_rate=0.05)),
    ]


def main():
    check_versions()
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    cases = []
    for lname, make, in_shape in layers():
        probe = make(None)
        probe.build(in_shape)
        rank = len(probe.kernel.shape)
        for cname, constraint, typed in constraints(rank):
            for oname, make_opt in optimizers():
                layer = make(constraint)
                layer.build(in_shape)
                shape = tuple(layer.kernel.shape)
                init = rng.normal(0.0, 0.4, size=shape).astype(np.float32)
                layer.kernel.assign(init)
                opt = make_opt()
                grads, values = [], []
                for _ in range(STEPS):
                    g = rng.normal(0.0, 1.0, size=shape).astype(np.float32)
                    opt.apply([tf.constant(g)], layer.trainable_variables)
                    grads.append(g.ravel().tolist())
                    values.append(np.asarray(layer.kernel.numpy(), np.float32).ravel().tolist())
                cases.append({
                    "name": f"{lname}_{cname}_{oname}",
                    "variable": layer.kernel.path,
                    "shape": list(shape),
                    "constraint": keras.constraints.serialize(constraint),
                    "typed": typed,
                    "optimizer": keras.optimizers.serialize(opt),
                    "init": init.ravel().tolist(),
                    "grads": grads,
                    "values": values,
                })
    doc = {
        "framework": "keras",
        "framework_version": keras.__version__,
        "backend": keras.backend.backend(),
        "steps": STEPS,
        "cases": cases,
    }
    with open("keras_constraints.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, default=float)
        f.write("\n")
    print(f"wrote keras_constraints.json ({len(cases)} cases)")


if __name__ == "__main__":
    main()
