"""Rolling-origin backtests: forecasts from several cut-off points, with metrics.

Windows are counted back from the end of each series: the last window forecasts the
last ``horizon`` points, each earlier one starts ``step`` points before. The model is
refit on the data before a window's cut-off every window (``refit=True``), every
``k`` windows (``refit=k``) or once, before the first window (``refit=False``). All
windows served by one fitted model are forecast in one batched pass over every
series and origin: there is no Python loop over origins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import clone

from tsrnn import data as D
from tsrnn.data.seasons import season_length_for
from tsrnn.routes.frames import nixtla_windows, window_frame

if TYPE_CHECKING:
    from tsrnn.estimator import TSRNNRegressor

__all__ = ["BacktestResult", "backtest", "season_length_for"]

@dataclass
class BacktestResult:
    """What :func:`backtest` returns.

    forecasts : long DataFrame, one row per (series, target, window, step):
        ``unique_id`` (long input), ``target``, ``window``, ``cutoff`` (last
        timestamp seen), ``ds``, ``actual``, ``forecast`` and, where asked for,
        ``forecast_q<q>`` and ``forecast_lo_<level>`` / ``forecast_hi_<level>``.
    metrics : DataFrame, one row per series and target: ``mase``, ``smape`` (percent),
        ``rmse`` and ``coverage_<level>`` (fraction of actuals inside the interval).
    overall : Series, the mean of each metric over series.
    """

    forecasts: pd.DataFrame
    metrics: pd.DataFrame
    overall: pd.Series

    def to_nixtla(self, alias: str = "TSRNN") -> pd.DataFrame:
        """The forecasts in the layout of Nixtla's ``cross_validation`` (``unique_id``,
        ``ds``, ``cutoff``, ``y``, ``<alias>``, ``<alias>-lo-80``, ...), which
        ``utilsforecast.evaluation.evaluate`` takes."""
        return nixtla_windows(self.forecasts, alias)

    def plot(self, ax=None, **kw):
        from tsrnn.plotting import plot_backtest

        return plot_backtest(self, ax=ax, **kw)


def _truncate(data, panel, n_drop):
    """``data`` without the last ``n_drop`` rows of each series (never modified)."""
    if n_drop == 0:
        return data
    if panel.kind != "long":
        return data.iloc[: len(data) - n_drop]
    from_end = data.groupby("unique_id", sort=False).cumcount(ascending=False)
    return data[from_end.to_numpy() >= n_drop]


def _refit_points(n_windows, refit):
    if refit is True:
        return set(range(n_windows))
    if refit is False or refit is None:
        return {0}
    if isinstance(refit, (int, np.integer)) and refit >= 1:
        return set(range(0, n_windows, int(refit)))
    raise ValueError(f"refit must be True, False or a positive int; got {refit!r}.")


def backtest(estimator: TSRNNRegressor, data: pd.Series | pd.DataFrame,
             horizon: int | None = None, n_windows: int = 3, *, step: int | None = None,
             refit: bool | int = True, level: Sequence[float] | None = None,
             season_length: int | None = None, target: str | list | None = None,
             future_exog: list | None = None) -> BacktestResult:
    """Rolling-origin evaluation of ``estimator`` on pandas ``data``.

    Parameters
    ----------
    estimator : TSRNNRegressor (fitted or not; it is cloned, never changed)
    data : pd.Series, wide or long pd.DataFrame, as for ``fit``
    horizon : int, default the estimator's ``horizon``
    n_windows : int, default 3
        Number of forecast origins per series.
    step : int, default ``horizon``
        Distance between consecutive origins.
    refit : bool or int, default True
        Refit every window (True), every ``refit`` windows (int), or once (False).
    level : list of float, optional
        Conformal interval levels (percent) to forecast and score.
    season_length : int, optional
        Seasonal period of the MASE scale (default from the frequency: monthly 12,
        hourly 24, daily 7, ...).
    target, future_exog :
        Passed to ``fit``.

    Returns
    -------
    BacktestResult
    """
    est = clone(estimator)
    if horizon is not None:
        est.set_params(horizon=int(horizon))
    H = est.horizon
    step = H if step is None else int(step)
    if not (isinstance(n_windows, (int, np.integer)) and n_windows >= 1):
        raise ValueError(f"n_windows must be a positive int; got {n_windows!r}.")
    if step < 1:
        raise ValueError(f"step must be a positive int; got {step!r}.")
    refit_at = _refit_points(n_windows, refit)
    levels = [] if level is None else [float(v) for v in np.atleast_1d(level)]

    # Packed once, with the columns every refit model sees (forecasts start from
    # complete windows only, so gaps are refused here as in predict).
    panel = D.pack(data, target=target, freq=est.freq, missing="history")
    n_drop = [H + (n_windows - 1 - w) * step for w in range(n_windows)]
    D.check_min_length(
        panel, est.lookback + H + n_drop[0],
        f"lookback + horizon (to train) + horizon + (n_windows - 1) * step (to test) = "
        f"{est.lookback} + {H} + {H} + {n_windows - 1} * {step}")
    m = season_length or season_length_for(panel.freq)
    lengths = panel.lengths()

    rows = []
    model = None
    block = []
    for w in range(n_windows + 1):
        if w == n_windows or w in refit_at:
            if block:
                rows.append(_forecast_block(model, panel, block, n_drop, levels))
            if w == n_windows:
                break
            model = clone(est).fit(_truncate(data, panel, n_drop[w]), target=target,
                                   future_exog=future_exog)
            block = []
        block.append(w)
    fc = pd.concat(rows, ignore_index=True)
    sort_keys = (["unique_id"] if panel.kind == "long" else []) + ["target", "window", "ds"]
    fc = fc.sort_values(sort_keys, kind="stable", ignore_index=True)
    metrics = _metrics(fc, panel, levels, lengths, n_drop, m)
    overall = metrics.mean(numeric_only=True)
    return BacktestResult(fc, metrics, overall)


def _forecast_block(model, panel, windows, n_drop, levels):
    """Forecasts of one fitted model for the given windows of every series, in one
    batched pass, as one long frame."""
    route = model.route_
    values, params = route.scale_history(panel)
    lengths = panel.lengths()
    series = np.repeat(np.arange(panel.n_series), len(windows))
    window = np.tile(np.asarray(windows, np.int64), panel.n_series)
    first = (panel.indptr[series] + lengths[series]
             - np.asarray(n_drop, np.int64)[window])  # each window's first forecast row
    starts = first - route.lookback
    smooth = route.history_smoothing(panel, starts, mode="fitted")
    blocks = route.window_forecasts(model.net_, values, params, starts, series, levels,
                                    smooth=smooth)
    return pd.concat([window_frame(panel, s + route.lookback, w, outs,
                                   extra={"window": window[lo : lo + len(s)]})
                      for lo, (s, w, outs) in _offsets(blocks)], ignore_index=True)


def _offsets(blocks):
    """(offset of the block, block) for the blocks of window_forecasts."""
    lo = 0
    for block in blocks:
        yield lo, block
        lo += len(block[0])


def _metrics(fc, panel, levels, lengths, n_drop, m):
    """MASE (mean over windows of each window's MAE over the in-sample seasonal-naive
    error of its training data), sMAPE, RMSE and coverage, per series and target."""
    keys = (["unique_id"] if panel.kind == "long" else []) + ["target"]
    nt = panel.n_targets
    scales = []  # MASE denominators per (series, target, window)
    for i in range(panel.n_series):
        v = panel.values[panel.indptr[i] : panel.indptr[i + 1], :nt]
        for w in range(len(n_drop)):
            train = v[: lengths[i] - n_drop[w]]
            lag = m if len(train) > m else 1
            sc = np.mean(np.abs(train[lag:] - train[:-lag]), axis=0)
            for k, name in enumerate(panel.target_names):
                scales.append(([panel.ids[i]] if panel.kind == "long" else [])
                              + [name, w, sc[k]])
    scales = pd.DataFrame(scales, columns=keys + ["window", "scale"])
    a, f = fc["actual"].to_numpy(), fc["forecast"].to_numpy()
    den = np.abs(a) + np.abs(f)
    terms = fc[keys + ["window"]].assign(
        abs_err=np.abs(a - f), sq_err=(a - f) ** 2,
        smape=np.where(den > 0, 200 * np.abs(a - f) / np.where(den > 0, den, 1), 0.0))
    qcols = sorted(c for c in fc.columns if c.startswith("forecast_q"))
    bands = [(f"coverage_{lv:g}", f"forecast_lo_{lv:g}", f"forecast_hi_{lv:g}")
             for lv in levels]
    if len(qcols) >= 2:
        bands.append((f"coverage_{qcols[0][9:]}-{qcols[-1][10:]}", qcols[0], qcols[-1]))
    for name, lo, hi in bands:
        terms[name] = ((a >= fc[lo].to_numpy()) & (a <= fc[hi].to_numpy())).astype(float)
    per_window = (terms.groupby(keys + ["window"], sort=False)["abs_err"].mean()
                  .reset_index().merge(scales, on=keys + ["window"]))
    per_window["mase"] = np.where(per_window["scale"] > 0,
                                  per_window["abs_err"] / per_window["scale"], np.nan)
    g = terms.groupby(keys, sort=False)
    out = pd.DataFrame({"mase": per_window.groupby(keys, sort=False)["mase"].mean(),
                        "smape": g["smape"].mean(),
                        "rmse": np.sqrt(g["sq_err"].mean())})
    for name, _, _ in bands:
        out[name] = g[name].mean()
    order = pd.MultiIndex.from_tuples(
        [((u, t) if panel.kind == "long" else (t,)) for u in panel.ids
         for t in panel.target_names], names=keys)
    out = out.reindex(order if panel.kind == "long" else order.get_level_values(0))
    return out.astype(float)
