"""The CUDA kernels against the CPU kernels: forward outputs, final states, every
gradient, dx and dstate, for every cell, stacked, bidirectional and ragged, float32
and float64.

Without a GPU these run on numba's CUDA simulator (set in conftest.py), on small
shapes, with the threads per block patched small so that every multi-thread and
multi-block path runs; on a machine with a GPU they run there unchanged.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from tsrnn import _config
from tsrnn import functional as F
from tsrnn.backend import cuda_available

pytestmark = pytest.mark.skipif(not cuda_available(), reason="no GPU and no simulator")

from conftest import CELL_CASES, random_state  # noqa: E402

CONFIGS = {  # name: (num_layers, bidirectional, ragged)
    "single": (1, False, False),
    "stacked": (2, False, False),
    "bidirectional": (1, True, False),
    "ragged": (1, False, True),
}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """On the simulator: 16 threads per block (so a thread loops over several gate
    rows), 4 x 4 product tiles, and tiles of 2 batch rows (a partial last tile)."""
    from numba import config

    if config.ENABLE_CUDASIM:
        monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 16)
        monkeypatch.setattr(_config, "CUDA_TILE_ROWS", 2)
        monkeypatch.setattr(_config, "CUDA_TARGET_BLOCKS", 1)


def _run(device, cell, nl, x, p, state, lengths, num_layers, bidir, dout, dstate):
    out, st, cache = F.forward(cell, x, p, state=state, lengths=lengths,
                               num_layers=num_layers, bidirectional=bidir,
                               nonlinearity=nl, training=True, device=device)
    grads, dx, dst = F.backward(cache, dout, dstate)
    return out, st, grads, dx, dst


def _flat(st):
    return list(st) if isinstance(st, tuple) else [st]


# float64 once per cell; the recurrent weights in shared memory, or (stacked and
# ragged) read from global memory.
KERNEL_CASES = [(c, n, "single", np.float64) for c, n in CELL_CASES] + [
    (c, n, config, np.float32) for c, n in CELL_CASES for config in CONFIGS]


@pytest.mark.parametrize("cell,nl,config,dtype", KERNEL_CASES)
def test_gpu_kernels_equal_cpu_kernels(cell, nl, config, dtype, rng, monkeypatch):
    num_layers, bidir, ragged = CONFIGS[config]
    if config in ("stacked", "ragged"):
        monkeypatch.setattr(_config, "CUDA_SHARED_BYTES", 0)
    B, T, Fin, H = 3, 4, 2, 5
    S = num_layers * (2 if bidir else 1)
    x = rng.standard_normal((B, T, Fin)).astype(dtype)
    p = F.init_params(cell, Fin, H, num_layers=num_layers, bidirectional=bidir,
                      dtype=dtype, seed=1)
    state = random_state(cell, S, B, H, rng, dtype)
    lengths = np.array([4, 2, 3]) if ragged else None
    dout = rng.standard_normal((B, T, H * (2 if bidir else 1))).astype(dtype)
    dstate = random_state(cell, S, B, H, rng, dtype)
    cpu = _run("cpu", cell, nl, x, p, state, lengths, num_layers, bidir, dout, dstate)
    gpu = _run("cuda", cell, nl, x, p, state, lengths, num_layers, bidir, dout, dstate)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(gpu[0], cpu[0], **tol, err_msg="out")
    for a, b in zip(_flat(gpu[1]), _flat(cpu[1])):
        np.testing.assert_allclose(a, b, **tol, err_msg="final state")
    assert list(gpu[2]) == list(cpu[2])
    for k in cpu[2]:
        assert gpu[2][k].dtype == dtype
        np.testing.assert_allclose(gpu[2][k], cpu[2][k], **tol, err_msg=k)
    np.testing.assert_allclose(gpu[3], cpu[3], **tol, err_msg="dx")
    for a, b in zip(_flat(gpu[4]), _flat(cpu[4])):
        np.testing.assert_allclose(a, b, **tol, err_msg="dstate")
    if ragged:  # outputs past each row's length are zero on the GPU too
        assert not gpu[0][1, 2:].any()


def test_gpu_inference_without_cache_equals_training_forward(rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    p = F.init_params("lstm", 2, 4, seed=0)
    a, sa, cache = F.forward("lstm", x, p, device="cuda")
    b, sb, _ = F.forward("lstm", x, p, device="cuda", training=True)
    assert cache is None
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa[0], sb[0])


# ------------------------------------------------------------- device pieces
@pytest.mark.parametrize("a_t,b_t", [(False, False), (True, False), (False, True),
                                     (True, True)])
def test_matmul_equals_numpy_with_split_sums_bias_and_accumulation(a_t, b_t, rng,
                                                                   monkeypatch):
    from numba import cuda

    from tsrnn.kernels.cuda.linalg import col_sum, matmul, split_k

    monkeypatch.setattr(_config, "CUDA_TARGET_BLOCKS", 64)  # long k: split in parts
    M, K, N = 5, 37, 3
    A = rng.standard_normal((M, K))
    B = rng.standard_normal((K, N))
    bias = rng.standard_normal(N)
    start = rng.standard_normal((M, N))
    assert split_k(M, N, K) > 1
    a = cuda.to_device(np.ascontiguousarray(A.T if a_t else A))
    b = cuda.to_device(np.ascontiguousarray(B.T if b_t else B))
    got = matmul(a, b, a_t=a_t, b_t=b_t).copy_to_host()
    np.testing.assert_allclose(got, A @ B, rtol=1e-12)
    out = cuda.to_device(start)
    matmul(a, b, out, a_t=a_t, b_t=b_t, bias=cuda.to_device(bias), accumulate=True)
    np.testing.assert_allclose(out.copy_to_host(), start + A @ B + bias, rtol=1e-12)
    np.testing.assert_allclose(col_sum(cuda.to_device(A)).copy_to_host(), A.sum(axis=0),
                               rtol=1e-12)


def test_device_batches_are_the_cpu_batches_bit_for_bit(rng):
    from numba import cuda

    from tsrnn.data import WindowBatches, training_batch
    from tsrnn.kernels.cuda.training import window_batch

    values = (rng.standard_normal((60, 3)) * 5 + 10).astype(np.float32)
    values[20:30, 0] = 7.0  # a flat window: its scale is the floor
    starts = np.array([0, 9, 17, 20, 33, 40], np.int64)
    spec = WindowBatches(values, starts, 10, 4, 2, np.array([2], np.int64), 3, 0.01, True)
    dev = {"values": cuda.to_device(values), "starts": cuda.to_device(starts),
           "fut_cols": cuda.to_device(spec.fut_cols)}
    order = np.array([5, 0, 3, 2], np.int64)
    x_tm, y, f = window_batch(spec, dev, cuda.to_device(order), 1, 3)
    x, yw, fw = training_batch(values, starts[order[1:4]], 10, 4, 2, spec.fut_cols, 3, 0.01,
                               True)
    np.testing.assert_array_equal(x_tm.copy_to_host().transpose(1, 0, 2), x)
    np.testing.assert_array_equal(y.copy_to_host(), yw.reshape(3, -1))
    np.testing.assert_array_equal(f.copy_to_host(), fw.reshape(3, -1))


@pytest.mark.parametrize("kind,quantiles", [("mse", None), ("mae", None), ("huber", None),
                                            ("mae", (0.1, 0.5, 0.9))])
def test_device_losses_equal_the_cpu_losses(kind, quantiles, rng):
    from numba import cuda

    from tsrnn.kernels.cuda import training as tk
    from tsrnn.losses import loss_and_grad

    Q = len(quantiles) if quantiles else 1
    y = rng.standard_normal((7, 3)).astype(np.float32) * 2
    pred = rng.standard_normal((7, 3 * Q)).astype(np.float32) * 2
    pred[0, 0] = y[0, 0]  # a zero residual (mae's gradient is 0 there)
    value, grad = loss_and_grad(kind, pred, y, quantiles)
    losses = cuda.device_array(2, np.float64)
    dpred = cuda.device_array(pred.shape, np.float32)
    status = cuda.to_device(np.zeros(2, np.int64))
    q = None if quantiles is None else cuda.to_device(np.asarray(quantiles, np.float32))
    tk.loss(kind, cuda.to_device(pred), cuda.to_device(y), q, dpred, losses, 1, status, 1)
    assert losses.copy_to_host()[1] == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(dpred.copy_to_host(), grad, rtol=1e-6, atol=1e-9)
    assert not status.copy_to_host().any()


# -------------------------------------------------------- training on the device
@pytest.fixture
def training_blocks(monkeypatch):
    """Wider blocks for whole fits: the simulator's time grows with blocks x
    barriers, and the tiling itself is tested above."""
    from numba import config

    if config.ENABLE_CUDASIM:
        monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 256)
        monkeypatch.setattr(_config, "CUDA_TILE_ROWS", 8)


def _daily(n=40):
    import pandas as pd

    return pd.Series(np.sin(np.arange(n) / 3.0) + 5,
                     index=pd.date_range("2020-01-01", periods=n, freq="D"))


TRAIN_CASES = {
    # the defaults (mlp head, mae, adam, weight averaging), with known future inputs
    "lstm-defaults": dict(cell="lstm", calendar=["week"]),
    "gru-stacked-linear": dict(cell="gru", num_layers=2, head="linear", loss="mse",
                               optimizer="rmsprop", weight_averaging=None,
                               calendar=["week"]),
    "rnn-quantiles": dict(cell="rnn", head="linear", quantiles=[0.1, 0.5, 0.9],
                          optimizer="sgd", learning_rate=0.05, loss="huber"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_device_training_agrees_with_the_cpu(case, training_blocks, monkeypatch):
    from tsrnn import TSRNNRegressor, device_training

    epochs = []
    real = device_training.DeviceTrainer.train_epoch
    monkeypatch.setattr(device_training.DeviceTrainer, "train_epoch",
                        lambda self, *a: epochs.append(1) or real(self, *a))
    kw = dict(lookback=4, horizon=2, hidden_size=3, max_epochs=2, batch_size=16,
              random_state=0, baseline="last", combine=None, **TRAIN_CASES[case])
    y = _daily()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = TSRNNRegressor(**kw).fit(y)
        gpu = TSRNNRegressor(**kw, device="cuda").fit(y)
    assert len(epochs) == 2  # it trained on the device, not through the host loop
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(gpu.validation_loss_curve_, cpu.validation_loss_curve_,
                               rtol=1e-5)
    np.testing.assert_allclose(gpu.predict().to_numpy(), cpu.predict().to_numpy(),
                               rtol=1e-5)
    assert gpu.training_state_.optimizer["t"] == cpu.training_state_.optimizer["t"]
    # Adam and RMSprop scale each update to about learning_rate whatever the
    # gradient's size, so a gradient near zero that rounds otherwise moves its
    # weight by up to that much: weights agree to a share of one step.
    for k, v in cpu.net_.params.items():
        np.testing.assert_allclose(gpu.net_.params[k], v, rtol=1e-4,
                                   atol=0.1 * kw.get("learning_rate", 3e-3), err_msg=k)


def test_device_training_fails_like_the_cpu_on_divergence(training_blocks, rng):
    from tsrnn import TSRNNRegressor

    X = rng.standard_normal((40, 4, 1))
    y = X[:, -1, 0] * 2
    kw = dict(cell="gru", hidden_size=3, head="linear", loss="mse", learning_rate=1e12,
              clip_norm=None, max_epochs=2, batch_size=16, random_state=0)
    errors, models = [], []
    for device in ("cpu", "cuda"):
        m = TSRNNRegressor(**kw, device=device)
        with pytest.raises(FloatingPointError) as e, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, y)
        errors.append(str(e.value))
        models.append(m)
    assert errors[0] == errors[1]
    for k, v in models[0].net_.params.items():  # the last finite weights, on both
        assert np.isfinite(models[1].net_.params[k]).all()
        np.testing.assert_allclose(models[1].net_.params[k], v, rtol=1e-4, atol=1e-6)


def test_import_tsrnn_does_not_import_numba_cuda():
    code = ("import sys, tsrnn; from tsrnn import TSRNNRegressor, functional; "
            "print('numba.cuda' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.stdout.strip() == "False", r.stderr
