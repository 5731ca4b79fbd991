"""Small linear-algebra helpers used inside the compiled time loops."""

import numpy as np
from numba import njit

from tsrnn._config import BLAS_MIN_FLOPS, JIT_OPTIONS
from tsrnn.kernels.cpu.blas import NO_TRANS, TRANS, gemm


@njit(**JIT_OPTIONS)
def matmul_acc(a, w, out):
    """``out += a @ w`` for C-contiguous ``a`` (m, k), ``w`` (k, n), ``out`` (m, n).

    Products with a thin inner dimension (``k < 16``: a decoder head's few outputs,
    a few input features) or tiny ones (``BLAS_MIN_FLOPS``) are done in axpy order,
    ``out[i, :] += a[i, p] * w[p, :]``, which LLVM vectorizes without reassociating
    sums; the others go to BLAS's gemm, accumulating in place.
    """
    m, k = a.shape
    n = w.shape[1]
    # BLAS is slow for a thin inner dimension (an outer product, k=1 for a univariate
    # input projection) and its call overhead dominates small products.
    if m == 1:  # one row (batch-1 inference): a loop beats a BLAS call at these sizes
        vecmat_acc(a[0], w, out[0])
        return
    if k >= 16 and m * k * n >= BLAS_MIN_FLOPS:
        gemm(a, w, out, NO_TRANS, NO_TRANS, 1.0)  # accumulates in place
        return
    k4 = k - k % 4
    for i in range(m):
        a_i = a[i]
        out_i = out[i]
        zero_row = True  # padding rows are all zero: skip them (NaN != 0 is not skipped)
        for p in range(k):
            if a_i[p] != 0:
                zero_row = False
                break
        if zero_row:
            continue
        # Four rows of w per pass over out_i: a quarter of the loads and stores of
        # out_i that a one-row axpy needs. Not vecmat_acc's eight rows: at small
        # hidden sizes the longer unrolled body costs more than it saves.
        for p in range(0, k4, 4):
            a0, a1, a2, a3 = a_i[p], a_i[p + 1], a_i[p + 2], a_i[p + 3]
            w0, w1, w2, w3 = w[p], w[p + 1], w[p + 2], w[p + 3]
            for j in range(n):
                out_i[j] += (a0 * w0[j] + a1 * w1[j]) + (a2 * w2[j] + a3 * w3[j])
        for p in range(k4, k):
            aip = a_i[p]
            w_p = w[p]
            for j in range(n):
                out_i[j] += aip * w_p[j]


@njit(inline="always", **JIT_OPTIONS)
def wide_product_transposed(rows, inner):
    """Whether :func:`matmul_acc_t` beats :func:`matmul_acc` for a step's product of
    ``rows`` rows against an LSTM weight, (inner, 4 * inner) forward and
    (4 * inner, inner) backward. With numpy's OpenBLAS (:mod:`.blas`) the plain
    order is faster up to hidden 128, and the transposed one only for 16-32 rows
    against hidden 256 or more."""
    return 16 <= rows <= 32 and inner >= 256


@njit(inline="always", **JIT_OPTIONS)
def matmul_acc_t(a, w_t, out):
    """``out += a @ w`` computed as ``(w_t @ a.T).T``, with ``w_t`` the C-contiguous
    transpose of ``w``: the same sums, in the
    operand order that OpenBLAS runs faster for a few rows against a wide weight
    (see :func:`wide_product_transposed`)."""
    prod = np.empty((w_t.shape[0], a.shape[0]), dtype=out.dtype)  # (n, m)
    gemm(w_t, a, prod, NO_TRANS, TRANS, 0.0)
    for i in range(out.shape[0]):
        out_i = out[i]
        for j in range(out.shape[1]):
            out_i[j] += prod[j, i]


@njit(inline="always", **JIT_OPTIONS)
def step_product(a, w, w_t, out, transposed):
    """``out += a @ w`` for one time step, in the operand order chosen once per call by
    :func:`wide_product_transposed`: ``w_t`` is ``w``'s C-contiguous transpose (the
    kernels hold both)."""
    if transposed:
        matmul_acc_t(a, w_t, out)
    else:
        matmul_acc(a, w, out)


@njit(inline="always", **JIT_OPTIONS)
def gate_views(row, H):
    """The four blocks of width ``H`` of a gate row, as views. Loops index the views
    with ``j`` rather than the row with ``k * H + j``: numba cannot prove
    ``k * H + j >= 0``, keeps its negative-index wraparound select in the address,
    and LLVM then leaves the loop scalar."""
    return row[:H], row[H : 2 * H], row[2 * H : 3 * H], row[3 * H : 4 * H]


@njit(inline="always", **JIT_OPTIONS)
def fill_rows(a, v):
    """``a[r] = v`` for every row of a 2-D array, as plain loops (numba's row
    assignment goes through a generic, much slower copy)."""
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(a.shape[1]):
            row[j] = v[j]


@njit(inline="always", **JIT_OPTIONS)
def copy_rows(dst, src):
    """``dst[...] = src`` for 2-D arrays of one shape, as plain loops. Cold start:
    numba compiles an array-to-slice assignment with a formatted shape error
    (f-strings, ``str.join``), 4-5 s of compilation on the first fit with an empty
    cache; a constant message costs nothing to compile."""
    if dst.shape[0] != src.shape[0] or dst.shape[1] != src.shape[1]:
        raise ValueError("copy_rows: the arrays' shapes differ")
    for r in range(dst.shape[0]):
        d = dst[r]
        s = src[r]
        for j in range(dst.shape[1]):
            d[j] = s[j]


@njit(inline="always", **JIT_OPTIONS)
def vector_sum(a, b):
    """``a + b`` for 1-D arrays of one length, as a plain loop (an array expression
    compiles numba's ufunc machinery)."""
    out = np.empty(a.shape[0], dtype=a.dtype)
    for j in range(a.shape[0]):
        out[j] = a[j] + b[j]
    return out


@njit(inline="always", **JIT_OPTIONS)
def copy_row(dst, src):
    """``dst[:] = src`` for 1-D arrays of one length, as a plain loop (see
    :func:`copy_rows`)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(inline="always", **JIT_OPTIONS)
def min_length(lengths):
    """``lengths.min()`` as a loop (numba's ``min`` compiled for 0.7 s on a cold
    start, for one line)."""
    if lengths.shape[0] == 0:  # an empty batch has nothing to run
        return 0
    m = lengths[0]
    for b in range(1, lengths.shape[0]):
        if lengths[b] < m:
            m = lengths[b]
    return m


@njit(inline="always", **JIT_OPTIONS)
def rows_matmul_acc(a, w, out):
    """``out += a @ w`` one row at a time (:func:`vecmat_acc`): each row's result
    depends on that row alone, never on how many rows there are. Inference uses it,
    so that a forecast does not change with the other series in its batch."""
    for i in range(a.shape[0]):
        vecmat_acc(a[i], w, out[i])


@njit(**JIT_OPTIONS)
def rows_affine(a, w, bias):
    """``a @ w.T + bias`` one row at a time (see :func:`rows_matmul_acc`), for the
    heads at inference: ``a`` (m, k), ``w`` (n, k) as ``nn.Linear`` keeps it. A
    plain axpy loop, not :func:`vecmat_acc`'s unrolled one: it compiles in half the
    time (a cold ``predict`` compiles it), and the heads' products are small (10,000
    rows of a hidden-64 decoder layer: 1.7 ms against 0.8 ms)."""
    w_t = np.ascontiguousarray(w.T)
    out = np.empty((a.shape[0], w.shape[0]), dtype=a.dtype)
    fill_rows(out, bias)  # not out[i] = bias: see copy_rows
    for i in range(a.shape[0]):
        a_i, out_i = a[i], out[i]
        for p in range(a.shape[1]):
            ap = a_i[p]
            w_p = w_t[p]
            for j in range(w_t.shape[1]):
                out_i[j] += ap * w_p[j]
    return out


@njit(inline="always", **JIT_OPTIONS)
def vecmat_acc(a, w, out):
    """``out += a @ w`` for one row ``a`` (k,), ``w`` (k, n): eight rows of ``w`` per
    pass over ``out`` (fewer passes than four rows; with more rows per pass LLVM
    runs out of registers). Inlined into its callers: a call per step would cost as
    much as the unrolling gains."""
    k = a.shape[0]
    n = w.shape[1]
    k8 = k - k % 8
    for p in range(0, k8, 8):
        a0, a1, a2, a3 = a[p], a[p + 1], a[p + 2], a[p + 3]
        a4, a5, a6, a7 = a[p + 4], a[p + 5], a[p + 6], a[p + 7]
        w0, w1, w2, w3 = w[p], w[p + 1], w[p + 2], w[p + 3]
        w4, w5, w6, w7 = w[p + 4], w[p + 5], w[p + 6], w[p + 7]
        for j in range(n):
            out[j] += ((a0 * w0[j] + a1 * w1[j]) + (a2 * w2[j] + a3 * w3[j])) + (
                (a4 * w4[j] + a5 * w5[j]) + (a6 * w6[j] + a7 * w7[j])
            )
    for p in range(k8, k):
        ap = a[p]
        w_p = w[p]
        for j in range(n):
            out[j] += ap * w_p[j]


@njit(**JIT_OPTIONS)
def input_projection(x, w_ih, bias):
    """``x @ w_ih.T + bias`` for every step at once: (time, batch, gates) from
    (time, batch, features). One large product instead of one per step; for few
    features (a univariate series has one) a fused loop that writes each row once,
    instead of filling the rows with the bias and then adding a product over them."""
    T, B, F = x.shape
    G = w_ih.shape[0]
    xp = np.empty((T, B, G), dtype=x.dtype)
    x2 = x.reshape(T * B, F)
    xp2 = xp.reshape(T * B, G)
    if F >= 16 and T * B * F * G >= BLAS_MIN_FLOPS:
        gemm(x2, w_ih, xp2, NO_TRANS, TRANS, 0.0)
        for r in range(T * B):
            row = xp2[r]
            for j in range(G):
                row[j] += bias[j]
        return xp
    return _projection_rows(x2, w_ih, bias, xp)


@njit(inline="always", **JIT_OPTIONS)
def input_projection_rows(x, w_ih, bias):
    """:func:`input_projection` row by row whatever the shapes: each row's result
    depends on that row alone, never on how many rows there are (inference)."""
    T, B, F = x.shape
    xp = np.empty((T, B, w_ih.shape[0]), dtype=x.dtype)
    _projection_rows(x.reshape(T * B, F), w_ih, bias, xp)
    return xp


@njit(inline="always", **JIT_OPTIONS)
def _projection_rows(x2, w_ih, bias, xp):
    """``x2 @ w_ih.T + bias`` into ``xp`` (time, batch, gates), one fused pass per
    row."""
    F = x2.shape[1]
    G = w_ih.shape[0]
    xp2 = xp.reshape(x2.shape[0], G)
    w_t = np.ascontiguousarray(w_ih.T)
    w_0 = w_t[0]
    for r in range(x2.shape[0]):
        row = xp2[r]
        x_r = x2[r]
        x0 = x_r[0]
        for j in range(G):
            row[j] = bias[j] + x0 * w_0[j]
        for p in range(1, F):
            xv = x_r[p]
            w_p = w_t[p]
            for j in range(G):
                row[j] += xv * w_p[j]
    return xp


@njit(**JIT_OPTIONS)
def sum_outer(d, a):
    """``sum_t d[t]^T a[t]``: (gates, k) from (time, batch, gates) and
    (time, batch, k) (padding rows of ``d`` are zero).

    Either one product per step into a (k, gates) accumulator, or one product over
    all steps; which is faster depends on the shapes:

    * k = 1 (a univariate input): one product, a matrix-vector product.
    * 2 <= k < 16 (a few input features): per step. One product over all steps,
      (gates x time*batch) @ (time*batch x k), has a thin output that OpenBLAS
      handles badly once time x batch x gates is large.
    * k >= 16 (the recurrent weights): per step while the step has at least 32 rows
      and the accumulator is small (up to 16384 elements, hidden 64 for an LSTM), so
      that it stays in cache between steps. Otherwise one product: with few rows a
      step's product is too thin, and a large accumulator (a hidden-128 LSTM's
      256 KB) leaves the cache between steps.
    """
    T, B, G = d.shape
    K = a.shape[2]
    if K > 1 and (K < 16 or (B >= 32 and K * G <= 16384)):
        acc = np.zeros((K, G), dtype=d.dtype)
        for s in range(T):
            gemm(a[s], d[s], acc, TRANS, NO_TRANS, 1.0)
        return np.ascontiguousarray(acc.T)
    out = np.empty((G, K), dtype=d.dtype)
    gemm(d.reshape(T * B, G), a[:T].reshape(T * B, K), out, TRANS, NO_TRANS, 0.0)
    return out


@njit(inline="always", **JIT_OPTIONS)
def streams_weight_grads(T, B, G, itemsize):
    """Whether a backward kernel adds each step's share of the weight gradients inside
    its time loop (:func:`accumulate_outer`), rather than in one product over the
    stored gate gradients of every step after it (:func:`weight_grads`).

    Per step wins once those stored gradients, (T, B, G) floats, outgrow the core's
    L2 cache (2 MB), so that the one product after the loop would read them back
    from memory. Below that, or with fewer than 32 rows (BLAS is slow with so short
    an inner dimension), the product after the loop is as fast or faster. The RNN
    never streams: its gradients are a quarter of an LSTM's."""
    return B >= 32 and T * B * G * itemsize >= (2 << 20)


@njit(**JIT_OPTIONS)
def accumulate_outer(dg, a, acc_t):
    """``acc_t += a.T @ dg`` for one step: ``a`` (batch, k), ``dg`` (batch, gates),
    ``acc_t`` (k, gates), the transpose of a weight gradient.

    The backward kernels call it inside their time loop, while the step's gate
    gradients are still in cache, instead of one product over every step's after the
    loop, which would re-read (time, batch, gates) arrays of several MB from
    memory. A few input features (k < 16) go through an axpy loop (BLAS handles the
    thin output badly), four rows of ``dg`` per pass over ``acc_t``'s row: a
    quarter of its loads and stores, and four independent products per store."""
    B, K = a.shape
    G = dg.shape[1]
    if K >= 16:
        gemm(a, dg, acc_t, TRANS, NO_TRANS, 1.0)
        return
    B4 = B - B % 4
    for f in range(K):
        row = acc_t[f]
        for b in range(0, B4, 4):
            a0, a1, a2, a3 = a[b, f], a[b + 1, f], a[b + 2, f], a[b + 3, f]
            d0, d1, d2, d3 = dg[b], dg[b + 1], dg[b + 2], dg[b + 3]
            for j in range(G):
                row[j] += (a0 * d0[j] + a1 * d1[j]) + (a2 * d2[j] + a3 * d3[j])
        for b in range(B4, B):
            ab = a[b, f]
            d = dg[b]
            for j in range(G):
                row[j] += ab * d[j]


@njit(**JIT_OPTIONS)
def accumulate_col_sum(dg, db):
    """``db += dg.sum(axis=0)`` for one step's (batch, gates), row by row so that the
    inner loop vectorizes."""
    for b in range(dg.shape[0]):
        row = dg[b]
        for j in range(dg.shape[1]):
            db[j] += row[j]


@njit(inline="always", **JIT_OPTIONS)
def streamed_grad_buffers(x, H, G, stream):
    """The accumulators a backward kernel streams into (:func:`streams_weight_grads`),
    zeroed: ``dw_ih_t`` (features, G) and ``dw_hh_t`` (H, G), the transposed weight
    gradients, ``db`` (G,) and ``dx`` (like ``x``); empty when not ``stream``."""
    T, B, F = x.shape
    n = 1 if stream else 0
    return (np.zeros((F * n, G), dtype=x.dtype), np.zeros((H * n, G), dtype=x.dtype),
            np.zeros(G * n, dtype=x.dtype), np.zeros((T * n, B, F), dtype=x.dtype))


@njit(inline="always", **JIT_OPTIONS)
def accumulate_step_grads(dg_in, dg_hh, x_s, h_prev, w_ih, dw_ih_t, dw_hh_t, db_in,
                          dx_s):
    """One step's share of a layer's gradients, added while the step's gate gradients
    are in cache: input weights, input bias and ``dx_s`` from ``dg_in``, recurrent
    weights from ``dg_hh`` against the state before the step. LSTM and RNN pass one
    array for both; the GRU's differ in the n block, and it sums its hidden bias
    itself."""
    accumulate_outer(dg_in, x_s, dw_ih_t)
    accumulate_outer(dg_hh, h_prev, dw_hh_t)
    accumulate_col_sum(dg_in, db_in)
    matmul_acc(dg_in, w_ih, dx_s)


def weight_grads(dpre, inp, hs):
    """``dW_ih``, ``dW_hh`` (against the states before each step, ``hs[:T]``) and
    ``db = sum(dpre)`` from the pre-activation gradients of every step. Called from
    Python, as :func:`input_grad` (see :mod:`tsrnn.kernels.cpu`)."""
    return sum_outer(dpre, inp), sum_outer(dpre, hs), col_sum(dpre)


@njit(**JIT_OPTIONS)
def col_sum(d):
    """Sum of (time, batch, gates) over time and batch, in row order so that the inner
    loop vectorizes (numba's ``sum(axis=0)`` does not)."""
    T, B, G = d.shape
    d2 = d.reshape(T * B, G)
    out = np.zeros(G, dtype=d.dtype)
    for r in range(T * B):
        row = d2[r]
        for j in range(G):
            out[j] += row[j]
    return out


@njit(**JIT_OPTIONS)
def sum_squares(a):
    """Sum of squares of a 1-D array, accumulated in float64 without a float64 copy
    (the global-norm clip reads every gradient once per training step).

    Eight independent partial sums: one running sum is a chain of dependent adds that
    LLVM may not reorder (no fastmath), 1 ns per element."""
    n = a.size
    n8 = n - n % 8
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for i in range(0, n8, 8):
        v0, v1 = np.float64(a[i]), np.float64(a[i + 1])
        v2, v3 = np.float64(a[i + 2]), np.float64(a[i + 3])
        v4, v5 = np.float64(a[i + 4]), np.float64(a[i + 5])
        v6, v7 = np.float64(a[i + 6]), np.float64(a[i + 7])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
        s4 += v4 * v4
        s5 += v5 * v5
        s6 += v6 * v6
        s7 += v7 * v7
    for i in range(n8, n):
        s0 += np.float64(a[i]) * np.float64(a[i])
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


def input_grad(dpre, w_ih):
    """``dx = dpre @ w_ih``: (time, batch, features), from C-contiguous ``dpre``."""
    T, B, G = dpre.shape
    dx = np.zeros((T * B, w_ih.shape[1]), dtype=dpre.dtype)
    matmul_acc(dpre.reshape(T * B, G), w_ih, dx)
    return dx.reshape(T, B, -1)


@njit(**JIT_OPTIONS)
def reverse_padded(a, lengths):
    """Reverse each sequence of a time-major (time, batch, features) array within its
    own length.

    ``out[s, b] = a[lengths[b] - 1 - s, b]`` for ``s < lengths[b]``; padding steps
    (``s >= lengths[b]``) are copied unchanged. The map is its own inverse, so it
    turns a reverse direction into a forward one and back.
    """
    T, B = a.shape[0], a.shape[1]
    out = np.empty_like(a)
    for s in range(T):
        for b in range(B):
            L = lengths[b]
            t = L - 1 - s if s < L else s
            dst, src = out[s, b], a[t, b]
            for j in range(a.shape[2]):  # not out[s, b] = a[t, b]: see copy_rows
                dst[j] = src[j]
    return out


@njit(**JIT_OPTIONS)
def add_bias_relu(a, b):
    """``a = max(a + b, 0)`` in place over the rows of ``a`` (m, d), ``b`` (d,): the
    decoder head's hidden layer, one pass instead of numpy's two. NaN stays NaN (as
    in ``np.maximum``), so that a NaN input can never become a finite forecast."""
    m, d = a.shape
    for i in range(m):
        for j in range(d):
            v = a[i, j] + b[j]
            a[i, j] = 0 if v <= 0 else v
    return a


@njit(**JIT_OPTIONS)
def relu_backward(dy, w, r):
    """``(dy @ w) * (r > 0)``: the gradient at the input of a ReLU layer ``r`` (m, d)
    followed by a linear map ``w`` (P, d) with few outputs P, given the gradient
    ``dy`` (m, P) of those outputs. The product is :func:`matmul_acc`'s hand loop
    (BLAS is slow with so short an inner dimension)."""
    m, d = r.shape
    out = np.zeros((m, d), dy.dtype)
    matmul_acc(dy, w, out)
    for i in range(m):
        out_i = out[i]
        r_i = r[i]
        for j in range(d):
            if r_i[j] <= 0:
                out_i[j] = 0
    return out
