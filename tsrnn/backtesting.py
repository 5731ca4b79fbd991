"""Rolling-origin backtests: forecasts from several cut-off points, with metrics.

Windows are counted back from the end of each series: the last window forecasts the
last ``horizon`` points, each earlier one starts ``step`` points before. The model is
refit on the data before a window's cut-off every window (``refit=True``), every
``k`` windows (``refit=k``) or once, before the first window (``refit=False``). All
windows served by one fitted model are forecast in one batched pass over every
series and origin: there is no Python loop over origins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from tsrnn import data as D

__all__ = ["BacktestResult", "backtest", "season_length_for"]

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


def backtest(estimator, data, horizon=None, n_windows=3, *, step=None, refit=True,
             level=None, season_length=None, target=None, future_exog=None):
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

    panel = D.pack(data, target=target, freq=est.freq, missing=est.missing)
    n_drop = [H + (n_windows - 1 - w) * step for w in range(n_windows)]
    D.check_min_length(
        panel, est.lookback + H + n_drop[0],
        f"lookback + horizon (to train) + horizon + (n_windows - 1) * step (to test) = "
        f"{est.lookback} + {H} + {H} + {n_windows - 1} * {step}")
    m = season_length or season_length_for(panel.freq)
    nt = panel.n_targets
    lengths = panel.lengths()

    rows = []
    model = None
    block = []
    for w in range(n_windows + 1):
        if w == n_windows or w in refit_at:
            if block:
                rows.append(_forecast_block(model, data, panel, block, n_drop, levels, m))
            if w == n_windows:
                break
            model = clone(est).fit(_truncate(data, panel, n_drop[w]), target=target,
                                   future_exog=future_exog)
            block = []
        block.append(w)
    fc = pd.concat(rows, ignore_index=True)
    sort_keys = (["unique_id"] if panel.kind == "long" else []) + ["target", "window", "ds"]
    fc = fc.sort_values(sort_keys, kind="stable", ignore_index=True)
    metrics = _metrics(fc, panel, levels, nt, lengths, n_drop, m)
    overall = metrics.mean(numeric_only=True)
    return BacktestResult(fc, metrics, overall)


def _forecast_block(model, data, panel, windows, n_drop, levels, m):
    """Forecasts of one fitted model for the given windows of every series, in one
    batched pass."""
    values, mpanel, params = model._scaled_panel(data)
    L, H, nt = model.lookback, model.horizon, model._n_targets
    lengths = mpanel.lengths()
    starts, which = [], []
    for i in range(mpanel.n_series):
        for w in windows:
            starts.append(mpanel.indptr[i] + lengths[i] - n_drop[w] - L)
            which.append((i, w))
    starts = np.asarray(starts, np.int64)
    x, _, f = D.gather_windows(values, starts, L, H, nt, model._fut_cols)
    pred4 = model._predict_scaled(x, f)
    locs = [params[i][0] for i, _ in which]
    scales = [params[i][1] for i, _ in which]
    outs = model._unscale(pred4, locs, scales, levels)
    frames = []
    for r, (i, w) in enumerate(which):
        a = mpanel.indptr[i] + lengths[i] - n_drop[w]
        idx = mpanel.index[i]
        actual = mpanel.values[a : a + H, :nt]
        for k, name in enumerate(mpanel.target_names):
            f_ = {"target": name, "window": w, "cutoff": idx[a - mpanel.indptr[i] - 1],
                  "ds": idx[a - mpanel.indptr[i] : a - mpanel.indptr[i] + H],
                  "actual": actual[:, k]}
            for sfx, arr in outs.items():
                f_[f"forecast{sfx}"] = arr[r, :, k]
            frame = pd.DataFrame(f_)
            if mpanel.kind == "long":
                frame.insert(0, "unique_id", mpanel.ids[i])
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _metrics(fc, panel, levels, nt, lengths, n_drop, m):
    keys = (["unique_id"] if panel.kind == "long" else []) + ["target"]
    qcols = sorted(c for c in fc.columns if c.startswith("forecast_q"))
    out = []
    for i in range(panel.n_series):
        v = panel.values[panel.indptr[i] : panel.indptr[i + 1]]
        for k, name in enumerate(panel.target_names):
            sel = fc["target"] == name
            if panel.kind == "long":
                sel &= fc["unique_id"] == panel.ids[i]
            g = fc[sel]
            row = dict(zip(keys, ([panel.ids[i]] if panel.kind == "long" else []) + [name]))
            mases = []
            for w, gw in g.groupby("window"):
                train = v[: lengths[i] - n_drop[w], k]
                lag = m if len(train) > m else 1
                scale = np.mean(np.abs(train[lag:] - train[:-lag]))
                mae = np.mean(np.abs(gw["actual"] - gw["forecast"]))
                mases.append(mae / scale if scale > 0 else np.nan)
            row["mase"] = float(np.mean(mases))
            a, f = g["actual"].to_numpy(), g["forecast"].to_numpy()
            den = np.abs(a) + np.abs(f)
            row["smape"] = float(np.mean(np.where(den > 0, 200 * np.abs(a - f) /
                                                  np.where(den > 0, den, 1), 0.0)))
            row["rmse"] = float(np.sqrt(np.mean((a - f) ** 2)))
            for lv in levels:
                lo, hi = g[f"forecast_lo_{lv:g}"], g[f"forecast_hi_{lv:g}"]
                row[f"coverage_{lv:g}"] = float(np.mean((a >= lo) & (a <= hi)))
            if len(qcols) >= 2:
                lo, hi = g[qcols[0]], g[qcols[-1]]
                row[f"coverage_{qcols[0][9:]}-{qcols[-1][10:]}"] = float(
                    np.mean((a >= lo) & (a <= hi)))
            out.append(row)
    return pd.DataFrame(out).set_index(keys)
