"""tsrnn: small, fast, reproducible RNN/LSTM/GRU forecasters compiled with Numba.

``import tsrnn`` loads only the kernels; the estimator (which needs pandas and
scikit-learn) is imported on first use of ``tsrnn.TSRNNRegressor``.
"""

__version__ = "0.1.0"

from tsrnn import functional  # noqa: E402

__all__ = ["TSRNNRegressor", "__version__", "functional"]


def __getattr__(name):
    if name == "TSRNNRegressor":
        from tsrnn.estimator import TSRNNRegressor

        return TSRNNRegressor
    raise AttributeError(f"module 'tsrnn' has no attribute {name!r}")
