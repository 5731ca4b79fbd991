"""Forecasting semantics: any subset of the steps, recursive forecasts past the
horizon, partial known futures, and in-sample forecasts, each against the slow,
obvious computation."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand


def fit(X, **kw):
    fit_kw = {k: kw.pop(k) for k in ("target", "future_exog") if k in kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TSRNNRegressor(**{"hidden_size": 8, "max_epochs": 4, "random_state": 0,
                                 **kw}).fit(X, **fit_kw)


def _long(n_series=3, n=90):
    t = np.arange(n)
    return pd.concat([pd.DataFrame({
        "unique_id": f"s{k}", "ds": pd.date_range("2000-01-01", periods=n, freq="D"),
        "y": 10 + np.sin(t / 4 + k) * (k + 1) + 0.01 * t}) for k in range(n_series)],
        ignore_index=True)


def test_steps_are_rows_of_the_full_forecast():
    m = fit(load_air_passengers(), lookback=24, horizon=12)
    full = m.predict(level=[80])
    sub = m.predict(steps=[2, 5], level=[80])
    pd.testing.assert_frame_equal(sub, full.iloc[[1, 4]])
    long = fit(_long(), lookback=12, horizon=4, quantiles=[0.1, 0.5, 0.9])
    full, sub = long.predict(), long.predict(steps=[4, 1])
    expected = full.groupby("unique_id").nth([0, 3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(sub.reset_index(drop=True), expected)


def test_a_direct_model_refuses_steps_past_its_horizon():
    m = fit(load_air_passengers(), lookback=12, horizon=3)
    with pytest.raises(ValueError, match="step 4 is beyond the horizon.*recursive"):
        m.predict(steps=[4])
    with pytest.raises(ValueError, match="distinct positive integers"):
        m.predict(steps=[0, 1])


def test_a_recursive_model_forecasts_twice_its_horizon_as_one_step_by_hand():
    data = _long(2)
    # combine=None: the network's recursion (a combination is applied after it)
    m = fit(data, lookback=12, horizon=3, strategy="recursive", combine=None)
    far = m.predict(steps=range(1, 7))
    history = data.copy()
    by_hand = []
    for _ in range(6):  # one step, appended to the history, six times
        step = m.predict(history, steps=[1])
        by_hand.append(step)
        history = pd.concat([history, step.rename(columns={"y_pred": "y"})],
                            ignore_index=True).sort_values(["unique_id", "ds"])
    by_hand = pd.concat(by_hand).sort_values(["unique_id", "ds"]).reset_index(drop=True)
    far = far.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(far[["unique_id", "ds"]], by_hand[["unique_id", "ds"]])
    np.testing.assert_allclose(far["y_pred"], by_hand["y_pred"], rtol=1e-5)
    pd.testing.assert_frame_equal(m.predict(), far.groupby("unique_id").head(3)
                                  .reset_index(drop=True))
    with pytest.raises(ValueError, match="intervals .* cover steps 1..3"):
        m.predict(steps=[5], level=[80])


def test_future_rows_only_for_the_steps_the_decoder_reads():
    df = load_elecdemand().iloc[-400:]
    train, fut = df.iloc[:-6], df.iloc[-6:][["temperature_c", "workday"]]
    m = fit(train, cell="gru", lookback=48, horizon=6, target="demand_gw",
            future_exog=["temperature_c", "workday"])
    full = m.predict(future=fut)
    pd.testing.assert_frame_equal(m.predict(future=fut.iloc[[1, 4]], steps=[2, 5]),
                                  full.iloc[[1, 4]])
    with pytest.raises(ValueError, match=r"lacks \['2014-12-31 22:00:00'\]"):
        m.predict(future=fut.iloc[[1]], steps=[2, 5])
    linear = fit(train, cell="gru", lookback=48, horizon=6, head="linear",
                 target="demand_gw", future_exog=["temperature_c", "workday"])
    with pytest.raises(ValueError, match="lacks"):  # the linear head reads all steps
        linear.predict(future=fut.iloc[[1, 4]], steps=[2, 5])


def test_in_sample_forecasts_equal_predict_on_the_truncated_history():
    data = _long(3)
    # the network alone: in-sample forecasts do not refit a smoothing partner at
    # every origin (test_smoothing.py checks what they do with one)
    m = fit(data, lookback=12, horizon=4, combine=None)
    ins = m.predict_insample(data, step_size=7, level=[80])
    cutoffs = sorted(ins["cutoff"].unique())
    assert ins.groupby("cutoff").size().eq(3 * 4).all()  # every series, every step
    assert cutoffs[-1] == data["ds"].max() - pd.Timedelta(days=4)  # the last window
    assert all((b - a).days == 7 for a, b in zip(cutoffs, cutoffs[1:]))
    for c in cutoffs[::3]:
        slow = m.predict(data[data["ds"] <= c], level=[80])
        got = ins[ins["cutoff"] == c].sort_values(["unique_id", "ds"])
        np.testing.assert_array_equal(got["forecast"], slow["y_pred"])
        np.testing.assert_array_equal(got["forecast_hi_80"], slow["y_pred_hi_80"])
        actual = data.set_index(["unique_id", "ds"]).loc[
            list(zip(got["unique_id"], got["ds"])), "y"].to_numpy()
        np.testing.assert_array_equal(got["actual"], actual)
    series = fit(load_air_passengers(), lookback=24, horizon=12)
    ins = series.predict_insample(load_air_passengers())
    assert ins["cutoff"].nunique() == 144 - 24 - 12 + 1 and len(ins) == 109 * 12


def test_period_ds_in_a_long_frame():
    data = _long(2, n=60)
    data["ds"] = pd.period_range("2000-01", periods=60, freq="M").tolist() * 2
    m = fit(data, lookback=12, horizon=3)
    fc = m.predict()
    assert isinstance(fc["ds"].dtype, pd.PeriodDtype)
    assert list(fc["ds"].unique().astype(str)) == ["2005-01", "2005-02", "2005-03"]


def test_grid_search_scores_are_the_rolling_forecasts_mase_by_hand():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

    y = load_air_passengers()
    data = pd.DataFrame({"unique_id": "air", "ds": y.index, "y": y.to_numpy()})
    cv = TimeSeriesSplit(n_splits=2, test_size=20)
    # the network alone: score() runs a smoothing partner along the fold without
    # refitting it at each origin (test_smoothing.py checks that)
    est = TSRNNRegressor(lookback=12, horizon=6, hidden_size=8, max_epochs=5,
                         random_state=0, combine=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(est, {"cell": ["gru"]}, cv=cv).fit(data)
        for k, (train, test) in enumerate(cv.split(data)):
            m = clone(est).set_params(cell="gru").fit(data.iloc[train])
            hist, fut = data.iloc[train], data.iloc[test]
            errors = []
            for j in range(len(fut) - 6 + 1):  # every origin with 6 steps in the fold
                fc = m.predict(pd.concat([hist, fut.iloc[:j]]))
                errors.append(np.abs(fut["y"].to_numpy()[j : j + 6] - fc["y_pred"]))
            train_y = hist["y"].to_numpy()
            scale = np.mean(np.abs(train_y[12:] - train_y[:-12]))  # seasonal naive
            by_hand = -np.mean(np.concatenate(errors)) / scale
            np.testing.assert_allclose(search.cv_results_[f"split{k}_test_score"][0],
                                       by_hand, rtol=1e-12)


def test_grid_search_on_a_series_prefers_a_window_that_sees_the_season():
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(
            TSRNNRegressor(horizon=12, hidden_size=16, max_epochs=30, random_state=0),
            {"lookback": [3, 24]}, cv=TimeSeriesSplit(n_splits=2, test_size=24),
        ).fit(load_air_passengers())
    assert search.best_params_ == {"lookback": 24}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_score_needs_the_continuation_of_the_fitted_history():
    y = load_air_passengers()
    m = fit(y[:-24], lookback=12, horizon=6)
    assert m.score(y[-24:]) < 0
    with pytest.raises(ValueError, match="must continue the fitted history"):
        m.score(y[-20:])


def test_no_parameter_is_silently_ignored_on_arrays():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6, 1)), rng.normal(size=40)
    for kw in [dict(strategy="recursive"), dict(window_scaling=False),
               dict(baseline="last"), dict(lookback=6), dict(calendar=None)]:
        with pytest.raises(ValueError, match=f"{next(iter(kw))}=.*array input"):
            TSRNNRegressor(**kw).fit(X, y)
    # scaler takes effect on arrays
    scales = {kind:
              TSRNNRegressor(scaler=kind, max_epochs=1).fit(X, y).route_.x_scale[0]
              for kind in ("standard", "minmax", None)}
    assert scales[None] == 1.0
    np.testing.assert_allclose(scales["standard"], X.std())
    np.testing.assert_allclose(scales["minmax"], X.max() - X.min())


def test_nixtla_names_and_a_backtest_frame_utilsforecast_evaluates():
    import tsrnn

    data = _long(2)
    m = fit(data, lookback=12, horizon=3, alias="TSRNN")
    fc = m.predict(level=[80])
    assert list(fc.columns) == ["unique_id", "ds", "TSRNN", "TSRNN-lo-80", "TSRNN-hi-80"]
    plain = fit(data, lookback=12, horizon=3).predict(level=[80])  # names kept
    assert list(plain.columns) == ["unique_id", "ds", "y_pred", "y_pred_lo_80",
                                   "y_pred_hi_80"]
    np.testing.assert_array_equal(fc.iloc[:, 2:].to_numpy(), plain.iloc[:, 2:].to_numpy())
    res = tsrnn.backtest(TSRNNRegressor(lookback=12, horizon=3, hidden_size=8,
                                        max_epochs=3, random_state=0),
                         data, n_windows=2, refit=False, level=[80])
    cv = res.to_nixtla()
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "TSRNN",
                                "TSRNN-lo-80", "TSRNN-hi-80"]
    evaluation = pytest.importorskip("utilsforecast.evaluation")
    losses = pytest.importorskip("utilsforecast.losses")
    got = evaluation.evaluate(cv.drop(columns="cutoff"), metrics=[losses.mae])
    by_hand = (res.forecasts.assign(err=lambda d: (d.actual - d.forecast).abs())
               .groupby("unique_id")["err"].mean())
    np.testing.assert_allclose(got.set_index("unique_id")["TSRNN"].loc[by_hand.index],
                               by_hand)


def _short_panel():
    rng = np.random.default_rng(0)
    return pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": np.arange(n),
                                    "y": 10 + np.sin(np.arange(n) / 3 + k)
                                    + 0.1 * rng.normal(size=n)})
                      for k, n in enumerate([60, 14, 9, 3, 1])], ignore_index=True)


def test_a_long_frame_with_short_series_fits_and_forecasts_every_series():
    data = _short_panel()
    m = fit(data, lookback=12, horizon=4)
    fc = m.predict()
    assert fc.groupby("unique_id").size().to_dict() == {f"s{k}": 4 for k in range(5)}
    assert np.isfinite(fc["y_pred"]).all()
    # a short series forecast alone, as new history, is forecast the same way
    alone = m.predict(data[data.unique_id == "s2"])
    np.testing.assert_array_equal(alone["y_pred"],
                                  fc.loc[fc.unique_id == "s2", "y_pred"])


def test_windows_of_short_series_never_forecast_padding():
    from tsrnn.routes import PanelRoute

    est = TSRNNRegressor(lookback=12, horizon=4)
    route = PanelRoute(lookback=12, horizon=4, strategy="direct", scaler="standard",
                       quantiles=[])
    plan = route.prepare(est, _short_panel(), None, None, None)
    # 60 rows: 45 windows; 14 and 9 rows: one padded window each; 3 and 1 rows: none
    assert list(plan.windows_per_series) == [45, 1, 1, 0, 0]
    x, y, _ = plan.get_batch(np.array([45, 46]))
    assert np.isfinite(y).all() and (np.abs(y) > 0).any()


def test_a_frame_of_series_all_too_short_to_train_is_refused():
    data = _short_panel()
    with pytest.raises(ValueError, match="fewer than 5 rows"):
        fit(data[data.unique_id.isin(["s3", "s4"])], lookback=12, horizon=4)
