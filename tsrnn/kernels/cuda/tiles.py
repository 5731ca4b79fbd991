"""How the recurrent kernels tile a batch: one block steps a tile of batch rows
through every time step of a layer (one launch per layer and direction), its
threads spread over the gate rows for the recurrent product and over (row, unit)
pairs for the cell update, with a barrier between the two.

Everything a step reads more than once is on chip: the tile's state (and its
gradients, backward) in shared memory, and the recurrent weights too when they fit
(:func:`weights_in_shared`), else read from global memory in the layout that makes
neighbouring threads read neighbouring addresses (the caches then hold them).
Each thread keeps one accumulator per row of the tile in registers, so a weight
is read once per step for the whole tile, not once per row.

Shared memory is one dynamic array per block; each kernel lays out its buffers in
it, the weights first (when there), each buffer ``rows`` x width floats.
"""

from __future__ import annotations

import functools

from numba import cuda

from tsrnn import _config
from tsrnn.kernels.cuda.linalg import numba_dtype, threads_per_block


def tile_rows(batch: int, floats_per_row: int, itemsize: int) -> int:
    """Rows per block: one while the batch gives at most ``CUDA_TARGET_BLOCKS``
    blocks, doubling (up to ``CUDA_TILE_ROWS``, and while the tile's buffers of
    ``floats_per_row`` per row fit in shared memory) until it does; more rows per
    block read each weight for more rows, fewer keep more of the GPU busy."""
    most = max(1, int(_config.CUDA_TILE_ROWS))
    rows = 1
    while (rows < most and -(-batch // rows) > _config.CUDA_TARGET_BLOCKS
           and 2 * rows * floats_per_row * itemsize <= MAX_SHARED_BYTES):
        rows *= 2
    return rows


def weights_in_shared(n_weights: int, n_buffer_floats: int, itemsize: int) -> bool:
    """Whether the recurrent weights fit in shared memory beside the buffers."""
    return (n_weights + n_buffer_floats) * itemsize <= _config.CUDA_SHARED_BYTES


#: Shared memory a block gets without the driver's opt-in: the tile's buffers must fit.
MAX_SHARED_BYTES = 48 * 1024


def launch(batch: int, rows: int, width: int, n_weights: int, n_buffer_floats: int,
           itemsize: int):
    """(blocks, threads, shared bytes, weights in shared) of a recurrent kernel over
    ``batch`` rows, tiles of ``rows``, gate rows ``width``; ``n_buffer_floats`` is
    the tile's buffers, which must fit in shared memory."""
    if n_buffer_floats * itemsize > MAX_SHARED_BYTES:
        raise ValueError(
            f"hidden_size is too large for the CUDA kernels: a tile of {rows} row(s) "
            f"needs {n_buffer_floats * itemsize} bytes of shared memory, more than "
            f"{MAX_SHARED_BYTES}. Use a smaller hidden_size or device='cpu'.")
    shared = weights_in_shared(n_weights, n_buffer_floats, itemsize)
    floats = n_buffer_floats + (n_weights if shared else 0)
    threads = max(1, min(threads_per_block(), width))
    return -(-batch // rows), threads, floats * itemsize, shared


@functools.cache
def device_functions(dtype, rows):
    """The tile's weight load and product (device functions) for ``rows`` rows of
    ``dtype``: numba compiles the accumulators' size in."""
    nb = numba_dtype(dtype)
    R = rows

    @cuda.jit(device=True)
    def load_weights(sh, w, n, w_shared):
        if w_shared:
            for e in range(cuda.threadIdx.x, n, cuda.blockDim.x):
                sh[e] = w[e]

    @cuda.jit(device=True)
    def load_rows(sh, off, src, b0, H):
        """sh[off + r H + j] = src[b0 + r, j] for the tile's R rows; 0 past the batch."""
        B = src.shape[0]
        for e in range(cuda.threadIdx.x, R * H, cuda.blockDim.x):
            r = e // H
            sh[off + e] = src[b0 + r, e - r * H] if b0 + r < B else nb(0)

    @cuda.jit(device=True)
    def tile_products(sh, w, w_shared, in_off, n_in, out_off, n_out):
        """sh[out_off + r n_out + o] = sum_k sh[in_off + r n_in + k] W[k, o] for the
        tile's R rows, k in order; W row-major (n_in, n_out): in shared memory at 0
        when ``w_shared``, else the flat global ``w``."""
        acc = cuda.local.array(R, nb)
        for o in range(cuda.threadIdx.x, n_out, cuda.blockDim.x):
            for r in range(R):
                acc[r] = 0
            for k in range(n_in):
                wv = sh[k * n_out + o] if w_shared else w[k * n_out + o]
                for r in range(R):
                    acc[r] += sh[in_off + r * n_in + k] * wv
            for r in range(R):
                sh[out_off + r * n_out + o] = acc[r]

    return load_weights, load_rows, tile_products
