"""Golden Keras 3 optimizer trajectories (TensorFlow backend).

Run from this directory: `/work/pyenv/venv/bin/python gen_keras.py`. Imports keras/TF only.
Each case writes keras_<stem>.safetensors: init.<p>, grad.<t>.<p>, param.<t>.<p> (float32)
plus metadata framework, framework_version, optimizer (keras.optimizers.serialize),
steps, param_order and, when the case calls `optimizer.exclude_from_weight_decay`,
exclude_from_weight_decay (its arguments, variables by name; Keras does not serialize it).
A "sparse" case adds the table "e" whose gradient is a tf.IndexedSlices: slices.<t>.e.indices
(int64) and slices.<t>.e.values are what `apply` received, grad.<t>.e its dense sum
(`tf.convert_to_tensor`, TensorFlow's own densification).
A `backend` key is written only for a backend other than tensorflow (the patterns are
matched against backend-specific names).
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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
    keras_cases, _ = shared.cases()
    for stem, cls, kwargs, *rest in keras_cases:
        extras = rest[0] if rest else {}
        init, seq, order = shared.inputs(extras.get("extra_params", False))
        sparse = {}
        if extras.get("sparse", False):
            init.update(shared.sparse_initial_params())
            order += list(shared.SPARSE_PARAMS)
            sparse = shared.sparse_sequence()
        opt = build(cls, kwargs)
        variables = [keras.Variable(init[n], name=n) for n in order]
        exclude = extras.get("exclude_from_weight_decay")
        if exclude is not None:
            by_name = dict(zip(order, variables))
            opt.exclude_from_weight_decay(
                var_list=[by_name[n] for n in exclude.get("var_list", [])],
                var_names=exclude.get("var_names"),
            )
        tensors = {f"init.{n}": init[n] for n in order}
        for t, step in enumerate(seq, start=1):
            step = dict(step)
            for n, (idx, val) in (sparse[t - 1] if sparse else {}).items():
                step[n] = tf.IndexedSlices(tf.constant(val), tf.constant(idx), tf.constant(init[n].shape, dtype=tf.int64))
                tensors[f"slices.{t}.{n}.indices"] = idx
                tensors[f"slices.{t}.{n}.values"] = val
            grads = [step[n] if isinstance(step[n], tf.IndexedSlices) else keras.ops.convert_to_tensor(step[n]) for n in order]
            opt.apply(grads, variables)
            for n, v, g in zip(order, variables, grads):
                is_sparse = isinstance(g, tf.IndexedSlices)
                tensors[f"grad.{t}.{n}"] = np.asarray(tf.convert_to_tensor(g)) if is_sparse else step[n]
                tensors[f"param.{t}.{n}"] = np.asarray(v.numpy(), dtype=np.float32)
        meta = {
            "framework": "keras",
            "framework_version": keras.__version__,
            "optimizer": json.dumps(keras.optimizers.serialize(opt)),
            "steps": str(len(seq)),
            "param_order": json.dumps(order),
        }
        if exclude is not None:
            meta["exclude_from_weight_decay"] = json.dumps(exclude)
        if keras.backend.backend() != "tensorflow":
            meta["backend"] = keras.backend.backend()
        written = shared.save_if_changed(tensors, f"keras_{stem}.safetensors", meta)
        print("wrote" if written else "unchanged", stem)


if __name__ == "__main__":
    main()
