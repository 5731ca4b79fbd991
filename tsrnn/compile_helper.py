"""A cold first fit's kernels, compiled on two cores.

With an empty kernel cache, a fit spends most of its first run compiling: numba
compiles one function at a time under a process-wide lock, so threads cannot share
the work (measured: two threads compiling independent kernels take as long as one
after the other). A second process can. The kernels of the backward pass, the
optimizer and the forecasts take arguments of known types, independent of the
data, and no fit needs them before its first backward pass. So a fit
(:func:`start`) hands them to a helper process, which compiles them into the same
disk cache while the fit compiles the smoothing, the forward pass and the head
itself. The first backward pass (:func:`wait`, in
:func:`tsrnn.functional.backward_layer`) then shares what the helper has not begun:
the helper takes the kernels from the front of one list, the fit from the back
(each claims a kernel by creating a file first), until they meet; then the fit
waits for the helper to finish and loads the helper's kernels from the cache. So
the two processes finish together, however fast each one is.

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

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from tsrnn import parallel
from tsrnn._config import JIT_OPTIONS

#: Longest wait for the helper, in seconds; then it is stopped and the fit compiles.
WAIT_LIMIT_S = 120

_helper: subprocess.Popen | None = None
_owner_pid: int | None = None  # the process that started the helper (not a fork)
_cell = "lstm"
_claims = ""  # the folder of claim files the fit and the helper share
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
    """Whether the cache holds the time loop of the CPU backward kernel of ``cell``."""
    import importlib

    module = importlib.import_module(f"tsrnn.kernels.cpu.{cell}")
    return in_cache(getattr(module, f"_{cell}_backward_steps"))


def start(cell: str) -> bool:
    """Start the helper for a float32 CPU fit of ``cell`` if it can pay; returns
    whether one is running."""
    global _helper, _owner_pid, _cell, _claims
    with _lock:
        if _helper is not None and _owner_pid == os.getpid():
            return True
        if not enabled() or _cached(cell):
            return False
        claims = tempfile.mkdtemp(prefix="tsrnn-compile-")
        try:
            _helper = subprocess.Popen(
                [sys.executable, "-c", "from tsrnn.compile_helper import compile_kernels; "
                 f"compile_kernels({cell!r}, {claims!r})"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        except OSError:
            _helper = None
            shutil.rmtree(claims, ignore_errors=True)
            return False
        _owner_pid, _cell, _claims = os.getpid(), cell, claims
        atexit.register(shutil.rmtree, claims, True)  # if no backward pass ever waits
        return True


def wait() -> None:
    """Block until the helper (if any) has finished; at most :data:`WAIT_LIMIT_S`,
    after which it is stopped. While it runs, the fit compiles the kernels it has
    not claimed yet, from the end of the list (:func:`compile_kernels`). A no-op
    once it has finished, and in a forked child (the helper is its parent's)."""
    global _helper
    if _helper is None:
        return
    with _lock:
        helper, _helper = _helper, None
        if helper is None or _owner_pid != os.getpid():
            return
        try:
            if helper.poll() is None:
                for name, compile_ in reversed(_tasks(_cell)):
                    if not _claim(_claims, name):
                        break  # the helper has got this far
                    compile_()
            helper.wait(timeout=WAIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
        finally:
            shutil.rmtree(_claims, ignore_errors=True)


def _claim(claims: str, name: str) -> bool:
    """Whether this process takes kernel ``name``: the first to create its file in
    the folder ``claims`` does (atomic). A missing folder (the fit has finished
    with it): no."""
    try:
        os.close(os.open(os.path.join(claims, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except OSError:
        return False


def compile_kernels(cell: str, claims: str | None = None) -> None:
    """Compile the kernels of :func:`_tasks`, in order; with ``claims``, only those
    this process claims first (the fit claims from the end of the list while it
    waits), stopping at the first the fit has."""
    for name, compile_ in _tasks(cell):
        if claims is not None and not _claim(claims, name):
            return
        compile_()


def _tasks(cell: str):
    """The kernels the helper takes over, as (name, function that compiles it) by
    calls on tiny float32 arrays with the argument types a fit passes (tested): the
    time loop of ``<cell>_backward`` and its products after the loop, the inference
    kernels (``<cell>_final_state``, ``rows_affine``), the gradient norm, Adam and
    the weight average. The large ones come first, so that what the fit takes from
    the end while it waits is small. The head's backward stays with the fit."""
    import importlib

    import numpy as np

    from tsrnn.kernels.cpu import linalg
    from tsrnn.optim import _adam_update, _average_update

    kernels = importlib.import_module(f"tsrnn.kernels.cpu.{cell}")
    T, B, F, H = 3, 2, 1, 4
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * H

    def z(*shape):
        return np.zeros(shape, np.float32)

    lengths = np.full(B, T, np.int64)

    def backward_steps():
        if cell == "lstm":
            kernels._lstm_backward_steps(z(T, B, F), z(G, F), z(G, H), lengths,
                                         z(T + 1, B, H), z(T + 1, B, H), z(T, B, G),
                                         z(T, B, H), z(T, B, H), z(B, H), z(B, H))
        elif cell == "gru":
            kernels._gru_backward_steps(z(T, B, F), z(G, F), z(G, H), lengths,
                                        z(T + 1, B, H), z(T, B, G), z(T, B, H),
                                        z(T, B, H), z(B, H))
        else:
            kernels._rnn_backward_steps(z(T, B, F), z(G, H), lengths, z(T + 1, B, H),
                                        z(T, B, H), z(B, H), False)

    def final_state():
        if cell == "lstm":
            kernels.lstm_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H),
                                     z(B, H), z(B, 0, H))
        elif cell == "gru":
            kernels.gru_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H),
                                    z(B, 0, H))
        else:
            kernels.rnn_final_state(z(T, B, F), z(G, F), z(G, H), z(G), z(G), z(B, H),
                                    False, z(B, 0, H))

    def weight_grads():
        linalg.weight_grads(z(T, B, G), z(T, B, F), z(T + 1, B, H))

    return [
        ("backward_steps", backward_steps),
        ("final_state", final_state),
        ("weight_grads", weight_grads),
        ("input_grad", lambda: linalg.input_grad(z(T, B, G), z(G, F))),
        ("rows_affine", lambda: linalg.rows_affine(z(B, H), z(2, H), z(2))),
        ("adam", lambda: _adam_update(z(5), z(5), z(5), z(5), 0.9, 0.999, 1e-3, 0.5,
                                      1e-8, 0.0)),
        ("sum_squares", lambda: linalg.sum_squares(z(5))),
        ("average", lambda: _average_update(z(5), z(5), 0.5)),
    ]
