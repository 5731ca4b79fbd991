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
    from numba import config

    if config.ENABLE_CUDASIM:  # 2 threads per row over 5 hidden units; 2x2 tiles
        monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 4)


def _run(device, cell, nl, x, p, state, lengths, num_layers, bidir, dout, dstate):
    out, st, cache = F.forward(cell, x, p, state=state, lengths=lengths,
                               num_layers=num_layers, bidirectional=bidir,
                               nonlinearity=nl, training=True, device=device)
    grads, dx, dst = F.backward(cache, dout, dstate)
    return out, st, grads, dx, dst


def _flat(st):
    return list(st) if isinstance(st, tuple) else [st]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("cell,nl", CELL_CASES)
def test_gpu_kernels_equal_cpu_kernels(cell, nl, config, dtype, rng):
    num_layers, bidir, ragged = CONFIGS[config]
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


def test_estimator_trains_and_predicts_on_the_gpu_like_on_the_cpu():
    import pandas as pd

    from tsrnn import TSRNNRegressor

    y = pd.Series(np.sin(np.arange(40) / 3.0) + 5,
                  index=pd.date_range("2020-01-01", periods=40, freq="D"))
    kw = dict(cell="gru", lookback=4, horizon=2, hidden_size=3, max_epochs=2,
              batch_size=16, random_state=0, baseline="last")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = TSRNNRegressor(**kw).fit(y)
        gpu = TSRNNRegressor(**kw, device="cuda").fit(y)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(gpu.predict().to_numpy(), cpu.predict().to_numpy(),
                               rtol=1e-4)


def test_import_tsrnn_does_not_import_numba_cuda():
    code = ("import sys, tsrnn; from tsrnn import TSRNNRegressor, functional; "
            "print('numba.cuda' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.stdout.strip() == "False", r.stderr
