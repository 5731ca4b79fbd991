"""Stateful training: truncated backpropagation through time along whole series.

Each series (or, to fill a batch, a stretch of one) is a *stream* that a batch row
follows chunk by chunk: ``tbptt_steps`` steps at a time, the state at the end of a
chunk the starting state of the stream's next chunk, without gradient (the gradient
is cut at chunk edges). At every step the network's state forecasts the next
``horizon`` values (forking sequences, the MQ-RNN design), so every step of a chunk is
a training example at the cost of one recurrent step, where windowed training pays
``lookback`` steps per target.

The network sees the series scaled per series (no window scaling) and forecasts the
change from the last value, as a windowed model with ``window_scaling=False`` and
``baseline="last"`` does; ``predict`` runs it over the last ``lookback`` rows from a
zero state (the warm-up) and forecasts from the final state. Early stopping
validates on the last ``validation_fraction`` of each series (at least ``horizon``
rows), running the network over the ``lookback`` rows before it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsrnn import functional as F
from tsrnn.data.windows import spread_sample
from tsrnn.losses import loss_and_grad
from tsrnn.training import Trainer


@dataclass
class Streams:
    """Rows of the packed, scaled ``values`` (rows, inputs) that training follows.

    Stream ``s`` runs over rows ``begin[s] .. end[s] - 1``; steps before
    ``loss_from[s]`` only warm its state up; an origin ``t`` is trained on when its
    ``horizon`` targets are rows before ``limit[s]`` (the series' validation part
    starts there) and ``ok[t]`` (no missing value in rows t .. t + horizon). Series
    ``i`` validates on the origins ``val_from[i] .. val_to[i] - 1``, the network run
    from row ``val_begin[i]``."""

    values: np.ndarray
    n_targets: int
    horizon: int
    fut_cols: np.ndarray
    chunk: int
    ok: np.ndarray
    begin: np.ndarray
    loss_from: np.ndarray
    end: np.ndarray
    limit: np.ndarray
    val_begin: np.ndarray
    val_from: np.ndarray
    val_to: np.ndarray


def build_streams(values, indptr, bad, *, lookback, horizon, n_targets, fut_cols,
                  chunk, batch_size, validation_fraction) -> Streams:
    """Cut every series into streams (stretches between missing values, and short
    enough that there are about ``batch_size`` of them), and set aside the last
    ``validation_fraction`` of each series (``validation_fraction`` 0: none)."""
    n_rows = len(values)
    bad = np.zeros(n_rows, bool) if bad is None else bad
    cs = np.concatenate([[0], np.cumsum(bad)])
    ok = np.zeros(n_rows, bool)
    for i in range(len(indptr) - 1):  # origin t: rows t .. t + horizon complete
        a, b = indptr[i], indptr[i + 1]
        t = np.arange(a, b - horizon)
        ok[t] = cs[t + horizon + 1] - cs[t] == 0
    segments, limits, val = [], [], []
    for i in range(len(indptr) - 1):
        a, b = int(indptr[i]), int(indptr[i + 1])
        n_val = max(horizon, int(np.ceil(validation_fraction * (b - a))))
        if validation_fraction <= 0 or b - a - n_val < lookback + horizon + 1:
            n_val = 0
        limit = b - n_val
        if n_val:
            val.append((max(a, limit - 1 - lookback), limit - 1, b - horizon))
        good = np.flatnonzero(~bad[a:limit]) + a
        if good.size:  # runs of consecutive good rows
            cuts = np.flatnonzero(np.diff(good) > 1)
            for lo, hi in zip(np.r_[0, cuts + 1], np.r_[cuts, good.size - 1]):
                segments.append((good[lo], good[hi] + 1))
                limits.append(limit)
    total = sum(e - s for s, e in segments)
    stretch = max(4 * chunk, int(np.ceil(total / max(batch_size, 1))))
    begin, loss_from, end, limit = [], [], [], []
    for (s, e), lim in zip(segments, limits):
        for lo in range(s, e, stretch):
            warm = max(s, lo - lookback)  # a later stretch warms up on the rows before
            stop = min(lo + stretch, e)
            if stop - horizon <= lo:
                continue
            begin.append(warm)
            loss_from.append(lo)
            end.append(stop)
            limit.append(lim)
    if not begin:
        raise ValueError("No stretch of the series is long enough for stateful "
                         f"training (horizon {horizon}); lower horizon or tbptt_steps.")
    val = np.asarray(val, np.int64).reshape(-1, 3)
    as_int = lambda v: np.asarray(v, np.int64)  # noqa: E731
    return Streams(values, n_targets, horizon, np.asarray(fut_cols, np.int64), chunk,
                   ok, as_int(begin), as_int(loss_from), as_int(end), as_int(limit),
                   val[:, 0], val[:, 1], val[:, 2])


def origin_batch(streams: Streams, rows: np.ndarray):
    """Known future inputs (n, horizon * fut) and targets (n, horizon * targets) of
    the forecasts made at ``rows``: the change of each target from its value at the
    origin, in scaled units."""
    v, H, nt = streams.values, streams.horizon, streams.n_targets
    ahead = rows[:, None] + np.arange(1, H + 1)
    y = v[ahead, :nt] - v[rows, None, :nt]
    fut = v[ahead][:, :, streams.fut_cols]
    return (fut.reshape(len(rows), H * len(streams.fut_cols)),
            y.reshape(len(rows), H * nt))


def chunk_step(net, x, lengths, state, origins, fut, y, loss, quantiles, rng):
    """Forward over one chunk ``x`` (B, T, inputs) from ``state`` (held fixed: no
    gradient flows into an earlier chunk), the head at the steps ``origins`` (a
    boolean (B, T) mask), the loss against ``y``, and its gradients.

    Returns (loss, grads or None when no step is an origin, final state)."""
    kw = dict(num_layers=net.num_layers, nonlinearity=net.nonlinearity,
              device=net.device)
    if not origins.any():  # a warm-up chunk: only the state moves on
        _, st, _ = F.forward(net.cell, x, net.rnn_params(), state=state, lengths=lengths,
                             **kw)
        return 0.0, None, st
    out, st, cache = F.forward(net.cell, x, net.rnn_params(), state=state,
                               lengths=lengths, dropout=net.dropout, training=True,
                               seed=rng, **kw)
    pred, saved = net.head_forward(np.ascontiguousarray(out[origins]), fut)
    value, dpred = loss_and_grad(loss, pred, y, quantiles)
    grads, dfeat = net.head_backward(saved, dpred.astype(pred.dtype, copy=False))
    dout = np.zeros_like(out)
    dout[origins] = dfeat
    rnn_grads, _, _ = F.backward(cache, dout, consume=True)
    grads.update(rnn_grads)
    return value, grads, st


def _zero_state(net, batch, dtype):
    h = np.zeros((net.num_layers, batch, net.hidden_size), dtype=dtype)
    return (h, h.copy()) if net.cell == "lstm" else h


def _rows_of(state, keep):
    return tuple(s[:, keep] for s in state) if isinstance(state, tuple) \
        else state[:, keep]


class StreamTrainer(Trainer):
    """The epoch loop of :class:`tsrnn.training.Trainer` over streams: training
    indices are stream numbers, validation indices series numbers."""

    def __init__(self, net, streams: Streams, **kw):
        super().__init__(net, None, **kw)
        self.streams = streams

    def train_epoch(self, idx, epoch):
        S, k = self.streams, self.streams.chunk
        dtype = self.net.params["weight_ih_l0"].dtype
        order = self.rng.permutation(idx)
        total, count = 0.0, 0
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            state = _zero_state(self.net, len(batch), dtype)
            active = np.arange(len(batch))
            n_chunks = int(np.ceil((S.end[batch] - S.begin[batch]).max() / k))
            for c in range(n_chunks):
                rows = S.begin[batch][:, None] + c * k + np.arange(k)
                inside = rows < S.end[batch][:, None]
                live = inside[:, 0]
                if not live[active].all():  # streams that ended leave the batch
                    keep = live[active]
                    state, active = _rows_of(state, keep), active[keep]
                rows, inside = rows[active], inside[active]
                s = batch[active]
                x = np.where(inside[..., None], S.values[np.minimum(rows, len(S.values) - 1)],
                             0).astype(dtype)
                origins = (inside & (rows >= S.loss_from[s][:, None])
                           & (rows + S.horizon < S.limit[s][:, None])
                           & S.ok[np.minimum(rows, len(S.ok) - 1)])
                fut, y = origin_batch(S, rows[origins])
                with np.errstate(over="ignore", invalid="ignore"):
                    value, grads, state = chunk_step(
                        self.net, x, inside.sum(axis=1), state, origins,
                        fut.astype(dtype), y.astype(dtype), self.loss, self.quantiles,
                        self.rng)
                if grads is None:
                    continue
                self.apply(grads, value, epoch)
                n = int(origins.sum())
                total += value * n
                count += n
        return total / max(count, 1)

    def evaluate(self, idx, rows_per_pass=256):
        """Mean loss over the validation origins of the series ``idx``, their
        stretches run together (ragged, ``rows_per_pass`` series a pass)."""
        S = self.streams
        dtype = self.net.params["weight_ih_l0"].dtype
        last = len(S.values) - 1
        total, count = 0.0, 0
        for lo in range(0, len(idx), rows_per_pass):
            i = np.asarray(idx[lo : lo + rows_per_pass])
            rows = S.val_begin[i][:, None] + np.arange((S.val_to[i] - S.val_begin[i]).max())
            inside = rows < S.val_to[i][:, None]
            clipped = np.minimum(rows, last)
            x = np.where(inside[..., None], S.values[clipped], 0).astype(dtype)
            out, _, _ = F.forward(self.net.cell, x, self.net.rnn_params(),
                                  lengths=inside.sum(axis=1),
                                  num_layers=self.net.num_layers,
                                  nonlinearity=self.net.nonlinearity, device=self.net.device)
            origins = inside & (rows >= S.val_from[i][:, None]) & S.ok[clipped]
            n = int(origins.sum())
            if not n:
                continue
            fut, y = origin_batch(S, rows[origins])
            with np.errstate(over="ignore", invalid="ignore"):
                pred = self.net.head_predict(np.ascontiguousarray(out[origins]),
                                             fut.astype(dtype))
                value = loss_and_grad(self.loss, pred.astype(dtype), y.astype(dtype),
                                      self.quantiles)[0]
            total += value * n
            count += n
        return total / count if count else np.inf

    def naive_loss(self, idx, validation=False):
        """The loss of zero outputs (the last-value forecast) on (at most 4096 of) the
        origins of the series ``idx`` (``validation``) or streams ``idx`` (training)."""
        S = self.streams
        if validation:
            rows = np.concatenate([np.arange(S.val_from[i], S.val_to[i]) for i in idx])
        else:
            rows = np.concatenate([
                np.arange(S.loss_from[s], min(S.end[s], S.limit[s] - S.horizon))
                for s in idx])
        _, y = origin_batch(S, spread_sample(rows[S.ok[rows]], 4096))
        return self.zero_output_loss(y)
