"""Elman RNN on the GPU: the math of :mod:`tsrnn.kernels.cpu.rnn` (tanh or relu),
tiled as :mod:`tsrnn.kernels.cuda.tiles` describes."""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from tsrnn.kernels.cuda import tiles
from tsrnn.kernels.cuda.linalg import (
    add,
    copy,
    host,
    input_projection,
    numba_dtype,
    tanh,
    to_device,
    transpose,
    weight_and_input_grads,
)


@functools.cache
def _kernels(dtype, rows):
    nb = numba_dtype(dtype)
    R = rows
    load_weights, load_rows, tile_products = tiles.device_functions(dtype, rows)

    @cuda.jit
    def forward(pre, w_t, hs, out, lengths, write_out, use_relu, w_shared):
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, H = pre.shape
        sh = cuda.shared.array(0, nb)
        h_off = H * H if w_shared else 0
        p_off = h_off + R * H
        load_weights(sh, w_t, H * H, w_shared)
        load_rows(sh, h_off, hs[0], b0, H)
        cuda.syncthreads()
        for s in range(T):
            tile_products(sh, w_t, w_shared, h_off, H, p_off, H)
            cuda.syncthreads()
            for e in range(tid, R * H, nth):
                r = e // H
                j = e - r * H
                b = b0 + r
                if b < B:
                    if s < lengths[b]:
                        a = pre[s, b, j] + sh[p_off + e]
                        if use_relu:
                            h = a if not a < 0 else a * 0
                        else:
                            h = tanh(a)
                        hs[s + 1, b, j] = h
                        sh[h_off + e] = h
                        if write_out:
                            out[s, b, j] = h
                    else:
                        hs[s + 1, b, j] = sh[h_off + e]
                        if write_out:
                            out[s, b, j] = 0
            cuda.syncthreads()

    @cuda.jit
    def backward(hs, w, dout, dh_io, dpre, lengths, has_dout, use_relu, w_shared):
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, H = dpre.shape
        sh = cuda.shared.array(0, nb)
        dh_off = H * H if w_shared else 0
        n_off = dh_off + R * H
        p_off = n_off + R * H
        load_weights(sh, w, H * H, w_shared)
        load_rows(sh, dh_off, dh_io, b0, H)
        cuda.syncthreads()
        for s in range(T - 1, -1, -1):
            for e in range(tid, R * H, nth):
                r = e // H
                j = e - r * H
                b = b0 + r
                if b < B and s < lengths[b]:
                    if s + 1 < lengths[b]:
                        sh[dh_off + e] = sh[n_off + e]
                    dhj = sh[dh_off + e]
                    if has_dout:
                        dhj += dout[s, b, j]
                    h = hs[s + 1, b, j]
                    if use_relu:
                        d = dhj if h > 0 else dhj * 0
                    else:
                        d = dhj * (1 - h * h)
                    dpre[s, b, j] = d
                    sh[p_off + e] = d
                else:
                    sh[p_off + e] = 0
                    if b < B:
                        dpre[s, b, j] = 0
            cuda.syncthreads()
            tile_products(sh, w, w_shared, p_off, H, n_off, H)
            cuda.syncthreads()
        for e in range(tid, R * H, nth):
            r = e // H
            b = b0 + r
            if b < B:
                dh_io[b, e - r * H] = sh[n_off + e]

    return forward, backward


def rnn_forward_dev(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, use_relu,
                    write_out=True):
    """One layer on device arrays (time-major ``x``): ``out`` (None without
    ``write_out``) and the cache (``hs``,), device arrays."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dt = np.dtype(x.dtype)
    pre = input_projection(x, w_ih, add(b_ih, b_hh))
    hs = cuda.device_array((T + 1, B, H), dtype=dt)
    copy(h0, hs[0])
    out = cuda.device_array((T, B, H), dtype=dt) if write_out else hs[:1]
    rows = tiles.tile_rows(B, 2 * H, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, H, H * H, rows * 2 * H,
                                                  dt.itemsize)
    fwd, _ = _kernels(dt, rows)
    fwd[blocks, threads, 0, shmem](pre, transpose(w_hh).reshape(H * H), hs, out, lengths,
                                   write_out, use_relu, shared)
    return (out if write_out else None), (hs,)


def rnn_backward_dev(x, w_ih, w_hh, lengths, hs, dout, dh, use_relu, grads=None,
                     want_dx=True):
    """BPTT of :func:`rnn_forward_dev`, as :func:`tsrnn.kernels.cuda.lstm.lstm_backward_dev`."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dt = np.dtype(x.dtype)
    dpre = cuda.device_array((T, B, H), dtype=dt)
    rows = tiles.tile_rows(B, 3 * H, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, H, H * H, rows * 3 * H,
                                                  dt.itemsize)
    _, bwd = _kernels(dt, rows)
    bwd[blocks, threads, 0, shmem](hs, w_hh.reshape(H * H), dout if dout is not None else dpre,
                                   dh, dpre, lengths, dout is not None, use_relu, shared)
    return weight_and_input_grads(x, w_ih, hs, dpre, dpre, grads, want_dx)


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, use_relu):
    """As :func:`tsrnn.kernels.cpu.rnn.rnn_forward`; ``out`` on the host, ``hs`` on
    the device."""
    out, (hs,) = rnn_forward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                 to_device(b_ih), to_device(b_hh), to_device(h0),
                                 to_device(lengths), keep, use_relu)
    return out.copy_to_host(), hs


def rnn_backward(x, w_ih, w_hh, lengths, hs, dout, dh_n, use_relu):
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    dx, grads = rnn_backward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                 to_device(lengths), hs, to_device(dout), dh, use_relu)
    return (dx.copy_to_host(), *(g.copy_to_host() for g in grads), dh.copy_to_host())
