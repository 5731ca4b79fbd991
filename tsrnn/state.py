"""The saved state of a fitted :class:`~tsrnn.TSRNNRegressor`: what goes into a model
file (:mod:`tsrnn.model_file`) and how it comes back.

``export_state(est)`` gives (meta, arrays): the parameters, the network's
configuration, the training state (curves, optimizer, random generator) and the
data route's state (scaling, columns, history tails, conformal scores).
``import_state`` validates them (:func:`validate_state`) and rebuilds the network,
the route and the training state.

Schema of ``state`` (format version 1; keys marked * are for pandas models only):

=====================  ==========================================================
mode                   "pandas" or "arrays"
net                    {cell, num_layers, bidirectional, dropout, nonlinearity,
                       context_size ("mlp" head)}
loss_curve,            lists of floats, one per epoch
validation_loss_curve
best_epoch, best,      early stopping: the kept epoch, its loss, epochs without
stale, stopped         improvement, whether it stopped
optimizer_t, rng       optimizer step count; numpy bit generator name and state
quantiles              sorted levels in (0, 1)
season                 lag of the naive baseline, in [0, lookback]
window_scaling         bool
calendar               subset of ["day", "week", "year"]
n_features_in,         input columns
feature_names_in
y_1d                   (arrays) whether y was 1-D
channels*, n_targets*  data columns, targets first
target_names*,         names (str, int, float, bool, or {"tuple": [...]})
future_exog*
kind*, freq*, index*   "series"/"wide"/"long"; the frequency; the index encoding
ids*, series_name*     series ids (None for a single series)
conformal_per_window*  unit of the conformal scores
=====================  ==========================================================

Arrays: ``net/<name>`` (PyTorch layout), ``opt/<slot>/<name>``, and ``x_loc``,
``x_scale``, ``y_loc``, ``y_scale`` (arrays) or ``scaler_loc``, ``scaler_scale``
(series, channels), ``tail_values`` (series, lookback, channels), ``tail_index``
(series, lookback), ``fut_cols``, ``conformal_scores`` (windows, horizon, targets)
(pandas). Every shape is checked against the others and the configuration.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from tsrnn import _warnings
from tsrnn import data as D
from tsrnn._config import MAX_LAYERS
from tsrnn.data.codec import object_array, plain, unplain
from tsrnn.model_file import ModelFileError, read_model_file
from tsrnn.network import RecurrentNet
from tsrnn.routes import ArrayRoute, PanelRoute
from tsrnn.smoothing import Smoothing


@dataclass
class TrainingState:
    """What continues a fit: the curves and early-stopping bookkeeping (``history``,
    as :meth:`tsrnn.training.Trainer.fit` keeps it), the optimizer's state and the
    random generator."""

    history: dict | None = None
    optimizer: dict | None = None
    rng: np.random.Generator | None = None


def json_params(est) -> dict:
    """``est.get_params()`` as JSON values."""
    params = est.get_params()
    if not (params["random_state"] is None
            or isinstance(params["random_state"], numbers.Integral)):
        params["random_state"] = None  # generator objects are not saved
    if params["quantiles"] is not None:
        params["quantiles"] = [float(q) for q in np.ravel(params["quantiles"])]
    if params["checkpoint_path"] is not None:
        params["checkpoint_path"] = str(params["checkpoint_path"])
    return {k: (int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool)
                else v) for k, v in params.items()}


def read_params(path, estimator_name: str, defaults: dict):
    """(meta, arrays, parameters) of a model file, after checking it holds an
    ``estimator_name`` whose parameters are among ``defaults`` (older files lack the
    newer ones: they get the value that reproduces them)."""
    meta, arrays = read_model_file(path)
    if meta.get("estimator") != estimator_name:
        raise ModelFileError(f"{path} holds a {meta.get('estimator')!r}, not a "
                             f"{estimator_name}.")
    params = dict(meta["params"])
    params.setdefault("calendar", None)  # files before calendar features
    params.setdefault("head", "linear")  # files before the decoder head
    params.setdefault("window_scaling", False)  # files before it was the default
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ModelFileError(f"{path} is not a valid tsrnn model file: unknown "
                             f"parameters {unknown}")
    return meta, arrays, params


def restore(est, meta, arrays, path):
    """``est`` (built with the file's parameters) with the file's fitted state,
    validated first (:func:`validate_state`); a checkpoint gets the weights its
    finished fit would keep, and a warning."""
    try:
        est.net_, est.route_, est.training_state_, fitted = import_state(
            meta, arrays, est.get_params())
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError,
            OverflowError) as e:
        raise ModelFileError(f"{path} is not a valid tsrnn model file: {e}") from None
    for k, v in fitted.items():
        setattr(est, k, v)
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
    if best:  # a checkpoint: the weights the finished fit would keep
        epoch = est.n_iter_
        if est.validation_loss_curve_:
            est.net_.params.update(best)
            epoch = est.best_epoch_
        _warnings.warn(
            f"{path} is a checkpoint of a fit ({est.n_iter_} of {est.max_epochs} "
            f"epochs): loaded with the weights of epoch {epoch}, without conformal "
            "scores (calibrate(X) gives them). Resume the fit with fit(..., "
            "checkpoint_path=...) to finish it.")
    return est


def export_state(est):
    """(meta, arrays) of a fitted estimator, for :func:`tsrnn.model_file.write_model_file`."""
    import tsrnn

    route, ts = est.route_, est.training_state_
    arrays = {f"net/{k}": v for k, v in est.net_.params.items()}
    opt = dict(ts.optimizer or {})
    opt_t = int(opt.pop("t", 0))
    arrays.update({f"opt/{k}": v for k, v in opt.items()})
    h = ts.history or {}
    rng = ts.rng
    state = {
        "mode": route.kind_name,
        "net": est.net_.config(),
        "loss_curve": [float(v) for v in est.loss_curve_],
        "validation_loss_curve": [float(v) for v in est.validation_loss_curve_],
        "best_epoch": int(est.best_epoch_),
        "best": float(h.get("best", np.inf)),
        "stopped": bool(h.get("stopped", False)),
        "stale": int(h.get("stale", 0)),
        "optimizer_t": opt_t,
        "rng": None if rng is None else {
            "bit_generator": type(rng.bit_generator).__name__,
            "state": rng.bit_generator.state},
        "quantiles": list(route.quantiles),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (None if not hasattr(est, "feature_names_in_")
                             else [plain(c) for c in est.feature_names_in_]),
    }
    if isinstance(route, ArrayRoute):
        state.update(season=0, window_scaling=False, calendar=[], y_1d=bool(route.y_1d))
        arrays.update(x_loc=route.x_loc, x_scale=route.x_scale, y_loc=route.y_loc,
                      y_scale=route.y_scale)
    else:
        info, _ = D.encode_index(route.tails[0][1])
        state.update(
            season=int(route.season),
            window_scaling=bool(route.window_scaling),
            calendar=list(route.calendar),
            channels=[plain(c) for c in route.channels],
            n_targets=int(route.n_targets),
            target_names=[plain(c) for c in route.target_names],
            future_exog=[plain(c) for c in route.future_exog],
            kind=route.kind,
            freq=D.encode_freq(route.freq),
            ids=[plain(u) for u in route.ids],
            series_name=plain(route.series_name),
            index=info,
        )
        arrays["fut_cols"] = np.asarray(route.fut_cols, np.int64)
        if route.conformal_scores is not None:
            arrays["conformal_scores"] = route.conformal_scores
            state["conformal_per_window"] = bool(route.conformal_per_window)
        arrays["mase_scale"] = route.mase_scale
        if route.smoothing is not None:
            state["combine_weight"] = float(route.combine_weight)
            state["smoothing_season"] = int(route.smoothing.season)
            for k in Smoothing.ARRAYS:
                arrays[f"smooth/{k}"] = getattr(route.smoothing, k)
        arrays["scaler_loc"] = np.stack([route.scaler_params[u][0] for u in route.ids])
        arrays["scaler_scale"] = np.stack([route.scaler_params[u][1] for u in route.ids])
        arrays["tail_values"] = np.stack([v for v, _ in route.tails])
        arrays["tail_index"] = np.stack([D.encode_index(i)[1] for _, i in route.tails])
    meta = {"estimator": type(est).__name__, "tsrnn_version": tsrnn.__version__,
            "params": json_params(est), "state": state}
    return meta, arrays


def import_state(meta, arrays, params):
    """(net, route, training state, fitted curves) from a model file's contents;
    ``params`` are the estimator's parameters (a dict, as ``get_params``).
    Raises ValueError when they do not fit together (:func:`validate_state`)."""
    try:
        validate_state(meta, arrays, params)
    except RecursionError:
        raise _Invalid("the state is nested too deeply") from None
    state = meta["state"]
    net_params = {k[4:]: v for k, v in arrays.items() if k.startswith("net/")}
    cfg = state["net"]
    net = RecurrentNet.from_params(net_params, cfg["cell"], cfg["num_layers"],
                                   cfg["bidirectional"], cfg["dropout"],
                                   cfg["nonlinearity"], cfg.get("context_size"))
    opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
    opt["t"] = int(state["optimizer_t"])
    rng = state["rng"]
    generator = None
    if rng is not None:
        bit_gen = getattr(np.random, rng["bit_generator"])
        generator = np.random.Generator(bit_gen())
        generator.bit_generator.state = rng["state"]
    curves = {"loss_curve_": list(state["loss_curve"]),
              "validation_loss_curve_": list(state["validation_loss_curve"]),
              "best_epoch_": int(state["best_epoch"]),
              "n_features_in_": int(state["n_features_in"])}
    curves["n_iter_"] = len(curves["loss_curve_"])
    if state["feature_names_in"] is not None:
        curves["feature_names_in_"] = object_array(
            [unplain(c) for c in state["feature_names_in"]])
    history = {"loss": list(curves["loss_curve_"]),
               "val_loss": list(curves["validation_loss_curve_"]),
               "best": float(state["best"]), "best_epoch": curves["best_epoch_"],
               "stopped": bool(state["stopped"]), "stale": int(state.get("stale", 0))}
    training = TrainingState(history=history, optimizer=opt, rng=generator)
    quantiles = [float(q) for q in state["quantiles"]]
    mode = state["mode"]
    if mode == "arrays":
        route = ArrayRoute(quantiles=quantiles)
        route.y_1d = bool(state["y_1d"])
        route.x_loc, route.x_scale = arrays["x_loc"], arrays["x_scale"]
        route.y_loc, route.y_scale = arrays["y_loc"], arrays["y_scale"]
        return net, route, training, curves
    if mode != "pandas":
        raise ValueError(f"unknown mode {mode!r}")
    route = PanelRoute(lookback=params["lookback"], horizon=params["horizon"],
                       strategy=params["strategy"], scaler=params["scaler"],
                       quantiles=quantiles)
    route.season = int(state.get("season", 0))
    route.window_scaling = bool(state.get("window_scaling", False))
    route.calendar = [str(c) for c in state.get("calendar", [])]
    route.channels = [unplain(c) for c in state["channels"]]
    route.n_targets = int(state["n_targets"])
    route.target_names = [unplain(c) for c in state["target_names"]]
    route.future_exog = [unplain(c) for c in state["future_exog"]]
    route.fut_cols = arrays["fut_cols"]
    route.conformal_scores = arrays.get("conformal_scores")
    route.combine = params.get("combine")
    if "smooth/params" in arrays:
        route.smoothing = Smoothing(int(state["smoothing_season"]),
                                    *(arrays[f"smooth/{k}"] for k in Smoothing.ARRAYS))
        route.combine_weight = float(state["combine_weight"])
    if "mase_scale" in arrays:  # files before score() on pandas data lack it
        route.mase_scale = arrays["mase_scale"]
    else:
        route.mase_scale = D.naive_scale(
            np.concatenate(arrays["tail_values"]),
            np.arange(0, len(arrays["tail_values"]) + 1) * params["lookback"],
            int(state["n_targets"]), 1)
    # files before per-window scores hold them in series units
    route.conformal_per_window = bool(state.get("conformal_per_window", False))
    route.kind = state["kind"]
    route.ids = [unplain(u) for u in state["ids"]]
    route.series_name = unplain(state["series_name"])
    loc, scale = arrays["scaler_loc"], arrays["scaler_scale"]
    route.scaler_params = {u: (loc[i], scale[i]) for i, u in enumerate(route.ids)}
    tails_idx = [D.decode_index(state["index"], v) for v in arrays["tail_index"]]
    route.tails = list(zip(arrays["tail_values"], tails_idx))
    freq = D.decode_freq(state["freq"])
    route.freq = tails_idx[0].freq if state["index"]["kind"] == "period" else freq
    return net, route, training, curves


# --------------------------------------------------------------------- validation
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_CURVE_KEYS = ("loss_curve", "validation_loss_curve")


class _Invalid(ValueError):
    """A model file's state that does not fit together (reported as ModelFileError)."""


def _need(ok, what):
    if not ok:
        raise _Invalid(what)


def _int(v, name, lo=0, hi=None):
    _need(isinstance(v, int) and not isinstance(v, bool)
          and v >= lo and (hi is None or v <= hi),
          f"{name} must be an int in [{lo}, {hi if hi is not None else 'inf'}]; got {v!r}")
    return v


def _array(arrays, name, shape, kinds="f", finite=True):
    _need(name in arrays, f"array {name!r} is missing")
    a = arrays[name]
    _need(a.dtype.kind in kinds, f"array {name!r} has dtype {a.dtype}")
    _need(a.shape == tuple(shape),
          f"array {name!r} has shape {a.shape}; the configuration needs {tuple(shape)}")
    if finite and a.dtype.kind == "f":
        _need(np.isfinite(a).all(), f"array {name!r} holds NaN or inf")
    return a


def _names(v, name, n=None):
    _need(isinstance(v, list), f"{name} must be a list")
    out = [unplain(x) for x in v]
    _need(n is None or len(out) == n, f"{name} must have {n} entries; got {len(out)}")
    return out


def validate_state(meta, arrays, params):
    """Check a model file's state and arrays against each other and the parameters
    (already validated by the estimator's constraints) before any of it reaches
    compiled code; raises ValueError naming what does not fit."""
    from tsrnn import functional as F
    from tsrnn.heads import DECODER_KEYS, HEADS

    state = meta["state"]
    _need(isinstance(state, dict), "state must be an object")
    cfg = state.get("net")
    _need(isinstance(cfg, dict), "state.net must be an object")
    cell, layers = cfg.get("cell"), cfg.get("num_layers")
    _need(cell in F.CELLS, f"state.net.cell must be one of {sorted(F.CELLS)}; got {cell!r}")
    _int(layers, "state.net.num_layers", 1, MAX_LAYERS)
    _need(isinstance(cfg.get("bidirectional"), bool), "state.net.bidirectional must be a bool")
    _need(cfg.get("nonlinearity") in ("tanh", "relu"), "state.net.nonlinearity is invalid")
    dropout = cfg.get("dropout")
    _need(isinstance(dropout, (int, float)) and 0 <= dropout < 1,
          "state.net.dropout must be in [0, 1)")
    head = "mlp" if f"net/{DECODER_KEYS[0]}" in arrays else "linear"
    _need(head == params["head"] or "head" not in meta["params"],
          f"the weights are of a {head!r} head; params say {params['head']!r}")
    for k in ("weight_ih_l0", "weight_hh_l0"):
        _need(f"net/{k}" in arrays and arrays[f"net/{k}"].ndim == 2,
              f"array 'net/{k}' is missing or not 2-D")
    w_ih = arrays["net/weight_ih_l0"]
    dtype = w_ih.dtype
    _need(dtype in (np.float32, np.float64), f"weights have dtype {dtype}")
    n_in, H = w_ih.shape[1], arrays["net/weight_hh_l0"].shape[1]
    _need(n_in >= 1 and H >= 1, "the first layer's weights are empty")
    shapes = F.param_shapes(cell, n_in, H, layers, cfg["bidirectional"])
    for k, shape in shapes.items():
        _array(arrays, f"net/{k}", shape, kinds=dtype.kind)
        _need(arrays[f"net/{k}"].dtype == dtype, f"array 'net/{k}' has dtype "
              f"{arrays[f'net/{k}'].dtype}, the others {dtype}")
    dirs = 2 if cfg["bidirectional"] else 1
    quantiles = state.get("quantiles")
    _need(isinstance(quantiles, list) and all(isinstance(q, (int, float)) and 0 < q < 1
                                              for q in quantiles)
          and quantiles == sorted(set(quantiles)), "state.quantiles must be sorted, "
          "distinct levels in (0, 1)")
    Q = max(len(quantiles), 1)
    mode = state.get("mode")
    _need(mode in ("pandas", "arrays"), f"state.mode must be 'pandas' or 'arrays'; got {mode!r}")
    if mode == "arrays":
        n_feat, n_future = n_in, 0
        y = arrays.get("y_loc")
        _need(y is not None and y.ndim == 1 and y.size >= 1, "array 'y_loc' is missing")
        n_targets = n_steps = y.size  # each step of y is one step of the decoder
        for k, n in (("x_loc", n_in), ("x_scale", n_in), ("y_loc", y.size),
                     ("y_scale", y.size)):
            _array(arrays, k, (n,))
        _need(isinstance(state.get("y_1d"), bool), "state.y_1d must be a bool")
        n_out = n_targets * Q
    else:
        n_feat, n_targets, n_steps, n_future, n_out = _validate_panel(
            state, arrays, params, n_in, Q)
    _int(state.get("n_features_in"), "state.n_features_in", n_feat, n_feat)
    names = state.get("feature_names_in")
    _need(names is None or len(_names(names, "state.feature_names_in")) == n_feat,
          "state.feature_names_in does not match the inputs")
    if head == "linear":
        _array(arrays, "net/head.weight", (n_out, dirs * H + n_future), kinds=dtype.kind)
        _array(arrays, "net/head.bias", (n_out,), kinds=dtype.kind)
    else:
        c = _int(cfg.get("context_size"), "state.net.context_size", 1, 1 << 16)
        dec = arrays["net/decoder.hidden.weight"].shape[0]
        _need(dec >= 1, "the decoder has no hidden units")
        for k, shape in (("context.weight", (n_steps * c, dirs * H)),
                         ("context.bias", (n_steps * c,)),
                         ("hidden.weight", (dec, c + n_future // n_steps)),
                         ("hidden.bias", (dec,)), ("out.weight", (n_out // n_steps, dec)),
                         ("out.bias", (n_out // n_steps,))):
            _array(arrays, f"net/decoder.{k}", shape, kinds=dtype.kind)
    expected = {f"net/{k}" for k in shapes} | {f"net/{k}" for k in HEADS[head].keys}
    extra = sorted(k for k in arrays if k.startswith("net/") and k not in expected)
    _need(not extra, f"unexpected weights {extra}")
    for k in arrays:  # a checkpoint's best weights: one per weight
        if k.startswith("best/"):
            _need(f"net/{k[5:]}" in expected, f"unexpected checkpoint array {k!r}")
            _array(arrays, k, arrays[f"net/{k[5:]}"].shape, kinds=dtype.kind)
    for k, a in arrays.items():  # optimizer slots: one per weight, its shape
        if k.startswith("opt/"):
            slot, _, name = k[4:].partition("/")
            _need(slot in ("m", "v", "velocity", "sq", "average") and f"net/{name}" in expected,
                  f"unexpected optimizer array {k!r}")
            _array(arrays, k, arrays[f"net/{name}"].shape, kinds=dtype.kind, finite=False)
            _need(a.dtype == dtype, f"optimizer array {k!r} has dtype {a.dtype}")
    _validate_training(state)


def _validate_panel(state, arrays, params, n_in, Q):
    """The pandas route's state; returns (inputs, targets, steps, future inputs,
    outputs) as the network must have them."""
    from tsrnn.data import CALENDAR_CYCLES

    lookback, horizon = params["lookback"], params["horizon"]
    channels = _names(state.get("channels"), "state.channels")
    C = len(channels)
    _need(C >= 1 and len(set(channels)) == C, "state.channels must be distinct names")
    nt = _int(state.get("n_targets"), "state.n_targets", 1, C)
    _need(_names(state.get("target_names"), "state.target_names", nt) == channels[:nt],
          "state.target_names must be the first channels")
    future = _names(state.get("future_exog"), "state.future_exog")
    _need(all(f in channels[nt:] for f in future) and len(set(future)) == len(future),
          "state.future_exog must be distinct exogenous channels")
    cal = state.get("calendar", [])
    _need(isinstance(cal, list) and all(c in CALENDAR_CYCLES for c in cal)
          and len(set(cal)) == len(cal), "state.calendar must be distinct cycles")
    _int(state.get("season", 0), "state.season", 0, lookback)
    _need(isinstance(state.get("window_scaling", False), bool),
          "state.window_scaling must be a bool")
    fut_cols = _array(arrays, "fut_cols", (len(future),), kinds="i", finite=False)
    _need(fut_cols.tolist() == [channels.index(f) for f in future],
          "array 'fut_cols' does not match state.future_exog")
    kind = state.get("kind")
    _need(kind in ("series", "wide", "long"), f"state.kind is invalid: {kind!r}")
    ids = _names(state.get("ids"), "state.ids")
    n = len(ids)
    _need(n >= 1 and len(set(ids)) == n, "state.ids must be distinct")
    _need((kind == "long") or ids == [None], "a Series or wide model has one series")
    unplain(state.get("series_name"))
    _array(arrays, "scaler_loc", (n, C))
    scale = _array(arrays, "scaler_scale", (n, C))
    _need((scale > 0).all(), "array 'scaler_scale' must be positive")
    _array(arrays, "tail_values", (n, lookback, C))
    _array(arrays, "tail_index", (n, lookback), kinds="i", finite=False)
    if "mase_scale" in arrays:
        m = _array(arrays, "mase_scale", (n, nt))
        _need((m > 0).all(), "array 'mase_scale' must be positive")
    if "smooth/params" in arrays:
        _validate_smoothing(state, arrays, n, nt)
    if "conformal_scores" in arrays:
        s = _array(arrays, "conformal_scores", (arrays["conformal_scores"].shape[0],
                                                horizon, nt))
        _need(s.shape[0] >= 1 and (s >= 0).all(), "conformal scores must be >= 0")
        _need(isinstance(state.get("conformal_per_window", False), bool),
              "state.conformal_per_window must be a bool")
    _need(isinstance(state.get("index"), dict), "state.index must be an object")
    steps = 1 if params["strategy"] == "recursive" else horizon
    _need(n_in == C + 2 * len(cal), f"the network takes {n_in} inputs; the data has "
          f"{C} channels and {2 * len(cal)} calendar columns")
    return C, nt, steps, steps * (len(future) + 2 * len(cal)), steps * nt * Q


def _validate_smoothing(state, arrays, n, nt):
    """The smoothing partner's state: parameters in their ranges, seasonal factors
    that divide safely, rows fitted per series."""
    w = state.get("combine_weight")
    _need(isinstance(w, (int, float)) and 0 <= w <= 1,
          "state.combine_weight must be a number in [0, 1]")
    m = _int(state.get("smoothing_season"), "state.smoothing_season", 1, 100_000)
    p = _array(arrays, "smooth/params", (n, nt, 5))
    alpha, beta, phi = p[..., 0], p[..., 1], p[..., 2]
    _need(((alpha > 0) & (alpha <= 1) & (beta >= 0) & (beta <= alpha) & (phi > 0)
           & (phi <= 1)).all(), "smoothing parameters out of range")
    f = _array(arrays, "smooth/factors", (n, nt, m))
    mult = _array(arrays, "smooth/multiply", (n, nt), kinds="b", finite=False)
    _need((f[mult] > 0).all(), "multiplicative seasonal factors must be positive")
    _array(arrays, "smooth/state", (n, nt, 2))
    length = _array(arrays, "smooth/length", (n,), kinds="i", finite=False)
    _need((length >= 0).all(), "array 'smooth/length' must be >= 0")


def _validate_training(state):
    for k in _CURVE_KEYS:
        v = state.get(k)
        _need(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v),
              f"state.{k} must be a list of numbers")
    n = len(state["loss_curve"])
    _int(state.get("best_epoch"), "state.best_epoch", 0, n)
    _int(state.get("optimizer_t"), "state.optimizer_t", 0)
    _int(state.get("stale", 0), "state.stale", 0)
    _need(isinstance(state.get("best"), (int, float)), "state.best must be a number")
    _need(isinstance(state.get("stopped"), bool), "state.stopped must be a bool")
    rng = state.get("rng")
    _need(rng is None or (isinstance(rng, dict)
                          and rng.get("bit_generator") in _BIT_GENERATORS),
          f"state.rng must name one of {list(_BIT_GENERATORS)}")
