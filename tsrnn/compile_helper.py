"""A cold first fit's kernels, compiled on two cores.

With an empty kernel cache, a fit spends most of its first run compiling: numba
compiles one function at a time under a process-wide lock, so threads cannot share
the work (measured: two threads compiling independent kernels take as long as one
after the other). A second process can. The kernels of the backward pass, the
optimizer and the forecasts take arguments of known types, independent of the
data, and no fit needs them before its first backward pass. So a fit
(:func:`start`) hands them to a helper process, which compiles them into the same
disk cache while the fit compiles the batches, the forward pass and the smoothing
itself; the first backward pass (:func:`wait`, in
:func:`tsrnn.functional.backward_layer`) waits for the helper to finish and then
loads them from the cache.

Both processes may compile a helper the kernels share (a matrix product, say); they
do so with the same argument types (a fit compiles one specialisation of each tsrnn
function: tested), so they write the same cache entry. Numba's cache, keyed by
signature, would mix up entries only for two different signatures of one function
written at the same time.

The helper runs only where it can pay: numba's disk cache is usable, the cell's
backward kernel is not in it yet, tsrnn may use two threads or more
(``TSRNN_NUM_THREADS``, ``OMP_NUM_THREADS``: joblib's workers get one each),
``sys.executable`` is a Python interpreter, and ``TSRNN_COMPILE_HELPER`` is not
``0``. Whatever happens to the helper (killed,
crashed, too slow), the fit compiles what it still needs itself, as without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from tsrnn import parallel
from tsrnn._config import JIT_OPTIONS

#: Longest wait for the helper, in seconds; then it is stopped and the fit compiles.
WAIT_LIMIT_S = 120

_helper: subprocess.Popen | None = None
_owner_pid: int | None = None  # the process that started the helper (not a fork)
_lock = threading.Lock()


def enabled() -> bool:
    """Whether a helper may run at all in this process (not whether one is needed).
    Not where ``sys.executable`` is no Python interpreter (a frozen application, or
    Python embedded in a server such as uWSGI, whose executable would start another
    server)."""
    interpreter = os.path.basename(sys.executable or "").lower()
    return (os.environ.get("TSRNN_COMPILE_HELPER", "1").strip() != "0"
            and bool(JIT_OPTIONS["cache"]) and parallel.num_threads() >= 2
            and not getattr(sys, "frozen", False)
            and interpreter.startswith(("python", "pypy")))


def in_cache(dispatcher) -> bool:
    """Whether numba's disk cache holds a compiled ``dispatcher`` for this source:
    its index exists and is current (numba empties a stale index)."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - numba internals: then assume it is cached
        return True


def _cached(cell: str) -> bool:
    """Whether the cache holds the CPU backward kernel of ``cell``."""
    from tsrnn.kernels import cpu

    return in_cache(getattr(cpu, f"{cell}_backward"))


def start(cell: str) -> bool:
    """Start the helper for a float32 CPU fit of ``cell`` if it can pay; returns
    whether one is running."""
    global _helper, _owner_pid
    with _lock:
        if _helper is not None and _owner_pid == os.getpid():
            return True
        if not enabled() or _cached(cell):
            return False
        try:
            _helper = subprocess.Popen(
                [sys.executable, "-c",
                 f"from tsrnn.compile_helper import compile_kernels; compile_kernels({cell!r})"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        except OSError:
            _helper = None
            return False
        _owner_pid = os.getpid()
        return True


def wait() -> None:
    """Block until the helper (if any) has finished; at most :data:`WAIT_LIMIT_S`,
    after which it is stopped. A no-op once it has finished, and in a forked
    child (the helper is its parent's)."""
    global _helper
    if _helper is None:
        return
    with _lock:
        helper, _helper = _helper, None
        if helper is None or _owner_pid != os.getpid():
            return
        try:
            helper.wait(timeout=WAIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()


def compile_kernels(cell: str) -> None:
    """Compile, by calls on tiny float32 arrays with the argument types a fit passes,
    the kernels the helper takes over: ``<cell>_backward``, the gradient norm, Adam
    and the weight average, and the inference kernels (``<cell>_final_state``,
    ``rows_affine``). The head's backward stays with the fit, which would otherwise
    wait for the helper longer than it takes to compile it."""
    import numpy as np

    from tsrnn.kernels import cpu
    from tsrnn.optim import _adam_update, _average_update

    T, B, F, H = 3, 2, 1, 4
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * H

    def z(*shape):
        return np.zeros(shape, np.float32)

    lengths = np.full(B, T, np.int64)
    if cell == "lstm":
        cpu.lstm_backward(z(T, B, F), z(G, F), z(G, H), lengths, z(T + 1, B, H),
                          z(T + 1, B, H), z(T, B, G), z(T, B, H), z(T, B, H), z(B, H),
                          z(B, H))
    elif cell == "gru":
        cpu.gru_backward(z(T, B, F), z(G, F), z(G, H), lengths, z(T + 1, B, H),
                         z(T, B, G), z(T, B, H), z(T, B, H), z(B, H))
    else:
        cpu.rnn_backward(z(T, B, F), z(G, F), z(G, H), lengths, z(T + 1, B, H),
                         z(T, B, H), z(B, H), False)
    cpu.sum_squares(z(5))
    _adam_update(z(5), z(5), z(5), z(5), 0.9, 0.999, 1e-3, 0.5, 1e-8, 0.0)
    _average_update(z(5), z(5), 0.5)
    if cell == "lstm":
        cpu.lstm_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H), z(B, H),
                             z(B, 0, H))
    elif cell == "gru":
        cpu.gru_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H), z(B, 0, H))
    else:
        cpu.rnn_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H), False,
                            z(B, 0, H))
    cpu.rows_affine(z(B, H), z(2, H), z(2))
