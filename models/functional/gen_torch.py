"""functional, torch half: a correct port of the branched Keras model (see README.md).

Copies the Keras initial weights from ../keras/model.keras (read with
zipfile/h5py, mapping user layer names to the archive's saving names through
config.json) and asserts that the eval-mode probabilities reproduce the
Keras inference output.  Writes torch/.  Imports torch, never
tensorflow/keras.
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
L2 = 1e-3  # the Keras kernel_regularizer factor on branch_a


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch_a = nn.Linear(data.NUM_FEATURES, 32)
        self.branch_b = nn.Linear(data.NUM_FEATURES, 32)
        self.hidden = nn.Linear(32 + data.NUM_FEATURES, 16)
        self.probs = nn.Linear(16, data.NUM_CLASSES)

    def forward(self, x):  # returns logits: CrossEntropyLoss applies log_softmax itself
        merged = torch.relu(self.branch_a(x)) + torch.tanh(self.branch_b(x))
        skip = torch.cat([merged, x], dim=1)
        return self.probs(torch.relu(self.hidden(skip)))


def load_keras_weights(model: Net, archive: KerasArchive) -> None:
    with torch.no_grad():
        for name in ["branch_a", "branch_b", "hidden", "probs"]:
            kernel, bias = archive.layer_vars(name)
            layer = getattr(model, name)
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            layer.bias.copy_(torch.from_numpy(bias))


def main():
    x_np, labels = data.train_split()
    x = torch.from_numpy(x_np)
    y = torch.from_numpy(labels)  # int64

    keras_dir = HERE / "keras"
    keras_inputs = load_file(str(keras_dir / "inputs.safetensors"))
    assert np.array_equal(keras_inputs["x"], x_np) and np.array_equal(keras_inputs["y"], labels)

    archive = KerasArchive(keras_dir / "model.keras")
    print("Keras saving names:", archive.saving_names())
    torch.manual_seed(SEED)
    model = Net()
    load_keras_weights(model, archive)

    with torch.no_grad():
        probs = torch.softmax(model.eval()(x), dim=1).numpy()
    model.train()
    keras_probs = load_file(str(keras_dir / "expected.safetensors"))["output"]
    err = float(np.abs(probs - keras_probs).max())
    assert err < TOLERANCE, f"torch forward differs from Keras inference by {err}"
    print(f"parity with Keras inference: max |dp| = {err:.3g}")

    # Keras L2(l) adds l * sum(w**2) to the loss, i.e. 2 * l * w to the gradient of
    # branch_a's kernel only: torch's coupled weight_decay on that one tensor.
    decayed = [model.branch_a.weight]
    rest = [p for n, p in model.named_parameters() if n != "branch_a.weight"]
    optimizer = torch.optim.SGD(
        [{"params": decayed, "weight_decay": 2 * L2}, {"params": rest}],
        lr=0.01,
        momentum=0.9,
    )
    loss_fn = nn.CrossEntropyLoss()

    out = HERE / "torch"
    shutil.rmtree(out, ignore_errors=True)
    export_torch_bundle(model, optimizer, loss_fn, out, example_input=x[:2], x=x, y=y, batch_size=32, epochs=5, shuffle=True)
    write_expected(model, out, x)
    write_torch_reference(model, optimizer, loss_fn, out, x, y)  # forward, loss, grads, 20-step run (README.md)
    print(f"wrote {out}")


if __name__ == "__main__":  # the classes above are imported by ../export/verify_reference.py
    main()
