"""Split-conformal prediction intervals and point forecasts from quantile outputs.

The conformal scores are the absolute errors of the model's forecasts on held-out
windows (its validation windows, or the data given to ``calibrate``), in scaled
units, one row per window: (n_windows, horizon, targets). The half-width of a
``level`` % interval at each step and target is their ``ceil((n + 1) level / 100)``-th
smallest value. With window scaling the scores are in units of each window's own
scale (:func:`interval_scale`), so an interval widens and narrows with the recent
swings of its series, as the forecast does.
"""

from __future__ import annotations

import numpy as np

from tsrnn import _warnings
from tsrnn import data as D
from tsrnn._config import MAX_CONFORMAL_WINDOWS


def check_levels(level, scores) -> list[float]:
    """The interval levels of ``predict(level=)`` as floats, validated."""
    if level is None:
        return []
    levels = [float(v) for v in np.atleast_1d(np.asarray(level, dtype=np.float64))]
    if not all(0 < v < 100 for v in levels):
        raise ValueError(f"level must hold percentages strictly between 0 and 100; "
                         f"got {levels}.")
    if scores is None:
        raise ValueError(
            "level= needs conformal scores, and this model has none: its fit held out "
            "no validation windows (early_stopping=False, or series too short to hold "
            "any out). Call calibrate(X) with held-out history to compute them, or fit "
            "with quantiles=[...] for intervals from the network itself."
        )
    return levels


def conformal_halfwidth(scores, level):
    """Split-conformal half-width per (horizon step, target), in score units."""
    n = scores.shape[0]
    k = int(np.ceil((n + 1) * level / 100.0))
    if k > n:
        _warnings.warn(
            f"{n} calibration windows are too few for a {level:g}% conformal "
            f"interval (needs {int(np.ceil(100 / (100 - level))) - 1}); using the "
            "largest error seen, which may under-cover.")
        k = n
    return np.sort(scores, axis=0)[k - 1]


def interval_scale(x, n_targets, per_window, floor):
    """The unit of the conformal scores for forecasts from scaled windows ``x``,
    (n, 1, targets): each window's own scale when ``per_window`` (the model scales
    windows), else 1 (one width for every window of a series)."""
    if per_window:  # the scale the network saw the windows in (network_windows')
        return D.window_stats(x, n_targets, floor)[1].astype(np.float64)
    return np.ones((len(x), 1, n_targets))


def point_forecast(pred4, quantiles):
    """(n, H, targets, Q) -> (n, H, targets): the 0.5 quantile, else the mean."""
    if 0.5 in quantiles:
        return pred4[..., quantiles.index(0.5)].astype(np.float64)
    return pred4.mean(axis=-1, dtype=np.float64)


def spread_sample(starts):
    """At most :data:`tsrnn._config.MAX_CONFORMAL_WINDOWS` of the window ``starts``,
    evenly spread."""
    return D.spread_sample(starts, MAX_CONFORMAL_WINDOWS)
