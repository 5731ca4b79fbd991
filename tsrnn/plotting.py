"""Plots with matplotlib (the ``plot`` extra): forecasts with their intervals,
backtest windows, and training curves. Each function draws on ``ax`` (a new figure
when None) and returns the axes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _axes(ax, figsize=(9, 4)):
    """``ax``, or the axes of a new figure. matplotlib's backend is the user's
    business: it picks a non-interactive one itself where there is no display."""
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("tsrnn plots need matplotlib: pip install 'tsrnn[plot]'") from None
    return plt.subplots(figsize=figsize)[1]


def _time_label(t) -> str:
    """A cut-off for a legend: the date alone when the time is midnight."""
    if isinstance(t, pd.Timestamp) and t == t.normalize():
        return t.strftime("%Y-%m-%d")
    return str(t)


def _one_series(frame, series, what):
    """The rows of one series of a long frame (``series``; the only one when there
    is one), indexed by ``ds``."""
    ids = list(dict.fromkeys(frame["unique_id"]))
    if series is None:
        if len(ids) != 1:
            shown = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise ValueError(f"{what} is a long frame of {len(ids)} series: pass "
                             f"series= one of {shown}.")
        series = ids[0]
    if series not in ids:
        raise ValueError(f"series {series!r} is not in {what}.")
    return frame[frame["unique_id"] == series].set_index("ds"), series


def _band_pairs(columns, point):
    """(level, lo column, hi column) for the intervals of ``point`` found in columns,
    widest first (drawn lightest)."""
    pairs = []
    for c in columns:
        if c.startswith(f"{point}_lo_"):
            lv = c[len(point) + 4 :]
            if f"{point}_hi_{lv}" in columns:
                pairs.append((f"{lv}%", c, f"{point}_hi_{lv}"))
    qs = sorted((float(c[len(point) + 2 :]), c) for c in columns
                if c.startswith(f"{point}_q"))
    while len(qs) >= 2:
        lo, hi = qs.pop(0), qs.pop(-1)
        pairs.append((f"q{lo[0]:g}-q{hi[0]:g}", lo[1], hi[1]))
    return sorted(pairs, key=lambda p: -float(p[0].rstrip("%").split("-")[0].lstrip("q"))
                  if p[0].endswith("%") else 0)


def plot_forecast(history, forecast, *, column=None, series=None, last=None, actual=None,
                  ax=None):
    """History (a Series, or the column of a wide frame), the forecast and its
    intervals (``_lo_/_hi_`` and ``_q`` columns of ``predict``'s result).

    column : name, optional
        The forecast column (default: the history's, or the first).
    series : id, optional
        With long frames (``unique_id``, ``ds``), the series to draw (needed when
        there are several).
    last : int, optional
        Show only the last ``last`` points of history.
    actual : pd.Series, optional
        What happened over the forecast period, drawn for comparison.
    """
    ax = _axes(ax)
    if "unique_id" in forecast.columns:
        forecast, series = _one_series(forecast, series, "the forecast")
        forecast = forecast.drop(columns="unique_id")
    if isinstance(history, pd.DataFrame) and "unique_id" in history.columns:
        history, series = _one_series(history, series, "the history")
        history = history.drop(columns="unique_id")
        point = column or forecast.columns[0]
        name = point[: -len("_pred")] if str(point).endswith("_pred") else point
        history = history[name if name in history.columns else history.columns[0]]
        column = point
    if isinstance(history, pd.DataFrame):
        column = column if column is not None else history.columns[0]
        history = history[column]
    if column is None:
        column = history.name if history.name in forecast.columns else forecast.columns[0]
    h = history if last is None else history.iloc[-last:]
    ax.plot(h.index, h.to_numpy(), color="0.2", lw=1.2, label="history")
    for i, (label, lo, hi) in enumerate(_band_pairs(list(forecast.columns), column)):
        ax.fill_between(forecast.index, forecast[lo], forecast[hi], color="C0",
                        alpha=0.15 + 0.15 * i, lw=0, label=label)
    ax.plot(forecast.index, forecast[column].to_numpy(), color="C0", lw=1.8,
            label="forecast")
    if actual is not None:
        ax.plot(actual.index, np.asarray(actual), color="C3", lw=1.2, ls="--",
                label="actual")
    ax.set_title(f"{column}" + (f" [{series}]" if series is not None else "")
                 + ": forecast")
    ax.set_xlabel(history.index.name or "time")
    ax.set_ylabel(str(history.name if history.name is not None else column))
    ax.legend(loc="upper left", frameon=False)
    return ax


def plot_backtest(result, *, history=None, series=None, target=None, ax=None):
    """The windows of a backtest: actuals, each window's forecast and intervals.

    series / target pick one series of a long frame / one target (default: the
    first)."""
    ax = _axes(ax, figsize=(10, 4))
    fc = result.forecasts
    if "unique_id" in fc.columns:
        series = fc["unique_id"].iloc[0] if series is None else series
        fc = fc[fc["unique_id"] == series]
    target = fc["target"].iloc[0] if target is None else target
    fc = fc[fc["target"] == target]
    if history is not None:
        if isinstance(history, pd.DataFrame) and "unique_id" in history.columns:
            h = history[history["unique_id"] == series].set_index("ds")[target]
        elif isinstance(history, pd.DataFrame):
            h = history[target]
        else:
            h = history
        span = fc["ds"].max() - fc["ds"].min()
        h = h[h.index >= fc["ds"].min() - 2 * span] if not isinstance(span, (int, np.integer)) \
            else h
        ax.plot(h.index, h.to_numpy(), color="0.2", lw=1.0, label="actual")
    else:
        ax.plot(fc["ds"], fc["actual"], color="0.2", lw=1.0, label="actual")
    cols = list(fc.columns)
    for w, g in fc.groupby("window"):
        color = f"C{w % 9 + 1}"
        for _, lo, hi in _band_pairs(cols, "forecast"):
            ax.fill_between(g["ds"], g[lo], g[hi], color=color, alpha=0.15, lw=0)
        ax.plot(g["ds"], g["forecast"], color=color, lw=1.8,
                label=f"window {w} (cut-off {_time_label(g['cutoff'].iloc[0])})")
    key = (series, target) if "unique_id" in result.forecasts.columns else target
    mase = result.metrics.loc[key, "mase"]
    ax.set_title(f"{target}" + (f" [{series}]" if series is not None else "") +
                 f": backtest, MASE {mase:.3f} over {fc['window'].nunique()} windows")
    ax.set_xlabel("time")
    ax.set_ylabel(str(target))
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    return ax


def plot_loss(estimator, *, ax=None):
    """Training and validation loss per epoch, with the best epoch marked."""
    ax = _axes(ax, figsize=(6, 4))
    ep = np.arange(1, len(estimator.loss_curve_) + 1)
    ax.plot(ep, estimator.loss_curve_, label="training")
    if estimator.validation_loss_curve_:
        ax.plot(ep, estimator.validation_loss_curve_, label="validation")
    ax.axvline(estimator.best_epoch_, color="0.5", ls=":", label="best epoch")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    loss = "pinball" if getattr(estimator, "quantiles", None) is not None else estimator.loss
    ax.set_ylabel(f"{loss} loss (scaled units)")
    ax.legend(frameon=False)
    return ax
