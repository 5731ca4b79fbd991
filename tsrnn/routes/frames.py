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
