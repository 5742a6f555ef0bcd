"""cce-probability-clipping, Keras half: builds the Keras model that case.py describes and exports keras/ (see README.md)."""

import os
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_lib"))
os.environ["CASEKIT_KERAS_BACKEND"] = "torch"  # this case's Keras model is trained on the torch backend

from casekit_keras import generate  # noqa: E402

generate(__file__)
