"""Batch rows split over threads.

Rows of a batch never interact in a recurrent layer: only the weight gradients sum
over them. So a large batch is cut into contiguous shards of rows, each shard runs the
whole stack of compiled kernels (which release the GIL) in its own thread, with no
synchronisation inside the time loop, and the weight gradients of the shards are
added at the end. This is how tsrnn uses more than one core; a per-step split would
pay a thread hand-off on every step.

While shards run, BLAS is held to one thread (:func:`one_blas_thread`): the per-step
matrix products are small, and shards each asking OpenBLAS for every core would
oversubscribe them. The training loop holds it for the whole fit, for the same reason.

``TSRNN_NUM_THREADS`` sets the number of threads (1 turns sharding off). By default it
is the number of cores this process may use, capped by ``OMP_NUM_THREADS`` when that is
set (joblib sets it in its workers to their share of the cores, so a grid search with
``n_jobs`` does not oversubscribe them).

The shard count depends only on the batch size and the thread count, never on timing,
so a run is reproducible on a given machine. A different thread count changes the
order in which the weight gradients of the rows are summed, i.e. their last bits.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numpy as np

from tsrnn._config import SHARD_MIN_WORK

_pool: ThreadPoolExecutor | None = None
_pool_key: tuple | None = None  # (pid, workers) the pool was made for
_num_threads: int | None = None
_blas = None  # threadpoolctl controller of the loaded BLAS libraries
_held = 0  # open one_blas_thread() holds, in any thread (BLAS is process-wide state)
_limiter = None  # threadpoolctl's limit of the outermost hold, restored by the last
_hold_lock = threading.Lock()
_busy = threading.Lock()  # one sharded call at a time; others run unsharded


def num_threads() -> int:
    """Threads a sharded kernel call may use (read once from the environment)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _threads_from_env(os.environ)
    return _num_threads


def _threads_from_env(env) -> int:
    value = env.get("TSRNN_NUM_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"TSRNN_NUM_THREADS must be a positive integer. Got {value!r} instead."
            )
        return int(value)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        n = min(n, int(omp))
    return max(1, n)


#: Work per row that does not grow with the hidden size (state copies, the head, the
#: loss), in gate units: with it, 256 rows of a hidden-16 RNN are split over two
#: threads, and 32 rows of a hidden-32 LSTM, whose shards would cost more to hand
#: off than they save, are not.
ROW_WORK = 64


def batch_shards(batch: int, gate_units: int) -> list[slice]:
    """Contiguous row ranges of a batch, one per thread, each with at least
    ``SHARD_MIN_WORK`` of work, counted as rows x (``gate_units`` + ``ROW_WORK``),
    where ``gate_units`` is gates x hidden x directions: a thread hand-off costs tens
    of microseconds, so small batches stay whole."""
    n = min(num_threads(), batch * (gate_units + ROW_WORK) // SHARD_MIN_WORK, batch)
    return _split(batch, n)


def item_shards(n: int) -> list[slice]:
    """Contiguous ranges of ``n`` independent items, one per thread (at most ``n``),
    for items of a millisecond or more of compiled work each (series fitted one by
    one), against which a thread hand-off is negligible. Depends only on ``n`` and
    the thread count."""
    return _split(n, min(num_threads(), n))


def _split(n: int, k: int) -> list[slice]:
    """``range(n)`` in ``max(k, 1)`` contiguous slices of near-equal length."""
    k = max(k, 1)
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(k)]


def _executor() -> ThreadPoolExecutor:
    # A forked child has no pool threads: a new pool per process (and per thread count).
    global _pool, _pool_key
    key = (os.getpid(), max(1, num_threads() - 1))
    if _pool is None or _pool_key != key:
        _pool = ThreadPoolExecutor(key[1], thread_name_prefix="tsrnn")
        _pool_key = key
    return _pool


@contextmanager
def one_blas_thread():
    """Hold every loaded BLAS library to one thread until the last open hold ends.
    Nested or concurrent uses (the shards of a training step inside the training
    loop's hold; two fits in two threads) cost nothing: re-limiting BLAS is too slow
    to do twice per step. The count is taken under a lock, so a hold that ends
    while another is open leaves BLAS limited for it."""
    global _blas, _held, _limiter
    with _hold_lock:
        if _held == 0:
            if _blas is None:
                # The kernels call numpy's BLAS (tsrnn.kernels.cpu.blas), or numba's
                # np.dot, i.e. scipy's, as a fallback: load it before taking stock.
                import scipy.linalg.cython_blas  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _blas = ThreadpoolController().select(user_api="blas")
            _limiter = _blas.limit(limits=1)
        _held += 1
    try:
        yield
    finally:
        with _hold_lock:
            _held -= 1
            if _held == 0:
                _limiter.restore_original_limits()
                _limiter = None


def map_shards(fn, shards: list[slice]) -> list:
    """``[fn(s) for s in shards]``, the shards in parallel threads (the first in this
    one). Runs them one after another when there is one shard, or when another
    sharded call is already running (threads of a caller's own pool). Each shard runs
    in a copy of the caller's context and under the caller's numpy error state
    (context-local in numpy 2, thread-local before), so the caller's settings hold in
    the pool's threads (the training loop ignores overflow and checks the loss
    itself)."""
    if len(shards) == 1 or not _busy.acquire(blocking=False):
        return [fn(s) for s in shards]
    futures = []
    try:
        with one_blas_thread():
            pool = _executor()
            err = np.geterr()
            futures = [pool.submit(contextvars.copy_context().run, _under_errstate,
                                   err, fn, s) for s in shards[1:]]
            first = fn(shards[0])
            return [first] + [f.result() for f in futures]
    finally:
        # On an error or Ctrl-C, let the other shards finish before BLAS threads are
        # restored and the next call may start: they write into shared outputs.
        wait(futures)
        _busy.release()


def _under_errstate(err, fn, shard):
    with np.errstate(**err):
        return fn(shard)


def add_shard_grads(shard_grads: list, keys) -> dict:
    """The weight gradients of a batch's shards (a list of dicts, in shard order)
    summed over the shards, keyed by ``keys`` in that order. Always added in shard
    order, so a given split gives the same bits wherever it is summed; the first
    shard's arrays are added into."""
    grads = {k: shard_grads[0][k] for k in keys}
    for more in shard_grads[1:]:
        for k in keys:
            grads[k] += more[k]
    return grads
