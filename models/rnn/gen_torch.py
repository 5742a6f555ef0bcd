"""rnn, torch half: a correct port of the Keras Embedding/LSTM/GRU model (see README.md).

Copies the Keras initial weights from ../keras/model.keras (read with
zipfile/h5py), reordering gates, and asserts that the eval-mode forward
reproduces the Keras inference output.  Writes torch/.  Imports torch,
never tensorflow/keras.
Writes reference.safetensors too (export/torch_reference.py).  `Net` is imported by
../export/verify_reference.py: the script body runs only under __main__.
"""

import sys

sys.dont_write_bytecode = True

import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "export"))

from pins import check_pins  # noqa: E402

check_pins(["torch", "onnx", "onnxscript", "numpy", "safetensors", "h5py"])

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from keras_archive import KerasArchive  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from torch_bundle import export_torch_bundle, write_expected  # noqa: E402
from torch_reference import write_torch_reference  # noqa: E402

import data  # noqa: E402

SEED = 0
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
torch.use_deterministic_algorithms(True)

TOLERANCE = 1e-6  # observed ~1e-7; a wrong z/r swap or BN eps shows up as 1e-5..1e-4 at init
H = 24


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(data.V, 16)
        self.lstm = nn.LSTM(16, H, batch_first=True)
        self.gru = nn.GRU(H, H, batch_first=True)
        self.fc = nn.Linear(H, data.C)

    def forward(self, x):  # x: int64 (N, T); returns logits
        seq, _ = self.lstm(self.embedding(x))
        _, h_n = self.gru(seq)
        return self.fc(h_n[-1])


def swap_zr(a: np.ndarray) -> np.ndarray:
    """Keras GRU blocks (z, r, h) along the last axis -> torch order (r, z, n)."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def load_keras_weights(model: Net, archive: KerasArchive) -> None:
    w = archive.weights
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        model.embedding.weight.copy_(t(w["layers/embedding/vars/0"]))
        # LSTM: Keras gates (i, f, c, o) are torch's (i, f, g, o); one Keras bias.
        model.lstm.weight_ih_l0.copy_(t(w["layers/lstm/cell/vars/0"].T))
        model.lstm.weight_hh_l0.copy_(t(w["layers/lstm/cell/vars/1"].T))
        model.lstm.bias_ih_l0.copy_(t(w["layers/lstm/cell/vars/2"]))
        model.lstm.bias_hh_l0.zero_()
        # GRU (reset_after=True): swap z and r; bias (2, 3H) = [input bias; recurrent bias].
        bias = w["layers/gru/cell/vars/2"]
        assert bias.shape == (2, 3 * H), bias.shape
        model.gru.weight_ih_l0.copy_(t(swap_zr(w["layers/gru/cell/vars/0"]).T))
        model.gru.weight_hh_l0.copy_(t(swap_zr(w["layers/gru/cell/vars/1"]).T))
        model.gru.bias_ih_l0.copy_(t(swap_zr(bias[0])))
        model.gru.bias_hh_l0.copy_(t(swap_zr(bias[1])))
        model.fc.weight.copy_(t(w["layers/dense/vars/0"].T))
        model.fc.bias.copy_(t(w["layers/dense/vars/1"]))


def main():
    tokens, labels = data.sequences()
    x = torch.from_numpy(tokens)  # int64
    y = torch.from_numpy(labels)  # int64

    keras_dir = HERE / "keras"
    keras_inputs = load_file(str(keras_dir / "inputs.safetensors"))
    assert np.array_equal(keras_inputs["x"], tokens) and np.array_equal(keras_inputs["y"], labels)

    torch.manual_seed(SEED)
    model = Net()
    load_keras_weights(model, KerasArchive(keras_dir / "model.keras"))

    with torch.no_grad():
        probs = torch.softmax(model.eval()(x), dim=1).numpy()
    model.train()
    keras_probs = load_file(str(keras_dir / "expected.safetensors"))["output"]
    err = float(np.abs(probs - keras_probs).max())
    assert err < TOLERANCE, f"torch forward differs from Keras inference by {err}"
    print(f"parity with Keras inference: max |dp| = {err:.3g}")

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()

    out = HERE / "torch"
    shutil.rmtree(out, ignore_errors=True)
    export_torch_bundle(model, optimizer, loss_fn, out, example_input=x[:2], x=x, y=y, batch_size=32, epochs=5, shuffle=True)
    write_expected(model, out, x)
    write_torch_reference(model, optimizer, loss_fn, out, x, y, record_steps=(0, 1, 5, 20))  # params after steps 0, 1, 5, 20 only (file size)
    print(f"wrote {out}")


if __name__ == "__main__":  # the classes above are imported by ../export/verify_reference.py
    main()
