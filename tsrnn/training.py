"""The network (recurrent stack + head) and the epoch loop around the kernels.

Readable Python over compiled kernels: shuffled batches gathered by index, a loss and
its gradient, global-norm clipping, an optimizer step, early stopping that restores
the best weights, and Ctrl-C that leaves the best weights so far.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from tsrnn import _warnings, parallel
from tsrnn import functional as F
from tsrnn.kernels import cpu as _cpu
from tsrnn.optim import make_optimizer


class RecurrentNet:
    """Recurrent layers, then a head on the top layer's final state(s) and the known
    future inputs, emitting ``n_out`` values: linear on the state and the flattened
    future inputs ("linear"), or a small MLP decoder shared by the forecast steps
    ("mlp", :meth:`_decoder`)."""

    # Decoder sizes ("mlp" head): a context vector per forecast step, cut from the
    # final state, and one hidden ReLU layer (neuralforecast's LSTM decoder, smaller).
    CONTEXT_SIZE = 8
    DECODER_SIZE = 32
    DECODER_KEYS = ("decoder.context.weight", "decoder.context.bias",
                    "decoder.hidden.weight", "decoder.hidden.bias",
                    "decoder.out.weight", "decoder.out.bias")

    def __init__(self, cell, n_inputs, hidden_size, num_layers, bidirectional, dropout,
                 n_out, n_future, rng, dtype=np.float32, nonlinearity="tanh",
                 params=None, device="cpu", head="linear", n_steps=1, context_size=None):
        """New weights from ``rng``, or the given ``params`` (a saved network; the
        sizes and the head are then read from them and the size arguments are
        unused). ``n_steps`` is the number of forecast steps the ``n_out`` outputs
        and ``n_future`` future inputs are made of (the "mlp" head decodes each);
        ``context_size`` the decoder's context per step (default ``CONTEXT_SIZE``)."""
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dirs = 2 if bidirectional else 1
        self.dropout = dropout
        self.nonlinearity = nonlinearity
        self.device = device  # "cpu" | "cuda", resolved by the caller
        self.rnn_keys = F.param_names(cell, num_layers, bidirectional)
        if params is not None:
            self.head = "mlp" if self.DECODER_KEYS[0] in params else "linear"
            head_keys = list(self.DECODER_KEYS) if self.head == "mlp" \
                else ["head.weight", "head.bias"]
            missing = [k for k in self.rnn_keys + head_keys if k not in params]
            if missing:
                raise ValueError(f"weights {missing} are missing.")
            self.params = dict(params)
            self.hidden_size = self.params["weight_hh_l0"].shape[1]
            if self.head == "mlp":
                n_ctx = self.params["decoder.context.weight"].shape[0]
                n_in = self.params["decoder.hidden.weight"].shape[1]
                c = self.context_size = int(context_size or self.CONTEXT_SIZE)
                self.n_steps = n_ctx // c
                if n_ctx % c or n_in < c:
                    raise ValueError("the decoder weights do not fit together: "
                                     f"decoder.context.weight has {n_ctx} rows, "
                                     f"decoder.hidden.weight {n_in} columns.")
            return
        if head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp'; got {head!r}.")
        if n_out % n_steps or n_future % n_steps:
            raise ValueError(f"{n_out} outputs and {n_future} future inputs do not "
                             f"split into {n_steps} steps.")
        self.head = head
        self.hidden_size = hidden_size
        self.params = F.init_params(cell, n_inputs, hidden_size, num_layers, bidirectional,
                                    dtype=dtype, seed=rng)
        if head == "linear":
            n_feat = self.dirs * hidden_size + n_future
            self._init_linear("head", n_out, n_feat, rng, dtype)
            return
        self.n_steps = n_steps
        self.context_size = int(context_size or self.CONTEXT_SIZE)
        self._init_linear("decoder.context", n_steps * self.context_size,
                          self.dirs * hidden_size, rng, dtype)
        self._init_linear("decoder.hidden", self.DECODER_SIZE,
                          self.context_size + n_future // n_steps, rng, dtype)
        self._init_linear("decoder.out", n_out // n_steps, self.DECODER_SIZE, rng, dtype)

    def _init_linear(self, name, n_out, n_in, rng, dtype):
        """PyTorch's nn.Linear weight initialisation, zero bias."""
        bound = 1.0 / np.sqrt(max(n_in, 1))
        self.params[f"{name}.weight"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype)
        self.params[f"{name}.bias"] = np.zeros(n_out, dtype=dtype)

    @classmethod
    def from_params(cls, params: dict, cell, num_layers, bidirectional, dropout,
                    nonlinearity="tanh", context_size=None):
        """Rebuild a network around saved weights (shapes give the sizes; the
        decoder's context per step is not in them: ``config()`` holds it)."""
        return cls(cell, n_inputs=None, hidden_size=None, num_layers=num_layers,
                   bidirectional=bidirectional, dropout=dropout, n_out=None, n_future=None,
                   rng=None, nonlinearity=nonlinearity, params=params,
                   context_size=context_size)

    def config(self) -> dict:
        return {"cell": self.cell, "num_layers": self.num_layers,
                "bidirectional": self.bidirectional, "dropout": self.dropout,
                "nonlinearity": self.nonlinearity,
                **({"context_size": self.context_size} if self.head == "mlp" else {})}

    def inference_rows(self, steps: int, budget_bytes: int = 64 << 20) -> int:
        """How many windows of ``steps`` steps one inference forward may take: the
        kernels keep every step's gates and states, (steps, rows, ~7 * hidden) floats
        per direction and layer, so long windows get smaller chunks."""
        per_row = steps * 7 * self.hidden_size * self.dirs * 4
        return int(max(16, min(4096, budget_bytes // max(per_row, 1))))

    def rnn_params(self):
        return {k: self.params[k] for k in self.rnn_keys}

    def _features(self, state):
        h = state[0] if self.cell == "lstm" else state
        top = h[-self.dirs:]  # (dirs, B, H): final states of the top layer
        return np.concatenate(list(top), axis=1)

    def _single_cpu_layer(self, x) -> bool:
        """Whether ``x`` can go straight to one compiled kernel, skipping F.forward's
        checks: one unidirectional CPU layer whose weights match ``x`` in dtype and
        feature count (anything else takes the general path, which names the error)."""
        w_ih = self.params["weight_ih_l0"]
        return (self.num_layers == 1 and not self.bidirectional and self.device == "cpu"
                and x.ndim == 3 and x.dtype == w_ih.dtype and x.shape[2] == w_ih.shape[1])

    def _shards(self, x) -> list:
        return parallel.batch_shards(len(x), F.CELLS[self.cell] * self.hidden_size)

    def _final_state_fast(self, x):
        """Inference of a single unidirectional CPU layer: only the final state,
        straight from the compiled kernel (no per-step outputs). None when the fast
        path does not apply."""
        if not self._single_cpu_layer(x):
            return None
        w = self._layer_weights()
        shards = self._shards(x)
        if len(shards) == 1:  # the batch-1 latency path: no closure, no copy
            return self._final_state_rows(x, w)
        h = np.empty((x.shape[0], self.hidden_size), dtype=x.dtype)

        def run_rows(rows):
            h[rows] = self._final_state_rows(x[rows], w)

        parallel.map_shards(run_rows, shards)
        return h

    def _final_state_rows(self, x, w):
        x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
        h0 = np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        if self.cell == "lstm":
            return _cpu.lstm_final_state(x_tm, *w, h0, h0)[0]
        if self.cell == "gru":
            return _cpu.gru_final_state(x_tm, *w, h0)
        return _cpu.rnn_final_state(x_tm, *w, h0, self.nonlinearity == "relu")

    def _head(self, feats, fut):
        """The head on the final state(s) ``feats`` and the known future inputs
        ``fut`` (flattened); returns the outputs and what :meth:`_head_backward`
        needs."""
        if self.head == "mlp":
            return self._decoder(feats, fut)
        if fut is not None and fut.shape[1]:
            feats = np.concatenate([feats, fut], axis=1)
        return feats @ self.params["head.weight"].T + self.params["head.bias"], feats

    def _decoder(self, feats, fut):
        """The "mlp" head: a linear map cuts the final state into one context vector
        per forecast step; each step's context and that step's known future inputs
        go through one hidden ReLU layer and a linear output, the same weights for
        every step (so a future input's effect is learned once, not per step, and
        may be non-linear, e.g. demand against temperature)."""
        p = self.params
        n, S, c = len(feats), self.n_steps, self.context_size
        ctx = feats @ p["decoder.context.weight"].T
        ctx += p["decoder.context.bias"]
        z = ctx.reshape(n * S, c)
        if fut is not None and fut.shape[1]:
            z = np.concatenate([z, fut.reshape(n * S, -1)], axis=1)
        r = _cpu.add_bias_relu(z @ p["decoder.hidden.weight"].T, p["decoder.hidden.bias"])
        out = r @ p["decoder.out.weight"].T
        out += p["decoder.out.bias"]
        return out.reshape(n, -1), (feats, z, r)

    def _head_backward(self, saved, dout):
        """Gradients of the head's weights and of the final-state features."""
        p = self.params
        if self.head == "linear":
            feats = saved
            return ({"head.weight": dout.T @ feats, "head.bias": dout.sum(axis=0)},
                    dout @ p["head.weight"])
        feats, z, r = saved
        n, c = len(feats), self.context_size
        d3 = dout.reshape(len(z), -1)  # (steps x windows, outputs per step)
        da = _cpu.relu_backward(np.ascontiguousarray(d3), p["decoder.out.weight"], r)
        ones = np.ones(len(z), dtype=da.dtype)  # sums as products: 2-3x faster
        dctx = (da @ p["decoder.hidden.weight"][:, :c]).reshape(n, -1)
        grads = {"decoder.out.weight": d3.T @ r, "decoder.out.bias": ones @ d3,
                 "decoder.hidden.weight": da.T @ z, "decoder.hidden.bias": ones @ da,
                 "decoder.context.weight": dctx.T @ feats,
                 "decoder.context.bias": dctx.sum(axis=0)}
        return grads, dctx @ p["decoder.context.weight"]

    def _lean_training(self, x, tbptt_steps):
        """Whether a training step can call the kernels directly: a single CPU layer
        (:meth:`_single_cpu_layer`) over the whole window. That is every small
        forecaster (air_passengers: 200 steps of batch 32), where F.forward/F.backward's
        checks, closures and dicts were ~190 of ~660 us per step; and with a batch
        split over threads, the head reads only the final state, so the per-step
        outputs F.forward returns (batch, time, hidden) and the zero gradient
        F.backward takes for them, both transposed from time-major, are never made."""
        return (self._single_cpu_layer(x)
                and (tbptt_steps is None or tbptt_steps >= x.shape[1]))

    def _layer_weights(self):
        """(w_ih, w_hh, b_ih, b_hh) of the single layer, as the kernels take them
        (C-contiguous: made so by init_params and kept so by the optimizers)."""
        p = self.params
        return tuple(p[k] for k in self.rnn_keys)

    def _lean_forward(self, x):
        """Training forward of one layer straight from the kernel (F.forward's own
        per-direction step, :func:`F._run_direction`, without its checks), shard by
        shard as F.forward splits the batch; returns the final h and a cache."""
        shards = self._shards(x)
        if len(shards) == 1:
            h, shard_cache = self._lean_forward_rows(x)
            return h, ("lean", shards, [shard_cache])
        h = np.empty((x.shape[0], self.hidden_size), dtype=x.dtype)

        def run_rows(rows):
            h[rows], shard_cache = self._lean_forward_rows(x[rows])
            return shard_cache

        return h, ("lean", shards, parallel.map_shards(run_rows, shards))

    def _lean_forward_rows(self, x):
        B, T, _ = x.shape
        x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
        h0 = np.zeros((B, self.hidden_size), dtype=x.dtype)
        lengths = np.full(B, T, dtype=np.int64)
        _, h, _, kcache = F._run_direction(_cpu, self.cell, x_tm, self.params, "_l0", h0,
                                           h0, lengths, True, self.nonlinearity == "relu")
        return h, (x_tm, lengths, kcache)

    def _lean_backward(self, lean, dh):
        """BPTT of :meth:`_lean_forward`, shard by shard; the shards' weight gradients
        are summed as F.backward sums them (:func:`parallel.add_shard_grads`: the
        same bits)."""
        _, shards, shard_caches = lean

        def run_rows(shard):
            rows, shard_cache = shard
            return self._lean_backward_rows(shard_cache, np.ascontiguousarray(dh[rows]))

        per_shard = parallel.map_shards(run_rows, list(zip(shards, shard_caches, strict=True)))
        return parallel.add_shard_grads(per_shard, self.rnn_keys)

    def _lean_backward_rows(self, shard_cache, dh):
        """BPTT of one shard of :meth:`_lean_forward` (:func:`F._backward_direction`)
        from the gradient ``dh`` of its final state: the layer's weight gradients.
        ``shard_cache`` is what :meth:`_lean_forward_rows` returned for the shard; it
        is used once, so the LSTM kernel may overwrite its gates."""
        x_tm, lengths, kcache = shard_cache
        p = self.params
        dout = np.zeros((x_tm.shape[0], x_tm.shape[1], self.hidden_size), dtype=dh.dtype)
        res = F._backward_direction(
            _cpu, self.cell, x_tm, p["weight_ih_l0"], p["weight_hh_l0"], lengths,
            kcache, dout, dh, np.zeros_like(dh) if self.cell == "lstm" else None,
            self.nonlinearity == "relu", consume=True)
        return dict(zip(self.rnn_keys, res[1:5], strict=True))

    def train_step(self, x, fut, y, loss, quantiles=None, rng=None, tbptt_steps=None):
        """One training step: the mean ``loss`` over the batch (see
        :func:`loss_and_grad`) and the gradients of every weight.

        Where the lean path applies (:meth:`_lean_training`) and the batch is split
        over threads, each thread runs its shard's forward, head, loss and backward
        in one go: one hand-off per step instead of one for the forward and one for
        the backward, and no thread waits for the others in between (epochs at
        batch 256 1.04-1.32x faster). The shards' losses and gradients are added in
        shard order; the gradients then differ from the two-pass step's only in the
        order the head's sums are taken (float rounding)."""
        if self._lean_training(x, tbptt_steps):
            shards = self._shards(x)
            if len(shards) > 1:
                return self._sharded_train_step(x, fut, y, loss, quantiles, shards)
        pred, ctx = self.forward(x, fut, training=True, rng=rng, tbptt_steps=tbptt_steps)
        value, dpred = loss_and_grad(loss, pred, y, quantiles)
        return value, self.backward(ctx, dpred.astype(pred.dtype, copy=False))

    def _sharded_train_step(self, x, fut, y, loss, quantiles, shards):
        H = self.hidden_size

        def run_rows(rows):
            h, shard_cache = self._lean_forward_rows(x[rows])
            out, saved = self._head(h, None if fut is None else fut[rows])
            value, dpred = loss_and_grad(loss, out, y[rows], quantiles, total_rows=len(x))
            grads, dfeat = self._head_backward(saved, dpred.astype(out.dtype, copy=False))
            grads.update(self._lean_backward_rows(shard_cache,
                                                  np.ascontiguousarray(dfeat[:, :H])))
            return value, grads

        per_shard = parallel.map_shards(run_rows, shards)
        keys = list(per_shard[0][1])
        value = sum(v for v, _ in per_shard)
        return value, parallel.add_shard_grads([g for _, g in per_shard], keys)

    def forward(self, x, fut, training=False, rng=None, tbptt_steps=None):
        if not training:
            h = self._final_state_fast(x)
            if h is not None:
                return self._head(h, fut)[0], None
        elif self._lean_training(x, tbptt_steps):
            h, lean = self._lean_forward(x)
            out, feats = self._head(h, fut)
            return out, (lean, feats, None)
        kw = dict(num_layers=self.num_layers, bidirectional=self.bidirectional,
                  nonlinearity=self.nonlinearity, device=self.device)
        p = self.rnn_params()
        state = None
        T = x.shape[1]
        if training and tbptt_steps is not None and tbptt_steps < T:
            if self.bidirectional:
                raise ValueError("tbptt_steps needs a unidirectional network: a reverse "
                                 "direction reads the whole window.")
            # Truncated BPTT: run the head of the window without keeping activations,
            # carry its final state into the last tbptt_steps steps, and backpropagate
            # through those only (the gradient is cut at the chunk edge).
            cut = T - tbptt_steps
            _, state, _ = F.forward(self.cell, np.ascontiguousarray(x[:, :cut]), p, **kw)
            x = np.ascontiguousarray(x[:, cut:])
        _, st, cache = F.forward(self.cell, x, p, state=state, dropout=self.dropout,
                                 training=training, seed=rng, **kw)
        out, feats = self._head(self._features(st), fut)
        return out, (cache, feats, st)

    def backward(self, ctx, dout):
        cache, saved, st = ctx
        grads_head, dfeat = self._head_backward(saved, dout)
        if isinstance(cache, tuple):  # the lean path (_lean_forward)
            grads = self._lean_backward(cache, np.ascontiguousarray(
                dfeat[:, : self.hidden_size]))
            grads.update(grads_head)
            return grads
        H, D = self.hidden_size, self.dirs
        h = st[0] if self.cell == "lstm" else st
        dh = np.zeros_like(h)
        for d in range(D):
            dh[h.shape[0] - D + d] = dfeat[:, d * H : (d + 1) * H]
        dstate = (dh, np.zeros_like(dh)) if self.cell == "lstm" else dh
        B, T = cache["shape"][:2]
        dout_seq = np.zeros((B, T, D * H), dtype=dh.dtype)
        grads, _, _ = F._backward(cache, dout_seq, dstate, consume=True)  # used once
        grads.update(grads_head)
        return grads


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
        q = np.asarray(quantiles, dtype=pred.dtype)
        p = pred.reshape(y.shape[0], -1, len(q))
        r = y.reshape(y.shape[0], -1, 1) - p  # > 0: under-forecast, costs q per unit
        n = _mean_count(p.size, len(y), total_rows)
        loss = np.sum(np.maximum(q * r, (q - 1) * r)) / n
        grad = np.where(r > 0, -q, 1 - q) / n
        return float(loss), grad.reshape(pred.shape).astype(pred.dtype, copy=False)
    r = pred - y
    n = _mean_count(r.size, len(y), total_rows)
    if kind == "mse":
        return float(np.sum(r * r) / n), (2.0 / n) * r
    if kind == "mae":
        return float(np.sum(np.abs(r)) / n), np.sign(r) / n
    a = np.abs(r)  # huber, delta = 1
    quad = a <= 1.0
    loss = np.where(quad, 0.5 * r * r, a - 0.5)
    return float(np.sum(loss) / n), np.where(quad, r, np.sign(r)) / n


def _mean_count(size, rows, total_rows):
    """How many entries a batch's mean is over: ``size`` for ``rows`` rows, scaled
    to ``total_rows`` when these rows are a part of the batch."""
    return size if total_rows is None else size // max(rows, 1) * total_rows


def clip_by_global_norm(grads: dict, max_norm) -> float:
    total = float(np.sqrt(sum(_cpu.sum_squares(g.reshape(-1)) for g in grads.values())))
    if max_norm is not None and total > max_norm and np.isfinite(total):
        s = max_norm / (total + 1e-12)
        for g in grads.values():
            g *= s
    return total


def _caused_by_interrupt(exc) -> bool:
    """Whether a KeyboardInterrupt is somewhere in the cause chain of ``exc``."""
    seen = 0
    while exc is not None and seen < 100:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class Trainer:
    """Runs epochs over windows given by index; records the curves."""

    def __init__(self, net: RecurrentNet, get_batch, *, batch_size, learning_rate,
                 optimizer, weight_decay, clip_norm, loss, tbptt_steps, rng,
                 progress=None, quantiles=None):
        self.net = net
        self.get_batch = get_batch
        self.batch_size = batch_size
        self.loss = loss
        self.quantiles = quantiles
        self.clip_norm = clip_norm
        self.tbptt_steps = tbptt_steps
        self.rng = rng
        self.opt = make_optimizer(optimizer, learning_rate, weight_decay)
        self.progress = progress

    def train_epoch(self, idx: np.ndarray, epoch: int) -> float:
        order = self.rng.permutation(idx)
        total, count = 0.0, 0
        for lo in range(0, len(order), self.batch_size):
            b = order[lo : lo + self.batch_size]
            x, y, fut = self.get_batch(b)
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                loss, grads = self.net.train_step(x, fut, y, self.loss, self.quantiles,
                                                  rng=self.rng,
                                                  tbptt_steps=self.tbptt_steps)
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss became non-finite at epoch {epoch}. Lower "
                    "learning_rate or set clip_norm (e.g. 1.0); the model keeps its "
                    "last finite weights."
                )
            norm = clip_by_global_norm(grads, self.clip_norm)
            if not np.isfinite(norm):
                raise FloatingPointError(
                    f"A non-finite gradient appeared at epoch {epoch}. Lower "
                    "learning_rate or set clip_norm; the model keeps its last finite "
                    "weights."
                )
            self.opt.step(self.net.params, grads)
            total += loss * len(b)
            count += len(b)
        return total / max(count, 1)

    def evaluate(self, idx: np.ndarray) -> float:
        total, count = 0.0, 0
        lo, rows = 0, 64  # then sized to the windows' length (inference_rows)
        while lo < len(idx):
            x, y, fut = self.get_batch(idx[lo : lo + rows])
            lo += len(x)
            rows = self.net.inference_rows(x.shape[1])
            # A diverging network overflows here first: the validation loss is then
            # inf (never an improvement) and the next training step names the epoch.
            with np.errstate(over="ignore", invalid="ignore"):
                pred, _ = self.net.forward(x, fut)
                total += loss_and_grad(self.loss, pred, y, self.quantiles)[0] * len(x)
            count += len(x)
        return total / max(count, 1)

    def fit(self, train_idx, val_idx, *, max_epochs, patience, tol=1e-4, history=None,
            warn=True, best_params=None, on_epoch_end=None):
        """Train up to ``max_epochs`` more epochs; returns the history dict (curves,
        best loss and epoch, epochs without improvement, whether it stopped early).
        Monitors the validation loss when there is a validation set, else the
        training loss.

        ``history`` and ``best_params`` continue an earlier run (a checkpoint);
        ``on_epoch_end(history, best_params)`` runs after every epoch. The live
        history is also ``self.history``, so a caller still has it after an error.
        """
        h = history or {"loss": [], "val_loss": [], "best": np.inf, "best_epoch": 0,
                        "stale": 0}
        h.setdefault("stale", 0)
        self.history = h
        if best_params is None:
            best_params = {k: v.copy() for k, v in self.net.params.items()}
        stopped = False
        start = len(h["loss"])
        bar = self.progress(total=max_epochs) if self.progress else None
        try:
            # tsrnn splits large batches over threads itself (parallel.py); inside a
            # step, BLAS threads only add hand-offs to small products (an LSTM
            # backward at batch 32, hidden 32: 350 -> 283 us with one BLAS thread).
            with parallel.one_blas_thread():
                for epoch in range(start + 1, start + max_epochs + 1):
                    prev = {k: v.copy() for k, v in self.net.params.items()}
                    try:
                        loss = self.train_epoch(train_idx, epoch)
                    except FloatingPointError:
                        self.net.params.update(prev)  # the last finite weights
                        raise
                    h["loss"].append(loss)
                    monitored = loss
                    if len(val_idx):
                        monitored = self.evaluate(val_idx)
                        h["val_loss"].append(monitored)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4g}", val=f"{monitored:.4g}")
                    best = h["best"]
                    threshold = best - tol * abs(best) if np.isfinite(best) else best
                    if monitored < threshold:
                        h["best"], h["best_epoch"] = monitored, epoch
                        best_params = {k: v.copy() for k, v in self.net.params.items()}
                        h["stale"] = 0
                    else:
                        h["stale"] += 1
                    stopped = h["stale"] >= patience
                    h["stopped"] = stopped
                    if on_epoch_end is not None:
                        on_epoch_end(h, best_params)
                    if stopped:
                        break
        except (KeyboardInterrupt, SystemError) as e:
            # Ctrl-C that lands inside a compiled kernel surfaces as a SystemError
            # ("returned a result with an exception set") caused by the interrupt.
            if isinstance(e, SystemError) and not _caused_by_interrupt(e):
                raise
            _warnings.warn("fit interrupted: keeping the best weights so far.", UserWarning)
            stopped = True
        finally:
            if bar is not None:
                bar.close()
        if len(val_idx):
            self.net.params.update(best_params)
        if warn and not stopped:
            _warnings.warn(
                f"Reached max_epochs={max_epochs} before early stopping; the model may "
                "not have converged (raise max_epochs or learning_rate).",
                ConvergenceWarning,
            )
        h["stopped"] = stopped
        return h
