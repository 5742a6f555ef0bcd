"""seed-mlp, Keras half: the reference model (see README.md).

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
from keras_bundle import export_keras_bundle, write_expected  # noqa: E402
from keras_reference import write_keras_reference  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import data  # noqa: E402

SEED = 0
keras.utils.set_random_seed(SEED)  # python random, numpy, tensorflow
tf.config.experimental.enable_op_determinism()

X_train, y_train = data.train_split()
scaler = StandardScaler().fit(X_train)  # population std (ddof=0); zero std -> 1
x = scaler.transform(X_train)[: data.N_SHIP].astype(np.float32)
y = keras.utils.to_categorical(y_train[: data.N_SHIP], data.NUM_CLASSES).astype(np.float32)

model = keras.Sequential(
    [
        keras.Input((64,)),
        keras.layers.Dense(128, activation="relu", kernel_initializer="glorot_uniform"),
        keras.layers.Dense(data.NUM_CLASSES, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

out = HERE / "keras"
shutil.rmtree(out, ignore_errors=True)
export_keras_bundle(model, out, x=x, y=y)
write_expected(model, out, x)
write_keras_reference(model, out, x, y, record_steps=(0, 1, 5, 20))  # params after steps 0, 1, 5, 20 only (file size)
print(f"wrote {out}")
