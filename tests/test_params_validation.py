import numpy as np
import pytest

from tsrnn import functional as F


def test_init_params_names_shapes_dtype_and_seed():
    p = F.init_params("gru", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    assert list(p)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert p["weight_ih_l1_reverse"].shape == (12, 8)
    assert all(v.dtype == np.float64 for v in p.values())
    q = F.init_params("gru", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    assert all(np.array_equal(p[k], q[k]) for k in p)
    r = F.init_params("gru", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=2)
    assert not np.array_equal(p["weight_hh_l0"], r["weight_hh_l0"])


def test_keras_init():
    H = 16
    p = F.init_params("lstm", 5, H, init="keras", seed=0, dtype=np.float64)
    w_hh = p["weight_hh_l0"]  # (4H, H); Keras' (H, 4H) kernel is orthogonal: rows
    np.testing.assert_allclose(w_hh.T @ w_hh, np.eye(H), atol=1e-10)
    b = p["bias_ih_l0"]
    assert np.all(b[H : 2 * H] == 1) and np.all(b[:H] == 0) and np.all(b[2 * H :] == 0)
    assert np.all(p["bias_hh_l0"] == 0)
    limit = np.sqrt(6 / (5 + 4 * H))
    assert np.abs(p["weight_ih_l0"]).max() <= limit


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda p: p.pop("bias_hh_l0"), "missing the key 'bias_hh_l0'"),
        (lambda p: p.__setitem__("weight_ih_l0", np.zeros((32, 2), np.float32)),
         r"params\['weight_ih_l0'\] must have shape \(32, 3\)"),
        (lambda p: p.__setitem__("bias_ih_l0", np.zeros(32, np.float64)),
         "dtype float64"),
        (lambda p: p.__setitem__("weight_ih_l1", np.zeros((32, 8), np.float32)),
         "unexpected keys"),
    ],
)
def test_bad_params_name_the_key(mutate, match):
    p = F.init_params("lstm", 3, 8)
    mutate(p)
    x = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match=match):
        F.forward("lstm", x, p)


def test_bad_inputs_raise_clear_errors():
    p = F.init_params("gru", 3, 8)
    x = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match="cell must be one of"):
        F.forward("transformer", x, p)
    with pytest.raises(ValueError, match="3-D"):
        F.forward("gru", x[0], p)
    with pytest.raises(ValueError, match="x has dtype float64"):
        F.forward("gru", x.astype(np.float64), p)
    with pytest.raises(ValueError, match=r"weight_ih_l0.*shape \(24, 5\)"):
        F.forward("gru", np.zeros((2, 4, 5), np.float32), p)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\]"):
        F.forward("gru", x, p, lengths=[4, 5])
    with pytest.raises(ValueError, match=r"state h must have shape \(1, 2, 8\)"):
        F.forward("gru", x, p, state=np.zeros((1, 3, 8), np.float32))
    with pytest.raises(ValueError, match="tuple"):
        F.forward("lstm", x, F.init_params("lstm", 3, 8), state=np.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match="dropout"):
        F.forward("gru", x, p, dropout=1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        F.forward("rnn", x, F.init_params("rnn", 3, 8), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="device"):
        F.forward("gru", x, p, device="tpu")
    _, _, cache = F.forward("gru", x, p, training=True)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 8\)"):
        F.backward(cache, np.zeros((2, 4, 9), np.float32))


def test_cuda_without_gpu_says_how_to_get_one(monkeypatch):
    from tsrnn import backend

    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    p = F.init_params("gru", 3, 8)
    with pytest.raises(RuntimeError, match=r"no usable NVIDIA GPU.*tsrnn\[cuda\]"):
        F.forward("gru", np.zeros((2, 4, 3), np.float32), p, device="cuda")
    # "auto" falls back to the CPU.
    out, _, _ = F.forward("gru", np.zeros((2, 4, 3), np.float32), p, device="auto")
    assert out.shape == (2, 4, 8)


def test_nan_input_propagates_not_hidden():
    p = F.init_params("lstm", 1, 4)
    x = np.zeros((1, 3, 1), np.float32)
    x[0, 1, 0] = np.nan
    out, _, _ = F.forward("lstm", x, p)
    assert np.isnan(out[0, 1:]).all()


def test_caller_arrays_are_not_modified(rng):
    p = F.init_params("lstm", 2, 4, seed=0)
    p_copy = {k: v.copy() for k, v in p.items()}
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    x_copy = x.copy()
    h0 = (np.ones((1, 2, 4), np.float32), np.ones((1, 2, 4), np.float32))
    out, st, cache = F.forward("lstm", x, p, state=h0, training=True)
    F.backward(cache, np.ones_like(out), st)
    np.testing.assert_array_equal(x, x_copy)
    assert all(np.array_equal(p[k], p_copy[k]) for k in p)
    assert np.all(h0[0] == 1) and np.all(h0[1] == 1)
