"""Compile tsrnn's kernels ahead of time, into numba's disk cache.

A fresh container starts with an empty cache, and its first fit or forecast then
waits for compilation. ``tsrnn precompile`` (or :func:`precompile`) runs a tiny
fit and forecast per cell, which compiles every kernel the estimator uses, so an
image built with it starts warm::

    RUN pip install tsrnn && tsrnn precompile

The cache goes next to the installed package, or to ``NUMBA_CACHE_DIR`` when that
is set (set it to the same folder at build time and at run time).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

CELLS = ("lstm", "gru", "rnn")


def precompile(cells=CELLS, float64: bool = False, verbose: bool = False) -> float:
    """Compile the kernels of ``cells`` (training, inference, intervals; float32,
    and float64 for the functional API too with ``float64``); returns the seconds
    taken."""
    from tsrnn import TSRNNRegressor
    from tsrnn import data as D
    from tsrnn import functional as F

    t0 = time.perf_counter()
    # the compiled training batch, which a tiny fit does not compile (it pays only
    # for large fits, or once cached: tsrnn.data.batch_function)
    values = np.zeros((10, 2), np.float32)
    D.compiled_training_batch(values, np.zeros(2, np.int64), 3, 2, 1,
                              np.zeros(0, np.int64), 0, 0.05, True)
    t = np.arange(80)
    y = pd.Series(np.sin(t / 4) + 2.0, index=pd.date_range("2000-01-01", periods=80,
                                                            freq="D"))
    for cell in cells:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = TSRNNRegressor(cell=cell, hidden_size=8, lookback=8, horizon=2,
                               max_epochs=1, random_state=0).fit(y)
            m.predict(level=[80])
        dtypes = (np.float32, np.float64) if float64 else (np.float32,)
        for dtype in dtypes:
            p = F.init_params(cell, 2, 4, dtype=dtype, seed=0)
            x = np.zeros((3, 5, 2), dtype)
            out, _, cache = F.forward(cell, x, p, training=True)
            F.backward(cache, np.ones_like(out))
            F.forward(cell, x, p)
        if verbose:
            print(f"{cell}: compiled ({time.perf_counter() - t0:.1f} s so far)")
    return time.perf_counter() - t0
