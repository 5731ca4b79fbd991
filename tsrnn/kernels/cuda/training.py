"""The device side of a training step that never leaves the GPU
(:mod:`tsrnn.device_training`): batches gathered from the packed series, the heads'
element-wise parts, the losses, global-norm clipping, the optimizers and the
weights' moving average.

Reductions (a batch's loss, the gradients' norm) run in one block, a fixed number of
threads each summing a fixed stride, then a tree in shared memory: the same bits at
every launch. A step that meets a non-finite loss or gradient norm writes its code
into ``status`` and every later update is skipped; the host reads ``status`` once
per epoch (:data:`LOSS_NOT_FINITE`, :data:`GRAD_NOT_FINITE`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, float64

from tsrnn.kernels.cuda.linalg import numba_dtype, threads_per_block

LOSS_NOT_FINITE = 1
GRAD_NOT_FINITE = 2
#: Threads of the one-block reductions (a power of two).
REDUCE_THREADS = 256

_LOSS_CODES = {"mse": 0, "mae": 1, "huber": 2, "pinball": 3}


def _grid(n: int):
    t = threads_per_block()
    return max(1, -(-n // t)), t


def reduce_threads() -> int:
    """Threads of the one-block reductions: REDUCE_THREADS, or the largest power of
    two within the configured block size."""
    t = 1
    while t * 2 <= min(REDUCE_THREADS, threads_per_block()):
        t *= 2
    return t


# ----------------------------------------------------------------------- batches
@functools.cache
def _window_batch_kernel(dtype):
    nb = numba_dtype(dtype)

    @cuda.jit
    def window_batch(values, starts, order, lo, lookback, steps, n_targets, fut_cols,
                     season, scale_floor, window_scaling, x_tm, y, f):
        """:func:`tsrnn.data.training_batch` on the device, one thread per window:
        ``x_tm`` (lookback, B, channels) time-major, ``y`` (B, steps x targets) and
        ``f`` (B, steps x future columns), both step-major. The statistics are
        summed in float64 in step order and rounded once, as on the CPU."""
        b = cuda.grid(1)
        B = x_tm.shape[1]
        if b >= B:
            return
        s = starts[order[lo + b]]
        C = values.shape[1]
        K = fut_cols.shape[0]
        L = lookback
        for t in range(L):
            for c in range(C):
                x_tm[t, b, c] = values[s + t, c]
        for h in range(steps):
            for k in range(K):
                f[b, h * K + k] = values[s + L + h, fut_cols[k]]
        for c in range(n_targets):
            scale = nb(1)
            if window_scaling:
                total = 0.0
                for t in range(L):
                    total += np.float64(values[s + t, c])
                mean = total / L
                sq = 0.0
                for t in range(L):
                    d = np.float64(values[s + t, c]) - mean
                    sq += d * d
                sd = math.sqrt(sq / L)
                loc = nb(mean)
                scale = nb(scale_floor if sd < scale_floor else sd)  # NaN stays NaN
                for t in range(L):
                    x_tm[t, b, c] = (values[s + t, c] - loc) / scale
            for h in range(steps):
                src = L - 1 if season == 0 else L - season + h % season
                y[b, h * n_targets + c] = (values[s + L + h, c] - values[s + src, c]) / scale

    return window_batch


@cuda.jit
def _array_batch(xs, ys, order, lo, x_tm, y):
    b = cuda.grid(1)
    B = x_tm.shape[1]
    if b >= B:
        return
    i = order[lo + b]
    for t in range(xs.shape[1]):
        for c in range(xs.shape[2]):
            x_tm[t, b, c] = xs[i, t, c]
    for k in range(ys.shape[1]):
        y[b, k] = ys[i, k]


def window_batch(spec, dev, order, lo, rows):
    """Batch ``order[lo:lo + rows]`` of a :class:`tsrnn.data.WindowBatches` whose
    arrays are on the device (``dev``): (x_tm, y, f) device arrays."""
    dt = dev["values"].dtype
    K = len(spec.fut_cols)
    x_tm = cuda.device_array((spec.lookback, rows, dev["values"].shape[1]), dtype=dt)
    y = cuda.device_array((rows, spec.steps * spec.n_targets), dtype=dt)
    f = cuda.device_array((rows, spec.steps * K), dtype=dt)
    kernel = _window_batch_kernel(np.dtype(dt))
    kernel[_grid(rows)](dev["values"], dev["starts"], order, lo, spec.lookback, spec.steps,
                        spec.n_targets, dev["fut_cols"], spec.season, spec.scale_floor,
                        spec.window_scaling, x_tm, y, f)
    return x_tm, y, f


def array_batch(dev, order, lo, rows):
    xs, ys = dev["xs"], dev["ys"]
    x_tm = cuda.device_array((xs.shape[1], rows, xs.shape[2]), dtype=xs.dtype)
    y = cuda.device_array((rows, ys.shape[1]), dtype=ys.dtype)
    _array_batch[_grid(rows)](xs, ys, order, lo, x_tm, y)
    return x_tm, y, cuda.device_array((rows, 0), dtype=xs.dtype)


# ------------------------------------------------------------------------- heads
@cuda.jit
def _concat_rows(a, b, out):
    """out[i] = [a[i] | b[i]] for a (n, p) and b (n, q)."""
    i, j = cuda.grid(2)
    n, p = a.shape
    if i < n and j < out.shape[1]:
        out[i, j] = a[i, j] if j < p else b[i, j - p]


def concat_columns(a, b):
    """[a | b] of two 2-D device arrays of the same rows."""
    n = a.shape[0]
    out = cuda.device_array((n, a.shape[1] + b.shape[1]), dtype=a.dtype)
    t = max(1, min(16, int(math.isqrt(threads_per_block()))))
    _concat_rows[(-(-n // t), -(-out.shape[1] // t)), (t, t)](a, b, out)
    return out


@cuda.jit
def _relu(a):
    i = cuda.grid(1)
    if i < a.size:
        v = a[i]
        a[i] = v if not v < 0 else v * 0  # NaN stays NaN


@cuda.jit
def _relu_backward(d, r):
    i = cuda.grid(1)
    if i < d.size:
        if not r[i] > 0:
            d[i] = 0


def relu_(a) -> None:
    flat = a.reshape(a.size)
    _relu[_grid(flat.size)](flat)


def relu_backward_(d, r) -> None:
    """d *= (r > 0), in place (r is the ReLU's output)."""
    flat = d.reshape(d.size)
    _relu_backward[_grid(flat.size)](flat, r.reshape(r.size))


# ------------------------------------------------------------------------ losses
@cuda.jit(device=True)
def block_sum(sh, acc):
    """sh[0] = the sum of every thread's ``acc``: a tree over the block's threads (a
    power of two) in shared memory, the same order at every launch."""
    tid = cuda.threadIdx.x
    sh[tid] = acc
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if tid < half:
            sh[tid] += sh[tid + half]
        cuda.syncthreads()
        half //= 2


@functools.cache
def _loss_kernel(dtype):
    nb = numba_dtype(dtype)

    @cuda.jit
    def loss(pred, y, quantiles, kind, n, grad, losses, slot, status, code_step,
             want_grad):
        """losses[slot] = sum of the loss terms / n; grad = d loss / d pred (with
        ``want_grad``). One block; ``pred`` (rows, m), ``y`` (rows, m / Q)."""
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        sh = cuda.shared.array(0, nb)
        rows, m = pred.shape
        Q = quantiles.shape[0] if kind == 3 else 1
        acc = 0.0
        for e in range(tid, rows * m, nth):
            i = e // m
            j = e - i * m
            if kind == 3:
                q = quantiles[j % Q]
                r = y[i, j // Q] - pred[i, j]
                term = q * r if q * r > (q - 1) * r else (q - 1) * r
                g = -q if r > 0 else 1 - q
            else:
                r = pred[i, j] - y[i, j]
                a = abs(r)
                if kind == 0:
                    term = r * r
                    g = 2 * r
                elif kind == 1:
                    term = a
                    g = 1.0 if r > 0 else (-1.0 if r < 0 else r * 0)
                else:
                    term = 0.5 * r * r if a <= 1 else a - 0.5
                    g = r if a <= 1 else (1.0 if r > 0 else (-1.0 if r < 0 else r * 0))
            acc += term
            if want_grad:
                grad[i, j] = g / n
        block_sum(sh, acc)
        if tid == 0:
            total = sh[0] / n
            losses[slot] = total
            if not math.isfinite(total) and status[0] == 0:
                status[0] = code_step
                status[1] = slot

    return loss


def loss(kind, pred, y, quantiles, grad, losses, slot, status, code_step, want_grad=True):
    """The mean ``kind`` loss ("mse" | "mae" | "huber", or the pinball loss over
    ``quantiles``) of ``pred`` against ``y`` into ``losses[slot]``, and its gradient
    into ``grad`` (as :func:`tsrnn.losses.loss_and_grad`); a non-finite loss sets
    ``status`` to ``code_step``."""
    code = _LOSS_CODES["pinball" if quantiles is not None else kind]
    t = reduce_threads()
    n = float(pred.shape[0] * pred.shape[1])
    q = quantiles if quantiles is not None else losses[:1]
    _loss_kernel(np.dtype(np.float64))[1, t, 0, t * 8](
        pred, y, q, code, n, grad, losses, slot, status, code_step, want_grad)


# -------------------------------------------------------------- clip and update
@cuda.jit
def _sum_squares(g, out, slot):
    tid = cuda.threadIdx.x
    nth = cuda.blockDim.x
    sh = cuda.shared.array(0, float64)
    acc = 0.0
    for i in range(tid, g.size, nth):
        acc += np.float64(g[i]) * g[i]
    block_sum(sh, acc)
    if tid == 0:
        out[slot] = math.sqrt(sh[0])


@cuda.jit
def _clip(g, norms, slot, max_norm, has_max, status, code_step):
    i = cuda.grid(1)
    total = norms[slot]
    if not math.isfinite(total):
        if i == 0 and status[0] == 0:
            status[0] = code_step
            status[1] = slot
        return
    if has_max and total > max_norm and i < g.size:
        g[i] *= max_norm / (total + 1e-12)


def clip_by_global_norm(g, norms, slot, max_norm, status, code_step) -> None:
    """The norm of the flat gradients ``g`` into ``norms[slot]``; scale them down to
    ``max_norm`` (None: no clipping) as :func:`tsrnn.training.clip_by_global_norm`."""
    t = reduce_threads()
    _sum_squares[1, t, 0, t * 8](g, norms, slot)
    _clip[_grid(g.size)](g, norms, slot, float(max_norm or 0.0), max_norm is not None,
                         status, code_step)


@cuda.jit
def _adam(p, g, m, v, b1, b2, step_size, c2, eps, wd, status):
    i = cuda.grid(1)
    if i < p.size and status[0] == 0:
        gi = g[i] + wd * p[i]
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (math.sqrt(vi / c2) + eps)


@cuda.jit
def _sgd(p, g, lr, wd, status):
    i = cuda.grid(1)
    if i < p.size and status[0] == 0:
        p[i] -= lr * (g[i] + wd * p[i])


@cuda.jit
def _rmsprop(p, g, sq, lr, alpha, eps, wd, status):
    i = cuda.grid(1)
    if i < p.size and status[0] == 0:
        gi = g[i] + wd * p[i]
        s = alpha * sq[i] + (1 - alpha) * (gi * gi)
        sq[i] = s
        p[i] -= lr * gi / (math.sqrt(s) + eps)


@cuda.jit
def _average(a, p, decay, first, status):
    i = cuda.grid(1)
    if i < p.size and status[0] == 0:
        a[i] = p[i] if first else decay * a[i] + (1.0 - decay) * p[i]


def adam(p, g, m, v, b1, b2, step_size, c2, eps, wd, status):
    _adam[_grid(p.size)](p, g, m, v, b1, b2, step_size, c2, eps, wd, status)


def sgd(p, g, lr, wd, status):
    _sgd[_grid(p.size)](p, g, lr, wd, status)


def rmsprop(p, g, sq, lr, alpha, eps, wd, status):
    _rmsprop[_grid(p.size)](p, g, sq, lr, alpha, eps, wd, status)


def average(a, p, decay, first, status):
    _average[_grid(p.size)](a, p, decay, first, status)
