"""CPU kernels (``@njit``, cached on disk). Arrays are time-major: (time, batch, ...).

Every cell module exposes the same two functions:

``<cell>_forward(x, w_ih, w_hh, b_ih, b_hh, h0, [c0,] lengths, keep, ...)``
``<cell>_backward(x, w_ih, w_hh, lengths, <cache arrays>, dout, dh_n, [dc_n])``

and, for inference of a single layer over equal-length rows, row by row,
``<cell>_final_state(x, w_ih, w_hh, b_ih, b_hh, h0, [c0 | use_relu], out)``: the
final state, and every step's output in ``out`` (batch, time, hidden) when it has the
time steps (an empty (batch, 0, hidden) for the final state alone).

``<cell>_backward``, and the GRU's and RNN's ``<cell>_forward``, are Python
functions around one compiled time loop each (``_<cell>_steps``,
``_<cell>_backward_steps``): the products outside the loop (the input projection
before it, the weight and input gradients after it) are compiled functions of
their own, called from Python. Numba optimises a compiled function together with
every compiled function it calls, so a kernel that called them would have them
optimised again inside it (on a cold start, 0.13 s for the LSTM's backward, 0.4 s
for the gradient products), against a few microseconds a call from Python. The
LSTM's forward keeps its projection inside: LLVM compiles its time loop 1.4x
faster so.

The forward pass runs one direction of one layer over all time steps; reverse
directions are run by reversing each sequence within its length first
(``reverse_padded``), so the kernels only ever step forward.

A step's row loops (the activations and the gate gradients, between the step's
matrix products) are either inlined into the kernel or compiled as a function of
their own (``_forward_rows``, ``_backward_rows``), whichever runs faster: LLVM
vectorizes the same loops differently inside a long time loop than on their own.
The GRU's forward and backward and the LSTM's backward run their rows on their own;
the LSTM forward, the RNN and the inference kernels inline them (CHANGELOG.md has
the measurements).
"""

from tsrnn.kernels.cpu.gru import gru_backward, gru_final_state, gru_forward
from tsrnn.kernels.cpu.linalg import (
    add_bias_relu,
    relu_backward,
    reverse_padded,
    rows_affine,
    sum_squares,
)
from tsrnn.kernels.cpu.lstm import lstm_backward, lstm_final_state, lstm_forward
from tsrnn.kernels.cpu.rnn import rnn_backward, rnn_final_state, rnn_forward

__all__ = [
    "add_bias_relu",
    "gru_backward",
    "gru_final_state",
    "gru_forward",
    "lstm_backward",
    "lstm_final_state",
    "lstm_forward",
    "relu_backward",
    "reverse_padded",
    "rows_affine",
    "rnn_backward",
    "rnn_final_state",
    "rnn_forward",
    "sum_squares",
]
