"""Training batches and the windows predict feeds the network
(tsrnn.data.network_windows), checked against plain NumPy, and the compiled
training batch, checked bit for bit against the NumPy one."""

import numpy as np
import pytest

from tsrnn import data as D
from tsrnn._config import MIN_WINDOW_SCALE

FLOOR = MIN_WINDOW_SCALE


def _numpy_windows(x, nt, steps, season, window_scaling):
    """Input, baseline and scale of windows x, in plain NumPy (float64 statistics
    rounded once to float32, then float32 arithmetic)."""
    L = x.shape[1]
    if season == 0:
        base = np.repeat(x[:, -1:, :nt], steps, axis=1)
    else:
        base = x[:, L - season + (np.arange(steps) % season), :nt]
    if not window_scaling:
        return x, base, np.ones((len(x), 1, nt), x.dtype)
    t = x[:, :, :nt].astype(np.float64)
    loc = t.mean(axis=1, keepdims=True).astype(x.dtype)
    scale = np.maximum(t.std(axis=1, keepdims=True), FLOOR).astype(x.dtype)
    xin = x.copy()
    xin[:, :, :nt] = (x[:, :, :nt] - loc) / scale
    return xin, base, scale


def _data():
    rng = np.random.default_rng(0)
    values = (rng.normal(size=(300, 4)) * [1, 50, 1, 1] + [0, 1e3, 0, 0]).astype(np.float32)
    values[100:140, 0] = 0.01 * rng.normal(size=40)  # calm windows: the scale floor
    return rng, values


@pytest.mark.parametrize("season", [0, 5])
@pytest.mark.parametrize("window_scaling", [True, False])
def test_training_batch_equals_the_numpy_composition(season, window_scaling):
    rng, values = _data()
    nt, lookback, steps = 2, 12, 7
    starts = rng.choice(300 - lookback - steps, 40, replace=False).astype(np.int64)
    fut_cols = np.array([3, 2], np.int64)
    got = D.training_batch(values, starts, lookback, steps, nt, fut_cols, season,
                           FLOOR, window_scaling)
    x, y, f = D.gather_windows(values, starts, lookback, steps, nt, fut_cols)
    xin, base, scale = _numpy_windows(x, nt, steps, season, window_scaling)
    want = (xin, (y - base) / scale, f)
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    if window_scaling:  # the floor is hit, and the statistics equal window_stats'
        loc, sc = D.window_stats(x, nt, FLOOR)
        assert (sc == np.float32(FLOOR)).any()
        np.testing.assert_array_equal(sc, _numpy_windows(x, nt, steps, season, True)[2])


@pytest.mark.parametrize("season", [0, 5])
@pytest.mark.parametrize("window_scaling", [True, False])
def test_network_windows_equal_numpy_and_leave_the_windows_alone(season, window_scaling):
    """What predict feeds the network (any windows, not only gathered ones)."""
    rng, values = _data()
    x = values[rng.choice(280, 30)[:, None] + np.arange(12)]
    before = x.copy()
    got = D.network_windows(x, 2, 7, season, FLOOR, window_scaling)
    for g, w in zip(got, _numpy_windows(before, 2, 7, season, window_scaling)):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(x, before)


def test_window_stats_keep_nan():
    x = np.ones((2, 5, 1), np.float32)
    x[1, 2, 0] = np.nan
    loc, scale = D.window_stats(x, 1, 0.05)
    assert loc[0, 0, 0] == 1 and scale[0, 0, 0] == np.float32(0.05)
    assert np.isnan(loc[1, 0, 0]) and np.isnan(scale[1, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("season", [0, 3, 12])
@pytest.mark.parametrize("window_scaling", [True, False])
def test_compiled_batch_gives_the_numpy_batchs_bits(dtype, season, window_scaling):
    """Training may run either (D.batch_function) and predict runs the NumPy
    windows: the same bits. Long windows of large, offset values make any other
    order of summation round differently (numpy's pairwise mean does)."""
    rng = np.random.default_rng(3)
    values = (rng.normal(size=(3000, 3)) * [7, 1, 1] + [1e4, 0, 0]).astype(dtype)
    values[500:700, 0] = 1e4  # flat windows: the scale floor
    values[900, 0] = np.nan  # windows through a NaN keep it, in both
    fut_cols = np.array([2], np.int64)
    for lookback, steps in [(200, 5), (24, 12), (1, 1)]:
        starts = rng.choice(3000 - lookback - steps, 64, replace=False).astype(np.int64)
        starts[:3] = [480, 890, 600]
        got = D.compiled_training_batch(values, starts, lookback, steps, 1, fut_cols,
                                        min(season, lookback), FLOOR, window_scaling)
        want = D.training_batch(values, starts, lookback, steps, 1, fut_cols,
                                min(season, lookback), FLOOR, window_scaling)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype == dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)
        if lookback == 200:  # where a pairwise sum would differ
            x = values[starts[3:, None] + np.arange(200)][:, :, :1].astype(np.float64)
            assert not np.array_equal(x.mean(axis=1), np.cumsum(x, axis=1)[:, -1] / 200)


def test_batch_function_compiles_only_when_it_pays(monkeypatch):
    from tsrnn import compile_helper
    from tsrnn._config import COMPILED_BATCHES_FROM
    from tsrnn.data import windows

    class Fresh:  # a batch function not compiled in this process
        signatures = []

    monkeypatch.setattr(windows, "compiled_training_batch", Fresh)
    monkeypatch.setattr(compile_helper, "in_cache", lambda f: False)
    assert windows.batch_function(COMPILED_BATCHES_FROM - 1) is windows.training_batch
    assert windows.batch_function(COMPILED_BATCHES_FROM) is Fresh
    monkeypatch.setattr(compile_helper, "in_cache", lambda f: f is Fresh)
    assert windows.batch_function(10) is Fresh
    monkeypatch.setattr(compile_helper, "in_cache", lambda f: False)
    Fresh.signatures = ["compiled in this process"]
    assert windows.batch_function(10) is Fresh
