"""Small linear-algebra helpers used inside the compiled time loops."""

import numpy as np
from numba import njit

from tsrnn._config import BLAS_MIN_FLOPS


@njit(cache=True, nogil=True)
def matmul_acc(a, w, out):
    """``out += a @ w`` for C-contiguous ``a`` (m, k), ``w`` (k, n), ``out`` (m, n).

    Small products (the common case: a batch of 32 rows and a hidden size of 16-64)
    are done in axpy order, ``out[i, :] += a[i, p] * w[p, :]``, which LLVM vectorizes
    without reassociating sums; large ones go to BLAS, whose call overhead is then
    negligible.
    """
    m, k = a.shape
    n = w.shape[1]
    if m * k * n >= BLAS_MIN_FLOPS:
        out += np.dot(a, w)
        return
    for i in range(m):
        for p in range(k):
            aip = a[i, p]
            if aip != 0:  # zero rows are common (padding); NaN != 0, so NaN propagates
                for j in range(n):
                    out[i, j] += aip * w[p, j]


@njit(cache=True, nogil=True)
def reverse_padded(a, lengths):
    """Reverse each sequence of a time-major array within its own length.

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
            out[s, b] = a[t, b]
    return out
