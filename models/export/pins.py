"""Version pins shared by the fixture generators.

`check_pins(["keras", "numpy"])` compares the installed distributions with the
exact `==` pins in `models/requirements.txt` and prints a warning (never fails)
for every mismatch.  It uses `importlib.metadata` only, so it can be called
from both the Keras half and the torch half without importing either framework.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"

# A pinned distribution that may be installed under another name.
_ALTERNATIVES = {"tensorflow-cpu": ["tensorflow"]}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Return {normalized distribution name: pinned version}."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path}: not an exact pin: {line!r}")
        pins[_norm(name)] = version.strip()
    return pins


def installed_version(dist: str) -> str | None:
    for candidate in [dist, *_ALTERNATIVES.get(_norm(dist), [])]:
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_pins(dists: list[str]) -> dict[str, str | None]:
    """Warn about every distribution in `dists` that differs from its pin.

    Local version labels (`2.15.0+cu132`) are ignored.  Returns the installed
    versions, keyed by the names given.
    """
    pins = read_pins()
    found = {}
    for dist in dists:
        want = pins.get(_norm(dist))
        have = installed_version(dist)
        found[dist] = have
        if want is None:
            msg = f"{dist} is not pinned in {REQUIREMENTS}"
        elif have is None:
            msg = f"{dist} is not installed (pinned {want})"
        elif have.split("+", 1)[0] != want:
            msg = f"{dist}=={have} is installed but {REQUIREMENTS.name} pins {want}"
        else:
            continue
        print(f"warning: version pin mismatch: {msg}; the fixtures may differ", file=sys.stderr)
    return found
