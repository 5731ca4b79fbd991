"""LSTM on the GPU: the math of :mod:`tsrnn.kernels.cpu.lstm` (gates i, f, g, o),
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
    sigmoid,
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
    def forward(gates, w_t, hs, cs, tanh_c, out, lengths, keep, write_out, w_shared):
        """All steps of a tile of rows. ``gates`` holds the input projections and
        gets the activated gates; ``w_t`` is w_hh transposed, flat (H x 4H)."""
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, G = gates.shape
        H = G // 4
        sh = cuda.shared.array(0, nb)
        h_off = G * H if w_shared else 0
        p_off = h_off + R * H
        load_weights(sh, w_t, G * H, w_shared)
        load_rows(sh, h_off, hs[0], b0, H)
        cuda.syncthreads()
        for s in range(T):
            tile_products(sh, w_t, w_shared, h_off, H, p_off, G)
            cuda.syncthreads()
            ts = s if keep else 0
            for e in range(tid, R * H, nth):
                r = e // H
                j = e - r * H
                b = b0 + r
                if b < B:
                    if s < lengths[b]:
                        p = p_off + r * G
                        i = sigmoid(gates[s, b, j] + sh[p + j])
                        f = sigmoid(gates[s, b, H + j] + sh[p + H + j])
                        g = tanh(gates[s, b, 2 * H + j] + sh[p + 2 * H + j])
                        o = sigmoid(gates[s, b, 3 * H + j] + sh[p + 3 * H + j])
                        c = f * cs[s, b, j] + i * g
                        t = tanh(c)
                        h = o * t
                        gates[s, b, j] = i
                        gates[s, b, H + j] = f
                        gates[s, b, 2 * H + j] = g
                        gates[s, b, 3 * H + j] = o
                        cs[s + 1, b, j] = c
                        tanh_c[ts, b, j] = t
                        hs[s + 1, b, j] = h
                        sh[h_off + e] = h
                        if write_out:
                            out[s, b, j] = h
                    else:  # padding: the state passes through
                        for q in range(4):
                            gates[s, b, q * H + j] = 0
                        hs[s + 1, b, j] = sh[h_off + e]
                        cs[s + 1, b, j] = cs[s, b, j]
                        tanh_c[ts, b, j] = 0
                        if write_out:
                            out[s, b, j] = 0
            cuda.syncthreads()

    @cuda.jit
    def backward(gates, cs, tanh_c, w, dout, dh_io, dc_io, dpre, lengths, has_dout,
                 w_shared):
        """BPTT of a tile of rows; ``w`` is w_hh flat (4H x H); ``dh_io``/``dc_io``
        hold dh_n/dc_n in and dh0/dc0 out."""
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, G = gates.shape
        H = G // 4
        sh = cuda.shared.array(0, nb)
        dh_off = G * H if w_shared else 0
        dc_off = dh_off + R * H
        n_off = dc_off + R * H  # dh from the recurrent product of the step after
        p_off = n_off + R * H
        load_weights(sh, w, G * H, w_shared)
        load_rows(sh, dh_off, dh_io, b0, H)
        load_rows(sh, dc_off, dc_io, b0, H)
        cuda.syncthreads()
        for s in range(T - 1, -1, -1):
            for e in range(tid, R * H, nth):
                r = e // H
                j = e - r * H
                b = b0 + r
                p = p_off + r * G
                if b < B and s < lengths[b]:
                    if s + 1 < lengths[b]:
                        sh[dh_off + e] = sh[n_off + e]
                    dhj = sh[dh_off + e]
                    if has_dout:
                        dhj += dout[s, b, j]
                    i = gates[s, b, j]
                    f = gates[s, b, H + j]
                    g = gates[s, b, 2 * H + j]
                    o = gates[s, b, 3 * H + j]
                    t = tanh_c[s, b, j]
                    dcj = sh[dc_off + e] + dhj * o * (1 - t * t)
                    di = dcj * g * i * (1 - i)
                    df = dcj * cs[s, b, j] * f * (1 - f)
                    dg = dcj * i * (1 - g * g)
                    do = dhj * t * o * (1 - o)
                    dpre[s, b, j] = di
                    dpre[s, b, H + j] = df
                    dpre[s, b, 2 * H + j] = dg
                    dpre[s, b, 3 * H + j] = do
                    sh[p + j] = di
                    sh[p + H + j] = df
                    sh[p + 2 * H + j] = dg
                    sh[p + 3 * H + j] = do
                    sh[dc_off + e] = dcj * f
                else:  # padding (or no row): no gradient, the state's passes through
                    for q in range(4):
                        sh[p + q * H + j] = 0
                        if b < B:
                            dpre[s, b, q * H + j] = 0
            cuda.syncthreads()
            tile_products(sh, w, w_shared, p_off, G, n_off, H)
            cuda.syncthreads()
        for e in range(tid, R * H, nth):
            r = e // H
            b = b0 + r
            if b < B:
                dh_io[b, e - r * H] = sh[n_off + e]
                dc_io[b, e - r * H] = sh[dc_off + e]

    return forward, backward


def lstm_forward_dev(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, keep, write_out=True):
    """One layer on device arrays (time-major ``x``): ``out`` (None without
    ``write_out``) and the cache (``hs, cs, gates, tanh_c``), device arrays."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    G = 4 * H
    dt = np.dtype(x.dtype)
    gates = input_projection(x, w_ih, add(b_ih, b_hh))
    hs = cuda.device_array((T + 1, B, H), dtype=dt)
    cs = cuda.device_array((T + 1, B, H), dtype=dt)
    copy(h0, hs[0])
    copy(c0, cs[0])
    tanh_c = cuda.device_array((T if keep else 1, B, H), dtype=dt)
    out = cuda.device_array((T, B, H), dtype=dt) if write_out else hs[:1]
    rows = tiles.tile_rows(B, H + G, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, G, G * H, rows * (H + G),
                                                  dt.itemsize)
    fwd, _ = _kernels(dt, rows)
    fwd[blocks, threads, 0, shmem](gates, transpose(w_hh).reshape(G * H), hs, cs, tanh_c,
                                   out, lengths, keep, write_out, shared)
    return (out if write_out else None), (hs, cs, gates, tanh_c)


def lstm_backward_dev(x, w_ih, w_hh, lengths, hs, cs, gates, tanh_c, dout, dh, dc,
                      grads=None, want_dx=True):
    """BPTT of :func:`lstm_forward_dev` on device arrays. ``dout`` may be None (no
    gradient through the outputs); ``dh``/``dc`` (batch, hidden) are dh_n/dc_n and
    become dh0/dc0. Weight gradients go into ``grads`` (dw_ih, dw_hh, db_ih, db_hh)
    when given. Returns (dx or None, grads)."""
    T, B, F = x.shape
    H = w_hh.shape[1]
    G = 4 * H
    dt = np.dtype(x.dtype)
    dpre = cuda.device_array((T, B, G), dtype=dt)
    rows = tiles.tile_rows(B, 3 * H + G, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, G, G * H, rows * (3 * H + G),
                                                  dt.itemsize)
    _, bwd = _kernels(dt, rows)
    bwd[blocks, threads, 0, shmem](gates, cs, tanh_c, w_hh.reshape(G * H),
                                   dout if dout is not None else dpre, dh, dc, dpre,
                                   lengths, dout is not None, shared)
    return weight_and_input_grads(x, w_ih, hs, dpre, dpre, grads, want_dx)


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, keep):
    """As :func:`tsrnn.kernels.cpu.lstm.lstm_forward`; ``out`` on the host, the
    cache (``hs, cs, gates, tanh_c``) on the device."""
    out, cache = lstm_forward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                  to_device(b_ih), to_device(b_hh), to_device(h0),
                                  to_device(c0), to_device(lengths), keep)
    return (out.copy_to_host(), *cache)


def lstm_backward(x, w_ih, w_hh, lengths, hs, cs, gates, tanh_c, dout, dh_n, dc_n):
    """As :func:`tsrnn.kernels.cpu.lstm.lstm_backward`; host arrays out."""
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    dc = cuda.to_device(np.array(host(dc_n), copy=True))
    dx, grads = lstm_backward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                  to_device(lengths), hs, cs, gates, tanh_c,
                                  to_device(dout), dh, dc)
    return (dx.copy_to_host(), *(g.copy_to_host() for g in grads), dh.copy_to_host(),
            dc.copy_to_host())
