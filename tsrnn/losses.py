"""Training losses: each a function ``(pred, y, n) -> (loss, dloss/dpred)``, looked up
by name in :data:`LOSS_FUNCTIONS`, as scikit-learn's ``LOSS_FUNCTIONS``.

Every loss is the sum of per-entry terms divided by ``n``, so that the losses of
parts of a batch (the shards of a threaded training step) add up to the batch's mean.
"""

from __future__ import annotations

import numpy as np


def squared_error(r: np.ndarray, n: int):
    """Mean squared error of the residuals ``r = pred - y``."""
    return float(np.sum(r * r) / n), (2.0 / n) * r


def absolute_error(r: np.ndarray, n: int):
    """Mean absolute error: the forecast becomes a median."""
    return float(np.sum(np.abs(r)) / n), np.sign(r) / n


def huber(r: np.ndarray, n: int):
    """Huber loss with delta 1: squared near zero, absolute beyond."""
    a = np.abs(r)
    quad = a <= 1.0
    loss = np.where(quad, 0.5 * r * r, a - 0.5)
    return float(np.sum(loss) / n), np.where(quad, r, np.sign(r)) / n


#: Point losses by the name ``TSRNNRegressor(loss=...)`` takes.
LOSS_FUNCTIONS = {"mse": squared_error, "mae": absolute_error, "huber": huber}


def pinball(pred: np.ndarray, y: np.ndarray, quantiles, n_rows, total_rows=None):
    """Pinball loss averaged over the Q ``quantiles``; ``pred`` holds Q outputs per
    entry of ``y`` (last axis fastest)."""
    q = np.asarray(quantiles, dtype=pred.dtype)
    p = pred.reshape(y.shape[0], -1, len(q))
    r = y.reshape(y.shape[0], -1, 1) - p  # > 0: under-forecast, costs q per unit
    n = _mean_count(p.size, n_rows, total_rows)
    loss = np.sum(np.maximum(q * r, (q - 1) * r)) / n
    grad = np.where(r > 0, -q, 1 - q) / n
    return float(loss), grad.reshape(pred.shape).astype(pred.dtype, copy=False)


def loss_and_grad(kind: str, pred: np.ndarray, y: np.ndarray, quantiles=None,
                  total_rows=None):
    """Mean loss over all entries and its gradient with respect to ``pred``.

    With ``quantiles`` (Q levels), ``pred`` holds Q outputs per entry of ``y``
    (last axis fastest) and the loss is the pinball loss averaged over them.
    ``total_rows``: ``pred`` and ``y`` are some rows of a batch of that many; the
    loss and gradient are then this part's share of the batch's mean (shares add up
    to it).
    """
    if quantiles is not None and len(quantiles):
        return pinball(pred, y, quantiles, len(y), total_rows)
    r = pred - y
    return LOSS_FUNCTIONS[kind](r, _mean_count(r.size, len(y), total_rows))


def _mean_count(size, rows, total_rows):
    """How many entries a batch's mean is over: ``size`` for ``rows`` rows, scaled
    to ``total_rows`` when these rows are a part of the batch."""
    return size if total_rows is None else size // max(rows, 1) * total_rows
