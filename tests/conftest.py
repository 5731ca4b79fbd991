import numpy as np
import pytest

CELL_CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_state(cell, S, B, H, rng, dtype):
    h = rng.standard_normal((S, B, H)).astype(dtype) * 0.5
    if cell == "lstm":
        return (h, rng.standard_normal((S, B, H)).astype(dtype) * 0.5)
    return h
