"""Global knobs of the compiled kernels, in one place.

Environment variables (read once at import):

``TSRNN_BLAS_MIN_FLOPS``
    Below this many multiply-adds a per-step matrix product is done by a hand-written
    loop inside the kernel; above it, by BLAS. Small products are dominated by the
    BLAS call overhead (about a microsecond), large ones by arithmetic.
``TSRNN_CUDA_THREADS``
    Threads per block of the CUDA kernels (tests patch this small so that tiny inputs
    run on several blocks).
"""

import os

BLAS_MIN_FLOPS = int(os.environ.get("TSRNN_BLAS_MIN_FLOPS", "32768"))
CUDA_THREADS_PER_BLOCK = int(os.environ.get("TSRNN_CUDA_THREADS", "128"))
