"""Keras half of the case kit: build the case's Keras model, export its bundle, measure its training.

    from casekit_keras import generate
    generate(__file__)          # in models/cases/<name>/gen_keras.py

Writes `<case>/keras/` (model.keras, fit.json, inputs.safetensors,
expected.safetensors) and the Keras half of `<case>/measured.json`, which
`casekit_torch.generate` completes.  Imports keras/tensorflow, never torch.
"""

from __future__ import annotations

import os
import sys

# The Keras backend is TensorFlow unless the case's gen_keras.py sets CASEKIT_KERAS_BACKEND before
# importing this module (only `cce-probability-clipping` does: Keras on the torch backend; no TensorFlow then).
BACKEND = os.environ.get("CASEKIT_KERAS_BACKEND", "tensorflow")
os.environ["KERAS_BACKEND"] = BACKEND
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
sys.dont_write_bytecode = True

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import casekit_common as ck  # noqa: E402  (puts models/export on sys.path)
from pins import check_pins  # noqa: E402

check_pins((["tensorflow-cpu"] if BACKEND == "tensorflow" else ["torch"]) + ["keras", "numpy", "h5py", "safetensors", "scikit-learn"])

import keras  # noqa: E402
import numpy as np  # noqa: E402

if BACKEND == "tensorflow":
    import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from keras_bundle import export_keras_bundle, write_expected  # noqa: E402


def _layer(spec: dict, case: dict):
    k, name = spec["kind"], spec["name"]
    if k == "dense":
        o, kw = case["opts"], {}
        if o.get("kernel_initializer"):  # (class name, kwargs), e.g. ("Orthogonal", {"gain": 1.414})
            init_cls, init_kw = o["kernel_initializer"]
            kw["kernel_initializer"] = getattr(keras.initializers, init_cls)(**init_kw)
        if o.get("max_norm"):
            kw["kernel_constraint"] = keras.constraints.MaxNorm(o["max_norm"])
        return layers.Dense(spec["units"], activation=spec["activation"], name=name, **kw)
    if k == "leaky_relu":
        return layers.LeakyReLU(name=name)  # Keras default negative_slope=0.3
    if k == "relu":
        return layers.ReLU(name=name)
    if k == "bn":
        return layers.BatchNormalization(name=name)  # momentum 0.99, epsilon 1e-3
    if k == "conv":
        return layers.Conv2D(spec["filters"], spec["kernel"], strides=spec["strides"], padding=spec["padding"], name=name)
    if k == "maxpool":
        return layers.MaxPooling2D(spec["pool"], name=name)
    if k == "avgpool":
        return layers.AveragePooling2D(spec["pool"], strides=spec["strides"], padding=spec["padding"], name=name)
    if k == "flatten":
        return layers.Flatten(name=name)
    if k == "dropout":
        return layers.Dropout(spec["rate"], name=name)
    if k == "sdropout":
        return layers.SpatialDropout2D(spec["rate"], name=name)
    if k == "gap2d":
        return layers.GlobalAveragePooling2D(keepdims=True, name=name)
    if k == "out_softmax":
        return layers.Softmax(name=name)  # axis=-1: the channels
    if k == "embedding":
        return layers.Embedding(spec["input_dim"], spec["output_dim"], mask_zero=spec.get("mask_zero", False), name=name)
    if k == "dwconv":
        return layers.DepthwiseConv2D(spec["kernel"], padding="same", name=name)
    if k == "sepconv":
        return layers.SeparableConv2D(spec["filters"], spec["kernel"], padding="valid", name=name)
    if k == "convT":
        return layers.Conv2DTranspose(spec["filters"], spec["kernel"], strides=spec["strides"], padding="same", name=name)
    if k == "upsample":
        return layers.UpSampling2D(spec["size"], interpolation="bilinear", name=name)
    if k == "softmax":
        return layers.Softmax(name=name)  # axis=-1
    if k == "gap1d":
        return layers.GlobalAveragePooling1D(name=name)
    if k == "layernorm":
        return layers.LayerNormalization(name=name)  # axis -1, epsilon 1e-3
    if k == "lstm":
        return layers.LSTM(spec["units"], name=name)
    if k == "gru":
        return layers.GRU(spec["units"], name=name)  # reset_after=True
    raise ValueError(k)


def build_model(case: dict):
    """The case's compiled Keras model (seeded by the caller)."""
    if case["arch"] == "branch":
        o = case["opts"]
        reg_layers = ck.l2_layers(case)

        def reg(name):
            return keras.regularizers.L2(o["l2"]) if name in reg_layers else None

        inp = keras.Input((case["features"],), name="features")
        a = layers.Dense(32, activation="relu", kernel_regularizer=reg("branch_a"), name="branch_a")(inp)
        b = layers.Dense(32, activation="tanh", kernel_regularizer=reg("branch_b"), name="branch_b")(inp)
        merged = layers.Add(name="merge")([a, b])
        skip = layers.Concatenate(name="skip")([merged, inp])
        hidden = layers.Dense(16, activation="relu", kernel_regularizer=reg("hidden"), name="hidden")(skip)
        if case["loss"] in ck.BINARY_LOSSES:
            out = layers.Dense(1, activation="sigmoid", kernel_regularizer=reg("probs"), name="probs")(hidden)
        else:
            out = layers.Dense(case["classes"], activation="softmax", kernel_regularizer=reg("probs"), name="probs")(hidden)
        model = keras.Model(inp, out, name=case["name"].replace("-", "_"))
    else:
        dtype = "int32" if case["data"] in ("sequences", "padded_sequences") else "float32"
        model = keras.Sequential(
            [keras.Input(ck.input_shape(case), dtype=dtype)] + [_layer(s, case) for s in ck.layers_of(case)],
            name=case["name"].replace("-", "_"),
        )
    cls, kwargs, _full = ck.keras_optimizer(case)
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), tuple):
        name, skw = kwargs["learning_rate"]
        kwargs["learning_rate"] = getattr(keras.optimizers.schedules, name)(**skw)
    optimizer = getattr(keras.optimizers, cls)(**kwargs)
    if case["loss"] == "categorical":
        if case["label_smoothing"]:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=case["label_smoothing"])
        else:
            loss = "categorical_crossentropy"
    elif case["loss"] == "sparse":
        loss = "sparse_categorical_crossentropy"
    elif case["loss"] == "binary":
        loss = "binary_crossentropy"
    elif case["loss"] == "binary_mse":
        loss = "mean_squared_error"
    elif case["loss"] == "kld":
        loss = "kl_divergence"
    elif case["loss"] == "categorical_mse_sum":
        loss = keras.losses.MeanSquaredError(reduction="sum")
    elif case["loss"] == "mse":
        loss = "mean_squared_error"
    elif case["loss"] == "mae":
        loss = "mean_absolute_error"
    elif case["loss"] == "huber":
        loss = keras.losses.Huber()  # delta 1.0
    else:
        raise ValueError(case["loss"])
    model.compile(optimizer=optimizer, loss=loss, metrics=[] if case["loss"] in ck.REGRESSION_LOSSES else ["accuracy"])
    return model


def keras_inputs(case: dict, data: dict):
    x = data["x"]
    if case["data"] in ("sequences", "padded_sequences"):
        x = x.astype(np.int32)
    labels = data["labels"]
    if case["loss"] in ("categorical", "kld", "categorical_mse_sum"):
        y = keras.utils.to_categorical(labels, case["classes"]).astype(np.float32)
    elif case["loss"] == "sparse":
        y = labels.astype(np.int32)
    elif case["loss"] in ck.REGRESSION_LOSSES:
        y = labels.astype(np.float32).reshape(-1, 1)
    else:  # binary, binary_mse
        y = labels.astype(np.float32).reshape(-1, 1)
    return x, y


def _tensor(a):
    return tf.constant(a) if BACKEND == "tensorflow" else keras.ops.convert_to_tensor(a)


def _numpy(t):
    return keras.ops.convert_to_numpy(t)


def _train_step(model, optimizer, trainable):
    """One step of Model.fit's train_step: loss = compute_loss (regularizers, sample weights), then optimizer.apply."""
    if BACKEND == "tensorflow":

        @tf.function(reduce_retracing=True)
        def step(xb, yb, sw):
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, sample_weight=sw, training=True)
            optimizer.apply(tape.gradient(loss, trainable), trainable)
            return loss

        return step
    if BACKEND == "torch":

        import torch  # the Keras backend itself (this process has no TensorFlow)

        def step(xb, yb, sw):  # keras/src/backend/torch/trainer.py train_step
            y_pred = model(xb, training=True)
            model.zero_grad()
            loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, sample_weight=sw, training=True)
            loss.backward()
            with torch.no_grad():
                optimizer.apply([v.value.grad for v in trainable], trainable)
            return _numpy(loss)

        return step
    raise ValueError(BACKEND)


def pretrain(model, x, y, batch_size: int, steps: int) -> None:
    """Train the weights for `steps` steps (same optimizer config, same batches, dropout off), then forget the optimizer."""
    rates = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dropout):
            rates[layer] = layer.rate
            layer.rate = 0.0
    trainable = list(model.trainable_variables)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    optimizer.build(trainable)
    step = _train_step(model, optimizer, trainable)

    def train_step(xb, yb):
        step(xb, yb, _tensor(np.ones(len(xb), np.float32)))

    for idx in ck.batches(len(x), batch_size, steps):
        train_step(_tensor(x[idx]), _tensor(y[idx]))
    for layer, rate in rates.items():
        layer.rate = rate


def measure(model, x, y, labels, batch_size: int, steps: int = ck.STEPS, class_weight=None, n_train=None,
            loss: str = "categorical") -> list[float]:
    """Train a copy of the optimizer for `steps` steps, as Model.fit's train_step does; returns the metric curve.

    Dropout is disabled (rate 0), BatchNorm runs in training mode.  After
    every EVAL_EVERY steps (and before the first) the metric is the
    cross-entropy of model(x, training=False) on all rows.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    trainable = list(model.trainable_variables)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    optimizer.build(trainable)

    train_step = _train_step(model, optimizer, trainable)

    # fit(class_weight=...) turns into per-sample weights w[y]
    weights = np.ones(len(x), np.float32)
    if class_weight:
        weights = np.asarray([class_weight[int(c)] for c in labels], np.float32)
    curve = []
    for t, idx in enumerate(ck.batches(n_train or len(x), batch_size, steps)):  # the metric uses all rows
        if t % ck.EVAL_EVERY == 0:
            curve.append(ck.metric(_numpy(model(x, training=False)), labels, loss))
        value = float(train_step(_tensor(x[idx]), _tensor(y[idx]), _tensor(weights[idx])))
        if not np.isfinite(value):
            raise FloatingPointError(f"Keras loss is {value} at step {t}")
    if optimizer.use_ema:  # what the end of Model.fit does
        optimizer.finalize_variable_values(trainable)
    curve.append(ck.metric(_numpy(model(x, training=False)), labels, loss))
    return curve


def generate(gen_file) -> None:
    case_dir = Path(gen_file).resolve().parent
    case = ck.load_case(case_dir)
    if case["keras_backend"] != BACKEND:
        raise RuntimeError(f"case.py says keras_backend={case['keras_backend']}; gen_keras.py must set CASEKIT_KERAS_BACKEND")
    keras.utils.set_random_seed(ck.SEED)
    if BACKEND == "tensorflow":
        tf.config.experimental.enable_op_determinism()

    data = ck.load_data(case["data"])
    x, y = keras_inputs(case, data)
    model = build_model(case)
    if case["pretrain"]:
        pretrain(model, x, y, case["batch_size"], case["pretrain"])
    if case["opts"].get("frozen_bn"):  # fine-tuning with frozen BatchNorm layers: recompile after changing trainable
        for name in case["opts"]["frozen_bn"]:
            model.get_layer(name).trainable = False
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])

    out = case_dir / "keras"
    shutil.rmtree(out, ignore_errors=True)
    n, b = len(x), case["batch_size"]
    fit = {"batch_size": b, "epochs": ck.epochs_for(ck.train_rows(case, n), b), "shuffle": False}
    if case["validation_split"]:
        fit["validation_split"] = case["validation_split"]
    if case["class_weight"]:
        fit["class_weight"] = {str(k): float(v) for k, v in case["class_weight"].items()}
    export_keras_bundle(model, out, x=x, y=y, fit=fit)
    # write_expected calls model(x, training=False).numpy(), which a torch-backend output (requires_grad) refuses
    write_expected(lambda inputs, training=False: _numpy(model(inputs, training=training)), out, x)

    curve = measure(model, x, y, data["labels"], b, class_weight=case["class_weight"], n_train=ck.train_rows(case, n),
                    loss=case["loss"])
    ck.write_json(case_dir / "measured.json", {"keras_loss": curve})
    print(f"{case['name']}: keras loss {curve[0]:.4f} -> {curve[-1]:.4f} over {ck.STEPS} steps; wrote {out}")
