"""Forecasting from a fitted pandas route: the network's view of the windows, the
direct and recursive forecasts, unscaling, intervals, steps, known future inputs,
and in-sample forecasts. :class:`PanelForecasting` is the half of
:class:`tsrnn.routes.PanelRoute` that reads its fitted state; the other half sets it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsrnn import _warnings, parallel
from tsrnn import data as D
from tsrnn import intervals as I
from tsrnn._config import MIN_WINDOW_SCALE
from tsrnn.routes.frames import forecast_frame, window_frame
from tsrnn.smoothing import Smoothing


def combined(point, smooth, weight):
    """``point`` moved towards ``smooth`` by ``weight`` (where ``smooth`` is NaN:
    ``point`` unchanged)."""
    if not weight:
        return point
    return np.where(np.isfinite(smooth), point + weight * (smooth - point), point)


class PanelForecasting:
    """Forecasting methods of :class:`tsrnn.routes.PanelRoute` (see its attributes)."""

    def check_unchanged(self, params) -> None:
        """The parameters a forecast depends on are those the model was fitted with;
        a ValueError naming any that changed since (``set_params`` after ``fit``)."""
        fitted = {"lookback": self.lookback, "horizon": self.horizon,
                  "strategy": self.strategy, "scaler": self.scaler,
                  "combine": self.combine}
        changed = [f"{k}={params[k]!r} (fitted with {v!r})" for k, v in fitted.items()
                   if params[k] != v]
        if changed:
            raise ValueError(
                f"{', '.join(changed)}: the model forecasts what it was fitted for. "
                "Refit with the new value, or set it back with set_params (fewer "
                "steps: predict(steps=[...])).")

    def predict(self, net, X, future, level, steps=None):
        levels = I.check_levels(level, self.conformal_scores)
        tails, ids, params, panel = self.history_tails(X)
        return self.forecast(net, tails, ids, params, future, levels, steps, panel)

    def fitted_rows(self, ids) -> np.ndarray:
        """Positions of the fitted series ``ids`` among the fitted ones."""
        where = {u: i for i, u in enumerate(self.ids)}
        return np.array([where[u] for u in ids], np.int64)

    # ------------------------------------------------------------- smoothing
    @property
    def combines(self) -> bool:
        return self.smoothing is not None and self.combine_weight > 0

    def smoothing_after(self, panel, ids, steps: int) -> np.ndarray | None:
        """(len(ids), steps, targets) smoothing forecasts after the history of the
        series ``ids``: the fitted one (``panel`` None), or the partner refitted on
        the new history ``panel``; None when the model does not combine."""
        if not self.combines:
            return None
        if panel is None:
            return self.smoothing.forecast(steps)[self.fitted_rows(ids)]
        fitted = Smoothing.fit(panel.blocks(), self.n_targets, self.smoothing.season,
                               ids=list(panel.ids), targets=self.target_names)
        where = {u: i for i, u in enumerate(panel.ids)}
        return fitted.forecast(steps)[[where[u] for u in ids]]

    def history_smoothing(self, panel, starts, mode="refit"):
        """Smoothing forecasts (windows, horizon, targets) of the windows of
        ``panel`` starting at ``starts``, or None when the model does not combine.
        ``mode``: "refit" fits the partner on each series of ``panel``; "fitted"
        runs the fitted partner along series that start where the fitted ones
        did (a backtest's whole series); "continued" runs it on along series that
        continue the fitted ones after their ``lookback``-row tails
        (:meth:`continued`). Running along does not refit: the states follow the
        data, the parameters are the fitted ones."""
        if not self.combines:
            return None
        series = D.series_of(panel.indptr, starts)
        origins = starts + self.lookback - panel.indptr[series]
        blocks = panel.blocks()
        out = np.full((len(starts), self.horizon, self.n_targets), np.nan)
        if mode == "refit":
            fitted = Smoothing.fit(blocks, self.n_targets, self.smoothing.season,
                                   ids=list(panel.ids), targets=self.target_names)
            rows_of = np.arange(panel.n_series)
        else:
            fitted = self.smoothing
            rows_of = self.fitted_rows(panel.ids)
        skip = self.lookback if mode == "continued" else 0
        for i, rows in D.rows_by_series(series):
            out[rows] = fitted.along(rows_of[i], blocks[i][skip:], origins[rows] - skip,
                                     self.horizon, continued=mode == "continued")
        return out

    def with_smoothing(self, outs: dict, smooth) -> dict:
        """Original-unit outputs (:meth:`unscale`) moved by ``combine_weight``
        towards the smoothing forecasts ``smooth`` (same shape as the point
        forecast): the point forecast, and with it every quantile and interval
        bound (the conformal scores are those of the combined forecast)."""
        if smooth is None:
            return outs
        point = outs[""]
        shift = combined(point, smooth, self.combine_weight) - point
        out = {k: v + shift for k, v in outs.items()}
        for v in out.values():
            check_finite_forecast(v)
        return out

    def future_block(self, future, uid, fidx, needed):
        """(len(fidx), k) known future values for one series at the forecast stamps
        ``fidx``, validated at the 0-based positions ``needed`` (zeros elsewhere: the
        model does not read them)."""
        k = len(self.future_exog)
        out = np.zeros((len(fidx), k))
        if k == 0:
            return out
        who = "" if uid is None else f" for series {uid!r}"
        want = fidx[needed]
        if future is None:
            raise ValueError(
                f"This model uses known future values of {self.future_exog}: pass "
                f"future= with {len(want)} rows{who}, indexed by {list(want[:2])}..."
            )
        if not isinstance(future, pd.DataFrame):
            raise TypeError("future must be a pandas DataFrame.")
        missing_cols = [c for c in self.future_exog if c not in future.columns]
        if missing_cols:
            raise ValueError(f"future is missing the column(s) {missing_cols}.")
        if uid is not None and "unique_id" in future.columns:
            f = future[future["unique_id"] == uid].set_index("ds")
        else:
            f = future
        absent = want[~want.isin(f.index)]
        if len(absent):
            raise ValueError(
                f"future must hold the forecast timestamps{who} "
                f"{[str(t) for t in want[:3]]}{' ...' if len(want) > 3 else ''}; it "
                f"lacks {[str(t) for t in absent[:3]]}"
                f"{' and more' if len(absent) > 3 else ''}.")
        v = f.loc[want, self.future_exog].to_numpy(dtype=np.float64)
        if v.shape[0] != len(want) or not np.isfinite(v).all():
            raise ValueError(f"future{who} must have one finite row at each of "
                             f"{want[0]} .. {want[-1]}.")
        out[needed] = v
        return out

    def network_windows(self, x, steps):
        """(xin, base, scale) of windows ``x`` for ``steps`` forecast steps: the
        network's input, the naive baseline and the unit of the network's output
        (:func:`tsrnn.data.network_windows`, which training uses too)."""
        return D.network_windows(x, self.n_targets, steps, self.season, MIN_WINDOW_SCALE,
                                 self.window_scaling)

    def predict_scaled(self, net, xs, futs):
        """Forecasts in scaled units from windows ``xs`` (n, lookback, channels) and
        known futures ``futs`` (n, steps, k): (n, steps, targets, Q), Q = 1 without
        quantiles; ``steps`` is ``horizon`` for a direct model, and as many as
        ``futs`` has for a recursive one. Batched forwards over many windows (direct)
        or per step (recursive)."""
        with parallel.one_blas_thread():  # the same bits whatever BLAS's threads
            return self._predict_scaled(net, xs, futs)

    def _predict_scaled(self, net, xs, futs):
        nt, H, Q = self.n_targets, self.horizon, self.n_quantiles
        n = len(xs)
        if self.strategy == "direct":
            pred = np.empty((n, H * nt * Q), np.float32)
            flat = futs.reshape(n, -1)
            xin, base, scale = self.network_windows(xs, H)
            rows = net.inference_rows(xs.shape[1])
            for lo in range(0, n, rows):
                pred[lo : lo + rows], _ = net.forward(
                    np.ascontiguousarray(xin[lo : lo + rows]), flat[lo : lo + rows])
            pred = pred.reshape(n, H, nt, Q)
            pred *= scale[..., None]
            pred += base[..., None]
            return np.sort(pred, axis=-1) if Q > 1 else pred
        H = futs.shape[1]  # recursive: as many steps as asked for
        pred = np.empty((n, H, nt, 1), np.float32)
        window = np.array(xs, dtype=np.float32)
        fut_cols = self.net_fut_cols
        for h in range(H):
            xin, base, scale = self.network_windows(window, 1)
            p, _ = net.forward(xin, futs[:, h, :])
            step = p.reshape(n, nt) * scale[:, 0] + base[:, 0]
            pred[:, h, :, 0] = step
            nxt = np.empty((n, 1, window.shape[2]), np.float32)
            nxt[:, 0, :nt] = step
            if futs.shape[2]:
                nxt[:, 0, fut_cols] = futs[:, h, :]
            window = np.concatenate([window[:, 1:], nxt], axis=1)
        return pred

    def unscale(self, pred4, locs, scales, levels=(), x=None, steps=None):
        """Scaled (n, S, targets, Q) -> dict of original-unit (n, S, targets) arrays:
        "point", one per quantile (q<level>) and lo/hi per conformal level (``x``:
        the scaled windows forecast from, needed for ``levels``; ``steps``: the
        1-based steps of the S forecasts, default 1..S)."""
        rows = slice(None) if steps is None else np.asarray(steps) - 1
        nt = self.n_targets
        loc = np.asarray(locs)[:, None, :nt]
        scale = np.asarray(scales)[:, None, :nt]
        point = I.point_forecast(pred4, self.quantiles)
        out = {"": point * scale + loc}
        for j, q in enumerate(self.quantiles):
            out[f"_q{q:g}"] = pred4[..., j].astype(np.float64) * scale + loc
        for lv in levels:
            # (H, targets) in score units -> (n, H, targets) scaled units
            half = (I.conformal_halfwidth(self.conformal_scores, lv)[rows]
                    * self.interval_scale(x))
            out[f"_lo_{lv:g}"] = (point - half) * scale + loc
            out[f"_hi_{lv:g}"] = (point + half) * scale + loc
        for v in out.values():
            check_finite_forecast(v)
        return out

    def forecast_windows(self, net, x, f, locs, scales, levels):
        """Original-unit forecasts (see :meth:`unscale`) from scaled windows ``x``
        and known futures ``f`` of series scaled by ``locs``/``scales``."""
        return self.unscale(self.predict_scaled(net, x, f), locs, scales, levels, x)

    def complete_windows(self, raws, tails, ids, params):
        """The series whose last ``lookback`` rows (``raws``, stacked) are complete (a
        model fitted with ``missing="skip"`` keeps gaps in its history): the others
        are refused with a ValueError naming series, column and timestamp; in a long
        frame they are left out with a warning instead, as long as one series
        remains."""
        bad = np.flatnonzero(~np.isfinite(raws).all(axis=(1, 2))).tolist()
        if not bad:
            return raws, tails, ids, params
        where = []
        for i in bad[:5]:
            raw, idx = tails[i]
            r, c = np.argwhere(~np.isfinite(raw))[0]
            who = "" if ids[i] is None else f"series {ids[i]!r}: "
            where.append(f"{who}column {self.channels[c]!r} at {idx[r]}")
        msg = (f"{len(bad)} of {len(tails)} series have" if len(tails) > 1 else "It has")
        msg += (f" a missing value in the last lookback={self.lookback} rows a forecast "
                "starts from (" + "; ".join(where) + (", ..." if len(bad) > 5 else "")
                + ").")
        if self.kind != "long" or len(bad) == len(tails):
            raise ValueError(msg + " Pass history that ends in complete rows "
                             "(predict(X)), or fill the gap.")
        _warnings.warn(msg + " Their forecasts are left out of the result.")
        keep = [i for i in range(len(tails)) if i not in set(bad)]
        return (raws[keep], [tails[i] for i in keep], [ids[i] for i in keep],
                [params[i] for i in keep])

    def check_steps(self, steps, levels, head) -> tuple[np.ndarray, np.ndarray]:
        """The 1-based steps asked for (default 1..horizon) and the 0-based steps whose
        known future inputs the model reads."""
        H = self.horizon
        if steps is None:
            steps = np.arange(1, H + 1)
        else:
            raw = np.atleast_1d(np.asarray(steps))
            if raw.size == 0 or raw.ndim != 1 or raw.dtype.kind not in "iu" \
                    or (raw < 1).any() or np.unique(raw).size != raw.size:
                raise ValueError(f"steps must be distinct positive integers (1 is the "
                                 f"first step after the history); got {steps!r}.")
            steps = np.sort(raw.astype(np.int64))
        top = int(steps[-1])
        if top > H and self.strategy == "direct":
            raise ValueError(
                f"step {top} is beyond the horizon: this direct model forecasts steps "
                f"1..{H}. Refit with horizon >= {top}, or use strategy='recursive', "
                "which rolls forward as far as asked.")
        if levels and top > H:
            raise ValueError(f"conformal intervals (level=) cover steps 1..{H}, the "
                             f"held-out errors' horizon; step {top} has none.")
        if self.strategy == "recursive":
            needed = np.arange(top)  # every step rolled through
        elif head == "mlp":
            needed = steps - 1  # the decoder reads each step's own inputs only
        else:
            needed = np.arange(H)  # the linear head reads them all
        return steps, needed

    def forecast(self, net, tails, ids, params, future, levels=(), steps=None,
                 panel=None):
        raws, tails, ids, params = self.complete_windows(
            np.stack([raw for raw, _ in tails]), tails, ids, params)
        steps, needed = self.check_steps(steps, levels, net.head)
        H = self.horizon if self.strategy == "direct" else int(steps[-1])
        n = len(tails)
        C, cal = len(self.channels), self.calendar
        xs = np.empty((n, self.lookback, C + 2 * len(cal)), np.float32)
        fidxs = D.future_indexes([idx for _, idx in tails], self.freq, H)
        locs = np.stack([p[0] for p in params])[:, None, :]  # (n, 1, C)
        scales = np.stack([p[1] for p in params])[:, None, :]
        xs[:, :, :C] = (raws - locs) / scales
        futs = np.zeros((n, H, 0), np.float32)
        if self.future_exog:  # known future inputs: looked up and scaled per series
            futs = np.asarray([
                (self.future_block(future, ids[i], fidxs[i], needed) - loc[self.fut_cols])
                / scale[self.fut_cols] for i, (loc, scale) in enumerate(params)
            ], np.float32).reshape(n, H, -1)
        if cal:  # the calendar columns come after the data, as in fit
            xs[:, :, C:] = D.stacked_calendar_values(
                [idx for _, idx in tails], cal).reshape(n, self.lookback, -1)
            futs = np.concatenate([futs, D.stacked_calendar_values(fidxs, cal).reshape(
                n, H, -1)], axis=2)
        pred4 = self.predict_scaled(net, xs, futs)[:, steps - 1]
        outs = self.unscale(pred4, [p[0] for p in params], [p[1] for p in params],
                            levels, xs, steps)
        smooth = self.smoothing_after(panel, ids, H)
        if smooth is not None:
            outs = self.with_smoothing(outs, smooth[:, steps - 1])
        return forecast_frame(self, outs, ids, fidxs.select(steps - 1))

    def continued(self, X):
        """The fitted history's tails followed by ``X``, which must continue them
        (each series of ``X`` a fitted one, starting the step after its fitted end,
        with at least ``horizon`` rows): a packed panel, and the number of rows of
        ``X`` per series."""
        panel = self.pack_history(X)
        blocks, indexes, n_new = [], [], []
        where = {u: i for i, u in enumerate(self.ids)}
        for i, uid in enumerate(panel.ids):
            who = "X" if uid is None else f"series {uid!r} of X"
            if uid not in where:
                raise ValueError(f"{who} was not fitted: score() continues the fitted "
                                 "series.")
            raw, tail_idx = self.tails[where[uid]]
            idx = panel.index[i]
            nxt = D.future_index(tail_idx, self.freq, 1)[0]
            if idx[0] != nxt:
                raise ValueError(f"{who} must continue the fitted history, which ends "
                                 f"at {tail_idx[-1]}: it starts at {idx[0]}, not {nxt}.")
            if len(idx) < self.horizon:
                raise ValueError(f"{who} has {len(idx)} rows; a forecast of horizon "
                                 f"{self.horizon} needs at least that many to score.")
            blocks.append(np.vstack([raw, panel.values[panel.indptr[i]:panel.indptr[i + 1]]]))
            indexes.append(tail_idx.append(idx))
            n_new.append(len(idx))
        return panel.with_rows(blocks, indexes, self.freq), np.asarray(n_new)

    def window_forecasts(self, net, values, params, starts, series, levels=(),
                         rows=4096, smooth=None):
        """Forecasts from the windows of scaled ``values`` starting at ``starts``
        (of series ``series``, scaled by ``params``), ``rows`` windows at a time,
        combined with the smoothing forecasts ``smooth`` of the same windows:
        yields (starts, series, :meth:`unscale`'s dict) per block."""
        L, H, nt = self.lookback, self.horizon, self.n_targets
        for lo in range(0, len(starts), rows):
            s, w = starts[lo : lo + rows], series[lo : lo + rows]
            x, _, f = D.gather_windows(values, s, L, H, nt, self.net_fut_cols)
            outs = self.forecast_windows(net, x, f, [params[i][0] for i in w],
                                         [params[i][1] for i in w], levels)
            if smooth is not None:
                outs = self.with_smoothing(outs, smooth[lo : lo + rows])
            yield s, w, outs

    def score(self, net, X) -> float:
        """Minus the mean MASE of rolling forecasts over ``X`` (see
        :meth:`tsrnn.TSRNNRegressor.score`)."""
        panel, n_new = self.continued(X)
        values, params = self.scale_history(panel)
        L, H, nt = self.lookback, self.horizon, self.n_targets
        starts = np.concatenate([panel.indptr[i] + np.arange(n - H + 1)
                                 for i, n in enumerate(n_new)])
        which = np.repeat(np.arange(panel.n_series), n_new - H + 1)
        err = np.zeros((panel.n_series, nt))
        smooth = self.history_smoothing(panel, starts, mode="continued")
        for s, w, outs in self.window_forecasts(net, values, params, starts, which,
                                                smooth=smooth):
            actual = panel.values[(s + L)[:, None] + np.arange(H), :nt]
            np.add.at(err, w, np.abs(actual - outs[""]).sum(axis=1))
        err /= ((n_new - H + 1) * H)[:, None]  # mean absolute error per series
        scale = self.mase_scale[self.fitted_rows(panel.ids)]
        return -float(np.mean(err / scale))

    def insample(self, net, X, step_size, levels, partial=False):
        """Forecasts from every ``step_size``-th window of history ``X`` whose
        ``horizon`` targets are in ``X`` (counted back from the last one), batched,
        without refitting: a long frame like :func:`tsrnn.backtest`'s ``forecasts``
        (``unique_id`` for long input, ``target``, ``cutoff``, ``ds``, ``step``,
        ``actual``, ``forecast`` and its intervals). With ``partial``, also the last
        windows, whose later steps fall after ``X``: only their steps inside ``X``."""
        panel = self.pack_history(X)
        if partial:
            if self.future_exog and net.head == "linear" and self.strategy == "direct":
                raise ValueError(
                    "partial windows need the known future inputs of steps after X, "
                    "which the linear head reads for every step; use head='mlp'.")
            panel = _padded(panel, self.horizon, self.freq)
        values, params = self.scale_history(panel)
        L, H = self.lookback, self.horizon
        starts, series = D.window_starts(panel.indptr, L, H)
        if starts.size == 0:
            raise ValueError(f"X has no window of lookback + horizon = {L + H} rows.")
        keep = np.zeros(starts.size, bool)
        for _, rows in D.rows_by_series(series):
            keep[rows[::-1][::step_size]] = True
        starts, series = starts[keep], series[keep]
        smooth = self.history_smoothing(panel, starts)
        frame = pd.concat([window_frame(panel, s + L, w, outs) for s, w, outs in
                           self.window_forecasts(net, values, params, starts, series,
                                                 levels, smooth=smooth)],
                          ignore_index=True)
        if partial:  # the padded steps after X
            frame = frame[frame["actual"].notna()].reset_index(drop=True)
        return frame


def _padded(panel, horizon, freq):
    """``panel`` with ``horizon`` rows after each series: targets NaN (no actual),
    other channels 0 (never read by the steps that are kept)."""
    blocks, indexes = [], []
    for i, v in enumerate(panel.blocks()):
        pad = np.zeros((horizon, v.shape[1]))
        pad[:, : panel.n_targets] = np.nan
        blocks.append(np.vstack([v, pad]))
        indexes.append(panel.index[i].append(D.future_index(panel.index[i], freq,
                                                            horizon)))
    return panel.with_rows(blocks, indexes)


def check_finite_forecast(pred):
    if not np.isfinite(pred).all():
        raise FloatingPointError(
            "The forecast is not finite (the network diverged or the input holds "
            "extreme values); refusing to return NaN/inf. Refit with a lower "
            "learning_rate or check the input."
        )
