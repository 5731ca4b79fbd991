"""The pandas route: a Series, a wide frame or a long frame in, forecasts indexed by
future timestamps out.

At fit the data is packed once (:func:`tsrnn.data.pack`), scaled per series, and
served to training as windows by index. What a forecast needs afterwards lives
here: the columns, the scaler of every series, the last ``lookback`` rows of each
series, the baseline lag, window scaling, the calendar cycles and the conformal
scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsrnn import data as D
from tsrnn import intervals as I
from tsrnn._config import COMBINE_WEIGHT, MIN_WINDOW_SCALE
from tsrnn.data.codec import object_array, plain
from tsrnn.routes.forecasting import PanelForecasting, combined
from tsrnn.smoothing import Smoothing
from tsrnn.training import TrainingPlan


class PanelRoute(PanelForecasting):
    """Fitted state and forecasting of a model fitted on pandas data.

    Attributes
    ----------
    lookback, horizon : int
    strategy : {"direct", "recursive"}
    scaler : str or None
        Fits a new series' scaling at predict.
    quantiles : list of float
    channels : list
        Network input columns of the data, targets first, then exogenous.
    n_targets : int
    target_names, future_exog : list
    kind : {"series", "wide", "long"}
    freq : pandas offset, int or None
    ids : list
        Series ids (``[None]`` for a Series or a wide frame).
    series_name : name of a fitted Series, or None
    scaler_params : dict of id to (loc, scale) arrays of shape (channels,)
    tails : list of (raw values (lookback, channels), time index) per series
    fut_cols : int array
        Channels whose future is known (``future_exog``).
    season : int
        Lag of the naive baseline (0: last value).
    window_scaling : bool
    calendar : list of str
    conformal_scores : ndarray of shape (n, horizon, targets) or None
    conformal_per_window : bool
        Whether the scores are in units of each window's scale.
    mase_scale : ndarray of shape (n_series, n_targets)
        In-sample seasonal-naive mean absolute error of the training data: the
        denominator of :meth:`score`'s MASE.
    """

    kind_name = "pandas"

    def __init__(self, *, lookback, horizon, strategy, scaler, quantiles):
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.strategy, self.scaler = strategy, scaler
        self.quantiles = list(quantiles)
        self.season, self.window_scaling, self.calendar = 0, False, []
        self.conformal_scores, self.conformal_per_window = None, False
        self.mase_scale = None
        self.combine, self.smoothing, self.combine_weight = None, None, 0.0

    @property
    def n_quantiles(self) -> int:
        return max(len(self.quantiles), 1)

    @property
    def exog_names(self) -> list:
        return self.channels[self.n_targets :]

    @property
    def net_fut_cols(self) -> np.ndarray:
        """Columns of the network's input that are known in the future: the
        future_exog columns, then the calendar columns (appended after the data)."""
        C = len(self.channels)
        return np.concatenate([np.asarray(self.fut_cols, np.int64),
                               np.arange(C, C + 2 * len(self.calendar), dtype=np.int64)])

    # ------------------------------------------------------------------ fit
    def prepare(self, est, X, target, future_exog, previous) -> TrainingPlan:
        """Pack and scale ``X``, set this route's state, and return the plan that
        trains ``est.net_`` on its windows (:func:`tsrnn.fitting.train`);
        ``previous`` is the route of the fit being continued (partial_fit), whose
        baseline lag, window scaling and calendar are kept."""
        panel = D.pack(X, target=target, freq=est.freq, missing=est.missing)
        future_exog = D.as_list(future_exog, panel.channels)
        for c in future_exog:
            if c not in panel.channels[panel.n_targets :]:
                raise ValueError(
                    f"future_exog column {c!r} is not an exogenous column of X "
                    f"(exogenous columns: {panel.channels[panel.n_targets:]})."
                )
        unknown = [c for c in panel.channels[panel.n_targets :] if c not in future_exog]
        if self.strategy == "recursive" and unknown:
            raise ValueError(
                f"strategy='recursive' feeds forecasts back, so it needs the future of "
                f"every exogenous column; {unknown} are not in future_exog. List them in "
                "future_exog or use strategy='direct'."
            )
        out_steps = 1 if self.strategy == "recursive" else self.horizon
        real = panel
        if panel.kind == "long":  # a global model: short series are padded, not refused
            too_short = np.flatnonzero(panel.lengths() < out_steps + 1)
            if too_short.size == panel.n_series:
                raise ValueError(
                    f"Every series has fewer than {out_steps + 1} rows (one input and "
                    f"{out_steps} target(s)): nothing to train on.")
            panel, padded = D.pad_front(panel, self.lookback + self.horizon)
        else:
            D.check_min_length(panel, self.lookback + self.horizon,
                               f"lookback + horizon = {self.lookback} + {self.horizon}")
            padded = None
        D.check_future_fits(panel, self.horizon)
        if previous is not None and (not isinstance(previous, PanelRoute)
                                     or panel.channels != previous.channels):
            raise ValueError("partial_fit got other columns than the first fit.")
        loc, scale = D.fit_scaler(real.values, real.indptr, self.scaler)  # real rows
        values = D.scale_values(panel.values, panel.indptr, loc, scale)
        bad = ~np.isfinite(values).all(axis=1) if est.missing == "skip" else None
        if bad is not None:
            values[bad] = 0.0  # never read: windows touching these rows are dropped
        starts, series = D.window_starts(panel.indptr, self.lookback, out_steps, bad,
                                         padded)
        if starts.size == 0:
            raise ValueError("No complete window without missing values in X.")
        per_series = np.bincount(series, minlength=panel.n_series)
        # The network forecasts the change from a naive baseline (in scaled units):
        # the last observed value, or the value one season earlier when that is the
        # better naive forecast on this data. This keeps trending and seasonal
        # series sane with little data.
        self.n_targets = nt = panel.n_targets
        if previous is None:
            real_values = values if real is panel else D.scale_values(
                real.values, real.indptr, loc, scale)
            real_bad = bad if real is panel or bad is None else \
                ~np.isfinite(real_values).all(axis=1)
            self.season = 0 if est.stateful else D.choose_season(
                real_values, real, out_steps, real_bad, baseline=est.baseline,
                season_length=est.season_length, lookback=self.lookback)
            self.window_scaling = bool(est.window_scaling)
            self.calendar = D.choose_calendar(est.calendar, panel, self.lookback)
        else:
            self.season, self.window_scaling = previous.season, previous.window_scaling
            self.calendar = previous.calendar
        self.channels = list(panel.channels)
        self.fut_cols = np.array([panel.channels.index(c) for c in future_exog], np.int64)
        values = self.with_calendar(values, panel.index)
        net_fut_cols = self.net_fut_cols
        lookback, season, ws = self.lookback, self.season, self.window_scaling

        make_batch = D.batch_function(-(-starts.size // est.batch_size) * est.max_epochs)

        def get_batch(idx):
            x, yw, f = make_batch(values, starts[idx], lookback, out_steps, nt,
                                  net_fut_cols, season, MIN_WINDOW_SCALE, ws)
            return x, yw.reshape(len(idx), -1), f.reshape(len(idx), -1)

        self.target_names = list(panel.target_names)
        self.future_exog = list(future_exog)
        self.kind, self.freq, self.ids = panel.kind, panel.freq, list(panel.ids)
        self.scaler_params = {uid: (loc[i], scale[i]) for i, uid in enumerate(panel.ids)}
        self.series_name = X.name if isinstance(X, pd.Series) else None
        # The tail of each series is all predict() needs.
        self.tails = [
            (panel.values[panel.indptr[i + 1] - lookback : panel.indptr[i + 1]],
             panel.index[i][-lookback:])
            for i in range(panel.n_series)
        ]
        # MASE denominators of the training data, for score().
        self.mase_scale = D.naive_scale(real.values, real.indptr, nt,
                                        D.season_length_for(panel.freq))
        est.n_features_in_ = len(panel.channels)
        est.feature_names_in_ = object_array(panel.channels)
        early_stopping, fraction = est.early_stopping, est.validation_fraction
        self.combine = est.combine
        real_blocks = real.blocks()
        # the smoothing's season: season_length, else the one the frequency implies
        self.smoothing = None if est.combine is None else Smoothing.fit(
            real_blocks, nt, est.season_length or D.season_length_for(self.freq),
            ids=list(panel.ids), targets=list(panel.target_names))
        self.combine_weight = 0.0 if est.combine is None else COMBINE_WEIGHT
        pads = np.zeros(panel.n_series, np.int64) if padded is None else padded

        def after_training(net):
            # Conformal scores from the held-out (validation) windows, for
            # predict(level=); there too, "auto" decides whether to combine.
            self.conformal_scores = None
            if not early_stopping:
                return
            cal_starts, cal_counts = starts, per_series
            if out_steps != self.horizon:  # recursive: scored over the whole horizon
                cal_starts, cal_series = D.window_starts(panel.indptr, lookback,
                                                         self.horizon, bad, padded)
                cal_counts = np.bincount(cal_series, minlength=panel.n_series)
            cal_starts = I.spread_sample(cal_starts[D.held_out_tail(cal_counts, fraction)])
            if cal_starts.size:
                smooth = None
                if self.smoothing is not None:
                    smooth = self.held_out_smoothing(real_blocks, panel.indptr, pads,
                                                     cal_starts)
                self.set_conformal_scores(
                    net, values, cal_starts, smooth, decide=self.combine == "auto",
                    indptr=panel.indptr, params=list(zip(loc, scale)))

        streams = None
        if est.stateful:
            from tsrnn.stateful import build_streams

            skip = np.zeros(len(values), bool) if bad is None else bad.copy()
            if padded is not None:  # padding is no data: streams start after it
                for a, p in zip(panel.indptr[:-1], padded):
                    skip[a : a + p] = True
            streams = build_streams(
                values, panel.indptr, skip, lookback=lookback, horizon=self.horizon,
                n_targets=nt, fut_cols=net_fut_cols,
                chunk=est.tbptt_steps or lookback, batch_size=est.batch_size,
                validation_fraction=fraction if early_stopping else 0.0)
        return TrainingPlan(get_batch, per_series, values.shape[1],
                            out_steps * nt * self.n_quantiles,
                            out_steps * len(net_fut_cols), out_steps,
                            gap=self.horizon - 1, after_training=after_training,
                            streams=streams,
                            batches=D.WindowBatches(values, starts, lookback, out_steps,
                                                    nt, net_fut_cols, season,
                                                    MIN_WINDOW_SCALE, ws))

    def same_data(self, state, arrays) -> bool:
        """Whether a checkpoint's saved state was made on this route's data."""

        return bool(
            state["mode"] == self.kind_name
            and state.get("channels") == [plain(c) for c in self.channels]
            and state.get("ids") == [plain(u) for u in self.ids]
            and np.array_equal(arrays["scaler_loc"],
                               np.stack([self.scaler_params[u][0] for u in self.ids]))
            and np.array_equal(arrays["scaler_scale"],
                               np.stack([self.scaler_params[u][1] for u in self.ids])))

    def with_calendar(self, values, indexes):
        """Scaled (rows, channels) values of series with these indexes, with the
        calendar columns appended (unchanged without calendar cycles)."""
        if not self.calendar:
            return values
        return np.hstack([values, D.stacked_calendar_values(indexes, self.calendar,
                                                            values.dtype)])

    # ------------------------------------------------------------- smoothing
    def held_out_smoothing(self, blocks, indptr, pads, starts):
        """Smoothing forecasts (windows, horizon, targets; original units, NaN where
        none) of the windows starting at ``starts`` (rows of the padded panel
        ``indptr``/``pads``), from models fitted on each series up to its first such
        window: forecasts the training did not see, as the network's."""
        series = D.series_of(indptr, starts)
        origins = starts + self.lookback - indptr[series] - pads[series]
        out = np.full((len(starts), self.horizon, self.n_targets), np.nan)
        groups = list(D.rows_by_series(series))
        # one fit of every series' history before its first held-out window
        # (series fitted in parallel), then run along the whole series
        parts = Smoothing.fit([blocks[i][: max(int(origins[rows].min()), 1)]
                               for i, rows in groups],
                              self.n_targets, self.smoothing.season)
        for k, (i, rows) in enumerate(groups):
            out[rows] = parts.along(k, blocks[i], origins[rows], self.horizon)
        return out

    def scaled_smoothing(self, smooth, starts, indptr, params):
        """``smooth`` (windows, steps, targets) in the scaled units of the series the
        windows starting at ``starts`` belong to (``params``: their loc, scale)."""
        series = D.series_of(indptr, starts)
        nt = self.n_targets
        loc = np.stack([p[0][:nt] for p in params])[series, None, :]
        scale = np.stack([p[1][:nt] for p in params])[series, None, :]
        return (smooth - loc) / scale

    # -------------------------------------------------------- conformal scores
    def set_conformal_scores(self, net, values, starts, smooth=None, decide=False,
                             indptr=None, params=None):
        """|actual - point forecast| of the windows starting at ``starts`` (at most
        :data:`tsrnn._config.MAX_CONFORMAL_WINDOWS`: :func:`I.spread_sample`), in
        scaled units, batched; with window scaling, in units of each window's scale.

        ``smooth``: the smoothing partner's forecasts of the same windows (original
        units), combined into the point forecast with ``combine_weight``; with
        ``decide``, the weight is first set to the one of 0 and
        :data:`COMBINE_WEIGHT` with the smaller mean scaled error on these windows.
        """
        self.conformal_per_window = self.window_scaling
        if smooth is not None:
            smooth = self.scaled_smoothing(smooth, starts, indptr, params)
        errs = {0.0: [], COMBINE_WEIGHT: []}
        rows = net.inference_rows(self.lookback)
        for lo in range(0, starts.size, rows):
            x, y, f = D.gather_windows(values, starts[lo : lo + rows], self.lookback,
                                       self.horizon, self.n_targets, self.net_fut_cols)
            point = I.point_forecast(self.predict_scaled(net, x, f), self.quantiles)
            unit = self.interval_scale(x)
            weights = [self.combine_weight] if not decide else list(errs)
            for w in weights:
                p = point if smooth is None else combined(point, smooth[lo : lo + rows], w)
                errs[w].append(np.abs(y.astype(np.float64) - p) / unit)
        if decide:
            self.combine_weight = min(errs, key=lambda w: np.mean(np.concatenate(errs[w])))
        self.conformal_scores = np.concatenate(errs[self.combine_weight])

    def interval_scale(self, x):
        return I.interval_scale(x, self.n_targets, self.conformal_per_window,
                                MIN_WINDOW_SCALE)

    def calibrate(self, net, X, n_windows):
        """Recompute the conformal scores from held-out history ``X`` (with the
        smoothing partner fitted on ``X``)."""
        panel = self.pack_history(X)
        values, params = self.scale_history(panel)
        starts, series = D.window_starts(panel.indptr, self.lookback, self.horizon)
        if n_windows is not None:
            keep = np.concatenate([rows[-n_windows:]
                                   for _, rows in D.rows_by_series(series)])
            starts = starts[np.sort(keep)]
        if starts.size == 0:
            raise ValueError(f"X has no complete window of lookback + horizon = "
                             f"{self.lookback + self.horizon} rows to calibrate on.")
        starts = I.spread_sample(starts)
        smooth = self.history_smoothing(panel, starts)
        self.set_conformal_scores(net, values, starts, smooth, indptr=panel.indptr,
                                  params=params)

    # ----------------------------------------------------------------- history
    def pack_history(self, X):
        """New history ``X`` packed with the fitted columns: a long frame for a model
        fitted on a long frame, a Series or a wide frame otherwise."""
        long_in = isinstance(X, pd.DataFrame) and set(D.LONG_COLUMNS) <= set(X.columns)
        if long_in != (self.kind == "long"):
            fitted = {"long": "a long frame (unique_id, ds, values)",
                      "wide": "a wide frame indexed by time",
                      "series": "a Series"}[self.kind]
            given = "a long frame" if long_in else f"a {type(X).__name__} indexed by time"
            raise ValueError(
                f"This model was fitted on {fitted}; X is {given}. Pass history of the "
                "same shape as in fit (one model per shape of data).")
        panel = D.pack(X, target=self.target_names, exog=self.exog_names, freq=self.freq,
                       missing="history")
        if list(panel.channels) != self.channels:
            raise ValueError(f"X has columns {panel.channels}; the model was fitted on "
                             f"{self.channels}.")
        return panel

    def history_scaling(self, panel, keep_unnamed_scaling):
        """Each series' (loc, scale): a series seen in fit keeps its fitted scaling,
        a new one is scaled on the history given. A single unnamed series keeps the
        fitted scaling only with ``keep_unnamed_scaling`` (backtests and calibration
        run on the training series; ``predict(X)`` takes X as another series)."""
        loc, scale = D.fit_scaler(panel.values, panel.indptr, self.scaler)
        return [self.scaler_params.get(u, (loc[i], scale[i]))
                if (u is not None or keep_unnamed_scaling) else (loc[i], scale[i])
                for i, u in enumerate(panel.ids)]

    def scale_history(self, panel):
        """A packed panel scaled for forecasting from any of its windows (fitted
        scaling kept for every seen series): (scaled values, per-series params)."""
        params = self.history_scaling(panel, keep_unnamed_scaling=True)
        loc = np.stack([p[0] for p in params])
        scale = np.stack([p[1] for p in params])
        values = D.scale_values(panel.values, panel.indptr, loc, scale)
        return self.with_calendar(values, panel.index), params

    def history_tails(self, X):
        """(tails, ids, scaling, packed history) of the series to forecast: the
        fitted ones (history None), or those of new history ``X``."""
        if X is None:
            return (self.tails, self.ids, [self.scaler_params[i] for i in self.ids],
                    None)
        given = self.pack_history(X)
        params = self.history_scaling(given, keep_unnamed_scaling=False)
        if given.kind == "long":  # short series start from padding, as in fit
            panel, _ = D.pad_front(given, self.lookback)
        else:
            D.check_min_length(given, self.lookback, "the lookback predict needs")
            panel = given
        tails = [(panel.values[end - self.lookback : end], idx[-self.lookback :])
                 for end, idx in zip(panel.indptr[1:], panel.index)]
        return tails, list(panel.ids), params, given
