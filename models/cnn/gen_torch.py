"""cnn, torch half: a correct channels-first port of the Keras CNN (see README.md).

Copies the Keras initial weights from ../keras/model.keras (read with
zipfile/h5py) and asserts that the eval-mode forward reproduces the Keras
inference output.  Writes torch/.  Imports torch, never tensorflow/keras.
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

check_pins(["torch", "onnx", "onnxscript", "numpy", "safetensors", "scikit-learn", "h5py"])

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


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)  # Keras "same" with k=3, s=1 pads 1 on each side
        self.bn1 = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)  # Keras epsilon / 1 - momentum
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.bn2 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.01)
        self.flatten = nn.Flatten()  # (c, h, w) order: handled in the fc weight
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):  # x: NCHW; returns logits (CrossEntropyLoss applies log_softmax)
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(self.dropout(self.flatten(x)))


def load_keras_weights(model: Net, archive: KerasArchive) -> None:
    names = archive.saving_names()
    assert names["conv2d"] == "layers/conv2d" and names["dense"] == "layers/dense", names

    def conv(dst, layer):
        kernel, bias = archive.layer_vars(layer)
        dst.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        dst.bias.copy_(torch.from_numpy(bias))

    def bn(dst, layer):
        gamma, beta, mean, var = archive.layer_vars(layer)
        dst.weight.copy_(torch.from_numpy(gamma))
        dst.bias.copy_(torch.from_numpy(beta))
        dst.running_mean.copy_(torch.from_numpy(mean))
        dst.running_var.copy_(torch.from_numpy(var))
        dst.num_batches_tracked.zero_()

    with torch.no_grad():
        conv(model.conv1, "conv2d")
        bn(model.bn1, "batch_normalization")
        conv(model.conv2, "conv2d_1")
        bn(model.bn2, "batch_normalization_1")
        kernel, bias = archive.layer_vars("dense")  # (64, 10), rows in (h, w, c) order
        h, w, c = 2, 2, 16
        weight = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)  # cols in (c, h, w)
        model.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        model.fc.bias.copy_(torch.from_numpy(bias))


def main():
    x_nhwc, labels = data.images_nhwc()
    x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))  # NCHW
    y = torch.from_numpy(labels)  # int64 class indices

    keras_dir = HERE / "keras"
    keras_inputs = load_file(str(keras_dir / "inputs.safetensors"))
    assert np.array_equal(keras_inputs["x"].transpose(0, 3, 1, 2), x.numpy()), "not the Keras samples"
    assert np.array_equal(keras_inputs["y"].argmax(1), labels)

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
    write_torch_reference(model, optimizer, loss_fn, out, x, y)  # forward, loss, grads, 20-step run (README.md)
    print(f"wrote {out}")


if __name__ == "__main__":  # the classes above are imported by ../export/verify_reference.py
    main()
