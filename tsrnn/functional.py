"""Public, stable functional API over the compiled kernels.

Parameters use PyTorch's names and shapes, so ``{k: v.numpy() for k, v in
torch_module.state_dict().items()}`` loads unchanged, and back::

    from tsrnn import functional as F
    params = F.init_params("lstm", input_size=3, hidden_size=32, num_layers=2)
    out, state, cache = F.forward("lstm", x, params, num_layers=2, training=True)
    grads, dx, dstate = F.backward(cache, dout)

Shapes: ``x`` is (batch, time, features), batch first; ``out`` is
(batch, time, num_directions * hidden), zero past each sequence's length; ``state`` is
``h`` of shape (num_layers * num_directions, batch, hidden), or ``(h, c)`` for "lstm",
ordered like PyTorch (layer-major, forward direction first).

Internally everything is time-major (time, batch, ...), so that each step's slice is
contiguous; the transposes happen only here, at the boundary.

On the CPU, a large batch is split into shards of rows that run in parallel threads
(:mod:`tsrnn.parallel`; ``TSRNN_NUM_THREADS`` sets how many): the results are those of
the whole batch, with the weight gradients summed shard by shard.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from tsrnn import compile_helper, parallel
from tsrnn._config import keep_freed_memory
from tsrnn.backend import resolve_device
from tsrnn.kernels import cpu as _cpu

__all__ = ["CELLS", "backward", "backward_layer", "forward", "init_params", "param_names",
           "param_shapes", "run_layer"]

#: A recurrent state: ``h``, or ``(h, c)`` for "lstm".
State = np.ndarray | tuple[np.ndarray, np.ndarray]

#: Number of gate blocks stacked in the weight matrices of each cell.
CELLS = {"rnn": 1, "lstm": 4, "gru": 3}
_NONLINEARITIES = ("tanh", "relu")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- params
def _check_cell(cell: str) -> int:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}. Got {cell!r} instead.")
    return CELLS[cell]


def param_shapes(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the parameters, in PyTorch's ``state_dict`` order."""
    gates = _check_cell(cell)
    for name, value in (
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1. Got {value!r} instead.")
    dirs = 2 if bidirectional else 1
    shapes = {}
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else hidden_size * dirs
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            shapes["weight_ih" + sfx] = (gates * hidden_size, layer_in)
            shapes["weight_hh" + sfx] = (gates * hidden_size, hidden_size)
            shapes["bias_ih" + sfx] = (gates * hidden_size,)
            shapes["bias_hh" + sfx] = (gates * hidden_size,)
    return shapes


@functools.lru_cache(maxsize=64)
def _param_shapes_cached(cell, input_size, hidden_size, num_layers, bidirectional):
    """:func:`param_shapes`, remembered: every :func:`forward` call checks its params
    against it (not to be modified: shared between calls)."""
    return param_shapes(cell, input_size, hidden_size, num_layers, bidirectional)


def param_names(cell: str, num_layers: int = 1, bidirectional: bool = False) -> list[str]:
    """Parameter names in PyTorch's order (sizes do not matter for the names)."""
    return list(param_shapes(cell, 1, 1, num_layers, bidirectional))


def _as_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _orthogonal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    # As Keras/Saxe et al.: QR of a Gaussian matrix, signs fixed by diag(R).
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


def init_params(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dtype: npt.DTypeLike = np.float32,
    seed: int | np.random.Generator | None = None,
    init: str = "pytorch",
) -> dict[str, np.ndarray]:
    """Initial parameters with PyTorch's names and shapes.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    input_size, hidden_size, num_layers : int
    bidirectional : bool
    dtype : float32 or float64
    seed : int, numpy Generator or None
    init : {"pytorch", "keras"}
        "pytorch": every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).
        "keras": glorot-uniform input weights, orthogonal recurrent weights (per gate
        block of the (hidden, gates*hidden) Keras kernel), zero biases, and for "lstm" a
        unit forget-gate bias (in ``bias_ih``).

    Returns
    -------
    dict of str to ndarray
    """
    dtype = np.dtype(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64. Got {dtype} instead.")
    if init not in ("pytorch", "keras"):
        raise ValueError(f"init must be 'pytorch' or 'keras'. Got {init!r} instead.")
    shapes = param_shapes(cell, input_size, hidden_size, num_layers, bidirectional)
    rng = _as_rng(seed)
    params = {}
    H = hidden_size
    for name, shape in shapes.items():
        if init == "pytorch":
            bound = 1.0 / np.sqrt(H)
            value = rng.uniform(-bound, bound, size=shape)
        elif name.startswith("weight_ih"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            value = rng.uniform(-limit, limit, size=shape)
        elif name.startswith("weight_hh"):
            # Keras draws one orthogonal (H, gates*H) kernel; its transpose is ours.
            value = _orthogonal(rng, H, shape[0]).T
        else:
            value = np.zeros(shape)
            if cell == "lstm" and name.startswith("bias_ih"):
                value[H : 2 * H] = 1.0
        params[name] = np.ascontiguousarray(value, dtype=dtype)
    return params


# ----------------------------------------------------------------------- validation
def _check_params(cell, params, input_size, num_layers, bidirectional):
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays. Got {type(params).__name__}.")
    if "weight_hh_l0" not in params:
        raise ValueError("params is missing the key 'weight_hh_l0'.")
    w = np.asarray(params["weight_hh_l0"])
    if w.ndim != 2:
        raise ValueError(
            f"params['weight_hh_l0'] must be 2-D (gates * hidden, hidden). "
            f"Got shape {w.shape}."
        )
    hidden = w.shape[1]
    try:
        expected = _param_shapes_cached(cell, input_size, hidden, num_layers,
                                        bidirectional)
    except TypeError:  # an unhashable argument: param_shapes names the mistake
        expected = param_shapes(cell, input_size, hidden, num_layers, bidirectional)
    extra = [] if params.keys() == expected.keys() else sorted(set(params) - set(expected))
    if extra:
        raise ValueError(
            f"params has unexpected keys {extra} for cell={cell!r}, "
            f"num_layers={num_layers}, bidirectional={bidirectional}."
        )
    dtype = w.dtype
    if dtype not in _DTYPES:
        raise ValueError(
            f"params['weight_hh_l0'] must be float32 or float64. Got {dtype} instead."
        )
    out = {}
    for key, shape in expected.items():
        if key not in params:
            raise ValueError(f"params is missing the key {key!r} (shape {shape}).")
        value = params[key]
        if not isinstance(value, np.ndarray):
            raise ValueError(f"params[{key!r}] must be a numpy array.")
        if value.shape != shape:
            raise ValueError(
                f"params[{key!r}] must have shape {shape}. Got {value.shape} instead."
            )
        if value.dtype != dtype:
            raise ValueError(
                f"params[{key!r}] has dtype {value.dtype}; all params must share "
                f"weight_hh_l0's dtype {dtype}."
            )
        out[key] = np.ascontiguousarray(value)
    return out, hidden, dtype


def _check_lengths(lengths, batch, time):
    if lengths is None:
        return np.full(batch, time, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.shape != (batch,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"lengths must be an integer array of shape ({batch},). "
            f"Got dtype {arr.dtype}, shape {arr.shape}."
        )
    bad = np.flatnonzero((arr < 1) | (arr > time))
    if bad.size:
        raise ValueError(
            f"lengths must lie in [1, {time}] (the time dimension of x). "
            f"lengths[{bad[0]}] = {arr[bad[0]]}."
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_state(cell, state, n_states, batch, hidden, dtype, name="state"):
    """Return a tuple of contiguous (n_states, batch, hidden) arrays (zeros if None)."""
    parts = 2 if cell == "lstm" else 1
    shape = (n_states, batch, hidden)
    if state is None:
        return tuple(np.zeros(shape, dtype=dtype) for _ in range(parts))
    if cell == "lstm":
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"{name} must be a tuple (h, c) for cell='lstm'.")
        arrays = tuple(state)
        labels = ("h", "c")
    else:
        arrays = (state,)
        labels = ("h",)
    out = []
    for label, a in zip(labels, arrays):
        a = np.asarray(a)
        if a.shape != shape:
            raise ValueError(f"{name} {label} must have shape {shape}. Got {a.shape}.")
        if a.dtype != dtype:
            raise ValueError(f"{name} {label} must have dtype {dtype}. Got {a.dtype}.")
        out.append(np.ascontiguousarray(a))
    return tuple(out)


# -------------------------------------------------------------------------- forward
def _kernels(device: str):
    """The kernel module of a resolved device; numba.cuda is imported only here."""
    if device == "cuda":
        from tsrnn.kernels import cuda as _cuda

        return _cuda
    return _cpu


def _host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else a


def _run_lstm(K, x_tm, w, h0, c0, lengths, keep, use_relu):
    out, hs, cs, gates, tanh_c = K.lstm_forward(x_tm, *w, h0, c0, lengths, keep)
    return out, _host(hs[-1]), _host(cs[-1]), (hs, cs, gates, tanh_c)


def _run_gru(K, x_tm, w, h0, c0, lengths, keep, use_relu):
    out, hs, gates, hn = K.gru_forward(x_tm, *w, h0, lengths, keep)
    return out, _host(hs[-1]), None, (hs, gates, hn)


def _run_rnn(K, x_tm, w, h0, c0, lengths, keep, use_relu):
    out, hs = K.rnn_forward(x_tm, *w, h0, lengths, keep, use_relu)
    return out, _host(hs[-1]), None, (hs,)


def _backward_lstm(K, x_d, w_ih, w_hh, lengths, kcache, dout_d, dh, dc, use_relu,
                   consume):
    hs, cs, gates, tanh_c = kcache
    if not consume and K is _cpu:
        gates = gates.copy()  # the CPU kernel writes its gradients over the gates
    return K.lstm_backward(x_d, w_ih, w_hh, lengths, hs, cs, gates, tanh_c, dout_d, dh,
                           dc)


def _backward_gru(K, x_d, w_ih, w_hh, lengths, kcache, dout_d, dh, dc, use_relu,
                  consume):
    hs, gates, hn = kcache
    return (*K.gru_backward(x_d, w_ih, w_hh, lengths, hs, gates, hn, dout_d, dh), None)


def _backward_rnn(K, x_d, w_ih, w_hh, lengths, kcache, dout_d, dh, dc, use_relu,
                  consume):
    (hs,) = kcache
    return (*K.rnn_backward(x_d, w_ih, w_hh, lengths, hs, dout_d, dh, use_relu), None)


# One direction of one layer, forward and backward, per cell.
_RUN_LAYER = {"lstm": _run_lstm, "gru": _run_gru, "rnn": _run_rnn}
_BACKWARD_LAYER = {"lstm": _backward_lstm, "gru": _backward_gru, "rnn": _backward_rnn}


def run_layer(cell: str, x_tm: np.ndarray, params: dict[str, np.ndarray], suffix: str,
              h0: np.ndarray, c0: np.ndarray | None, lengths: np.ndarray, keep: bool,
              use_relu: bool, kernels: ModuleType = _cpu, check: bool = True) -> tuple:
    """One direction of one layer over time-major ``x_tm`` (time, batch, features),
    with only the checks that keep the kernels in bounds (shapes, dtypes,
    contiguity, lengths; :func:`forward` also names the mistake in user terms).
    ``check=False`` skips them, for callers that built every argument themselves
    (tsrnn's own training step and :func:`forward`): wrong arguments then corrupt
    memory instead of raising.
    ``suffix`` picks the weights ("_l0", "_l1_reverse", ...); ``c0`` is None but for
    "lstm"; ``keep`` keeps what :func:`backward_layer` needs.

    Returns (out, final h, final c or None, kernel cache)."""
    w = (params["weight_ih" + suffix], params["weight_hh" + suffix],
         params["bias_ih" + suffix], params["bias_hh" + suffix])
    if check:
        T, B, H = _check_layer(cell, x_tm, *w, lengths)
        _need_arrays(x_tm.dtype, (B, H), contiguous=False, h0=h0,
                     **({"c0": c0} if cell == "lstm" else {}))
    return _RUN_LAYER[cell](kernels, x_tm, w, h0, c0, lengths, keep, use_relu)


def backward_layer(cell: str, x_tm: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   lengths: np.ndarray, kernel_cache: tuple, dout: np.ndarray,
                   dh: np.ndarray, dc: np.ndarray | None, use_relu: bool, consume: bool,
                   kernels: ModuleType = _cpu, check: bool = True) -> tuple:
    """BPTT through one direction of one layer, the reverse of :func:`run_layer`
    (``kernel_cache`` is what it returned): ``(dx, dw_ih, dw_hh, db_ih, db_hh, dh0,
    dc0)``, ``dc0`` None but for "lstm". The CPU LSTM kernel overwrites the cached
    gates: it gets a copy unless ``consume`` (the cache is then used up); ``check``
    as for :func:`run_layer`."""
    if check:
        _check_backward_layer(cell, x_tm, w_ih, w_hh, lengths, kernel_cache, dout, dh, dc)
    compile_helper.wait()  # a cold fit's helper compiles the backward kernels
    return _BACKWARD_LAYER[cell](kernels, x_tm, w_ih, w_hh, lengths, kernel_cache, dout,
                                 dh, dc, use_relu, consume)


def _check_backward_layer(cell, x_tm, w_ih, w_hh, lengths, kernel_cache, dout, dh, dc):
    G = w_hh.shape[0] if len(getattr(w_hh, "shape", ())) == 2 else 0
    T, B, H = _check_layer(cell, x_tm, w_ih, w_hh, np.empty(G, w_hh.dtype),
                           np.empty(G, w_hh.dtype), lengths)
    dt = x_tm.dtype
    _need_arrays(dt, (T, B, H), dout=dout)
    _need_arrays(dt, (B, H), contiguous=False, dh=dh,
                 **({"dc": dc} if cell == "lstm" else {}))
    steps = {"hs": T + 1, "cs": T + 1, "gates": T, "tanh_c": T, "hn": T}
    names = {"lstm": ("hs", "cs", "gates", "tanh_c"), "gru": ("hs", "gates", "hn"),
             "rnn": ("hs",)}[cell]
    if not isinstance(kernel_cache, tuple) or len(kernel_cache) != len(names):
        raise ValueError("kernel_cache must be what run_layer(..., keep=True) returned.")
    for name, a in zip(names, kernel_cache):
        width = G if name == "gates" else H
        _need_arrays(dt, (steps[name], B, width), **{f"kernel_cache {name}": a})


def _check_layer(cell, x_tm, w_ih, w_hh, b_ih, b_hh, lengths):
    """(time, batch, hidden) of one layer's arguments, after checking that they fit
    together: the kernels do not check bounds."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}. Got {cell!r} instead.")
    if not (hasattr(x_tm, "shape") and len(x_tm.shape) == 3 and x_tm.dtype in _DTYPES):
        raise ValueError("x_tm must be a float32 or float64 array of shape "
                         "(time, batch, features).")
    T, B, F_in = x_tm.shape
    H = w_hh.shape[1] if hasattr(w_hh, "shape") and len(w_hh.shape) == 2 else -1
    G = CELLS[cell] * H
    _need_arrays(x_tm.dtype, (T, B, F_in), x_tm=x_tm)
    _need_arrays(x_tm.dtype, (G, F_in), w_ih=w_ih)
    _need_arrays(x_tm.dtype, (G, H), w_hh=w_hh)
    _need_arrays(x_tm.dtype, (G,), b_ih=b_ih, b_hh=b_hh)
    if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.int64
            and lengths.shape == (B,) and (lengths >= 1).all() and (lengths <= T).all()):
        raise ValueError(f"lengths must be an int64 array of {B} values in 1..{T}.")
    return T, B, H


def _need_arrays(dtype, shape, contiguous=True, **arrays):
    for name, a in arrays.items():
        # numpy arrays, or the CUDA kernels' device arrays (shape and dtype alike)
        if not (hasattr(a, "shape") and hasattr(a, "dtype") and a.shape == tuple(shape)
                and a.dtype == dtype and not (contiguous and isinstance(a, np.ndarray)
                                              and not a.flags.c_contiguous)):
            raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array "
                             f"of shape {tuple(shape)}; got "
                             f"{getattr(a, 'shape', type(a).__name__)}.")


def _forward_stack(K, cell, inp, p, states, lengths, masks, num_layers, dirs, keep,
                   use_relu, h_n, c_n):
    """Every layer and direction over the rows of time-major ``inp``; writes the final
    states into ``h_n`` / ``c_n`` and returns the top layer's output (time-major) and
    the per-layer caches."""
    layers = []
    for layer in range(num_layers):
        outs, dir_caches = [], []
        for d in range(dirs):
            idx = layer * dirs + d
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            x_d = _cpu.reverse_padded(inp, lengths) if d else inp
            c0 = states[1][idx] if cell == "lstm" else None
            out_d, h_last, c_last, kcache = run_layer(
                cell, x_d, p, sfx, states[0][idx], c0, lengths, keep, use_relu, K,
                check=False,  # forward() checked the arguments
            )
            h_n[idx] = h_last
            if c_n is not None:
                c_n[idx] = c_last
            outs.append(_cpu.reverse_padded(out_d, lengths) if d else out_d)
            dir_caches.append((x_d, kcache) if keep else None)
        layer_out = outs[0] if dirs == 1 else np.concatenate(outs, axis=2)
        if masks[layer] is not None:
            layer_out = layer_out * masks[layer]
        layers.append((dir_caches, masks[layer]))
        inp = layer_out
    return inp, layers


def forward(
    cell: str,
    x: np.ndarray,
    params: dict[str, np.ndarray],
    state: State | None = None,
    lengths: np.ndarray | None = None,
    num_layers: int = 1,
    bidirectional: bool = False,
    nonlinearity: str = "tanh",
    dropout: float = 0.0,
    training: bool = False,
    device: str = "cpu",
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, State, dict[str, Any] | None]:
    """Run a (stacked, optionally bidirectional) recurrent network over ``x``.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    x : ndarray of shape (batch, time, features)
        float32 or float64, the dtype of ``params``.
    params : dict of str to ndarray
        PyTorch names and shapes (see :func:`init_params`).
    state : ndarray of shape (num_layers * num_directions, batch, hidden), or a tuple
        ``(h0, c0)`` of such arrays for "lstm"; None means zeros.
    lengths : int array of shape (batch,), optional
        Valid length of each sequence (steps past it are padding and are ignored).
    num_layers : int
    bidirectional : bool
    nonlinearity : {"tanh", "relu"}
        Activation of the "rnn" cell.
    dropout : float in [0, 1)
        Dropout on the outputs of every layer but the last, when ``training``.
    training : bool
        Keep what :func:`backward` needs and apply dropout. With False the returned
        cache is None and only one step of scratch space is allocated; a batch of
        one row through one unidirectional CPU layer then runs the inference kernel
        (its outputs may differ from ``training=True``'s in the last bits).
    device : {"cpu", "cuda", "auto"}
    seed : int, numpy Generator or None
        Randomness of the dropout masks.

    Returns
    -------
    out : ndarray of shape (batch, time, num_directions * hidden)
        Outputs of the last layer, zero past each sequence's length: a batch-first
        view of time-major memory, as the kernels write it (PyTorch's batch_first
        output is such a view too), so not C-contiguous for more than one row.
        A gradient for it laid out the same way (``np.zeros_like(out)``) reaches
        the kernels of :func:`backward` without a copy.
    state : ndarray or tuple of ndarrays
        Final state at each sequence's own length, shaped like ``state``.
    cache : dict or None
        Opaque; pass it to :func:`backward`.
    """
    _check_cell(cell)
    keep_freed_memory()
    device = resolve_device(device)
    K = _kernels(device)
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(
            f"nonlinearity must be 'tanh' or 'relu'. Got {nonlinearity!r} instead."
        )
    if not (0.0 <= float(dropout) < 1.0):
        raise ValueError(f"dropout must be in [0, 1). Got {dropout!r} instead.")
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(
            "x must be a 3-D numpy array of shape (batch, time, features). "
            f"Got {getattr(x, 'shape', type(x).__name__)}."
        )
    B, T, F = x.shape
    if B == 0 or T == 0 or F == 0:
        raise ValueError(f"x must have non-zero batch, time and features. Got {x.shape}.")
    p, H, dtype = _check_params(cell, params, F, num_layers, bidirectional)
    if x.dtype != dtype:
        raise ValueError(
            f"x has dtype {x.dtype} but params are {dtype}; cast it with "
            f"x.astype(np.{dtype.name})."
        )
    dirs = 2 if bidirectional else 1
    checked = None if lengths is None else _check_lengths(lengths, B, T)
    states = _check_state(cell, state, num_layers * dirs, B, H, dtype)
    use_relu = nonlinearity == "relu"
    keep = bool(training)
    if B == 1 and not keep and device == "cpu" and num_layers == 1 and dirs == 1 and (
            checked is None or checked[0] == T):
        return _inference_one_row(cell, x, p, states, use_relu)
    lengths = _check_lengths(None, B, T) if checked is None else checked
    rng = _as_rng(seed) if (training and dropout > 0 and num_layers > 1) else None

    # Dropout masks are drawn here, whole, in layer order: the same draws however
    # the batch is split over threads below.
    masks = [None] * num_layers
    if rng is not None:
        keep_prob = 1.0 - dropout
        for layer in range(num_layers - 1):
            masks[layer] = (rng.random((T, B, dirs * H)) < keep_prob).astype(
                dtype
            ) / dtype.type(keep_prob)

    h_n = np.empty((num_layers * dirs, B, H), dtype=dtype)
    c_n = np.empty_like(h_n) if cell == "lstm" else None
    shards = [slice(0, B)] if device != "cpu" else parallel.batch_shards(
        B, CELLS[cell] * H * dirs
    )
    # The outputs stay time-major, as the kernels write them; ``out`` is their
    # batch-first view (as PyTorch's batch_first output is), not a transposed copy.
    out_tm = None if len(shards) == 1 else np.empty((T, B, dirs * H), dtype=dtype)

    def run_rows(rows):
        x_tm = np.ascontiguousarray(x[rows].transpose(1, 0, 2))  # time-major
        shard_out, layers = _forward_stack(
            K, cell, x_tm, p, [s[:, rows] for s in states], lengths[rows],
            [None if m is None else m[:, rows] for m in masks], num_layers, dirs, keep,
            use_relu, h_n[:, rows], None if c_n is None else c_n[:, rows],
        )
        if out_tm is not None:
            out_tm[:, rows] = shard_out
        return (rows, layers), shard_out

    runs = parallel.map_shards(run_rows, shards)
    shard_caches = [run for run, _ in runs]
    out = (runs[0][1] if out_tm is None else out_tm).transpose(1, 0, 2)
    final = (h_n, c_n) if cell == "lstm" else h_n
    if not keep:
        return out, final, None
    cache = {
        "cell": cell,
        "params": p,
        "lengths": lengths,
        "num_layers": num_layers,
        "dirs": dirs,
        "hidden": H,
        "use_relu": use_relu,
        "shape": (B, T, F),
        "dtype": dtype,
        "shards": shard_caches,
        "device": device,
    }
    return out, final, cache


def _inference_one_row(cell, x, p, states, use_relu):
    """:func:`forward` with ``training=False`` of one unidirectional CPU layer over
    one full-length row (the latency path of online forecasting): the inference
    kernel (``<cell>_final_state``), which keeps no per-step states or gates and
    writes the outputs batch-first, so nothing is transposed back. Larger batches
    take the training kernels, whose whole-batch products are faster there."""
    _, T, F = x.shape
    H = p["weight_hh_l0"].shape[1]
    w = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    out = np.empty((1, T, H), dtype=x.dtype)
    x_tm = np.ascontiguousarray(x.reshape(T, 1, F))  # one row is time-major already
    h0 = states[0][0]
    if cell == "lstm":
        h, c = _cpu.lstm_final_state(x_tm, *w, h0, states[1][0], out)
        return out, (h[None], c[None]), None
    if cell == "gru":
        h = _cpu.gru_final_state(x_tm, *w, h0, out)
    else:
        h = _cpu.rnn_final_state(x_tm, *w, h0, use_relu, out)
    return out, h[None], None


def _backward_stack(K, cell, p, layers, lengths, d_layer_out, dstates, num_layers, dirs,
                    H, use_relu, dh0, dc0, consume):
    """BPTT through every layer and direction of one :func:`_forward_stack` run;
    writes the initial-state gradients into ``dh0`` / ``dc0`` and returns ``dx``
    (time-major) and the parameter gradients (``consume``: see
    :func:`backward_layer`)."""
    grads: dict[str, np.ndarray] = {}
    for layer in range(num_layers - 1, -1, -1):
        dir_caches, mask = layers[layer]
        if mask is not None:
            d_layer_out = d_layer_out * mask
        d_inp = None
        for d in range(dirs):
            idx = layer * dirs + d
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            x_d, kcache = dir_caches[d]
            dout_d = np.ascontiguousarray(d_layer_out[:, :, d * H : (d + 1) * H])
            if d:
                dout_d = _cpu.reverse_padded(dout_d, lengths)
            w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
            dx, dw_ih, dw_hh, db_ih, db_hh, dh, dc = backward_layer(
                cell, x_d, w_ih, w_hh, lengths, kcache, dout_d, dstates[0][idx],
                dstates[1][idx] if cell == "lstm" else None, use_relu, consume, K,
                check=False,  # backward() checked the arguments, forward() the cache
            )
            if dc is not None:
                dc0[idx] = dc
            dh0[idx] = dh
            grads["weight_ih" + sfx] = dw_ih
            grads["weight_hh" + sfx] = dw_hh
            grads["bias_ih" + sfx] = db_ih
            grads["bias_hh" + sfx] = db_hh
            if d:
                dx = _cpu.reverse_padded(dx, lengths)
            d_inp = dx if d_inp is None else d_inp + dx
        d_layer_out = d_inp
    return d_layer_out, grads


# ------------------------------------------------------------------------- backward
def backward(cache: dict[str, Any], dout: np.ndarray, dstate: State | None = None, *,
             consume: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backpropagation through time for a :func:`forward` run with ``training=True``.
    The cache is left as it was, so ``backward`` may run again on it (with another
    ``dout``, e.g. for a Jacobian), unless ``consume``: the cache is then used up
    (the CPU LSTM kernel writes its gradients over the cached gates instead of a
    copy) and a second call on it is refused. A training loop that runs each
    cache's backward once consumes.

    Parameters
    ----------
    cache : dict
        The third value returned by :func:`forward`.
    dout : ndarray of shape (batch, time, num_directions * hidden)
        Gradient of the loss with respect to ``out`` (values past a sequence's length
        are ignored: those outputs are constant zeros).
    dstate : like the returned ``state``, optional
        Gradient with respect to the final state; None means zeros.

    Returns
    -------
    grads : dict of str to ndarray
        Gradient of every parameter, keyed like ``params``.
    dx : ndarray of shape (batch, time, features)
        A batch-first view of time-major memory, as ``out`` of :func:`forward`.
    dstate0 : like ``state``
        Gradient with respect to the initial state (what truncated BPTT carries
        back across chunks).
    """
    if not isinstance(cache, dict) or "shards" not in cache:
        raise ValueError(
            "cache must be the cache returned by forward(..., training=True); "
            "forward(training=False) keeps none."
        )
    if cache.get("consumed"):
        raise ValueError("this cache was used up by an earlier backward pass; run "
                         "forward(..., training=True) again.")
    cell, p, lengths = cache["cell"], cache["params"], cache["lengths"]
    num_layers, dirs, H = cache["num_layers"], cache["dirs"], cache["hidden"]
    B, T, F = cache["shape"]
    dtype = cache["dtype"]
    dout = np.asarray(dout)
    if dout.shape != (B, T, dirs * H):
        raise ValueError(f"dout must have shape {(B, T, dirs * H)}. Got {dout.shape}.")
    if dout.dtype != dtype:
        raise ValueError(f"dout must have dtype {dtype}. Got {dout.dtype}.")
    dstates = _check_state(cell, dstate, num_layers * dirs, B, H, dtype, name="dstate")
    K = _kernels(cache.get("device", "cpu"))

    dh0 = np.zeros((num_layers * dirs, B, H), dtype=dtype)
    dc0 = np.zeros_like(dh0) if cell == "lstm" else None
    # Time-major, as the kernels take it: no copy when ``dout`` is laid out like
    # ``out`` (np.zeros_like(out) is); dx is returned as a batch-first view.
    dout_tm = dout.transpose(1, 0, 2)
    shards = cache["shards"]
    dx_tm = None if len(shards) == 1 else np.empty((T, B, F), dtype=dtype)

    def run_rows(shard):
        rows, layers = shard
        shard_dx, grads = _backward_stack(
            K, cell, p, layers, lengths[rows], np.ascontiguousarray(dout_tm[:, rows]),
            [s[:, rows] for s in dstates], num_layers, dirs, H, cache["use_relu"],
            dh0[:, rows], None if dc0 is None else dc0[:, rows], consume,
        )
        if dx_tm is not None:
            dx_tm[:, rows] = shard_dx
        return grads, shard_dx

    if consume:
        cache["consumed"] = True
    runs = parallel.map_shards(run_rows, shards)
    # Weight gradients sum over the rows: add the shards' (params' PyTorch order).
    grads = parallel.add_shard_grads([g for g, _ in runs], p)
    dx = (runs[0][1] if dx_tm is None else dx_tm).transpose(1, 0, 2)
    dstate0 = (dh0, dc0) if cell == "lstm" else dh0
    return grads, dx, dstate0
