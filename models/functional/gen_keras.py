"""functional, Keras half: a branched Functional model on wine (see README.md).

Writes keras/ (model.keras, fit.json, inputs.safetensors, expected.safetensors,
reference.safetensors).
Imports keras/tensorflow, never torch.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
sys.dont_write_bytecode = True

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "export"))

from pins import check_pins  # noqa: E402

check_pins(["tensorflow-cpu", "keras", "numpy", "h5py", "safetensors", "scikit-learn"])

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from keras_bundle import export_keras_bundle, write_expected  # noqa: E402
from keras_reference import write_keras_reference  # noqa: E402

import data  # noqa: E402

SEED = 0
L2 = 1e-3  # kernel_regularizer of branch_a: adds L2 * sum(w**2) to the loss

keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()

x, labels = data.train_split()
y = labels.astype(np.int32)  # sparse labels

inp = keras.Input((data.NUM_FEATURES,), name="features")
a = layers.Dense(32, activation="relu", kernel_regularizer=keras.regularizers.L2(L2), name="branch_a")(inp)
b = layers.Dense(32, activation="tanh", name="branch_b")(inp)
merged = layers.Add(name="merge")([a, b])
skip = layers.Concatenate(name="skip")([merged, inp])  # 32 + 13 = 45
hidden = layers.Dense(16, activation="relu", name="hidden")(skip)
probs = layers.Dense(data.NUM_CLASSES, activation="softmax", name="probs")(hidden)
model = keras.Model(inp, probs, name="wine_branches")
model.compile(
    optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

out = HERE / "keras"
shutil.rmtree(out, ignore_errors=True)
export_keras_bundle(model, out, x=x, y=y)
write_expected(model, out, x)
write_keras_reference(model, out, x, y)  # forward, loss, grads, 20-step run (README.md)
print(f"wrote {out}")
