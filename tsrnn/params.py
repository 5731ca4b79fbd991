"""The parameters of :class:`tsrnn.TSRNNRegressor`: the declarative table of
constraints scikit-learn validates them with, and the checks of parameters
together."""

from __future__ import annotations

import numbers
import os

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

PARAMETER_CONSTRAINTS = {
    "cell": [StrOptions({"lstm", "gru", "rnn"})],
    "hidden_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "num_layers": [Interval(numbers.Integral, 1, None, closed="left")],
    "bidirectional": ["boolean"],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "lookback": [Interval(numbers.Integral, 1, None, closed="left")],
    "horizon": [Interval(numbers.Integral, 1, None, closed="left")],
    "strategy": [StrOptions({"direct", "recursive"})],
    "tbptt_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "stateful": ["boolean"],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    "optimizer": [StrOptions({"adam", "sgd", "rmsprop"})],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
    "clip_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "weight_averaging": [Interval(numbers.Real, 0, 1, closed="neither"), None],
    "loss": [StrOptions({"mse", "mae", "huber"})],
    "quantiles": ["array-like", None],
    "baseline": [StrOptions({"auto", "last", "seasonal"})],
    "calendar": [StrOptions({"auto"}), None, list, tuple],
    "window_scaling": ["boolean"],
    "combine": [StrOptions({"auto", "smoothing"}), None],
    "head": [StrOptions({"linear", "mlp"})],
    "season_length": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "scaler": [StrOptions({"standard", "minmax", "robust"}), None],
    "missing": [StrOptions({"raise", "skip"})],
    "freq": [str, None],
    "checkpoint_path": [str, os.PathLike, None],
    "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "device": [StrOptions({"cpu", "cuda", "auto"})],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "alias": [str, None],
}


def check_combinations(est) -> None:
    """Parameters that are valid alone but not together: a ValueError naming
    them."""
    if est.tbptt_steps is not None and est.bidirectional:
        raise ValueError(
            "tbptt_steps cannot be combined with bidirectional=True: the reverse "
            "direction reads the whole window, so there is no chunk to truncate."
        )
    if est.stateful and (est.strategy != "direct" or est.window_scaling
                          or est.baseline == "seasonal" or est.bidirectional):
        raise ValueError(
            "stateful=True forecasts from a state carried along the series, with "
            "the last value as baseline: it needs strategy='direct', "
            "window_scaling=False, baseline 'auto' or 'last', and "
            "bidirectional=False.")
    if est.dropout > 0 and est.num_layers == 1:
        raise ValueError(
            f"dropout={est.dropout} acts between recurrent layers; with "
            "num_layers=1 there is none. Set num_layers >= 2, or dropout=0.")


def check_quantiles(quantiles, strategy) -> list[float]:
    """The validated quantile levels as a sorted list ([] without quantiles)."""
    if quantiles is None:
        return []
    q = np.asarray(quantiles, dtype=np.float64).ravel()
    if q.size == 0 or not np.all((q > 0) & (q < 1)):
        raise ValueError(f"quantiles must be levels strictly between 0 and 1; got "
                         f"{list(quantiles)}.")
    if np.unique(q).size != q.size:
        raise ValueError(f"quantiles has duplicates: {list(quantiles)}.")
    if strategy != "direct":
        raise ValueError("quantiles need strategy='direct' (a recursive model would "
                         "have to feed a whole distribution back).")
    return [float(v) for v in np.sort(q)]
