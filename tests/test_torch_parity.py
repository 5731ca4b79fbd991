"""Parity with torch.nn.RNN / LSTM / GRU using the same weights (skipped without torch)."""

import numpy as np
import pytest
from conftest import CELL_CASES, random_state

from tsrnn import functional as F

torch = pytest.importorskip("torch")


def _torch_module(cell, Fin, H, nl, bidir, nonlin, dtype):
    kw = dict(input_size=Fin, hidden_size=H, num_layers=nl, bidirectional=bidir,
              batch_first=True)
    if cell == "rnn":
        m = torch.nn.RNN(nonlinearity=nonlin, **kw)
    else:
        m = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](**kw)
    return m.to(torch.float64 if dtype == np.float64 else torch.float32)


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("nl,bidir,ragged", [(1, False, False), (2, True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_gradients_equal_torch(cell, nonlin, nl, bidir, ragged, dtype, rng):
    torch.manual_seed(0)
    B, T, Fin, H = 5, 9, 3, 8
    m = _torch_module(cell, Fin, H, nl, bidir, nonlin, dtype)
    # torch state_dict -> numpy loads unchanged.
    params = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    assert list(params) == F.param_names(cell, nl, bidir)
    x = rng.standard_normal((B, T, Fin)).astype(dtype)
    lengths = np.array([9, 4, 1, 7, 9]) if ragged else None
    S = nl * (2 if bidir else 1)
    state = random_state(cell, S, B, H, rng, dtype)

    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=nl, bidirectional=bidir, nonlinearity=nonlin,
                               training=True)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads, dx, dstate0 = F.backward(cache, dout)

    xt = torch.tensor(x, requires_grad=True)
    st_t = tuple(torch.tensor(s, requires_grad=True) for s in
                 (state if cell == "lstm" else (state,)))
    inp = xt
    if ragged:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out_t, st_out_t = m(inp, st_t if cell == "lstm" else st_t[0])
    if ragged:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True,
                                                         total_length=T)
    (out_t * torch.tensor(dout)).sum().backward()

    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **tol)
    st_out_t = st_out_t if cell == "lstm" else (st_out_t,)
    for a, b in zip(st if cell == "lstm" else (st,), st_out_t):
        np.testing.assert_allclose(a, b.detach().numpy(), **tol)
    for name, prm in m.named_parameters():
        np.testing.assert_allclose(grads[name], prm.grad.numpy(), err_msg=name, **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for a, b in zip(dstate0 if cell == "lstm" else (dstate0,), st_t):
        np.testing.assert_allclose(a, b.grad.numpy(), **tol)

    # ...and back: our parameters load into torch unchanged.
    m2 = _torch_module(cell, Fin, H, nl, bidir, nonlin, dtype)
    m2.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    with torch.no_grad():
        o2, _ = m2(torch.tensor(x))
    out_full, _, _ = F.forward(cell, x, params, num_layers=nl, bidirectional=bidir,
                               nonlinearity=nonlin)
    np.testing.assert_allclose(out_full, o2.numpy(), **tol)


def test_init_params_matches_torch_distribution():
    """PyTorch's default init: U(-1/sqrt(H), 1/sqrt(H)) for every tensor."""
    H = 64
    p = F.init_params("lstm", 3, H, seed=0)
    bound = 1 / np.sqrt(H)
    w = p["weight_hh_l0"]
    assert w.min() >= -bound and w.max() <= bound
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    m = torch.nn.LSTM(3, H)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        k: v.shape for k, v in p.items()}
