"""Every tunable constant of tsrnn, in one place. Importing this module reads the
environment and changes nothing else.

Environment variables (read once at import):

``TSRNN_BLAS_MIN_FLOPS``
    Below this many multiply-adds a per-step matrix product is done by a hand-written
    loop inside the kernel; above it, by BLAS. Small products are dominated by the
    BLAS call overhead (about a microsecond), large ones by arithmetic. Since the
    kernels call gemm directly, accumulating in place (:mod:`tsrnn.kernels.cpu.blas`),
    BLAS wins from about 4096. The value is compiled into the kernels as a constant and numba's
    disk cache does not see it change: set ``NUMBA_CACHE_DIR`` to a fresh folder
    along with it.
``TSRNN_SHARD_MIN_WORK``
    Smallest shard of a batch split over threads, in rows x gate units (see
    :mod:`tsrnn.parallel`; ``TSRNN_NUM_THREADS`` sets the thread count).
``TSRNN_GEMM``
    ``numba`` makes the kernels' gemm call numba's ``np.dot`` instead of the ILP64
    OpenBLAS numpy ships (see :mod:`tsrnn.kernels.cpu.blas`, which reads it); the
    fallback where no such OpenBLAS is loaded.
``TSRNN_CUDA_THREADS``
    Threads per block of the CUDA kernels; the matrix products' tiles are its square
    root, at most 16 (tests patch this small so that tiny inputs run on several
    blocks and tiles).
``TSRNN_CUDA_TILE_ROWS``
    Most batch rows one block of the CUDA recurrent kernels steps through time
    (see :mod:`tsrnn.kernels.cuda.tiles`).
``TSRNN_COMPILE_HELPER``
    ``0`` keeps a first fit with an empty kernel cache from compiling its backward
    and inference kernels in a helper process (see :mod:`tsrnn.compile_helper`,
    which reads it).
``TSRNN_KEEP_FREED_MEMORY``
    ``0`` leaves glibc's allocator as it is (see :func:`keep_freed_memory`).
"""

import os

BLAS_MIN_FLOPS = int(os.environ.get("TSRNN_BLAS_MIN_FLOPS", "4096"))
CUDA_THREADS_PER_BLOCK = int(os.environ.get("TSRNN_CUDA_THREADS", "256"))
CUDA_TILE_ROWS = int(os.environ.get("TSRNN_CUDA_TILE_ROWS", "8"))
#: Blocks a CUDA launch aims for: twice the 132 multiprocessors of an H100/H200, so
#: that small batches still spread over the chip (fewer rows per block, products
#: split over their long axis).
CUDA_TARGET_BLOCKS = 264
#: Shared memory a CUDA block may use without the driver's opt-in (48 KiB).
CUDA_SHARED_BYTES = 48 * 1024
#: A batch is split over threads (see :mod:`tsrnn.parallel`) only into shards of at
#: least this much work: rows x (gates x hidden x directions + ``ROW_WORK``).
SHARD_MIN_WORK = int(os.environ.get("TSRNN_SHARD_MIN_WORK", "4096"))



def _probe():  # a function of this package, to ask numba whether it can cache here
    return 0


def disk_cache_available() -> bool:
    """Whether numba can cache tsrnn's compiled kernels on disk: the package folder,
    numba's user cache folder or ``NUMBA_CACHE_DIR`` is writable. Hardened containers
    may allow none of them; numba then refuses ``cache=True`` at import."""
    import numba

    try:
        numba.njit(cache=True)(_probe)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


#: Options of every CPU kernel. ``error_model="numpy"``: a float division by zero gives
#: inf/NaN instead of raising, which removes a branch per division and lets LLVM
#: vectorize the activations. No ``fastmath``: NaN and inf must survive, so that a
#: diverging run is seen, not hidden. ``cache``: compiled kernels are kept on disk,
#: where there is a writable place for them.
JIT_OPTIONS = dict(cache=disk_cache_available(), nogil=True, error_model="numpy")
if not JIT_OPTIONS["cache"]:
    import warnings

    warnings.warn(
        "tsrnn cannot cache its compiled kernels: neither its package folder nor "
        "numba's user cache folder is writable, so every process compiles them again "
        "(10-20 s). Set NUMBA_CACHE_DIR to a writable folder.", RuntimeWarning,
        stacklevel=2)

#: Training batches a fit must expect (windows / batch_size x max_epochs) before it
#: compiles its batch function on a cold start (~1.5 s) rather than run the NumPy
#: one (~30 us more a batch of 32): :func:`tsrnn.data.windows.batch_function`.
COMPILED_BATCHES_FROM = 30_000

# ------------------------------------------------------------------- forecasting
#: Floor of an input window's scale with window scaling, in the scaler's units: a
#: flat window must not turn noise into huge inputs.
MIN_WINDOW_SCALE = 0.05
#: Most held-out windows kept as conformal scores: quantiles need a few thousand at
#: most; more would only grow the model (and its file) with the data.
MAX_CONFORMAL_WINDOWS = 5000
#: The "mlp" head: context values per forecast step cut from the final state, and
#: hidden ReLU units of the decoder shared by the steps.
DECODER_CONTEXT_SIZE = 8
DECODER_HIDDEN_SIZE = 32

#: A fit whose kept weights have a loss above this many times the naive forecast's
#: (and above ``DIVERGED_LOSS_FLOOR`` times it, in scaled units) diverged: it raises
#: instead of giving finite but absurd forecasts.
DIVERGED_LOSS_FACTOR = 3.0
DIVERGED_LOSS_FLOOR = 0.1

# -------------------------------------------------------------------- model file
#: Largest ``meta.json`` a model file may hold (names, ids and curves, not arrays).
MAX_META_BYTES = 64 << 20
#: Deepest nesting of lists and objects accepted in ``meta.json``.
MAX_JSON_DEPTH = 32
#: Largest total of array bytes a model file may hold.
MAX_ARRAY_BYTES = 8 << 30
#: Most recurrent layers a model file may declare.
MAX_LAYERS = 64

_allocator_tuned = False


def keep_freed_memory() -> None:
    """Ask glibc to serve large blocks from its heap and keep freed memory.

    Each training step allocates and frees activation buffers of a few MB. By default
    glibc returns such blocks to the OS with munmap, so every step would page-fault
    them in again. With a 256 MB mmap threshold and a 512 MB trim threshold those
    buffers are reused.
    Set ``TSRNN_KEEP_FREED_MEMORY=0`` to leave the allocator alone. Called by the
    first forward pass or training run, once; not at import.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    if os.environ.get("TSRNN_KEEP_FREED_MEMORY", "1") == "0":
        return
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 256 << 20)
        libc.mallopt(m_trim_threshold, 512 << 20)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass


#: The smoothing partner's share of a combined forecast (``combine``): the plain
#: mean, the combination the forecasting literature finds hard to beat with
#: estimated weights.
COMBINE_WEIGHT = 0.5
