"""rnn, Keras half: Embedding -> LSTM -> GRU -> Dense on token sequences (see README.md).

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

check_pins(["tensorflow-cpu", "keras", "numpy", "h5py", "safetensors"])

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

tokens, labels = data.sequences()
x = tokens.astype(np.int32)
y = labels.astype(np.int32)  # sparse labels

model = keras.Sequential(
    [
        keras.Input((data.T,), dtype="int32"),
        layers.Embedding(data.V, 16),
        layers.LSTM(24, return_sequences=True),
        layers.GRU(24),  # reset_after=True (the default)
        layers.Dense(data.C, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

out = HERE / "keras"
shutil.rmtree(out, ignore_errors=True)
export_keras_bundle(model, out, x=x, y=y)
write_expected(model, out, x)
write_keras_reference(model, out, x, y, record_steps=(0, 1, 5, 20))  # params after steps 0, 1, 5, 20 only (file size)
print(f"wrote {out}")
