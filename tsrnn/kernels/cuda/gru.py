"""GRU on the GPU: the math of :mod:`tsrnn.kernels.cpu.gru` (gates r, z, n; the
reset gate multiplies ``W_hn h + b_hn``), tiled as :mod:`tsrnn.kernels.cuda.tiles`
describes."""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from tsrnn.kernels.cuda import tiles
from tsrnn.kernels.cuda.linalg import (
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
    def forward(gates, w_t, b_hh, hs, hn_all, out, lengths, keep, write_out, w_shared):
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, G = gates.shape
        H = G // 3
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
                        hn = b_hh[2 * H + j] + sh[p + 2 * H + j]
                        rg = sigmoid(gates[s, b, j] + (b_hh[j] + sh[p + j]))
                        z = sigmoid(gates[s, b, H + j] + (b_hh[H + j] + sh[p + H + j]))
                        n = tanh(gates[s, b, 2 * H + j] + rg * hn)
                        h = (1 - z) * n + z * sh[h_off + e]
                        gates[s, b, j] = rg
                        gates[s, b, H + j] = z
                        gates[s, b, 2 * H + j] = n
                        hn_all[ts, b, j] = hn
                        hs[s + 1, b, j] = h
                        sh[h_off + e] = h
                        if write_out:
                            out[s, b, j] = h
                    else:
                        for q in range(3):
                            gates[s, b, q * H + j] = 0
                        hn_all[ts, b, j] = 0
                        hs[s + 1, b, j] = sh[h_off + e]
                        if write_out:
                            out[s, b, j] = 0
            cuda.syncthreads()

    @cuda.jit
    def backward(gates, hn_all, hs, w, dout, dh_io, dgi, dgh, lengths, has_dout,
                 w_shared):
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        b0 = cuda.blockIdx.x * R
        T, B, G = gates.shape
        H = G // 3
        sh = cuda.shared.array(0, nb)
        dh_off = G * H if w_shared else 0
        n_off = dh_off + R * H
        p_off = n_off + R * H
        load_weights(sh, w, G * H, w_shared)
        load_rows(sh, dh_off, dh_io, b0, H)
        cuda.syncthreads()
        for s in range(T - 1, -1, -1):
            for e in range(tid, R * H, nth):
                r = e // H
                j = e - r * H
                b = b0 + r
                p = p_off + r * G
                if b < B and s < lengths[b]:
                    if s + 1 < lengths[b]:  # dh = z dh' + (the product) of step s + 1
                        sh[dh_off + e] += sh[n_off + e]
                    dhj = sh[dh_off + e]
                    if has_dout:
                        dhj += dout[s, b, j]
                    rg = gates[s, b, j]
                    z = gates[s, b, H + j]
                    n = gates[s, b, 2 * H + j]
                    dn = dhj * (1 - z) * (1 - n * n)
                    dz = dhj * (hs[s, b, j] - n) * z * (1 - z)
                    dr = dn * hn_all[s, b, j] * rg * (1 - rg)
                    dgi[s, b, j] = dr
                    dgi[s, b, H + j] = dz
                    dgi[s, b, 2 * H + j] = dn
                    dgh[s, b, j] = dr
                    dgh[s, b, H + j] = dz
                    dgh[s, b, 2 * H + j] = dn * rg
                    sh[p + j] = dr
                    sh[p + H + j] = dz
                    sh[p + 2 * H + j] = dn * rg
                    sh[dh_off + e] = dhj * z
                else:
                    for q in range(3):
                        sh[p + q * H + j] = 0
                        if b < B:
                            dgi[s, b, q * H + j] = 0
                            dgh[s, b, q * H + j] = 0
            cuda.syncthreads()
            tile_products(sh, w, w_shared, p_off, G, n_off, H)
            cuda.syncthreads()
        for e in range(tid, R * H, nth):
            r = e // H
            b = b0 + r
            if b < B:
                dh_io[b, e - r * H] = sh[dh_off + e] + sh[n_off + e]

    return forward, backward


def gru_forward_dev(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep, write_out=True):
    """One layer on device arrays (time-major ``x``): ``out`` (None without
    ``write_out``) and the cache (``hs, gates, hn``), device arrays."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    dt = np.dtype(x.dtype)
    gates = input_projection(x, w_ih, b_ih)
    hs = cuda.device_array((T + 1, B, H), dtype=dt)
    copy(h0, hs[0])
    hn_all = cuda.device_array((T if keep else 1, B, H), dtype=dt)
    out = cuda.device_array((T, B, H), dtype=dt) if write_out else hs[:1]
    rows = tiles.tile_rows(B, H + G, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, G, G * H, rows * (H + G),
                                                  dt.itemsize)
    fwd, _ = _kernels(dt, rows)
    fwd[blocks, threads, 0, shmem](gates, transpose(w_hh).reshape(G * H), b_hh, hs,
                                   hn_all, out, lengths, keep, write_out, shared)
    return (out if write_out else None), (hs, gates, hn_all)


def gru_backward_dev(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh, grads=None,
                     want_dx=True):
    """BPTT of :func:`gru_forward_dev`, as :func:`tsrnn.kernels.cuda.lstm.lstm_backward_dev`."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    G = 3 * H
    dt = np.dtype(x.dtype)
    dgi = cuda.device_array((T, B, G), dtype=dt)
    dgh = cuda.device_array((T, B, G), dtype=dt)
    rows = tiles.tile_rows(B, 2 * H + G, dt.itemsize)
    blocks, threads, shmem, shared = tiles.launch(B, rows, G, G * H, rows * (2 * H + G),
                                                  dt.itemsize)
    _, bwd = _kernels(dt, rows)
    bwd[blocks, threads, 0, shmem](gates, hn_all, hs, w_hh.reshape(G * H),
                                   dout if dout is not None else dgi, dh, dgi, dgh,
                                   lengths, dout is not None, shared)
    return weight_and_input_grads(x, w_ih, hs, dgi, dgh, grads, want_dx)


def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, lengths, keep):
    """As :func:`tsrnn.kernels.cpu.gru.gru_forward`; ``out`` on the host, the cache
    (``hs, gates, hn``) on the device."""
    out, cache = gru_forward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                 to_device(b_ih), to_device(b_hh), to_device(h0),
                                 to_device(lengths), keep)
    return (out.copy_to_host(), *cache)


def gru_backward(x, w_ih, w_hh, lengths, hs, gates, hn_all, dout, dh_n):
    dh = cuda.to_device(np.array(host(dh_n), copy=True))
    dx, grads = gru_backward_dev(to_device(x), to_device(w_ih), to_device(w_hh),
                                 to_device(lengths), hs, gates, hn_all, to_device(dout), dh)
    return (dx.copy_to_host(), *(g.copy_to_host() for g in grads), dh.copy_to_host())
