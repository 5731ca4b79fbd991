"""What turns the recurrent layers' final state into the forecast.

Two heads, looked up by name in :data:`HEADS`, each with ``forward`` (outputs, and
what ``backward`` needs) and ``backward`` (weight gradients, gradient of the
final-state features), over the network's ``params`` dict:

- ``"linear"``: one linear map from the final state and all known future inputs,
  flattened, to all outputs;
- ``"mlp"``: a small decoder shared by the forecast steps (neuralforecast's design,
  smaller): a linear map cuts the final state into one context vector per step;
  each step's context and that step's known future inputs go through one hidden
  ReLU layer and a linear output, the same weights for every step, so a future
  input's effect is learned once, not per step, and may be non-linear (demand
  against temperature).

Weights use ``nn.Linear``'s layout and initialisation. ``predict`` is ``forward``
for inference, computed row by row (:func:`tsrnn.kernels.cpu.linalg.rows_affine`) so
that a forecast never depends on the other rows of its batch.
"""

from __future__ import annotations

import numpy as np

from tsrnn.kernels import cpu as _cpu

DECODER_KEYS = ("decoder.context.weight", "decoder.context.bias",
                "decoder.hidden.weight", "decoder.hidden.bias",
                "decoder.out.weight", "decoder.out.bias")
LINEAR_KEYS = ("head.weight", "head.bias")


def init_linear(params, name, n_out, n_in, rng, dtype):
    """PyTorch's nn.Linear weight initialisation, zero bias, into ``params``."""
    bound = 1.0 / np.sqrt(max(n_in, 1))
    params[f"{name}.weight"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype)
    params[f"{name}.bias"] = np.zeros(n_out, dtype=dtype)


class LinearHead:
    keys = LINEAR_KEYS

    @staticmethod
    def forward(p, feats, fut, n_steps, context_size):
        if fut is not None and fut.shape[1]:
            feats = np.concatenate([feats, fut], axis=1)
        return feats @ p["head.weight"].T + p["head.bias"], feats

    @staticmethod
    def predict(p, feats, fut, n_steps, context_size):
        if fut is not None and fut.shape[1]:
            feats = np.concatenate([feats, fut.astype(feats.dtype)], axis=1)
        return _cpu.rows_affine(np.ascontiguousarray(feats), p["head.weight"],
                                p["head.bias"])

    @staticmethod
    def backward(p, saved, dout, context_size):
        feats = saved
        return ({"head.weight": dout.T @ feats, "head.bias": dout.sum(axis=0)},
                dout @ p["head.weight"])


class DecoderHead:
    keys = DECODER_KEYS

    @staticmethod
    def forward(p, feats, fut, n_steps, context_size):
        n, S, c = len(feats), n_steps, context_size
        ctx = feats @ p["decoder.context.weight"].T
        ctx += p["decoder.context.bias"]
        z = ctx.reshape(n * S, c)
        if fut is not None and fut.shape[1]:
            z = np.concatenate([z, fut.reshape(n * S, -1)], axis=1)
        r = _cpu.add_bias_relu(z @ p["decoder.hidden.weight"].T, p["decoder.hidden.bias"])
        out = r @ p["decoder.out.weight"].T
        out += p["decoder.out.bias"]
        return out.reshape(n, -1), (feats, z, r)

    @staticmethod
    def predict(p, feats, fut, n_steps, context_size):
        n, S, c = len(feats), n_steps, context_size
        ctx = _cpu.rows_affine(np.ascontiguousarray(feats), p["decoder.context.weight"],
                               p["decoder.context.bias"])
        z = ctx.reshape(n * S, c)
        if fut is not None and fut.shape[1]:
            z = np.concatenate([z, fut.reshape(n * S, -1).astype(z.dtype)], axis=1)
        r = _cpu.rows_affine(z, p["decoder.hidden.weight"], p["decoder.hidden.bias"])
        np.maximum(r, 0, out=r)  # ReLU; NaN stays NaN
        out = _cpu.rows_affine(r, p["decoder.out.weight"], p["decoder.out.bias"])
        return out.reshape(n, -1)

    @staticmethod
    def backward(p, saved, dout, context_size):
        feats, z, r = saved
        n, c = len(feats), context_size
        d3 = dout.reshape(len(z), -1)  # (steps x windows, outputs per step)
        da = _cpu.relu_backward(np.ascontiguousarray(d3), p["decoder.out.weight"], r)
        ones = np.ones(len(z), dtype=da.dtype)  # sums as products: numpy sums slower
        dctx = (da @ p["decoder.hidden.weight"][:, :c]).reshape(n, -1)
        grads = {"decoder.out.weight": d3.T @ r, "decoder.out.bias": ones @ d3,
                 "decoder.hidden.weight": da.T @ z, "decoder.hidden.bias": ones @ da,
                 "decoder.context.weight": dctx.T @ feats,
                 "decoder.context.bias": dctx.sum(axis=0)}
        return grads, dctx @ p["decoder.context.weight"]


HEADS = {"linear": LinearHead, "mlp": DecoderHead}
