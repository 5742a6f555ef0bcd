"""A sweep over every Keras layer class parallax's importer lifts
(crates/model-import/src/keras/layers/mod.rs, `convert`) and the argument values it accepts,
with real Keras 3 outputs and training-mode gradients as the reference.

Each configuration is a tiny functional model `Input -> layer` (two inputs for the merge
layers) with random weights, written to `cases/<Class>_<k>/`:

- `model.keras`: `model.save()`, re-zipped with deflate and fixed timestamps (same members,
  same bytes inside but for metadata.json's `date_saved` and config.json's
  `shared_object_id`s (Python object ids, renumbered); smaller and reproducible);
- `data.safetensors`: `x` (or `x.a`, `x.b`), Keras's inference `output`, the fixed objective
  weights `r`, and the gradients of `sum(output * r)` (output of a `training=True` call, except
  for layers with dropout, which use inference) w.r.t. the input (`grad.input`, or
  `grad.input.a` ...) and every trainable weight (`grad.<variable path>`, e.g.
  `grad.layer/forward_lstm/lstm_cell/kernel`);
- `config.json`: the class, the constructor arguments, the input shapes, whether the
  gradients are training-mode.

A configuration Keras itself rejects is skipped and listed in `skipped.json`.

Run by `cargo xtask fixtures` with this directory as the working directory. Writes only
`cases/` and `skipped.json` here.
"""

import json
import os
import shutil
import sys
import zipfile

sys.dont_write_bytecode = True
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import random  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PINNED = {"tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"}


def check_versions():
    import safetensors

    found = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    for name, want in PINNED.items():
        if found[name] != want:
            print(f"warning: {name} {found[name]} installed, models/requirements.txt pins {want}")
    if safetensors.__version__ != "0.8.0":
        print(f"warning: safetensors {safetensors.__version__}, pinned 0.8.0")


L = keras.layers
ACTIVATIONS = [
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink", "threshold",
]


def grid(base, *variations):
    """The base configuration, then each variation merged into it."""
    out = [dict(base)]
    for v in variations:
        c = dict(base)
        c.update(v)
        out.append(c)
    return out


def cases():
    """(class, kwargs, input shapes without batch, input kind) for every configuration."""
    out = []

    def add(cls, configs, shapes, kind="float"):
        for cfg in configs:
            shp = shapes(cfg) if callable(shapes) else shapes
            out.append((cls, cfg, shp, kind))

    cf = {"data_format": "channels_first"}
    # Dense
    add("Dense", grid({"units": 3}, {"use_bias": False}, {"activation": "relu"},
                      {"activation": "softmax"}), [(4,)])
    add("Dense", [{"units": 2, "activation": "tanh"}], [(3, 4)])
    add("Dense", [{"units": 2, "activation": "gelu"}], [(2, 3, 4)])
    # Convolutions
    conv_var = [
        {"padding": "same"}, {"strides": 2}, {"strides": 2, "padding": "same"},
        {"dilation_rate": 2}, {"dilation_rate": 2, "padding": "same"}, {"use_bias": False},
        {"activation": "relu"}, {"kernel_size": 1},
    ]
    add("Conv1D", grid({"filters": 2, "kernel_size": 3}, *conv_var, {"padding": "causal"},
                       {"padding": "causal", "strides": 2},
                       {"padding": "causal", "strides": 2, "dilation_rate": 1, "kernel_size": 4},
                       {"kernel_size": 2, "padding": "same"},
                       {"kernel_size": 4, "strides": 3, "padding": "same"},
                       {"padding": "causal", "dilation_rate": 2}, {"groups": 2, "filters": 4},
                       cf, dict(cf, strides=2, padding="same")),
        lambda c: [(4, 6)] if c.get("data_format") == "channels_first" else [(6, 4)])
    add("Conv2D", grid({"filters": 2, "kernel_size": 3}, *conv_var, {"strides": (2, 1)},
                       {"kernel_size": 2, "padding": "same"},
                       {"kernel_size": (2, 4), "strides": 2, "padding": "same",
                        "dilation_rate": 1},
                       {"kernel_size": (2, 3), "strides": (1, 2), "padding": "same"},
                       {"groups": 2, "filters": 4}, cf, dict(cf, strides=2, padding="same"),
                       dict(cf, groups=2, filters=2)),
        lambda c: [(4, 5, 6)] if c.get("data_format") == "channels_first" else [(5, 6, 4)])
    add("Conv3D", grid({"filters": 2, "kernel_size": 2}, {"padding": "same", "strides": 2},
                       {"dilation_rate": 2}, {"groups": 2}, cf),
        lambda c: [(2, 4, 4, 3)] if c.get("data_format") == "channels_first" else [(4, 4, 3, 2)])
    dw_var = [
        {"padding": "same"}, {"strides": 2}, {"strides": 2, "padding": "same"},
        {"dilation_rate": 2}, {"dilation_rate": 2, "padding": "same"}, {"use_bias": False},
        {"depth_multiplier": 2}, {"activation": "relu"},
    ]
    add("DepthwiseConv1D", grid({"kernel_size": 3}, *dw_var, cf,
                                {"kernel_size": 2, "padding": "same"},
                                {"kernel_size": 4, "strides": 3, "padding": "same"},
                                {"padding": "causal"}),
        lambda c: [(3, 6)] if c.get("data_format") == "channels_first" else [(6, 3)])
    add("DepthwiseConv2D", grid({"kernel_size": 3}, *dw_var, cf,
                                dict(cf, strides=2, padding="same", depth_multiplier=2)),
        lambda c: [(3, 5, 6)] if c.get("data_format") == "channels_first" else [(5, 6, 3)])
    add("SeparableConv1D", grid({"filters": 2, "kernel_size": 3}, *dw_var, cf,
                                {"padding": "causal"}),
        lambda c: [(3, 6)] if c.get("data_format") == "channels_first" else [(6, 3)])
    add("SeparableConv2D", grid({"filters": 2, "kernel_size": 3}, *dw_var, cf),
        lambda c: [(3, 5, 6)] if c.get("data_format") == "channels_first" else [(5, 6, 3)])
    tr_var = [
        {"padding": "same"}, {"strides": 2}, {"strides": 2, "padding": "same"},
        {"strides": 2, "output_padding": 1}, {"strides": 3, "padding": "same", "output_padding": 1},
        {"dilation_rate": 2}, {"use_bias": False}, {"activation": "relu"},
        {"kernel_size": 2, "strides": 2, "padding": "same"},
        {"kernel_size": 4, "strides": 2, "padding": "same"},
        {"kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 2},
        {"kernel_size": 2, "strides": 1, "padding": "same"},
        {"kernel_size": 3, "strides": 2, "padding": "valid", "output_padding": 0},
    ]
    add("Conv1DTranspose", grid({"filters": 2, "kernel_size": 3}, *tr_var, cf),
        lambda c: [(3, 5)] if c.get("data_format") == "channels_first" else [(5, 3)])
    add("Conv2DTranspose", grid({"filters": 2, "kernel_size": 3}, *tr_var, cf,
                                {"kernel_size": (2, 3), "strides": (2, 1)}),
        lambda c: [(3, 4, 5)] if c.get("data_format") == "channels_first" else [(4, 5, 3)])
    add("Conv3DTranspose", grid({"filters": 2, "kernel_size": 2}, {"strides": 2},
                                {"padding": "same", "strides": 2}, cf),
        lambda c: [(2, 3, 3, 3)] if c.get("data_format") == "channels_first" else [(3, 3, 3, 2)])
    # Normalization
    add("BatchNormalization", grid({}, {"axis": 1}, {"center": False}, {"scale": False},
                                   {"epsilon": 0.1}, {"momentum": 0.5}), [(3, 3, 4)])
    add("BatchNormalization", [{}, {"center": False, "scale": False}, {"trainable": False}],
        [(4,)])
    add("BatchNormalization", [{"axis": 2}, {"axis": -2}], [(3, 4)])
    add("LayerNormalization", grid({}, {"axis": [1, 2]}, {"axis": 1}, {"rms_scaling": True},
                                   {"center": False}, {"scale": False}, {"epsilon": 0.1}),
        [(3, 4)])
    add("LayerNormalization", [{"axis": -1}, {"axis": [1, 3]}, {"axis": [-3, -2, -1]}],
        [(2, 3, 4)])
    add("GroupNormalization", [{"groups": 2}, {"groups": 1}], [(5, 4)])
    add("GroupNormalization", [{"groups": 2}], [(4,)])
    add("GroupNormalization", grid({"groups": 2}, {"groups": 1}, {"groups": 4}, {"axis": 1},
                                   {"center": False}, {"scale": False}, {"epsilon": 0.1}),
        lambda c: [(4, 3, 3)] if c.get("axis") == 1 else [(3, 3, 4)])
    # Activations
    add("Activation", [{"activation": a} for a in ACTIVATIONS], [(3, 4)])
    add("ReLU", grid({}, {"max_value": 2.0}, {"negative_slope": 0.1}, {"threshold": 0.5},
                     {"max_value": 1.5, "negative_slope": 0.2, "threshold": -0.5},
                     {"threshold": 1.0, "negative_slope": 0.3}), [(3, 4)])
    add("LeakyReLU", grid({}, {"negative_slope": 0.05}), [(3, 4)])
    add("ELU", grid({}, {"alpha": 0.5}), [(3, 4)])
    add("Softmax", grid({}, {"axis": 1}, {"axis": [1, 2]}, {"axis": -2}, {"axis": 0}), [(3, 4)])
    add("ReLU", [{"max_value": 0.0}, {"max_value": 1.0, "threshold": 2.0}], [(3, 4)])
    add("LeakyReLU", [{"negative_slope": -0.5}, {"negative_slope": 1.5}], [(3, 4)])
    add("ELU", [{"alpha": -1.0}], [(3, 4)])
    # Regularization (inference only)
    add("Dropout", grid({"rate": 0.3}, {"rate": 0.3, "noise_shape": [None, 1, 4]}), [(3, 4)])
    add("SpatialDropout1D", [{"rate": 0.3}], [(3, 4)])
    add("SpatialDropout2D", grid({"rate": 0.3}, cf), [(3, 3, 4)])
    add("SpatialDropout3D", grid({"rate": 0.3}, cf), [(2, 2, 3, 2)])
    # Reshaping
    add("Flatten", [{}], [(3, 4)])
    add("Flatten", grid({}, cf), [(2, 3, 4)])
    add("Reshape", [{"target_shape": (12,)}, {"target_shape": (-1, 2)}, {"target_shape": (2, -1, 3)},
                    {"target_shape": (4, 3)}], [(3, 4)])
    add("Permute", [{"dims": (2, 1)}], [(3, 4)])
    add("Permute", [{"dims": (3, 1, 2)}, {"dims": (2, 3, 1)}], [(2, 3, 4)])
    add("ZeroPadding1D", [{"padding": 1}, {"padding": (1, 2)},
                          {"padding": (2, 1), "data_format": "channels_first"}], [(3, 2)])
    add("ZeroPadding2D", [{"padding": 1}, {"padding": ((1, 0), (0, 2))}, {"padding": (1, 2)},
                          {"padding": ((1, 0), (2, 1)), "data_format": "channels_first"}],
        [(3, 3, 2)])
    add("ZeroPadding3D", [{"padding": 1}, {"padding": ((1, 0), (0, 1), (1, 1))},
                          {"padding": 1, "data_format": "channels_first"}], [(2, 2, 2, 2)])
    add("UpSampling1D", [{"size": 2}, {"size": 3}], [(3, 2)])
    add("UpSampling2D", [{"size": 2}, {"size": (2, 3)}, {"size": 2, "interpolation": "bilinear"},
                         {"size": (3, 2), "interpolation": "bilinear"},
                         {"size": 2, "data_format": "channels_first"},
                         {"size": 2, "interpolation": "bilinear",
                          "data_format": "channels_first"}], [(3, 3, 2)])
    add("UpSampling3D", [{"size": 2}, {"size": 2, "data_format": "channels_first"}],
        [(2, 2, 2, 2)])
    # Pooling
    for dim, shp, shp_cf in [(1, (6, 3), (3, 6)), (2, (5, 6, 3), (3, 5, 6)),
                             (3, (4, 4, 5, 2), (2, 4, 4, 5))]:
        for kind in ["Max", "Average"]:
            add(f"{kind}Pooling{dim}D",
                grid({"pool_size": 2}, {"pool_size": 3, "strides": 1}, {"padding": "same"},
                     {"pool_size": 3, "strides": 2, "padding": "same"},
                     {"pool_size": 2, "strides": 1, "padding": "same"},
                     {"pool_size": 3, "strides": 2}, cf),
                lambda c, s=shp, s2=shp_cf: [s2] if c.get("data_format") else [s])
            add(f"Global{kind}Pooling{dim}D", grid({}, {"keepdims": True}, cf,
                                                   dict(cf, keepdims=True)),
                lambda c, s=shp, s2=shp_cf: [s2] if c.get("data_format") else [s])
    # Embedding (integer input; gradients w.r.t. the table only)
    add("Embedding", [{"input_dim": 6, "output_dim": 3},
                      {"input_dim": 6, "output_dim": 3, "mask_zero": True}], [(4,)], "ids")
    # Recurrent
    for cls in ["SimpleRNN", "LSTM", "GRU"]:
        var = [
            {"return_sequences": True}, {"go_backwards": True},
            {"go_backwards": True, "return_sequences": True}, {"activation": "relu"},
            {"use_bias": False}, {"unroll": True}, {"dropout": 0.3},
            {"recurrent_dropout": 0.3}, {"activation": "sigmoid"},
        ]
        if cls != "SimpleRNN":
            var += [{"recurrent_activation": "hard_sigmoid"}, {"recurrent_activation": "tanh"}]
        var += [{"return_state": True}, {"return_state": True, "return_sequences": True}]
        if cls == "LSTM":
            var += [{"unit_forget_bias": False}]
        if cls == "GRU":
            var += [{"reset_after": False}, {"reset_after": False, "use_bias": False},
                    {"reset_after": False, "return_sequences": True, "go_backwards": True}]
        add(cls, grid({"units": 3}, *var), [(4, 3)])
    for inner in ["LSTM", "GRU", "SimpleRNN"]:
        for mm in ["concat", "sum", "mul", "ave"]:
            add("Bidirectional", [{"layer": (inner, {"units": 2}), "merge_mode": mm}], [(4, 3)])
        add("Bidirectional", [{"layer": (inner, {"units": 2, "return_sequences": True}),
                               "merge_mode": "concat"}], [(4, 3)])
    add("Bidirectional", [{"layer": ("GRU", {"units": 2, "reset_after": False}),
                           "merge_mode": "sum"}], [(4, 3)])
    add("Bidirectional", [{"layer": ("LSTM", {"units": 2}), "merge_mode": None},
                          {"layer": ("GRU", {"units": 2, "return_sequences": True}),
                           "merge_mode": None},
                          {"layer": ("LSTM", {"units": 2, "return_state": True}),
                           "merge_mode": "concat"},
                          {"layer": ("GRU", {"units": 2, "return_state": True,
                                             "return_sequences": True}), "merge_mode": "ave"},
                          {"layer": ("LSTM", {"units": 2, "go_backwards": True}),
                           "merge_mode": "concat"},
                          {"layer": ("SimpleRNN", {"units": 2, "activation": "relu"}),
                           "merge_mode": "mul"},
                          {"layer": ("LSTM", {"units": 2, "return_sequences": True}),
                           "backward_layer": ("LSTM", {"units": 2, "return_sequences": True,
                                                        "go_backwards": True}),
                           "merge_mode": "sum"}], [(4, 3)])
    # Merge (two inputs)
    for cls in ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]:
        add(cls, [{}], [(3, 4), (3, 4)])
    add("Concatenate", [{"axis": -1}, {"axis": 1}, {"axis": 2}], [(3, 4), (3, 4)])
    add("Concatenate", [{"axis": 1}], [(2, 4), (3, 4)])
    add("Concatenate", [{"axis": -2}], [(2, 4), (3, 4)])
    for cls in ["Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]:
        add(cls, [{}], [(3, 4), (3, 4), (3, 4)])
    for cls in ["Add", "Subtract", "Multiply", "Maximum"]:
        add(cls, [{}], [(3, 4), (1, 4)])
    # Preprocessing
    add("Rescaling", [{"scale": 0.5}, {"scale": 0.5, "offset": 1.0}, {"scale": 2.0},
                      {"scale": [1.0, 2.0, 3.0, 4.0]}, {"scale": 1.0, "offset": [0.0, 1.0, 2.0, 3.0]}],
        [(3, 4)])
    add("Normalization", [{"mean": [0.5, -1.0, 2.0, 0.0], "variance": [1.0, 4.0, 0.25, 2.0]},
                          {"mean": [0.5, -1.0, 2.0, 0.0], "variance": [1.0, 4.0, 0.25, 2.0],
                           "invert": True},
                          {"axis": -1, "adapt": True}, {"axis": None, "adapt": True},
                          {"axis": (1, 2), "adapt": True},
                          {"mean": 0.5, "variance": 2.0}, {"axis": 1, "adapt": True}],
        [(3, 4)])
    add("Identity", [{}], [(3, 4)])
    # channels_first where the output's last axis is as long as the channels: Keras's
    # TensorFlow `add` then puts the bias on the last axis (the importer refuses these;
    # appended last so that the earlier cases keep their seeds).
    add("Conv1D", [{"filters": 2, "kernel_size": 3, "groups": 2, "data_format": "channels_first"}],
        [(4, 4)])
    add("Conv2D", [{"filters": 2, "kernel_size": 3, "groups": 2, "data_format": "channels_first"},
                   {"filters": 2, "kernel_size": 3, "groups": 2, "use_bias": False,
                    "data_format": "channels_first"}], [(4, 5, 4)])
    add("DepthwiseConv2D", [{"kernel_size": 3, "data_format": "channels_first"}], [(3, 5, 5)])
    add("DepthwiseConv1D", [{"kernel_size": 3, "data_format": "channels_first"}], [(3, 5)])
    add("SeparableConv2D", [{"filters": 2, "kernel_size": 3, "data_format": "channels_first"}],
        [(3, 5, 4)])
    add("Conv3D", [{"filters": 2, "kernel_size": 2, "use_bias": False,
                    "data_format": "channels_first"}], [(2, 4, 4, 3)])
    return out


def make_layer(cls, cfg):
    cfg = dict(cfg)
    cfg.pop("adapt", None)
    if cls == "Bidirectional":
        inner_cls, inner_cfg = cfg.pop("layer")
        if "backward_layer" in cfg:
            b_cls, b_cfg = cfg.pop("backward_layer")
            cfg["backward_layer"] = getattr(L, b_cls)(**b_cfg)
        return L.Bidirectional(getattr(L, inner_cls)(**inner_cfg), name="layer", **cfg)
    return getattr(L, cls)(name="layer", **cfg)


def jsonable(v):
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def rezip(path):
    """Deflate the archive's members with fixed timestamps (sorted, same contents but for
    metadata.json's `date_saved` and config.json's `shared_object_id`s, fixed so that
    regenerating reproduces every byte)."""
    with zipfile.ZipFile(path) as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    for i, (name, data) in enumerate(members):
        if name == "config.json":
            # `shared_object_id` is a Python object id; renumbered in order of appearance.
            ids = {}

            def renumber(v):
                if isinstance(v, dict):
                    return {
                        k: (ids.setdefault(x, len(ids) + 1) if k == "shared_object_id"
                            else renumber(x))
                        for k, x in v.items()
                    }
                if isinstance(v, list):
                    return [renumber(x) for x in v]
                return v

            members[i] = (name, json.dumps(renumber(json.loads(data))).encode())
        if name == "metadata.json":
            meta = json.loads(data)
            meta["date_saved"] = "2026-01-01@00:00:00"
            members[i] = (name, json.dumps(meta).encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def one_case(idx, cls, cfg, shapes, kind, out_dir):
    seed = 1000 + idx
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    names = ["x"] if len(shapes) == 1 else ["a", "b", "c"][: len(shapes)]
    if kind == "ids":
        inputs = [keras.Input(shape=shapes[0], name="x", dtype="int32")]
        xs = [rng.integers(0, cfg["input_dim"], size=(2,) + tuple(shapes[0])).astype(np.int32)]
    else:
        inputs = [keras.Input(shape=s, name=n) for n, s in zip(names, shapes)]
        xs = [(rng.standard_normal((2,) + tuple(s)) * 1.5).astype(np.float32) for s in shapes]
    layer = make_layer(cls, cfg)
    y = layer(inputs[0] if len(inputs) == 1 else inputs)
    model = keras.Model(inputs if len(inputs) > 1 else inputs[0], y)
    if cfg.get("adapt"):
        layer.adapt((rng.standard_normal((16,) + tuple(shapes[0])) * 2.0 + 0.5).astype(np.float32))
    else:
        for w in layer.weights:
            v = w.numpy()
            p = w.path
            if "moving_variance" in p:
                new = rng.uniform(0.5, 1.5, v.shape)
            elif "count" in p.split("/")[-1]:
                continue
            else:
                new = rng.standard_normal(v.shape) * 0.5
            w.assign(new.astype(v.dtype))
    feed = xs[0] if len(xs) == 1 else xs
    outs = model(feed, training=False)
    many = isinstance(outs, (list, tuple))
    outs = [np.asarray(o) for o in outs] if many else [np.asarray(outs)]
    # Saved before the training-mode call, which updates BatchNormalization's moving stats.
    os.makedirs(out_dir)
    path = os.path.join(out_dir, "model.keras")
    model.save(path)
    rezip(path)
    rs = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
    dropout = any(cfg.get(k, 0) for k in ["rate", "dropout", "recurrent_dropout"]) or \
        cls.startswith("SpatialDropout") or cls == "Dropout"
    train = not dropout
    tx = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        if kind != "ids":
            for t in tx:
                tape.watch(t)
        yt = model(tx[0] if len(tx) == 1 else tx, training=train)
        yt = list(yt) if many else [yt]
        obj = tf.add_n([tf.reduce_sum(t * r) for t, r in zip(yt, rs)])
    wts = model.trainable_weights
    targets = ([] if kind == "ids" else tx) + [w.value for w in wts]
    grads = tape.gradient(obj, targets)
    data = {}
    for n, x in zip(names, xs):
        data["x" if len(xs) == 1 else f"x.{n}"] = x
    for j, (o, r) in enumerate(zip(outs, rs)):
        suffix = f".{j}" if many else ""
        data[f"output{suffix}"] = o.astype(np.float32)
        data[f"r{suffix}"] = r
    k = 0
    if kind != "ids":
        for n in names:
            data["grad.input" if len(xs) == 1 else f"grad.input.{n}"] = np.asarray(grads[k])
            k += 1
    for w in wts:
        g = grads[k]
        k += 1
        g = np.zeros(w.shape, np.float32) if g is None else np.asarray(tf.convert_to_tensor(g))
        data[f"grad.{w.path}"] = g.astype(np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in data.items()},
              os.path.join(out_dir, "data.safetensors"))
    meta = {
        "class": cls,
        "args": jsonable(cfg),
        "inputs": [list(s) for s in shapes],
        "input_kind": kind,
        "outputs": len(outs),
        "training_gradients": train,
        "weights": [w.path for w in wts],
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    check_versions()
    random.seed(0)
    np.random.seed(0)
    tf.config.experimental.enable_op_determinism()
    root = os.path.join(HERE, "cases")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    counts = {}
    skipped = []
    for idx, (cls, cfg, shapes, kind) in enumerate(cases()):
        k = counts.get(cls, 0)
        name = f"{cls}_{k}"
        out_dir = os.path.join(root, name)
        try:
            one_case(idx, cls, cfg, shapes, kind, out_dir)
            counts[cls] = k + 1
        except Exception as e:  # Keras rejects the configuration itself
            shutil.rmtree(out_dir, ignore_errors=True)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            skipped.append({"class": cls, "args": jsonable(cfg), "keras_error": msg[:200]})
            print(f"skipped {cls} {cfg}: {msg[:120]}")
        keras.backend.clear_session()
    with open(os.path.join(HERE, "skipped.json"), "w") as f:
        json.dump(skipped, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{sum(counts.values())} cases, {len(skipped)} skipped")


if __name__ == "__main__":
    main()
