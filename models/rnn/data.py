"""Data shared by gen_keras.py and gen_torch.py (numpy only).

N sequences of T tokens drawn uniformly from 0..V-1 with numpy's PCG64
(seed 0).  Label rule: split the vocabulary into C=3 ranges of 17 tokens
(0-16, 17-33, 34-49); the label is the range that occurs most often in the
sequence (ties go to the lower range).
"""

import numpy as np

N = 256
T = 12
V = 50
C = 3


def sequences():
    """(x int64 (N, T), y int64 (N,))."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, size=(N, T), dtype=np.int64)
    counts = np.stack([np.bincount(row // 17, minlength=C) for row in x])
    y = counts.argmax(axis=1).astype(np.int64)
    return x, y
