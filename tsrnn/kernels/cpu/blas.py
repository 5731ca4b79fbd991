"""``c = alpha * op(a) @ op(b) + beta * c`` from compiled kernels, through BLAS's gemm.

Why not numba's ``np.dot``:

* numba calls the OpenBLAS that scipy bundles; numpy bundles its own, usually a
  newer build, which runs the kernels' thin products (a shard of a few rows against
  a wide weight) faster;
* ``np.dot`` allocates its result, which the kernels then add into their
  accumulator; gemm with ``beta=1`` adds in place.

The kernels call the gemm by a fixed symbol name, ``tsrnn_sgemm`` / ``tsrnn_dgemm``,
with the Fortran interface and 64-bit integers (ILP64), which this module binds at
import to numpy's OpenBLAS (``scipy_sgemm_64_``). Compiled kernels refer to the name,
not to an address, so numba's disk cache stays valid from process to process. Where
numpy has no ILP64 OpenBLAS (conda's MKL numpy, macOS Accelerate, ...), or
``TSRNN_GEMM=numba`` is set, the names are bound to :func:`_fallback_gemm`'s compiled
callbacks, which compute the same product with numba's ``np.dot``.

:data:`GEMM_SOURCE` says which one is in use (the OpenBLAS library's file name, or
the fallback).
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core import cgutils, errors
from numba.extending import intrinsic

from tsrnn._config import JIT_OPTIONS

_SYMBOLS = {"float32": "tsrnn_sgemm", "float64": "tsrnn_dgemm"}
# ILP64 gemm in the OpenBLAS builds numpy ships (scipy-openblas64), then plain ILP64
_ILP64_NAMES = {"float32": ("scipy_sgemm_64_", "sgemm_64_"),
                "float64": ("scipy_dgemm_64_", "dgemm_64_")}


def _openblas_ilp64():
    """Addresses of sgemm and dgemm of a loaded ILP64 OpenBLAS (numpy's) and the
    library's file name, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        try:
            handle = ctypes.CDLL(lib.filepath)  # already loaded: the same handle
        except OSError:
            continue
        found = {}
        for dtype, names in _ILP64_NAMES.items():
            for name in names:
                if hasattr(handle, name):
                    found[dtype] = ctypes.cast(getattr(handle, name), ctypes.c_void_p).value
                    break
        if len(found) == 2:
            return found, os.path.basename(lib.filepath)
    return None


def _fallback_gemm(dtype):
    """A compiled callback with the ILP64 Fortran gemm interface, computing the
    product with numba's ``np.dot`` (the BLAS numba itself uses)."""
    f = types.float32 if dtype == "float32" else types.float64
    c_char, c_int, c_f = types.CPointer(types.uint8), types.CPointer(types.int64), \
        types.CPointer(f)
    sig = types.void(c_char, c_char, c_int, c_int, c_int, c_f, c_f, c_int, c_f, c_int,
                     c_f, c_f, c_int)

    @cfunc(sig, cache=JIT_OPTIONS["cache"])
    def gemm(transa, transb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_):
        # Column-major X (r x c, leading dimension r) is the row-major (c, r) array's
        # transpose. Every call here has leading dimension = rows (contiguous).
        m, n, k = m_[0], n_[0], k_[0]
        if m == 0 or n == 0:
            return
        ta = transa[0] == 84 or transa[0] == 116  # 'T' or 't'
        tb = transb[0] == 84 or transb[0] == 116
        ct = carray(c_, (n, m))  # C^T, row-major
        # C^T = alpha op(B)^T op(A)^T + beta C^T
        opa_t = carray(a_, (m, k)).T if ta else carray(a_, (k, m))
        opb_t = carray(b_, (n, k)) if not tb else carray(b_, (k, n)).T
        alpha, beta = alpha_[0], beta_[0]
        if k == 0:
            prod = np.zeros((n, m), ct.dtype)
        else:
            prod = np.dot(np.ascontiguousarray(opb_t), np.ascontiguousarray(opa_t))
        for i in range(n):
            for j in range(m):
                v = alpha * prod[i, j]
                ct[i, j] = v if beta == 0 else v + beta * ct[i, j]

    return gemm


def _bind() -> str:
    """Bind the kernels' gemm symbols; returns where they point."""
    found = None if os.environ.get("TSRNN_GEMM", "") == "numba" else _openblas_ilp64()
    if found is not None:
        addresses, name = found
        for dtype, address in addresses.items():
            ll.add_symbol(_SYMBOLS[dtype], address)
        return f"OpenBLAS, ILP64 ({name})"
    global _callbacks  # keep the compiled callbacks alive
    _callbacks = {dtype: _fallback_gemm(dtype) for dtype in _SYMBOLS}
    for dtype, cb in _callbacks.items():
        ll.add_symbol(_SYMBOLS[dtype], cb.address)
    return "numba's np.dot (fallback)"


_callbacks: dict = {}
#: Which gemm the kernels call: an ILP64 OpenBLAS (its file name), or the fallback.
GEMM_SOURCE = _bind()


@intrinsic
def _gemm_call(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """The Fortran gemm call itself: scalars are passed by address (stack slots);
    ``alpha`` and ``beta`` come as float64 and are cast to the arrays' dtype."""
    for name, arr in (("a", a), ("b", b), ("c", c)):
        if not isinstance(arr, types.Array) or arr.layout != "C" or arr.ndim != 2:
            raise errors.TypingError(f"gemm: {name} must be a C-contiguous 2-D array, "
                                     f"got {arr}")
    if not (a.dtype == b.dtype == c.dtype) or str(c.dtype) not in _SYMBOLS:
        raise errors.TypingError("gemm: a, b and c must all be float32 or all float64")
    dtype = c.dtype
    sig = types.void(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        ll_char = ir.IntType(8)
        ll_int = ir.IntType(64)
        ll_f = context.get_value_type(dtype)
        ptr = cgutils.voidptr_t
        fnty = ir.FunctionType(ir.VoidType(), [ptr] * 13)
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[str(dtype)])
        tra, trb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args

        def slot(ty, value):
            p = cgutils.alloca_once(builder, ty)
            builder.store(value, p)
            return builder.bitcast(p, ptr)

        def data(arr_ty, arr):
            return builder.bitcast(context.make_array(arr_ty)(context, builder, arr).data,
                                   ptr)

        tys = signature.args
        alpha_f = context.cast(builder, alpha_, tys[5], dtype)
        beta_f = context.cast(builder, beta_, tys[10], dtype)
        builder.call(fn, [
            slot(ll_char, builder.trunc(tra, ll_char)),
            slot(ll_char, builder.trunc(trb, ll_char)),
            slot(ll_int, m_), slot(ll_int, n_), slot(ll_int, k_),
            slot(ll_f, alpha_f), data(tys[6], a_), slot(ll_int, lda_),
            data(tys[8], b_), slot(ll_int, ldb_), slot(ll_f, beta_f),
            data(tys[11], c_), slot(ll_int, ldc_),
        ])
        return context.get_dummy_value()

    return sig, codegen


#: gemm's transpose flags for compiled callers: numpy bools, because numba compiles a
#: separate copy of a function for every combination of literal ``True``/``False``
#: arguments, each compiled anew in a first fit.
TRANS = np.bool_(True)
NO_TRANS = np.bool_(False)


# Not inlined: one compiled copy called from every product site, so a first fit
# compiles it once (inlined, it would be compiled into every caller, and runs no
# faster). No default arguments either: numba compiles a separate copy for every
# combination of omitted ones, so every caller passes all six (flags as TRANS /
# NO_TRANS).
@njit(**JIT_OPTIONS)
def gemm(a, b, c, trans_a, trans_b, beta):
    """``c = op(a) @ op(b) + beta * c`` for C-contiguous 2-D arrays of one dtype, where
    ``op(x)`` is ``x.T`` when ``trans_x`` (bools; ``beta`` a float). ``beta=1``
    accumulates into ``c``; ``beta=0`` overwrites it (its old values, even NaN, are
    not read)."""
    m = a.shape[1] if trans_a else a.shape[0]
    k = a.shape[0] if trans_a else a.shape[1]
    n = b.shape[0] if trans_b else b.shape[1]
    if (b.shape[1] if trans_b else b.shape[0]) != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError("gemm: the arrays' shapes do not match")
    if m == 0 or n == 0:
        return
    if k == 0:
        if beta != 1.0:
            for i in range(m):
                for j in range(n):
                    c[i, j] = c[i, j] * beta if beta != 0.0 else 0.0
        return
    # Row-major c = op(a) op(b) is column-major c^T = op(b)^T op(a)^T.
    _gemm_call(np.int64(84 if trans_b else 78), np.int64(84 if trans_a else 78),
               np.int64(n), np.int64(m), np.int64(k), 1.0,
               b, np.int64(max(1, b.shape[1])), a, np.int64(max(1, a.shape[1])),
               np.float64(beta), c, np.int64(max(1, n)))
