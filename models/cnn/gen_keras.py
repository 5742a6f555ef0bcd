"""cnn, Keras half: a small channels-last CNN on 8x8 digits (see README.md).

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
keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()

x, labels = data.images_nhwc()  # NHWC
y = keras.utils.to_categorical(labels, data.NUM_CLASSES).astype(np.float32)

model = keras.Sequential(
    [
        keras.Input((8, 8, 1)),
        layers.Conv2D(8, 3, padding="same"),  # (8, 8, 8)
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),  # (4, 4, 8)
        layers.Conv2D(16, 3, padding="valid"),  # (2, 2, 16)
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Flatten(),  # 64, in (h, w, c) order
        layers.Dropout(0.25),
        layers.Dense(data.NUM_CLASSES, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

out = HERE / "keras"
shutil.rmtree(out, ignore_errors=True)
export_keras_bundle(model, out, x=x, y=y)
write_expected(model, out, x)
write_keras_reference(model, out, x, y)  # forward, loss, grads, 20-step run (README.md)
print(f"wrote {out}")
