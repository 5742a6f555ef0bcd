"""Write a Keras model as a parallax *Keras bundle*.

A Keras bundle is a directory with:

    model.keras           the model as saved by `model.save` (a zip with
                          metadata.json, config.json, model.weights.h5); the
                          model must be compiled so config.json carries
                          `compile_config` (optimizer, loss, metrics)
    fit.json              the arguments `model.fit` is (or would be) called
                          with: {"batch_size", "epochs", "shuffle",
                          "validation_split", "class_weight", "backend", ...}
    inputs.safetensors    (if x is given) tensors `x` (or `x.<input name>`
                          for a dict of inputs) and `y` (or `y.<output name>`);
                          string metadata framework="keras", framework_version
    expected.safetensors  (optional, `write_expected`) tensor `output` (or
                          `output.<i>` for several outputs) = model(x,
                          training=False); same metadata

Python API (import keras yourself first, with KERAS_BACKEND set):

    from keras_bundle import export_keras_bundle, write_expected
    export_keras_bundle(model, "out/keras", x=x, y=y, fit={"epochs": 20})
    write_expected(model, "out/keras", x)

CLI:

    python keras_bundle.py path/to/script.py:build OUT_DIR [--expected]

`build()` is called with no arguments and returns either a compiled Keras
model or a dict of keyword arguments for `export_keras_bundle`
(`model`, and optionally `x`, `y`, `fit`).  `--expected` also writes
expected.safetensors (needs `x`).  The CLI defaults KERAS_BACKEND to
"tensorflow" and TF_CPP_MIN_LOG_LEVEL to 3 unless they are already set.

Reproducible archives: with `normalize=True` (the default) the .keras zip is
rewritten so that the same model gives the same bytes in every process:
every zip entry gets the timestamp 1980-01-01 00:00:00, metadata.json's
`date_saved` is set from $SOURCE_DATE_EPOCH (default 315532800, i.e.
1980-01-01@00:00:00 UTC), and the `shared_object_id` values in config.json
(Python `id()`s of shared objects) are renumbered 1, 2, ... in order of first
appearance.  Nothing else in the archive is touched.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

try:
    from .bundle_io import canonicalize_safetensors
except ImportError:
    from bundle_io import canonicalize_safetensors

FIT_DEFAULTS = {
    "batch_size": 32,
    "epochs": 5,
    "shuffle": True,
    "validation_split": 0.0,
    "class_weight": None,
}

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _to_numpy(value):
    import numpy as np

    if not isinstance(value, np.ndarray):
        # keras.ops.convert_to_numpy handles every backend's tensors (a torch tensor that
        # requires grad, a jax array, a tf.Tensor); plain Python values go through numpy.
        import keras

        value = keras.ops.convert_to_numpy(value)
    return np.ascontiguousarray(np.asarray(value))


def _named_tensors(prefix: str, value) -> dict:
    if isinstance(value, dict):
        return {f"{prefix}.{name}": _to_numpy(v) for name, v in value.items()}
    if isinstance(value, (list, tuple)):
        return {f"{prefix}.{i}": _to_numpy(v) for i, v in enumerate(value)}
    return {prefix: _to_numpy(value)}


def _metadata() -> dict:
    import keras

    return {"framework": "keras", "framework_version": keras.__version__}


def _save_safetensors(tensors: dict, path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=_metadata())
    canonicalize_safetensors(path)


def normalize_keras_archive(path) -> None:
    """Rewrite a .keras zip in place so that its bytes are reproducible."""
    path = Path(path)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    date_saved = time.strftime("%Y-%m-%d@%H:%M:%S", time.gmtime(epoch))
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    ids: dict[bytes, int] = {}

    def renumber(match):
        n = ids.setdefault(match.group(2), len(ids) + 1)
        return match.group(1) + str(n).encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as dst:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                if "date_saved" in meta:
                    meta["date_saved"] = date_saved
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = re.sub(rb'("shared_object_id":\s*)(\d+)', renumber, data)
            new = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            new.compress_type = info.compress_type
            new.external_attr = info.external_attr
            new.create_system = 3
            dst.writestr(new, data)
    path.write_bytes(buffer.getvalue())


def export_keras_bundle(model, out_dir, x=None, y=None, fit=None, normalize=True) -> Path:
    """Write model.keras, fit.json and (if x is given) inputs.safetensors."""
    import keras

    if not getattr(model, "compiled", False):
        raise ValueError("compile the model first: model.keras must carry compile_config")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model_path = out / "model.keras"
    model.save(str(model_path))
    if normalize:
        normalize_keras_archive(model_path)

    fit_config = dict(FIT_DEFAULTS)
    fit_config["backend"] = keras.backend.backend()
    fit_config.update(fit or {})
    (out / "fit.json").write_text(json.dumps(fit_config, indent=2) + "\n")

    if x is not None:
        tensors = _named_tensors("x", x)
        if y is not None:
            tensors.update(_named_tensors("y", y))
        _save_safetensors(tensors, out / "inputs.safetensors")
    elif y is not None:
        raise ValueError("y given without x")
    return out


def write_expected(model, out_dir, x) -> Path:
    """Write expected.safetensors: `output` = model(x, training=False)."""
    outputs = model(x, training=False)
    path = Path(out_dir) / "expected.safetensors"
    _save_safetensors(_named_tensors("output", outputs), path)
    return path


def _load_builder(spec: str):
    import importlib.util

    script, sep, func = spec.rpartition(":")
    if not sep or not script:
        raise SystemExit(f"expected path/to/script.py:function, got {spec!r}")
    module_spec = importlib.util.spec_from_file_location(Path(script).stem, script)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(Path(script).resolve().parent))
    module_spec.loader.exec_module(module)
    return getattr(module, func)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Export a Keras model as a parallax Keras bundle "
        "(model.keras, fit.json, inputs.safetensors, expected.safetensors).",
        epilog="build() returns a compiled keras Model or a dict with keys "
        "model, x, y, fit (the arguments of export_keras_bundle).",
    )
    parser.add_argument("builder", help="path/to/script.py:function")
    parser.add_argument("out_dir", help="bundle directory to write")
    parser.add_argument("--expected", action="store_true", help="also write expected.safetensors (needs x)")
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    built = _load_builder(args.builder)()
    kwargs = built if isinstance(built, dict) else {"model": built}
    out = export_keras_bundle(out_dir=args.out_dir, **kwargs)
    if args.expected:
        if kwargs.get("x") is None:
            raise SystemExit("--expected needs x")
        write_expected(kwargs["model"], out, kwargs["x"])
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
