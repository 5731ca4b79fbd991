"""Forecast arrays as pandas frames: ``predict``'s result, and the one-row-per-window
layout of backtests and in-sample forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd


def point_names(route) -> list:
    """The forecast columns of ``predict``: ``<target>_pred`` for a long frame, the
    Series' name, or the target columns of a wide frame."""
    if route.kind == "long":
        return [f"{t}_pred" for t in route.target_names]
    if route.kind == "series" and route.series_name is not None:
        return [route.series_name]
    return list(route.target_names)


def forecast_frame(route, outs, ids, fidxs) -> pd.DataFrame:
    """Forecast arrays (``outs``: suffix -> (series, steps, targets)) at the stamps
    ``fidxs`` -> ``predict``'s result: a frame indexed by time, or a long frame."""
    names = point_names(route)
    if route.kind != "long":
        cols = {(nm if sfx == "" else f"{nm}{sfx}"): outs[sfx][0, :, k]
                for k, nm in enumerate(names) for sfx in outs}
        return pd.DataFrame(cols, index=fidxs[0])
    H = fidxs.horizon
    uid = pd.Series(ids).repeat(H).reset_index(drop=True)  # keeps the ids' dtype
    frame = pd.DataFrame({"unique_id": uid, "ds": fidxs.stacked})
    for k, nm in enumerate(names):
        for sfx, arr in outs.items():
            frame[f"{nm}{sfx}"] = arr[:, :, k].ravel()
    return frame


def nixtla_names(frame: pd.DataFrame, route, alias: str) -> pd.DataFrame:
    """``predict``'s result with the forecast columns named as Nixtla's tools name a
    model's: ``<alias>``, ``<alias>-lo-<level>``, ``<alias>-hi-<level>``,
    ``<alias>-q-<percent>``; with several targets ``<alias>_<target>`` first."""
    names = point_names(route)
    single = len(names) == 1
    renames = {}
    for name, target in zip(names, route.target_names):
        model = alias if single else f"{alias}_{target}"
        for col in frame.columns:
            if col == name:
                renames[col] = model
            elif isinstance(col, str) and col.startswith(f"{name}_"):
                kind, _, value = col[len(str(name)) + 1 :].partition("_")
                if kind in ("lo", "hi"):
                    renames[col] = f"{model}-{kind}-{value}"
                elif kind.startswith("q"):
                    renames[col] = f"{model}-q-{float(kind[1:]) * 100:g}"
    return frame.rename(columns=renames)


def nixtla_windows(frame: pd.DataFrame, alias: str = "TSRNN") -> pd.DataFrame:
    """A frame of window forecasts (a backtest's ``forecasts``, or
    ``predict_insample``'s) in the layout of Nixtla's ``cross_validation``, which
    ``utilsforecast.evaluation.evaluate`` takes: ``unique_id``, ``ds``, ``cutoff``,
    ``y`` and the model's columns (``<alias>``, ``<alias>-lo-80``, ...). A series
    with several targets becomes one ``unique_id`` per target (``<id>/<target>``;
    the target alone for a wide frame)."""
    out = pd.DataFrame()
    targets = frame["target"].astype(str)
    if "unique_id" in frame.columns:
        several = frame["target"].nunique() > 1
        out["unique_id"] = (frame["unique_id"].astype(str) + "/" + targets) if several \
            else frame["unique_id"]
    else:
        out["unique_id"] = targets
    out["ds"], out["cutoff"], out["y"] = frame["ds"], frame["cutoff"], frame["actual"]
    for col in frame.columns:
        if col == "forecast":
            out[alias] = frame[col]
        elif col.startswith("forecast_lo_") or col.startswith("forecast_hi_"):
            out[f"{alias}-{col[9:11]}-{col[12:]}"] = frame[col]
        elif col.startswith("forecast_q"):
            out[f"{alias}-q-{float(col[10:]) * 100:g}"] = frame[col]
    return out


def window_frame(panel, first, which, outs, extra=None) -> pd.DataFrame:
    """One row per (window, step, target), targets fastest, of forecasts whose first
    step is at packed row ``first`` of series ``which`` (arrays of one entry per
    window): ``unique_id`` (long input), ``target``, the ``extra`` columns (name ->
    one value per window), ``cutoff``, ``ds``, ``step``, ``actual`` and the
    forecast columns."""
    H, nt = outs[""].shape[1], panel.n_targets
    first, which = np.asarray(first), np.asarray(which)
    pos = first - panel.indptr[which]
    empty = panel.index[0][:0]
    ds = empty.append([panel.index[i][p : p + H] for p, i in zip(pos, which)])
    cutoff = empty.append([panel.index[i][p - 1 : p] for p, i in zip(pos, which)])
    cols = {"target": np.tile(np.asarray(panel.target_names, dtype=object),
                              len(which) * H)}
    for name, per_window in (extra or {}).items():
        cols[name] = np.repeat(per_window, H * nt)
    cols.update({"cutoff": np.repeat(cutoff, H * nt),
                 "ds": np.repeat(ds, nt),
                 "step": np.tile(np.repeat(np.arange(1, H + 1), nt), len(which)),
                 "actual": panel.values[first[:, None] + np.arange(H), :nt].ravel()})
    for sfx, arr in outs.items():
        cols[f"forecast{sfx}"] = arr.ravel()
    frame = pd.DataFrame(cols)
    if panel.kind == "long":
        frame.insert(0, "unique_id", pd.Series(panel.ids).iloc[
            np.repeat(which, H * nt)].to_numpy())
    return frame
