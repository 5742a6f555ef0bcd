"""Keras layer zoo: small compiled models that together use every layer the importer reads.

Run from this directory:  KERAS_BACKEND=tensorflow /work/pyenv/venv/bin/python gen_keras.py
(the lead's `cargo xtask fixtures` does it).  Keras 3.15.1, TensorFlow 2.21 (see
models/requirements.txt).

For each model NAME it writes
    NAME.keras          model.save(), made reproducible (normalize_keras_archive)
    NAME.expect.json    what Keras itself says: for every layer (recursing into nested
                        models) its class, name, enclosing models and the list of
                        (variable.path, shape, dtype, trainable, first values, sum) of
                        `layer.weights`;
                        plus the model's inputs/outputs and the number of weights
    NAME.io.safetensors tensors `x` (or `x.<i>` for several inputs) and `output` (or
                        `output.<i>`) = model(x, training=False), for numeric checks

mixed_dtypes_h5latest.* is mixed_dtypes with model.weights.h5 rewritten by h5py with libver="latest"
(superblock v3, v2 object headers, link-message groups) to cover the importer's other HDF5 path.

Every model is tiny (a few units/filters); the zoo stays well under 1 MiB.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
sys.dont_write_bytecode = True

import json  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "export"))

from pins import check_pins  # noqa: E402

check_pins(["tensorflow-cpu", "keras", "numpy", "h5py", "safetensors"])

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bundle_io import canonicalize_safetensors  # noqa: E402
from keras import layers as L  # noqa: E402
from keras_bundle import normalize_keras_archive  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

SEED = 0
keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()
RNG = np.random.default_rng(SEED)


def conv_tf_same():
    """Channels-last convolutions of every kind, TF 'same' padding, BN, pooling, resizing."""
    init = keras.initializers.HeNormal(seed=1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3), name="image"),
            L.Conv2D(
                4,
                3,
                strides=2,
                padding="same",
                activation="relu",
                kernel_initializer=init,
                bias_initializer=keras.initializers.Constant(0.1),
                kernel_regularizer=keras.regularizers.L2(1e-4),
                name="stem",
            ),
            L.BatchNormalization(momentum=0.9, epsilon=1e-3),
            L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6"),
            L.SeparableConv2D(6, 3, padding="valid", use_bias=False),
            L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="selu"),
            L.ReLU(max_value=6.0, negative_slope=0.1),
            L.ZeroPadding2D(((1, 0), (0, 1))),
            L.MaxPooling2D(2, strides=1, padding="same"),
            L.AveragePooling2D(2, padding="same"),
            L.UpSampling2D(2, interpolation="bilinear"),
            L.GroupNormalization(groups=2, epsilon=1e-4),
            L.SpatialDropout2D(0.1),
            L.Conv2D(4, 2, dilation_rate=2, use_bias=False, name="dilated"),
            L.GlobalAveragePooling2D(keepdims=True),
            L.Flatten(),
            L.Dense(3, name="logits"),
        ],
        name="conv_tf_same",
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True, clipnorm=1.0),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["accuracy"],
    )
    x = RNG.standard_normal((2, 8, 8, 3)).astype(np.float32)
    return model, x


def _channels_model(fmt):
    shape = (3, 6, 6) if fmt == "channels_first" else (6, 6, 3)
    axis = 1 if fmt == "channels_first" else -1
    inp = keras.Input(shape, name="chw")
    h = L.Conv2D(4, 3, padding="same", data_format=fmt, activation="elu", name="conv_cf")(inp)
    h = L.BatchNormalization(axis=axis, center=False, name="bn_cf")(h)
    h = L.MaxPooling2D(2, data_format=fmt, name="pool_cf")(h)
    up = L.UpSampling2D(2, data_format=fmt, name="up_cf")(h)
    up = L.AveragePooling2D(2, data_format=fmt, name="avg_cf")(up)
    up = L.ZeroPadding2D(1, data_format=fmt, name="pad_cf")(up)
    flat = L.Flatten(data_format=fmt, name="flatten_cf")(up)
    a = L.Dense(2, activation="sigmoid", name="head_flat")(flat)
    g = L.GlobalMaxPooling2D(data_format=fmt, name="gmax_cf")(h)
    b = L.Dense(2, activation="softplus", name="head_gmax")(g)
    out = L.Concatenate(name="join")([a, b])
    return keras.Model(inp, out, name="conv_channels_first")


class ChannelsLastTwin:
    """TF's CPU kernels refuse NCHW Conv2D, so the expected output comes from a channels_last
    twin with the same weights (kernels and BN vectors do not depend on data_format, and Keras's
    Flatten transposes channels_first input to channels_last first, so the Dense rows match)."""

    def __init__(self, model):
        self.twin = _channels_model("channels_last")
        self.twin.set_weights(model.get_weights())

    def __call__(self, x, training=False):
        return self.twin(np.transpose(x, (0, 2, 3, 1)), training=training)


def conv_channels_first():
    """channels_first convolution, BN on axis 1, pooling, Flatten order, two branches."""
    model = _channels_model("channels_first")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.8, clipvalue=0.5),
        loss="binary_crossentropy",
    )
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    return model, x


def rnn_stack():
    """Embedding with mask_zero, Bidirectional LSTM, GRU both reset conventions, SimpleRNN."""
    model = keras.Sequential(
        [
            keras.Input((5,), dtype="int32", name="tokens"),
            L.Embedding(20, 4, mask_zero=True, embeddings_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=2)),
            L.Bidirectional(
                L.LSTM(3, return_sequences=True, unit_forget_bias=False, dropout=0.1, name="enc"),
                merge_mode="sum",
            ),
            L.GRU(3, reset_after=False, go_backwards=True, return_sequences=True, recurrent_activation="hard_sigmoid"),
            L.GRU(3, return_sequences=True, recurrent_dropout=0.1, recurrent_regularizer=keras.regularizers.L1(1e-3)),
            L.SimpleRNN(2, return_sequences=True, activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax"),
        ],
        name="rnn_stack",
    )
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=100, alpha=0.1)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=schedule, rho=0.8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
    )
    x = RNG.integers(0, 20, size=(2, 5)).astype(np.int32)
    x[0, 3:] = 0  # masked tail
    return model, x


def functional_nested():
    """Two inputs, a nested Sequential and a frozen nested Functional, every merge, two heads."""
    in_a = keras.Input((6,), name="in_a")
    in_b = keras.Input((4,), name="in_b")
    inner_seq = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(5, activation="gelu", name="seq_dense"),
            L.Dropout(0.2),
            L.Dense(4, activation="tanh", name="proj"),
        ],
        name="inner_seq",
    )
    i = keras.Input((4,), name="inner_in")
    h = L.Dense(4, name="inner_dense", kernel_initializer=keras.initializers.Orthogonal(seed=3))(i)
    h = L.LayerNormalization(epsilon=1e-5, name="inner_ln")(h)
    inner_fn = keras.Model(i, h, name="inner_fn")
    inner_fn.trainable = False
    a = inner_seq(in_a)
    b = inner_fn(in_b)
    merged = [
        L.Add(name="add")([a, b]),
        L.Subtract(name="sub")([a, b]),
        L.Multiply(name="mul")([a, b]),
        L.Average(name="avg")([a, b]),
        L.Maximum(name="max")([a, b]),
        L.Minimum(name="min")([a, b]),
    ]
    cat = L.Concatenate(axis=-1, name="cat")(merged)
    out1 = L.Dense(3, activation="softmax", name="head_cls", kernel_constraint=keras.constraints.MaxNorm(2.0))(cat)
    # Same user name as a layer of inner_seq: the importer must keep both apart.
    out2 = L.Dense(1, name="proj")(merged[0])
    model = keras.Model([in_a, in_b], [out1, out2], name="functional_nested")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=5e-3, clipnorm=2.0),
        loss=["categorical_crossentropy", "mse"],
        loss_weights=[1.0, 0.5],
    )
    x = [RNG.standard_normal((2, 6)).astype(np.float32), RNG.standard_normal((2, 4)).astype(np.float32)]
    return model, x


def seq_misc():
    """Preprocessing, 1-D conv/pooling, reshaping, normalization and activation layers."""
    norm = L.Normalization(axis=-1)
    norm.adapt(RNG.standard_normal((16, 8, 4)).astype(np.float32) * 2.0 + 1.0)
    model = keras.Sequential(
        [
            keras.Input((8, 4), name="series"),
            norm,
            L.Rescaling(scale=0.5, offset=0.1),
            L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="swish"),
            L.Conv1D(4, 2, padding="same", kernel_regularizer=keras.regularizers.L1L2(1e-4, 1e-3)),
            L.MaxPooling1D(2),
            L.AveragePooling1D(3, strides=1, padding="same"),
            L.SpatialDropout1D(0.1),
            L.LayerNormalization(axis=-1, center=False),
            L.Permute((2, 1)),
            L.Reshape((2, 8)),
            L.Dropout(0.3),
            L.GlobalMaxPooling1D(),
            L.Dense(4, trainable=False, name="frozen"),
            L.LeakyReLU(negative_slope=0.25),
            L.ELU(alpha=0.5),
            L.Dense(3),
            L.Softmax(axis=-1),
        ],
        name="seq_misc",
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=keras.optimizers.schedules.PiecewiseConstantDecay([10, 20], [1e-2, 5e-3, 1e-3]),
            weight_decay=0.01,
        ),
        loss=keras.losses.MeanSquaredError(),
    )
    x = RNG.standard_normal((2, 8, 4)).astype(np.float32)
    return model, x


ACTIVATIONS = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid",
    "hard_silu", "hard_swish", "tanh", "softmax", "log_softmax", "softplus", "softsign",
    "silu", "swish", "mish", "exponential", "linear", "log_sigmoid", "tanh_shrink",
]


def activations():
    """Every built-in activation as an Activation layer; saved without compile."""
    inp = keras.Input((5,), name="x")
    branches = [L.Activation(name, name=f"act_{name}")(inp) for name in ACTIVATIONS]
    branches.append(L.ReLU(max_value=2.0, threshold=0.5, name="relu_thresh")(inp))
    branches.append(L.Dense(2, activation="hard_sigmoid", name="dense_hs")(inp))
    # mean/variance given to the constructor live in config.json, not in the weights file
    branches.append(L.Normalization(mean=[0.5] * 5, variance=[4.0] * 5, name="norm_cfg")(inp))
    out = L.Concatenate(name="all")(branches)
    model = keras.Model(inp, out, name="activations")
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    return model, x


def mixed_dtypes():
    """Variables stored as bfloat16 (h5py: 2-byte opaque + attribute dtype="bfloat16"),
    float16 and float64."""
    model = keras.Sequential(
        [
            keras.Input((3,), name="x"),
            L.Dense(2, dtype="bfloat16", name="bf16"),
            L.Dense(2, dtype="float16", name="f16"),
            L.Dense(2, dtype="float64", name="f64"),
        ],
        name="mixed_dtypes",
    )
    model.compile(optimizer="sgd", loss="mse")
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    return model, x


MODELS = [conv_tf_same, conv_channels_first, rnn_stack, functional_nested, seq_misc, activations, mixed_dtypes]

# Variants whose model.weights.h5 is rewritten with h5py libver="latest" (superblock v3,
# version-2 object headers, compact link-message groups), to cover that HDF5 path too.
# (HDF5 keeps groups of at most 8 links compact; larger ones go to a fractal heap, which the
# importer does not read, so the variant uses a small model.)
H5_LATEST = {"mixed_dtypes": "mixed_dtypes_h5latest"}


def rewrite_h5_latest(src: Path, dst: Path) -> None:
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(src) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    old = h5py.File(io.BytesIO(dict((i.filename, d) for i, d in members)["model.weights.h5"]), "r")
    # libver="latest" and no object timestamps, so the bytes are reproducible.
    import tempfile

    tmp = Path(tempfile.mkdtemp()) / "h5latest.h5"
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    new = h5py.File(h5py.h5f.create(str(tmp).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))

    def copy(sg, dg):
        for k, v in sg.attrs.items():
            dg.attrs[k] = v
        for name, obj in sg.items():
            if isinstance(obj, h5py.Group):
                gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
                gcpl.set_obj_track_times(False)
                copy(obj, h5py.Group(h5py.h5g.create(dg.id, name.encode(), gcpl=gcpl)))
            else:
                ds = dg.create_dataset(name, data=obj[()], track_times=False)
                for k, v in obj.attrs.items():
                    ds.attrs[k] = v

    copy(old, new)
    new.close()
    old.close()
    image = tmp.read_bytes()
    tmp.unlink()
    tmp.parent.rmdir()
    with zipfile.ZipFile(dst, "w") as z:
        for info, data in members:
            if info.filename == "model.weights.h5":
                data = image
            z.writestr(info, data)


def weights_of(layer):
    out = []
    for v in layer.weights:
        values = np.asarray(v.numpy()).astype(np.float64).ravel()
        out.append(
            {
                "path": v.path,
                "shape": list(v.shape),
                "dtype": str(v.dtype),
                "trainable": bool(v.trainable),
                # enough of the values to check decoding (byte order, f16, bf16)
                "head": [float(x) for x in values[:4]],
                "sum": float(values.sum()),
            }
        )
    return out


def describe_layers(model, scope):
    """Every layer, recursing into nested models (`scope` = enclosing model names)."""
    out = []
    for layer in model.layers:
        entry = {
            "name": layer.name,
            "class_name": layer.__class__.__name__,
            "scope": scope,
            "trainable": bool(layer.trainable),
            "weights": weights_of(layer),
        }
        out.append(entry)
        if isinstance(layer, keras.Model):
            out.extend(describe_layers(layer, scope + [layer.name]))
    return out


def named(prefix, value):
    if isinstance(value, (list, tuple)):
        return {f"{prefix}.{i}": np.ascontiguousarray(np.asarray(v)) for i, v in enumerate(value)}
    return {prefix: np.ascontiguousarray(np.asarray(value))}


def main():
    for make in MODELS:
        name = make.__name__
        model, x = make()
        y = (ChannelsLastTwin(model) if name == "conv_channels_first" else model)(x, training=False)
        path = HERE / f"{name}.keras"
        model.save(path)
        normalize_keras_archive(path)
        tensors = {**named("x", x), **named("output", y)}
        save_file(tensors, str(HERE / f"{name}.io.safetensors"), metadata={"framework": "keras", "framework_version": keras.__version__})
        canonicalize_safetensors(HERE / f"{name}.io.safetensors")
        expect = {
            "name": model.name,
            "class_name": model.__class__.__name__,
            "keras_version": keras.__version__,
            "inputs": [t.name for t in model.inputs],
            "outputs": len(model.outputs),
            "weight_count": len(model.weights),
            "scalar_count": int(sum(int(np.prod(v.shape)) for v in model.weights)),
            "trainable_scalar_count": int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
            "compiled": bool(model.compiled),
            "layers": describe_layers(model, []),
        }
        (HERE / f"{name}.expect.json").write_text(json.dumps(expect, indent=1) + "\n")
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")
        if name in H5_LATEST:
            variant = H5_LATEST[name]
            rewrite_h5_latest(path, HERE / f"{variant}.keras")
            (HERE / f"{variant}.expect.json").write_text(json.dumps(expect, indent=1) + "\n")
            (HERE / f"{variant}.io.safetensors").write_bytes((HERE / f"{name}.io.safetensors").read_bytes())
            print(f"wrote {variant}.keras")


if __name__ == "__main__":
    main()
