"""Per-series, per-channel scaling of packed values."""

from __future__ import annotations

import numpy as np


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
