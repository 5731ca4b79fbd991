"""Elman RNN on the GPU: the math of :mod:`tsrnn.kernels.cpu.rnn` (tanh or relu)."""

import numpy as np
from numba import cuda

from tsrnn.kernels.cuda.linalg import (
    host,
    input_grad,
    input_projection,
    tanh,
    threads_per_row,
    to_device,
    weight_grads,
)


@cuda.jit
def _rnn_sequence(pre, w_hh, hs, out, lengths, use_relu):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = pre.shape[0]
    H = hs.shape[2]
    L = lengths[b]
    for s in range(T):
        for j in range(tid, H, nthreads):
            if s < L:
                acc = pre[s, b, j]
                for k in range(H):
                    acc += hs[s, b, k] * w_hh[j, k]
                if use_relu:
                    h = acc if not acc < 0 else acc * 0
                else:
                    h = tanh(acc)
                hs[s + 1, b, j] = h
                out[s, b, j] = h
            else:
                hs[s + 1, b, j] = hs[s, b, j]
        cuda.syncthreads()


@cuda.jit
def _rnn_sequence_backward(hs, w_hh, dout, dh, dpre, lengths, use_relu):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = dpre.shape[0]
    H = dh.shape[1]
    L = lengths[b]
    for s in range(T - 1, -1, -1):
        if s < L:
            for j in range(tid, H, nthreads):
                dhj = dh[b, j] + dout[s, b, j]
                h = hs[s + 1, b, j]
                if use_relu:
                    dpre[s, b, j] = dhj if h > 0 else dhj * 0
                else:
                    dpre[s, b, j] = dhj * (1 - h * h)
            cuda.syncthreads()
            for j in range(tid, H, nthreads):
                acc = dpre[s, b, 0] * w_hh[0, j]
                for q in range(1, H):
                    acc += dpre[s, b, q] * w_hh[q, j]
                dh[b, j] = acc
        else:
            for j in range(tid, H, nthreads):
                dpre[s, b, j] = 0
        cuda.syncthreads()


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, use_relu):
    """As :func:`tsrnn.kernels.cpu.rnn.rnn_forward`; ``out`` on the host, ``hs`` on
    the device."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    pre = input_projection(to_device(x), to_device(w_ih), to_device(host(b_ih) + host(b_hh)))
    hs = cuda.device_array((T + 1, B, H), dtype=x.dtype)
    hs[0].copy_to_device(np.ascontiguousarray(host(h0)))
    out = cuda.to_device(np.zeros((T, B, H), dtype=x.dtype))
    _rnn_sequence[B, threads_per_row(H)](pre, to_device(w_hh), hs, out, to_device(lengths),
                                         use_relu)
    return out.copy_to_host(), hs


def rnn_backward(x, w_ih, w_hh, lengths, hs, dout, dh_n, use_relu):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dpre = cuda.device_array((T, B, H), dtype=x.dtype)
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    _rnn_sequence_backward[B, threads_per_row(H)](hs, to_device(w_hh), to_device(dout), dh,
                                                  dpre, to_device(lengths), use_relu)
    dw_ih, dw_hh, db = weight_grads(dpre, to_device(x), hs)
    dx = input_grad(dpre, to_device(w_ih))
    return dx, dw_ih, dw_hh, db, db.copy(), dh.copy_to_host()
