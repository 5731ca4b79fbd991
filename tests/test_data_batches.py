"""Training batches: the fused compiled batch is what predict's path computes."""

import numpy as np
import pytest

from tsrnn import TSRNNRegressor
from tsrnn import data as D


def _numpy_batch(model, values, starts, lookback, steps, nt, fut_cols):
    """The batch as predict's steps build it: gather, baseline, window scaling."""
    x, y, f = D.gather_windows(values, starts, lookback, steps, nt, fut_cols)
    y = y - model._baseline(x, steps)
    norm = model._window_norm(x)
    if norm is not None:
        y = y / norm[1]
        x = model._net_input(x, norm)
    return x, y, f


@pytest.mark.parametrize("season", [0, 5])
@pytest.mark.parametrize("window_scaling", [True, False])
def test_training_batch_equals_the_predict_path(season, window_scaling):
    rng = np.random.default_rng(0)
    nt, lookback, steps = 2, 12, 7
    values = (rng.normal(size=(300, 4)) * [1, 50, 1, 1] + [0, 1e3, 0, 0]).astype(np.float32)
    values[100:140, 0] = 0.01 * rng.normal(size=40)  # calm windows: the scale floor
    starts = rng.choice(300 - lookback - steps, 40, replace=False).astype(np.int64)
    fut_cols = np.array([3, 2], np.int64)
    model = TSRNNRegressor(lookback=lookback)
    model._n_targets, model._season, model._window_scaling = nt, season, window_scaling
    got = D.training_batch(values, starts, lookback, steps, nt, fut_cols, season,
                           model._MIN_WINDOW_SCALE, window_scaling)
    want = _numpy_batch(model, values, starts, lookback, steps, nt, fut_cols)
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    if window_scaling:  # the statistics: float64 values rounded once
        x = values[starts[:, None] + np.arange(lookback)][:, :, :nt].astype(np.float64)
        loc, scale = model._window_norm(values[starts[:, None] + np.arange(lookback)])
        np.testing.assert_array_equal(loc, x.mean(axis=1, keepdims=True).astype(np.float32))
        want_scale = np.maximum(x.std(axis=1, keepdims=True), model._MIN_WINDOW_SCALE)
        np.testing.assert_array_equal(scale, want_scale.astype(np.float32))
        assert (scale == np.float32(model._MIN_WINDOW_SCALE)).any()  # the floor is hit


def test_window_stats_keep_nan():
    x = np.ones((2, 5, 1), np.float32)
    x[1, 2, 0] = np.nan
    loc, scale = D.window_stats(x, 1, 0.05)
    assert loc[0, 0, 0] == 1 and scale[0, 0, 0] == np.float32(0.05)
    assert np.isnan(loc[1, 0, 0]) and np.isnan(scale[1, 0, 0])
