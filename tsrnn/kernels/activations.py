"""Scalar activations shared by every kernel, written once.

``tanh`` and ``sigmoid`` dispatch on the argument's type at compile time:

* float64 uses libm (``math.tanh``), exact to the last bit, so that float64 runs can be
  checked against finite differences and PyTorch to 1e-10;
* float32 uses a branch-free rational approximation (Eigen's ``ptanh_float``: odd
  13th-degree numerator over even 6th-degree denominator, input clamped to +-7.9).
  Its absolute error is below 3e-7, about 2 ulp, and, unlike a libm call, LLVM
  vectorizes it, which matters as much as the matrix products at small hidden sizes.

Where a kernel applies sigmoid and tanh to adjacent gate blocks (the LSTM), it uses
one uniform loop, ``offset + scale * tanh(scale * v)``, with per-column constants from
:func:`gate_scale_offset`: the identity sigmoid(v) = 0.5 + 0.5 tanh(v / 2) that the
float32 ``sigmoid`` below uses too (in float64, through libm's tanh).

Derivatives are taken from the activated values (``1 - y*y``, ``y * (1 - y)``), so
nothing is recomputed in the backward pass.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload, register_jitable

from tsrnn._config import JIT_OPTIONS

_F32 = np.float32
_CLAMP = _F32(7.90531110763549805)
_A1 = _F32(4.89352455891786e-03)
_A3 = _F32(6.37261928875436e-04)
_A5 = _F32(1.48572235717979e-05)
_A7 = _F32(5.12229709037114e-08)
_A9 = _F32(-8.60467152213735e-11)
_A11 = _F32(2.00018790482477e-13)
_A13 = _F32(-2.76076847742355e-16)
_B0 = _F32(4.89352518554385e-03)
_B2 = _F32(2.26843463243900e-03)
_B4 = _F32(1.18534705686654e-04)
_B6 = _F32(1.19825839466702e-06)
_HALF32 = _F32(0.5)


def tanh(x):
    """Hyperbolic tangent (pure-Python fallback; compiled code uses the overload)."""
    return math.tanh(x)


def sigmoid(x):
    """Logistic function (pure-Python fallback; compiled code uses the overload)."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


def relu(x):
    """max(x, 0), NaN-propagating."""
    return x if not x < 0 else x * 0


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@register_jitable
def _tanh_f32(x):
    # Clamp with selects that let NaN through (min/max would turn NaN into +-7.9 and
    # hide a diverging run).
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return p / q


@overload(tanh)
def _ol_tanh(x):
    if _is_f32(x):
        return _tanh_f32

    def impl(x):
        return math.tanh(x)

    return impl


@overload(sigmoid)
def _ol_sigmoid(x):
    if _is_f32(x):

        def impl32(x):
            return _HALF32 + _HALF32 * _tanh_f32(_HALF32 * x)

        return impl32

    def impl(x):
        return 1.0 / (1.0 + math.exp(-x))

    return impl


@overload(relu)
def _ol_relu(x):
    def impl(x):
        return x if not x < 0 else x * 0

    return impl


@njit(inline="always", **JIT_OPTIONS)
def gate_scale_offset(H, n_blocks, tanh_block, dtype):
    """Per-column ``scale`` and ``offset`` of ``n_blocks`` gate blocks of width ``H``:
    0.5 and 0.5 (sigmoid) everywhere but block ``tanh_block``, which gets 1 and 0
    (tanh). Plain loops: ``np.full`` and slice assignment each compile a
    specialisation of their own on a cold start."""
    scale = np.empty(n_blocks * H, dtype=dtype)
    offset = np.empty(n_blocks * H, dtype=dtype)
    for j in range(n_blocks * H):
        sigmoid_col = j // H != tanh_block
        scale[j] = 0.5 if sigmoid_col else 1.0
        offset[j] = 0.5 if sigmoid_col else 0.0
    return scale, offset
