"""LSTM on the GPU: the math of :mod:`tsrnn.kernels.cpu.lstm` (gates i, f, g, o)."""

import numpy as np
from numba import cuda

from tsrnn.kernels.cuda.linalg import (
    host,
    input_grad,
    input_projection,
    sigmoid,
    tanh,
    threads_per_row,
    to_device,
    weight_grads,
)


@cuda.jit
def _lstm_sequence(gates, w_hh, hs, cs, tanh_c, out, lengths, keep):
    """All steps of one row (block = batch row, threads = hidden units)."""
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = gates.shape[0]
    H = hs.shape[2]
    L = lengths[b]
    for s in range(T):
        ts = s if keep else 0
        if s < L:
            for j in range(tid, H, nthreads):
                gi = gates[s, b, j]
                gf = gates[s, b, H + j]
                gg = gates[s, b, 2 * H + j]
                go = gates[s, b, 3 * H + j]
                for k in range(H):
                    hk = hs[s, b, k]
                    gi += hk * w_hh[j, k]
                    gf += hk * w_hh[H + j, k]
                    gg += hk * w_hh[2 * H + j, k]
                    go += hk * w_hh[3 * H + j, k]
                i = sigmoid(gi)
                f = sigmoid(gf)
                g = tanh(gg)
                o = sigmoid(go)
                c = f * cs[s, b, j] + i * g
                t = tanh(c)
                gates[s, b, j] = i
                gates[s, b, H + j] = f
                gates[s, b, 2 * H + j] = g
                gates[s, b, 3 * H + j] = o
                cs[s + 1, b, j] = c
                tanh_c[ts, b, j] = t
                hs[s + 1, b, j] = o * t
                out[s, b, j] = o * t
        else:
            for j in range(tid, H, nthreads):
                for q in range(4):
                    gates[s, b, q * H + j] = 0
                hs[s + 1, b, j] = hs[s, b, j]
                cs[s + 1, b, j] = cs[s, b, j]
                tanh_c[ts, b, j] = 0
        cuda.syncthreads()  # step s + 1 reads every unit of hs[s + 1]


@cuda.jit
def _lstm_sequence_backward(gates, cs, tanh_c, w_hh, dout, dh, dc, dpre, lengths):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    T = gates.shape[0]
    H = dh.shape[1]
    G = 4 * H
    L = lengths[b]
    for s in range(T - 1, -1, -1):
        if s < L:
            for j in range(tid, H, nthreads):
                dhj = dh[b, j] + dout[s, b, j]
                i = gates[s, b, j]
                f = gates[s, b, H + j]
                g = gates[s, b, 2 * H + j]
                o = gates[s, b, 3 * H + j]
                t = tanh_c[s, b, j]
                dcj = dc[b, j] + dhj * o * (1 - t * t)
                dpre[s, b, j] = dcj * g * i * (1 - i)
                dpre[s, b, H + j] = dcj * cs[s, b, j] * f * (1 - f)
                dpre[s, b, 2 * H + j] = dcj * i * (1 - g * g)
                dpre[s, b, 3 * H + j] = dhj * t * o * (1 - o)
                dc[b, j] = dcj * f
            cuda.syncthreads()  # the next loop reads every gate of this row
            for j in range(tid, H, nthreads):
                acc = dpre[s, b, 0] * w_hh[0, j]
                for q in range(1, G):
                    acc += dpre[s, b, q] * w_hh[q, j]
                dh[b, j] = acc
        else:  # padding: the state and its gradient pass through unchanged
            for j in range(tid, H, nthreads):
                for q in range(4):
                    dpre[s, b, q * H + j] = 0
        cuda.syncthreads()


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, keep):
    """As :func:`tsrnn.kernels.cpu.lstm.lstm_forward`; ``out`` on the host, the
    cache (``hs, cs, gates, tanh_c``) on the device."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    x_dev = to_device(x)
    gates = input_projection(x_dev, to_device(w_ih), to_device(host(b_ih) + host(b_hh)))
    hs = cuda.device_array((T + 1, B, H), dtype=dt)
    cs = cuda.device_array((T + 1, B, H), dtype=dt)
    hs[0].copy_to_device(np.ascontiguousarray(host(h0)))
    cs[0].copy_to_device(np.ascontiguousarray(host(c0)))
    tanh_c = cuda.device_array((T if keep else 1, B, H), dtype=dt)
    out = cuda.to_device(np.zeros((T, B, H), dtype=dt))
    _lstm_sequence[B, threads_per_row(H)](gates, to_device(w_hh), hs, cs, tanh_c, out,
                                          to_device(lengths), keep)
    return out.copy_to_host(), hs, cs, gates, tanh_c


def lstm_backward(x, w_ih, w_hh, lengths, hs, cs, gates, tanh_c, dout, dh_n, dc_n):
    """As :func:`tsrnn.kernels.cpu.lstm.lstm_backward`; host arrays out."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dpre = cuda.device_array((T, B, 4 * H), dtype=x.dtype)
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    dc = cuda.to_device(np.array(host(dc_n), copy=True))
    w_hh_dev = to_device(w_hh)
    _lstm_sequence_backward[B, threads_per_row(H)](gates, cs, tanh_c, w_hh_dev,
                                                   to_device(dout), dh, dc, dpre,
                                                   to_device(lengths))
    dw_ih, dw_hh, db = weight_grads(dpre, to_device(x), hs)
    dx = input_grad(dpre, to_device(w_ih))
    return dx, dw_ih, dw_hh, db, db.copy(), dh.copy_to_host(), dc.copy_to_host()
