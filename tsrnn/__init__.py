"""tsrnn: small, fast, reproducible RNN/LSTM/GRU forecasters compiled with Numba.

``import tsrnn`` loads only the kernels; the estimator (which needs pandas and
scikit-learn) is imported on first use of ``tsrnn.TSRNNRegressor``.
"""

__version__ = "0.1.0"

from tsrnn import functional  # noqa: E402

__all__ = ["BacktestResult", "TSRNNRegressor", "__version__", "backtest", "functional",
           "make_windows"]

# name -> module, imported on first use (they need pandas and scikit-learn)
_LAZY = {"TSRNNRegressor": "tsrnn.estimator", "backtest": "tsrnn.backtesting",
         "BacktestResult": "tsrnn.backtesting", "make_windows": "tsrnn.data"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tsrnn' has no attribute {name!r}")
