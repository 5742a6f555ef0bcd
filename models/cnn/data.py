"""Data shared by gen_keras.py and gen_torch.py (numpy + scikit-learn only).

scikit-learn's bundled `load_digits` as 8x8 single-channel images scaled to
[0, 1] (pixel / 16), split with a fixed `train_test_split` (test_size=0.2,
random_state=0, stratified); the first N_SHIP training samples are shipped.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

N_SHIP = 256
NUM_CLASSES = 10


def images_nhwc():
    """(x float32 (N_SHIP, 8, 8, 1) in [0, 1], y int64 (N_SHIP,))."""
    X, y = load_digits(return_X_y=True)
    X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    x = (X_train[:N_SHIP] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    return x, np.asarray(y_train[:N_SHIP], dtype=np.int64)
