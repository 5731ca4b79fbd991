import os
import shutil

# Without an NVIDIA GPU, the CUDA kernels are tested on numba's CUDA simulator. This
# must be set before numba is imported; on a machine with a GPU the same tests run
# on the GPU unchanged.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

CELL_CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_state(cell, S, B, H, rng, dtype):
    h = rng.standard_normal((S, B, H)).astype(dtype) * 0.5
    if cell == "lstm":
        return (h, rng.standard_normal((S, B, H)).astype(dtype) * 0.5)
    return h


def quiet(fn, *a, **k):
    """``fn(*a, **k)`` with ConvergenceWarning silenced (short test fits hit
    max_epochs on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **k)
