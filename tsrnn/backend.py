"""Device selection: "cpu" | "cuda" | "auto".

This is the only module that touches ``numba.cuda``, and only when a GPU is asked for,
so ``import tsrnn`` never pays for (or fails on) the CUDA toolchain.
"""

from __future__ import annotations

_DEVICES = ("cpu", "cuda", "auto")


def cuda_available() -> bool:
    """True when numba can see a usable NVIDIA GPU (imports numba.cuda on first call)."""
    try:
        from numba import cuda
    except Exception:  # numba-cuda missing or broken: treat as no GPU
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def resolve_device(device: str, *, name: str = "device") -> str:
    """Map a user's ``device`` argument to "cpu" or "cuda", or raise a clear error."""
    if device not in _DEVICES:
        raise ValueError(
            f"The {name!r} parameter must be one of {list(_DEVICES)}. Got {device!r} instead."
        )
    if device == "cpu":
        return "cpu"
    if device == "auto":
        return "cuda" if _cuda_backend_ready() else "cpu"
    _require_cuda()
    return "cuda"


def _cuda_backend_ready() -> bool:
    """A GPU the kernels can use. "auto" never picks numba's CUDA *simulator*
    (NUMBA_ENABLE_CUDASIM=1, for tests): it is thousands of times slower than the
    CPU kernels; device="cuda" does run on it."""
    if not cuda_available():
        return False
    from numba import config

    return not config.ENABLE_CUDASIM


def _require_cuda() -> None:
    if not cuda_available():
        raise RuntimeError(
            "device='cuda' was requested but numba finds no usable NVIDIA GPU. Install "
            "the CUDA extra (pip install 'tsrnn[cuda]', which brings numba-cuda) on a "
            "machine with an NVIDIA driver, or use device='cpu' or device='auto'."
        )
