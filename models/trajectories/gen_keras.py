"""Golden Keras 3 optimizer trajectories (TensorFlow backend).

Run from this directory: `/work/pyenv/venv/bin/python gen_keras.py`. Imports keras/TF only.
Each case writes keras_<stem>.safetensors: init.<p>, grad.<t>.<p>, param.<t>.<p> (float32)
plus metadata framework, framework_version, optimizer (keras.optimizers.serialize),
steps, param_order.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

import grads as shared  # noqa: E402


def build(cls, kwargs):
    kw = dict(kwargs)
    lr = kw.get("learning_rate")
    if isinstance(lr, tuple):
        name, cfg = lr
        kw["learning_rate"] = getattr(keras.optimizers.schedules, name)(**cfg)
    return getattr(keras.optimizers, cls)(**kw)


def main():
    keras.utils.set_random_seed(0)
    init = shared.initial_params()
    seq = shared.gradient_sequence()
    order = list(shared.PARAMS)
    keras_cases, _ = shared.cases()
    for stem, cls, kwargs in keras_cases:
        opt = build(cls, kwargs)
        variables = [keras.Variable(init[n], name=n) for n in order]
        tensors = {f"init.{n}": init[n] for n in order}
        for t, step in enumerate(seq, start=1):
            opt.apply([keras.ops.convert_to_tensor(step[n]) for n in order], variables)
            for n, v in zip(order, variables):
                tensors[f"grad.{t}.{n}"] = step[n]
                tensors[f"param.{t}.{n}"] = np.asarray(v.numpy(), dtype=np.float32)
        meta = {
            "framework": "keras",
            "framework_version": keras.__version__,
            "optimizer": json.dumps(keras.optimizers.serialize(opt)),
            "steps": str(len(seq)),
            "param_order": json.dumps(order),
        }
        save_file(tensors, f"keras_{stem}.safetensors", metadata=meta)
        print("wrote", stem)


if __name__ == "__main__":
    main()
