"""TSRNNRegressor: a scikit-learn forecaster on pandas data or windowed arrays.

The class holds the parameters and delegates: the data routes (:mod:`tsrnn.routes`)
pack, scale, window and forecast; :mod:`tsrnn.fitting` trains; :mod:`tsrnn.state`
and :mod:`tsrnn.model_file` save and load.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from tsrnn import compile_helper
from tsrnn.backend import resolve_device
from tsrnn.fitting import train
from tsrnn.intervals import check_levels
from tsrnn.model_file import ModelFileError, write_model_file
from tsrnn.params import PARAMETER_CONSTRAINTS, check_combinations, check_quantiles
from tsrnn.routes import ArrayRoute, PanelRoute
from tsrnn.routes.frames import nixtla_names


class _RouteAttribute:
    """A fitted attribute read from the data route: AttributeError before fit, or
    on a route that has no such thing (a model fitted on arrays has no series)."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, est, owner=None):
        if est is None:
            return self
        route = est.__dict__.get("route_")
        if route is None or not hasattr(route, self.name):
            raise AttributeError(f"{type(est).__name__} has no attribute "
                                 f"{self.name + '_'!r} (fit it on pandas data first).")
        return getattr(route, self.name)


class TSRNNRegressor(RegressorMixin, BaseEstimator):
    """Recurrent (LSTM/GRU/RNN) forecaster in the scikit-learn mould.

    ``fit`` takes a pandas Series, a wide DataFrame indexed by time, a long DataFrame
    (``unique_id``, ``ds``, ``y`` + exogenous columns), or windowed arrays ``X`` of
    shape (n_samples, lookback, n_features) (or (n_samples, lookback)) with ``y`` of
    shape (n_samples,) or (n_samples, horizon). The estimator owns scaling (per
    series), windowing (by index, no copies), training with early stopping, and
    multi-step forecasting. Why each default is what it is: ``docs/user_guide.md``.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}, default="lstm"
    hidden_size : int, default=32
    num_layers : int, default=1
    bidirectional : bool, default=False
    dropout : float in [0, 1), default=0.0
        Between recurrent layers, in training (so it needs ``num_layers >= 2``).
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
        without gradient. With ``stateful=True``: the chunk length (default
        ``lookback``).
    stateful : bool, default=False
        Train along whole series instead of on windows (truncated BPTT): batch rows
        follow the series chunk by chunk (``tbptt_steps`` steps), carrying the state
        from chunk to chunk, and every step forecasts the next ``horizon`` values
        (``tsrnn.stateful``). Needs ``strategy="direct"`` and
        ``window_scaling=False``; the baseline is the last value. ``predict`` warms
        the state up on the last ``lookback`` rows.
    batch_size : int, default=32
    max_epochs : int, default=200
    learning_rate : float, default=3e-3
    optimizer : {"adam", "sgd", "rmsprop"}, default="adam"
    weight_decay : float, default=0.0
    clip_norm : float or None, default=1.0
        Global gradient-norm clip.
    weight_averaging : float in (0, 1) or None, default=0.99
        Decay of an exponential moving average of the weights over the optimizer's
        steps; the average is what validates, what early stopping keeps and what
        forecasts. It smooths out the noise of the last steps, so that fits with
        different seeds agree more closely and forecast better (the ablation:
        ``docs/user_guide.md``). None keeps the raw weights.
    loss : {"mae", "mse", "huber"}, default="mae"
        Training loss on the (scaled) forecast errors. The absolute error makes the
        forecast a median, what MAE/MASE-type accuracy rewards and what outliers
        move least. Use "mse" when forecasts are judged by squared error.
    baseline : {"auto", "last", "seasonal"}, default="auto"
        The network forecasts the change from a naive forecast: the last value
        ("last"), the value one season earlier ("seasonal"), or whichever of the two
        has the smaller error on the training data ("auto"; seasonal is a candidate
        only when ``season_length <= lookback``). Pandas input only.
    window_scaling : bool, default=True
        Standardise each input window's target channels by the window's own mean
        and standard deviation (at least 0.05 in the scaler's units), and forecast
        in those units, so that a forecast follows the level and swings of the
        recent window rather than the history's. Series that revert to a level the
        window no longer shows forecast better with False. Pandas input only.
    combine : {"auto", "smoothing"} or None, default="auto"
        Average the network's forecast with a per-series exponential smoothing
        forecast (:mod:`tsrnn.smoothing`: simple, damped-trend or drift smoothing,
        chosen per series by AICc, after a seasonal adjustment where the series has
        a season of ``season_length``). The smoothing knows each series' own level
        and trend; the network what the series share. "smoothing": always; "auto":
        when the mean of the two has the smaller error on the held-out windows
        (without early stopping: always); None: the network alone. Quantiles and
        intervals move with the point forecast, and the conformal scores are the
        combined forecast's. Pandas input only.
    head : {"mlp", "linear"}, default="mlp"
        What turns the final state into the forecast. "mlp": a small decoder shared
        by the forecast steps (a context of 8 values per step from the final state,
        with that step's known future inputs, through 32 ReLU units), so a future
        input's effect is learned once for every step. "linear": one linear map
        from the final state and all future inputs to all outputs.
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
    random_state : int, RandomState instance or None, default=None
        Seed of the weights, the batch order and dropout. None draws fresh
        randomness; an int gives the same model, bit for bit, on every run.
    device : {"cpu", "cuda", "auto"}, default="cpu"
    verbose : int, default=0
        0 is silent; 1 shows a tqdm bar with the loss.
    warm_start : bool, default=False
        Keep the weights of the previous fit as the starting point.
    alias : str or None, default=None
        Name the forecast columns as Nixtla's tools do (``utilsforecast``'s
        ``evaluate``, ``plot_series``): ``<alias>``, ``<alias>-lo-80``,
        ``<alias>-hi-80``, ``<alias>-q-10`` (``<alias>_<target>`` for each of several
        targets). None keeps tsrnn's names (``y_pred``, ``y_pred_lo_80``, ...).

    Attributes
    ----------
    net_ : RecurrentNet
        The trained network (weights in ``net_.params``, PyTorch layout).
    route_ : PanelRoute or ArrayRoute
        The fitted data route: scaling, columns, history tails, conformal scores.
    training_state_ : TrainingState
        Optimizer state, random generator and curves that continue a fit.
    loss_curve_, validation_loss_curve_ : list of float
        Training and validation loss per epoch (scaled units).
    best_epoch_ : int
        The epoch whose weights were kept: the last epoch that improved the best
        validation loss (the training loss without validation) by more than a
        relative 1e-4, so not always the exact argmin of the curve.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str (pandas input)
    target_names_, exog_names_, future_exog_ : list (pandas input)
        Forecast columns, exogenous input columns, and those whose future is known.
    series_ids_ : list (pandas input)
        Series ids of a long frame (``[None]`` for a Series or a wide frame).
    calendar_ : list of str (pandas input)
        Calendar cycles fed to the network (what ``calendar="auto"`` chose).
    conformal_scores_ : ndarray of shape (n_windows, horizon, n_targets) or None
        Held-out absolute errors behind ``predict(level=)`` (pandas input).

    Examples
    --------
    >>> from tsrnn import TSRNNRegressor
    >>> from tsrnn.datasets import load_air_passengers
    >>> y = load_air_passengers()
    >>> model = TSRNNRegressor(lookback=24, horizon=12, random_state=0).fit(y)
    >>> model.predict(level=[90]).shape
    (12, 3)
    """

    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(self, cell="lstm", hidden_size=32, num_layers=1, bidirectional=False,
                 dropout=0.0, lookback=24, horizon=1, strategy="direct", tbptt_steps=None,
                 stateful=False,
                 batch_size=32, max_epochs=200, learning_rate=3e-3, optimizer="adam",
                 weight_decay=0.0, clip_norm=1.0, weight_averaging=0.99, loss="mae",
                 quantiles=None,
                 baseline="auto", window_scaling=True, combine="auto",
                 season_length=None, head="mlp",
                 calendar="auto", early_stopping=True,
                 validation_fraction=0.1, patience=20, scaler="standard", missing="raise",
                 freq=None, checkpoint_path=None, checkpoint_every=1, random_state=None,
                 device="cpu", verbose=0, warm_start=False, alias=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.lookback = lookback
        self.horizon = horizon
        self.strategy = strategy
        self.tbptt_steps = tbptt_steps
        self.stateful = stateful
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.weight_averaging = weight_averaging
        self.loss = loss
        self.quantiles = quantiles
        self.baseline = baseline
        self.window_scaling = window_scaling
        self.combine = combine
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
        self.alias = alias

    target_names_ = _RouteAttribute("target_names")
    exog_names_ = _RouteAttribute("exog_names")
    future_exog_ = _RouteAttribute("future_exog")
    series_ids_ = _RouteAttribute("ids")
    calendar_ = _RouteAttribute("calendar")
    conformal_scores_ = _RouteAttribute("conformal_scores")

    # ---------------------------------------------------------------------- fit
    def fit(self, X: pd.Series | pd.DataFrame | npt.ArrayLike,
            y: npt.ArrayLike | None = None, *, target: str | list | None = None,
            future_exog: list | None = None) -> TSRNNRegressor:
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
        return self._fit(X, y, target, future_exog, self._checked_quantiles(),
                         incremental=False)

    def partial_fit(self, X: pd.Series | pd.DataFrame | npt.ArrayLike,
                    y: npt.ArrayLike | None = None, *, target: str | list | None = None,
                    future_exog: list | None = None) -> TSRNNRegressor:
        """One more epoch on the given data (initializing on the first call)."""
        quantiles = self.route_.quantiles if hasattr(self, "net_") \
            else self._checked_quantiles()
        return self._fit(X, y, target, future_exog, quantiles, incremental=True)

    def _checked_quantiles(self) -> list[float]:
        """Validate the parameters, alone and together; the sorted quantiles."""
        self._validate_params()
        check_combinations(self)
        resolve_device(self.device)
        return check_quantiles(self.quantiles, self.strategy)

    def _fit(self, X, y, target, future_exog, quantiles, incremental):
        if resolve_device(self.device) == "cpu":  # a cold cache: compile on two cores
            compile_helper.start(self.cell)
        previous = self.route_ if (incremental and hasattr(self, "net_")) else None
        if isinstance(X, (pd.Series, pd.DataFrame)) and y is None:
            route = PanelRoute(lookback=self.lookback, horizon=self.horizon,
                               strategy=self.strategy, scaler=self.scaler,
                               quantiles=quantiles)
            plan = route.prepare(self, X, target, future_exog, previous)
        else:  # with y given, X is tabular (scikit-learn's contract)
            route = ArrayRoute(quantiles=quantiles)
            plan = route.prepare(self, X, y, previous)
        self.route_ = route
        train(self, plan, incremental)
        return self

    # ------------------------------------------------------------------ predict
    def predict(self, X: pd.Series | pd.DataFrame | npt.ArrayLike | None = None, *,
                future: pd.DataFrame | None = None, level: Sequence[float] | None = None,
                steps: Sequence[int] | None = None) -> pd.DataFrame | np.ndarray:
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
        steps : list of int, optional
            The steps to forecast, 1 being the first after the history (default
            1..horizon): any subset of them, or past the horizon for a recursive
            model. ``future`` then needs only the rows the model reads (for the
            default decoder head, those of the steps asked for).

        Returns
        -------
        pd.DataFrame indexed by the next ``horizon`` timestamps (one column per
        target), a long DataFrame (``unique_id``, ``ds``, ``<target>_pred``) for long
        input, or an ndarray for array input. With ``quantiles``, extra columns
        ``<point>_q<level>`` (arrays: a last axis of quantiles).
        """
        check_is_fitted(self, "net_")
        self.net_.device = resolve_device(self.device)
        if isinstance(self.route_, ArrayRoute):
            if steps is not None:
                raise ValueError("steps= needs a model fitted on pandas data; a model "
                                 "fitted on arrays forecasts the columns of its y.")
            return self.route_.predict(self, X, level)
        if X is not None and not isinstance(X, (pd.Series, pd.DataFrame)):
            raise TypeError("This model was fitted on pandas data: pass a Series or "
                            "DataFrame (or nothing) to predict.")
        self.route_.check_unchanged(self.get_params())
        fc = self.route_.predict(self.net_, X, future, level, steps)
        return fc if self.alias is None else nixtla_names(fc, self.route_, self.alias)

    def calibrate(self, X: pd.Series | pd.DataFrame,
                  n_windows: int | None = None) -> TSRNNRegressor:
        """Recompute the conformal scores behind ``predict(level=...)`` from ``X``
        (held-out history with the columns seen in fit): the absolute errors of the
        forecasts from the last ``n_windows`` origins of each series (all by
        default), in one batched pass."""
        check_is_fitted(self, "net_")
        if not isinstance(self.route_, PanelRoute):
            raise ValueError("calibrate needs a model fitted on pandas data.")
        self.route_.calibrate(self.net_, X, n_windows)
        return self

    def score(self, X, y=None, sample_weight=None) -> float:
        """Forecast accuracy, higher is better.

        On pandas data: ``X`` continues the fitted history (as the test fold of a
        ``TimeSeriesSplit`` does), and the score is minus the mean, over series and
        targets, of the MASE of the rolling forecasts over ``X``: from every origin
        whose ``horizon`` steps lie in ``X`` (the first at the end of the fitted
        history), without refitting, scaled by the in-sample seasonal-naive error of
        the training data. So ``GridSearchCV(model, grid,
        cv=TimeSeriesSplit(...)).fit(y)`` tunes the model on rolling origins (sort
        a long frame by ``ds`` first). On arrays: R^2 of ``predict(X)`` against
        ``y`` (scikit-learn's regressor score)."""
        if isinstance(X, (pd.Series, pd.DataFrame)) and y is None:
            check_is_fitted(self, "net_")
            if not isinstance(self.route_, PanelRoute):
                raise ValueError("This model was fitted on arrays: pass y to score.")
            self.route_.check_unchanged(self.get_params())
            return self.route_.score(self.net_, X)
        return super().score(X, y, sample_weight=sample_weight)

    def predict_insample(self, X: pd.Series | pd.DataFrame, *, step_size: int = 1,
                         level: Sequence[float] | None = None,
                         partial: bool = False) -> pd.DataFrame:
        """Forecasts from every window of the history ``X`` (the data fitted on, or
        any history with its columns), without refitting: neuralforecast's
        ``predict_insample``, darts' ``historical_forecasts``. One batched pass.

        Parameters
        ----------
        X : pd.Series or pd.DataFrame
            History of the shape and columns seen in fit.
        step_size : int, default=1
            Distance between forecast origins, counted back from the last window.
        level : list of float, optional
            Conformal interval levels, as in :meth:`predict`.
        partial : bool, default=False
            Also the last ``horizon - 1`` windows, whose later steps fall after the
            end of ``X``, with their steps inside ``X`` (then every point after the
            first window has a one-step-ahead forecast).

        Returns
        -------
        pd.DataFrame, one row per (series, window, step, target): ``unique_id``
        (long input), ``target``, ``cutoff`` (last timestamp seen), ``ds``, ``step``,
        ``actual``, ``forecast`` and ``forecast_q<q>`` / ``forecast_lo_<level>`` /
        ``forecast_hi_<level>`` columns (the layout of a backtest's forecasts).
        """
        check_is_fitted(self, "net_")
        if not isinstance(self.route_, PanelRoute):
            raise ValueError("predict_insample needs a model fitted on pandas data.")
        if not (isinstance(step_size, numbers.Integral) and step_size >= 1):
            raise ValueError(f"step_size must be a positive int; got {step_size!r}.")
        self.route_.check_unchanged(self.get_params())
        levels = check_levels(level, self.route_.conformal_scores)
        return self.route_.insample(self.net_, X, int(step_size), levels, partial)

    # --------------------------------------------------------------- model file
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (the ``.tsrnn`` format of
        :mod:`tsrnn.model_file`: JSON metadata and ``.npy`` arrays in a zip, no
        pickle). The write is atomic: a crash leaves the old file or none.

        Returns the path.
        """
        from tsrnn.state import export_state

        check_is_fitted(self, "net_")
        meta, arrays = export_state(self)
        return write_model_file(path, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TSRNNRegressor:
        """Load a model written by :meth:`save` (by this or an older tsrnn). The file
        is validated before anything reaches compiled code: a malformed or crafted
        file raises :class:`~tsrnn.model_file.ModelFileError`."""
        from tsrnn.state import read_params, restore

        meta, arrays, params = read_params(path, cls.__name__, cls().get_params())
        est = cls(**params)
        try:
            est._validate_params()
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{path} is not a valid tsrnn model file: {e}") from None
        return restore(est, meta, arrays, path)

    # ------------------------------------------------------- PyTorch weights
    def to_torch_state_dict(self) -> dict[str, np.ndarray]:
        """The weights under ``nn.LSTM/GRU/RNN`` names and shapes, plus the head in
        ``nn.Linear`` layout (numpy arrays; ``docs/model_file.md`` says which module
        each belongs to). The network's inputs are the data columns in fit order,
        then a sine and a cosine per calendar cycle (``calendar_``)."""
        check_is_fitted(self, "net_")
        return {k: v.copy() for k, v in self.net_.params.items()}

    def load_torch_state_dict(self, state_dict: dict[str, Any]) -> TSRNNRegressor:
        """Replace the fitted weights with a PyTorch-layout ``state_dict`` (tensors or
        arrays) of the same shapes, e.g. one trained in torch and exported."""
        check_is_fitted(self, "net_")
        self.net_.load_weights(state_dict)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True  # y of shape (n, horizon)
        return tags
