"""GRU, PyTorch's math and layout: gates r, z, n stacked in ``w_ih`` (3H, F) and
``w_hh`` (3H, H); the reset gate multiplies ``W_hn h + b_hn`` (not ``h``):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
"""

import numpy as np
from numba import njit

from tsrnn._config import JIT_OPTIONS
from tsrnn.kernels.activations import sigmoid, tanh
from tsrnn.kernels.cpu.linalg import (
    accumulate_col_sum,
    accumulate_step_grads,
    col_sum,
    copy_row,
    copy_rows,
    fill_rows,
    gate_views,
    input_grad,
    input_projection,
    input_projection_rows,
    matmul_acc,
    min_length,
    rows_matmul_acc,
    streamed_grad_buffers,
    streams_weight_grads,
    sum_outer,
)


@njit(inline="always", **JIT_OPTIONS)
def _forward_row(g_b, ph_b, hn_b, hp, hx, o_b, H):
    """One active row of a forward step: r, z, n in place, ``W_hn h + b_hn`` kept,
    the new state."""
    for j in range(2 * H):
        g_b[j] = sigmoid(g_b[j] + ph_b[j])
    gr, gz, gn, _ = gate_views(g_b, H)
    phn = gate_views(ph_b, H)[2]
    # n, then h, in two loops with fewer arrays each: they vectorize better than one.
    for j in range(H):
        v = phn[j]
        hn_b[j] = v
        gn[j] = tanh(gn[j] + gr[j] * v)
    for j in range(H):
        z = gz[j]
        h = (1 - z) * gn[j] + z * hp[j]
        hx[j] = h
        o_b[j] = h


@njit(inline="always", **JIT_OPTIONS)
def _backward_row(g_b, hn_b, hp, do_b, di_b, dhh_b, dh_b, dp_b, H):
    """One active row of a backward step: input-side and hidden-side gate gradients
    and the state gradient carried past the recurrent product."""
    gr, gz, gn, _ = gate_views(g_b, H)
    di_r, di_z, di_n, _ = gate_views(di_b, H)
    dh_r, dh_z, dh_n, _ = gate_views(dhh_b, H)
    # Two loops with fewer arrays each: one with all eleven was left scalar.
    for j in range(H):
        dhj = dh_b[j] + do_b[j]
        r = gr[j]
        z = gz[j]
        n = gn[j]
        dn = dhj * (1 - z) * (1 - n * n)
        di_r[j] = dn * hn_b[j] * r * (1 - r)
        di_z[j] = dhj * (hp[j] - n) * z * (1 - z)
        di_n[j] = dn
        dp_b[j] = dhj * z
    for j in range(H):
        dh_r[j] = di_r[j]
        dh_z[j] = di_z[j]
        dh_n[j] = di_n[j] * gr[j]


@njit(**JIT_OPTIONS)
def _forward_rows(gs, ph, hn, h_prev, h_next, out_s, lengths, s, all_active):
    """A forward step's rows. Rows that have ended (``s >= lengths[b]``) carry their
    state through unchanged, with zero gates and ``hn``; while ``all_active`` the
    loop has no such branch. Compiled on its own, not inlined into the kernel's time
    loop (see :mod:`tsrnn.kernels.cpu`)."""
    H = hn.shape[1]
    if all_active:
        for b in range(gs.shape[0]):
            _forward_row(gs[b], ph[b], hn[b], h_prev[b], h_next[b], out_s[b], H)
        return
    for b in range(gs.shape[0]):
        if s < lengths[b]:
            _forward_row(gs[b], ph[b], hn[b], h_prev[b], h_next[b], out_s[b], H)
            continue
        g_b, hn_b, hp, hx = gs[b], hn[b], h_prev[b], h_next[b]
        for j in range(3 * H):
            g_b[j] = 0
        for j in range(H):
            hn_b[j] = 0
            hx[j] = hp[j]


@njit(**JIT_OPTIONS)
def _backward_rows(gs, hn, h_prev, dout_s, di, dhh, dh, dh_prev, lengths, s,
                   all_active):
    """A backward step's rows (see :func:`_forward_rows`). Ended rows have zero gate
    gradients and pass their state gradient through."""
    H = dh.shape[1]
    if all_active:
        for b in range(gs.shape[0]):
            _backward_row(gs[b], hn[b], h_prev[b], dout_s[b], di[b], dhh[b], dh[b],
                          dh_prev[b], H)
        return
    for b in range(gs.shape[0]):
        if s < lengths[b]:
            _backward_row(gs[b], hn[b], h_prev[b], dout_s[b], di[b], dhh[b], dh[b],
                          dh_prev[b], H)
            continue
        di_b, dhh_b, dh_b, dp_b = di[b], dhh[b], dh[b], dh_prev[b]
        for j in range(3 * H):
            di_b[j] = 0
            dhh_b[j] = 0
        for j in range(H):
            dp_b[j] = dh_b[j]


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep):
    """One direction of one GRU layer over all steps.

    Returns ``out`` (time, batch, hidden), zero past each row's length; ``hs``
    (time + 1, batch, hidden); ``gates`` (time, batch, 3 * hidden), the activated
    r, z, n; and ``hn`` (time or 1, batch, hidden), ``W_hn h + b_hn``.
    """
    # Input-side pre-activations for every step; overwritten in place by r, z, n.
    return _gru_steps(input_projection(x, w_ih, b_ih), w_hh, b_hh, h0, lengths, keep)


@njit(**JIT_OPTIONS)
def _gru_steps(gates, w_hh, b_hh, h0, lengths, keep):
    """The time loop of :func:`gru_forward`, from the input projections ``gates``."""
    T, B, _ = gates.shape
    H = w_hh.shape[1]
    G = 3 * H
    dt = gates.dtype
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hn_all = np.empty((T if keep else 1, B, H), dtype=dt)
    hs = np.empty((T + 1, B, H), dtype=dt)
    out = np.zeros((T, B, H), dtype=dt)
    copy_rows(hs[0], h0)
    ph = np.empty((B, G), dtype=dt)
    min_len = min_length(lengths)
    for s in range(T):
        fill_rows(ph, b_hh)
        matmul_acc(hs[s], w_hh_t, ph)
        _forward_rows(gates[s], ph, hn_all[s if keep else 0], hs[s], hs[s + 1], out[s],
                      lengths, s, s < min_len)
    return out, hs, gates, hn_all


def gru_backward(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n):
    """Backpropagation through time for :func:`gru_forward` (``keep=True``).

    Returns ``dx, dw_ih, dw_hh, db_ih, db_hh, dh0``. The input-side and hidden-side
    gate gradients differ only in the n block (``dn`` vs ``dn * r``), so both are
    made. Large batches add each step's share of the weight gradients and ``dx`` in
    the time loop and keep one step of gate gradients; others keep every step's and
    take one product each after the loop (:func:`streams_weight_grads`).
    """
    stream, dx, dw_ih_t, dw_hh_t, db_ih, db_hh, dgi, dgh, dh = _gru_backward_steps(
        x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n)
    if stream:
        return (dx, np.ascontiguousarray(dw_ih_t.T), np.ascontiguousarray(dw_hh_t.T),
                db_ih, db_hh, dh)
    return (input_grad(dgi, w_ih), sum_outer(dgi, x), sum_outer(dgh, hs), col_sum(dgi),
            col_sum(dgh), dh)


@njit(**JIT_OPTIONS)
def _gru_backward_steps(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n):
    """The time loop of :func:`gru_backward`: ``(stream, dx, dw_ih_t, dw_hh_t, db_ih,
    db_hh, dgi, dgh, dh0)``, with the streamed gradients when ``stream``, else the
    input- and hidden-side gate gradients of every step."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    dt = x.dtype
    stream = streams_weight_grads(T, B, G, x.itemsize)
    dgi = np.empty((1 if stream else T, B, G), dtype=dt)
    dgh = np.empty((1 if stream else T, B, G), dtype=dt)
    dw_ih_t, dw_hh_t, db_ih, dx = streamed_grad_buffers(x, H, G, stream)
    db_hh = np.zeros_like(db_ih)
    dh = dh_n.copy()
    dh_prev = np.empty((B, H), dtype=dt)
    min_len = min_length(lengths)
    for s in range(T - 1, -1, -1):
        h_prev = hs[s]
        di, dhh = dgi[0 if stream else s], dgh[0 if stream else s]
        _backward_rows(gates[s], hn_all[s], h_prev, dout[s], di, dhh, dh, dh_prev, lengths,
                       s, s < min_len)
        matmul_acc(dhh, w_hh, dh_prev)
        if stream:
            accumulate_step_grads(di, dhh, x[s], h_prev, w_ih, dw_ih_t, dw_hh_t, db_ih,
                                  dx[s])
            accumulate_col_sum(dhh, db_hh)
        dh, dh_prev = dh_prev, dh
    return stream, dx, dw_ih_t, dw_hh_t, db_ih, db_hh, dgi, dgh, dh


@njit(**JIT_OPTIONS)
def gru_final_state(x, w_ih, w_hh, b_ih, b_hh, h0, out):
    """Inference only: the final ``h`` of one direction of one layer over
    equal-length rows, and every step's in ``out`` when it has the time steps (see
    :func:`tsrnn.kernels.cpu.lstm.lstm_final_state`), row by row."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    write = out.shape[1] == T
    G = 3 * H
    xp = input_projection_rows(x, w_ih, b_ih)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    h = h0.copy()
    ph = np.empty((B, G), dtype=x.dtype)
    for s in range(T):
        fill_rows(ph, b_hh)
        rows_matmul_acc(h, w_hh_t, ph)
        g = xp[s]
        for b in range(B):
            g_b, ph_b, h_b = g[b], ph[b], h[b]
            for j in range(2 * H):
                g_b[j] = sigmoid(g_b[j] + ph_b[j])
            gr, gz, gn, _ = gate_views(g_b, H)
            phn = gate_views(ph_b, H)[2]
            for j in range(H):
                n = tanh(gn[j] + gr[j] * phn[j])
                z = gz[j]
                h_b[j] = (1 - z) * n + z * h_b[j]
            if write:
                copy_row(out[b, s], h_b)
    return h
