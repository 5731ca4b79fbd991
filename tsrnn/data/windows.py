"""Windows by index: a window is the row where it starts, and batches are gathered
from the packed values by index (:func:`gather_windows`), so memory stays at the
size of the data. Also :func:`make_windows`, the copying windows of the array route.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from tsrnn._config import COMPILED_BATCHES_FROM, JIT_OPTIONS


def window_starts(indptr, lookback, horizon, bad_rows=None,
                  padded=None) -> tuple[np.ndarray, np.ndarray]:
    """Start rows of every complete (lookback + horizon) window, and their series.

    With ``bad_rows`` (a boolean mask of rows holding NaN), windows touching one are
    left out; with ``padded`` (rows added at the front of each series,
    :func:`tsrnn.data.pad_front`), so are windows whose targets include one.
    """
    starts, series = [], []
    span = lookback + horizon
    for i in range(len(indptr) - 1):
        a, b = indptr[i], indptr[i + 1]
        first = a if padded is None else max(a, a + int(padded[i]) - lookback)
        s = np.arange(first, b - span + 1, dtype=np.int64)
        if bad_rows is not None and s.size:
            c = np.concatenate([[0], np.cumsum(bad_rows[a:b])])
            ok = (c[s - a + span] - c[s - a]) == 0
            s = s[ok]
        starts.append(s)
        series.append(np.full(s.size, i, dtype=np.int64))
    return np.concatenate(starts), np.concatenate(series)


def spread_sample(a, n):
    """At most ``n`` of the entries of ``a``, evenly spread (first and last kept)."""
    if len(a) <= n:
        return a
    return a[np.round(np.linspace(0, len(a) - 1, n)).astype(np.int64)]


def series_of(indptr, rows) -> np.ndarray:
    """The series each of ``rows`` (rows of packed values) belongs to."""
    return np.searchsorted(indptr, rows, side="right") - 1


def rows_by_series(series):
    """(series, positions in ``series`` that hold it) for each series present, in
    one sort: grouping by ``series == i`` per series would cost series x rows."""
    series = np.asarray(series)
    order = np.argsort(series, kind="stable")
    bounds = np.flatnonzero(np.diff(series[order])) + 1
    for rows in np.split(order, bounds):
        if rows.size:
            yield int(series[rows[0]]), rows


def held_out_tail(n_per_group, fraction):
    """Boolean mask over windows numbered group after group: True for the last
    ``ceil(fraction * n)`` windows of each group of ``n`` (its held-out tail), or
    none of a group that would keep no training window."""
    held = np.zeros(int(np.sum(n_per_group)), bool)
    end = 0
    for n in n_per_group:
        end += n
        n_val = int(np.ceil(fraction * n))
        if 0 < n_val < n:
            held[end - n_val : end] = True
    return held


def split_windows(n_per_group, fraction, gap):
    """Training and validation window numbers: the held-out tail of each group
    (:func:`held_out_tail`) validates, and the ``gap`` windows just before it train
    on nothing. Consecutive windows overlap: a window's targets are also targets of
    the next ``targets - 1`` windows, so without the gap most validation targets
    would be training targets (validation loss and conformal scores in-sample). The
    gap shrinks where a short group would keep no training window."""
    held = held_out_tail(n_per_group, fraction)
    train = ~held
    end = 0
    for n in n_per_group:
        end += n
        n_val = int(held[end - n : end].sum())
        if n_val:
            g = min(gap, n - n_val - 1)
            train[end - n_val - g : end - n_val] = False
    return np.flatnonzero(train), np.flatnonzero(held)


def gather_windows(values, starts, lookback, horizon, n_targets, fut_cols):
    """The windows starting at rows ``starts`` of the packed ``values`` (rows, channels):
    ``x`` (B, lookback, channels), ``y`` (B, horizon, targets) and the known future
    columns ``fut_cols``, ``f`` (B, horizon, k); new arrays, ``x`` C-contiguous."""
    starts = np.asarray(starts, np.int64)
    x = values[starts[:, None] + np.arange(lookback)]
    after = values[starts[:, None] + (lookback + np.arange(horizon))]
    return x, np.ascontiguousarray(after[:, :, :n_targets]), after[:, :, fut_cols]


def window_stats(x, n_targets, floor):
    """Mean and standard deviation (ddof 0, at least ``floor``) of each window's
    target channels, (B, 1, targets) each in ``x``'s dtype, from windows ``x``
    (B, lookback, channels). Accumulated in float64, in step order (cumulative
    sums: numpy's pairwise sums would round differently from the compiled batches'
    loops), so the statistics of a float32 window are its float64 statistics
    rounded once. A NaN stays NaN."""
    L = x.shape[1]
    t = x[:, :, :n_targets].astype(np.float64)
    mean = np.cumsum(t, axis=1)[:, -1:] / L
    d = t - mean
    sd = np.sqrt(np.cumsum(d * d, axis=1)[:, -1:] / L)
    return mean.astype(x.dtype), np.where(sd < floor, floor, sd).astype(x.dtype)


def network_windows(x, n_targets, steps, season, scale_floor, window_scaling):
    """What the network sees of windows ``x`` (B, lookback, channels), and what turns
    its output back into the scaler's units; predict's windows and (bit for bit, as
    :func:`training_batch`) training's:

    * ``xin`` (B, lookback, channels): with ``window_scaling``, a copy of ``x`` whose
      target channels are standardised by each window's own statistics
      (:func:`window_stats`); without, ``x`` itself;
    * ``base`` (B, steps, targets): the naive forecast the network forecasts the
      change from: the last value, or the value ``season`` steps earlier when
      ``season > 0``;
    * ``scale`` (B, 1, targets): the unit of that change, each window's scale with
      ``window_scaling``, else 1.
    """
    L = x.shape[1]
    src = np.full(steps, L - 1) if season == 0 else L - season + np.arange(steps) % season
    base = x[:, src, :n_targets]
    if not window_scaling:
        return x, base, np.ones((x.shape[0], 1, n_targets), x.dtype)
    loc, scale = window_stats(x, n_targets, scale_floor)
    xin = x.copy()
    xin[:, :, :n_targets] = (x[:, :, :n_targets] - loc) / scale
    return xin, base, scale


def training_batch(values, starts, lookback, steps, n_targets, fut_cols, season,
                   scale_floor, window_scaling):
    """One training batch, for windows starting at rows ``starts``: ``x`` (B,
    lookback, channels) as the network sees it, ``y`` (B, steps, targets) the
    targets after each window as the change from the naive baseline in the window's
    units, ``f`` (B, steps, len(fut_cols)) the known future columns
    (:func:`gather_windows`, then :func:`network_windows`).

    In NumPy: a dozen calls, ~30 us a batch of 32 more than the compiled
    :func:`compiled_training_batch`, which gives the same bits but costs a second
    and a half to compile (:func:`batch_function` chooses)."""
    x, y, f = gather_windows(values, starts, lookback, steps, n_targets, fut_cols)
    xin, base, scale = network_windows(x, n_targets, steps, season, scale_floor,
                                       window_scaling)
    return xin, (y - base) / scale, f


@dataclass(frozen=True)
class WindowBatches:
    """What :func:`training_batch` builds a route's batches from, for a device that
    builds them itself (:mod:`tsrnn.device_training`): the packed ``values``, the
    windows' ``starts``, and the rest of :func:`training_batch`'s arguments."""

    values: np.ndarray
    starts: np.ndarray
    lookback: int
    steps: int
    n_targets: int
    fut_cols: np.ndarray
    season: int
    scale_floor: float
    window_scaling: bool


@dataclass(frozen=True)
class ArrayBatches:
    """Batches that are rows of ready windows ``xs`` (n, lookback, features) and
    targets ``ys`` (n, outputs): the array route's."""

    xs: np.ndarray
    ys: np.ndarray


def batch_function(n_batches: int):
    """:func:`compiled_training_batch` where it is compiled already (this process or
    the disk cache) or a fit expects ``n_batches`` of at least
    :data:`tsrnn._config.COMPILED_BATCHES_FROM` (the saving then pays its compile
    time); else :func:`training_batch`. Both give the same bits (tested)."""
    from tsrnn.compile_helper import in_cache

    if n_batches >= COMPILED_BATCHES_FROM or compiled_training_batch.signatures \
            or in_cache(compiled_training_batch):
        return compiled_training_batch
    return training_batch


# The compiled batch: plain loops in one call, for fits of many batches, where the
# dozen NumPy calls of training_batch would cost more than compiling this once.

@njit(inline="always", **JIT_OPTIONS)
def _gather_windows(values, starts, lookback, horizon, n_targets, fut_cols):
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
def compiled_training_batch(values, starts, lookback, steps, n_targets, fut_cols, season,
                            scale_floor, window_scaling):
    """:func:`training_batch` compiled: the same bits (the statistics' sums in step
    order, float32 arithmetic after), a few microseconds a batch."""
    x, y, f = _gather_windows(values, starts, lookback, steps, n_targets, fut_cols)
    B, L, C = x.shape
    stat = np.empty(2, dtype=x.dtype)  # loc, scale, rounded to x's dtype
    xin = np.empty_like(x)
    for b in range(B):
        for t in range(L):
            for c in range(C):
                xin[b, t, c] = x[b, t, c]
    for b in range(B):
        for c in range(n_targets):
            stat[1] = 1
            if window_scaling:
                total = 0.0
                for t in range(L):
                    total += np.float64(x[b, t, c])
                mean = total / L
                sq = 0.0
                for t in range(L):
                    d = np.float64(x[b, t, c]) - mean
                    sq += d * d
                sd = np.sqrt(sq / L)
                stat[0] = mean
                stat[1] = scale_floor if sd < scale_floor else sd  # a NaN stays NaN
                for t in range(L):
                    xin[b, t, c] = (x[b, t, c] - stat[0]) / stat[1]
            for h in range(steps):
                src = L - 1 if season == 0 else L - season + h % season
                y[b, h, c] = (y[b, h, c] - x[b, src, c]) / stat[1]
    return xin, y, f  # reshaped by the caller: numba's reshape compiled for 0.3 s


def make_windows(y: npt.ArrayLike, lookback: int,
                 horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
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
