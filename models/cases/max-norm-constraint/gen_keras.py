"""max-norm-constraint, Keras half: builds the Keras model that case.py describes and exports keras/ (see README.md)."""

import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))

from casekit_keras import generate  # noqa: E402

generate(__file__)
