"""Record what real Keras computes for a model: `reference.safetensors` of a Keras bundle.

    from keras_reference import write_keras_reference
    write_keras_reference(model, "out/keras", x, y)        # after export_keras_bundle

`model` must be the compiled model that was just exported (its weights are the
bundle's initial weights); `x`, `y` are the bundle's inputs.safetensors `x`,
`y` (all rows).  The model is left exactly as it was handed in (every
variable is restored, Dropout rates are put back); the optimizer used for the
training run is a fresh copy of `model.optimizer` made from its config, so
`model.optimizer` is not built or stepped.

What is written (all floats float32; more in the file's `description`
metadata and the fixture READMEs):

    forward.inference      model(x[:32], training=False)            eager
    forward.training       model(x[:32], training=True), Dropout rate 0   eager
    bn.<layer>/moving_mean, bn.<layer>/moving_variance
                           moving statistics after that one training forward
    loss                   model.compute_loss(y=y[:32], y_pred=model(x[:32],
                           training=True)) at the initial weights: the
                           compiled loss (sum_over_batch_size) plus
                           sum(model.losses) (regularizers)
    loss.compiled          the compiled loss alone
    loss.regularization    sum(model.losses) (only if the model has any)
    grad.<layer>/<var>     d loss / d variable for every trainable variable
    train.index            int64 (steps, batch): rows of x/y used at each step
    train.loss             (steps,) loss of each step, before its update
    train.param.<t>.<layer>/<var>   trainable variables after t steps
    train.bn.<steps>.<layer>/moving_mean|moving_variance   after the run

The loss/gradient computation and each training step run inside one
`tf.function` (no XLA), the way `Model.fit`'s train_step does on the
TensorFlow backend: GradientTape around `model(x, training=True)` and
`model.compute_loss`, then `optimizer.apply(grads, model.trainable_variables)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

try:
    from .bundle_io import canonicalize_safetensors
    from .keras_archive import KerasArchive, snake_case
except ImportError:
    from bundle_io import canonicalize_safetensors
    from keras_archive import KerasArchive, snake_case

FORWARD_ROWS = 32
TRAIN_BATCH = 12
TRAIN_STEPS = 20
RECORD_STEPS = (0, 1, 2, 5, 10, 20)


def train_index(n_rows: int, batch: int = TRAIN_BATCH, steps: int = TRAIN_STEPS) -> np.ndarray:
    """int64 (steps, batch): step t uses rows (t*batch + i) mod n_rows, i < batch."""
    return (np.arange(steps * batch, dtype=np.int64) % n_rows).reshape(steps, batch)


def _layers_with_weights(model):
    """Top-level layers in model.layers order (InputLayer excluded)."""
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def variable_names(model) -> dict[int, str]:
    """{id(variable): "<user layer name>/<variable name>"} for every variable of the top-level layers."""
    names = {}
    for layer in _layers_with_weights(model):
        for v in layer.weights:
            name = f"{layer.name}/{v.name}"
            if name in names.values():
                raise ValueError(f"two variables are both called {name}")
            names[id(v)] = name
    return names


def h5_paths(model) -> dict[str, str]:
    """{"<layer>/<var>": "layers/<saving name>/[cell/]vars/<i>"}: where model.weights.h5 keeps each variable.

    Saving names follow keras_archive.KerasArchive.saving_names (snake_case
    class name, made unique with _1, _2 in layer order); recurrent layers keep
    their cell's variables under `cell/vars/<index in cell.weights>`.
    """
    counts: dict[str, int] = {}
    out = {}
    for layer in _layers_with_weights(model):
        base = snake_case(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        group = f"layers/{base}" + (f"_{n}" if n else "")
        cell = getattr(layer, "cell", None)
        owner, sub = (cell, "cell/") if cell is not None else (layer, "")
        for i, v in enumerate(owner.weights):
            out[f"{layer.name}/{v.name}"] = f"{group}/{sub}vars/{i}"
    return out


def _disable_dropout(model) -> dict:
    """Set every Dropout/SpatialDropout rate to 0; returns {layer: old rate} to restore."""
    import keras

    old = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dropout):
            old[layer] = layer.rate
            layer.rate = 0.0
        for attr in ("dropout", "recurrent_dropout"):
            if getattr(layer, attr, 0) not in (0, 0.0, None):
                raise NotImplementedError(f"{layer.name}.{attr} = {getattr(layer, attr)}: not handled")
        if type(layer).__name__ in ("GaussianDropout", "GaussianNoise", "AlphaDropout"):
            raise NotImplementedError(f"{layer.name}: {type(layer).__name__} is not disabled")
    return old


def _bn_layers(model):
    import keras

    return [layer for layer in _layers_with_weights(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _bn_stats(model, prefix: str) -> dict:
    out = {}
    for layer in _bn_layers(model):
        out[f"{prefix}{layer.name}/moving_mean"] = layer.moving_mean.numpy()
        out[f"{prefix}{layer.name}/moving_variance"] = layer.moving_variance.numpy()
    return out


def _f32(a) -> np.ndarray:
    import tensorflow as tf

    if isinstance(a, tf.IndexedSlices):  # Embedding gradients: densify (zero rows for unused tokens)
        a = tf.convert_to_tensor(a)
    a = np.asarray(a.numpy() if hasattr(a, "numpy") else a)
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
    return np.array(a, order="C", copy=True)  # (np.ascontiguousarray would turn a scalar into shape (1,))


def compute_keras_reference(model, x, y, steps=TRAIN_STEPS, batch=TRAIN_BATCH, record_steps=RECORD_STEPS):
    """The reference tensors (dict name -> ndarray) and a description dict."""
    import keras
    import tensorflow as tf

    if not getattr(model, "compiled", False):
        raise ValueError("the model must be compiled (its loss and optimizer are used)")
    x = np.asarray(x)
    y = np.asarray(y)
    names = variable_names(model)
    trainable = list(model.trainable_variables)
    tnames = [names[id(v)] for v in trainable]
    snapshot = [(v, v.numpy()) for v in model.variables]
    old_rates = _disable_dropout(model)
    out: dict[str, np.ndarray] = {}

    def restore():
        for v, value in snapshot:
            v.assign(value)

    try:
        xb, yb = x[:FORWARD_ROWS], y[:FORWARD_ROWS]
        out["forward.inference"] = _f32(model(xb, training=False))
        out["forward.training"] = _f32(model(xb, training=True))
        out.update(_bn_stats(model, "bn."))
        restore()

        @tf.function
        def loss_and_grads(xb, yb):
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                compiled = model._compile_loss(yb, y_pred)
                total = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=True)
            grads = tape.gradient(total, trainable)
            reg = tf.add_n([tf.reduce_sum(r) for r in model.losses]) if model.losses else tf.zeros(())
            return total, compiled, reg, grads

        total, compiled, reg, grads = loss_and_grads(tf.constant(xb), tf.constant(yb))
        out["loss"] = _f32(total)
        out["loss.compiled"] = _f32(compiled)
        if model.losses:
            out["loss.regularization"] = _f32(reg)
        for name, g in zip(tnames, grads):
            if g is None:
                raise ValueError(f"no gradient for {name}")
            out[f"grad.{name}"] = _f32(g)
        restore()

        optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        optimizer.build(trainable)

        @tf.function
        def train_step(xb, yb):
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=True)
            grads = tape.gradient(loss, trainable)
            optimizer.apply(grads, trainable)
            return loss

        index = train_index(len(x), batch, steps)
        out["train.index"] = index
        losses = []
        for t in range(steps + 1):
            if t in record_steps:
                for name, v in zip(tnames, trainable):
                    out[f"train.param.{t}.{name}"] = _f32(v)
            if t == steps:
                break
            losses.append(float(train_step(tf.constant(x[index[t]]), tf.constant(y[index[t]]))))
        out["train.loss"] = np.asarray(losses, dtype=np.float32)
        out.update(_bn_stats(model, f"train.bn.{steps}."))
    finally:
        restore()
        for layer, rate in old_rates.items():
            layer.rate = rate

    optimizer_config = model.optimizer.get_config()
    loss_config = model.get_compile_config().get("loss") if hasattr(model, "get_compile_config") else None
    description = {
        "what": "what real Keras computes for this bundle's model.keras at its initial weights",
        "framework": f"keras {keras.__version__}, tensorflow {tf.__version__}, backend {keras.backend.backend()}, CPU, no XLA",
        "batch": f"x[0:{FORWARD_ROWS}], y[0:{FORWARD_ROWS}] of inputs.safetensors",
        "dropout": "disabled by setting every Dropout layer's rate to 0 (Dropout.call is the identity when rate == 0)"
        + ("; layers: " + ", ".join(layer.name for layer in old_rates) if old_rates else "; the model has no Dropout layer"),
        "forward.inference": "model(x, training=False), eager",
        "forward.training": "model(x, training=True) with dropout disabled, eager (BatchNorm normalizes with batch mean "
        "and biased batch variance and updates its moving statistics)",
        "bn": "bn.<layer>/moving_mean|moving_variance: moving statistics after that one training forward from the "
        "initial ones: moving = moving*momentum + batch*(1-momentum), batch variance biased",
        "loss": "model.compute_loss(x, y, y_pred=model(x, training=True)) inside a tf.function, as Model.train_step "
        "does: the compiled loss with reduction sum_over_batch_size (mean over the batch) plus sum(model.losses) "
        "(kernel/bias regularization on the current weights)"
        + (" -- included here: loss = loss.compiled + loss.regularization" if model.losses else " -- the model has none, loss = loss.compiled"),
        "compiled_loss": loss_config,
        "crossentropy": "TF backend: the output of a softmax activation carries _keras_logits, so "
        "(sparse_)categorical_crossentropy(from_logits=False) is computed from the logits "
        "(softmax_cross_entropy_with_logits), with no probability clipping",
        "grad": "grad.<layer>/<variable> = d loss / d variable (GradientTape over the loss above, regularization "
        "included), for model.trainable_variables; <layer> is the user's layer name",
        "h5_paths": h5_paths(model),
        "train": {
            "steps": steps,
            "batch_size": batch,
            "rows": f"step t (0-based) uses rows train.index[t] = (t*{batch} + i) mod {len(x)} of inputs.safetensors x/y",
            "shuffle": False,
            "procedure": "fresh optimizer = type(model.optimizer).from_config(model.optimizer.get_config()); per step, "
            "in a tf.function: GradientTape(y_pred = model(x, training=True); loss = model.compute_loss(...)); "
            "grads = tape.gradient(loss, trainable_variables); optimizer.apply(grads, trainable_variables). "
            "Dropout disabled, BatchNorm in training mode (moving statistics updated every step)",
            "train.loss": "loss of step t at the weights before its update (regularization included)",
            "recorded_steps": [t for t in record_steps if t <= steps],
            "train.param.<t>": "trainable variables after t optimizer steps (t=0: initial)",
            f"train.bn.{steps}": "BatchNorm moving statistics after the last step" if _bn_layers(model) else "none (no BatchNorm)",
            "optimizer": {"class_name": type(model.optimizer).__name__, "config": optimizer_config},
        },
        "dtypes": "float tensors float32; train.index int64",
    }
    return out, description


def _metadata(description: dict) -> dict:
    import keras

    return {
        "framework": "keras",
        "framework_version": keras.__version__,
        "description": json.dumps(description, sort_keys=True, default=_json_default),
    }


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def check_h5_paths(out_dir, tensors: dict, description: dict) -> None:
    """Assert that each h5 path in the description holds that variable's initial value in model.keras."""
    archive = KerasArchive(Path(out_dir) / "model.keras")
    for name, path in description["h5_paths"].items():
        key = f"train.param.0.{name}"
        if key in tensors:
            stored = archive.weights[path]
            if not np.array_equal(stored, tensors[key]):
                raise AssertionError(f"{path} in model.keras is not the initial value of {name}")


def write_keras_reference(model, out_dir, x, y, **kwargs) -> Path:
    """Compute the reference and write <out_dir>/reference.safetensors."""
    from safetensors.numpy import save_file

    tensors, description = compute_keras_reference(model, x, y, **kwargs)
    check_h5_paths(out_dir, tensors, description)
    path = Path(out_dir) / "reference.safetensors"
    save_file(tensors, str(path), metadata=_metadata(description))
    canonicalize_safetensors(path)
    return path
