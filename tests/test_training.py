"""The training step of RecurrentNet: the single-layer path (one layer, kernels called
directly) gives exactly what the general path through F.forward/F.backward gives."""

import warnings

import numpy as np
import pytest

from tsrnn import parallel
from tsrnn.losses import loss_and_grad
from tsrnn.network import RecurrentNet

CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")]


def _net(cell, nonlin, num_layers=1, bidirectional=False, n_inputs=3, hidden=5):
    return RecurrentNet(cell, n_inputs, hidden, num_layers, bidirectional, 0.0, n_out=4,
                        n_future=2, rng=np.random.default_rng(0), nonlinearity=nonlin)


def _step(net, x, fut, y, tbptt_steps=None):
    pred, ctx = net.forward(x, fut, training=True, rng=np.random.default_rng(1),
                            tbptt_steps=tbptt_steps)
    _, dpred = loss_and_grad("mse", pred, y)
    return pred, net.backward(ctx, dpred.astype(pred.dtype)), ctx


def _data(batch=7, steps=9, features=3, dtype=np.float32):
    rng = np.random.default_rng(2)
    return (rng.standard_normal((batch, steps, features)).astype(dtype),
            rng.standard_normal((batch, 2)).astype(dtype),
            rng.standard_normal((batch, 4)).astype(dtype))


@pytest.mark.parametrize("cell,nonlin", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_single_layer_step_equals_the_general_step(cell, nonlin, dtype, threads, monkeypatch):
    """Bit for bit, in one shard and with the batch split over two threads (the
    shards' weight gradients added in the same order)."""
    monkeypatch.setattr(parallel, "_num_threads", threads)
    monkeypatch.setattr(parallel, "SHARD_MIN_WORK", 1)
    net = _net(cell, nonlin)
    net.params = {k: v.astype(dtype) for k, v in net.params.items()}
    x, fut, y = _data(dtype=dtype)
    pred, grads, ctx = _step(net, x, fut, y)
    assert isinstance(ctx[0], tuple) and ctx[0][0] == "single_layer"
    assert len(ctx[0][1]) == threads  # the shards
    monkeypatch.setattr(RecurrentNet, "_single_layer_training", lambda *a: False)
    pred_g, grads_g, ctx_g = _step(net, x, fut, y)
    assert isinstance(ctx_g[0], dict)  # F.forward's cache: the general path ran
    np.testing.assert_array_equal(pred, pred_g)
    assert grads.keys() == grads_g.keys() == net.params.keys()
    for k in grads:
        assert grads[k].shape == net.params[k].shape
        np.testing.assert_array_equal(grads[k], grads_g[k], err_msg=k)
    assert any(np.any(g != 0) for k, g in grads.items() if "hh" in k)


@pytest.mark.parametrize("cell,nonlin", CELLS)
@pytest.mark.parametrize("head,loss,quantiles", [("linear", "mse", None),
                                                 ("mlp", "huber", None),
                                                 ("linear", "mae", (0.1, 0.5, 0.9))])
def test_a_sharded_train_step_equals_forward_loss_backward(cell, nonlin, head, loss,
                                                           quantiles, monkeypatch):
    """With the batch split over threads, each shard runs forward, head, loss and
    backward in its own thread (train_step): the batch's mean loss and every
    gradient are those of the two-pass step, up to the order of the head's sums."""
    monkeypatch.setattr(parallel, "_num_threads", 2)
    monkeypatch.setattr(parallel, "SHARD_MIN_WORK", 1)
    n_out = 4 * (len(quantiles) if quantiles else 1)
    net = RecurrentNet(cell, 3, 5, 1, False, 0.0, n_out=n_out, n_future=2,
                       rng=np.random.default_rng(0), nonlinearity=nonlin, head=head,
                       n_steps=2)
    net.params = {k: v.astype(np.float64) for k, v in net.params.items()}
    x, fut, y = _data(dtype=np.float64)
    calls = []
    monkeypatch.setattr(net, "_sharded_train_step", _spy(net._sharded_train_step, calls))
    value, grads = net.train_step(x, fut, y, loss, quantiles)
    assert calls  # the sharded step ran
    pred, ctx = net.forward(x, fut, training=True)
    value_2, dpred = loss_and_grad(loss, pred, y, quantiles)
    grads_2 = net.backward(ctx, dpred)
    np.testing.assert_allclose(value, value_2, rtol=1e-13)
    assert grads.keys() == grads_2.keys() == net.params.keys()
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_2[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert all(np.any(g != 0) for g in grads.values())


def test_a_sharded_train_step_keeps_the_callers_numpy_error_state(monkeypatch):
    """The shards' head and loss run in pool threads, where numpy's error state is
    the default: a diverging step under the Trainer's errstate(over="ignore") must
    stay as quiet there as in the caller's thread (the Trainer then names the epoch)."""
    monkeypatch.setattr(parallel, "_num_threads", 2)
    monkeypatch.setattr(parallel, "SHARD_MIN_WORK", 1)
    net = _net("gru", "tanh")
    net.params["head.weight"][:] = 3e38  # the head's output overflows float32
    x, fut, y = _data()
    calls = []
    monkeypatch.setattr(net, "_sharded_train_step", _spy(net._sharded_train_step, calls))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore", invalid="ignore"):
            value, _ = net.train_step(x, fut, y, "mse")
    assert calls and not np.isfinite(value)


def _spy(fn, calls):
    def wrapper(*args, **kwargs):
        calls.append(args)
        return fn(*args, **kwargs)
    return wrapper


def test_loss_shares_of_a_batch_add_up_to_its_mean():
    rng = np.random.default_rng(0)
    pred, y = rng.standard_normal((10, 6)), rng.standard_normal((10, 6))
    for kind, q in [("mse", None), ("mae", None), ("huber", None), ("mse", (0.2, 0.8))]:
        p = pred if q is None else rng.standard_normal((10, 12))
        whole, g = loss_and_grad(kind, p, y, q)
        parts = [loss_and_grad(kind, p[r], y[r], q, total_rows=10)
                 for r in (slice(0, 3), slice(3, 10))]
        np.testing.assert_allclose(sum(v for v, _ in parts), whole, rtol=1e-14)
        np.testing.assert_allclose(np.concatenate([d for _, d in parts]), g, rtol=1e-14)


@pytest.mark.parametrize("kind", ["stacked", "bidirectional", "tbptt"])
def test_the_general_path_runs_where_the_lean_one_does_not_apply(kind):
    net = _net("lstm", "tanh", num_layers=2 if kind == "stacked" else 1,
               bidirectional=kind == "bidirectional")
    x, fut, y = _data()
    _, grads, ctx = _step(net, x, fut, y, tbptt_steps=4 if kind == "tbptt" else None)
    assert isinstance(ctx[0], dict)
    assert grads.keys() == net.params.keys()
    # a truncated window as long as the whole one is no truncation: lean again
    if kind == "tbptt":
        assert isinstance(_step(net, x, fut, y, tbptt_steps=9)[2][0], tuple)


@pytest.mark.parametrize("training", [True, False])
def test_the_fast_paths_leave_a_wrong_input_to_the_checks(training):
    """A window with another feature count than the weights is not fed to a kernel
    (which would read past the weights): the general path names the mismatch."""
    net = _net("lstm", "tanh", n_inputs=3)
    x, fut, _ = _data(features=2)
    with pytest.raises(ValueError, match="weight_ih_l0"):
        net.forward(x, fut, training=training, rng=np.random.default_rng(0))


@pytest.mark.parametrize("head,cell", [("linear", "lstm"), ("mlp", "lstm"), ("mlp", "gru"),
                                       ("mlp", "rnn")])
def test_gradients_of_the_whole_net_equal_finite_differences(head, cell):
    """Every weight's gradient, the head's included, against central differences
    of the loss in float64 (the "mlp" decoder: 2 steps of 2 outputs, 1 future input
    each; its ReLU is away from its kink at these points)."""
    net = RecurrentNet(cell, 3, 5, 1, False, 0.0, n_out=4, n_future=2,
                       rng=np.random.default_rng(0), head=head, n_steps=2)
    net.params = {k: v.astype(np.float64) for k, v in net.params.items()}
    x, fut, y = _data(dtype=np.float64)

    def loss():
        pred, _ = net.forward(x, fut, training=True, rng=np.random.default_rng(1))
        return loss_and_grad("mse", pred, y)[0]

    _, grads, _ = _step(net, x, fut, y)
    assert grads.keys() == net.params.keys()
    pick = np.random.default_rng(3)
    for k, w in net.params.items():
        for i in pick.choice(w.size, size=min(w.size, 6), replace=False):
            old = w.flat[i]
            w.flat[i] = old + 1e-6
            up = loss()
            w.flat[i] = old - 1e-6
            down = loss()
            w.flat[i] = old
            np.testing.assert_allclose(grads[k].flat[i], (up - down) / 2e-6,
                                       rtol=1e-5, atol=1e-8, err_msg=k)


def test_the_mlp_decoder_shares_its_weights_over_the_steps():
    """Each forecast step's outputs depend on that step's future inputs only, through
    the same weights: equal context and inputs give equal outputs at every step."""
    net = RecurrentNet("gru", 3, 5, 1, False, 0.0, n_out=6, n_future=6,
                       rng=np.random.default_rng(0), head="mlp", n_steps=3)
    assert net.params["decoder.hidden.weight"].shape == (net.DECODER_SIZE,
                                                         net.CONTEXT_SIZE + 2)
    net.params["decoder.context.bias"][:] = 0.5
    net.params["decoder.context.weight"][:] = 0.0  # the same context at every step
    x = np.zeros((1, 4, 3), np.float32)
    fut = np.tile(np.array([[0.3, -1.0]], np.float32), (1, 3))
    out = net.forward(x, fut, training=False)[0].reshape(3, 2)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    fut[0, 2:4] = [2.0, 1.0]  # change the second step's future inputs only
    out2 = net.forward(x, fut, training=False)[0].reshape(3, 2)
    np.testing.assert_array_equal(out2[[0, 2]], out[[0, 2]])
    assert np.any(out2[1] != out[1])


def test_weight_averaging_keeps_the_average_and_none_keeps_the_raw_weights():
    """The fitted weights are the optimizer's moving average of the best epoch (or
    the raw weights with weight_averaging=None), and the validation curve is that
    of the average."""
    from tsrnn import TSRNNRegressor
    from tsrnn.datasets import load_air_passengers

    y = load_air_passengers()
    kw = dict(lookback=12, horizon=3, max_epochs=6, random_state=0, patience=100)
    avg = TSRNNRegressor(**kw).fit(y)
    raw = TSRNNRegressor(weight_averaging=None, **kw).fit(y)
    # the same raw steps: the training curves agree, the kept weights do not
    np.testing.assert_allclose(avg.loss_curve_, raw.loss_curve_, rtol=1e-6)
    assert not np.allclose(avg.validation_loss_curve_, raw.validation_loss_curve_)
    assert "average/weight_ih_l0" not in raw.training_state_.optimizer
    # without validation, the weights kept are the average after the last step
    end = TSRNNRegressor(early_stopping=False, **kw).fit(y)
    last = {k[len("average/"):]: v for k, v in end.training_state_.optimizer.items()
            if k.startswith("average/")}
    assert set(last) == set(end.net_.params)
    for k, v in end.net_.params.items():
        np.testing.assert_array_equal(v, last[k])
