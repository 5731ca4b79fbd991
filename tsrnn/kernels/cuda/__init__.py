"""CUDA kernels (``numba.cuda``), the GPU twin of :mod:`tsrnn.kernels.cpu`.

Same modules, same function names, same arguments and the same time-major layout:

``<cell>_forward(x, w_ih, w_hh, b_ih, b_hh, h0, [c0,] lengths, keep, ...)``
``<cell>_backward(x, w_ih, w_hh, lengths, <cache arrays>, dout, dh_n, [dc_n])``

The forward functions return ``out`` on the host and leave everything the backward
pass needs (states, gates) on the device; the backward functions return host arrays.
Under each pair is its device-array twin (``<cell>_forward_dev``,
``<cell>_backward_dev``), which device-resident training calls
(:mod:`tsrnn.device_training`). Inside a layer, the whole time loop runs in one
launch, a block per tile of batch rows (:mod:`tsrnn.kernels.cuda.tiles`); the
products around it (input projections, weight and input gradients) are tiled
matrix products over all steps at once (:func:`tsrnn.kernels.cuda.linalg.matmul`).
Every sum is taken in a fixed order: deterministic, no atomics.

Importing this package imports ``numba.cuda``; ``tsrnn.functional`` does so only for
``device="cuda"``.
"""

from tsrnn.kernels.cuda.gru import gru_backward, gru_forward
from tsrnn.kernels.cuda.linalg import reverse_padded
from tsrnn.kernels.cuda.lstm import lstm_backward, lstm_forward
from tsrnn.kernels.cuda.rnn import rnn_backward, rnn_forward

__all__ = [
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "reverse_padded",
    "rnn_backward",
    "rnn_forward",
]
