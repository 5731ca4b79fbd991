"""``TSRNNForecaster``: tsrnn as a native sktime forecaster (the ``sktime`` extra).

One series, several (multivariate ``y``), or a panel of series (``pd-multiindex``)
train one network, as :class:`tsrnn.TSRNNRegressor` does on pandas data. Exogenous
``X`` is known in the future (sktime passes its future rows to ``predict``). The
horizon is the largest step of the ``fh`` given to ``fit``; ``predict`` takes any
subset of it, and in-sample steps (one step ahead from each earlier point, without
refit). Intervals are split-conformal (``predict_interval``), from the held-out
windows of the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster

from tsrnn.estimator import TSRNNRegressor

__all__ = ["TSRNNForecaster"]

_X_PREFIX = "__x_"  # exogenous columns, renamed so they never clash with y's


class TSRNNForecaster(BaseForecaster):
    """Recurrent (LSTM/GRU/RNN) global forecaster, compiled with Numba.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}, default="lstm"
    hidden_size : int, default=32
    num_layers : int, default=1
    lookback : int or None, default=None
        Input window length; None takes 24, or less on short series (at most half
        of the rows a series has beyond the horizon, at least 1).
    max_epochs : int, default=200
    learning_rate : float, default=3e-3
    batch_size : int, default=32
    loss : {"mae", "mse", "huber"}, default="mae"
    head : {"mlp", "linear"}, default="mlp"
    window_scaling : bool, default=True
    combine : {"auto", "smoothing"} or None, default="auto"
        Average with a per-series exponential smoothing forecast (see
        :class:`tsrnn.TSRNNRegressor`).
    early_stopping : bool, default=True
    random_state : int or None, default=None
        The same ``random_state`` gives the same forecasts.

    Further parameters are those of :class:`tsrnn.TSRNNRegressor`, with its
    defaults; ``estimator_`` is the fitted regressor.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from tsrnn.sktime import TSRNNForecaster
    >>> y = load_airline()
    >>> f = TSRNNForecaster(lookback=24, random_state=0).fit(y, fh=[1, 2, 3])
    >>> f.predict().shape
    (3,)
    """

    _tags = {
        "authors": ["tsrnn developers"],
        "python_dependencies": ["tsrnn"],
        "y_inner_mtype": ["pd.DataFrame", "pd-multiindex"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex"],
        "capability:multivariate": True,
        "capability:exogenous": True,
        "capability:insample": True,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        "capability:random_state": True,
        "property:randomness": "derandomized",
        "requires-fh-in-fit": True,
        "X-y-must-have-same-index": True,
        "capability:non_contiguous_X": False,
    }
    # In-sample forecasts need the training data: the forecaster keeps it itself
    # (sktime's own copy, remember_data, is going away).
    _config = {"remember_data": False}

    def __init__(self, cell="lstm", hidden_size=32, num_layers=1, lookback=None,
                 max_epochs=200, learning_rate=3e-3, batch_size=32, loss="mae",
                 head="mlp", window_scaling=True, combine="auto",
                 early_stopping=True, random_state=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lookback = lookback
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.loss = loss
        self.head = head
        self.window_scaling = window_scaling
        self.combine = combine
        self.early_stopping = early_stopping
        self.random_state = random_state
        super().__init__()
        self._y, self._X = None, None  # not kept by sktime (remember_data=False)

    # ------------------------------------------------------------ conversions
    def _frame(self, y, X):
        """sktime's ``y`` (and ``X``) as the frame TSRNNRegressor takes: wide, or
        long (unique_id, ds, ...) for a panel."""
        data = y.copy()
        if X is not None:
            data = data.join(X.add_prefix(_X_PREFIX), how="left")
        if not isinstance(data.index, pd.MultiIndex):
            return data
        names = ["unique_id", "ds"]
        data.index = data.index.set_names(names[-data.index.nlevels:] if
                                          data.index.nlevels == 2 else None)
        return data.reset_index()

    def _horizon_and_lookback(self, y, fh):
        rel = fh.to_relative(self.cutoff).to_numpy() if fh is not None else np.array([1])
        horizon = int(max(1, rel.max()))
        lengths = (y.groupby(level=0).size().to_numpy() if isinstance(y.index, pd.MultiIndex)
                   else np.array([len(y)]))
        n = int(lengths.min())
        if self.lookback is not None:
            return horizon, int(self.lookback)
        return horizon, int(max(1, min(24, (n - horizon) // 2)))

    # -------------------------------------------------------------------- fit
    def _fit(self, y, X=None, fh=None):
        horizon, lookback = self._horizon_and_lookback(y, fh)
        self._y_cols = list(y.columns)
        self._x_cols = [] if X is None else [f"{_X_PREFIX}{c}" for c in X.columns]
        self.estimator_ = TSRNNRegressor(
            cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
            lookback=lookback, horizon=horizon, max_epochs=self.max_epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            loss=self.loss, head=self.head, window_scaling=self.window_scaling,
            combine=self.combine, early_stopping=self.early_stopping,
            random_state=self.random_state, calendar=None)
        self._train_frame = self._frame(y, X)
        self._y_index_names = y.index.names
        self.estimator_.fit(self._train_frame, target=self._y_cols,
                            future_exog=self._x_cols or None)
        return self

    # ---------------------------------------------------------------- predict
    def _split_fh(self, fh):
        rel = fh.to_relative(self.cutoff).to_numpy().astype(np.int64)
        return rel[rel > 0], rel[rel <= 0]

    def _predict(self, fh, X=None):
        return self._forecast(fh, X, levels=())

    def _predict_interval(self, fh, X=None, coverage=None):
        levels = [100 * float(c) for c in coverage]
        fc = self._forecast(fh, X, levels=levels)
        cols = []
        data = []
        for var in self._y_cols:
            for c, lv in zip(coverage, levels):
                for side, name in (("lower", "lo"), ("upper", "hi")):
                    cols.append((var, c, side))
                    data.append(fc[f"{var}__{name}_{lv:g}"].to_numpy())
        return pd.DataFrame(np.column_stack(data), index=fc.index,
                            columns=pd.MultiIndex.from_tuples(cols))

    def _forecast(self, fh, X, levels):
        """Point forecasts (and ``<var>__lo_/__hi_<level>`` columns) at ``fh``."""
        out_steps, in_steps = self._split_fh(fh)
        parts = []
        if len(out_steps):
            parts.append(self._out_of_sample(out_steps, X, levels))
        if len(in_steps):
            if levels:
                raise NotImplementedError("conformal intervals are for forecasts "
                                          "after the cutoff.")
            parts.append(self._in_sample(in_steps))
        fc = pd.concat(parts).sort_index()
        absolute = fh.to_absolute_index(self.cutoff)
        if isinstance(fc.index, pd.MultiIndex):
            return fc
        return fc.reindex(absolute)

    def _out_of_sample(self, steps, X, levels):
        est = self.estimator_
        future = None
        if self._x_cols:
            future = self._frame(X.iloc[:, :0], X) if X is not None else None
        fc = est.predict(future=future, level=levels or None, steps=list(steps))
        return self._renamed(fc, levels)

    def _in_sample(self, steps):
        """One-step-ahead forecasts at the in-sample points (NaN where the history
        before a point is shorter than the window)."""
        est = self.estimator_
        ins = est.predict_insample(self._train_frame, partial=True)
        ins = ins[ins["step"] == 1]
        key = ["unique_id", "ds"] if "unique_id" in ins.columns else ["ds"]
        wide = ins.pivot_table(index=key, columns="target", values="forecast",
                               sort=False)
        wide = wide.reindex(columns=self._y_cols)
        wide.columns.name = None
        wide.index = wide.index.set_names(self._y_index_names)
        return wide

    def _renamed(self, fc, levels):
        """TSRNNRegressor's forecast columns as sktime's (the y columns, plus the
        interval columns for _predict_interval)."""
        est = self.estimator_
        if "unique_id" in fc.columns:
            fc = fc.set_index(["unique_id", "ds"])
            fc.index = fc.index.set_names(self._y_index_names)
            names = {f"{t}_pred": t for t in est.target_names_}
        else:
            names = {t: t for t in est.target_names_}
            fc.index = fc.index.set_names(self._y_index_names)
        out = {}
        for src, var in names.items():
            out[var] = fc[src]
            for lv in levels:
                out[f"{var}__lo_{lv:g}"] = fc[f"{src}_lo_{lv:g}"]
                out[f"{var}__hi_{lv:g}"] = fc[f"{src}_hi_{lv:g}"]
        return pd.DataFrame(out, index=fc.index)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """The defaults, and a small fast network (sktime's test suite)."""
        return [{}, {"cell": "gru", "hidden_size": 8, "max_epochs": 5,
                     "random_state": 0}]
