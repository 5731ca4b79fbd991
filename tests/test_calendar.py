"""Calendar features: the position in the day, week and year as known-future inputs."""

import numpy as np
import pandas as pd
import pytest
from conftest import quiet

from tsrnn import TSRNNRegressor, backtest
from tsrnn import data as D


def test_calendar_values_are_sine_and_cosine_of_the_cycle_position():
    # Monday 2024-01-01 00:00 (a leap year), then 18:00 the same day, then July 2.
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 18:00", "2024-07-02 12:00"])
    v = D.calendar_values(idx, ["day", "week", "year"], np.float64)
    day = np.array([0, 0.75, 0.5])
    week = np.array([0, 0.75 / 7, (1 + 0.5) / 7])  # July 2 2024 is a Tuesday
    year = np.array([0, 0.75 / 366, (183 + 0.5) / 366])  # day 184 of 366
    for j, phase in enumerate((day, week, year)):
        np.testing.assert_allclose(v[:, 2 * j], np.sin(2 * np.pi * phase), atol=1e-12)
        np.testing.assert_allclose(v[:, 2 * j + 1], np.cos(2 * np.pi * phase), atol=1e-12)
    # a period index gives the values of its start timestamps
    p = pd.period_range("2024-01", periods=3, freq="M")
    np.testing.assert_allclose(D.calendar_values(p, ["year"]),
                               D.calendar_values(p.to_timestamp(), ["year"]))


def _calendar_reference(index, cycles):
    """The obvious version, from pandas' own calendar fields."""
    ts = index.to_timestamp() if isinstance(index, pd.PeriodIndex) else index
    day = (ts.hour * 3600 + ts.minute * 60 + ts.second).to_numpy() / 86400.0
    phases = {"day": day, "week": (ts.day_of_week.to_numpy() + day) / 7.0,
              "year": (ts.day_of_year.to_numpy() - 1 + day)
              / np.where(ts.is_leap_year, 366.0, 365.0)}
    return np.column_stack([f(2 * np.pi * phases[c]) for c in cycles for f in (np.sin, np.cos)])


@pytest.mark.parametrize("index", [
    pd.date_range("1949-01-01", periods=200, freq="MS"),          # before 1970
    pd.date_range("1999-12-25 03:00", periods=2000, freq="7h"),   # leap years, odd hours
    pd.date_range("2014-03-29", periods=500, freq="37min", tz="Australia/Melbourne"),
    pd.period_range("2000Q1", periods=40, freq="Q"),
    pd.DatetimeIndex(["1900-03-01 23:59:59", "2100-12-31 12:00:01", "1969-12-31 06:00"]),
])
def test_calendar_values_equal_pandas_calendar_fields(index):
    cycles = ["day", "week", "year"]
    np.testing.assert_array_equal(D.calendar_values(index, cycles, np.float64),
                                  _calendar_reference(index, cycles))


@pytest.mark.parametrize("freq, n, lookback, expected", [
    ("D", 3650, 30, ["year"]),       # the year is longer than the window, seen 10 times
    ("D", 1000, 30, []),             # a year seen under 4 times is memorised, not learned
    ("D", 3650, 400, []),            # the window shows the whole year
    ("h", 2000, 72, ["week"]),       # the day fits in 72 hours, the week does not
    ("h", 2000, 12, ["day", "week"]),
    ("h", 600, 48, []),              # 3.5 weeks
    ("MS", 144, 24, []),             # monthly: the window shows the year
    ("MS", 144, 6, ["year"]),
    ("YS", 200, 10, []),             # yearly: no cycle longer than a step
])
def test_auto_takes_cycles_longer_than_the_window_seen_four_times(freq, n, lookback, expected):
    idx = pd.date_range("2000-01-01", periods=n, freq=freq)
    assert D.auto_calendar(idx, idx.freq, lookback, n) == expected


def test_an_integer_index_has_no_calendar():
    assert D.auto_calendar(pd.RangeIndex(500), 1, 10, 500) == []
    y = pd.Series(np.sin(np.arange(200) / 5))
    m = quiet(TSRNNRegressor(lookback=10, horizon=2, hidden_size=4, max_epochs=2,
                             random_state=0).fit, y)
    assert m.calendar_ == []
    with pytest.raises(ValueError, match="calendar= needs a DatetimeIndex"):
        TSRNNRegressor(lookback=10, horizon=2, calendar=["week"]).fit(y)


def test_unknown_cycle_is_refused():
    y = pd.Series(np.arange(100.0), index=pd.date_range("2020", periods=100, freq="D"))
    with pytest.raises(ValueError, match="calendar must be 'auto', None or a list"):
        TSRNNRegressor(lookback=10, horizon=2, calendar=["month"]).fit(y)


def _summers(years=4, seed=0):
    """Daily: 0 most of the year, 1 from day 150 to 240, plus noise. A one-week
    window cannot tell when the step comes; the position in the year can."""
    idx = pd.date_range("2001-01-01", periods=365 * years + 200, freq="D")
    doy = idx.day_of_year.to_numpy()
    rng = np.random.default_rng(seed)
    v = ((doy >= 150) & (doy < 240)).astype(float) + 0.05 * rng.standard_normal(len(idx))
    return pd.Series(v, index=idx, name="y")


def test_the_year_cycle_lets_a_short_window_foresee_a_seasonal_step(tmp_path):
    y = _summers()
    cut = y.index.get_loc(pd.Timestamp("2005-05-27"))  # the step is 3 days later
    train, test = y.iloc[:cut], y.iloc[cut : cut + 10]
    # no early stopping: the held-out last 10% (December to May) holds no step, so
    # it would judge the epochs on noise alone and may stop before the step is learned
    # no window scaling: the step is ~20 times the swing of the calm week before it,
    # a size only the series' own scale can express (the documented limit of
    # window_scaling)
    # combine=None: the network's own forecast, whose calendar input is tested
    kw = dict(lookback=7, horizon=10, hidden_size=16, max_epochs=60, early_stopping=False,
              window_scaling=False, random_state=0, combine=None)
    with_cal = quiet(TSRNNRegressor(**kw).fit, train)
    assert with_cal.calendar_ == ["year"]
    without = quiet(TSRNNRegressor(calendar=None, **kw).fit, train)
    err_with = np.abs(with_cal.predict()["y"].to_numpy() - test.to_numpy()).mean()
    err_without = np.abs(without.predict()["y"].to_numpy() - test.to_numpy()).mean()
    assert err_with < 0.5 * err_without
    # the cycles are part of the model: saved, loaded, and used for new history too
    loaded = TSRNNRegressor.load(with_cal.save(tmp_path / "cal.tsrnn"))
    assert loaded.calendar_ == ["year"]
    pd.testing.assert_frame_equal(loaded.predict(), with_cal.predict())
    pd.testing.assert_frame_equal(loaded.predict(train), with_cal.predict(train))


def test_calendar_with_future_exog_recursive_and_backtest():
    """The calendar columns come after the user's known-future columns in every
    path: direct and recursive forecasts, and a backtest equals refitting by hand."""
    idx = pd.date_range("2020-01-01", periods=24 * 40, freq="h")
    rng = np.random.default_rng(1)
    x = rng.standard_normal(len(idx))
    dow = idx.day_of_week.to_numpy()
    df = pd.DataFrame({"y": (dow >= 5) + 0.5 * x + 0.1 * rng.standard_normal(len(idx)),
                       "x": x}, index=idx)
    for strategy in ("direct", "recursive"):
        m = quiet(TSRNNRegressor(lookback=24, horizon=6, hidden_size=8, max_epochs=3,
                                 strategy=strategy, random_state=0).fit,
                  df.iloc[:-6], target="y", future_exog=["x"])
        assert m.calendar_ == ["week"]
        fc = m.predict(future=df.iloc[-6:][["x"]])
        assert fc.shape == (6, 1) and np.isfinite(fc.to_numpy()).all()
    res = quiet(backtest, m, df, n_windows=1, refit=False, target="y",
                future_exog=["x"])  # refits its 3-epoch model once
    last = res.forecasts["forecast"].to_numpy()
    np.testing.assert_allclose(last, m.predict(future=df.iloc[-6:][["x"]])["y"].to_numpy(),
                               rtol=1e-6)


def test_older_model_files_keep_working_without_calendar():
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "v1_series_lstm.tsrnn"
    m = TSRNNRegressor.load(path)
    assert m.get_params()["calendar"] is None and m.calendar_ == []


def test_many_series_get_their_own_calendar_rows():
    """The stacked (vectorised) calendar of several series equals each series' own,
    and a global model forecasts a series the same alone or among others."""
    idxs = [pd.date_range("2020-01-01", periods=30, freq="h"),
            pd.date_range("2021-06-03 05:00", periods=50, freq="h"),
            pd.date_range("2019-12-31 22:00", periods=7, freq="h")]
    np.testing.assert_array_equal(
        D.stacked_calendar_values(idxs, ["day", "week"]),
        np.concatenate([D.calendar_values(i, ["day", "week"]) for i in idxs]))
    rng = np.random.default_rng(3)
    frames = []
    for uid, start, n in (("a", "2020-01-01", 900), ("b", "2020-02-10 07:00", 800)):
        ds = pd.date_range(start, periods=n, freq="h")
        y = (ds.day_of_week >= 5) + np.sin(2 * np.pi * ds.hour / 24) \
            + 0.1 * rng.standard_normal(n)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    long = pd.concat(frames, ignore_index=True)
    m = quiet(TSRNNRegressor(lookback=12, horizon=4, hidden_size=8, max_epochs=3,
                             random_state=0).fit, long)
    assert m.calendar_ == ["day", "week"]
    both = m.predict()
    alone = m.predict(long[long["unique_id"] == "b"])
    # (equal up to rounding: one batch of two rows against one of one row)
    np.testing.assert_allclose(both[both["unique_id"] == "b"]["y_pred"].to_numpy(),
                               alone["y_pred"].to_numpy(), rtol=1e-6, atol=1e-6)
