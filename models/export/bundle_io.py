"""Small helpers shared by keras_bundle.py and torch_bundle.py (no framework imports)."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def canonicalize_safetensors(path) -> None:
    """Make a .safetensors file's bytes reproducible.

    The safetensors writer serializes `__metadata__` from a hash map, so the
    order of its keys changes from process to process.  This rewrites the
    header with the metadata keys sorted (tensor entries and data untouched,
    header padded with spaces to a multiple of 8 bytes as the writer does).
    """
    path = Path(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    if "__metadata__" in header:
        meta = header.pop("__metadata__")
        header = {"__metadata__": dict(sorted(meta.items())), **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    path.chmod(0o644)  # the writer creates 0600 files
