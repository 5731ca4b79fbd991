"""tsrnn.sktime.TSRNNForecaster against sktime's own test suite, and tuned with
sktime's ForecastingGridSearchCV on pandas data."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sktime")

from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from tsrnn.sktime import TSRNNForecaster  # noqa: E402


def test_sktime_check_estimator_passes_every_test():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(TSRNNForecaster, raise_exceptions=False)
    failed = {k: v for k, v in results.items() if v != "PASSED"}
    assert len(results) > 800 and not failed, failed


def test_forecasts_insample_and_intervals_match_the_regressor():
    from sktime.datasets import load_airline

    y = load_airline()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = TSRNNForecaster(lookback=24, random_state=0).fit(y, fh=[-1, 0, 1, 3])
        pred = f.predict()
        est = f.estimator_
        out = est.predict(steps=[1, 3])
        ins = est.predict_insample(f._train_frame, partial=True)
    np.testing.assert_array_equal(pred.iloc[2:].to_numpy(), out.iloc[:, 0].to_numpy())
    one_step = ins[ins["step"] == 1].set_index("ds")["forecast"]
    np.testing.assert_array_equal(pred.iloc[:2].to_numpy(), one_step.iloc[-2:].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = TSRNNForecaster(lookback=24, random_state=0).fit(y, fh=[1, 3])
        iv = g.predict_interval(coverage=0.8)
        ref = g.estimator_.predict(level=[80], steps=[1, 3])
    np.testing.assert_array_equal(iv.iloc[:, 0].to_numpy(), ref.iloc[:, 1].to_numpy())
    np.testing.assert_array_equal(iv.iloc[:, 1].to_numpy(), ref.iloc[:, 2].to_numpy())


def test_forecasting_grid_search_tunes_on_pandas_data():
    from sktime.datasets import load_airline
    from sktime.forecasting.model_selection import ForecastingGridSearchCV
    from sktime.split import ExpandingWindowSplitter

    y = load_airline()
    fh = list(range(1, 13))
    cv = ExpandingWindowSplitter(initial_window=96, step_length=12, fh=fh)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gs = ForecastingGridSearchCV(
            TSRNNForecaster(max_epochs=30, hidden_size=16, random_state=0), cv=cv,
            param_grid={"lookback": [3, 24]}, backend=None).fit(y, fh=fh)
    assert gs.best_params_ == {"lookback": 24}  # a window that sees the season


def test_combine_reaches_the_regressor():
    from sktime.datasets import load_airline

    y = load_airline()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = TSRNNForecaster(lookback=24, max_epochs=2, combine=None, random_state=0)
        f.fit(y, fh=[1, 2])
    assert f.estimator_.combine is None and f.estimator_.route_.smoothing is None
