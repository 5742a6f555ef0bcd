"""Data shared by gen_keras.py and gen_torch.py (numpy + scikit-learn only).

scikit-learn's bundled `load_wine` (178 samples, 13 features, 3 classes),
split with a fixed `train_test_split` (test_size=0.2, random_state=0,
stratified) and standardized with `StandardScaler` fitted on the training
split.  Both halves ship the whole standardized training split (142
samples), identical bytes, same order.
"""

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

NUM_FEATURES = 13
NUM_CLASSES = 3


def train_split():
    """(x float32 (142, 13) standardized, y int64 (142,))."""
    X, y = load_wine(return_X_y=True)
    X_train, _X_test, y_train, _y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    x = StandardScaler().fit(X_train).transform(X_train).astype(np.float32)
    return x, np.asarray(y_train, dtype=np.int64)
