"""A slow, obvious NumPy reference for the recurrent kernels (forward and full BPTT).

One sequence at a time, one step at a time, float64, written straight from PyTorch's
documented equations. It shares no code with ``tsrnn``.
"""

import numpy as np


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _step(cell, x, h, c, W_ih, W_hh, b_ih, b_hh, relu):
    """One step; returns h', c' and what the backward step needs."""
    if cell == "rnn":
        a = W_ih @ x + b_ih + W_hh @ h + b_hh
        hn = np.maximum(a, 0) if relu else np.tanh(a)
        return hn, None, (a,)
    if cell == "lstm":
        a = W_ih @ x + b_ih + W_hh @ h + b_hh
        H = h.shape[0]
        i, f, g, o = sig(a[:H]), sig(a[H : 2 * H]), np.tanh(a[2 * H : 3 * H]), sig(a[3 * H :])
        cn = f * c + i * g
        hn = o * np.tanh(cn)
        return hn, cn, (i, f, g, o, cn)
    H = h.shape[0]
    gi = W_ih @ x + b_ih
    gh = W_hh @ h + b_hh
    r = sig(gi[:H] + gh[:H])
    z = sig(gi[H : 2 * H] + gh[H : 2 * H])
    n = np.tanh(gi[2 * H :] + r * gh[2 * H :])
    hn = (1 - z) * n + z * h
    return hn, None, (r, z, n, gh[2 * H :])


def _step_back(cell, x, h, c, aux, dh, dc, W_ih, W_hh, relu):
    """Gradients of one step: (dW_ih, dW_hh, db_ih, db_hh, dx, dh_prev, dc_prev)."""
    if cell == "rnn":
        (a,) = aux
        da = dh * ((a > 0).astype(float) if relu else 1 - np.tanh(a) ** 2)
        return np.outer(da, x), np.outer(da, h), da, da, W_ih.T @ da, W_hh.T @ da, None
    if cell == "lstm":
        i, f, g, o, cn = aux
        tc = np.tanh(cn)
        dc = dc + dh * o * (1 - tc**2)
        da = np.concatenate(
            [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2),
             dh * tc * o * (1 - o)]
        )
        return (np.outer(da, x), np.outer(da, h), da, da, W_ih.T @ da, W_hh.T @ da,
                dc * f)
    r, z, n, ghn = aux
    dn = dh * (1 - z) * (1 - n**2)
    dz = dh * (h - n) * z * (1 - z)
    dr = dn * ghn * r * (1 - r)
    dgi = np.concatenate([dr, dz, dn])
    dgh = np.concatenate([dr, dz, dn * r])
    return (np.outer(dgi, x), np.outer(dgh, h), dgi, dgh, W_ih.T @ dgi,
            W_hh.T @ dgh + dh * z, None)


def _names(layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return [k + sfx for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def forward_backward(cell, x, params, state=None, lengths=None, num_layers=1,
                     bidirectional=False, nonlinearity="tanh", dout=None, dstate=None,
                     masks=None):
    """Reference forward (and, if ``dout`` is given, backward) in float64.

    ``masks[layer]`` (batch, time, dirs*hidden) multiplies the output of ``layer``
    (dropout). Returns ``out, state`` or ``out, state, grads, dx, dstate0``.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    H = p["weight_hh_l0"].shape[1]
    D = 2 if bidirectional else 1
    relu = nonlinearity == "relu"
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    S = num_layers * D
    if state is None:
        h0 = np.zeros((S, B, H))
        c0 = np.zeros((S, B, H))
    elif cell == "lstm":
        h0, c0 = (np.asarray(s, dtype=np.float64) for s in state)
    else:
        h0, c0 = np.asarray(state, dtype=np.float64), np.zeros((S, B, H))
    out = np.zeros((B, T, D * H))
    hN, cN = np.zeros((S, B, H)), np.zeros((S, B, H))
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros_like(x)
    dh0, dc0 = np.zeros((S, B, H)), np.zeros((S, B, H))
    for b in range(B):
        L = lengths[b]
        inp = x[b, :L]
        tapes = []  # per layer: (inputs, [per direction: times, hs, cs, auxes])
        for layer in range(num_layers):
            layer_out = np.zeros((L, D * H))
            dir_tapes = []
            for d in range(D):
                W_ih, W_hh, b_ih, b_hh = (p[k] for k in _names(layer, d))
                idx = layer * D + d
                h, c = h0[idx, b], c0[idx, b]
                times = range(L - 1, -1, -1) if d else range(L)
                hs, cs, auxes = [], [], []
                for t in times:
                    hs.append(h)
                    cs.append(c)
                    h, c, aux = _step(cell, inp[t], h, c, W_ih, W_hh, b_ih, b_hh, relu)
                    auxes.append(aux)
                    layer_out[t, d * H : (d + 1) * H] = h
                hN[idx, b] = h
                if cell == "lstm":
                    cN[idx, b] = c
                dir_tapes.append((list(times), hs, cs, auxes))
            tapes.append((inp, dir_tapes))
            if masks is not None and layer < num_layers - 1:
                layer_out = layer_out * masks[layer][b, :L]
            inp = layer_out
        out[b, :L] = inp
        if dout is None:
            continue
        d_above = np.asarray(dout, dtype=np.float64)[b, :L].copy()
        for layer in range(num_layers - 1, -1, -1):
            if masks is not None and layer < num_layers - 1:
                d_above = d_above * masks[layer][b, :L]
            layer_inp, dir_tapes = tapes[layer]
            d_inp = np.zeros_like(layer_inp)
            for d in range(D):
                names = _names(layer, d)
                W_ih, W_hh = p[names[0]], p[names[1]]
                idx = layer * D + d
                times, hs, cs, auxes = dir_tapes[d]
                dh = np.zeros(H) if dstate is None else (
                    np.asarray(dstate[0] if cell == "lstm" else dstate)[idx, b].copy())
                dc = np.zeros(H) if (dstate is None or cell != "lstm") else (
                    np.asarray(dstate[1])[idx, b].copy())
                for k in range(len(times) - 1, -1, -1):
                    t = times[k]
                    dh = dh + d_above[t, d * H : (d + 1) * H]
                    gw_ih, gw_hh, gb_ih, gb_hh, gx, dh, dc_new = _step_back(
                        cell, layer_inp[t], hs[k], cs[k], auxes[k], dh, dc, W_ih, W_hh,
                        relu)
                    dc = dc_new if cell == "lstm" else dc
                    for name, g in zip(names, (gw_ih, gw_hh, gb_ih, gb_hh)):
                        grads[name] += g
                    d_inp[t] += gx
                dh0[idx, b] = dh
                if cell == "lstm":
                    dc0[idx, b] = dc
            d_above = d_inp
        dx[b, :L] = d_above
    state_out = (hN, cN) if cell == "lstm" else hN
    if dout is None:
        return out, state_out
    dstate0 = (dh0, dc0) if cell == "lstm" else dh0
    return out, state_out, grads, dx, dstate0
