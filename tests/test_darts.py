"""darts TimeSeries in and out (skipped without darts)."""

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("darts")

from darts import TimeSeries  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from tsrnn import TSRNNRegressor  # noqa: E402
from tsrnn.darts import from_darts, future_frame, to_darts  # noqa: E402
from tsrnn.datasets import load_elecdemand  # noqa: E402


def test_one_series_with_future_covariates_round_trips():
    df = load_elecdemand().iloc[-400:]
    series = TimeSeries.from_dataframe(df[["demand_gw"]].iloc[:-6])
    weather = TimeSeries.from_dataframe(df[["temperature_c", "workday"]])
    X, kw = from_darts(series, future_covariates=weather)
    assert kw == {"target": ["demand_gw"], "future_exog": ["temperature_c", "workday"]}
    pd.testing.assert_frame_equal(X, df.iloc[:-6], check_freq=False, check_names=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TSRNNRegressor(lookback=24, horizon=6, hidden_size=8, max_epochs=2,
                           random_state=0).fit(X, **kw)
    fc = m.predict(future=future_frame(weather, m))
    out = to_darts(fc)
    assert isinstance(out, TimeSeries) and len(out) == 6
    np.testing.assert_array_equal(out.values().ravel(), fc["demand_gw"].to_numpy())


def test_a_list_of_series_is_one_global_model():
    idx = pd.date_range("2000-01-01", periods=60, freq="D")
    series = [TimeSeries.from_times_and_values(idx, np.sin(np.arange(60) / 4 + k) + 3)
              for k in range(3)]
    X, kw = from_darts(series)
    assert list(X.columns[:2]) == ["unique_id", "ds"] and X["unique_id"].nunique() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TSRNNRegressor(lookback=8, horizon=3, hidden_size=8, max_epochs=2,
                           random_state=0).fit(X, **kw)
    out = to_darts(m.predict())
    assert len(out) == 3 and all(len(ts) == 3 for ts in out)
