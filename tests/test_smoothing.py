"""The smoothing partner (tsrnn.smoothing) against plain-Python references and
exact cases, and its combination with the network in every forecasting path."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor, backtest
from tsrnn import smoothing as S
from tsrnn.datasets import load_air_passengers


def _states_reference(y, alpha, beta, phi, l0, b0):
    out = [(l0, b0)]
    lev, tr = l0, b0
    for v in y:
        fit = lev + phi * tr
        e = v - fit
        lev, tr = fit + alpha * e, phi * tr + beta * e
        out.append((lev, tr))
    return np.array(out)


def test_states_follow_the_recursion_of_a_plain_loop():
    y = np.random.default_rng(0).normal(size=50).cumsum()
    for p in [(0.3, 0.1, 0.9, 1.0, 0.2), (1.0, 0.0, 1.0, -2.0, 0.0), (0.05, 0.05, 0.8, 3, -1)]:
        np.testing.assert_allclose(S.states(y, *p), _states_reference(y, *p), rtol=1e-13)


def _one(y, m=1, steps=6):
    return S.Smoothing.fit([np.asarray(y, float)[:, None]], 1, m)


def test_a_line_is_continued_and_a_constant_kept():
    t = np.arange(40.0)
    line = _one(5 + 2 * t).forecast(6)[0, :, 0]
    np.testing.assert_allclose(line, 5 + 2 * np.arange(40, 46), rtol=1e-4)
    flat = _one(np.full(30, 7.5)).forecast(4)[0, :, 0]
    np.testing.assert_allclose(flat, 7.5, rtol=1e-9)
    one = _one([3.0]).forecast(2)[0, :, 0]  # a single value: the naive forecast
    np.testing.assert_array_equal(one, [3.0, 3.0])


def test_a_seasonal_series_is_adjusted_and_reseasonalised():
    m, reps = 4, 10
    factors = np.array([0.8, 1.1, 1.3, 0.8])
    y = 100 * np.tile(factors, reps) * (1 + 0.001 * np.random.default_rng(1).normal(
        size=m * reps))
    f, mult = S.seasonal_factors(y, m)
    assert mult
    np.testing.assert_allclose(f, factors, rtol=5e-3)
    fc = _one(y, m).forecast(8)[0, :, 0]
    np.testing.assert_allclose(fc, 100 * np.tile(factors, 2), rtol=1e-2)
    assert S.seasonal_factors(np.random.default_rng(2).normal(size=40) + 50, 4) is None


def test_running_along_the_history_ends_where_the_fit_did():
    rng = np.random.default_rng(3)
    y = (50 + rng.normal(size=(36, 2)).cumsum(axis=0)) * [1, -1]
    sm = S.Smoothing.fit([y], 2, 4)
    end = sm.forecast(5)[0]
    np.testing.assert_allclose(sm.along(0, y, np.array([36]), 5)[0], end, rtol=1e-12)
    # continuing from the fitted state: origin 0 is the end of the fitted history
    nxt = sm.along(0, y[:3], np.array([0, 3]), 5, continued=True)
    np.testing.assert_allclose(nxt[0], end, rtol=1e-12)
    assert np.isfinite(nxt).all()
    # an origin with no value before it has no forecast
    assert np.isnan(sm.along(0, y, np.array([0]), 5)).all()


def _fit(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TSRNNRegressor(**{"hidden_size": 8, "max_epochs": 5, "random_state": 0,
                                 **kw}).fit(data)


def _long(n_series=3, n=80):
    rng = np.random.default_rng(0)
    ds = pd.date_range("2001-01-01", periods=n, freq="MS")
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds,
                                    "y": 100 + rng.normal(size=n).cumsum() + i * 10})
                      for i in range(n_series)], ignore_index=True)


def _blocks(data):
    return [g["y"].to_numpy()[:, None] for _, g in data.groupby("unique_id")]


def test_a_combined_forecast_is_the_mean_of_the_network_and_the_smoothing(tmp_path):
    data = _long()
    alone = _fit(data, lookback=12, horizon=4, combine=None)
    both = _fit(data, lookback=12, horizon=4, combine="smoothing")
    smooth = S.Smoothing.fit(_blocks(data), 1, 12).forecast(4).reshape(-1)
    expected = 0.5 * (alone.predict()["y_pred"].to_numpy() + smooth)
    np.testing.assert_allclose(both.predict()["y_pred"], expected, rtol=1e-6)
    # new history: the smoothing is refitted on it
    part = data.groupby("unique_id").head(60)
    smooth = S.Smoothing.fit(_blocks(part), 1, 12).forecast(4).reshape(-1)
    np.testing.assert_allclose(
        both.predict(part)["y_pred"],
        0.5 * (alone.predict(part)["y_pred"].to_numpy() + smooth), rtol=1e-6)
    # the intervals move with the point forecast; a saved model forecasts the same
    fc = both.predict(level=[80])
    assert ((fc["y_pred_lo_80"] < fc["y_pred"]) & (fc["y_pred"] < fc["y_pred_hi_80"])).all()
    loaded = TSRNNRegressor.load(both.save(tmp_path / "m.tsrnn"))
    pd.testing.assert_frame_equal(loaded.predict(level=[80]), fc)
    # combine is fitted: changed afterwards, it is refused, not ignored
    with pytest.raises(ValueError, match=r"combine=None \(fitted with 'smoothing'\)"):
        both.set_params(combine=None).predict()


def test_in_sample_forecasts_and_backtests_combine_the_same_way():
    data = _long(2)
    alone = _fit(data, lookback=12, horizon=3, combine=None)
    both = _fit(data, lookback=12, horizon=3, combine="smoothing")
    a = alone.predict_insample(data, step_size=5)
    b = both.predict_insample(data, step_size=5)
    sm = S.Smoothing.fit(_blocks(data), 1, 12)  # fitted on the history given
    for i, (uid, g) in enumerate(b.groupby("unique_id", sort=False)):
        origins = np.searchsorted(data[data.unique_id == uid]["ds"], g["cutoff"]) + 1
        along = sm.along(i, _blocks(data)[i], origins[::3], 3).reshape(-1)
        np.testing.assert_allclose(
            g["forecast"], 0.5 * (a[a.unique_id == uid]["forecast"].to_numpy() + along),
            rtol=1e-6)
    # a backtest fitted once forecasts its first window as predict() does
    res = backtest(both, data, n_windows=2, refit=False)
    first = res.forecasts[res.forecasts["window"] == 0]
    fitted = _fit(data.groupby("unique_id").head(74), lookback=12, horizon=3,
                  combine="smoothing")
    np.testing.assert_allclose(first["forecast"], fitted.predict()["y_pred"], rtol=1e-6)


def test_auto_combines_only_where_the_held_out_windows_say_so():
    t = np.arange(300.0)
    idx = pd.date_range("2000-01-01", periods=300, freq="D")
    # a gentle trend: exponential smoothing is right, a one-epoch network is not
    trend = pd.Series(10 + 0.05 * t + 0.01 * np.sin(t), index=idx)
    weak = _fit(trend, lookback=10, horizon=3, hidden_size=2, max_epochs=1)
    assert weak.route_.combine_weight == 0.5
    # a cycle of 10 steps in a daily series (season 7): smoothing forecasts it flat
    cycle = pd.Series(np.sin(2 * np.pi * t / 10), index=idx)
    strong = _fit(cycle, lookback=20, horizon=5, max_epochs=60, hidden_size=16)
    assert strong.route_.combine_weight == 0.0
    assert _fit(cycle, lookback=20, horizon=5, combine=None).route_.smoothing is None


def test_arrays_refuse_a_combination_they_cannot_make():
    X, y = np.zeros((20, 4, 1)), np.zeros(20)
    with pytest.raises(ValueError, match="combine=None.*array input"):
        TSRNNRegressor(combine=None).fit(X, y)
    TSRNNRegressor(max_epochs=1).fit(X, y)  # the default is fine (it does nothing)


def test_air_passengers_combination_is_seasonal():
    y = load_air_passengers()
    m = _fit(y, lookback=24, horizon=12, combine="smoothing")
    assert m.route_.smoothing.season == 12 and m.route_.smoothing.multiply.all()


def test_fit_is_the_same_over_threads(monkeypatch):
    """Series are fitted a range per thread: the fit is the same bits with one
    thread or three, and an error still names its series."""
    from tsrnn import parallel
    from tsrnn.smoothing import Smoothing

    rng = np.random.default_rng(5)
    blocks = [(np.cumsum(rng.standard_normal(40)) + 30)[:, None] for _ in range(7)]
    fits = []
    for threads in (1, 3):
        monkeypatch.setattr(parallel, "_num_threads", threads)
        fits.append(Smoothing.fit(blocks, 1, 4))
    for name in Smoothing.ARRAYS:
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    blocks[5] = np.full((40, 1), np.nan)
    with pytest.raises(ValueError, match="series 'f'"):
        Smoothing.fit(blocks, 1, 4, ids=list("abcdefg"))
