"""A batch split over threads (tsrnn.parallel) gives the results of one whole batch."""

import threading

import numpy as np
import pytest
from conftest import CELL_CASES, quiet, random_state
from reference import forward_backward

from tsrnn import functional as F
from tsrnn import parallel
from tsrnn.network import RecurrentNet


@pytest.fixture
def threads(monkeypatch):
    """``threads(n)``: n threads, and shards as small as one row."""

    def set_threads(n):
        monkeypatch.setattr(parallel, "_num_threads", n)
        monkeypatch.setattr(parallel, "SHARD_MIN_WORK", 1)

    return set_threads


def _blas_threads():
    """(library, threads) of every loaded BLAS."""
    from threadpoolctl import threadpool_info

    return [(i["filepath"], i["num_threads"]) for i in threadpool_info()
            if i["user_api"] == "blas"]


def _run(cell, nonlin, x, params, state, lengths, nl, bidir, dout, dstate, dropout=0.0):
    out, st, cache = F.forward(cell, x, params, state=state, lengths=lengths,
                               num_layers=nl, bidirectional=bidir, nonlinearity=nonlin,
                               dropout=dropout, training=True, seed=7)
    grads, dx, dstate0 = F.backward(cache, dout, dstate)
    return out, st, grads, dx, dstate0, len(cache["shards"])


def _flat(*values):
    for v in values:
        if isinstance(v, dict):
            yield from v.values()
        elif isinstance(v, tuple):
            yield from v
        else:
            yield v


@pytest.mark.parametrize("cell,nonlin", CELL_CASES)
@pytest.mark.parametrize("nl,bidir", [(1, False), (2, True)])
def test_sharded_batch_equals_whole_batch(cell, nonlin, nl, bidir, rng, threads):
    B, T, Fin, H = 7, 6, 3, 5
    dt = np.float64
    params = F.init_params(cell, Fin, H, nl, bidir, dtype=dt, seed=rng)
    x = rng.standard_normal((B, T, Fin))
    lengths = np.array([6, 3, 1, 6, 5, 2, 4])
    S = nl * (2 if bidir else 1)
    state = random_state(cell, S, B, H, rng, dt)
    dout = rng.standard_normal((B, T, (2 if bidir else 1) * H))
    dstate = random_state(cell, S, B, H, rng, dt)
    args = (cell, nonlin, x, params, state, lengths, nl, bidir, dout, dstate)

    threads(1)
    whole = _run(*args)
    threads(3)
    split = _run(*args)
    assert whole[-1] == 1 and split[-1] == 3  # the batch really was split
    for a, b in zip(_flat(*whole[:-1]), _flat(*split[:-1]), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    # and both equal the slow reference (the shards' gradients were all added)
    r_grads = forward_backward(cell, x, params, state, lengths, nl, bidir, nonlin,
                               dout=dout, dstate=dstate)[2]
    for k in params:
        np.testing.assert_allclose(split[2][k], r_grads[k], rtol=1e-10, atol=1e-11)


def test_dropout_masks_do_not_depend_on_the_split(rng, threads):
    params = F.init_params("gru", 2, 4, num_layers=3, seed=1)
    x = rng.standard_normal((9, 5, 2)).astype(np.float32)
    dout = rng.standard_normal((9, 5, 4)).astype(np.float32)
    args = ("gru", "tanh", x, params, None, None, 3, False, dout, None)
    threads(1)
    whole = _run(*args, dropout=0.5)
    threads(2)
    split = _run(*args, dropout=0.5)
    assert split[-1] == 2
    np.testing.assert_allclose(split[0], whole[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(split[2]["weight_hh_l0"], whole[2]["weight_hh_l0"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sharded_inference_equals_whole(cell, rng, threads):
    net = RecurrentNet(cell, 2, 6, 1, False, 0.0, n_out=3, n_future=0,
                       rng=np.random.default_rng(0), dtype=np.float64)
    x = rng.standard_normal((11, 8, 2))
    threads(1)
    whole = net.forward(x, None)[0]
    threads(4)
    assert len(parallel.batch_shards(11, 18)) == 4
    np.testing.assert_allclose(net.forward(x, None)[0], whole, rtol=1e-12, atol=1e-14)


def test_batch_shards_cover_the_batch_in_order(monkeypatch):
    monkeypatch.setattr(parallel, "_num_threads", 3)
    monkeypatch.setattr(parallel, "SHARD_MIN_WORK", 100)
    monkeypatch.setattr(parallel, "ROW_WORK", 0)
    assert parallel.batch_shards(10, 100) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert parallel.batch_shards(2, 100) == [slice(0, 1), slice(1, 2)]  # <= threads
    assert parallel.batch_shards(10, 15) == [slice(0, 10)]  # 150: one shard's work
    assert parallel.batch_shards(10, 20) == [slice(0, 5), slice(5, 10)]
    monkeypatch.setattr(parallel, "ROW_WORK", 5)  # work per row that is not gates
    assert parallel.batch_shards(10, 15) == [slice(0, 5), slice(5, 10)]
    monkeypatch.setattr(parallel, "_num_threads", 1)
    assert parallel.batch_shards(1000, 100) == [slice(0, 1000)]


def test_thread_count_from_the_environment():
    assert parallel._threads_from_env({"TSRNN_NUM_THREADS": "3"}) == 3
    assert parallel._threads_from_env({"OMP_NUM_THREADS": "1"}) == 1  # joblib's workers
    assert parallel._threads_from_env({}) >= 1
    with pytest.raises(ValueError, match="TSRNN_NUM_THREADS must be a positive integer"):
        parallel._threads_from_env({"TSRNN_NUM_THREADS": "two"})
    with pytest.raises(ValueError, match="TSRNN_NUM_THREADS"):
        parallel._threads_from_env({"TSRNN_NUM_THREADS": "0"})


def test_an_error_in_a_shard_propagates_and_frees_the_pool(threads):
    threads(2)
    ran = []

    def fn(rows):
        ran.append(rows)
        if rows.start:
            raise RuntimeError("shard failed")
        return rows.start

    with pytest.raises(RuntimeError, match="shard failed"):
        parallel.map_shards(fn, [slice(0, 1), slice(1, 2)])
    assert len(ran) == 2
    assert parallel.map_shards(lambda r: r.start, [slice(0, 1), slice(1, 2)]) == [0, 1]


def test_shards_run_under_the_callers_numpy_error_state(threads):
    """numpy's errstate is context-local: a pool thread would otherwise run with the
    defaults (the training loop ignores overflow in its step and checks the loss)."""
    threads(2)
    with np.errstate(over="ignore", invalid="raise"):
        seen = parallel.map_shards(lambda r: (threading.get_ident(), np.geterr()),
                                   [slice(0, 1), slice(1, 2)])
    assert seen[0][0] != seen[1][0]  # the second shard ran in another thread
    assert all(e["over"] == "ignore" and e["invalid"] == "raise" for _, e in seen)


def test_blas_threads_are_restored_after_a_sharded_call(threads):
    threads(2)
    parallel.map_shards(lambda r: None, [slice(0, 1), slice(1, 2)])  # loads the BLAS
    before = _blas_threads()
    seen = []
    parallel.map_shards(lambda r: seen.append({n for _, n in _blas_threads()}),
                        [slice(0, 1), slice(1, 2)])
    assert seen and all(s == {1} for s in seen)  # one BLAS thread per shard
    assert _blas_threads() == before


def test_a_nested_or_concurrent_call_runs_its_shards_in_turn(threads):
    threads(2)
    idents = []

    def inner(rows):
        idents.append(threading.get_ident())
        return rows.start

    def outer(rows):
        return parallel.map_shards(inner, [slice(0, 1), slice(1, 2)])

    assert parallel.map_shards(outer, [slice(0, 1), slice(1, 2)]) == [[0, 1], [0, 1]]
    assert len(idents) == 4  # no deadlock: the inner calls ran in their callers' threads


def test_training_holds_blas_to_one_thread_and_restores_it(monkeypatch):
    from tsrnn import TSRNNRegressor, training
    from tsrnn.datasets import load_air_passengers

    with parallel.one_blas_thread():  # loads the BLAS libraries numba uses
        pass
    before = _blas_threads()
    seen = []
    train_epoch = training.Trainer.train_epoch

    def spy(self, idx, epoch):
        seen.append({n for _, n in _blas_threads()})
        return train_epoch(self, idx, epoch)

    monkeypatch.setattr(training.Trainer, "train_epoch", spy)
    quiet(TSRNNRegressor(hidden_size=4, lookback=12, horizon=3, max_epochs=2,
                         random_state=0).fit, load_air_passengers())
    assert seen and all(s == {1} for s in seen)
    assert _blas_threads() == before


def _threads_in_worker():
    return parallel.num_threads()


def test_joblib_workers_get_their_share_of_the_cores():
    """joblib's loky workers set OMP_NUM_THREADS to their share of the cores, which
    caps tsrnn's threads there: a grid search with n_jobs does not oversubscribe."""
    import os

    from joblib import Parallel, delayed

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    got = Parallel(n_jobs=2, backend="loky")(delayed(_threads_in_worker)() for _ in range(2))
    assert all(1 <= n <= max(1, cores // 2) for n in got), (got, cores)


def test_overlapping_holds_release_blas_when_the_last_one_ends():
    """Two holds that overlap without nesting (two fits in two threads): the first to
    end must not give the other one BLAS's threads back."""
    with parallel.one_blas_thread():  # loads the BLAS libraries numba uses
        pass
    before = _blas_threads()
    if all(n == 1 for _, n in before):
        pytest.skip("BLAS runs one thread here anyway")
    a, b = parallel.one_blas_thread(), parallel.one_blas_thread()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert {n for _, n in _blas_threads()} == {1}  # b still holds it
    b.__exit__(None, None, None)
    assert _blas_threads() == before


def test_a_nested_hold_neither_relimits_nor_releases_blas(threads, monkeypatch):
    threads(2)
    with parallel.one_blas_thread():  # loads the BLAS libraries numba uses
        pass
    before = _blas_threads()
    calls = []
    limit = parallel._blas.limit
    monkeypatch.setattr(parallel._blas, "limit", lambda **k: calls.append(k) or limit(**k))
    with parallel.one_blas_thread():
        parallel.map_shards(lambda r: None, [slice(0, 1), slice(1, 2)])  # nested hold
        assert {n for _, n in _blas_threads()} == {1}  # still held after it
    assert len(calls) == 1  # the training loop's hold covers its steps' shards
    assert _blas_threads() == before


def test_item_shards_cover_every_item_once(monkeypatch):
    """Contiguous, in order, one per thread (never more than items), and they depend
    only on the item count and the thread count."""
    for threads in (1, 2, 3):
        monkeypatch.setattr(parallel, "_num_threads", threads)
        for n in (0, 1, 2, 5, 1000):
            shards = parallel.item_shards(n)
            assert len(shards) == max(1, min(threads, n))
            covered = [i for s in shards for i in range(s.start, s.stop)]
            assert covered == list(range(n))
