"""Compiled kernels: ``cpu`` (``@njit``) and, lazily, ``cuda`` (``numba.cuda``)."""
