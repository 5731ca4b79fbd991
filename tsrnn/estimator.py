"""TSRNNRegressor: a scikit-learn forecaster on pandas data or windowed arrays."""

from __future__ import annotations

import numbers
import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from tsrnn import _warnings
from tsrnn import data as D
from tsrnn.backend import resolve_device
from tsrnn.model_file import ModelFileError, read_model_file, write_model_file
from tsrnn.training import RecurrentNet, Trainer


def _progress_factory(verbose):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is optional: say so once, train silently
        _warnings.warn("verbose=1 needs tqdm (pip install 'tsrnn[progress]').")
        return None
    return lambda total: tqdm(total=total, desc="tsrnn fit", unit="epoch", leave=False)


def _held_out_tail(n_per_group, fraction):
    """Boolean mask over windows numbered group after group: True for the last
    ``ceil(fraction * n)`` windows of each group of ``n`` (its held-out tail), or
    none of a group that would keep no training window."""
    held = np.zeros(int(np.sum(n_per_group)), bool)
    end = 0
    for n in n_per_group:
        end += n
        n_val = int(np.ceil(fraction * n))
        if 0 < n_val < n:
            held[end - n_val : end] = True
    return held


def _split_windows(n_per_group, fraction, gap):
    """Training and validation window numbers: the held-out tail of each group
    (:func:`_held_out_tail`) validates, and the ``gap`` windows just before it train
    on nothing. Consecutive windows overlap: a window's targets are also targets of
    the next ``targets - 1`` windows, so without the gap most validation targets were
    training targets (validation loss and conformal scores in-sample). The gap
    shrinks where a short group would keep no training window."""
    held = _held_out_tail(n_per_group, fraction)
    train = ~held
    end = 0
    for n in n_per_group:
        end += n
        n_val = int(held[end - n : end].sum())
        if n_val:
            g = min(gap, n - n_val - 1)
            train[end - n_val - g : end - n_val] = False
    return np.flatnonzero(train), np.flatnonzero(held)


def _plain(v):
    """numpy scalars to Python ones, so names and ids go into JSON."""
    return v.item() if isinstance(v, np.generic) else v


class TSRNNRegressor(RegressorMixin, BaseEstimator):
    """Recurrent (LSTM/GRU/RNN) forecaster in the scikit-learn mould.

    ``fit`` takes a pandas Series, a wide DataFrame indexed by time, a long DataFrame
    (``unique_id``, ``ds``, ``y`` + exogenous columns), or windowed arrays ``X`` of
    shape (n_samples, lookback, n_features) (or (n_samples, lookback)) with ``y`` of
    shape (n_samples,) or (n_samples, horizon). The estimator owns scaling (per
    series), windowing (by index, no copies), training with early stopping, and
    multi-step forecasting.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}, default="lstm"
    hidden_size : int, default=32
    num_layers : int, default=1
    bidirectional : bool, default=False
    dropout : float in [0, 1), default=0.0
        Between recurrent layers, in training.
    lookback : int, default=24
        Input window length (pandas input; arrays carry their own).
    horizon : int, default=1
        Steps forecast by ``predict()`` (pandas input; arrays: ``y.shape[1]``).
    strategy : {"direct", "recursive"}, default="direct"
        "direct": one head emits all ``horizon`` steps. "recursive": a one-step
        model rolled forward, feeding its forecasts back.
    tbptt_steps : int or None, default=None
        None backpropagates through the whole window; an int backpropagates through
        the last ``tbptt_steps`` steps only, the state of the earlier steps carried in
        without gradient.
    batch_size : int, default=32
    max_epochs : int, default=200
    learning_rate : float, default=3e-3
    optimizer : {"adam", "sgd", "rmsprop"}, default="adam"
    weight_decay : float, default=0.0
    clip_norm : float or None, default=1.0
        Global gradient-norm clip.
    loss : {"mae", "mse", "huber"}, default="mae"
        Training loss on the (scaled) forecast errors. The absolute error makes the
        forecast a median, which is what MAE/MASE-type accuracy rewards and what a
        holiday or an outlier in the training data moves least; it is also
        neuralforecast's default. On the bundled series (three seeds) it gave a
        geometric-mean relative MASE of 0.638 against 0.696 for "mse"
        (``benchmarks/results/accuracy.md`` and ``accuracy_ablation_loss_mse.md``).
        Use "mse" when the forecasts are judged by squared error.
    baseline : {"auto", "last", "seasonal"}, default="auto"
        The network forecasts the change from a naive forecast: the last value
        ("last"), the value one season earlier ("seasonal"), or whichever of the two
        has the smaller error on the training data ("auto"; seasonal is a candidate
        only when ``season_length <= lookback``). Pandas input only.
    window_scaling : bool, default=True
        Standardise each input window's target channels by the window's own mean
        and standard deviation, and forecast the change from the baseline in those
        units (as neuralforecast does), so that a forecast follows the level and
        amplitude of the recent window rather than the history's average: a quiet
        holiday week, a series whose swings grow. Pandas input only. On the bundled
        series (three seeds) it gives a geometric-mean relative MASE of 0.638 against
        0.661 without, and it is what beats seasonal naive on hourly demand (0.91
        against 1.43 x seasonal naive's MASE; the forecasts there start in the
        Christmas week, calmer than the weeks before). The cost: the network no
        longer sees the level, so series that revert to a mean level forecast worse
        (uschange 0.89 against 0.79, melbourne 0.67 against 0.62), and so does a
        step far larger than the window's own swings that only the calendar or an
        exogenous input foresees. Set it to False for those
        (``benchmarks/results/accuracy.md`` and
        ``accuracy_ablation_no_window_scaling.md``). A window whose standard
        deviation is below 0.05 in the scaler's units (standard deviations of the
        series with the default scaler; the data's own units with ``scaler=None``)
        is scaled by 0.05, so that noise on a flat stretch is not blown up.
    head : {"mlp", "linear"}, default="mlp"
        What turns the recurrent layers' final state into the forecast. "mlp": a
        small decoder shared by the forecast steps (neuralforecast's design, smaller):
        the final state is cut into a context vector per step (8 values), and each
        step's context with that step's known future inputs goes through a hidden
        ReLU layer of 32 units to the step's outputs, so the effect of a future input
        (temperature, a holiday flag, the calendar) is learned once for every step,
        and may be non-linear. "linear": one linear map from the final state and all
        future inputs, flattened, to all outputs. On the bundled series (three seeds)
        the decoder gave a geometric-mean relative MASE of 0.638 against 0.675
        (``benchmarks/results/accuracy.md``, ``accuracy_ablation_linear_head.md``).
    season_length : int or None, default=None
        Season of the seasonal baseline; None takes it from the frequency
        (monthly 12, quarterly 4, hourly 24, daily 7, ...).
    calendar : "auto", None or list of {"day", "week", "year"}, default="auto"
        Feed the network the sine and cosine of each timestamp's position in these
        calendar cycles, for the window and for the forecast steps (known future
        inputs, computed from the index: nothing to pass to ``predict``). "auto"
        takes the cycles longer than ``lookback``, which no window can show (the
        year for daily data, the week for hourly data with a 3-day lookback), that
        the training data covers at least four times. Pandas input with a datetime or
        period index only.
    quantiles : list of float in (0, 1) or None, default=None
        Train one network on the pinball loss for all these quantiles (``loss`` is
        then not used) and forecast them all; outputs are sorted so quantiles never
        cross. The point forecast is the 0.5 quantile when listed, else the mean of
        the quantiles. Needs ``strategy="direct"``.
    early_stopping : bool, default=True
        Hold out the last ``validation_fraction`` of each series' windows, stop after
        ``patience`` epochs without improvement, restore the best weights.
    validation_fraction : float, default=0.1
        Share of each series' windows, its last ones, held out for early stopping
        and for the conformal scores of ``predict(level=)``. The ``horizon - 1``
        windows just before them are not trained on (pandas input): their targets
        would be validation targets, and the validation loss in-sample.
    patience : int, default=20
    scaler : {"standard", "minmax", "robust"} or None, default="standard"
        Fitted per series and channel.
    missing : {"raise", "skip"}, default="raise"
        Non-finite values: raise (naming column and timestamp), or drop the windows
        that touch them (a forecast from a window with a gap is still refused).
    freq : str or None, default=None
        Frequency of the time index when it cannot be inferred.
    checkpoint_path : str or path or None, default=None
        Save the model (weights, optimizer state, random generator, curves) to this
        file every ``checkpoint_every`` epochs, atomically. When the file exists,
        ``fit`` resumes from it (the continuation is the same, bit for bit, as an
        uninterrupted run); a finished run is not repeated.
    checkpoint_every : int, default=1
    random_state : int, Generator or None, default=None
    device : {"cpu", "cuda", "auto"}, default="cpu"
    verbose : int, default=0
        0 is silent; 1 shows a tqdm bar with the loss.
    warm_start : bool, default=False
        Keep the weights of the previous fit as the starting point.

    Attributes
    ----------
    loss_curve_, validation_loss_curve_ : list of float
    best_epoch_, n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str (pandas input)
    """

    _parameter_constraints = {
        "cell": [StrOptions({"lstm", "gru", "rnn"})],
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "num_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "lookback": [Interval(numbers.Integral, 1, None, closed="left")],
        "horizon": [Interval(numbers.Integral, 1, None, closed="left")],
        "strategy": [StrOptions({"direct", "recursive"})],
        "tbptt_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions({"adam", "sgd", "rmsprop"})],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "clip_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "loss": [StrOptions({"mse", "mae", "huber"})],
        "quantiles": ["array-like", None],
        "baseline": [StrOptions({"auto", "last", "seasonal"})],
        "calendar": [StrOptions({"auto"}), None, list, tuple],
        "window_scaling": ["boolean"],
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
    }

    def __init__(self, cell="lstm", hidden_size=32, num_layers=1, bidirectional=False,
                 dropout=0.0, lookback=24, horizon=1, strategy="direct", tbptt_steps=None,
                 batch_size=32, max_epochs=200, learning_rate=3e-3, optimizer="adam",
                 weight_decay=0.0, clip_norm=1.0, loss="mae", quantiles=None,
                 baseline="auto", window_scaling=True, season_length=None, head="mlp",
                 calendar="auto", early_stopping=True,
                 validation_fraction=0.1, patience=20, scaler="standard", missing="raise",
                 freq=None, checkpoint_path=None, checkpoint_every=1, random_state=None,
                 device="cpu", verbose=0, warm_start=False):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.lookback = lookback
        self.horizon = horizon
        self.strategy = strategy
        self.tbptt_steps = tbptt_steps
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.loss = loss
        self.quantiles = quantiles
        self.baseline = baseline
        self.window_scaling = window_scaling
        self.season_length = season_length
        self.head = head
        self.calendar = calendar
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scaler = scaler
        self.missing = missing
        self.freq = freq
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ helpers
    def _rng(self):
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            rs = rs.randint(np.iinfo(np.int32).max)
        return np.random.default_rng(rs)

    def _make_net(self, n_inputs, n_out, n_future, n_steps, rng):
        return RecurrentNet(self.cell, n_inputs, self.hidden_size, self.num_layers,
                            self.bidirectional, self.dropout, n_out, n_future, rng,
                            head=self.head, n_steps=n_steps)

    def _check_same_network(self):
        """warm_start / partial_fit go on training the fitted network: its shape
        parameters must not have changed since."""
        net = self.net_
        now = {"cell": net.cell, "hidden_size": net.hidden_size,
               "num_layers": net.num_layers, "bidirectional": net.bidirectional,
               "head": net.head}
        changed = [f"{k}={getattr(self, k)!r} (fitted: {v!r})" for k, v in now.items()
                   if getattr(self, k) != v]
        if changed:
            raise ValueError(f"warm_start and partial_fit continue the fitted network, "
                             f"whose shape changed: {', '.join(changed)}. Fit a new "
                             f"model (warm_start=False) for another network.")

    def _check_quantiles(self):
        """The validated quantile levels as a sorted list ([] without quantiles)."""
        if self.quantiles is None:
            return []
        q = np.asarray(self.quantiles, dtype=np.float64).ravel()
        if q.size == 0 or not np.all((q > 0) & (q < 1)):
            raise ValueError(f"quantiles must be levels strictly between 0 and 1; got "
                             f"{list(self.quantiles)}.")
        if np.unique(q).size != q.size:
            raise ValueError(f"quantiles has duplicates: {list(self.quantiles)}.")
        if self.strategy != "direct":
            raise ValueError("quantiles need strategy='direct' (a recursive model would "
                             "have to feed a whole distribution back).")
        return [float(v) for v in np.sort(q)]

    @property
    def _n_quantiles(self):
        return max(len(getattr(self, "_quantiles", [])), 1)

    def _train(self, get_batch, n_windows_per_group, n_inputs, n_out, n_future, n_steps,
               incremental=False, gap=0):
        """Split windows (last ``validation_fraction`` of each group for validation,
        ``gap`` windows before it left out: :func:`_split_windows`), build or reuse
        the network, and run the trainer."""
        rng = self._rng() if not (incremental and hasattr(self, "_rng_state")) \
            else self._rng_state
        train_idx, val_idx = _split_windows(
            n_windows_per_group, self.validation_fraction if self.early_stopping else 0.0,
            gap)
        reuse = (self.warm_start or incremental) and hasattr(self, "net_")
        resume_best = None
        if self.checkpoint_path is not None and not incremental:
            resume_best = self._resume_from_checkpoint()
            if resume_best is not None:
                reuse, rng = True, self._rng_state
        if reuse:
            self._check_same_network()
        else:
            self.net_ = self._make_net(n_inputs, n_out, n_future, n_steps, rng)
            self._history = None
        # Settings that are not the network's shape follow the parameters on a reused
        # network too (warm_start with another dropout trains with that dropout).
        self.net_.device = resolve_device(self.device)
        self.net_.dropout = self.dropout
        trainer = Trainer(
            self.net_, get_batch, batch_size=self.batch_size,
            learning_rate=self.learning_rate, optimizer=self.optimizer,
            weight_decay=self.weight_decay, clip_norm=self.clip_norm, loss=self.loss,
            tbptt_steps=self.tbptt_steps, rng=rng,
            progress=_progress_factory(self.verbose), quantiles=self._quantiles or None,
        )
        if reuse and getattr(self, "_opt_state", None) is not None:
            trainer.opt.load_state_dict(self._opt_state)
        history = self._history if reuse else None
        epochs = 1 if incremental else self.max_epochs
        if resume_best is not None:
            epochs = self.max_epochs - len(history["loss"])
            if history.get("stopped") or epochs <= 0:
                self.net_.params.update(resume_best)  # finished run: its best weights
                return
        callback = None
        if self.checkpoint_path is not None:
            def callback(h, best_params):
                done = len(h["loss"])
                if done % self.checkpoint_every and not h["stopped"] \
                        and done != self.max_epochs:
                    return
                self._opt_state, self._rng_state = trainer.opt.state_dict(), rng
                self._set_history(h)
                meta, arrays = self._export_state()
                arrays.update({f"best/{k}": v for k, v in best_params.items()})
                write_model_file(self.checkpoint_path, meta, arrays)
        try:
            trainer.fit(train_idx, val_idx, max_epochs=epochs,
                        patience=self.patience if not incremental else 10**9,
                        history=history, warn=not incremental, best_params=resume_best,
                        on_epoch_end=callback)
        finally:
            # Also after an error (divergence): the model stays usable with its last
            # finite weights and the curves so far.
            self._opt_state = trainer.opt.state_dict()
            self._rng_state = rng
            self._set_history(trainer.history)

    def _set_history(self, history):
        self._history = history
        self.loss_curve_ = list(history["loss"])
        self.validation_loss_curve_ = list(history["val_loss"])
        self.best_epoch_ = int(history["best_epoch"])
        self.n_iter_ = len(self.loss_curve_)

    # Parameters that may change between a checkpoint and the fit resuming from it.
    _RESUMABLE_CHANGES = frozenset({"max_epochs", "verbose", "checkpoint_every",
                                    "checkpoint_path", "patience"})

    def _resume_from_checkpoint(self):
        """Restore weights, optimizer, random generator and curves from
        ``checkpoint_path`` if it exists; returns the best weights so far (None when
        there is no checkpoint). Refuses a checkpoint of other parameters or data."""
        from pathlib import Path

        path = Path(self.checkpoint_path)
        if not path.exists():
            return None
        meta, arrays = read_model_file(path)
        mine = self._json_params()
        diff = sorted(k for k in mine if k not in self._RESUMABLE_CHANGES
                      and meta["params"].get(k) != mine[k])
        if diff:
            raise ValueError(
                f"The checkpoint {path} was written with other values of {diff}; delete "
                "it or pass another checkpoint_path to start afresh."
            )
        state = meta["state"]
        same_data = state["mode"] == self._mode and (
            (state.get("channels") == [_plain(c) for c in self._channels]
             and state.get("ids") == [_plain(u) for u in self._ids]
             and np.array_equal(arrays["scaler_loc"],
                                np.stack([self._scaler_params[u][0] for u in self._ids]))
             and np.array_equal(arrays["scaler_scale"],
                                np.stack([self._scaler_params[u][1] for u in self._ids])))
            if self._mode == "pandas" else
            np.array_equal(arrays["x_loc"], self._x_loc)
            and np.array_equal(arrays["y_loc"], self._y_loc))
        if not same_data:
            raise ValueError(f"The checkpoint {path} was made on other data (columns, "
                             "series or values differ); delete it or pass another "
                             "checkpoint_path.")
        self._import_state(state, arrays)
        return {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}

    # ---------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, target=None, future_exog=None):
        """Fit on a Series, wide or long DataFrame, or windowed arrays.

        Parameters
        ----------
        X : pd.Series, pd.DataFrame or ndarray of shape (n_samples, lookback[, features])
        y : ndarray of shape (n_samples,) or (n_samples, horizon), optional
            Only with array ``X``.
        target : str or list of str, optional
            Column(s) to forecast (wide frame; default all numeric columns; long
            frame: "y").
        future_exog : list of str, optional
            Exogenous columns whose future values are known and passed to
            ``predict(future=...)``.

        Returns
        -------
        self
        """
        self._validate_params()
        if self.tbptt_steps is not None and self.bidirectional:
            raise ValueError(
                "tbptt_steps cannot be combined with bidirectional=True: the reverse "
                "direction reads the whole window, so there is no chunk to truncate."
            )
        resolve_device(self.device)
        self._quantiles = self._check_quantiles()
        return self._fit(X, y, target=target, future_exog=future_exog, incremental=False)

    def partial_fit(self, X, y=None, *, target=None, future_exog=None):
        """One more epoch on the given data (initializing on the first call)."""
        if not hasattr(self, "net_"):
            self._validate_params()
            self._quantiles = self._check_quantiles()
        return self._fit(X, y, target=target, future_exog=future_exog, incremental=True)

    def _fit(self, X, y, *, target, future_exog, incremental):
        if isinstance(X, (pd.Series, pd.DataFrame)) and y is None:
            return self._fit_pandas(X, target, future_exog, incremental)
        # With y given, X is tabular (scikit-learn's contract): each row one sequence.
        return self._fit_arrays(X, y, incremental)

    # --------------------------------------------------------- arrays (sklearn)
    def _check_X_array(self, X, reset):
        """(n, lookback) or (n, lookback, features) -> float64 (n, lookback, features)."""
        ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
        if ndim != 3:
            # Tabular X (scikit-learn's contract): each row is one univariate sequence.
            X = validate_data(self, X, reset=reset, dtype=np.float64)
            return X[:, :, None]
        X = check_array(X, allow_nd=True, dtype=np.float64)
        if reset:
            self.n_features_in_ = X.shape[2]
        elif X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[2]} features, but TSRNNRegressor is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _fit_arrays(self, X, y, incremental):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None (X is an array; for pandas input pass a Series or DataFrame alone)."
            )
        reset = not (incremental and hasattr(self, "net_"))
        X3 = self._check_X_array(X, reset)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        check_consistent_length(X3, y)
        y2 = y.reshape(len(y), -1)
        if reset:
            self._mode = "arrays"
            self._y_1d = y.ndim == 1
            x_std, y_std = X3.std(axis=(0, 1)), y2.std(axis=0)
            self._x_loc = X3.mean(axis=(0, 1))
            self._x_scale = np.where(x_std > 0, x_std, 1.0)
            self._y_loc = y2.mean(axis=0)
            self._y_scale = np.where(y_std > 0, y_std, 1.0)
        elif getattr(self, "_mode", None) != "arrays":
            raise ValueError("partial_fit got arrays but the model was fitted on pandas data.")
        xs = ((X3 - self._x_loc) / self._x_scale).astype(np.float32)
        ys = ((y2 - self._y_loc) / self._y_scale).astype(np.float32)
        empty = np.zeros((0,), np.float32)

        def get_batch(idx):
            return np.ascontiguousarray(xs[idx]), ys[idx], empty.reshape(len(idx), 0)

        self._train(get_batch, [len(xs)], xs.shape[2], ys.shape[1] * self._n_quantiles, 0,
                    ys.shape[1], incremental=incremental)
        return self

    # -------------------------------------------------------------------- pandas
    def _fit_pandas(self, X, target, future_exog, incremental):
        panel = D.pack(X, target=target, freq=self.freq, missing=self.missing)
        future_exog = D.as_list(future_exog)
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
        D.check_min_length(panel, self.lookback + self.horizon,
                           f"lookback + horizon = {self.lookback} + {self.horizon}")
        if incremental and hasattr(self, "net_"):
            if getattr(self, "_mode", None) != "pandas" or panel.channels != self._channels:
                raise ValueError("partial_fit got other columns than the first fit.")
        loc, scale = D.fit_scaler(panel.values, panel.indptr, self.scaler)
        values = D.scale_values(panel.values, panel.indptr, loc, scale)
        bad = ~np.isfinite(values).all(axis=1) if self.missing == "skip" else None
        if bad is not None:
            values[bad] = 0.0  # never read: windows touching these rows are dropped
        out_steps = 1 if self.strategy == "recursive" else self.horizon
        starts, series = D.window_starts(panel.indptr, self.lookback, out_steps, bad)
        if starts.size == 0:
            raise ValueError("No complete window without missing values in X.")
        per_series = np.bincount(series, minlength=panel.n_series)
        fut_cols = np.array([panel.channels.index(c) for c in future_exog], np.int64)
        nt = panel.n_targets
        lookback = self.lookback

        # The network forecasts the change from a naive baseline (in scaled units):
        # the last observed value, or the value one season earlier when that is the
        # better naive forecast on this data. This keeps trending and seasonal
        # series sane with little data.
        self._n_targets = nt
        if not (incremental and hasattr(self, "net_")):
            self._season = self._choose_season(values, panel, out_steps, bad)
            self._window_scaling = bool(self.window_scaling)
            self._calendar = self._choose_calendar(panel)
        self._channels = list(panel.channels)
        self._fut_cols = fut_cols
        values = self._with_calendar(values, panel.index)
        net_fut_cols = self._net_fut_cols

        season, floor = getattr(self, "_season", 0), self._MIN_WINDOW_SCALE
        ws = getattr(self, "_window_scaling", False)

        def get_batch(idx):
            x, yw, f = D.training_batch(values, starts[idx], lookback, out_steps, nt,
                                        net_fut_cols, season, floor, ws)
            return x, yw.reshape(len(idx), -1), f.reshape(len(idx), -1)

        self._mode = "pandas"
        self._target_names = list(panel.target_names)
        self._future_exog = list(future_exog)
        self._kind = panel.kind
        self._freq = panel.freq
        self._ids = list(panel.ids)
        self._scaler_params = {uid: (loc[i], scale[i]) for i, uid in enumerate(panel.ids)}
        self._series_name = X.name if isinstance(X, pd.Series) else None
        # The tail of each series is all predict() needs.
        self._tails = [
            (panel.values[panel.indptr[i + 1] - lookback : panel.indptr[i + 1]],
             panel.index[i][-lookback:])
            for i in range(panel.n_series)
        ]
        self.n_features_in_ = len(panel.channels)
        self.feature_names_in_ = np.asarray(panel.channels, dtype=object)
        self._train(get_batch, per_series, values.shape[1],
                    out_steps * nt * self._n_quantiles, out_steps * len(net_fut_cols),
                    out_steps, incremental=incremental, gap=self.horizon - 1)
        # Conformal scores from the held-out (validation) windows, for predict(level=).
        self._conformal_scores = None
        if self.early_stopping:
            cal_starts, cal_counts = starts, per_series
            if out_steps != self.horizon:  # recursive: scored over the whole horizon
                cal_starts, cal_series = D.window_starts(panel.indptr, lookback,
                                                         self.horizon, bad)
                cal_counts = np.bincount(cal_series, minlength=panel.n_series)
            cal_starts = cal_starts[_held_out_tail(cal_counts, self.validation_fraction)]
            if cal_starts.size:
                self._set_conformal_scores(values, cal_starts)
        return self

    def _choose_season(self, values, panel, steps, bad):
        """The lag of the naive baseline: 0 (last value) or the season length m."""
        from tsrnn.backtesting import season_length_for

        m = self.season_length if isinstance(self.season_length, numbers.Integral) \
            else season_length_for(panel.freq)
        if self.baseline == "last" or m <= 1:
            if self.baseline == "seasonal":
                raise ValueError("baseline='seasonal' needs a season: pass season_length= "
                                 "(the frequency gives none).")
            return 0
        if m > self.lookback:
            if self.baseline == "seasonal":
                raise ValueError(f"baseline='seasonal' needs lookback >= season_length; "
                                 f"got lookback={self.lookback}, season_length={m}.")
            return 0
        if self.baseline == "seasonal":
            return int(m)
        # "auto": the naive forecast with the smaller in-sample error over the horizon
        nt = panel.n_targets
        err = {0: [], m: []}
        h = np.arange(1, steps + 1)
        for i in range(panel.n_series):
            v = values[panel.indptr[i] : panel.indptr[i + 1], :nt].astype(np.float64)
            if bad is not None:
                v = np.where(bad[panel.indptr[i] : panel.indptr[i + 1], None], np.nan, v)
            t = np.arange(self.lookback - 1, len(v) - steps)  # forecast origins
            if t.size == 0:
                continue
            t = t[:: max(1, t.size // 20000)]  # a sample decides as well as all
            target = v[t[:, None] + h]
            err[0].append(np.abs(target - v[t][:, None]))
            lag = t[:, None] + h - m * np.ceil(h / m).astype(int)
            err[m].append(np.abs(target - v[lag]))
        if not err[0]:
            return 0
        e_last = np.nanmean(np.concatenate([e.ravel() for e in err[0]]))
        e_seas = np.nanmean(np.concatenate([e.ravel() for e in err[m]]))
        return int(m) if e_seas < e_last else 0

    def _choose_calendar(self, panel):
        """The calendar cycles this fit feeds the network (see ``calendar``)."""
        if self.calendar is None:
            return []
        if self.calendar == "auto":  # [] for an integer index
            return D.auto_calendar(panel.index[0], panel.freq, self.lookback,
                                   int(panel.lengths().max()))
        cycles = list(self.calendar)
        unknown = [c for c in cycles if c not in D.CALENDAR_CYCLES]
        if unknown or len(set(cycles)) != len(cycles):
            raise ValueError(f"calendar must be 'auto', None or a list of distinct "
                             f"{list(D.CALENDAR_CYCLES)}; got {self.calendar!r}.")
        if cycles and D.step_length(panel.index[0], panel.freq) is None:
            raise ValueError("calendar= needs a DatetimeIndex or PeriodIndex with a "
                             "frequency; this data has an integer index. Pass "
                             "calendar=None.")
        return cycles

    @property
    def _net_fut_cols(self):
        """Columns of the network's input that are known in the future: the
        future_exog columns, then the calendar columns (appended after the data)."""
        cal = getattr(self, "_calendar", [])
        C = len(self._channels)
        return np.concatenate([np.asarray(self._fut_cols, np.int64),
                               np.arange(C, C + 2 * len(cal), dtype=np.int64)])

    def _with_calendar(self, values, indexes):
        """Scaled (rows, channels) values of series with these indexes, with the
        calendar columns appended (unchanged without calendar cycles)."""
        cal = getattr(self, "_calendar", [])
        if not cal:
            return values
        return np.hstack([values, D.stacked_calendar_values(indexes, cal, values.dtype)])

    # Floor of a window's scale, in (per-series standardised) units: a flat window
    # must not turn noise into huge inputs.
    _MIN_WINDOW_SCALE = 0.05

    def _network_windows(self, x, steps):
        """(xin, base, scale) of windows ``x`` for ``steps`` forecast steps: the
        network's input, the naive baseline and the unit of the network's output
        (:func:`tsrnn.data.network_windows`, which training uses too)."""
        return D.network_windows(np.ascontiguousarray(x), self._n_targets, steps,
                                 getattr(self, "_season", 0), self._MIN_WINDOW_SCALE,
                                 getattr(self, "_window_scaling", False))

    # Conformal quantiles need a few thousand scores at most; more would only grow
    # the model (and its file) with the data.
    _MAX_CONFORMAL_WINDOWS = 5000

    def _abs_errors(self, values, starts):
        """|actual - point forecast| in scaled units, (n_windows, horizon, targets),
        for forecasts made from the windows starting at ``starts`` (batched; at most
        ``_MAX_CONFORMAL_WINDOWS`` windows, evenly spread, are used); with window
        scaling, in units of each window's scale (:meth:`_interval_scale`)."""
        if starts.size > self._MAX_CONFORMAL_WINDOWS:
            pick = np.linspace(0, starts.size - 1, self._MAX_CONFORMAL_WINDOWS)
            starts = starts[np.round(pick).astype(np.int64)]
        out = []
        rows = self.net_.inference_rows(self.lookback)
        for lo in range(0, starts.size, rows):
            x, y, f = D.gather_windows(values, starts[lo : lo + rows], self.lookback,
                                       self.horizon, self._n_targets, self._net_fut_cols)
            point = self._point(self._predict_scaled(x, f))
            out.append(np.abs(y.astype(np.float64) - point) / self._interval_scale(x))
        return np.concatenate(out)

    def _set_conformal_scores(self, values, starts):
        """The conformal scores of the windows starting at ``starts``, and their unit
        (per window when the model scales windows), which the model file keeps."""
        self._conformal_per_window = self._window_scaling
        self._conformal_scores = self._abs_errors(values, starts)

    def _interval_scale(self, x):
        """The unit of the conformal scores for forecasts from windows ``x``,
        (n, 1, targets): each window's own scale when the model scales windows, so
        an interval widens and narrows with the recent swings of its series (errors
        that grow with the level, a calm holiday week) as the forecast does; else
        1 (one width for every window of a series)."""
        if getattr(self, "_conformal_per_window", False):
            scale = D.window_stats(np.ascontiguousarray(x), self._n_targets,
                                   self._MIN_WINDOW_SCALE)[1]
            return scale.astype(np.float64)
        return np.ones((len(x), 1, self._n_targets))

    def _point(self, pred4):
        """(n, H, targets, Q) -> (n, H, targets): the 0.5 quantile, else the mean."""
        q = getattr(self, "_quantiles", [])
        if 0.5 in q:
            return pred4[..., q.index(0.5)].astype(np.float64)
        return pred4.mean(axis=-1, dtype=np.float64)

    # ------------------------------------------------------------------ predict
    def predict(self, X=None, *, future=None, level=None):
        """Forecast.

        Parameters
        ----------
        X : None, pd.Series / pd.DataFrame (new history) or ndarray
            None forecasts the ``horizon`` steps after the training data.
        future : pd.DataFrame, optional
            Known future values of the ``future_exog`` columns, indexed by the
            forecast timestamps (long input: ``unique_id``, ``ds`` + the columns).
        level : list of float in (0, 100), optional
            Conformal prediction intervals at these levels (percent), from the
            absolute errors of the model on its held-out validation windows (or on
            the data given to :meth:`calibrate`): columns ``<point>_lo_<level>`` and
            ``<point>_hi_<level>``.

        Returns
        -------
        pd.DataFrame indexed by the next ``horizon`` timestamps (one column per
        target), a long DataFrame (``unique_id``, ``ds``, ``<target>_pred``) for long
        input, or an ndarray for array input. With ``quantiles``, extra columns
        ``<point>_q<level>`` (arrays: a last axis of quantiles).
        """
        check_is_fitted(self, "net_")
        self.net_.device = resolve_device(self.device)
        if self._mode == "arrays":
            if X is None:
                raise ValueError("This model was fitted on arrays: pass X to predict.")
            X3 = self._check_X_array(X, reset=False)
            xs = ((X3 - self._x_loc) / self._x_scale).astype(np.float32)
            if level is not None:
                raise ValueError("level= (conformal intervals) needs a model fitted on "
                                 "pandas data; for arrays use quantiles=.")
            Q = self._n_quantiles
            out = np.empty((len(xs), len(self._y_loc) * Q))
            rows = self.net_.inference_rows(xs.shape[1])
            for lo in range(0, len(xs), rows):
                xb = np.ascontiguousarray(xs[lo : lo + rows])
                p, _ = self.net_.forward(xb, np.zeros((len(xb), 0), np.float32))
                out[lo : lo + rows] = p
            out = out.reshape(len(xs), -1, Q)
            if Q > 1:
                out = np.sort(out, axis=-1)
            out = out * self._y_scale[:, None] + self._y_loc[:, None]
            self._check_finite_forecast(out)
            if Q == 1:
                out = out[..., 0]
                return out.ravel() if self._y_1d else out
            return out[:, 0, :] if self._y_1d else out
        if X is not None and not isinstance(X, (pd.Series, pd.DataFrame)):
            raise TypeError("This model was fitted on pandas data: pass a Series or "
                            "DataFrame (or nothing) to predict.")
        levels = self._check_levels(level)
        tails, ids, params = self._history_tails(X)
        return self._forecast(tails, ids, params, future, levels)

    def _check_levels(self, level):
        if level is None:
            return []
        levels = [float(v) for v in np.atleast_1d(np.asarray(level, dtype=np.float64))]
        if not all(0 < v < 100 for v in levels):
            raise ValueError(f"level must hold percentages strictly between 0 and 100; "
                             f"got {levels}.")
        if getattr(self, "_conformal_scores", None) is None:
            raise ValueError(
                "level= needs conformal scores: fit with early_stopping=True (the "
                "validation windows are used) or call calibrate(X) with held-out data."
            )
        return levels

    def _conformal_halfwidth(self, level):
        """Split-conformal half-width per (horizon step, target), scaled units."""
        s = self._conformal_scores
        n = s.shape[0]
        k = int(np.ceil((n + 1) * level / 100.0))
        if k > n:
            _warnings.warn(
                f"{n} calibration windows are too few for a {level:g}% conformal "
                f"interval (needs {int(np.ceil(100 / (100 - level))) - 1}); using the "
                "largest error seen, which may under-cover.")
            k = n
        return np.sort(s, axis=0)[k - 1]

    def calibrate(self, X, n_windows=None):
        """Recompute the conformal scores behind ``predict(level=...)`` from ``X``
        (held-out history with the columns seen in fit): the absolute errors of the
        forecasts from the last ``n_windows`` origins of each series (all by
        default), in one batched pass."""
        check_is_fitted(self, "net_")
        if self._mode != "pandas":
            raise ValueError("calibrate needs a model fitted on pandas data.")
        panel, _ = self._pack_history(X, keep_unnamed_scaling=True)
        values, _ = self._scale_history(panel)
        starts, series = D.window_starts(panel.indptr, self.lookback, self.horizon)
        if n_windows is not None:
            keep = np.concatenate([np.flatnonzero(series == i)[-n_windows:]
                                   for i in range(panel.n_series)])
            starts = starts[keep]
        if starts.size == 0:
            raise ValueError(f"X has no complete window of lookback + horizon = "
                             f"{self.lookback + self.horizon} rows to calibrate on.")
        self._set_conformal_scores(values, starts)
        return self

    def _pack_history(self, X, *, keep_unnamed_scaling):
        """Pack new history with the fitted columns; returns the panel and each
        series' (loc, scale). A series seen in fit keeps its fitted scaling, a new one
        is scaled on the history given. A single unnamed series keeps the fitted
        scaling only with ``keep_unnamed_scaling`` (backtests and calibration run on
        the training series; ``predict(X)`` takes X as another series)."""
        panel = D.pack(X, target=self._target_names,
                       exog=self._channels[self._n_targets :], freq=self._freq,
                       missing="raise")
        return panel, self._history_scaling(panel, keep_unnamed_scaling)

    def _history_scaling(self, panel, keep_unnamed_scaling):
        if list(panel.channels) != self._channels:
            raise ValueError(f"X has columns {panel.channels}; the model was fitted on "
                             f"{self._channels}.")
        loc, scale = D.fit_scaler(panel.values, panel.indptr, self.scaler)
        return [self._scaler_params.get(u, (loc[i], scale[i]))
                if (u is not None or keep_unnamed_scaling) else (loc[i], scale[i])
                for i, u in enumerate(panel.ids)]

    def _scale_history(self, panel):
        """A packed panel scaled for forecasting from any of its windows (fitted
        scaling kept for every seen series): (scaled values, per-series params)."""
        params = self._history_scaling(panel, keep_unnamed_scaling=True)
        loc = np.stack([p[0] for p in params])
        scale = np.stack([p[1] for p in params])
        values = D.scale_values(panel.values, panel.indptr, loc, scale)
        return self._with_calendar(values, panel.index), params

    def _history_tails(self, X):
        if X is None:
            return self._tails, self._ids, [self._scaler_params[i] for i in self._ids]
        panel, params = self._pack_history(X, keep_unnamed_scaling=False)
        D.check_min_length(panel, self.lookback, "the lookback predict needs")
        tails = [(panel.values[end - self.lookback : end], idx[-self.lookback :])
                 for end, idx in zip(panel.indptr[1:], panel.index)]
        return tails, list(panel.ids), params

    def _future_block(self, future, uid, fidx):
        """(horizon, k) known future values for one series, validated."""
        k = len(self._future_exog)
        if k == 0:
            return np.zeros((self.horizon, 0))
        who = "" if uid is None else f" for series {uid!r}"
        if future is None:
            raise ValueError(
                f"This model uses known future values of {self._future_exog}: pass "
                f"future= with {self.horizon} rows{who}, indexed by {list(fidx[:2])}..."
            )
        if not isinstance(future, pd.DataFrame):
            raise TypeError("future must be a pandas DataFrame.")
        missing_cols = [c for c in self._future_exog if c not in future.columns]
        if missing_cols:
            raise ValueError(f"future is missing the column(s) {missing_cols}.")
        if uid is not None and "unique_id" in future.columns:
            f = future[future["unique_id"] == uid].set_index("ds")
        else:
            f = future
        try:
            block = f.loc[fidx, self._future_exog]
        except KeyError:
            raise ValueError(
                f"future must hold the {self.horizon} forecast timestamps{who}: "
                f"{fidx[0]} .. {fidx[-1]}."
            ) from None
        v = block.to_numpy(dtype=np.float64)
        if v.shape[0] != self.horizon or not np.isfinite(v).all():
            raise ValueError(f"future{who} must have {self.horizon} finite rows at "
                             f"{fidx[0]} .. {fidx[-1]}.")
        return v

    def _predict_scaled(self, xs, futs):
        """Forecasts in scaled units from windows ``xs`` (n, lookback, channels) and
        known futures ``futs`` (n, horizon, k): (n, horizon, targets, Q), Q = 1
        without quantiles. Batched forwards over many windows (direct) or per step
        (recursive)."""
        nt, H, Q = self._n_targets, self.horizon, self._n_quantiles
        n = len(xs)
        if self.strategy == "direct":
            pred = np.empty((n, H * nt * Q), np.float32)
            flat = futs.reshape(n, -1)
            xin, base, scale = self._network_windows(xs, H)
            rows = self.net_.inference_rows(xs.shape[1])
            for lo in range(0, n, rows):
                pred[lo : lo + rows], _ = self.net_.forward(
                    np.ascontiguousarray(xin[lo : lo + rows]), flat[lo : lo + rows])
            pred = pred.reshape(n, H, nt, Q)
            pred *= scale[..., None]
            pred += base[..., None]
            return np.sort(pred, axis=-1) if Q > 1 else pred
        pred = np.empty((n, H, nt, 1), np.float32)
        window = np.array(xs, dtype=np.float32)
        fut_cols = self._net_fut_cols
        for h in range(H):
            xin, base, scale = self._network_windows(window, 1)
            p, _ = self.net_.forward(xin, futs[:, h, :])
            step = p.reshape(n, nt) * scale[:, 0] + base[:, 0]
            pred[:, h, :, 0] = step
            nxt = np.empty((n, 1, window.shape[2]), np.float32)
            nxt[:, 0, :nt] = step
            if futs.shape[2]:
                nxt[:, 0, fut_cols] = futs[:, h, :]
            window = np.concatenate([window[:, 1:], nxt], axis=1)
        return pred

    def _unscale(self, pred4, locs, scales, levels=(), x=None):
        """Scaled (n, H, targets, Q) -> dict of original-unit (n, H, targets) arrays:
        "point", one per quantile (q<level>) and lo/hi per conformal level (``x``:
        the scaled windows forecast from, needed for ``levels``)."""
        nt = self._n_targets
        loc = np.asarray(locs)[:, None, :nt]
        scale = np.asarray(scales)[:, None, :nt]
        point = self._point(pred4)
        out = {"": point * scale + loc}
        if len(getattr(self, "_quantiles", [])) > 0:
            for j, q in enumerate(self._quantiles):
                out[f"_q{q:g}"] = pred4[..., j].astype(np.float64) * scale + loc
        for lv in levels:
            # (H, targets) in score units -> (n, H, targets) scaled units
            half = self._conformal_halfwidth(lv) * self._interval_scale(x)
            out[f"_lo_{lv:g}"] = (point - half) * scale + loc
            out[f"_hi_{lv:g}"] = (point + half) * scale + loc
        for v in out.values():
            self._check_finite_forecast(v)
        return out

    def _forecast(self, tails, ids, params, future, levels=()):
        H = self.horizon
        n = len(tails)
        C, cal = len(self._channels), getattr(self, "_calendar", [])
        xs = np.empty((n, self.lookback, C + 2 * len(cal)), np.float32)
        fidxs = D.future_indexes([idx for _, idx in tails], self._freq, H)
        locs = np.stack([p[0] for p in params])[:, None, :]  # (n, 1, C)
        scales = np.stack([p[1] for p in params])[:, None, :]
        xs[:, :, :C] = (np.stack([raw for raw, _ in tails]) - locs) / scales
        futs = np.zeros((n, H, 0), np.float32)
        if self._future_exog:  # known future inputs: looked up and scaled per series
            futs = np.asarray([
                (self._future_block(future, ids[i], fidxs[i]) - loc[self._fut_cols])
                / scale[self._fut_cols] for i, (loc, scale) in enumerate(params)
            ], np.float32).reshape(n, H, -1)
        if cal:  # the calendar columns come after the data, as in fit
            xs[:, :, C:] = D.stacked_calendar_values(
                [idx for _, idx in tails], cal).reshape(n, self.lookback, -1)
            futs = np.concatenate([futs, D.stacked_calendar_values(fidxs, cal).reshape(
                n, H, -1)], axis=2)
        outs = self._unscale(self._predict_scaled(xs, futs), [p[0] for p in params],
                             [p[1] for p in params], levels, xs)
        return self._as_frame(outs, ids, fidxs)

    def _point_names(self):
        if self._kind == "long":
            return [f"{t}_pred" for t in self._target_names]
        if self._kind == "series" and self._series_name is not None:
            return [self._series_name]
        return list(self._target_names)

    def _as_frame(self, outs, ids, fidxs):
        """Forecast arrays -> the pandas result (wide by time, or long)."""
        names = self._point_names()
        if self._kind != "long":
            cols = {f"{nm}{sfx}": outs[sfx][0, :, k] for k, nm in enumerate(names)
                    for sfx in outs}
            return pd.DataFrame(cols, index=fidxs[0])
        H = self.horizon
        uid = pd.Series(ids).repeat(H).reset_index(drop=True)  # keeps the ids' dtype
        frame = pd.DataFrame({"unique_id": uid, "ds": fidxs.stacked})
        for k, nm in enumerate(names):
            for sfx, arr in outs.items():
                frame[f"{nm}{sfx}"] = arr[:, :, k].ravel()
        return frame

    # --------------------------------------------------------------- model file
    def save(self, path):
        """Write the fitted model to ``path`` (the ``.tsrnn`` format of
        :mod:`tsrnn.model_file`: JSON metadata and ``.npy`` arrays in a zip, no
        pickle). The write is atomic: a crash leaves the old file or none.

        Returns the path.
        """
        check_is_fitted(self, "net_")
        meta, arrays = self._export_state()
        return write_model_file(path, meta, arrays)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (by this or an older tsrnn)."""
        meta, arrays = read_model_file(path)
        if meta.get("estimator") != cls.__name__:
            raise ModelFileError(f"{path} holds a {meta.get('estimator')!r}, not a "
                                 f"{cls.__name__}.")
        est = cls()
        try:
            params = dict(meta["params"])
            params.setdefault("calendar", None)  # files before calendar features
            params.setdefault("head", "linear")  # files before the decoder head
            params.setdefault("window_scaling", False)  # files before it was the default
            unknown = sorted(set(params) - set(est.get_params()))
            if unknown:
                raise ValueError(f"unknown parameters {unknown}")
            est.set_params(**params)
            est._validate_params()
            est._import_state(meta["state"], arrays)
        except ModelFileError:
            raise
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise ModelFileError(f"{path} is not a valid tsrnn model file: {e!r}") from None
        return est

    def _json_params(self):
        params = self.get_params()
        if not (params["random_state"] is None
                or isinstance(params["random_state"], numbers.Integral)):
            params["random_state"] = None  # generator objects are not saved
        if params["quantiles"] is not None:
            params["quantiles"] = [float(q) for q in np.ravel(params["quantiles"])]
        if params["checkpoint_path"] is not None:
            params["checkpoint_path"] = str(params["checkpoint_path"])
        return {k: (int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool)
                    else v) for k, v in params.items()}

    def _export_state(self):
        params = self._json_params()
        arrays = {f"net/{k}": v for k, v in self.net_.params.items()}
        opt = dict(self._opt_state or {})
        opt_t = int(opt.pop("t", 0))
        arrays.update({f"opt/{k}": v for k, v in opt.items()})
        h = self._history or {}
        rng = getattr(self, "_rng_state", None)
        state = {
            "mode": self._mode,
            "net": self.net_.config(),
            "loss_curve": [float(v) for v in self.loss_curve_],
            "validation_loss_curve": [float(v) for v in self.validation_loss_curve_],
            "best_epoch": int(self.best_epoch_),
            "best": float(h.get("best", np.inf)),
            "stopped": bool(h.get("stopped", False)),
            "stale": int(h.get("stale", 0)),
            "optimizer_t": opt_t,
            "rng": None if rng is None else {
                "bit_generator": type(rng.bit_generator).__name__,
                "state": rng.bit_generator.state},
            "quantiles": list(getattr(self, "_quantiles", [])),
            "season": int(getattr(self, "_season", 0)),
            "window_scaling": bool(getattr(self, "_window_scaling", False)),
            "calendar": list(getattr(self, "_calendar", [])),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (None if not hasattr(self, "feature_names_in_")
                                 else [_plain(c) for c in self.feature_names_in_]),
        }
        if self._mode == "arrays":
            state["y_1d"] = bool(self._y_1d)
            arrays.update(x_loc=self._x_loc, x_scale=self._x_scale, y_loc=self._y_loc,
                          y_scale=self._y_scale)
        else:
            info, _ = D.encode_index(self._tails[0][1])
            state.update(
                channels=[_plain(c) for c in self._channels],
                n_targets=int(self._n_targets),
                target_names=[_plain(c) for c in self._target_names],
                future_exog=[_plain(c) for c in self._future_exog],
                kind=self._kind,
                freq=D.encode_freq(self._freq),
                ids=[_plain(u) for u in self._ids],
                series_name=_plain(self._series_name),
                index=info,
            )
            arrays["fut_cols"] = np.asarray(self._fut_cols, np.int64)
            if getattr(self, "_conformal_scores", None) is not None:
                arrays["conformal_scores"] = self._conformal_scores
                state["conformal_per_window"] = bool(self._conformal_per_window)
            arrays["scaler_loc"] = np.stack([self._scaler_params[u][0] for u in self._ids])
            arrays["scaler_scale"] = np.stack([self._scaler_params[u][1] for u in self._ids])
            arrays["tail_values"] = np.stack([v for v, _ in self._tails])
            arrays["tail_index"] = np.stack([D.encode_index(i)[1] for _, i in self._tails])
        import tsrnn

        meta = {"estimator": type(self).__name__, "tsrnn_version": tsrnn.__version__,
                "params": params, "state": state}
        return meta, arrays

    def _import_state(self, state, arrays):
        net_params = {k[4:]: v for k, v in arrays.items() if k.startswith("net/")}
        cfg = state["net"]
        self.net_ = RecurrentNet.from_params(net_params, cfg["cell"], cfg["num_layers"],
                                             cfg["bidirectional"], cfg["dropout"],
                                             cfg["nonlinearity"], cfg.get("context_size"))
        opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
        opt["t"] = int(state["optimizer_t"])
        self._opt_state = opt
        rng = state["rng"]
        if rng is not None:
            bit_gen = getattr(np.random, rng["bit_generator"])
            if not (isinstance(bit_gen, type) and issubclass(bit_gen, np.random.BitGenerator)):
                raise ValueError(f"unknown bit generator {rng['bit_generator']!r}")
            g = np.random.Generator(bit_gen())
            g.bit_generator.state = rng["state"]
            self._rng_state = g
        self.loss_curve_ = list(state["loss_curve"])
        self.validation_loss_curve_ = list(state["validation_loss_curve"])
        self.best_epoch_ = int(state["best_epoch"])
        self.n_iter_ = len(self.loss_curve_)
        self._history = {"loss": list(self.loss_curve_),
                         "val_loss": list(self.validation_loss_curve_),
                         "best": float(state["best"]), "best_epoch": self.best_epoch_,
                         "stopped": bool(state["stopped"]),
                         "stale": int(state.get("stale", 0))}
        self._quantiles = [float(q) for q in state["quantiles"]]
        self._season = int(state.get("season", 0))
        self._window_scaling = bool(state.get("window_scaling", False))
        self._calendar = [str(c) for c in state.get("calendar", [])]
        self.n_features_in_ = int(state["n_features_in"])
        if state["feature_names_in"] is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        self._mode = state["mode"]
        if self._mode == "arrays":
            self._y_1d = bool(state["y_1d"])
            self._x_loc, self._x_scale = arrays["x_loc"], arrays["x_scale"]
            self._y_loc, self._y_scale = arrays["y_loc"], arrays["y_scale"]
            return
        if self._mode != "pandas":
            raise ValueError(f"unknown mode {self._mode!r}")
        self._channels = list(state["channels"])
        self._n_targets = int(state["n_targets"])
        self._target_names = list(state["target_names"])
        self._future_exog = list(state["future_exog"])
        self._fut_cols = arrays["fut_cols"]
        self._conformal_scores = arrays.get("conformal_scores")
        # files before per-window scores hold them in series units
        self._conformal_per_window = bool(state.get("conformal_per_window", False))
        self._kind = state["kind"]
        self._ids = list(state["ids"])
        self._series_name = state["series_name"]
        loc, scale = arrays["scaler_loc"], arrays["scaler_scale"]
        self._scaler_params = {u: (loc[i], scale[i]) for i, u in enumerate(self._ids)}
        tails_idx = [D.decode_index(state["index"], v) for v in arrays["tail_index"]]
        self._tails = list(zip(arrays["tail_values"], tails_idx))
        freq = D.decode_freq(state["freq"])
        self._freq = tails_idx[0].freq if state["index"]["kind"] == "period" else freq

    # ------------------------------------------------------- PyTorch weights
    def to_torch_state_dict(self):
        """The recurrent weights under PyTorch's ``nn.LSTM/GRU/RNN`` names and shapes
        (numpy arrays; ``{k: torch.from_numpy(v) for k, v in ...}`` loads them into a
        torch module built with the same sizes), plus the head's weights in
        ``nn.Linear`` layout: ``head.weight``/``head.bias`` for ``head="linear"`` (it
        reads the final state, then the known future inputs step by step), or
        ``decoder.context`` (final state -> steps x 8), ``decoder.hidden`` (one step's
        8 context values, then its future inputs -> 32, ReLU) and ``decoder.out``
        (32 -> the step's outputs) for ``head="mlp"``. The network's inputs are the
        data columns in fit order, then a sine and a cosine per calendar cycle
        (``self._calendar``)."""
        check_is_fitted(self, "net_")
        return {k: v.copy() for k, v in self.net_.params.items()}

    def load_torch_state_dict(self, state_dict):
        """Replace the fitted weights with a PyTorch-layout ``state_dict`` (tensors or
        arrays) of the same shapes, e.g. one trained in torch and exported."""
        check_is_fitted(self, "net_")
        new = {}
        for k, cur in self.net_.params.items():
            if k not in state_dict:
                raise ValueError(f"state_dict is missing {k!r} (shape {cur.shape}).")
            v = state_dict[k]
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            if v.shape != cur.shape:
                raise ValueError(f"state_dict[{k!r}] has shape {v.shape}; expected {cur.shape}.")
            new[k] = v.astype(cur.dtype)
        self.net_.params.update(new)
        return self

    @staticmethod
    def _check_finite_forecast(pred):
        if not np.isfinite(pred).all():
            raise FloatingPointError(
                "The forecast is not finite (the network diverged or the input holds "
                "extreme values); refusing to return NaN/inf. Refit with a lower "
                "learning_rate or check the input."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True  # y of shape (n, horizon)
        return tags
