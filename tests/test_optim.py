"""Each optimizer against its closed-form update (and against torch.optim if present)."""

import numpy as np
import pytest

from tsrnn.optim import SGD, Adam, RMSprop, make_optimizer


def test_sgd_closed_form():
    p = {"w": np.array([1.0, -2.0])}
    SGD(learning_rate=0.1, weight_decay=0.5).step(p, {"w": np.array([0.2, 0.4])})
    np.testing.assert_allclose(p["w"], [1.0 - 0.1 * (0.2 + 0.5), -2.0 - 0.1 * (0.4 - 1.0)])


def test_adam_first_steps_closed_form():
    p = {"w": np.array([0.5])}
    opt = Adam(learning_rate=0.01)
    g1, g2 = 0.3, -0.1
    opt.step(p, {"w": np.array([g1])})
    # Step 1 with bias correction moves by lr * sign(g) (up to eps).
    np.testing.assert_allclose(p["w"], [0.5 - 0.01], rtol=1e-7)
    p1 = 0.5 - 0.01 * g1 / (abs(g1) + 1e-8)
    np.testing.assert_allclose(p["w"], [p1], rtol=1e-14)
    opt.step(p, {"w": np.array([g2])})
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    mhat, vhat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    np.testing.assert_allclose(p["w"], [p1 - 0.01 * mhat / (np.sqrt(vhat) + 1e-8)],
                               rtol=1e-10)


def test_rmsprop_closed_form():
    p = {"w": np.array([1.0])}
    RMSprop(learning_rate=0.01).step(p, {"w": np.array([2.0])})
    np.testing.assert_allclose(p["w"], [1.0 - 0.01 * 2.0 / (np.sqrt(0.01 * 4.0) + 1e-8)])


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [{"w": rng.standard_normal(3)} for _ in range(4)]
    a = {"w": np.ones(3)}
    opt = Adam(0.1)
    for g in grads[:2]:
        opt.step(a, g)
    b = {"w": a["w"].copy()}
    opt2 = Adam(0.1)
    opt2.load_state_dict(opt.state_dict())
    for g in grads[2:]:
        opt.step(a, g)
        opt2.step(b, g)
    np.testing.assert_array_equal(a["w"], b["w"])


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(5)]
    p = {"w": w0.copy()}
    opt = make_optimizer(name, 0.05, weight_decay=0.01)
    wt = torch.tensor(w0, requires_grad=True)
    topt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
            "rmsprop": torch.optim.RMSprop}[name]([wt], lr=0.05, weight_decay=0.01)
    for g in grads:
        opt.step(p, {"w": g})
        wt.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p["w"], wt.detach().numpy(), rtol=1e-10)


def test_adam_updates_non_contiguous_parameters_in_place():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((4, 6))
    strided = {"w": base.T}  # an F-ordered view: no flat view of it exists
    plain = {"w": base.T.copy()}
    a, b = Adam(0.1), Adam(0.1)
    for _ in range(3):
        g = rng.standard_normal((6, 4))
        a.step(strided, {"w": g})
        b.step(plain, {"w": np.asfortranarray(g)})
    np.testing.assert_array_equal(base.T, plain["w"])  # the caller's array moved


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1003])  # around the 8 partial sums
def test_gradient_norm_sum_of_squares(n):
    """The clip's sum of squares (eight partial sums, float64) equals NumPy's, and a
    NaN or inf in a gradient reaches the norm (a diverging run must be seen)."""
    from tsrnn.kernels.cpu import sum_squares
    from tsrnn.training import clip_by_global_norm

    a = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    want = float(np.sum(a.astype(np.float64) ** 2))
    assert sum_squares(a) == pytest.approx(want, rel=1e-12, abs=0)
    if n:
        b = a.copy()
        b[-1] = np.nan
        assert np.isnan(sum_squares(b))
        b[-1] = np.inf
        assert sum_squares(b) == np.inf
        grads = {"w": a.reshape(-1, 1).copy()}
        norm = clip_by_global_norm(grads, max_norm=0.5)
        assert norm == pytest.approx(np.sqrt(want), rel=1e-12)
        assert np.sqrt(np.sum(grads["w"].astype(np.float64) ** 2)) <= 0.5 * (1 + 1e-6)


def test_weight_average_follows_its_closed_form_and_survives_a_state_dict():
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(4)} for _ in range(30)]
    p = {"w": rng.standard_normal(4)}
    opt = Adam(learning_rate=0.05)
    opt.average_decay = 0.9
    ref = None
    for t, g in enumerate(grads[:20], start=1):
        opt.step(p, g)
        opt.update_average(p)
        d = min(0.9, (1 + t) / (10 + t))  # fast at first, then the decay asked for
        ref = p["w"].copy() if ref is None else d * ref + (1 - d) * p["w"]
    np.testing.assert_allclose(opt.average["w"], ref, rtol=1e-12)
    assert not np.allclose(ref, p["w"])  # an average, not the last weights
    copy = Adam(learning_rate=0.05)
    copy.load_state_dict(opt.state_dict())
    copy.average_decay = 0.9
    q = {"w": p["w"].copy()}
    for g in grads[20:]:
        for o, w in ((opt, p), (copy, q)):
            o.step(w, g)
            o.update_average(w)
    np.testing.assert_array_equal(copy.average["w"], opt.average["w"])


def test_no_average_without_a_decay():
    p = {"w": np.array([1.0])}
    opt = SGD(learning_rate=0.1)
    opt.step(p, {"w": np.array([1.0])})
    opt.update_average(p)
    assert opt.average == {} and "average/w" not in opt.state_dict()
