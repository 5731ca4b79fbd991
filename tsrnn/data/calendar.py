"""Calendar features: the sine and cosine of each timestamp's position in the day,
week and year, as known-future inputs computed from the index."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsrnn.data.panel import StackedIndex

#: Calendar cycles the network can be told about, with their length.
CALENDAR_CYCLES = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7),
                   "year": pd.Timedelta(days=365.2425)}


#: A cycle seen only a few times is memorised rather than learned (on a few weeks of
#: hourly noise, week features widen the quantile bands): at least this many.
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
    # accessors (hour, day_of_year, ...) cost more than the whole of a small predict.
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


def choose_calendar(calendar, panel, lookback: int) -> list:
    """The calendar cycles a fit feeds the network: ``calendar`` is "auto"
    (:func:`auto_calendar`), None or a list of cycle names."""
    if calendar is None:
        return []
    if calendar == "auto":  # [] for an integer index
        return auto_calendar(panel.index[0], panel.freq, lookback,
                             int(panel.lengths().max()))
    cycles = list(calendar)
    unknown = [c for c in cycles if c not in CALENDAR_CYCLES]
    if unknown or len(set(cycles)) != len(cycles):
        raise ValueError(f"calendar must be 'auto', None or a list of distinct "
                         f"{list(CALENDAR_CYCLES)}; got {calendar!r}.")
    if cycles and step_length(panel.index[0], panel.freq) is None:
        raise ValueError("calendar= needs a DatetimeIndex or PeriodIndex with a "
                         "frequency; this data has an integer index. Pass "
                         "calendar=None.")
    return cycles
