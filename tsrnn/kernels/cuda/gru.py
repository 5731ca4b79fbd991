"""GRU on the GPU: the math of :mod:`tsrnn.kernels.cpu.gru` (gates r, z, n; the
reset gate multiplies ``W_hn h + b_hn``)."""

import numpy as np
from numba import cuda

from tsrnn.kernels.cuda.linalg import (
    col_sum,
    host,
    input_grad,
    input_projection,
    sigmoid,
    sum_outer,
    tanh,
    threads_per_row,
    to_device,
)


@cuda.jit
def _gru_sequence(gates, w_hh, b_hh, hs, hn_all, out, lengths, keep):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = gates.shape[0]
    H = hs.shape[2]
    L = lengths[b]
    for s in range(T):
        ts = s if keep else 0
        for j in range(tid, H, nthreads):
            if s < L:
                hr = b_hh[j]
                hz = b_hh[H + j]
                hn = b_hh[2 * H + j]
                for k in range(H):
                    hk = hs[s, b, k]
                    hr += hk * w_hh[j, k]
                    hz += hk * w_hh[H + j, k]
                    hn += hk * w_hh[2 * H + j, k]
                r = sigmoid(gates[s, b, j] + hr)
                z = sigmoid(gates[s, b, H + j] + hz)
                n = tanh(gates[s, b, 2 * H + j] + r * hn)
                gates[s, b, j] = r
                gates[s, b, H + j] = z
                gates[s, b, 2 * H + j] = n
                hn_all[ts, b, j] = hn
                h = (1 - z) * n + z * hs[s, b, j]
                hs[s + 1, b, j] = h
                out[s, b, j] = h
            else:
                for q in range(3):
                    gates[s, b, q * H + j] = 0
                hn_all[ts, b, j] = 0
                hs[s + 1, b, j] = hs[s, b, j]
        cuda.syncthreads()


@cuda.jit
def _gru_sequence_backward(gates, hn_all, hs, w_hh, dout, dh, dgi, dgh, lengths):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = gates.shape[0]
    H = dh.shape[1]
    G = 3 * H
    L = lengths[b]
    for s in range(T - 1, -1, -1):
        if s < L:
            for j in range(tid, H, nthreads):
                dhj = dh[b, j] + dout[s, b, j]
                r = gates[s, b, j]
                z = gates[s, b, H + j]
                n = gates[s, b, 2 * H + j]
                dn = dhj * (1 - z) * (1 - n * n)
                dz = dhj * (hs[s, b, j] - n) * z * (1 - z)
                dr = dn * hn_all[s, b, j] * r * (1 - r)
                dgi[s, b, j] = dr
                dgi[s, b, H + j] = dz
                dgi[s, b, 2 * H + j] = dn
                dgh[s, b, j] = dr
                dgh[s, b, H + j] = dz
                dgh[s, b, 2 * H + j] = dn * r
                dh[b, j] = dhj * z
            cuda.syncthreads()
            for j in range(tid, H, nthreads):
                acc = dh[b, j]
                for q in range(G):
                    acc += dgh[s, b, q] * w_hh[q, j]
                dh[b, j] = acc
        else:
            for j in range(tid, H, nthreads):
                for q in range(3):
                    dgi[s, b, q * H + j] = 0
                    dgh[s, b, q * H + j] = 0
        cuda.syncthreads()


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep):
    """As :func:`tsrnn.kernels.cpu.gru.gru_forward`; ``out`` on the host, the cache
    (``hs, gates, hn``) on the device."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    gates = input_projection(to_device(x), to_device(w_ih), to_device(b_ih))
    hs = cuda.device_array((T + 1, B, H), dtype=dt)
    hs[0].copy_to_device(np.ascontiguousarray(host(h0)))
    hn_all = cuda.device_array((T if keep else 1, B, H), dtype=dt)
    out = cuda.to_device(np.zeros((T, B, H), dtype=dt))
    _gru_sequence[B, threads_per_row(H)](gates, to_device(w_hh), to_device(b_hh), hs,
                                         hn_all, out, to_device(lengths), keep)
    return out.copy_to_host(), hs, gates, hn_all


def gru_backward(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dgi = cuda.device_array((T, B, 3 * H), dtype=x.dtype)
    dgh = cuda.device_array((T, B, 3 * H), dtype=x.dtype)
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    _gru_sequence_backward[B, threads_per_row(H)](gates, hn_all, hs, to_device(w_hh),
                                                  to_device(dout), dh, dgi, dgh,
                                                  to_device(lengths))
    x_dev = to_device(x)
    dw_ih = sum_outer(dgi, x_dev)
    dw_hh = sum_outer(dgh, hs)
    dx = input_grad(dgi, to_device(w_ih))
    return dx, dw_ih, dw_hh, col_sum(dgi), col_sum(dgh), dh.copy_to_host()
