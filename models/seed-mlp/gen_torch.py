"""seed-mlp, torch half: the port as people usually write it (see README.md).

Writes torch/ (model.onnx, model.eval.onnx, state_dict.safetensors,
train.json, inputs.safetensors, expected.safetensors, reference.safetensors).
Imports torch, never tensorflow/keras; reads ../keras/inputs.safetensors only
to check that both halves ship the same samples.  `Net` is imported by
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

check_pins(["torch", "onnx", "onnxscript", "numpy", "safetensors", "scikit-learn"])

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from torch_bundle import export_torch_bundle, write_expected  # noqa: E402
from torch_reference import write_torch_reference  # noqa: E402

import data  # noqa: E402

SEED = 0
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
torch.use_deterministic_algorithms(True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)
        nn.init.xavier_uniform_(self.fc1.weight)  # "glorot_uniform"; biases keep torch's init
        nn.init.xavier_uniform_(self.fc2.weight)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def main():
    X_train, y_train = data.train_split()
    x_all = torch.from_numpy(X_train).float()
    mean = x_all.mean(0)
    std = x_all.std(0)  # unbiased (n - 1)
    std[std == 0] = 1  # the constant-zero pixel columns
    x = ((x_all - mean) / std)[: data.N_SHIP]
    y = torch.from_numpy(y_train[: data.N_SHIP])  # int64 class indices

    # Same samples, same order as the Keras half: equal labels, and the inputs
    # differ only by the ddof factor sqrt((n-1)/n) of the standard deviation.
    keras_inputs = load_file(str(HERE / "keras" / "inputs.safetensors"))
    assert np.array_equal(keras_inputs["y"].argmax(1), y.numpy())
    n = X_train.shape[0]
    np.testing.assert_allclose(x.numpy(), keras_inputs["x"] * np.sqrt((n - 1) / n), atol=1e-5)

    torch.manual_seed(SEED)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()

    out = HERE / "torch"
    shutil.rmtree(out, ignore_errors=True)
    export_torch_bundle(model, optimizer, loss_fn, out, example_input=x[:2], x=x, y=y, batch_size=32, epochs=5, shuffle=True)
    write_expected(model, out, x)
    write_torch_reference(model, optimizer, loss_fn, out, x, y, record_steps=(0, 1, 5, 20))  # params after steps 0, 1, 5, 20 only (file size)
    print(f"wrote {out}")


if __name__ == "__main__":  # the classes above are imported by ../export/verify_reference.py
    main()
