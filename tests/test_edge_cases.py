"""The outside audit's edge cases: a forecast is right or refused with an error that
names what is wrong; a result depends on the data, the parameters and the seed
only; nothing is dropped without a word. One test (or more) per item."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand, load_melbourne_temp

QUICK = dict(hidden_size=8, max_epochs=3, random_state=0)


def fit(X, *a, **kw):
    params = {**QUICK, **{k: v for k, v in kw.items() if k not in ("target", "future_exog")}}
    fit_kw = {k: v for k, v in kw.items() if k in ("target", "future_exog")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TSRNNRegressor(**params).fit(X, *a, **fit_kw)


def _long(n_series=3, n=80, ids=None):
    t = np.arange(n)
    ids = ids or [f"s{k}" for k in range(n_series)]
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(
        "2000-01-01", periods=n, freq="D"), "y": 10 + np.sin(t / 3 + k) * (k + 1)})
        for k, uid in enumerate(ids)], ignore_index=True)


# 1. A NaN that reaches the network never becomes a finite forecast.
def test_1_missing_exogenous_value_in_the_last_window_is_refused_by_name():
    df = load_elecdemand().iloc[-400:].copy()
    df.iloc[-2, df.columns.get_loc("temperature_c")] = np.nan
    m = fit(df, lookback=24, horizon=3, missing="skip", target="demand_gw")
    with pytest.raises(ValueError, match=r"temperature_c.*2014-12-31 22:00"):
        m.predict()


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_1_missing_target_in_the_last_window_is_named_not_called_divergence(head):
    y = load_air_passengers().copy()
    y.iloc[-3] = np.nan
    m = fit(y, lookback=12, horizon=3, missing="skip", head=head)
    with pytest.raises(ValueError, match=r"'passengers' at 1960-10-01"):
        m.predict()


def test_1_a_long_frame_forecasts_its_complete_series_and_names_the_others():
    df = _long(3)
    df.loc[(df.unique_id == "s1") & (df.ds == df.ds.max()), "y"] = np.nan
    m = fit(df, lookback=12, horizon=2, missing="skip")
    with pytest.warns(UserWarning, match=r"1 of 3 series.*'s1'.*left out"):
        fc = m.predict()
    assert sorted(fc.unique_id.unique()) == ["s0", "s2"] and np.isfinite(fc.y_pred).all()


def test_1_the_decoder_relu_keeps_nan():
    from tsrnn.kernels.cpu.linalg import add_bias_relu

    a = np.array([[np.nan, -1.0, 2.0]], np.float32)
    out = add_bias_relu(a, np.zeros(3, np.float32))
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == 2


# 2. Rows without a series id are never dropped silently.
def test_2_missing_series_ids_are_refused_with_their_rows():
    df = _long(2)
    df.loc[[5, 7], "unique_id"] = np.nan
    with pytest.raises(ValueError, match=r"'unique_id' is missing at 2 row\(s\).*\[5, 7\]"):
        fit(df, lookback=6, horizon=2)


# 3. History of another shape than fit is refused.
def test_3_a_wide_model_refuses_a_long_frame_and_back():
    wide = fit(load_air_passengers(), lookback=12, horizon=3)
    with pytest.raises(ValueError, match="fitted on a Series; X is a long frame"):
        wide.predict(_long(3))
    long = fit(_long(3), lookback=12, horizon=3)
    with pytest.raises(ValueError, match="fitted on a long frame"):
        long.predict(load_air_passengers())


# 4. CLI: a float time column is not nanoseconds.
def test_4_cli_refuses_a_float_time_column(tmp_path, capsys):
    from tsrnn.cli import main

    csv = tmp_path / "f.csv"
    pd.DataFrame({"t": np.arange(60) + 0.5, "y": np.sin(np.arange(60))}).to_csv(
        csv, index=False)
    assert main(["fit", str(csv), "--target", "y", "--lookback", "6", "--horizon", "2",
                 "-o", str(tmp_path / "m.tsrnn")]) == 1
    assert "not integers" in capsys.readouterr().err


# 5. A diverged fit raises instead of returning absurd forecasts.
@pytest.mark.parametrize("optimizer, seed", [("adam", 0), ("rmsprop", 1)])
def test_5_a_diverged_fit_is_an_error(optimizer, seed):
    with pytest.raises(FloatingPointError, match="diverged.*learning_rate"):
        fit(load_air_passengers(), optimizer=optimizer, learning_rate=1e3,
            random_state=seed, max_epochs=200, hidden_size=32)


# 6. The irregular-index message names the real gap, whatever the index's unit.
def test_6_melbourne_gap_is_named_where_it_is():
    with pytest.raises(ValueError, match=r"1984-02-28 00:00:00 -> 1984-03-01"):
        fit(load_melbourne_temp())
    idx = pd.date_range("2000-01-01", periods=40, freq="D").as_unit("us").delete(20)
    with pytest.raises(ValueError, match="position 20"):
        fit(pd.Series(np.arange(39.0), index=idx), lookback=5)


# 7. Parameters changed after fit are refused at predict, not broadcast.
def test_7_predict_after_set_params_names_the_change():
    m = fit(load_air_passengers(), lookback=12, horizon=12)
    with pytest.raises(ValueError, match=r"horizon=6 \(fitted with 12\)"):
        m.set_params(horizon=6).predict()
    m.set_params(horizon=12)
    assert len(m.predict()) == 12


# 8. Names, extreme indexes and magnitudes.
def test_8_integer_and_boolean_column_names_are_names():
    y = load_air_passengers().to_numpy()
    idx = pd.date_range("2000-01", periods=len(y), freq="MS")
    m = fit(pd.DataFrame({0: y, 1: np.log(y)}, index=idx), target=0, lookback=12,
            horizon=2)
    assert m.target_names_ == [0] and 0 in m.predict().columns
    m = fit(pd.DataFrame({True: y, False: np.log(y)}, index=idx), lookback=12,
            horizon=2)
    assert list(m.predict().columns) == [True, False]


def test_8_an_index_at_the_int64_limit_is_refused_at_fit():
    top = np.iinfo(np.int64).max
    y = pd.Series(np.sin(np.arange(60.0)), index=np.arange(top - 60, top))
    with pytest.raises(ValueError, match="do not fit in int64"):
        fit(y, lookback=6, horizon=2)


def test_8_arrays_of_huge_magnitude_forecast_as_the_pandas_route_does():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6, 1)) * 1e200
    y = X[:, -1, 0] * 0.5
    m = fit(X, y)
    pred = m.predict(X[:5])
    assert np.isfinite(pred).all() and np.all(np.abs(pred) < 1e202)


# 9. The CLI on a model fitted on arrays, and -o into a folder.
def test_9_cli_on_an_array_model_and_into_a_folder(tmp_path, capsys):
    from tsrnn.cli import main

    X, y = np.random.default_rng(0).normal(size=(40, 5, 1)), np.zeros(40)
    fit(X, y).save(tmp_path / "a.tsrnn")
    csv = tmp_path / "d.csv"
    load_air_passengers().to_frame().to_csv(csv)
    assert main(["predict", str(tmp_path / "a.tsrnn"), str(csv)]) == 1
    assert "fitted on arrays" in capsys.readouterr().err
    out = tmp_path / "folder"
    out.mkdir()
    assert main(["fit", str(csv), "--target", "passengers", "--lookback", "12",
                 "--horizon", "2", "--max-epochs", "1", "-o", str(out)]) == 1
    assert "it is a folder" in capsys.readouterr().err and os.listdir(out) == []


# 10. No writable cache folder: import works, and says how to cache.
def test_10_import_without_a_cache_locator():
    code = textwrap.dedent("""
        import warnings
        import numba.core.caching as c
        c.CacheImpl._locator_classes = []  # as where no folder is writable
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import numpy as np
            from tsrnn import functional as F
            p = F.init_params("gru", 1, 4, seed=0)
            F.forward("gru", np.zeros((2, 3, 1), np.float32), p)
        print(any("NUMBA_CACHE_DIR" in str(x.message) for x in w))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "True"


# 11. A forecast does not depend on the other series of its batch.
def test_11_a_series_forecast_alone_equals_the_same_in_a_batch_of_64():
    long = _long(64, n=60)
    m = fit(long, lookback=12, horizon=3, hidden_size=32)
    together = m.predict(long)
    for uid in ["s0", "s17", "s63"]:
        alone = m.predict(long[long.unique_id == uid])
        np.testing.assert_array_equal(
            alone["y_pred"].to_numpy(),
            together.loc[together.unique_id == uid, "y_pred"].to_numpy())
    # Tabular arrays at the default sizes, as scikit-learn's invariance checks use.
    rng = np.random.default_rng(0)
    X = 3 * rng.uniform(size=(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = TSRNNRegressor(random_state=0).fit(X, X[:, 0].astype(int))
    whole = a.predict(X)
    alone = np.concatenate([a.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(alone, whole)
    np.testing.assert_array_equal(a.predict(X[::-1])[::-1], whole)


# 12. Conformal intervals do not depend on BLAS's thread count: every inference pass
# of the estimator (conformal scores at fit, predict, calibrate, backtests) runs under
# one BLAS thread, as training does.
def test_12_inference_runs_under_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    import tsrnn
    from tsrnn import parallel
    from tsrnn.network import RecurrentNet

    with parallel.one_blas_thread():  # loads the BLAS libraries the kernels use
        pass
    seen = []
    forward = RecurrentNet.forward

    def spy(self, x, fut, training=False, **kw):
        if not training:
            seen.append({i["num_threads"] for i in threadpool_info()
                         if i["user_api"] == "blas"})
        return forward(self, x, fut, training=training, **kw)

    monkeypatch.setattr(RecurrentNet, "forward", spy)
    y = load_air_passengers()
    m = fit(y, lookback=12, horizon=3)
    n_fit = len(seen)
    m.predict(level=[80])
    m.calibrate(y)
    tsrnn.backtest(m, y, n_windows=2, refit=False)
    fit(np.random.default_rng(0).normal(size=(40, 5, 1)), np.zeros(40)).predict(
        np.zeros((3, 5, 1)))
    assert n_fit and len(seen) > n_fit + 3
    assert all(s == {1} for s in seen), seen


def test_12_intervals_do_not_depend_on_openblas_threads(tmp_path):
    code = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("ignore")
        from tsrnn import TSRNNRegressor
        from tsrnn.datasets import load_elecdemand
        y = load_elecdemand().iloc[-1500:]["demand_gw"]
        m = TSRNNRegressor(lookback=48, horizon=12, hidden_size=64, max_epochs=2,
                           random_state=0).fit(y)
        m.predict(level=[50, 80, 95]).to_pickle(sys.argv[1])
    """)
    frames = []
    for threads in ("1", "2"):
        out = tmp_path / f"fc{threads}.pkl"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads}
        r = subprocess.run([sys.executable, "-c", code, str(out)], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        frames.append(pd.read_pickle(out))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)


# 13. Two fits cannot share one checkpoint.
def test_13_a_checkpoint_in_use_is_refused(tmp_path):
    from tsrnn.fitting import checkpoint_lock

    ck = tmp_path / "ck.tsrnn"
    with checkpoint_lock(ck):  # as another fit would hold it
        code = textwrap.dedent(f"""
            from tsrnn import TSRNNRegressor
            from tsrnn.datasets import load_air_passengers
            try:
                TSRNNRegressor(max_epochs=1, checkpoint_path={str(ck)!r}).fit(
                    load_air_passengers())
            except RuntimeError as e:
                print("REFUSED", e)
        """)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=600)
    assert "REFUSED" in r.stdout and "in use by another fit" in r.stdout, r.stderr
    fit(load_air_passengers(), checkpoint_path=ck)  # free again


# 14. Nothing silently ignored or mislabelled.
def test_14_dropout_with_one_layer_is_refused():
    with pytest.raises(ValueError, match="dropout=0.2.*num_layers"):
        fit(load_air_passengers(), dropout=0.2)


def test_14_a_checkpoint_loads_with_its_best_weights(tmp_path):
    ck = tmp_path / "ck.tsrnn"
    y = load_air_passengers()
    m = fit(y, lookback=12, horizon=3, max_epochs=12, patience=100, checkpoint_path=ck)
    with pytest.warns(UserWarning, match="checkpoint.*weights of epoch"):
        loaded = TSRNNRegressor.load(ck)
    assert loaded.best_epoch_ == m.best_epoch_
    for k, v in m.net_.params.items():  # the fit's kept (best) weights
        np.testing.assert_array_equal(loaded.net_.params[k], v)


def test_14_plot_loss_names_the_pinball_loss():
    pytest.importorskip("matplotlib")
    from tsrnn.plotting import plot_loss

    m = fit(load_air_passengers(), lookback=12, horizon=3, quantiles=[0.1, 0.9])
    assert plot_loss(m).get_ylabel().startswith("pinball")


# 15. Plots.
def test_15_plots_leave_the_backend_alone_and_handle_long_frames():
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("svg")
        import os, warnings
        os.environ.pop("DISPLAY", None)
        warnings.simplefilter("ignore")
        import numpy as np, pandas as pd
        import tsrnn
        from tsrnn import TSRNNRegressor
        from tsrnn.plotting import plot_forecast, plot_backtest
        t = np.arange(80)
        long = pd.concat([pd.DataFrame({"unique_id": u, "ds": pd.date_range(
            "2000-01-01", periods=80, freq="D"), "y": 10 + np.sin(t / 3 + k) * (k + 1)})
            for k, u in enumerate(["a", "b"])], ignore_index=True)
        m = TSRNNRegressor(hidden_size=4, max_epochs=2, lookback=8, horizon=3).fit(long)
        try:
            plot_forecast(long, m.predict())
        except ValueError as e:
            print("REFUSED", e)
        ax = plot_forecast(long, m.predict(), series="b")
        lines = [ln.get_ydata() for ln in ax.get_lines()]
        print("DRAWN", all(np.issubdtype(np.asarray(v).dtype, np.number) for v in lines))
        print("LABELS", ax.get_xlabel(), ax.get_ylabel())
        res = tsrnn.backtest(m, long, n_windows=2, refit=False)
        ax = plot_backtest(res, series="b")
        print("TITLE", ax.get_title())
        print("MASE_B", f"{res.metrics.loc[('b', 'y'), 'mase']:.3f}")
        print("LEGEND", [t.get_text() for t in ax.get_legend().get_texts()])
        print("BACKEND", matplotlib.get_backend())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert "pass series=" in out["REFUSED"]
    assert out["DRAWN"] == "True"
    assert out["LABELS"].split() == ["ds", "y"]
    assert f"MASE {out['MASE_B']}" in out["TITLE"] and "[b]" in out["TITLE"]
    assert "00:00:00" not in out["LEGEND"] and "cut-off 2000-" in out["LEGEND"]
    assert out["BACKEND"] == "svg"
