"""max-norm-constraint, torch half: the port of keras/ with the differences case.py plants; exports torch/ (see README.md)."""

import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))

from casekit_torch import generate  # noqa: E402

if __name__ == "__main__":
    generate(__file__)
