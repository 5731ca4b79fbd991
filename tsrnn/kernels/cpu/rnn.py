"""Elman RNN, PyTorch's math and layout: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``
with ``act`` tanh or relu (``use_relu``: an integer-coded choice, never a Python
function, so that the on-disk cache holds)."""

import numpy as np
from numba import njit

from tsrnn.kernels.activations import relu, tanh
from tsrnn.kernels.cpu.linalg import matmul_acc


@njit(cache=True, nogil=True)
def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, use_relu):
    """One direction of one RNN layer over all steps.

    Returns ``out`` (time, batch, hidden), zero past each row's length, and ``hs``
    (time + 1, batch, hidden), the states before/after each step, carried through
    padding. The backward pass needs only ``hs``; ``keep`` is accepted for the
    common signature.
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    xp = np.dot(x.reshape(T * B, F), np.ascontiguousarray(w_ih.T)).reshape(T, B, H)
    bias = b_ih + b_hh
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    out = np.zeros((T, B, H), dtype=x.dtype)
    hs[0] = h0
    pre = np.empty((B, H), dtype=x.dtype)
    for s in range(T):
        pre[:] = xp[s]
        matmul_acc(hs[s], w_hh_t, pre)
        for b in range(B):
            if s < lengths[b]:
                if use_relu:
                    for j in range(H):
                        h = relu(pre[b, j] + bias[j])
                        hs[s + 1, b, j] = h
                        out[s, b, j] = h
                else:
                    for j in range(H):
                        h = tanh(pre[b, j] + bias[j])
                        hs[s + 1, b, j] = h
                        out[s, b, j] = h
            else:
                for j in range(H):
                    hs[s + 1, b, j] = hs[s, b, j]
    return out, hs


@njit(cache=True, nogil=True)
def rnn_backward(x, w_ih, w_hh, lengths, hs, dout, dh_n, use_relu):
    """Backpropagation through time for :func:`rnn_forward`.

    Returns ``dx, dw_ih, dw_hh, db_ih, db_hh, dh0``.
    """
    T, B, F = x.shape
    H = w_hh.shape[1]
    dpre = np.empty((T, B, H), dtype=x.dtype)
    dh = dh_n.copy()
    dh_prev = np.empty((B, H), dtype=x.dtype)
    for s in range(T - 1, -1, -1):
        dp = dpre[s]
        for b in range(B):
            if s < lengths[b]:
                for j in range(H):
                    dhj = dh[b, j] + dout[s, b, j]
                    h = hs[s + 1, b, j]
                    if use_relu:
                        dp[b, j] = dhj if h > 0 else dhj * 0
                    else:
                        dp[b, j] = dhj * (1 - h * h)
                    dh_prev[b, j] = 0
            else:
                for j in range(H):
                    dp[b, j] = 0
                    dh_prev[b, j] = dh[b, j]
        matmul_acc(dp, w_hh, dh_prev)
        dh[:] = dh_prev
    dp2 = dpre.reshape(T * B, H)
    dp2_t = np.ascontiguousarray(dp2.T)
    dw_ih = np.dot(dp2_t, x.reshape(T * B, F))
    dw_hh = np.dot(dp2_t, hs[:T].reshape(T * B, H))
    db = dp2.sum(axis=0)
    dx = np.dot(dp2, w_ih).reshape(T, B, F)
    return dx, dw_ih, dw_hh, db, db.copy(), dh
