"""Seasonal periods, and the lag of the naive baseline the network forecasts from."""

from __future__ import annotations

import numbers

import numpy as np

_SEASONS = (("min", 60), ("s", 60), ("h", 24), ("B", 5), ("D", 7), ("W", 52),
            ("M", 12), ("Q", 4), ("Y", 1), ("A", 1))


def season_length_for(freq) -> int:
    """The usual seasonal period for a frequency (monthly 12, hourly 24, daily 7,
    ...); 1 when there is none or it is unknown (MASE then scales by the naive
    forecast)."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1
    code = getattr(freq, "rule_code", None) or str(freq)
    code = code.split("-")[0]
    for prefix, m in _SEASONS:
        if code == prefix or (code.startswith(prefix) and prefix not in ("s", "B")):
            return m
    return 1


def naive_scale(values, indptr, n_targets, m) -> np.ndarray:
    """The MASE denominators of packed series: the mean absolute error of the
    in-sample seasonal-naive forecast (lag ``m``, or 1 for a series of ``m`` rows or
    fewer), (n_series, n_targets); NaN rows are ignored, and a zero error (a
    constant series) becomes 1."""
    out = np.ones((len(indptr) - 1, n_targets))
    for i in range(len(indptr) - 1):
        v = values[indptr[i] : indptr[i + 1], :n_targets]
        lag = m if len(v) > m else 1
        if len(v) > lag:
            with np.errstate(all="ignore"):
                e = np.nanmean(np.abs(v[lag:] - v[:-lag]), axis=0)
            out[i] = np.where(np.isfinite(e) & (e > 0), e, 1.0)
    return out


def choose_season(values, panel, steps, bad, *, baseline, season_length, lookback):
    """The lag of the naive baseline: 0 (last value) or the season length m.

    ``baseline`` "last" and "seasonal" decide; "auto" takes the naive forecast with
    the smaller in-sample error over ``steps`` steps on the scaled ``values`` (rows in
    ``bad`` ignored). Seasonal is a candidate only when ``m <= lookback``."""
    m = season_length if isinstance(season_length, numbers.Integral) \
        else season_length_for(panel.freq)
    if baseline == "last" or m <= 1:
        if baseline == "seasonal":
            raise ValueError("baseline='seasonal' needs a season: pass season_length= "
                             "(the frequency gives none).")
        return 0
    if m > lookback:
        if baseline == "seasonal":
            raise ValueError(f"baseline='seasonal' needs lookback >= season_length; "
                             f"got lookback={lookback}, season_length={m}.")
        return 0
    if baseline == "seasonal":
        return int(m)
    nt = panel.n_targets
    err = {0: [], m: []}
    h = np.arange(1, steps + 1)
    for i in range(panel.n_series):
        v = values[panel.indptr[i] : panel.indptr[i + 1], :nt].astype(np.float64)
        if bad is not None:
            v = np.where(bad[panel.indptr[i] : panel.indptr[i + 1], None], np.nan, v)
        t = np.arange(lookback - 1, len(v) - steps)  # forecast origins
        if t.size == 0:
            continue
        t = t[:: max(1, t.size // 20000)]  # a sample decides as well as all
        target = v[t[:, None] + h]
        err[0].append(np.abs(target - v[t][:, None]))
        lag = t[:, None] + h - m * np.ceil(h / m).astype(int)
        err[m].append(np.abs(target - v[lag]))
    if not err[0]:
        return 0
    e_last = np.nanmean(np.concatenate([e.ravel() for e in err[0]]))
    e_seas = np.nanmean(np.concatenate([e.ravel() for e in err[m]]))
    return int(m) if e_seas < e_last else 0
