"""TSRNNRegressor from the user's side: pandas shapes, arrays, errors, sklearn tools."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import quiet
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand

FAST = dict(hidden_size=8, max_epochs=5, random_state=0)


def _sine(n=120, freq="D", name="y", seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = 10 + np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n)
    return pd.Series(v, index=pd.date_range("2020-01-01", periods=n, freq=freq), name=name)


def test_series_forecast_is_indexed_by_future_dates_and_beats_naive():
    y = load_air_passengers()
    train, test = y[:-12], y[-12:]
    m = quiet(TSRNNRegressor(lookback=24, horizon=12, random_state=0).fit, train)
    fc = m.predict()
    assert list(fc.index) == list(test.index)
    assert fc.shape == (12, 1) and np.isfinite(fc.to_numpy()).all()
    mae = np.abs(fc.iloc[:, 0].to_numpy() - test.to_numpy()).mean()
    naive_last = np.abs(train.iloc[-1] - test.to_numpy()).mean()
    assert mae < naive_last


def test_same_random_state_is_bit_identical_and_other_differs():
    y = _sine()
    a = quiet(TSRNNRegressor(lookback=12, horizon=3, **FAST).fit, y)
    b = quiet(TSRNNRegressor(lookback=12, horizon=3, **FAST).fit, y)
    np.testing.assert_array_equal(a.predict().to_numpy(), b.predict().to_numpy())
    for k in a.net_.params:
        np.testing.assert_array_equal(a.net_.params[k], b.net_.params[k])
    c = quiet(TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=5,
                              random_state=1).fit, y)
    assert not np.array_equal(a.predict().to_numpy(), c.predict().to_numpy())


def test_wide_frame_with_future_exog():
    df = load_elecdemand().iloc[-600:]
    df_in = df.copy()
    m = TSRNNRegressor(cell="gru", lookback=48, horizon=24, **FAST)
    quiet(m.fit, df.iloc[:-24], target="demand_gw", future_exog=["temperature_c", "workday"])
    pd.testing.assert_frame_equal(df, df_in)  # the caller's frame is untouched
    with pytest.raises(ValueError, match="future="):
        m.predict()
    fc = m.predict(future=df.iloc[-24:][["temperature_c", "workday"]])
    assert list(fc.columns) == ["demand_gw"]
    assert list(fc.index) == list(df.index[-24:])
    with pytest.raises(ValueError, match="forecast timestamps"):
        m.predict(future=df.iloc[-48:-24][["temperature_c", "workday"]])
    assert list(m.feature_names_in_) == ["demand_gw", "temperature_c", "workday"]


def test_wide_frame_without_target_forecasts_all_numeric_columns():
    df = pd.DataFrame({"a": _sine(seed=1).to_numpy(), "b": _sine(seed=2).to_numpy()},
                      index=_sine().index)
    m = quiet(TSRNNRegressor(lookback=12, horizon=4, **FAST).fit, df)
    fc = m.predict()
    assert list(fc.columns) == ["a", "b"] and fc.shape == (4, 2)


def _long(n_series=3, n=60):
    frames = []
    for i in range(n_series):
        s = _sine(n, seed=i)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": s.index,
                                    "y": s.to_numpy() * (i + 1)}))
    return pd.concat(frames, ignore_index=True)


def test_long_frame_global_model_and_unseen_series():
    long_df = _long()
    m = quiet(TSRNNRegressor(lookback=12, horizon=4, **FAST).fit, long_df)
    fc = m.predict()
    assert list(fc.columns) == ["unique_id", "ds", "y_pred"]
    assert len(fc) == 3 * 4 and set(fc["unique_id"]) == {"s0", "s1", "s2"}
    new = long_df[long_df.unique_id == "s1"].assign(unique_id="new", y=lambda d: d.y + 5)
    fc_new = m.predict(new)
    assert list(fc_new["unique_id"].unique()) == ["new"]
    # scaled per series: the new series' level is reflected in its forecast
    assert fc_new["y_pred"].mean() > fc[fc.unique_id == "s1"]["y_pred"].mean()


def test_array_mode_shapes_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 10, 2))
    y = X[:, -1, 0] * 2
    m = quiet(TSRNNRegressor(**FAST).fit, X, y)
    assert m.predict(X).shape == (64,)
    Y = np.stack([y, -y], axis=1)
    m2 = quiet(TSRNNRegressor(**FAST).fit, X, Y)
    assert m2.predict(X).shape == (64, 2)


def test_recursive_strategy():
    y = _sine()
    m = quiet(TSRNNRegressor(lookback=12, horizon=6, strategy="recursive", **FAST).fit, y)
    fc = m.predict()
    assert fc.shape == (6, 1) and np.isfinite(fc.to_numpy()).all()


def test_tbptt_trains_and_differs_from_full_bptt():
    y = _sine(200)
    a = quiet(TSRNNRegressor(lookback=48, horizon=2, tbptt_steps=8, **FAST).fit, y)
    b = quiet(TSRNNRegressor(lookback=48, horizon=2, **FAST).fit, y)
    assert np.isfinite(a.loss_curve_).all()
    assert not np.allclose(a.loss_curve_, b.loss_curve_)
    # a chunk as long as the window is the full BPTT
    c = quiet(TSRNNRegressor(lookback=48, horizon=2, tbptt_steps=48, **FAST).fit, y)
    np.testing.assert_array_equal(b.loss_curve_, c.loss_curve_)


@pytest.mark.parametrize(
    "bad,match",
    [
        (lambda s: s.where(s.index != s.index[30]), r"non-finite value \(nan\) at 2020-01-31"),
        (lambda s: s.iloc[::-1], "unsorted at position 1"),
        (lambda s: pd.concat([s.iloc[:10], s.iloc[9:]]), "duplicated at position 10"),
        (lambda s: s.drop(s.index[20]), "irregular"),
        (lambda s: s.iloc[:10], "10 rows, fewer than lookback \\+ horizon"),
    ],
)
def test_bad_series_get_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        TSRNNRegressor(lookback=12, horizon=3, **FAST).fit(bad(_sine()))


def test_missing_skip_drops_windows_and_forecasts_finite():
    s = _sine()
    s.iloc[40] = np.nan
    m = quiet(TSRNNRegressor(lookback=12, horizon=3, missing="skip", **FAST).fit, s)
    assert np.isfinite(m.predict().to_numpy()).all()


def test_missing_skip_series_without_a_value_is_named():
    """With missing="skip", a series whose target is all missing has nothing to fit
    or forecast from: the error names it and its column."""
    ids = np.repeat(["a", "b"], 60)
    ds = np.tile(pd.date_range("2000-01-01", periods=60, freq="D"), 2)
    y = np.r_[_sine().to_numpy()[:60], _sine(seed=3).to_numpy()[:60]]
    df = pd.DataFrame({"unique_id": ids, "ds": ds, "y": y})
    gone = df.assign(y=np.where(df.unique_id == "b", np.nan, df.y))
    with pytest.raises(ValueError, match="Column 'y' of series 'b' has no finite value"):
        TSRNNRegressor(lookback=12, horizon=3, missing="skip", **FAST).fit(gone)
    m = quiet(TSRNNRegressor(lookback=12, horizon=3, missing="skip", **FAST).fit, df)
    # a forecast's history must be complete: the hint does not send the user to
    # missing="skip", which the model already has
    with pytest.raises(ValueError, match="non-finite value.*must be complete") as err:
        m.predict(gone)
    assert "pass missing='skip'" not in str(err.value)


def test_non_numeric_column_and_bad_params():
    df = pd.DataFrame({"y": _sine().to_numpy(), "c": "x"}, index=_sine().index)
    with pytest.raises(TypeError, match="Column 'c'"):
        TSRNNRegressor(**FAST).fit(df, target="y")
    with pytest.raises(ValueError, match="'hidden_size' parameter of TSRNNRegressor"):
        TSRNNRegressor(hidden_size=0).fit(_sine())
    with pytest.raises(NotFittedError):
        TSRNNRegressor().predict()


def test_predict_with_other_columns_is_refused():
    df = pd.DataFrame({"a": _sine().to_numpy(), "b": _sine(seed=3).to_numpy()}, index=_sine().index)
    m = quiet(TSRNNRegressor(lookback=12, horizon=2, **FAST).fit, df, target="a")
    with pytest.raises(ValueError, match="b"):
        m.predict(df[["a"]])


def test_pickle_joblib_clone_round_trips(tmp_path):
    y = _sine()
    m = quiet(TSRNNRegressor(lookback=12, horizon=3, **FAST).fit, y)
    fc = m.predict()
    m2 = pickle.loads(pickle.dumps(m))
    pd.testing.assert_frame_equal(m2.predict(), fc)
    joblib.dump(m, tmp_path / "m.joblib")
    pd.testing.assert_frame_equal(joblib.load(tmp_path / "m.joblib").predict(), fc)
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "net_")


def test_convergence_warning_curves_and_partial_fit():
    y = _sine()
    m = TSRNNRegressor(lookback=12, horizon=2, max_epochs=3, patience=50, hidden_size=8,
                       random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_epochs=3") as caught:
        m.fit(y)
    # reported at the caller's line (this file), not inside tsrnn, for every input kind
    assert [w.filename for w in caught] == [__file__]
    X, Y = np.zeros((40, 6, 1), np.float32), np.zeros(40, np.float32)
    with pytest.warns(ConvergenceWarning) as caught:
        clone(m).set_params(lookback=24, horizon=1).fit(X, Y)  # arrays carry their own
    assert [w.filename for w in caught] == [__file__]
    assert m.n_iter_ == 3 == len(m.loss_curve_) == len(m.validation_loss_curve_)
    assert 1 <= m.best_epoch_ <= 3
    m.partial_fit(y)
    assert m.n_iter_ == 4


def test_warm_start_continues_from_previous_weights():
    y = _sine()
    m = quiet(TSRNNRegressor(lookback=12, horizon=2, warm_start=True, **FAST).fit, y)
    w = m.net_.params["weight_hh_l0"].copy()
    quiet(m.fit, y)
    assert m.n_iter_ == 10  # the curves continue
    assert not np.array_equal(w, m.net_.params["weight_hh_l0"])
    cold = quiet(TSRNNRegressor(lookback=12, horizon=2, **FAST).fit, y)
    np.testing.assert_array_equal(w, cold.net_.params["weight_hh_l0"])


@pytest.mark.parametrize("change", [{"head": "linear"}, {"hidden_size": 5}, {"cell": "gru"}])
def test_warm_start_refuses_a_network_of_another_shape(change):
    y = _sine()
    m = quiet(TSRNNRegressor(lookback=12, horizon=2, warm_start=True, **FAST).fit, y)
    w = {k: v.copy() for k, v in m.net_.params.items()}
    m.set_params(**change)
    (name, value), = change.items()
    with pytest.raises(ValueError, match=rf"{name}={value!r} \(fitted: "):
        m.fit(y)
    with pytest.raises(ValueError, match="shape changed"):
        m.partial_fit(y)
    assert all(np.array_equal(w[k], m.net_.params[k]) for k in w)  # nothing lost
    m.set_params(warm_start=False)
    assert quiet(m.fit, y).net_.head == m.head  # a fresh fit builds the new network


def test_warm_start_trains_the_fitted_network_with_the_new_dropout():
    y = _sine()
    m = quiet(TSRNNRegressor(lookback=12, horizon=2, num_layers=2, warm_start=True,
                             **FAST).fit, y)
    assert m.net_.dropout == 0.0
    quiet(m.set_params(dropout=0.3).fit, y)
    assert m.net_.dropout == 0.3 and m.n_iter_ == 2 * FAST["max_epochs"]


def test_tbptt_with_bidirectional_is_refused_not_ignored():
    with pytest.raises(ValueError, match="tbptt_steps cannot be combined"):
        TSRNNRegressor(bidirectional=True, tbptt_steps=4, **FAST).fit(_sine())


def test_grid_search_with_time_series_split_in_parallel():
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 8, 1))
    y = X[:, -1, 0] + 0.5 * X[:, -2, 0]
    search = GridSearchCV(TSRNNRegressor(max_epochs=3, random_state=0),
                          {"cell": ["lstm", "gru"], "hidden_size": [4, 8]},
                          cv=TimeSeriesSplit(3), n_jobs=2)
    quiet(search.fit, X, y)
    serial = GridSearchCV(TSRNNRegressor(max_epochs=3, random_state=0),
                          {"cell": ["lstm", "gru"], "hidden_size": [4, 8]},
                          cv=TimeSeriesSplit(3), n_jobs=1)
    quiet(serial.fit, X, y)
    assert search.best_params_ == serial.best_params_
    np.testing.assert_array_equal(search.predict(X), serial.predict(X))


@pytest.mark.parametrize("idx, freq", [
    (pd.date_range("2020-01-01", periods=5, freq="h"), "h"),
    (pd.date_range("2020-01-31", periods=5, freq="ME"), "ME"),
    (pd.date_range("2020-01-01", periods=5, freq="MS"), "MS"),
    (pd.date_range("2020-03-29 00:00", periods=5, freq="h", tz="Europe/Paris"), "h"),
])  # (periods and integers are not vectorised: future_indexes defers to future_index)
def test_vectorised_future_indexes_equal_one_date_range_per_series(idx, freq):
    from pandas.tseries.frequencies import to_offset

    from tsrnn.data import future_index, future_indexes

    f = to_offset(freq) if isinstance(freq, str) else freq
    for series in ([idx[k:] for k in range(3)] * 4,  # 12 series ending at the same time
                   [idx[: len(idx) - k] for k in range(3)] * 4,  # ... and at different
                   [idx[:4], idx]):  # too few to vectorise
        want = [future_index(i, f, 4) for i in series]
        got = future_indexes(series, f, 4)
        assert len(got) == len(series)
        for g, one in zip(got, want, strict=True):
            assert g.equals(one) and len(g) == 4
        # all series one under the other, as the long output's ds column
        assert got.stacked.equals(want[0].append(want[1:]))
        assert got[-1].equals(want[-1]) and got[-len(series)].equals(want[0])
        for bad in (len(series), -len(series) - 1):
            with pytest.raises(IndexError):
                got[bad]


def test_window_scaling_forecasts_in_window_units_and_survives_save(tmp_path):
    """A series whose level and amplitude grow 100-fold: with window scaling (the
    default) the network sees every window on one scale and its forecast follows the
    recent swing, in the series' units; without it the network forecasts swings of
    the history's average size. The setting is saved with the model."""
    t = np.arange(300)
    v = np.exp(t / 65) * (10 + np.sin(2 * np.pi * t / 12))
    y = pd.Series(v, index=pd.date_range("2000-01-01", periods=300, freq="MS"), name="g")
    kw = dict(lookback=24, horizon=6, hidden_size=8, max_epochs=30, random_state=0)
    m = quiet(TSRNNRegressor(**kw).fit, y[:-6])
    assert m.window_scaling is True and m.route_.window_scaling
    fc = m.predict()["g"].to_numpy()
    err = np.abs(fc / y[-6:].to_numpy() - 1).mean()
    m2 = TSRNNRegressor.load(m.save(tmp_path / "w.tsrnn"))
    np.testing.assert_array_equal(m2.predict()["g"].to_numpy(), fc)
    off = quiet(TSRNNRegressor(window_scaling=False, **kw).fit, y[:-6])
    assert not off.route_.window_scaling
    err_off = np.abs(off.predict()["g"].to_numpy() / y[-6:].to_numpy() - 1).mean()
    # measured: 0.2% against 8.7% (three seeds: 0.15-0.3% against 8.3-8.7%)
    assert err < 0.01 and err < 0.25 * err_off
