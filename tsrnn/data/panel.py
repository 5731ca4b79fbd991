"""Pandas in, one packed :class:`Panel` out: validation of frames, time indexes and
values, and the future timestamps of each series.

Every input shape (Series, wide frame, long frame) becomes one :class:`Panel`: the
values of all series stacked in one contiguous float64 array of shape
(rows, channels) plus ``indptr`` offsets, statsforecast-style. Channels are ordered
targets first, then exogenous inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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

    def blocks(self) -> list:
        """Each series' rows of ``values`` (views)."""
        return [self.values[a:b] for a, b in zip(self.indptr[:-1], self.indptr[1:])]

    def with_rows(self, blocks, indexes, freq=None) -> Panel:
        """The same series and columns with other rows: ``blocks`` (values) and
        ``indexes``, one of each per series."""
        lengths = [len(b) for b in blocks]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Panel(np.concatenate(blocks), indptr, list(self.ids), list(indexes),
                     list(self.channels), self.n_targets, self.kind,
                     self.freq if freq is None else freq, list(self.target_names))


# --------------------------------------------------------------------- validation
def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s)


def check_numeric_columns(df: pd.DataFrame, columns) -> None:
    for c in columns:
        col = df.iloc[:, df.columns.get_loc(c)]
        if not _is_numeric(col):  # bool counts as numeric (0/1 flags)
            raise TypeError(
                f"Column {c!r} has dtype {col.dtype}; tsrnn needs numeric columns "
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
                ticks = index.asi8  # in the index's own unit (ns, us, ...)
                bad = np.flatnonzero(np.diff(ticks) != ticks[1] - ticks[0])
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
    """Refuse values too large to forecast, and (but with ``missing="skip"``)
    non-finite ones; ``missing="history"``: the values are a forecast's history,
    which ``missing="skip"`` does not cover."""
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
    hint = ("Fill it: the history a forecast starts from must be complete "
            "(missing='skip' applies to training)." if missing == "history" else
            "Fill or drop it, or pass missing='skip' to drop the windows that touch it.")
    raise ValueError(
        f"Column {channels[col]!r} of {where} has a non-finite value "
        f"({values[row, col]}) at {index[row]} (row {row}). {hint}"
    )


# -------------------------------------------------------------------------- packing
def future_index(index: pd.Index, freq, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after the end of ``index``."""
    last = index[-1]
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(last + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
    step = int(freq) if isinstance(freq, (int, np.integer)) else 1
    if int(last) + step * horizon > np.iinfo(np.int64).max:
        raise ValueError(f"The integer index ends at {int(last)}: the {horizon} forecast "
                         "steps after it do not fit in int64. Renumber the index.")
    return pd.RangeIndex(int(last) + step, int(last) + step * (horizon + 1), step)


class StackedIndex(Sequence):
    """The forecast timestamps of many series as one index, ``stacked``: series after
    series, ``horizon`` stamps each. Item ``i`` is series i's, sliced only when asked
    for (building 10,000 small indexes took most of a 10,000-series predict)."""

    def __init__(self, stacked: pd.Index, horizon: int):
        self.stacked = stacked
        self.horizon = horizon

    def __len__(self) -> int:
        return len(self.stacked) // self.horizon

    def select(self, positions) -> StackedIndex:
        """The stamps at ``positions`` (0-based, within each series' ``horizon``) of
        every series."""
        positions = np.asarray(positions, dtype=np.int64)
        take = (np.arange(len(self))[:, None] * self.horizon + positions).ravel()
        return StackedIndex(self.stacked[take], len(positions))

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
        targets = as_list(target, value_cols) or (["y"] if "y" in value_cols else [])
        if not targets:
            raise ValueError("A long frame needs a 'y' column or target=.")
    else:
        value_cols = list(X.columns)
        targets = as_list(target, value_cols)
        if not targets:
            targets = [c for i, c in enumerate(value_cols) if _is_numeric(X.iloc[:, i])]
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
        values = columns_of(X, channels).to_numpy(dtype=np.float64, copy=True)
        check_finite(values, channels, X.index, "X", missing)
        return Panel(values, np.array([0, len(values)], np.int64), [None], [X.index],
                     channels, len(targets), kind, freq, list(targets))

    missing_id = X[id_col].isna().to_numpy()
    if missing_id.any():
        rows = np.flatnonzero(missing_id)
        raise ValueError(
            f"Column {id_col!r} is missing at {rows.size} row(s) (positions "
            f"{rows[:5].tolist()}{', ...' if rows.size > 5 else ''}): every row of a "
            "long frame needs its series id. Fill or drop those rows.")
    ids, blocks, indexes = [], [], []
    ds = X[time_col]
    is_period = isinstance(ds.dtype, pd.PeriodDtype)
    if not (pd.api.types.is_datetime64_any_dtype(ds) or pd.api.types.is_integer_dtype(ds)
            or is_period):
        raise TypeError(f"Column {time_col!r} must hold timestamps, periods or integers. "
                        f"Got {ds.dtype}.")
    seen_freq = freq
    for uid, g in X.groupby(id_col, sort=False):
        if is_period:
            idx = pd.PeriodIndex(g[time_col])
        elif pd.api.types.is_datetime64_any_dtype(ds):
            idx = pd.DatetimeIndex(g[time_col])
        else:
            idx = pd.Index(g[time_col])
        f = check_time_index(idx, seen_freq, where=f"series {uid!r}")
        seen_freq = seen_freq or f
        v = columns_of(g, channels).to_numpy(dtype=np.float64, copy=True)
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


def past_index(index: pd.Index, freq, periods: int) -> pd.Index:
    """The ``periods`` stamps before the start of ``index``."""
    first = index[0]
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(end=first - 1, periods=periods, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(end=first, periods=periods + 1, freq=freq)[:-1]
    step = int(freq) if isinstance(freq, (int, np.integer)) else 1
    return pd.Index(int(first) - step * np.arange(periods, 0, -1))


def pad_front(panel: Panel, min_rows: int) -> tuple[Panel, np.ndarray]:
    """Series shorter than ``min_rows`` lengthened at the front to ``min_rows`` rows,
    each channel repeating its first value, at the stamps before the series'; returns
    the panel and the number of rows added to each series. A global model then
    learns from, and forecasts, series shorter than its window."""
    lengths = panel.lengths()
    pad = np.maximum(min_rows - lengths, 0)
    if not pad.any():
        return panel, pad
    blocks, indexes = [], []
    for i, v in enumerate(panel.blocks()):
        idx = panel.index[i]
        if pad[i]:
            v = np.vstack([np.repeat(v[:1], pad[i], axis=0), v])
            idx = past_index(idx, panel.freq, int(pad[i])).append(idx)
        blocks.append(v)
        indexes.append(idx)
    return panel.with_rows(blocks, indexes), pad


def as_list(v, columns=()):
    """Column names as a list: None is none, a list (or array, or Index) is as many
    names, a tuple is one name when ``columns`` has it, and any other value (a str,
    an int, a bool) is one name."""
    if v is None:
        return []
    if isinstance(v, tuple) and v in list(columns):
        return [v]
    if isinstance(v, (list, tuple, np.ndarray, pd.Index)):
        return list(v)
    return [v]


def columns_of(X: pd.DataFrame, names) -> pd.DataFrame:
    """``X[names]`` by position, so that bool or int column names are names, never
    a mask or a position."""
    return X.iloc[:, [X.columns.get_loc(c) for c in names]]


def check_future_fits(panel: Panel, horizon: int) -> None:
    """Every integer-indexed series leaves room for ``horizon`` more steps in
    int64, or a ValueError naming the first that does not."""
    top = np.iinfo(np.int64).max
    for uid, idx in zip(panel.ids, panel.index):
        if isinstance(idx, (pd.DatetimeIndex, pd.PeriodIndex)) or len(idx) == 0:
            continue
        step = int(panel.freq) if isinstance(panel.freq, (int, np.integer)) else 1
        if int(idx[-1]) + step * horizon > top:
            who = "X" if uid is None else f"series {uid!r}"
            raise ValueError(f"The integer index of {who} ends at {int(idx[-1])}: the "
                             f"{horizon} forecast steps after it do not fit in int64. "
                             "Renumber the index (from 0, say).")

