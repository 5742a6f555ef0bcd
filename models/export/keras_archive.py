"""Read a Keras 3 `.keras` archive without importing Keras (zipfile, json, h5py).

Used by the torch halves of the fixture generators, which must not import
TensorFlow/Keras, to copy Keras weights into a PyTorch port.

    from keras_archive import KerasArchive
    ar = KerasArchive("../keras/model.keras")
    ar.config                      # parsed config.json
    ar.weights                     # {"layers/dense/vars/0": ndarray, ...}
    ar.layer_vars("probs")         # arrays of the layer named "probs" in config.json,
                                   # in `layer.weights` order

model.weights.h5 names layers by a *saving name* (the snake_case class name
made unique with _1, _2, ... in layer order), not by the user's layer name;
`saving_names()` maps user names to those groups using the layer order in
config.json.  Recurrent layers keep their variables under `<group>/cell/vars`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np


def snake_case(name: str) -> str:
    """Keras's `naming.to_snake_case` (keras/src/utils/naming.py)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


class KerasArchive:
    def __init__(self, path):
        self.path = Path(path)
        with zipfile.ZipFile(self.path) as z:
            self.metadata = json.loads(z.read("metadata.json"))
            self.config = json.loads(z.read("config.json"))
            h5_bytes = z.read("model.weights.h5")
        self.weights: dict[str, np.ndarray] = {}
        with h5py.File(io.BytesIO(h5_bytes), "r") as f:

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    self.weights[name] = obj[()]

            f.visititems(visit)

    def layers(self) -> list[dict]:
        return self.config["config"]["layers"]

    def saving_names(self) -> dict[str, str]:
        """{user layer name: "layers/<saving name>"} for the top-level layers."""
        counts: dict[str, int] = {}
        out = {}
        for layer in self.layers():
            if layer["class_name"] == "InputLayer":
                continue
            base = snake_case(layer["class_name"])
            n = counts.get(base, 0)
            counts[base] = n + 1
            out[layer["config"]["name"]] = f"layers/{base}" + (f"_{n}" if n else "")
        return out

    def layer_vars(self, layer_name: str) -> list[np.ndarray]:
        """The variables of one top-level layer, in `layer.weights` order."""
        group = self.saving_names()[layer_name]
        prefix = group + "/"
        found = {}
        for path, array in self.weights.items():
            if path.startswith(prefix):
                rest = path[len(prefix):]
                m = re.fullmatch(r"(?:(.*)/)?vars/(\d+)", rest)
                if m:
                    found[(m.group(1) or "", int(m.group(2)))] = array
        return [found[k] for k in sorted(found)]
