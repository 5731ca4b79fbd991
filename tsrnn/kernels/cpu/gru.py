"""GRU, PyTorch's math and layout: gates r, z, n stacked in ``w_ih`` (3H, F) and
``w_hh`` (3H, H); the reset gate multiplies ``W_hn h + b_hn`` (not ``h``):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
"""

import numpy as np
from numba import njit

from tsrnn.kernels.activations import sigmoid, tanh
from tsrnn.kernels.cpu.linalg import matmul_acc


@njit(cache=True, nogil=True)
def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep):
    """One direction of one GRU layer over all steps.

    Returns ``out`` (time, batch, hidden), zero past each row's length; ``hs``
    (time + 1, batch, hidden); ``gates`` (time or 1, batch, 3 * hidden), the
    activated r, z, n; and ``hn`` (time or 1, batch, hidden), ``W_hn h + b_hn``.
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    xp = np.dot(x.reshape(T * B, F), np.ascontiguousarray(w_ih.T)).reshape(T, B, G)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    nk = T if keep else 1
    gates = np.empty((nk, B, G), dtype=x.dtype)
    hn_all = np.empty((nk, B, H), dtype=x.dtype)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    out = np.zeros((T, B, H), dtype=x.dtype)
    hs[0] = h0
    ph = np.empty((B, G), dtype=x.dtype)
    for s in range(T):
        k = s if keep else 0
        for b in range(B):
            ph[b] = b_hh
        matmul_acc(hs[s], w_hh_t, ph)
        gs = gates[k]
        hn = hn_all[k]
        xs = xp[s]
        for b in range(B):
            if s < lengths[b]:
                for j in range(2 * H):
                    gs[b, j] = sigmoid(xs[b, j] + b_ih[j] + ph[b, j])
                for j in range(H):
                    hn[b, j] = ph[b, 2 * H + j]
                    n = tanh(xs[b, 2 * H + j] + b_ih[2 * H + j] + gs[b, j] * hn[b, j])
                    gs[b, 2 * H + j] = n
                    z = gs[b, H + j]
                    h = (1 - z) * n + z * hs[s, b, j]
                    hs[s + 1, b, j] = h
                    out[s, b, j] = h
            else:
                for j in range(G):
                    gs[b, j] = 0
                for j in range(H):
                    hn[b, j] = 0
                    hs[s + 1, b, j] = hs[s, b, j]
    return out, hs, gates, hn_all


@njit(cache=True, nogil=True)
def gru_backward(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n):
    """Backpropagation through time for :func:`gru_forward` (``keep=True``).

    Returns ``dx, dw_ih, dw_hh, db_ih, db_hh, dh0``. The input-side and hidden-side
    gate gradients differ only in the n block (``dn`` vs ``dn * r``), so both are kept.
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    dgi = np.empty((T, B, G), dtype=x.dtype)
    dgh = np.empty((T, B, G), dtype=x.dtype)
    dh = dh_n.copy()
    dh_prev = np.empty((B, H), dtype=x.dtype)
    for s in range(T - 1, -1, -1):
        gs = gates[s]
        hn = hn_all[s]
        di = dgi[s]
        dhh = dgh[s]
        for b in range(B):
            if s < lengths[b]:
                for j in range(H):
                    dhj = dh[b, j] + dout[s, b, j]
                    r = gs[b, j]
                    z = gs[b, H + j]
                    n = gs[b, 2 * H + j]
                    dn = dhj * (1 - z) * (1 - n * n)
                    dz = dhj * (hs[s, b, j] - n) * z * (1 - z)
                    dr = dn * hn[b, j] * r * (1 - r)
                    di[b, j] = dr
                    di[b, H + j] = dz
                    di[b, 2 * H + j] = dn
                    dhh[b, j] = dr
                    dhh[b, H + j] = dz
                    dhh[b, 2 * H + j] = dn * r
                    dh_prev[b, j] = dhj * z
            else:
                for j in range(G):
                    di[b, j] = 0
                    dhh[b, j] = 0
                for j in range(H):
                    dh_prev[b, j] = dh[b, j]
        matmul_acc(dhh, w_hh, dh_prev)
        dh[:] = dh_prev
    di2 = dgi.reshape(T * B, G)
    dh2 = dgh.reshape(T * B, G)
    dw_ih = np.dot(np.ascontiguousarray(di2.T), x.reshape(T * B, F))
    dw_hh = np.dot(np.ascontiguousarray(dh2.T), hs[:T].reshape(T * B, H))
    dx = np.dot(di2, w_ih).reshape(T, B, F)
    return dx, dw_ih, dw_hh, di2.sum(axis=0), dh2.sum(axis=0), dh
