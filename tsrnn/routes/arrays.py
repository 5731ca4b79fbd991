"""The array route: windowed arrays ``X`` (n, lookback[, features]) and targets ``y``
(n,) or (n, horizon), scikit-learn's contract, for pipelines and tools that take
arrays. Inputs and targets are scaled over the whole training set (``scaler``); each
row of ``X`` is one window, forecast by one pass of the network.

The arrays carry their own windows, so the parameters that describe time (the
window, the horizon, the strategy, the naive baseline, window scaling, the calendar,
missing values, the frequency) do not apply: set to anything but their defaults,
they are refused rather than ignored (:data:`PANDAS_ONLY`).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, validate_data

from tsrnn import parallel
from tsrnn.data import MAX_ABS_VALUE, ArrayBatches, fit_scaler
from tsrnn.routes.forecasting import check_finite_forecast
from tsrnn.training import TrainingPlan


def check_X_array(est, X, reset):
    """(n, lookback) or (n, lookback, features) -> float64 (n, lookback, features);
    sets or checks ``est.n_features_in_``."""
    ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
    if ndim != 3:
        # Tabular X (scikit-learn's contract): each row is one univariate sequence.
        X = validate_data(est, X, reset=reset, dtype=np.float64)
        return X[:, :, None]
    X = check_array(X, allow_nd=True, dtype=np.float64)
    if reset:
        est.n_features_in_ = X.shape[2]
    elif X.shape[2] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[2]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X


#: Parameters of the pandas route only, with their defaults.
PANDAS_ONLY = {"lookback": 24, "horizon": 1, "strategy": "direct", "baseline": "auto",
               "window_scaling": True, "season_length": None, "calendar": "auto",
               "missing": "raise", "freq": None, "stateful": False, "combine": "auto"}


def check_array_params(params) -> None:
    """A ValueError naming the pandas-only parameters set on array input."""
    set_ = [f"{k}={params[k]!r}" for k, v in PANDAS_ONLY.items() if params[k] != v]
    if set_:
        raise ValueError(
            f"{', '.join(set_)} do(es) not apply to array input: the arrays carry their "
            "own windows (X) and horizon (y). Leave them at their defaults, or fit on "
            "a pandas Series or DataFrame, where they take effect.")


def _standardise(a, name, kind):
    """(loc, scale) of each column of ``a`` by the ``scaler`` kind, computed as the
    pandas route's scaler does (on ``a / max|a|``, so that huge values cannot
    overflow)."""
    if a.size and np.abs(a).max() > MAX_ABS_VALUE:
        raise ValueError(f"{name} has values larger than {MAX_ABS_VALUE:g} in magnitude; "
                         "rescale it.")
    loc, scale = fit_scaler(a, np.array([0, len(a)]), kind)
    return loc[0], scale[0]


class ArrayRoute:
    """Fitted state and forecasting of a model fitted on windowed arrays.

    Attributes
    ----------
    quantiles : list of float
    y_1d : bool
        Whether ``y`` was 1-D (forecasts come back in the same shape).
    x_loc, x_scale : ndarray of shape (features,)
    y_loc, y_scale : ndarray of shape (horizon,)
    """

    kind_name = "arrays"

    def __init__(self, *, quantiles):
        self.quantiles = list(quantiles)

    @property
    def n_quantiles(self) -> int:
        return max(len(self.quantiles), 1)

    def prepare(self, est, X, y, previous) -> TrainingPlan:
        """Validate and standardise ``X`` and ``y``, set this route's state, and
        return the plan that trains ``est.net_`` (``previous``: the route of the fit
        being continued, whose scaling is kept)."""
        if y is None:
            raise ValueError(
                f"{type(est).__name__} requires y to be passed, but the target y is "
                "None (X is an array; for pandas input pass a Series or DataFrame alone)."
            )
        if previous is not None and not isinstance(previous, ArrayRoute):
            raise ValueError("partial_fit got arrays but the model was fitted on pandas "
                             "data.")
        check_array_params(est.get_params())
        X3 = check_X_array(est, X, reset=previous is None)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        check_consistent_length(X3, y)
        y2 = y.reshape(len(y), -1)
        if previous is None:
            self.y_1d = y.ndim == 1
            self.x_loc, self.x_scale = _standardise(X3.reshape(-1, X3.shape[2]), "X",
                                                    est.scaler)
            self.y_loc, self.y_scale = _standardise(y2, "y", est.scaler)
        else:
            self.y_1d = previous.y_1d
            self.x_loc, self.x_scale = previous.x_loc, previous.x_scale
            self.y_loc, self.y_scale = previous.y_loc, previous.y_scale
        xs = ((X3 - self.x_loc) / self.x_scale).astype(np.float32)
        ys = ((y2 - self.y_loc) / self.y_scale).astype(np.float32)
        empty = np.zeros((0,), np.float32)

        def get_batch(idx):
            return np.ascontiguousarray(xs[idx]), ys[idx], empty.reshape(len(idx), 0)

        return TrainingPlan(get_batch, [len(xs)], xs.shape[2],
                            ys.shape[1] * self.n_quantiles, 0, ys.shape[1],
                            batches=ArrayBatches(xs, ys))

    def same_data(self, state, arrays) -> bool:
        """Whether a checkpoint's saved state was made on this route's data."""
        return bool(state["mode"] == self.kind_name
                    and np.array_equal(arrays["x_loc"], self.x_loc)
                    and np.array_equal(arrays["y_loc"], self.y_loc))

    def predict(self, est, X, level):
        if X is None:
            raise ValueError("This model was fitted on arrays: pass X to predict.")
        X3 = check_X_array(est, X, reset=False)
        xs = ((X3 - self.x_loc) / self.x_scale).astype(np.float32)
        if level is not None:
            raise ValueError("level= (conformal intervals) needs a model fitted on "
                             "pandas data; for arrays use quantiles=.")
        net, Q = est.net_, self.n_quantiles
        out = np.empty((len(xs), len(self.y_loc) * Q))
        rows = net.inference_rows(xs.shape[1])
        with parallel.one_blas_thread():  # the same bits whatever BLAS's threads
            for lo in range(0, len(xs), rows):
                xb = np.ascontiguousarray(xs[lo : lo + rows])
                p, _ = net.forward(xb, np.zeros((len(xb), 0), np.float32))
                out[lo : lo + rows] = p
        out = out.reshape(len(xs), -1, Q)
        if Q > 1:
            out = np.sort(out, axis=-1)
        out = out * self.y_scale[:, None] + self.y_loc[:, None]
        check_finite_forecast(out)
        if Q == 1:
            out = out[..., 0]
            return out.ravel() if self.y_1d else out
        return out[:, 0, :] if self.y_1d else out
