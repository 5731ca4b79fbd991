"""LSTM, PyTorch's math and layout: gates i, f, g, o stacked in ``w_ih`` (4H, F),
``w_hh`` (4H, H), ``b_ih`` and ``b_hh`` (4H,).

    i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
    c' = f * c + i * g;  h' = o * tanh(c')
"""

import numpy as np
from numba import njit

from tsrnn.kernels.activations import sigmoid, tanh
from tsrnn.kernels.cpu.linalg import matmul_acc


@njit(cache=True, nogil=True)
def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, keep):
    """One direction of one LSTM layer over all steps.

    Parameters
    ----------
    x : ndarray of shape (time, batch, features), C-contiguous
    w_ih, w_hh, b_ih, b_hh : PyTorch-layout weights of this layer and direction
    h0, c0 : ndarray of shape (batch, hidden)
    lengths : int64 ndarray of shape (batch,); row b is active while step < lengths[b]
    keep : bool
        Keep the activations the backward pass needs (training); otherwise only a
        single step's worth of scratch space is allocated.

    Returns
    -------
    out : (time, batch, hidden), zero past each row's length
    hs, cs : (time + 1, batch, hidden); states before/after each step (carried
        unchanged through padding, so ``hs[-1]`` is each row's final state)
    gates : (time or 1, batch, 4 * hidden), activated i, f, g, o
    tanh_c : (time or 1, batch, hidden)
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    G = 4 * H
    # The input projection of every step at once: one large GEMM instead of T small.
    xp = np.dot(x.reshape(T * B, F), np.ascontiguousarray(w_ih.T)).reshape(T, B, G)
    bias = b_ih + b_hh
    w_hh_t = np.ascontiguousarray(w_hh.T)
    nk = T if keep else 1
    gates = np.empty((nk, B, G), dtype=x.dtype)
    tanh_c = np.empty((nk, B, H), dtype=x.dtype)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    cs = np.empty((T + 1, B, H), dtype=x.dtype)
    out = np.zeros((T, B, H), dtype=x.dtype)
    hs[0] = h0
    cs[0] = c0
    pre = np.empty((B, G), dtype=x.dtype)
    for s in range(T):
        k = s if keep else 0
        pre[:] = xp[s]
        matmul_acc(hs[s], w_hh_t, pre)
        gs = gates[k]
        tc = tanh_c[k]
        for b in range(B):
            if s < lengths[b]:
                for j in range(H):
                    gs[b, j] = sigmoid(pre[b, j] + bias[j])
                for j in range(H, 2 * H):
                    gs[b, j] = sigmoid(pre[b, j] + bias[j])
                for j in range(2 * H, 3 * H):
                    gs[b, j] = tanh(pre[b, j] + bias[j])
                for j in range(3 * H, G):
                    gs[b, j] = sigmoid(pre[b, j] + bias[j])
                for j in range(H):
                    c = gs[b, H + j] * cs[s, b, j] + gs[b, j] * gs[b, 2 * H + j]
                    cs[s + 1, b, j] = c
                    t = tanh(c)
                    tc[b, j] = t
                    h = gs[b, 3 * H + j] * t
                    hs[s + 1, b, j] = h
                    out[s, b, j] = h
            else:
                for j in range(G):
                    gs[b, j] = 0
                for j in range(H):
                    hs[s + 1, b, j] = hs[s, b, j]
                    cs[s + 1, b, j] = cs[s, b, j]
                    tc[b, j] = 0
    return out, hs, cs, gates, tanh_c


@njit(cache=True, nogil=True)
def lstm_backward(x, w_ih, w_hh, lengths, hs, cs, gates, tanh_c, dout, dh_n, dc_n):
    """Backpropagation through time for :func:`lstm_forward` (``keep=True``).

    Returns ``dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0``. The weight gradients are
    two large GEMMs after the time loop, over the stored per-step gate gradients.
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    G = 4 * H
    dgates = np.empty((T, B, G), dtype=x.dtype)
    dh = dh_n.copy()
    dc = dc_n.copy()
    dh_prev = np.empty((B, H), dtype=x.dtype)
    for s in range(T - 1, -1, -1):
        gs = gates[s]
        dg = dgates[s]
        for b in range(B):
            if s < lengths[b]:
                for j in range(H):
                    dhj = dh[b, j] + dout[s, b, j]
                    i = gs[b, j]
                    f = gs[b, H + j]
                    g = gs[b, 2 * H + j]
                    o = gs[b, 3 * H + j]
                    t = tanh_c[s, b, j]
                    dcj = dc[b, j] + dhj * o * (1 - t * t)
                    dg[b, j] = dcj * g * i * (1 - i)
                    dg[b, H + j] = dcj * cs[s, b, j] * f * (1 - f)
                    dg[b, 2 * H + j] = dcj * i * (1 - g * g)
                    dg[b, 3 * H + j] = dhj * t * o * (1 - o)
                    dc[b, j] = dcj * f
                for j in range(H):
                    dh_prev[b, j] = 0
            else:
                # Padding: the state passes through unchanged, and so does its gradient.
                for j in range(G):
                    dg[b, j] = 0
                for j in range(H):
                    dh_prev[b, j] = dh[b, j]
        matmul_acc(dg, w_hh, dh_prev)
        dh[:] = dh_prev
    dg2 = dgates.reshape(T * B, G)
    dg2_t = np.ascontiguousarray(dg2.T)
    dw_ih = np.dot(dg2_t, x.reshape(T * B, F))
    dw_hh = np.dot(dg2_t, hs[:T].reshape(T * B, H))
    db = dg2.sum(axis=0)
    dx = np.dot(dg2, w_ih).reshape(T, B, F)
    return dx, dw_ih, dw_hh, db, db.copy(), dh, dc
