"""Data shared by gen_keras.py and gen_torch.py (numpy + scikit-learn only).

scikit-learn's bundled `load_digits` (1797 images, 64 pixel features with
values 0..16, 10 classes), split with a fixed `train_test_split`
(test_size=0.2, random_state=0, stratified).  Both halves standardize with
statistics of the whole training split (1437 samples) and ship its first
N_SHIP samples, in the same order.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

N_SHIP = 256
NUM_CLASSES = 10


def train_split():
    """(X_train float64 (1437, 64), y_train int64 (1437,))."""
    X, y = load_digits(return_X_y=True)
    X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return np.asarray(X_train, dtype=np.float64), np.asarray(y_train, dtype=np.int64)
