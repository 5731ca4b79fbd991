"""tsrnn: small, fast, reproducible RNN/LSTM/GRU forecasters compiled with Numba."""

__version__ = "0.1.0"

from tsrnn import functional  # noqa: E402  (kernels only; no pandas/sklearn import)

__all__ = ["__version__", "functional"]
