"""Quantile outputs, conformal intervals and rolling-origin backtests."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import TimeSeriesSplit, cross_validate

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand
from tsrnn.losses import loss_and_grad


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _noisy(n=400, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = 20 + 3 * np.sin(2 * np.pi * t / 24) + scale * rng.standard_normal(n)
    return pd.Series(v, index=pd.date_range("2021-01-01", periods=n, freq="h"), name="load")


def test_pinball_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    q = [0.1, 0.5, 0.9]
    pred = rng.normal(size=(4, 6)).astype(np.float64)  # 2 entries x 3 quantiles
    y = rng.normal(size=(4, 2))
    loss, g = loss_and_grad("mse", pred, y, q)
    # the loss by its definition
    r = y[:, :, None] - pred.reshape(4, 2, 3)
    qq = np.array(q)
    assert loss == pytest.approx(np.mean(np.where(r > 0, qq * r, (qq - 1) * r)))
    eps = 1e-6
    for i in np.ndindex(pred.shape):
        p = pred.copy()
        p[i] += eps
        up = loss_and_grad("mse", p, y, q)[0]
        p[i] -= 2 * eps
        down = loss_and_grad("mse", p, y, q)[0]
        assert g[i] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_quantile_forecasts_are_ordered_and_cover_noise():
    y = _noisy(600)
    train, test = y[:-24], y[-24:]
    m = TSRNNRegressor(lookback=48, horizon=24, quantiles=[0.1, 0.5, 0.9], hidden_size=16,
                       max_epochs=60, random_state=0).fit(train)
    fc = m.predict()
    assert list(fc.columns) == ["load", "load_q0.1", "load_q0.5", "load_q0.9"]
    assert (fc["load_q0.1"] <= fc["load_q0.5"]).all() and (fc["load_q0.5"] <= fc["load_q0.9"]).all()
    np.testing.assert_array_equal(fc["load"], fc["load_q0.5"])
    width = (fc["load_q0.9"] - fc["load_q0.1"]).mean()
    # noise sd 1: the 10-90% band is about 2.56 wide; a model that ignored the
    # quantiles (all equal) would give 0
    assert 1.8 < width < 3.5
    inside = ((test >= fc["load_q0.1"]) & (test <= fc["load_q0.9"])).mean()
    assert inside >= 0.5


def test_quantiles_need_direct_strategy_and_valid_levels():
    y = _noisy(200)
    with pytest.raises(ValueError, match="strategy='direct'"):
        TSRNNRegressor(quantiles=[0.5], strategy="recursive").fit(y)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        TSRNNRegressor(quantiles=[0.5, 1.5]).fit(y)
    with pytest.raises(ValueError, match="duplicates"):
        TSRNNRegressor(quantiles=[0.5, 0.5]).fit(y)


def test_quantiles_on_arrays_add_a_last_axis():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 8, 1)), rng.normal(size=200)
    m = TSRNNRegressor(quantiles=[0.2, 0.8], max_epochs=3, hidden_size=8,
                       random_state=0).fit(X, y)
    p = m.predict(X)
    assert p.shape == (200, 2) and (p[:, 0] <= p[:, 1]).all()


def test_conformal_intervals_nest_and_widen_with_level():
    y = _noisy(600)
    m = TSRNNRegressor(lookback=48, horizon=12, hidden_size=16, max_epochs=30,
                       random_state=0).fit(y)
    fc = m.predict(level=[50, 90])
    assert (fc["load_lo_90"] <= fc["load_lo_50"]).all()
    assert (fc["load_lo_50"] <= fc["load"]).all() and (fc["load"] <= fc["load_hi_50"]).all()
    assert (fc["load_hi_50"] <= fc["load_hi_90"]).all()
    assert ((fc["load_hi_90"] - fc["load_lo_90"]) > 0).all()
    with pytest.raises(ValueError, match="between 0 and 100"):
        m.predict(level=[120])


@pytest.mark.parametrize("window_scaling", [True, False])
def test_conformal_intervals_follow_the_window_swing_with_window_scaling(window_scaling,
                                                                         tmp_path):
    """With window scaling, a history whose last window swings three times wider
    (about the window's mean) gets a forecast whose change and interval are three
    times wider: the scores are in units of each window's scale. Without it the
    interval keeps one width per series (in units of the series' scale, which the
    wider last window moves by about a quarter)."""
    y = _noisy(600)
    m = TSRNNRegressor(lookback=48, horizon=12, hidden_size=16, max_epochs=20,
                       window_scaling=window_scaling, random_state=0,
                       combine=None).fit(y)  # the network's scaling is tested
    c = y.iloc[-48:].mean()
    wide = y.copy()
    wide.iloc[-48:] = c + 3 * (y.iloc[-48:] - c)
    fc, fc3 = m.predict(y, level=[80]), m.predict(wide, level=[80])
    width = (fc["load_hi_80"] - fc["load_lo_80"]).to_numpy()
    width3 = (fc3["load_hi_80"] - fc3["load_lo_80"]).to_numpy()
    if window_scaling:
        np.testing.assert_allclose(fc3["load"] - c, 3 * (fc["load"] - c), rtol=1e-4,
                                   atol=1e-3)
        np.testing.assert_allclose(width3, 3 * width, rtol=1e-4)
    else:
        ratio = width3 / width
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
        assert 1.0 < ratio[0] < 1.5
    # the unit of the scores is saved with them
    loaded = TSRNNRegressor.load(m.save(tmp_path / "m.tsrnn"))
    pd.testing.assert_frame_equal(loaded.predict(wide, level=[80]), fc3)


def test_conformal_needs_calibration_without_early_stopping_and_calibrate_provides_it():
    y = _noisy(400)
    m = TSRNNRegressor(lookback=24, horizon=6, hidden_size=8, max_epochs=3,
                       early_stopping=False, random_state=0).fit(y[:300])
    with pytest.raises(ValueError, match="calibrate"):
        m.predict(level=[80])
    m.calibrate(y[250:], n_windows=50)
    assert m.conformal_scores_.shape == (50, 6, 1)
    fc = m.predict(level=[80])
    assert (fc["load_hi_80"] > fc["load_lo_80"]).all()


def test_conformal_coverage_is_close_to_nominal_on_a_backtest():
    """Exchangeable noise around a learnable signal: the 80% interval covers about
    80% of held-out points."""
    y = _noisy(1500, seed=3)
    est = TSRNNRegressor(lookback=48, horizon=12, hidden_size=16, max_epochs=40,
                         validation_fraction=0.3, random_state=0)
    res = tsrnn.backtest(est, y, n_windows=20, step=12, refit=False, level=[80])
    cov = res.overall["coverage_80"]
    assert 0.7 <= cov <= 0.92


def test_backtest_windows_cutoffs_and_metrics_against_a_direct_computation():
    y = load_air_passengers()
    est = TSRNNRegressor(lookback=24, horizon=6, hidden_size=8, max_epochs=5,
                         random_state=0)
    res = tsrnn.backtest(est, y, n_windows=3, step=4, refit=True)
    fc = res.forecasts
    assert len(fc) == 3 * 6
    cutoffs = fc.groupby("window")["cutoff"].first()
    # last window ends at the last point; earlier ones step back by 4
    assert list(cutoffs) == [y.index[-15], y.index[-11], y.index[-7]]
    np.testing.assert_array_equal(fc["actual"].to_numpy()[-6:], y.to_numpy()[-6:])
    # window 1 equals a model fitted by hand on the data before its cut-off
    hand = TSRNNRegressor(**est.get_params()).fit(y[:-10]).predict()
    np.testing.assert_allclose(fc[fc.window == 1]["forecast"], hand["passengers"], rtol=1e-6)
    # metrics recomputed from the forecasts
    a, f = fc["actual"].to_numpy(), fc["forecast"].to_numpy()
    assert res.metrics.loc["passengers", "rmse"] == pytest.approx(np.sqrt(np.mean((a - f) ** 2)))
    mases = []
    for w, g in fc.groupby("window"):
        train = y.to_numpy()[: len(y) - (6 + (2 - w) * 4)]
        scale = np.mean(np.abs(train[12:] - train[:-12]))
        mases.append(np.mean(np.abs(g["actual"] - g["forecast"])) / scale)
    assert res.metrics.loc["passengers", "mase"] == pytest.approx(np.mean(mases))


def test_backtest_without_refit_is_one_batched_forward(monkeypatch):
    """No Python loop over origins: one forward call for all windows and series."""
    y = load_air_passengers()
    long = pd.concat([pd.DataFrame({"unique_id": k, "ds": y.index,
                                    "y": y.to_numpy() * (1 + k)}) for k in range(3)])
    est = TSRNNRegressor(lookback=12, horizon=4, hidden_size=8, max_epochs=2,
                         random_state=0)
    from tsrnn.network import RecurrentNet

    calls = []
    orig = RecurrentNet.forward

    def counting(self, x, fut, training=False, **kw):
        if not training:
            calls.append(x.shape[0])
        return orig(self, x, fut, training=training, **kw)

    res = tsrnn.backtest(est, long, n_windows=5, refit=False)
    monkeypatch.setattr(RecurrentNet, "forward", counting)
    res2 = tsrnn.backtest(est, long, n_windows=5, refit=False)
    pd.testing.assert_frame_equal(res.forecasts, res2.forecasts)
    assert 15 in calls  # 3 series x 5 origins in one call
    assert calls.count(15) == 1
    assert set(res.metrics.index.get_level_values("unique_id")) == {0, 1, 2}
    assert len(res.forecasts) == 3 * 5 * 4


def test_backtest_refit_every_k_windows_fits_that_many_models(monkeypatch):
    y = load_air_passengers()
    est = TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=2,
                         random_state=0)
    fits = []
    orig = TSRNNRegressor.fit

    def counting(self, X, *a, **k):
        fits.append(len(X))
        return orig(self, X, *a, **k)

    monkeypatch.setattr(TSRNNRegressor, "fit", counting)
    tsrnn.backtest(est, y, n_windows=5, refit=2)
    assert fits == [144 - 15, 144 - 9, 144 - 3]


def test_backtest_with_future_exog_and_clear_errors():
    df = load_elecdemand().iloc[-500:]
    est = TSRNNRegressor(lookback=24, horizon=6, hidden_size=8, max_epochs=2,
                         random_state=0)
    res = tsrnn.backtest(est, df, n_windows=2, refit=False, target="demand_gw",
                         future_exog=["workday", "temperature_c"])
    assert res.metrics.index.tolist() == ["demand_gw"]
    with pytest.raises(ValueError, match="fewer than lookback"):
        tsrnn.backtest(est, df.iloc[:40], n_windows=2, target="demand_gw")
    with pytest.raises(ValueError, match="refit"):
        tsrnn.backtest(est, df, n_windows=2, refit="sometimes", target="demand_gw")


def test_cross_validate_with_time_series_split_on_windows():
    y = load_air_passengers()
    X, t = tsrnn.make_windows(np.log(y.to_numpy()), lookback=12)
    assert X.shape == (132, 12, 1) and t.shape == (132,)
    np.testing.assert_array_equal(X[1, :, 0], np.log(y.to_numpy()[1:13]))
    assert t[0] == np.log(y.to_numpy()[12])
    cv = cross_validate(TSRNNRegressor(hidden_size=8, max_epochs=20, random_state=0), X, t,
                        cv=TimeSeriesSplit(3), scoring="neg_mean_absolute_error")
    assert np.all(np.isfinite(cv["test_score"])) and len(cv["test_score"]) == 3


@pytest.mark.parametrize("sizes,fraction,targets", [
    ([109], 0.1, 12), ([50, 200, 7], 0.2, 5), ([30], 0.1, 1), ([14], 0.1, 24)])
def test_validation_windows_share_no_target_with_training_windows(sizes, fraction, targets):
    """Window k of a group forecasts rows k .. k + targets - 1 after its lookback:
    no training window may forecast a row that a validation window forecasts, unless
    the group is too short to keep any training window otherwise (then the gap
    shrinks and one training window stays)."""
    from tsrnn.data import held_out_tail as _held_out_tail
    from tsrnn.data import split_windows as _split_windows

    train, val = _split_windows(sizes, fraction, targets - 1)
    np.testing.assert_array_equal(val, np.flatnonzero(_held_out_tail(sizes, fraction)))
    assert np.intersect1d(train, val).size == 0
    first = 0
    for n in sizes:
        t = train[(train >= first) & (train < first + n)] - first
        v = val[(val >= first) & (val < first + n)] - first
        first += n
        assert t.size >= 1
        if v.size == 0:
            assert t.size == n  # nothing held out: every window trains
            continue
        assert v.size == int(np.ceil(fraction * n)) and v.max() == n - 1
        if n - v.size - (targets - 1) >= 1:
            assert t.max() + targets - 1 < v.min()  # last trained row < first validated
            assert t.size == n - v.size - (targets - 1)  # and no more left out
        else:
            np.testing.assert_array_equal(t, [0])


def test_fit_trains_on_no_target_of_its_validation_windows(monkeypatch):
    import tsrnn.training

    seen = {}
    real_fit = tsrnn.training.Trainer.fit

    def spy(self, train_idx, val_idx, **kw):
        seen["train"], seen["val"] = np.asarray(train_idx), np.asarray(val_idx)
        return real_fit(self, train_idx, val_idx, **kw)

    monkeypatch.setattr(tsrnn.training.Trainer, "fit", spy)
    TSRNNRegressor(lookback=24, horizon=12, max_epochs=2, random_state=0).fit(
        load_air_passengers())
    train, val = seen["train"], seen["val"]
    assert val.size == 11 and val.max() == 144 - 24 - 12  # the last 11 of 109 windows
    assert train.max() + 12 - 1 < val.min()
