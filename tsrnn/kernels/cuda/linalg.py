"""Device helpers: launch geometry, activations, and the products around the time
loop (input projection, weight gradients, input gradient), each as one kernel with
one thread per output element."""

import math

import numpy as np
from numba import cuda

from tsrnn import _config
from tsrnn.kernels.cpu.linalg import reverse_padded as _reverse_padded_cpu


def threads_per_row(hidden: int) -> int:
    """Threads of a per-row block: enough for the hidden units, at most the
    configured block size (read at call time, so tests can shrink it)."""
    return max(1, min(_config.CUDA_THREADS_PER_BLOCK, hidden))


def _tile() -> int:
    return max(1, min(16, int(math.isqrt(_config.CUDA_THREADS_PER_BLOCK))))


def grid2d(rows: int, cols: int):
    t = _tile()
    return ((rows + t - 1) // t, (cols + t - 1) // t), (t, t)


def _on_device(a) -> bool:
    return hasattr(a, "copy_to_host")  # device arrays (the simulator's too)


def to_device(a):
    return a if _on_device(a) else cuda.to_device(np.ascontiguousarray(a))


def host(a):
    return a.copy_to_host() if _on_device(a) else a


@cuda.jit(device=True)
def sigmoid(v):
    return 1 / (1 + math.exp(-v))


@cuda.jit(device=True)
def tanh(v):
    return math.tanh(v)


@cuda.jit(device=True)
def _at(m, i, j, transposed):
    return m[j, i] if transposed else m[i, j]


@cuda.jit
def _contract(a, b, bias, out, a_t, b_t, has_bias):
    """out[i, j] = bias[j] + sum_k A[i, k] * B[k, j], one thread per element, k in
    order (deterministic). A is ``a`` or ``a.T`` (``a_t``), B is ``b`` or ``b.T``
    (``b_t``); ``bias`` is read only with ``has_bias``. Every product around the time loop is
    this one kernel: x @ w_ih.T + b, d @ w_ih, and d.T @ inputs."""
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        n_k = a.shape[0] if a_t else a.shape[1]
        if has_bias:
            acc = bias[j]
            k0 = 0
        else:  # starting from the first term keeps the dtype
            acc = _at(a, i, 0, a_t) * _at(b, 0, j, b_t)
            k0 = 1
        for k in range(k0, n_k):
            acc += _at(a, i, k, a_t) * _at(b, k, j, b_t)
        out[i, j] = acc


@cuda.jit
def _col_sum(d2, out):
    g = cuda.grid(1)
    if g < out.shape[0]:
        acc = d2[0, g]
        for r in range(1, d2.shape[0]):
            acc += d2[r, g]
        out[g] = acc


def _no_bias(dtype):
    return cuda.to_device(np.zeros(1, dtype=dtype))  # unread placeholder


def input_projection(x_dev, w_ih_dev, bias_dev):
    """(time, batch, gates) pre-activations ``x @ w_ih.T + bias`` on the device."""
    T, B, F = x_dev.shape
    G = w_ih_dev.shape[0]
    out = cuda.device_array((T, B, G), dtype=x_dev.dtype)
    blocks, threads = grid2d(T * B, G)
    _contract[blocks, threads](x_dev.reshape(T * B, F), w_ih_dev, bias_dev,
                               out.reshape(T * B, G), False, True, True)
    return out


def sum_outer(d_dev, a_dev):
    """``sum_t d[t]^T a[t]`` over the first T steps of ``a``: (gates, k), host array."""
    T, B, G = d_dev.shape
    K = a_dev.shape[2]
    out = cuda.device_array((G, K), dtype=d_dev.dtype)
    blocks, threads = grid2d(G, K)
    _contract[blocks, threads](d_dev.reshape(T * B, G), a_dev[:T].reshape(T * B, K),
                               _no_bias(d_dev.dtype), out, True, False, False)
    return out.copy_to_host()


def col_sum(d_dev):
    T, B, G = d_dev.shape
    out = cuda.device_array(G, dtype=d_dev.dtype)
    t = _tile() ** 2
    _col_sum[(G + t - 1) // t, t](d_dev.reshape(T * B, G), out)
    return out.copy_to_host()


def input_grad(d_dev, w_ih_dev):
    """``dx = d @ w_ih``: (time, batch, features), host array."""
    T, B, G = d_dev.shape
    F = w_ih_dev.shape[1]
    out = cuda.device_array((T * B, F), dtype=d_dev.dtype)
    blocks, threads = grid2d(T * B, F)
    _contract[blocks, threads](d_dev.reshape(T * B, G), w_ih_dev, _no_bias(d_dev.dtype), out,
                               False, False, False)
    return out.copy_to_host().reshape(T, B, F)


def weight_grads(dpre_dev, x_dev, hs_dev):
    return sum_outer(dpre_dev, x_dev), sum_outer(dpre_dev, hs_dev), col_sum(dpre_dev)


def reverse_padded(a, lengths):
    """Host-side, like the CPU function: reverse directions are reversed on the host
    before their inputs go to the device."""
    return _reverse_padded_cpu(host(a), lengths)
