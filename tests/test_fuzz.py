"""Property-based tests: random frames thrown at fit and predict.

The only outcomes allowed: a correct (finite, well-shaped) forecast, or a ValueError
/ TypeError whose message says something. Never a crash inside compiled code, never
a NaN forecast, never a modified input.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tsrnn import TSRNNRegressor

FAST = dict(lookback=3, horizon=2, hidden_size=4, max_epochs=2, random_state=0)

DTYPES = ["float64", "float32", "float16", "int64", "int8", "bool", "object", "category"]
SPECIALS = [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, 0.0, 1e38, 3e38]


@st.composite
def frames(draw):
    # About half the frames are well formed (numeric, regular index, long enough),
    # so fit and predict themselves get exercised, not only the validation.
    clean = draw(st.booleans())
    n = draw(st.integers(6, 40)) if clean else \
        draw(st.one_of(st.just(0), st.just(1), st.integers(2, 40)))
    n_cols = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    cols = {}
    for j in range(n_cols):
        dtype = draw(st.sampled_from(DTYPES[:6] if clean else DTYPES))
        mag = draw(st.sampled_from([1e-300, 1e-6, 1.0, 1e6, 1e30, 1e300]))
        v = rng.standard_normal(n) * mag
        if not clean and draw(st.booleans()) and n:
            k = draw(st.integers(1, max(1, n // 4)))
            v[rng.integers(0, n, k)] = draw(st.sampled_from(SPECIALS))
        if dtype == "object":
            col = pd.Series([f"x{i}" for i in range(n)] if draw(st.booleans())
                            else list(v), dtype=object)
        elif dtype == "category":
            col = pd.Series(pd.Categorical(rng.integers(0, 3, n)))
        elif dtype == "bool":
            col = pd.Series(v > 0)
        else:
            with np.errstate(all="ignore"):
                col = pd.Series(v).astype(dtype) if dtype.startswith("float") else \
                    pd.Series(np.nan_to_num(np.clip(v, -100, 100)).astype(dtype))
        # mostly distinct names (an int among them), now and then a duplicate
        name = "y" if j == 0 else draw(st.sampled_from(
            [f"x{j}", j] if clean else [f"x{j}", f"x{j}", j, "y"]))
        cols[j] = (name, col)
    data = pd.concat([c for _, c in cols.values()], axis=1) if cols else pd.DataFrame()
    data.columns = [nm for nm, _ in cols.values()]
    kind = draw(st.sampled_from(
        ["daily", "tz", "range", "period", "hourly"] if clean else
        ["daily", "tz", "range", "dup", "unsorted", "irregular", "period", "strings",
         "hourly"]))
    if kind == "daily":
        idx = pd.date_range("2020-01-01", periods=n, freq="D")
    elif kind == "hourly":
        idx = pd.date_range("2020-01-01", periods=n, freq="h")
    elif kind == "tz":
        idx = pd.date_range("2020-03-28", periods=n, freq="h", tz="Europe/Paris")
    elif kind == "range":
        idx = pd.RangeIndex(n)
    elif kind == "period":
        idx = pd.period_range("2000-01", periods=n, freq="M")
    elif kind == "strings":
        idx = pd.Index([f"t{i}" for i in range(n)])
    else:
        base = pd.date_range("2020-01-01", periods=n, freq="D")
        if n >= 3 and kind == "dup":
            base = base.delete(1).insert(1, base[0])
        elif n >= 3 and kind == "unsorted":
            base = base[[1, 0] + list(range(2, n))]
        elif n >= 3:
            base = base.delete(n // 2).append(pd.DatetimeIndex([base[-1] + pd.Timedelta("3D")]))
        idx = base
    data.index = idx
    as_long = draw(st.booleans()) and n > 0
    if as_long:
        data = data.reset_index(drop=True)
        data.insert(0, "ds", idx if not isinstance(idx, pd.PeriodIndex) else idx.to_timestamp())
        data.insert(0, "unique_id", draw(st.sampled_from([0, "s"])))
    return data


def _check_message(e):
    assert len(str(e)) > 15, f"unclear error: {e!r}"


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames())
def test_fit_and_predict_on_random_frames(df):
    before = df.copy(deep=True)
    model = TSRNNRegressor(**FAST)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(df)
    except (ValueError, TypeError) as e:
        event(f"fit refused: {type(e).__name__}: {str(e)[:25]}")
        _check_message(e)
        pd.testing.assert_frame_equal(df, before)
        return
    event("fitted")
    pd.testing.assert_frame_equal(df, before)
    try:
        fc = model.predict()
    except (ValueError, TypeError) as e:
        _check_message(e)
        return
    values = fc.select_dtypes("number").to_numpy()
    assert np.isfinite(values).all()
    n_series = df["unique_id"].nunique() if "unique_id" in df.columns else 1
    assert len(fc) == FAST["horizon"] * n_series
    # the same frame given as new history forecasts the same
    try:
        again = model.predict(df)
    except (ValueError, TypeError) as e:
        _check_message(e)
        return
    assert np.isfinite(again.select_dtypes("number").to_numpy()).all()
    pd.testing.assert_frame_equal(df, before)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 30), st.integers(1, 4), st.sampled_from(["nan", "inf", "ok", "big"]))
def test_arrays_in_arrays_out_or_a_clear_error(n, lookback, special):
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, lookback, 2))
    y = rng.standard_normal(n)
    if special == "nan":
        X[0, 0, 0] = np.nan
    elif special == "inf":
        y[-1] = np.inf
    elif special == "big":
        X *= 1e300
    Xc, yc = X.copy(), y.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = TSRNNRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, y).predict(X)
    except (ValueError, TypeError) as e:
        _check_message(e)
    else:
        assert p.shape == (n,) and np.isfinite(p).all()
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)


def test_float16_and_int_columns_fit():
    idx = pd.date_range("2020-01-01", periods=30, freq="D")
    df = pd.DataFrame({"y": np.arange(30, dtype=np.float16), "x": np.arange(30) % 7}, index=idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = TSRNNRegressor(**FAST).fit(df, target="y").predict()
    assert fc.shape == (2, 1) and np.isfinite(fc.to_numpy()).all()


@st.composite
def gappy_panels(draw):
    """Long or wide frames with NaN anywhere (the last window included), ids that
    may be missing, and fitted with missing="skip"."""
    n_series = draw(st.integers(1, 4))
    n = draw(st.integers(8, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    t = np.arange(n)
    frames = []
    for k in range(n_series):
        y = np.sin(t / 3 + k) + rng.normal(scale=0.1, size=n)
        for pos in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            y[pos] = np.nan
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range(
            "2020-01-01", periods=n, freq="D"), "y": y}))
    df = pd.concat(frames, ignore_index=True)
    nan_ids = draw(st.lists(st.integers(0, len(df) - 1), max_size=2))
    if nan_ids and draw(st.booleans()):
        df.loc[nan_ids, "unique_id"] = np.nan
    return df, draw(st.booleans())


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(gappy_panels())
def test_gaps_in_the_last_window_nan_ids_and_shape_mismatches(case):
    df, as_wide = case
    data = df.pivot(index="ds", columns="unique_id", values="y") if (
        as_wide and df["unique_id"].notna().all()) else df
    before = data.copy(deep=True)
    model = TSRNNRegressor(**{**FAST, "missing": "skip"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data)
    except (ValueError, TypeError) as e:
        _check_message(e)
        if data is df and df["unique_id"].isna().any():
            assert "unique_id" in str(e)  # never dropped silently
        return
    assert not (data is df and df["unique_id"].isna().any()), "NaN ids were accepted"
    pd.testing.assert_frame_equal(data, before)
    long = data is df
    last = {u: g["y"].to_numpy()[-FAST["lookback"]:] for u, g in df.groupby("unique_id")}
    complete = sorted(u for u, v in last.items() if np.isfinite(v).all())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fc = model.predict()
        except ValueError as e:
            _check_message(e)
            assert "missing value" in str(e)
            assert (not long) or not complete  # refused only when nothing is left
            fc = None
    if fc is not None:
        assert np.isfinite(fc.select_dtypes("number").to_numpy()).all()
        if long:
            assert sorted(fc["unique_id"].unique()) == complete
            if len(complete) < len(last):  # the others are named in a warning
                assert any("left out" in str(w.message) for w in caught)
        else:
            assert len(complete) == len(last)
    other = df.dropna() if not long else df.pivot(index="ds", columns="unique_id",
                                                  values="y")
    with pytest.raises(ValueError, match="fitted on"):
        model.predict(other)
