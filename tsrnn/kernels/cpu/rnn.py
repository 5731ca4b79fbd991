"""Elman RNN, PyTorch's math and layout: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``
with ``act`` tanh or relu (``use_relu``: a flag, never a Python function, so that the
on-disk cache holds)."""

import numpy as np
from numba import njit

from tsrnn._config import JIT_OPTIONS
from tsrnn.kernels.activations import relu, tanh
from tsrnn.kernels.cpu.linalg import (
    copy_row,
    copy_rows,
    input_grad,
    input_projection,
    input_projection_rows,
    matmul_acc,
    min_length,
    rows_matmul_acc,
    vector_sum,
    weight_grads,
)


@njit(inline="always", **JIT_OPTIONS)
def _forward_row(p_b, hn, o_b, H, use_relu):
    """One active row of a forward step: the activation of the pre-activations."""
    if use_relu:
        for j in range(H):
            h = relu(p_b[j])
            hn[j] = h
            o_b[j] = h
    else:
        for j in range(H):
            h = tanh(p_b[j])
            hn[j] = h
            o_b[j] = h


@njit(inline="always", **JIT_OPTIONS)
def _backward_row(dp_b, dh_b, dhp, hn, do_b, H, use_relu):
    """One active row of a backward step: the pre-activation gradient, and a zeroed
    row for the recurrent product."""
    if use_relu:
        for j in range(H):
            dhj = dh_b[j] + do_b[j]
            dp_b[j] = dhj if hn[j] > 0 else dhj * 0
            dhp[j] = 0
    else:
        for j in range(H):
            h = hn[j]
            dp_b[j] = (dh_b[j] + do_b[j]) * (1 - h * h)
            dhp[j] = 0


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, use_relu):
    """One direction of one RNN layer over all steps.

    Returns ``out`` (time, batch, hidden), zero past each row's length, and ``hs``
    (time + 1, batch, hidden), the states before/after each step, carried through
    padding. The backward pass needs only ``hs``, so ``keep`` changes nothing here;
    it is accepted for the common signature.
    """
    return _rnn_steps(input_projection(x, w_ih, b_ih + b_hh), w_hh, h0, lengths, use_relu)


@njit(**JIT_OPTIONS)
def _rnn_steps(pre, w_hh, h0, lengths, use_relu):
    """The time loop of :func:`rnn_forward`, from the input projections ``pre``."""
    T, B, _ = pre.shape
    H = w_hh.shape[1]
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hs = np.empty((T + 1, B, H), dtype=pre.dtype)
    out = np.zeros((T, B, H), dtype=pre.dtype)
    copy_rows(hs[0], h0)
    min_len = min_length(lengths)
    for s in range(T):
        p = pre[s]
        matmul_acc(hs[s], w_hh_t, p)
        h_prev, h_next, out_s = hs[s], hs[s + 1], out[s]
        # No padding branch while every row is active (see lstm_forward).
        if s < min_len:
            for b in range(B):
                _forward_row(p[b], h_next[b], out_s[b], H, use_relu)
            continue
        for b in range(B):
            if s < lengths[b]:
                _forward_row(p[b], h_next[b], out_s[b], H, use_relu)
            else:
                hn, hp = h_next[b], h_prev[b]
                for j in range(H):
                    hn[j] = hp[j]
    return out, hs


def rnn_backward(x, w_ih, w_hh, lengths, hs, dout, dh_n, use_relu):
    """Backpropagation through time for :func:`rnn_forward`.

    Returns ``dx, dw_ih, dw_hh, db_ih, db_hh, dh0``.
    """
    dpre, dh = _rnn_backward_steps(x, w_hh, lengths, hs, dout, dh_n, use_relu)
    dw_ih, dw_hh, db = weight_grads(dpre, x, hs)
    return input_grad(dpre, w_ih), dw_ih, dw_hh, db, db.copy(), dh


@njit(**JIT_OPTIONS)
def _rnn_backward_steps(x, w_hh, lengths, hs, dout, dh_n, use_relu):
    """The time loop of :func:`rnn_backward`: every step's pre-activation gradients
    and ``dh0``."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dpre = np.empty((T, B, H), dtype=x.dtype)
    dh = dh_n.copy()
    dh_prev = np.empty((B, H), dtype=x.dtype)
    min_len = min_length(lengths)
    for s in range(T - 1, -1, -1):
        dp, h_next, dout_s = dpre[s], hs[s + 1], dout[s]
        if s < min_len:
            for b in range(B):
                _backward_row(dp[b], dh[b], dh_prev[b], h_next[b], dout_s[b], H, use_relu)
        else:
            for b in range(B):
                if s < lengths[b]:
                    _backward_row(dp[b], dh[b], dh_prev[b], h_next[b], dout_s[b], H,
                                  use_relu)
                else:
                    dp_b, dh_b, dhp = dp[b], dh[b], dh_prev[b]
                    for j in range(H):
                        dp_b[j] = 0
                        dhp[j] = dh_b[j]
        matmul_acc(dp, w_hh, dh_prev)
        dh, dh_prev = dh_prev, dh
    return dpre, dh


@njit(**JIT_OPTIONS)
def rnn_final_state(x, w_ih, w_hh, b_ih, b_hh, h0, use_relu, out):
    """Inference only: the final ``h`` of one direction of one layer over
    equal-length rows, and every step's in ``out`` when it has the time steps (see
    :func:`tsrnn.kernels.cpu.lstm.lstm_final_state`), row by row."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    write = out.shape[1] == T
    xp = input_projection_rows(x, w_ih, vector_sum(b_ih, b_hh))
    w_hh_t = np.ascontiguousarray(w_hh.T)
    h = h0.copy()
    for s in range(T):
        p = xp[s]
        rows_matmul_acc(h, w_hh_t, p)
        for b in range(B):
            p_b, h_b = p[b], h[b]
            if use_relu:
                for j in range(H):
                    h_b[j] = relu(p_b[j])
            else:
                for j in range(H):
                    h_b[j] = tanh(p_b[j])
            if write:
                copy_row(out[b, s], h_b)
    return h
