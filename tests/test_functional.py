"""The compiled kernels against the NumPy reference, finite differences and invariants."""

import numpy as np
import pytest
from conftest import CELL_CASES, random_state
from reference import forward_backward

from tsrnn import functional as F

CONFIGS = [  # (num_layers, bidirectional, ragged)
    (1, False, False),
    (1, False, True),
    (2, True, False),
    (2, True, True),
    (3, False, True),
]


def _case(cell, nl, bidir, ragged, dtype, rng, B=4, T=7, Fin=3, H=5):
    params = F.init_params(cell, Fin, H, nl, bidir, dtype=dtype, seed=rng)
    # Larger weights than the default init so that nonlinearities are exercised.
    params = {k: (v * 2).astype(dtype) for k, v in params.items()}
    x = rng.standard_normal((B, T, Fin)).astype(dtype)
    lengths = np.array([T, 3, 1, 6][:B]) if ragged else None
    S = nl * (2 if bidir else 1)
    state = random_state(cell, S, B, H, rng, dtype)
    return params, x, lengths, state


def _flat_state(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("nl,bidir,ragged", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_numpy_reference(cell, nonlin, nl, bidir, ragged, dtype, rng):
    params, x, lengths, state = _case(cell, nl, bidir, ragged, dtype, rng)
    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=nl, bidirectional=bidir,
                               nonlinearity=nonlin, training=True)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dstate = tuple(rng.standard_normal(s.shape).astype(dtype) for s in _flat_state(st))
    dstate = dstate if cell == "lstm" else dstate[0]
    grads, dx, dstate0 = F.backward(cache, dout, dstate)
    r_out, r_st, r_grads, r_dx, r_dstate0 = forward_backward(
        cell, x, params, state, lengths, nl, bidir, nonlin, dout=dout, dstate=dstate)

    tol = dict(rtol=1e-10, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(out, r_out, **tol)
    for a, b in zip(_flat_state(st), _flat_state(r_st)):
        np.testing.assert_allclose(a, b, **tol)
    assert list(grads) == list(params)
    for k in params:
        assert grads[k].shape == params[k].shape
        np.testing.assert_allclose(grads[k], r_grads[k], err_msg=k, **tol)
    np.testing.assert_allclose(dx, r_dx, **tol)
    for a, b in zip(_flat_state(dstate0), _flat_state(r_dstate0)):
        np.testing.assert_allclose(a, b, **tol)
    if ragged:
        for b, L in enumerate(lengths):
            assert np.all(out[b, L:] == 0)
            assert np.all(dx[b, L:] == 0)


def _loss(cell, x, params, state, lengths, nl, bidir, nonlin, R, Rs, dropout=0.0, seed=None):
    out, st, _ = F.forward(cell, x, params, state=state, lengths=lengths, num_layers=nl,
                           bidirectional=bidir, nonlinearity=nonlin, dropout=dropout,
                           training=dropout > 0, seed=seed)
    return float(np.sum(out * R) + sum(np.sum(a * b) for a, b in zip(_flat_state(st), Rs)))


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("nl,bidir,ragged", CONFIGS)
def test_gradients_match_finite_differences(cell, nonlin, nl, bidir, ragged, rng):
    params, x, lengths, state = _case(cell, nl, bidir, ragged, np.float64, rng, B=3, T=5)
    if nonlin == "relu":  # keep pre-activations away from the kink at 0
        params = {k: v * 0.5 for k, v in params.items()}
    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=nl, bidirectional=bidir, nonlinearity=nonlin,
                               training=True)
    R = rng.standard_normal(out.shape)
    Rs = tuple(rng.standard_normal(s.shape) for s in _flat_state(st))
    grads, dx, dstate0 = F.backward(cache, R, Rs if cell == "lstm" else Rs[0])

    def loss(p=params, xx=x, s=state):
        return _loss(cell, xx, p, s, lengths, nl, bidir, nonlin, R, Rs)

    eps = 1e-6
    for k, v in params.items():
        flat = v.reshape(-1)
        for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            p_plus = {kk: vv.copy() for kk, vv in params.items()}
            p_minus = {kk: vv.copy() for kk, vv in params.items()}
            p_plus[k].reshape(-1)[i] += eps
            p_minus[k].reshape(-1)[i] -= eps
            fd = (loss(p=p_plus) - loss(p=p_minus)) / (2 * eps)
            assert abs(fd - grads[k].reshape(-1)[i]) < 1e-6 * max(1, abs(fd)), (k, i)
    for i in rng.choice(x.size, size=8, replace=False):
        xp, xm = x.copy(), x.copy()
        xp.reshape(-1)[i] += eps
        xm.reshape(-1)[i] -= eps
        fd = (loss(xx=xp) - loss(xx=xm)) / (2 * eps)
        assert abs(fd - dx.reshape(-1)[i]) < 1e-6 * max(1, abs(fd)), ("x", i)
    for part, (s_arr, ds_arr) in enumerate(zip(_flat_state(state), _flat_state(dstate0))):
        for i in rng.choice(s_arr.size, size=6, replace=False):
            sp = [a.copy() for a in _flat_state(state)]
            sm = [a.copy() for a in _flat_state(state)]
            sp[part].reshape(-1)[i] += eps
            sm[part].reshape(-1)[i] -= eps
            wrap = tuple if cell == "lstm" else (lambda a: a[0])
            fd = (loss(s=wrap(sp)) - loss(s=wrap(sm))) / (2 * eps)
            assert abs(fd - ds_arr.reshape(-1)[i]) < 1e-6 * max(1, abs(fd)), ("state", i)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dropout_gradient_matches_finite_differences(cell, rng):
    params, x, lengths, state = _case(cell, 2, True, True, np.float64, rng, B=3, T=5)
    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=2, bidirectional=True, dropout=0.4,
                               training=True, seed=7)
    # Dropout actually dropped something, and the same seed gives the same masks.
    out_nodrop, _, _ = F.forward(cell, x, params, state=state, lengths=lengths,
                                 num_layers=2, bidirectional=True)
    assert not np.allclose(out, out_nodrop)
    out2, _, _ = F.forward(cell, x, params, state=state, lengths=lengths, num_layers=2,
                           bidirectional=True, dropout=0.4, training=True, seed=7)
    np.testing.assert_array_equal(out, out2)
    R = rng.standard_normal(out.shape)
    Rs = tuple(np.zeros(s.shape) for s in _flat_state(st))
    grads, _, _ = F.backward(cache, R)
    eps = 1e-6
    for k in ("weight_ih_l0", "weight_hh_l0_reverse", "bias_hh_l1"):
        for i in range(3):
            pp = {kk: vv.copy() for kk, vv in params.items()}
            pm = {kk: vv.copy() for kk, vv in params.items()}
            pp[k].reshape(-1)[i] += eps
            pm[k].reshape(-1)[i] -= eps
            fd = (_loss(cell, x, pp, state, lengths, 2, True, "tanh", R, Rs, 0.4, 7)
                  - _loss(cell, x, pm, state, lengths, 2, True, "tanh", R, Rs, 0.4, 7)) / (2 * eps)
            assert abs(fd - grads[k].reshape(-1)[i]) < 1e-6 * max(1, abs(fd)), (k, i)


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunks_with_carried_state_equal_one_run(cell, nonlin, dtype, rng):
    params, x, _, state = _case(cell, 2, False, False, dtype, rng, T=12)
    kw = dict(num_layers=2, nonlinearity=nonlin)
    out_full, st_full, _ = F.forward(cell, x, params, state=state, **kw)
    st = state
    outs = []
    for lo, hi in ((0, 5), (5, 6), (6, 12)):
        o, st, _ = F.forward(cell, np.ascontiguousarray(x[:, lo:hi]), params, state=st, **kw)
        outs.append(o)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(np.concatenate(outs, axis=1), out_full, rtol=tol, atol=tol)
    for a, b in zip(_flat_state(st), _flat_state(st_full)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
def test_truncated_bptt_chunk_gradients_chain(cell, nonlin, rng):
    """Backward over chunks, carrying dstate0 into the previous chunk's dstate, equals
    full BPTT (the chunk length here is not a truncation: the state gradient flows)."""
    params, x, _, state = _case(cell, 1, False, False, np.float64, rng, T=10)
    out, st, cache = F.forward(cell, x, params, state=state, nonlinearity=nonlin,
                               training=True)
    dout = rng.standard_normal(out.shape)
    g_full, dx_full, ds_full = F.backward(cache, dout)
    o1, s1, c1 = F.forward(cell, np.ascontiguousarray(x[:, :4]), params, state=state,
                           nonlinearity=nonlin, training=True)
    o2, s2, c2 = F.forward(cell, np.ascontiguousarray(x[:, 4:]), params, state=s1,
                           nonlinearity=nonlin, training=True)
    g2, dx2, ds2 = F.backward(c2, np.ascontiguousarray(dout[:, 4:]))
    g1, dx1, ds1 = F.backward(c1, np.ascontiguousarray(dout[:, :4]), ds2)
    for k in params:
        np.testing.assert_allclose(g1[k] + g2[k], g_full[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([dx1, dx2], axis=1), dx_full, rtol=1e-10,
                               atol=1e-12)
    for a, b in zip(_flat_state(ds1), _flat_state(ds_full)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidir", [False, True])
def test_ragged_batch_equals_each_sequence_alone(cell, bidir, rng):
    params, x, _, state = _case(cell, 2, bidir, False, np.float64, rng, T=8)
    lengths = np.array([8, 3, 1, 5])
    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=2, bidirectional=bidir, training=True)
    dout = rng.standard_normal(out.shape)
    grads, dx, _ = F.backward(cache, dout)
    g_sum = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(lengths):
        sb = tuple(a[:, b : b + 1] for a in _flat_state(state))
        sb = sb if cell == "lstm" else sb[0]
        o, s, c = F.forward(cell, np.ascontiguousarray(x[b : b + 1, :L]), params,
                            state=sb, num_layers=2, bidirectional=bidir, training=True)
        np.testing.assert_allclose(out[b : b + 1, :L], o, rtol=1e-12, atol=1e-13)
        for a, one in zip(_flat_state(st), _flat_state(s)):
            np.testing.assert_allclose(a[:, b : b + 1], one, rtol=1e-12, atol=1e-13)
        g, d, _ = F.backward(c, np.ascontiguousarray(dout[b : b + 1, :L]))
        np.testing.assert_allclose(dx[b : b + 1, :L], d, rtol=1e-10, atol=1e-12)
        for k in g_sum:
            g_sum[k] += g[k]
    for k in params:
        np.testing.assert_allclose(grads[k], g_sum[k], rtol=1e-10, atol=1e-12)


def test_inference_keeps_no_cache(rng):
    params, x, _, _ = _case("lstm", 1, False, False, np.float32, rng)
    out, _, cache = F.forward("lstm", x, params)
    assert cache is None
    out_t, _, cache_t = F.forward("lstm", x, params, training=True)
    assert cache_t is not None
    np.testing.assert_array_equal(out, out_t)
    with pytest.raises(ValueError, match="training=True"):
        F.backward(cache, out)


@pytest.mark.parametrize("cell,nl", CELL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Fin", [2, 20])  # the input projection by hand, and by BLAS
def test_one_row_inference_path(cell, nl, dtype, Fin, rng, monkeypatch):
    """F.forward(training=False) of one row through one unidirectional layer runs
    the inference kernel (and only then): it agrees with the general path (which
    training and a shorter length take) and with the NumPy reference, and its final
    state is its last output."""
    T, H = 7, 33
    x = rng.standard_normal((1, T, Fin)).astype(dtype)
    p = F.init_params(cell, Fin, H, dtype=dtype, seed=4)
    state = random_state(cell, 1, 1, H, rng, dtype)
    calls = []
    one_row = F._inference_one_row
    monkeypatch.setattr(F, "_inference_one_row",
                        lambda *a: calls.append(1) or one_row(*a))
    out, st, cache = F.forward(cell, x, p, state=state, nonlinearity=nl)
    assert cache is None and len(calls) == 1
    F.forward(cell, np.concatenate([x, x]), p, nonlinearity=nl)  # two rows
    assert len(calls) == 1
    out_t, st_t, _ = F.forward(cell, x, p, state=state, nonlinearity=nl, training=True)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12,
                                                                        atol=1e-14)
    np.testing.assert_allclose(out, out_t, **tol)
    for a, b in zip(_flat_state(st), _flat_state(st_t), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol)
    short, _, _ = F.forward(cell, x, p, state=state, nonlinearity=nl, lengths=[T - 1])
    np.testing.assert_allclose(out[:, : T - 1], short[:, : T - 1], **tol)
    as64 = {k: v.astype(np.float64) for k, v in p.items()}
    state64 = tuple(s.astype(np.float64) for s in _flat_state(state))
    r_out, _ = forward_backward(cell, x.astype(np.float64), as64,
                                state64 if cell == "lstm" else state64[0],
                                nonlinearity=nl)
    ref_tol = (dict(rtol=1e-4, atol=1e-5) if dtype == np.float32
               else dict(rtol=1e-10, atol=1e-12))
    np.testing.assert_allclose(out, r_out, **ref_tol)
    h = st[0] if cell == "lstm" else st
    np.testing.assert_array_equal(h[0], out[:, -1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,nl", CELL_CASES)
def test_final_state_kernels_equal_the_full_forward(cell, nl, dtype, rng):
    """The inference-only kernels (used by predict for one layer) give the final
    state of the full forward pass (to rounding: they take every row on its own, so
    their sums run in another order), and each row's result is the same whatever the
    other rows of the batch."""
    from tsrnn.kernels import cpu

    B, T, Fin, H = 5, 9, 3, 7
    x = rng.standard_normal((B, T, Fin)).astype(dtype)
    p = F.init_params(cell, Fin, H, dtype=dtype, seed=3)
    state = random_state(cell, 1, B, H, rng, dtype)
    _, st, _ = F.forward(cell, x, p, state=state, nonlinearity=nl)
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
    w = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)

    def final(rows):
        x_r = np.ascontiguousarray(x_tm[:, rows])
        none = np.empty((x_r.shape[1], 0, H), dtype)
        if cell == "lstm":
            return cpu.lstm_final_state(x_r, *w, state[0][0][rows], state[1][0][rows],
                                        none)
        if cell == "gru":
            return (cpu.gru_final_state(x_r, *w, state[0][rows], none),)
        return (cpu.rnn_final_state(x_r, *w, state[0][rows], nl == "relu", none),)

    whole = final(slice(0, B))
    expected = (st[0][0], st[1][0]) if cell == "lstm" else (st[0],)
    for got, want in zip(whole, expected, strict=True):
        np.testing.assert_allclose(got, want, **tol)
    for r in range(B):  # one row alone, and the last rows, give the same bits
        for got, ref in zip(final(slice(r, r + 1)), whole):
            np.testing.assert_array_equal(got[0], ref[r])
    for got, ref in zip(final(slice(2, B)), whole):
        np.testing.assert_array_equal(got, ref[2:])


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("H", [5, 19])  # below one block of eight rows; two blocks + 3
def test_one_row_matches_reference(cell, nonlin, H, rng):
    """A batch of one row takes its own product path (vecmat_acc, unrolled by eight),
    in the forward, the backward and the inference-only kernels."""
    from tsrnn.kernels import cpu

    x = rng.standard_normal((1, 6, 3))
    params = {k: v * 2 for k, v in F.init_params(cell, 3, H, dtype=np.float64,
                                                 seed=rng).items()}
    state = random_state(cell, 1, 1, H, rng, np.float64)
    out, st, cache = F.forward(cell, x, params, state=state, nonlinearity=nonlin,
                               training=True)
    dout = rng.standard_normal(out.shape)
    grads, dx, _ = F.backward(cache, dout)
    r_out, _, r_grads, r_dx, _ = forward_backward(cell, x, params, state, None, 1, False,
                                                  nonlin, dout=dout)
    tol = dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(dx, r_dx, **tol)
    for k in params:
        np.testing.assert_allclose(grads[k], r_grads[k], err_msg=k, **tol)
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
    w = (params["weight_ih_l0"], params["weight_hh_l0"], params["bias_ih_l0"],
         params["bias_hh_l0"])
    none = np.empty((1, 0, H))
    if cell == "lstm":
        h = cpu.lstm_final_state(x_tm, *w, state[0][0], state[1][0], none)[0]
    elif cell == "gru":
        h = cpu.gru_final_state(x_tm, *w, state[0], none)
    else:
        h = cpu.rnn_final_state(x_tm, *w, state[0], nonlin == "relu", none)
    np.testing.assert_allclose(h, st[0][0] if cell == "lstm" else st[0], **tol)


# (batch, k, gates): k = 1 (one product), few features (per step), and recurrent
# weights with a small accumulator and >= 32 rows (per step), fewer rows or a large
# accumulator (one product over all steps).
@pytest.mark.parametrize("B,K,G", [(9, 1, 7), (40, 1, 7), (3, 4, 7), (40, 2, 7),
                                   (32, 16, 64), (31, 16, 64), (32, 130, 128)])
def test_weight_gradient_product_both_ways(B, K, G, rng):
    """sum_outer takes one product per step or one over all steps, depending on the
    shapes: every branch equals the plain sum over steps and rows."""
    from tsrnn.kernels.cpu.linalg import sum_outer

    T = 5
    d = rng.standard_normal((T, B, G))
    a = rng.standard_normal((T + 1, B, K))  # one more step, like the kernels' hs
    want = np.einsum("tbg,tbk->gk", d, a[:T])
    got = sum_outer(d, a)
    assert got.shape == (G, K) and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_kernel_copy_helpers_check_shapes_and_empty_batches():
    """copy_rows and min_length replace numba's slice assignment and min() (whose
    compilation cost seconds of cold start): they keep the shape check and the
    empty case."""
    from tsrnn.kernels.cpu.linalg import copy_rows, min_length

    src = np.arange(6.0).reshape(2, 3)
    dst = np.zeros((2, 3))
    copy_rows(dst, src)
    np.testing.assert_array_equal(dst, src)
    for bad in (np.zeros((3, 3)), np.zeros((2, 2))):
        with pytest.raises(ValueError, match="shapes differ"):
            copy_rows(bad, src)
    assert min_length(np.array([5, 3, 7], np.int64)) == 3
    assert min_length(np.array([4], np.int64)) == 4
    assert min_length(np.zeros(0, np.int64)) == 0


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_backward_leaves_the_cache_for_another_pass_and_the_training_pass_uses_it_up(
        cell, rng):
    """F.backward may run twice on one cache (a Jacobian, row by row) with the same
    result; the training loop's consuming pass (the LSTM kernel writes its gradients
    over the cached gates) gives the same gradients and refuses a second run."""
    from tsrnn import functional as F

    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    p = F.init_params(cell, 3, 8, num_layers=2, seed=0)
    _, _, cache = F.forward(cell, x, p, num_layers=2, training=True)
    dout = rng.standard_normal((5, 7, 8)).astype(np.float32)
    first = F.backward(cache, dout)
    again = [F.backward(cache, dout), F.backward(cache, dout, None, consume=True)]
    for grads, dx, _ in again:  # (grads, dx, dstate), equal to the first pass
        np.testing.assert_array_equal(dx, first[1])
        assert grads.keys() == first[0].keys()
        for k in grads:
            np.testing.assert_array_equal(grads[k], first[0][k], err_msg=k)
    with pytest.raises(ValueError, match="used up"):
        F.backward(cache, dout, None, consume=True)
    with pytest.raises(ValueError, match="used up"):
        F.backward(cache, dout)


# One thread, so one shard: 16 rows take the transposed products, 80 the plain ones
@pytest.mark.parametrize("batch", [16, 80])
def test_lstm_at_hidden_256_matches_the_reference_both_product_forms(batch, rng,
                                                                     monkeypatch):
    """For 16-32 rows at hidden >= 256 the LSTM kernels take each step's product in
    transposed operand order (OpenBLAS runs it faster); both forms must give the
    reference's outputs, states and gradients, and the inference kernel the same
    final state."""
    from tsrnn import parallel
    from tsrnn.kernels import cpu
    from tsrnn.kernels.cpu.linalg import wide_product_transposed

    monkeypatch.setattr(parallel, "_num_threads", 1)  # else 80 rows may be cut to 16-48
    assert wide_product_transposed(batch, 256) == (batch == 16)

    params = F.init_params("lstm", 2, 256, dtype=np.float64, seed=1)
    x = rng.standard_normal((batch, 6, 2))
    out, st, cache = F.forward("lstm", x, params, training=True)
    dout = rng.standard_normal(out.shape)
    grads, dx, _ = F.backward(cache, dout)
    r_out, r_st, r_grads, r_dx, _ = forward_backward("lstm", x, params, dout=dout)
    tol = dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(dx, r_dx, **tol)
    for k in grads:
        np.testing.assert_allclose(grads[k], r_grads[k], **tol, err_msg=k)
    w = [params[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    h0 = np.zeros((batch, 256))
    h = cpu.lstm_final_state(np.ascontiguousarray(x.transpose(1, 0, 2)), *w, h0, h0,
                             np.empty((batch, 0, 256)))[0]
    np.testing.assert_allclose(h, st[0][0], **tol)


# One thread, so one shard: 42 rows stream the weight gradients step by step, 31 rows
# take one product after the loop. Ragged, so that padding rows are in both; 3 input
# features take the axpy loop (four rows a pass, and two left over), 20 the BLAS
# product.
@pytest.mark.parametrize("batch", [31, 42])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("n_in", [3, 20])
def test_weight_gradients_streamed_or_after_the_loop_match_the_reference(
        cell, batch, n_in, rng, monkeypatch):
    """Large batches add each step's share of the weight gradients, bias gradients and
    dx inside the time loop (streams_weight_grads); both ways must give the
    reference's gradients."""
    from tsrnn import parallel
    from tsrnn.kernels.cpu.linalg import streams_weight_grads

    monkeypatch.setattr(parallel, "_num_threads", 1)
    T, H = 48, 48
    G = F.CELLS[cell] * H
    assert streams_weight_grads(T, batch, G, 8) == (batch == 42)
    params = F.init_params(cell, n_in, H, dtype=np.float64, seed=2)
    params = {k: v * 2 for k, v in params.items()}  # exercise the nonlinearities
    x = rng.standard_normal((batch, T, n_in))
    lengths = rng.integers(1, T + 1, batch)
    lengths[0] = T
    out, st, cache = F.forward(cell, x, params, lengths=lengths, training=True)
    dout = rng.standard_normal(out.shape)
    grads, dx, _ = F.backward(cache, dout)
    r_out, _, r_grads, r_dx, _ = forward_backward(cell, x, params, lengths=lengths,
                                                  dout=dout)
    tol = dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(dx, r_dx, **tol)
    for k in grads:
        np.testing.assert_allclose(grads[k], r_grads[k], **tol, err_msg=k)


def test_the_layer_entry_points_refuse_what_would_leave_the_kernels_bounds(rng):
    """run_layer and backward_layer skip forward's checks, but not the ones that keep
    the compiled kernels in bounds."""
    p = F.init_params("lstm", 2, 4, seed=0)
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)
    h0 = np.zeros((3, 4), np.float32)
    lengths = np.full(3, 5, np.int64)
    out, h, c, cache = F.run_layer("lstm", x, p, "_l0", h0, h0, lengths, True, False)
    with pytest.raises(ValueError, match="w_ih"):
        F.run_layer("lstm", x, {**p, "weight_ih_l0": p["weight_ih_l0"][:, :1].copy()},
                    "_l0", h0, h0, lengths, True, False)
    with pytest.raises(ValueError, match="lengths"):
        F.run_layer("lstm", x, p, "_l0", h0, h0, lengths + 1, True, False)
    with pytest.raises(ValueError, match="h0"):
        F.run_layer("lstm", x, p, "_l0", h0[:2], h0, lengths, True, False)
    args = ("lstm", x, p["weight_ih_l0"], p["weight_hh_l0"], lengths)
    _, _, _, kept_none = F.run_layer("lstm", x, p, "_l0", h0, h0, lengths, False, False)
    with pytest.raises(ValueError, match="kernel_cache tanh_c"):  # keep=False cache
        F.backward_layer(*args, kept_none, np.zeros_like(out), h0, h0, False, False)
    with pytest.raises(ValueError, match="dout"):
        F.backward_layer(*args, cache, np.zeros((5, 3, 3), np.float32), h0, h0, False,
                         False)
    grads = F.backward_layer(*args, cache, np.ones_like(out), h0, h0, False, False)
    assert grads[1].shape == p["weight_ih_l0"].shape


@pytest.mark.parametrize("batch", [4, 256])  # one shard; shards in threads
def test_outputs_are_time_major_views_and_any_dout_layout_gives_the_same_grads(batch):
    """out and dx are batch-first views of time-major memory (no transposed copy);
    a dout laid out like out and a C-contiguous one give the same bits, and writing
    into out leaves the backward pass alone (the cache does not hold it)."""
    rng = np.random.default_rng(0)
    p = F.init_params("lstm", 2, 32, seed=0)
    x = rng.normal(size=(batch, 7, 2)).astype(np.float32)
    out, _, cache = F.forward("lstm", x, p, training=True)
    assert out.transpose(1, 0, 2).flags.c_contiguous
    assert not out.flags.c_contiguous
    g = rng.normal(size=out.shape).astype(np.float32)
    dout_like = np.zeros_like(out)
    dout_like[...] = g
    assert dout_like.strides == out.strides
    want = F.backward(cache, np.ascontiguousarray(g))
    out[...] = np.nan
    got = F.backward(cache, dout_like)
    assert got[1].transpose(1, 0, 2).flags.c_contiguous
    np.testing.assert_array_equal(got[1], want[1])
    for k in want[0]:
        np.testing.assert_array_equal(got[0][k], want[0][k])
    np.testing.assert_array_equal(got[2][0], want[2][0])
