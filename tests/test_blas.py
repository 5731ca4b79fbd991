"""The gemm the compiled kernels call (tsrnn.kernels.cpu.blas), and its fallback."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from tsrnn.kernels.cpu import blas


@njit
def _gemm(a, b, c, trans_a, trans_b, beta):
    blas.gemm(a, b, c, trans_a, trans_b, beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_gemm_equals_numpy(dtype, trans_a, trans_b, beta):
    rng = np.random.default_rng(0)
    m, k, n = 5, 7, 3
    a = rng.normal(size=(k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.normal(size=(n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.normal(size=(m, n)).astype(dtype)
    if beta == 0.0:
        c[0, 0] = np.nan  # beta=0 overwrites: the old values are never read
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if beta:
        expected = expected + beta * c
    _gemm(a, b, c, trans_a, trans_b, beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


def test_gemm_empty_and_mismatched_shapes():
    c = np.ones((2, 3))
    _gemm(np.zeros((2, 0)), np.zeros((0, 3)), c, False, False, 1.0)  # k = 0: c unchanged
    np.testing.assert_array_equal(c, 1.0)
    _gemm(np.zeros((2, 0)), np.zeros((0, 3)), c, False, False, 0.0)
    np.testing.assert_array_equal(c, 0.0)
    _gemm(np.zeros((0, 4)), np.zeros((4, 3)), np.zeros((0, 3)), False, False, 1.0)
    with pytest.raises(ValueError, match="shapes do not match"):
        _gemm(np.zeros((2, 4)), np.zeros((5, 3)), c, False, False, 1.0)


def test_fallback_gemm_gives_the_same_kernels():
    """With TSRNN_GEMM=numba (what happens where numpy has no ILP64 OpenBLAS) the
    kernels call numba's np.dot through the same symbol: same outputs and
    gradients, in a fresh process."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from tsrnn import functional as F
        from tsrnn.kernels.cpu import blas
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 9, 20))
        p = F.init_params("lstm", 20, 40, num_layers=2, dtype=np.float64, seed=0)
        out, state, cache = F.forward("lstm", x, p, num_layers=2, training=True)
        grads, dx, _ = F.backward(cache, np.ones_like(out))
        np.savez(sys.argv[1], out=out, dx=dx, src=blas.GEMM_SOURCE,
                 **{k: v for k, v in grads.items()})
    """)
    results = {}
    for mode in ("", "numba"):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tsrnn_gemm_{mode}{os.getpid()}.npz")
        env = {**os.environ, "TSRNN_GEMM": mode}
        subprocess.run([sys.executable, "-c", script, path], env=env, check=True)
        with np.load(path) as f:
            results[mode] = {k: f[k] for k in f.files}
        os.remove(path)
    assert "fallback" in str(results["numba"]["src"])
    assert "fallback" not in str(results[""]["src"])
    for key, value in results[""].items():
        if key != "src":
            np.testing.assert_allclose(results["numba"][key], value, rtol=1e-10, atol=1e-12)


def test_every_product_site_shares_one_compiled_gemm_per_dtype():
    """numba compiles a separate copy of a function for each combination of literal
    True/False arguments (and of omitted defaults): three copies of gemm cost ~1 s of
    a cold first fit. Fresh, uncached copies of every caller of gemm, each taking its
    gemm branch, must resolve to one float32 signature."""
    from tsrnn.kernels.cpu import linalg

    rng = np.random.default_rng(0)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def fresh(fn):
        return njit(error_model="numpy")(fn.py_func)

    fresh(linalg.matmul_acc)(f32(32, 32), f32(32, 128), f32(32, 128))
    fresh(linalg.matmul_acc_t)(f32(16, 256), f32(1024, 256), f32(16, 1024))
    fresh(linalg.sum_outer)(f32(5, 32, 64), f32(6, 32, 16))  # per step
    fresh(linalg.sum_outer)(f32(5, 32, 64), f32(6, 32, 1))  # one product
    fresh(linalg.input_projection)(f32(5, 8, 16), f32(64, 16), f32(64))
    fresh(linalg.accumulate_outer)(f32(32, 64), f32(32, 16), f32(16, 64))
    sigs = {s for s in blas.gemm.signatures if str(s[0].dtype) == "float32"}
    assert len(sigs) == 1, sigs
