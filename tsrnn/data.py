"""Pandas in, packed arrays out: validation, per-series scaling and window indexing.

Every input shape (Series, wide frame, long frame) becomes one :class:`Panel`: the
values of all series stacked in one contiguous float32 array of shape
(rows, channels) plus ``indptr`` offsets, statsforecast-style. Windows are never
copied up front: a window is just the row where it starts, and batches are gathered
by index (:func:`gather_windows`), so memory stays at the size of the data.

Channels are ordered targets first, then exogenous inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from tsrnn._config import JIT_OPTIONS

LONG_COLUMNS = ("unique_id", "ds")


@dataclass
class Panel:
    values: np.ndarray  # (rows, channels) float64, raw (unscaled)
    indptr: np.ndarray  # (n_series + 1,) int64
    ids: list  # series ids; [None] for a single series
    index: list  # per series: its time index (pd.Index)
    channels: list  # channel names, targets first
    n_targets: int
    kind: str  # "series" | "wide" | "long"
    freq: object = None
    target_names: list = field(default_factory=list)

    @property
    def n_series(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


# --------------------------------------------------------------------- validation
def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)


def check_numeric_columns(df: pd.DataFrame, columns) -> None:
    for c in columns:
        if not _is_numeric(df[c]):  # bool counts as numeric (0/1 flags)
            raise TypeError(
                f"Column {c!r} has dtype {df[c].dtype}; tsrnn needs numeric columns "
                "(convert or drop it; for categories, one-hot encode them first)."
            )


def check_time_index(index: pd.Index, freq=None, where: str = "the data"):
    """Sorted, unique, regular; returns the frequency. Errors name the position."""
    if len(index) == 0:
        raise ValueError(f"{where} is empty.")
    if isinstance(index, pd.RangeIndex) or (
        pd.api.types.is_integer_dtype(index.dtype) and not isinstance(index, pd.PeriodIndex)
    ):
        values = np.asarray(index)
        if len(values) > 1:
            d = np.diff(values)
            if np.any(d <= 0):
                pos = int(np.flatnonzero(d <= 0)[0]) + 1
                kind = "duplicated" if d[pos - 1] == 0 else "unsorted"
                raise ValueError(
                    f"The index of {where} is {kind} at position {pos} "
                    f"(value {values[pos]!r} after {values[pos - 1]!r})."
                )
            if np.any(d != d[0]):
                pos = int(np.flatnonzero(d != d[0])[0]) + 1
                raise ValueError(
                    f"The index of {where} is irregular at position {pos}: step "
                    f"{d[pos - 1]} where {d[0]} was expected."
                )
            return int(d[0])
        return 1
    if isinstance(index, pd.PeriodIndex):
        if not index.is_monotonic_increasing or index.has_duplicates:
            pos = _first_bad_order(index)
            raise ValueError(f"The index of {where} is unsorted or duplicated at position {pos}.")
        expected = pd.period_range(index[0], periods=len(index), freq=index.freq)
        _check_matches(index, expected, where)
        return index.freq
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(
            f"The index of {where} must be a DatetimeIndex, PeriodIndex or integer "
            f"index. Got {type(index).__name__}."
        )
    if index.hasnans:
        pos = int(np.flatnonzero(index.isna())[0])
        raise ValueError(f"The index of {where} has a missing timestamp at position {pos}.")
    if not index.is_monotonic_increasing or index.has_duplicates:
        pos = _first_bad_order(index)
        kind = "duplicated" if index[pos] == index[pos - 1] else "unsorted"
        raise ValueError(
            f"The index of {where} is {kind} at position {pos} "
            f"({index[pos]} after {index[pos - 1]}); sort it and drop duplicates."
        )
    if freq is None:
        freq = index.freq or (_infer_freq(index) if len(index) >= 3 else None)
        if freq is None:
            if len(index) >= 2:
                step = index[1] - index[0]
                bad = np.flatnonzero(np.diff(index.asi8) != step.value)
                pos = int(bad[0]) + 1 if bad.size else None
                if pos is None:
                    return pd.tseries.frequencies.to_offset(step)
                raise ValueError(
                    f"The index of {where} is irregular: the step at position {pos} "
                    f"({index[pos - 1]} -> {index[pos]}) differs from the first step "
                    f"({step}). Pass freq= to state the frequency (gaps are then "
                    "reported), or reindex the data."
                )
            raise ValueError(
                f"Cannot infer the frequency of {where} from one timestamp; pass freq=."
            )
    expected = pd.date_range(index[0], periods=len(index), freq=freq)
    _check_matches(index, expected, where)
    return pd.tseries.frequencies.to_offset(freq)


def _infer_freq(index):
    import warnings

    with warnings.catch_warnings():  # pandas 3 warns about its future return type
        warnings.simplefilter("ignore")
        f = pd.infer_freq(index)
    return None if f is None else pd.tseries.frequencies.to_offset(f)


def _first_bad_order(index) -> int:
    v = np.asarray(index.asi8 if hasattr(index, "asi8") else index)
    return int(np.flatnonzero(np.diff(v) <= 0)[0]) + 1


def _check_matches(index, expected, where):
    if len(index) and not index.equals(expected):
        bad = np.flatnonzero(np.asarray(index) != np.asarray(expected))
        pos = int(bad[0])
        raise ValueError(
            f"The index of {where} is irregular at position {pos}: {index[pos]} where "
            f"{expected[pos]} was expected for frequency {getattr(expected, 'freqstr', '')}. "
            "Reindex the data (and fill gaps) or pass the right freq=."
        )


# Largest magnitude accepted: the forecast is un-scaled in float64 (max 1.8e308), so
# values near that limit would overflow; nothing real is that large.
MAX_ABS_VALUE = 1e300


def _first_true(mask):
    """(row, column) of the first True of a 2-D mask in row order, or None."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return rows[0], cols[0]  # np.nonzero is in row-major order


def check_finite(values: np.ndarray, channels, index, where: str, missing: str = "raise"):
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_ABS_VALUE
    found = _first_true(huge & np.isfinite(values))
    if found is not None:
        row, col = found
        raise ValueError(
            f"Column {channels[col]!r} of {where} has a value too large to forecast "
            f"({values[row, col]:g}) at {index[row]} (row {row}); |values| must be at "
            f"most {MAX_ABS_VALUE:g}. Rescale the column."
        )
    found = None if missing == "skip" else _first_true(~np.isfinite(values))
    if found is None:
        return
    row, col = found
    raise ValueError(
        f"Column {channels[col]!r} of {where} has a non-finite value "
        f"({values[row, col]}) at {index[row]} (row {row}). Fill or drop it, or pass "
        "missing='skip' to drop the windows that touch it."
    )


# -------------------------------------------------------------------------- packing
def future_index(index: pd.Index, freq, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after the end of ``index``."""
    last = index[-1]
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(last + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
    step = freq if isinstance(freq, (int, np.integer)) else 1
    return pd.RangeIndex(last + step, last + step * (horizon + 1), step)


class StackedIndex(Sequence):
    """The forecast timestamps of many series as one index, ``stacked``: series after
    series, ``horizon`` stamps each. Item ``i`` is series i's, sliced only when asked
    for (building 10,000 small indexes took most of a 10,000-series predict)."""

    def __init__(self, stacked: pd.Index, horizon: int):
        self.stacked = stacked
        self.horizon = horizon

    def __len__(self) -> int:
        return len(self.stacked) // self.horizon

    def __getitem__(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"series {i} of {n}")
        i %= n  # a negative i counts from the end, as in a list
        return self.stacked[i * self.horizon : (i + 1) * self.horizon]


def future_indexes(indexes, freq, horizon: int) -> StackedIndex:
    """:func:`future_index` for many series at once, as a :class:`StackedIndex`.
    Datetime indexes take one vectorised step per horizon and one index over all
    series rather than one ``date_range`` per series (10,000 series: seconds ->
    milliseconds); the stacked stamps then carry no ``freq``."""
    first = indexes[0]
    same_kind = all(type(i) is type(first) for i in indexes)
    if (same_kind and len(indexes) >= 8 and isinstance(first, pd.DatetimeIndex)
            and len({(str(i.tz), i.unit) for i in indexes}) == 1):
        # asi8: UTC ticks since the epoch, in the indexes' one unit
        ticks = np.concatenate([i.asi8[-1:] for i in indexes])
        lasts = pd.DatetimeIndex(ticks.view(f"M8[{first.unit}]"))
        if first.tz is not None:
            lasts = lasts.tz_localize("UTC").tz_convert(first.tz)
        offset = pd.tseries.frequencies.to_offset(freq)
        import warnings

        with warnings.catch_warnings():  # non-tick offsets warn that they loop
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            steps = [lasts + k * offset for k in range(1, horizon + 1)]
        grid = np.stack([s.asi8 for s in steps], axis=1).ravel()  # (n * horizon,)
        stacked = (pd.DatetimeIndex(grid.view(f"M8[{lasts.unit}]")) if lasts.tz is None
                   else pd.to_datetime(grid, unit=lasts.unit, utc=True).tz_convert(lasts.tz))
        return StackedIndex(stacked, horizon)
    each = [future_index(i, freq, horizon) for i in indexes]  # periods, integers: cheap
    return StackedIndex(each[0] if len(each) == 1 else each[0].append(each[1:]), horizon)


def pack(X, *, target=None, exog=None, freq=None, missing="raise", id_col="unique_id",
         time_col="ds") -> Panel:
    """Validate a Series / wide / long frame and pack it (no copy of the caller's data
    is modified)."""
    if isinstance(X, pd.Series):
        name = X.name if X.name is not None else "y"
        X = X.to_frame(name=name)
        kind = "series"
    elif isinstance(X, pd.DataFrame):
        kind = "long" if (id_col in X.columns and time_col in X.columns) else "wide"
    else:
        raise TypeError(f"X must be a pandas Series or DataFrame. Got {type(X).__name__}.")
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 rows).")
    if X.columns.has_duplicates:
        dup = list(dict.fromkeys(X.columns[X.columns.duplicated()]))
        raise ValueError(f"X has duplicated column names {dup}; rename them.")

    if kind == "long":
        value_cols = [c for c in X.columns if c not in (id_col, time_col)]
        targets = as_list(target) or (["y"] if "y" in value_cols else [])
        if not targets:
            raise ValueError("A long frame needs a 'y' column or target=.")
    else:
        value_cols = list(X.columns)
        targets = as_list(target)
        if not targets:
            targets = [c for c in value_cols if _is_numeric(X[c])]
            if not targets:
                raise TypeError("X has no numeric column to forecast.")
    for t in targets:
        if t not in value_cols:
            raise ValueError(f"target column {t!r} is not in X (columns: {value_cols}).")
    if exog is None:
        exog = [c for c in value_cols if c not in targets]
    absent = [c for c in exog if c not in value_cols]
    if absent:
        raise ValueError(f"X is missing the column(s) {absent} (columns: {value_cols}).")
    channels = list(targets) + [c for c in exog if c not in targets]
    check_numeric_columns(X, channels)

    if kind != "long":
        freq = check_time_index(X.index, freq, where="X")
        values = X[channels].to_numpy(dtype=np.float64, copy=True)
        check_finite(values, channels, X.index, "X", missing)
        return Panel(values, np.array([0, len(values)], np.int64), [None], [X.index],
                     channels, len(targets), kind, freq, list(targets))

    ids, blocks, indexes = [], [], []
    ds = X[time_col]
    if not (pd.api.types.is_datetime64_any_dtype(ds) or pd.api.types.is_integer_dtype(ds)):
        raise TypeError(f"Column {time_col!r} must hold timestamps or integers. Got {ds.dtype}.")
    seen_freq = freq
    for uid, g in X.groupby(id_col, sort=False):
        idx = pd.Index(g[time_col]) if not pd.api.types.is_datetime64_any_dtype(ds) \
            else pd.DatetimeIndex(g[time_col])
        f = check_time_index(idx, seen_freq, where=f"series {uid!r}")
        seen_freq = seen_freq or f
        v = g[channels].to_numpy(dtype=np.float64, copy=True)
        check_finite(v, channels, idx, f"series {uid!r}", missing)
        ids.append(uid)
        blocks.append(v)
        indexes.append(idx)
    lengths = [len(b) for b in blocks]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Panel(np.concatenate(blocks), indptr, ids, indexes, channels, len(targets),
                 kind, seen_freq, list(targets))


def check_min_length(panel: Panel, need: int, what: str) -> None:
    """Every series has at least ``need`` rows, or a ValueError naming the first
    short one and its length."""
    lengths = panel.lengths()
    short = np.flatnonzero(lengths < need)
    if short.size:
        i = short[0]
        who = "X" if panel.ids[i] is None else f"series {panel.ids[i]!r}"
        raise ValueError(f"{who} has {lengths[i]} rows, fewer than {what} = {need}.")


def as_list(v):
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


# -------------------------------------------------------------------------- scaling
def fit_scaler(values: np.ndarray, indptr: np.ndarray, kind):
    """Per-series, per-channel (loc, scale), each of shape (n_series, channels)."""
    n, C = len(indptr) - 1, values.shape[1]
    loc = np.zeros((n, C))
    scale = np.ones((n, C))
    if kind is None:
        return loc, scale
    for i in range(n):
        v = values[indptr[i] : indptr[i + 1]]
        # Work on v / max|v| so that squares of huge values cannot overflow.
        with np.errstate(all="ignore"):
            big = np.nanmax(np.abs(v), axis=0) if len(v) else np.ones(C)
        big = np.where(np.isfinite(big) & (big > 0), big, 1.0)
        v = v / big
        if kind == "standard":
            lo, sc = np.nanmean(v, axis=0), np.nanstd(v, axis=0)
        elif kind == "minmax":
            lo = np.nanmin(v, axis=0)
            sc = np.nanmax(v, axis=0) - lo
        else:  # robust
            q1, med, q3 = np.nanpercentile(v, [25, 50, 75], axis=0)
            lo, sc = med, q3 - q1
        ok = np.isfinite(sc) & (sc > 1e-12 * np.maximum(1, np.abs(lo)))
        lo = np.where(np.isfinite(lo), lo, 0.0) * big
        # A constant channel keeps unit scale in its own units (never 0).
        loc[i], scale[i] = lo, np.where(ok, sc * big, np.maximum(big, 1e-300))
    return loc, scale


def scale_values(values, indptr, loc, scale, dtype=np.float32):
    out = np.empty(values.shape, dtype=dtype)
    for i in range(len(indptr) - 1):
        a, b = indptr[i], indptr[i + 1]
        out[a:b] = (values[a:b] - loc[i]) / scale[i]
    return out


# ------------------------------------------------------------------------- calendar
#: Calendar cycles the network can be told about, with their length.
CALENDAR_CYCLES = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7),
                   "year": pd.Timedelta(days=365.2425)}


#: A cycle seen only a few times is memorised rather than learned: on 3.5 weeks of
#: hourly noise the week features made the 10-90% quantile band 50% too wide.
MIN_CALENDAR_REPEATS = 4


def _as_timestamps(index):
    if isinstance(index, pd.PeriodIndex):
        return index.to_timestamp()
    return index if isinstance(index, pd.DatetimeIndex) else None


def step_length(index, freq):
    """The time one step of ``index`` spans (None for an integer index)."""
    ts = _as_timestamps(index)
    if ts is None or len(ts) == 0:
        return None
    if isinstance(index, pd.PeriodIndex):
        freq = index.freq
    if freq is None:
        return None
    pair = pd.date_range(ts[-1], periods=2, freq=freq) if isinstance(index, pd.DatetimeIndex) \
        else pd.period_range(index[-1], periods=2, freq=freq).to_timestamp()
    return pair[1] - pair[0]


def auto_calendar(index, freq, lookback: int, n_steps: int) -> list:
    """The calendar cycles worth feeding to a network: those longer than the
    ``lookback`` (a window cannot show them) that the training data covers at least
    ``MIN_CALENDAR_REPEATS`` times. ``index`` is one series' index, ``n_steps`` the
    length of the longest series."""
    step = step_length(index, freq)
    if step is None or step <= pd.Timedelta(0):
        return []
    cycles = []
    for name, length in CALENDAR_CYCLES.items():
        steps_per_cycle = length / step
        if steps_per_cycle > lookback and n_steps >= MIN_CALENDAR_REPEATS * steps_per_cycle:
            cycles.append(name)
    return cycles


def calendar_values(index, cycles, dtype=np.float32) -> np.ndarray:
    """(len(index), 2 * len(cycles)): sine and cosine of each timestamp's position in
    each cycle (day, week, year), so that the end of a cycle meets its start."""
    out = np.empty((len(index), 2 * len(cycles)), dtype=dtype)
    if not cycles:
        return out
    # Plain datetime64 arithmetic on the local wall-clock time: pandas' field
    # accessors (hour, day_of_year, ...) cost ~15 us each, a third of a predict().
    ts = _as_timestamps(index)
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    t = ts.to_numpy().astype("datetime64[s]")
    days = t.astype("datetime64[D]")
    day = (t - days).astype(np.int64) / 86400.0  # fraction of the day gone
    for j, name in enumerate(cycles):
        if name == "day":
            phase = day
        elif name == "week":  # 1970-01-01 was a Thursday: Monday is 0
            phase = ((days.astype(np.int64) + 3) % 7 + day) / 7.0
        else:  # year
            year = days.astype("datetime64[Y]")
            start = year.astype("datetime64[D]")
            length = ((year + 1).astype("datetime64[D]") - start).astype(np.int64)
            phase = ((days - start).astype(np.int64) + day) / length
        out[:, 2 * j] = np.sin(2 * np.pi * phase)
        out[:, 2 * j + 1] = np.cos(2 * np.pi * phase)
    return out


def stacked_calendar_values(indexes, cycles, dtype=np.float32) -> np.ndarray:
    """:func:`calendar_values` of several series' indexes, one under the other, in
    one vectorised pass (not one pandas call per series)."""
    if isinstance(indexes, StackedIndex):
        indexes = [indexes.stacked]  # already one under the other
    if not cycles or not len(indexes):
        return np.empty((sum(len(i) for i in indexes), 2 * len(cycles)), dtype=dtype)
    index = indexes[0] if len(indexes) == 1 else indexes[0].append(list(indexes[1:]))
    return calendar_values(index, cycles, dtype)


# -------------------------------------------------------------------------- windows
def window_starts(indptr, lookback, horizon, bad_rows=None) -> tuple[np.ndarray, np.ndarray]:
    """Start rows of every complete (lookback + horizon) window, and their series.

    With ``bad_rows`` (a boolean mask of rows holding NaN), windows touching one are
    left out.
    """
    starts, series = [], []
    span = lookback + horizon
    for i in range(len(indptr) - 1):
        a, b = indptr[i], indptr[i + 1]
        s = np.arange(a, b - span + 1, dtype=np.int64)
        if bad_rows is not None and s.size:
            c = np.concatenate([[0], np.cumsum(bad_rows[a:b])])
            ok = (c[s - a + span] - c[s - a]) == 0
            s = s[ok]
        starts.append(s)
        series.append(np.full(s.size, i, dtype=np.int64))
    return np.concatenate(starts), np.concatenate(series)


@njit(**JIT_OPTIONS)
def gather_windows(values, starts, lookback, horizon, n_targets, fut_cols):
    """x (B, lookback, channels), y (B, horizon, targets), future (B, horizon, k)."""
    B = starts.shape[0]
    C = values.shape[1]
    K = fut_cols.shape[0]
    x = np.empty((B, lookback, C), dtype=values.dtype)
    y = np.empty((B, horizon, n_targets), dtype=values.dtype)
    f = np.empty((B, horizon, K), dtype=values.dtype)
    for b in range(B):
        s = starts[b]
        for t in range(lookback):
            for c in range(C):
                x[b, t, c] = values[s + t, c]
        for h in range(horizon):
            r = s + lookback + h
            for c in range(n_targets):
                y[b, h, c] = values[r, c]
            for k in range(K):
                f[b, h, k] = values[r, fut_cols[k]]
    return x, y, f


@njit(**JIT_OPTIONS)
def window_stats(x, n_targets, floor):
    """Mean and standard deviation (ddof 0, at least ``floor``) of each window's
    target channels, (B, 1, targets) each in ``x``'s dtype, from windows ``x``
    (B, lookback, channels). Accumulated in float64 (two passes), so the statistics
    of a float32 window are its float64 statistics rounded once; training and
    predict use this one function, so they see the same bits."""
    B, L = x.shape[0], x.shape[1]
    loc = np.empty((B, 1, n_targets), dtype=x.dtype)
    scale = np.empty((B, 1, n_targets), dtype=x.dtype)
    for b in range(B):
        for c in range(n_targets):
            total = 0.0
            for t in range(L):
                total += np.float64(x[b, t, c])
            mean = total / L
            sq = 0.0
            for t in range(L):
                d = np.float64(x[b, t, c]) - mean
                sq += d * d
            sd = np.sqrt(sq / L)
            loc[b, 0, c] = mean
            scale[b, 0, c] = floor if sd < floor else sd  # a NaN stays NaN
    return loc, scale


@njit(**JIT_OPTIONS)
def network_windows(x, n_targets, steps, season, scale_floor, window_scaling):
    """What the network sees of windows ``x`` (B, lookback, channels), and what turns
    its output back into the scaler's units; the one implementation that training
    (:func:`training_batch`) and predict share:

    * ``xin`` (B, lookback, channels): with ``window_scaling``, a copy of ``x`` whose
      target channels are standardised by each window's own statistics
      (:func:`window_stats`); without, ``x`` itself;
    * ``base`` (B, steps, targets): the naive forecast the network forecasts the
      change from: the last value, or the value ``season`` steps earlier when
      ``season > 0``;
    * ``scale`` (B, 1, targets): the unit of that change, each window's scale with
      ``window_scaling``, else 1.
    """
    B, L = x.shape[0], x.shape[1]
    base = np.empty((B, steps, n_targets), dtype=x.dtype)
    for b in range(B):
        for h in range(steps):
            src = L - 1 if season == 0 else L - season + h % season
            for c in range(n_targets):
                base[b, h, c] = x[b, src, c]
    if not window_scaling:
        return x, base, np.ones((B, 1, n_targets), dtype=x.dtype)
    loc, scale = window_stats(x, n_targets, scale_floor)
    xin = x.copy()
    for b in range(B):
        for c in range(n_targets):
            m, s = loc[b, 0, c], scale[b, 0, c]
            for t in range(L):
                xin[b, t, c] = (x[b, t, c] - m) / s
    return xin, base, scale


@njit(**JIT_OPTIONS)
def training_batch(values, starts, lookback, steps, n_targets, fut_cols, season,
                   scale_floor, window_scaling):
    """One training batch in one compiled call, for windows starting at rows
    ``starts``: ``x`` (B, lookback, channels) as the network sees it, ``y`` (B, steps,
    targets) the targets after each window as the change from the naive baseline in
    the window's units, ``f`` (B, steps, len(fut_cols)) the known future columns
    (:func:`gather_windows`, then :func:`network_windows`). One call instead of a dozen
    numpy ones: 49 -> 9 us of the ~450 us of a training step at air_passengers'
    shapes."""
    x, y, f = gather_windows(values, starts, lookback, steps, n_targets, fut_cols)
    xin, base, scale = network_windows(x, n_targets, steps, season, scale_floor,
                                       window_scaling)
    for b in range(x.shape[0]):
        for h in range(steps):
            for c in range(n_targets):
                y[b, h, c] = (y[b, h, c] - base[b, h, c]) / scale[b, 0, c]
    return xin, y, f  # reshaped by the caller: numba's reshape compiled for 0.3 s


# ------------------------------------------------------------- model-file encoding
def encode_index(index: pd.Index) -> tuple[dict, np.ndarray]:
    """A time index as (JSON-able description, int64 array), for the model file."""
    if isinstance(index, pd.DatetimeIndex):
        tz = None if index.tz is None else str(index.tz)
        return {"kind": "datetime", "unit": index.unit, "tz": tz}, index.asi8.copy()
    if isinstance(index, pd.PeriodIndex):
        return {"kind": "period", "freq": index.freqstr}, index.asi8.copy()
    return {"kind": "int"}, np.asarray(index, dtype=np.int64)


def decode_index(info: dict, values: np.ndarray) -> pd.Index:
    kind = info["kind"]
    if kind == "datetime":
        idx = pd.DatetimeIndex(values.astype(np.int64).view(f"M8[{info['unit']}]"))
        return idx if info["tz"] is None else idx.tz_localize("UTC").tz_convert(info["tz"])
    if kind == "period":
        return pd.PeriodIndex.from_ordinals(values.astype(np.int64), freq=info["freq"])
    if kind == "int":
        return pd.Index(values.astype(np.int64))
    raise ValueError(f"unknown index kind {kind!r}")


def encode_freq(freq):
    if freq is None:
        return None
    if isinstance(freq, (int, np.integer)):
        return {"type": "int", "value": int(freq)}
    return {"type": "offset", "value": freq.freqstr}


def decode_freq(info):
    if info is None:
        return None
    if info["type"] == "int":
        return int(info["value"])
    return pd.tseries.frequencies.to_offset(info["value"])


def make_windows(y, lookback: int, horizon: int = 1):
    """Sliding windows of a 1-D or 2-D (time, features) array or pandas object, as
    arrays for scikit-learn tools: ``X`` of shape (n, lookback, features) and ``y``
    of shape (n,) for ``horizon=1`` or (n, horizon), forecasting the first column.

    This copies the windows (fine for small data and for cross-validation); ``fit``
    on pandas data never does.
    """
    a = np.asarray(y, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D (time, features); got shape {a.shape}.")
    n = a.shape[0] - lookback - horizon + 1
    if n < 1:
        raise ValueError(f"y has {a.shape[0]} rows, fewer than lookback + horizon = "
                         f"{lookback + horizon}.")
    idx = np.arange(n)[:, None]
    X = a[idx + np.arange(lookback)]
    Y = a[idx + lookback + np.arange(horizon), 0]
    return X, (Y[:, 0] if horizon == 1 else Y)
