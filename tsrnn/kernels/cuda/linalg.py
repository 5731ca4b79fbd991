"""Device helpers: dtypes, transfers, activations, and the matrix products around
the time loops (input projections, weight and input gradients, the heads), all one
tiled kernel.

The product (:func:`matmul`) stages square tiles of both operands in shared memory
(side :func:`tile`, the configured threads per block read at call time, so tests
shrink it), sums each output element over ``k`` in increasing order, and splits a
long ``k`` (the time x batch rows of a weight gradient) into parts summed in a
second pass, always in part order: results do not depend on the launch, and there
are no atomics.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda, float32, float64

from tsrnn import _config
from tsrnn.kernels.cpu.linalg import reverse_padded as _reverse_padded_cpu

_NUMBA_DTYPES = {np.dtype(np.float32): float32, np.dtype(np.float64): float64}


def numba_dtype(dtype):
    """The numba type of a float32/float64 dtype (kernels are built per dtype)."""
    return _NUMBA_DTYPES[np.dtype(dtype)]


def threads_per_block() -> int:
    return max(1, int(_config.CUDA_THREADS_PER_BLOCK))


def tile() -> int:
    """Side of the square tiles of :func:`matmul` (16 at 256 threads per block)."""
    return max(1, min(16, math.isqrt(threads_per_block())))


def _on_device(a) -> bool:
    return hasattr(a, "copy_to_host")  # device arrays (the simulator's too)


def to_device(a):
    return a if _on_device(a) else cuda.to_device(np.ascontiguousarray(a))


def host(a):
    return a.copy_to_host() if _on_device(a) else a


@cuda.jit(device=True)
def sigmoid(v):
    if v >= 0:
        return 1 / (1 + math.exp(-v))
    e = math.exp(v)  # never overflows: a large -v gives 0, as 1 / (1 + inf) does
    return e / (1 + e)


@cuda.jit(device=True)
def tanh(v):
    return math.tanh(v)


@cuda.jit
def _fill(a, value):
    i = cuda.grid(1)
    if i < a.size:
        a[i] = value


def zeros(shape, dtype):
    """A device array of zeros, filled on the device (no host copy)."""
    a = cuda.device_array(shape, dtype=dtype)
    fill(a, 0)
    return a


def fill(a, value) -> None:
    flat = a.reshape(a.size)
    if flat.size:
        t = threads_per_block()
        _fill[(flat.size + t - 1) // t, t](flat, value)


@cuda.jit
def _copy(src, dst):
    i = cuda.grid(1)
    if i < dst.size:
        dst[i] = src[i]


def copy(src, dst) -> None:
    """``dst[...] = src`` on the device, for contiguous arrays of one size."""
    s, d = src.reshape(src.size), dst.reshape(dst.size)
    if d.size:
        t = threads_per_block()
        _copy[(d.size + t - 1) // t, t](s, d)


@cuda.jit
def _transpose(a, out):
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        out[i, j] = a[j, i]


def transpose(a):
    """A C-contiguous device copy of the 2-D device array ``a`` transposed."""
    out = cuda.device_array((a.shape[1], a.shape[0]), dtype=a.dtype)
    t = tile()
    _transpose[((out.shape[0] + t - 1) // t, (out.shape[1] + t - 1) // t), (t, t)](a, out)
    return out


@functools.cache
def _matmul_kernel(dtype):
    nb = numba_dtype(dtype)

    @cuda.jit
    def matmul_parts(a, b, parts, a_t, b_t, k_chunk):
        """parts[z, i, j] = sum over k in part z of A[i, k] B[k, j], A = a or a.T,
        B = b or b.T; both tiles loaded along the contiguous axis of their array."""
        t = cuda.blockDim.x
        ty = cuda.threadIdx.y
        tx = cuda.threadIdx.x
        i0 = cuda.blockIdx.x * t
        j0 = cuda.blockIdx.y * t
        z = cuda.blockIdx.z
        M = parts.shape[1]
        N = parts.shape[2]
        K = a.shape[0] if a_t else a.shape[1]
        k_lo = z * k_chunk
        k_hi = min(K, k_lo + k_chunk)
        sh = cuda.shared.array(0, nb)
        sb = t * t  # offset of B's tile
        acc = nb(0)
        for k0 in range(k_lo, k_hi, t):
            if a_t:  # A[i0 + tx, k0 + ty] = a[k0 + ty, i0 + tx]
                k, i = k0 + ty, i0 + tx
                sh[tx * t + ty] = a[k, i] if (k < k_hi and i < M) else nb(0)
            else:
                i, k = i0 + ty, k0 + tx
                sh[ty * t + tx] = a[i, k] if (k < k_hi and i < M) else nb(0)
            if b_t:  # B[k0 + tx, j0 + ty] = b[j0 + ty, k0 + tx]
                j, k = j0 + ty, k0 + tx
                sh[sb + tx * t + ty] = b[j, k] if (k < k_hi and j < N) else nb(0)
            else:
                k, j = k0 + ty, j0 + tx
                sh[sb + ty * t + tx] = b[k, j] if (k < k_hi and j < N) else nb(0)
            cuda.syncthreads()
            for kk in range(t):
                acc += sh[ty * t + kk] * sh[sb + kk * t + tx]
            cuda.syncthreads()
        i = i0 + ty
        j = j0 + tx
        if i < M and j < N:
            parts[z, i, j] = acc

    return matmul_parts


@cuda.jit
def _finish(parts, bias, out, has_bias, accumulate):
    """out[i, j] (+)= sum_z parts[z, i, j] (+ bias[j]), parts summed in order."""
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        acc = parts[0, i, j]
        for z in range(1, parts.shape[0]):
            acc += parts[z, i, j]
        if has_bias:
            acc += bias[j]
        if accumulate:
            acc += out[i, j]
        out[i, j] = acc


def split_k(m: int, n: int, k: int) -> int:
    """How many parts a product sums its ``k`` terms in: enough blocks for the GPU
    (``CUDA_TARGET_BLOCKS``) when the output is small, each part at least four tiles
    long."""
    t = tile()
    blocks = -(-m // t) * -(-n // t)
    want = -(-int(_config.CUDA_TARGET_BLOCKS) // max(blocks, 1))
    return int(max(1, min(want, k // (4 * t))))


def matmul(a, b, out=None, *, a_t=False, b_t=False, bias=None, accumulate=False):
    """``out (+)= A @ B (+ bias)`` on the device, A = ``a`` or ``a.T`` (``a_t``), B =
    ``b`` or ``b.T`` (``b_t``), 2-D device arrays (views allowed); returns ``out``
    (a new C-contiguous array when None)."""
    M = a.shape[1] if a_t else a.shape[0]
    K = a.shape[0] if a_t else a.shape[1]
    N = b.shape[0] if b_t else b.shape[1]
    if out is None:
        out = cuda.device_array((M, N), dtype=a.dtype)
    t = tile()
    n_parts = split_k(M, N, K) if K else 1
    k_chunk = -(-max(K, 1) // n_parts)
    k_chunk = -(-k_chunk // t) * t
    n_parts = max(1, -(-K // k_chunk))
    grid = (-(-M // t), -(-N // t))
    # one part, nothing to add: the product is written straight into ``out``
    direct = n_parts == 1 and not accumulate and bias is None and out.is_c_contiguous()
    parts = (out.reshape(1, M, N) if direct
             else cuda.device_array((n_parts, M, N), dtype=a.dtype))
    if M and N:
        if K:
            _matmul_kernel(np.dtype(a.dtype))[(*grid, n_parts), (t, t), 0,
                                              2 * t * t * a.dtype.itemsize](
                a, b, parts, a_t, b_t, k_chunk)
        else:
            fill(parts, 0)
        if not direct:
            _finish[grid, (t, t)](parts, bias if bias is not None else parts[0, 0], out,
                                  bias is not None, accumulate)
    return out


@cuda.jit
def _col_sum_parts(d, parts, rows_per_part):
    j = cuda.grid(1)
    z = cuda.blockIdx.y
    if j < d.shape[1]:
        lo = z * rows_per_part
        hi = min(d.shape[0], lo + rows_per_part)
        acc = d[lo, j]
        for r in range(lo + 1, hi):
            acc += d[r, j]
        parts[z, 0, j] = acc


def col_sum(d, out=None, *, accumulate=False):
    """Column sums of the 2-D device array ``d`` into ``out`` (1-D), rows summed in
    order within parts of rows and the parts in order."""
    R, G = d.shape
    if out is None:
        out = cuda.device_array(G, dtype=d.dtype)
    col_blocks = -(-G // threads_per_block())
    n_parts = max(1, min(-(-R // 64), -(-int(_config.CUDA_TARGET_BLOCKS) // col_blocks)))
    rows = -(-R // n_parts)
    n_parts = -(-R // rows)
    parts = cuda.device_array((n_parts, 1, G), dtype=d.dtype)
    t = threads_per_block()
    _col_sum_parts[(-(-G // t), n_parts), t](d, parts, rows)
    tt = tile()
    _finish[(1, -(-G // tt)), (tt, tt)](parts, parts[0, 0], out.reshape(1, G), False,
                                        accumulate)
    return out


def input_projection(x_dev, w_ih_dev, bias_dev):
    """(time, batch, gates) pre-activations ``x @ w_ih.T + bias`` on the device."""
    T, B, F = x_dev.shape
    G = w_ih_dev.shape[0]
    out = cuda.device_array((T, B, G), dtype=x_dev.dtype)
    matmul(x_dev.reshape(T * B, F), w_ih_dev, out.reshape(T * B, G), b_t=True,
           bias=bias_dev)
    return out


def weight_and_input_grads(x, w_ih, hs, d_in, d_hh, grads, want_dx):
    """dw_ih = d_in^T x, dw_hh = d_hh^T h, the biases' column sums, dx = d_in w_ih:
    the products over all steps at once."""
    T, B, F = x.shape
    G, H = d_in.shape[2], hs.shape[2]
    if grads is None:
        dt = x.dtype
        grads = (cuda.device_array((G, F), dt), cuda.device_array((G, H), dt),
                 cuda.device_array(G, dt), cuda.device_array(G, dt))
    dw_ih, dw_hh, db_ih, db_hh = grads
    d2 = d_in.reshape(T * B, G)
    d2_hh = d_hh.reshape(T * B, G)
    matmul(d2, x.reshape(T * B, F), dw_ih, a_t=True)
    matmul(d2_hh, hs[:T].reshape(T * B, H), dw_hh, a_t=True)
    col_sum(d2, db_ih)
    if d_hh is d_in:  # one bias gradient for both biases
        copy(db_ih, db_hh)
    else:
        col_sum(d2_hh, db_hh)
    dx = matmul(d2, w_ih).reshape(T, B, F) if want_dx else None
    return dx, grads


def reverse_padded(a, lengths):
    """Host-side, like the CPU function: reverse directions are reversed on the host
    before their inputs go to the device."""
    return _reverse_padded_cpu(host(a), lengths)


@cuda.jit
def _add(a, b, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] + b[i]


def add(a, b):
    """``a + b`` of two 1-D device arrays, a new device array."""
    out = cuda.device_array(a.shape, dtype=a.dtype)
    t = threads_per_block()
    _add[(a.size + t - 1) // t, t](a, b, out)
    return out
