"""Stateful training (truncated BPTT along series): the invariants of the literature,
in float64, and the estimator's stateful mode end to end."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn import functional as F
from tsrnn.losses import loss_and_grad
from tsrnn.network import RecurrentNet
from tsrnn.stateful import Streams, StreamTrainer, build_streams, chunk_step, origin_batch

H_OUT = 3  # forecast horizon of the tests' networks


def _net(cell, head="mlp", seed=0):
    rng = np.random.default_rng(seed)
    return RecurrentNet(cell, 2, 5, 1, False, 0.0, n_out=H_OUT, n_future=0, rng=rng,
                        dtype=np.float64, head=head, n_steps=H_OUT)


def _series(n=40, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.column_stack([np.sin(t / 3) + 0.1 * rng.normal(size=n),
                            np.cos(t / 5)]).astype(np.float64)


def _streams(values, chunk, lookback=4, batch_size=1):
    return build_streams(values, np.array([0, len(values)]), None, lookback=lookback,
                         horizon=H_OUT, n_targets=1, fut_cols=[], chunk=chunk,
                         batch_size=batch_size, validation_fraction=0.0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_chunks_with_carried_state_equal_one_pass(cell):
    net = _net(cell)
    x = _series()[None]
    out, st, _ = F.forward(cell, x, net.rnn_params())
    state, outs = None, []
    for lo in range(0, x.shape[1], 7):
        o, state, _ = F.forward(cell, x[:, lo : lo + 7], net.rnn_params(), state=state)
        outs.append(o)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), out, rtol=1e-12)
    for a, b in zip(np.atleast_1d(state) if cell != "lstm" else state,
                    np.atleast_1d(st) if cell != "lstm" else st):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _chunk_loss(net, x, state, origins, y):
    out, _, _ = F.forward(net.cell, x, net.rnn_params(), state=state)
    pred, _ = net.head_forward(out[origins], None)
    return loss_and_grad("mse", pred, y)[0]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_gradient_is_cut_at_the_chunk_edge(cell):
    """Within a chunk the gradient is the finite difference of the chunk's loss with
    its incoming state held fixed; the path through the earlier chunk is cut (the
    difference that recomputes that state differs)."""
    net = _net(cell)
    values = _series()
    x1, x2 = values[None, :12], values[None, 12:24]
    _, state, _ = F.forward(cell, x1, net.rnn_params())
    origins = np.ones((1, 12), bool)
    _, y = origin_batch(_streams(values, 12), np.arange(12, 24))
    _, grads, _ = chunk_step(net, x2, np.array([12]), state, origins, None, y, "mse",
                             None, None)
    eps, k = 1e-6, "weight_hh_l0"
    w = net.params[k]
    for idx in [(0, 0), (2, 1), (w.shape[0] - 1, 4)]:
        old = w[idx]
        w[idx] = old + eps
        up = _chunk_loss(net, x2, state, origins, y)
        up_full = _chunk_loss(net, x2, F.forward(cell, x1, net.rnn_params())[1], origins, y)
        w[idx] = old - eps
        down = _chunk_loss(net, x2, state, origins, y)
        down_full = _chunk_loss(net, x2, F.forward(cell, x1, net.rnn_params())[1],
                                origins, y)
        w[idx] = old
        np.testing.assert_allclose(grads[k][idx], (up - down) / (2 * eps), rtol=1e-5,
                                   atol=1e-9)
        assert abs(grads[k][idx] - (up_full - down_full) / (2 * eps)) > 1e-7


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_chunk_as_long_as_the_series_is_full_bptt(cell):
    """tbptt_steps >= the series' length: one epoch of stateful training is one step
    of full BPTT over the series, the loss at every origin."""
    values = _series(30)
    S = _streams(values, chunk=100, lookback=4)
    net, ref = _net(cell), _net(cell)
    trainer = StreamTrainer(net, S, batch_size=4, learning_rate=0.1, optimizer="sgd",
                            weight_decay=0.0, clip_norm=None, loss="mse", tbptt_steps=None,
                            rng=np.random.default_rng(0))
    trainer.train_epoch(np.arange(len(S.begin)), 1)
    out, _, cache = F.forward(cell, values[None], ref.rnn_params(), training=True)
    rows = np.arange(len(values) - H_OUT)
    _, y = origin_batch(S, rows)
    pred, saved = ref.head_forward(out[0, rows], None)
    _, dpred = loss_and_grad("mse", pred, y)
    grads, dfeat = ref.head_backward(saved, dpred)
    dout = np.zeros_like(out)
    dout[0, rows] = dfeat
    grads.update(F.backward(cache, dout)[0])
    for k, v in ref.params.items():
        np.testing.assert_allclose(net.params[k], v - 0.1 * grads[k], rtol=1e-10,
                                   atol=1e-12)


def test_streams_of_different_lengths_in_one_batch():
    """Two streams of other lengths in one chunk: the batch's gradient is the
    origin-weighted mean of each stream's own."""
    net = _net("gru")
    values = _series(40)
    a, b = values[:10], values[20:26]
    x = np.zeros((2, 10, 2))
    x[0], x[1, :6] = a, b
    origins = np.zeros((2, 10), bool)
    origins[0, :7], origins[1, :3] = True, True
    S = _streams(values, 10)
    _, ya = origin_batch(S, np.arange(0, 7))
    _, yb = origin_batch(S, np.arange(20, 23))
    _, both, _ = chunk_step(net, x, np.array([10, 6]), None, origins, None,
                            np.vstack([ya, yb]), "mse", None, None)
    _, ga, _ = chunk_step(net, x[:1], np.array([10]), None, origins[:1], None, ya,
                          "mse", None, None)
    _, gb, _ = chunk_step(net, x[1:, :6], np.array([6]), None, origins[1:, :6], None,
                          yb, "mse", None, None)
    for k in both:
        np.testing.assert_allclose(both[k], (7 * ga[k] + 3 * gb[k]) / 10, rtol=1e-10,
                                   atol=1e-13)


def test_a_gap_resets_the_stream():
    values = _series(60)
    bad = np.zeros(60, bool)
    bad[25] = True
    S = build_streams(values, np.array([0, 60]), bad, lookback=4, horizon=H_OUT,
                      n_targets=1, fut_cols=[], chunk=8, batch_size=4,
                      validation_fraction=0.0)
    assert isinstance(S, Streams)
    for b, e in zip(S.begin, S.end):
        assert not (b <= 25 < e)  # no stream runs through the missing row
    assert not S.ok[22:26].any() and S.ok[26]


def _fit(y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TSRNNRegressor(**{"lookback": 24, "horizon": 6, "stateful": True,
                                 "window_scaling": False, "tbptt_steps": 12,
                                 "hidden_size": 8, "random_state": 0, **kw}).fit(y)


def test_stateful_estimator_forecasts_and_resumes_from_a_checkpoint(tmp_path):
    from tsrnn.datasets import load_air_passengers

    y = load_air_passengers()
    full = _fit(y, max_epochs=6, patience=100)
    fc = full.predict(level=[80])
    assert len(fc) == 6 and np.isfinite(fc.to_numpy()).all()
    ck = tmp_path / "ck.tsrnn"
    _fit(y, max_epochs=3, patience=100, checkpoint_path=ck)
    resumed = _fit(y, max_epochs=6, patience=100, checkpoint_path=ck)
    assert resumed.loss_curve_ == full.loss_curve_
    pd.testing.assert_frame_equal(resumed.predict(level=[80]), fc)


def test_stateful_needs_a_last_value_baseline_and_series_scaling():
    from tsrnn.datasets import load_air_passengers

    with pytest.raises(ValueError, match="window_scaling=False"):
        TSRNNRegressor(stateful=True).fit(load_air_passengers())
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="stateful=True.*array input"):
        TSRNNRegressor(stateful=True, window_scaling=False).fit(
            rng.normal(size=(20, 5, 1)), rng.normal(size=20))


def test_chunks_that_only_warm_up_are_skipped():
    """A batch whose first chunks hold no origin (every stream still warming up)
    trains on the later ones."""
    values = _series(40)
    S = _streams(values, chunk=5)
    S.begin[:], S.loss_from[:], S.end[:] = 0, 20, 40
    net = _net("lstm")
    before = {k: v.copy() for k, v in net.params.items()}
    trainer = StreamTrainer(net, S, batch_size=4, learning_rate=0.1, optimizer="sgd",
                            weight_decay=0.0, clip_norm=None, loss="mse", tbptt_steps=None,
                            rng=np.random.default_rng(0))
    loss = trainer.train_epoch(np.arange(len(S.begin)), 1)
    assert np.isfinite(loss) and loss > 0
    assert any(not np.array_equal(before[k], v) for k, v in net.params.items())


def test_stateful_never_trains_on_the_padding_of_short_series():
    """In a long frame, a series shorter than lookback + horizon is padded at the
    front: its padding is no data, so no stateful origin forecasts it."""
    from tsrnn.routes import PanelRoute

    rng = np.random.default_rng(0)
    long = pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": np.arange(n),
                                    "y": rng.normal(size=n)})
                      for k, n in enumerate([80, 12])], ignore_index=True)
    est = TSRNNRegressor(lookback=10, horizon=3, stateful=True, window_scaling=False,
                         tbptt_steps=5, early_stopping=False)
    route = PanelRoute(lookback=10, horizon=3, strategy="direct", scaler="standard",
                       quantiles=[])
    S = route.prepare(est, long, None, None, None).streams
    padding = {80}  # the short series (12 rows) gets one row: 13 = lookback + horizon
    origins = [t for s in range(len(S.begin))
               for t in range(S.loss_from[s], S.end[s])
               if t + S.horizon < S.limit[s] and S.ok[t]]
    assert origins and not any(set(range(t, t + 4)) & padding for t in origins)


def test_validation_of_many_series_in_one_pass_equals_one_at_a_time():
    """The validation loss of series run together (ragged) is the origin-weighted
    mean of each series' own."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(130, 2))
    indptr = np.array([0, 60, 130])
    S = build_streams(values, indptr, None, lookback=4, horizon=H_OUT, n_targets=1,
                      fut_cols=[], chunk=8, batch_size=2, validation_fraction=0.3)
    trainer = StreamTrainer(_net("gru"), S, batch_size=2, learning_rate=0.1,
                            optimizer="sgd", weight_decay=0.0, clip_norm=None,
                            loss="mse", tbptt_steps=None, rng=np.random.default_rng(0))
    n = [int(S.val_to[i] - S.val_from[i]) for i in range(2)]
    alone = [trainer.evaluate([i]) for i in range(2)]
    np.testing.assert_allclose(trainer.evaluate([0, 1]),
                               (alone[0] * n[0] + alone[1] * n[1]) / sum(n), rtol=1e-10)
