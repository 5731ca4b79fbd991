"""The network: recurrent layers (:mod:`tsrnn.functional`) and a head
(:mod:`tsrnn.heads`), with one training step (forward, loss, backward) for the
training loop."""

from __future__ import annotations

import numpy as np

from tsrnn import functional as F
from tsrnn import parallel
from tsrnn._config import DECODER_CONTEXT_SIZE, DECODER_HIDDEN_SIZE
from tsrnn.heads import DECODER_KEYS, HEADS, init_linear
from tsrnn.kernels import cpu as _cpu
from tsrnn.losses import loss_and_grad

# Final state of one layer from time-major x, straight from the inference kernels.
_FINAL_STATE = {
    "lstm": lambda x_tm, w, h0, relu, out: _cpu.lstm_final_state(x_tm, *w, h0, h0, out)[0],
    "gru": lambda x_tm, w, h0, relu, out: _cpu.gru_final_state(x_tm, *w, h0, out),
    "rnn": lambda x_tm, w, h0, relu, out: _cpu.rnn_final_state(x_tm, *w, h0, relu, out),
}


class RecurrentNet:
    """Recurrent layers, then a head on the top layer's final state(s) and the known
    future inputs, emitting ``n_out`` values: linear on the state and the flattened
    future inputs ("linear"), or a small MLP decoder shared by the forecast steps
    ("mlp"); see :mod:`tsrnn.heads`.

    A network of one unidirectional layer on the CPU (every default forecaster)
    takes the *single-layer path*: its training step and inference call the
    compiled kernels directly, skipping :func:`tsrnn.functional.forward`'s checks,
    closures and the per-step outputs the head never reads."""

    # Decoder sizes of the "mlp" head (tsrnn._config).
    CONTEXT_SIZE = DECODER_CONTEXT_SIZE
    DECODER_SIZE = DECODER_HIDDEN_SIZE

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
            self.head = "mlp" if DECODER_KEYS[0] in params else "linear"
            missing = [k for k in self.rnn_keys + list(HEADS[self.head].keys)
                       if k not in params]
            if missing:
                raise ValueError(f"weights {missing} are missing.")
            self.params = dict(params)
            self.hidden_size = self.params["weight_hh_l0"].shape[1]
            self.n_steps, self.context_size = 1, None  # the linear head has no steps
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
            self.n_steps, self.context_size = n_steps, None
            n_feat = self.dirs * hidden_size + n_future
            init_linear(self.params, "head", n_out, n_feat, rng, dtype)
            return
        self.n_steps = n_steps
        self.context_size = int(context_size or self.CONTEXT_SIZE)
        init_linear(self.params, "decoder.context", n_steps * self.context_size,
                    self.dirs * hidden_size, rng, dtype)
        init_linear(self.params, "decoder.hidden", self.DECODER_SIZE,
                    self.context_size + n_future // n_steps, rng, dtype)
        init_linear(self.params, "decoder.out", n_out // n_steps, self.DECODER_SIZE, rng,
                    dtype)

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

    def load_weights(self, state_dict) -> None:
        """Replace every weight with ``state_dict``'s (PyTorch tensors or arrays of
        the same names and shapes), cast to the network's dtype."""
        new = {}
        for k, cur in self.params.items():
            if k not in state_dict:
                raise ValueError(f"state_dict is missing {k!r} (shape {cur.shape}).")
            v = state_dict[k]
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            if v.shape != cur.shape:
                raise ValueError(f"state_dict[{k!r}] has shape {v.shape}; expected "
                                 f"{cur.shape}.")
            new[k] = np.ascontiguousarray(v, dtype=cur.dtype)
        self.params.update(new)

    def rnn_params(self):
        return {k: self.params[k] for k in self.rnn_keys}

    def _features(self, state):
        h = state[0] if self.cell == "lstm" else state
        top = h[-self.dirs:]  # (dirs, B, H): final states of the top layer
        return np.concatenate(list(top), axis=1)

    def _is_single_cpu_layer(self, x) -> bool:
        """Whether ``x`` can go straight to one compiled kernel, skipping F.forward's
        checks: one unidirectional CPU layer whose weights match ``x`` in dtype and
        feature count (anything else takes the general path, which names the error)."""
        w_ih = self.params["weight_ih_l0"]
        return (self.num_layers == 1 and not self.bidirectional and self.device == "cpu"
                and x.ndim == 3 and x.dtype == w_ih.dtype and x.shape[2] == w_ih.shape[1])

    def _shards(self, x) -> list:
        return parallel.batch_shards(len(x), F.CELLS[self.cell] * self.hidden_size)

    def _single_layer_final_state(self, x):
        """Inference of a single unidirectional CPU layer: only the final state,
        straight from the compiled kernel (no per-step outputs). None when the fast
        path does not apply."""
        if not self._is_single_cpu_layer(x):
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
        no_steps = np.empty((x.shape[0], 0, self.hidden_size), dtype=x.dtype)
        return _FINAL_STATE[self.cell](x_tm, w, h0, self.nonlinearity == "relu", no_steps)

    def head_forward(self, feats, fut):
        """The head on the final state(s) ``feats`` and the known future inputs
        ``fut`` (flattened): the outputs and what :meth:`head_backward` needs."""
        return HEADS[self.head].forward(self.params, feats, fut, self.n_steps,
                                        self.context_size)

    def head_predict(self, feats, fut):
        """The head at inference: the outputs, each row computed on its own."""
        return HEADS[self.head].predict(self.params, feats, fut, self.n_steps,
                                        self.context_size)

    def head_backward(self, saved, dout):
        """Gradients of the head's weights and of the final-state features."""
        return HEADS[self.head].backward(self.params, saved, dout, self.context_size)

    def _single_layer_training(self, x, tbptt_steps):
        """Whether a training step can call the kernels directly: a single CPU layer
        (:meth:`_is_single_cpu_layer`) over the whole window. That is every small
        forecaster, whose steps are short enough that F.forward/F.backward's checks,
        closures and dicts would be a large share of each; and the head reads only
        the final state, so the per-step outputs F.forward returns (batch, time,
        hidden) and the zero gradient F.backward takes for them, both transposed from
        time-major, are never made."""
        return (self._is_single_cpu_layer(x)
                and (tbptt_steps is None or tbptt_steps >= x.shape[1]))

    def _layer_weights(self):
        """(w_ih, w_hh, b_ih, b_hh) of the single layer, as the kernels take them
        (C-contiguous: made so by init_params and kept so by the optimizers)."""
        p = self.params
        return tuple(p[k] for k in self.rnn_keys)

    def _single_layer_forward(self, x):
        """Training forward of one layer straight from the kernel (F.forward's own
        per-direction step, :func:`F.run_layer`, without its checks), shard by
        shard as F.forward splits the batch; returns the final h and a cache."""
        shards = self._shards(x)
        if len(shards) == 1:
            h, shard_cache = self._single_layer_forward_rows(x)
            return h, ("single_layer", shards, [shard_cache])
        h = np.empty((x.shape[0], self.hidden_size), dtype=x.dtype)

        def run_rows(rows):
            h[rows], shard_cache = self._single_layer_forward_rows(x[rows])
            return shard_cache

        return h, ("single_layer", shards, parallel.map_shards(run_rows, shards))

    def _single_layer_forward_rows(self, x):
        B, T, _ = x.shape
        x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
        h0 = np.zeros((B, self.hidden_size), dtype=x.dtype)
        lengths = np.full(B, T, dtype=np.int64)
        _, h, _, kcache = F.run_layer(self.cell, x_tm, self.params, "_l0", h0, h0, lengths,
                                      True, self.nonlinearity == "relu", check=False)
        return h, (x_tm, lengths, kcache)

    def _single_layer_backward(self, single_layer, dh):
        """BPTT of :meth:`_single_layer_forward`, shard by shard; the shards' weight gradients
        are summed as F.backward sums them (:func:`parallel.add_shard_grads`: the
        same bits)."""
        _, shards, shard_caches = single_layer

        def run_rows(shard):
            rows, shard_cache = shard
            return self._single_layer_backward_rows(shard_cache, np.ascontiguousarray(dh[rows]))

        per_shard = parallel.map_shards(run_rows, list(zip(shards, shard_caches, strict=True)))
        return parallel.add_shard_grads(per_shard, self.rnn_keys)

    def _single_layer_backward_rows(self, shard_cache, dh):
        """BPTT of one shard of :meth:`_single_layer_forward` (:func:`F.backward_layer`)
        from the gradient ``dh`` of its final state: the layer's weight gradients.
        ``shard_cache`` is what :meth:`_single_layer_forward_rows` returned for the shard; it
        is used once, so the LSTM kernel may overwrite its gates."""
        x_tm, lengths, kcache = shard_cache
        p = self.params
        dout = np.zeros((x_tm.shape[0], x_tm.shape[1], self.hidden_size), dtype=dh.dtype)
        res = F.backward_layer(
            self.cell, x_tm, p["weight_ih_l0"], p["weight_hh_l0"], lengths, kcache, dout,
            dh, np.zeros_like(dh) if self.cell == "lstm" else None,
            self.nonlinearity == "relu", True, check=False)
        return dict(zip(self.rnn_keys, res[1:5], strict=True))

    def train_step(self, x, fut, y, loss, quantiles=None, rng=None, tbptt_steps=None):
        """One training step: the mean ``loss`` over the batch (see
        :func:`loss_and_grad`) and the gradients of every weight.

        Where the single-layer path applies (:meth:`_single_layer_training`) and the
        batch is split over threads, each thread runs its shard's forward, head, loss
        and backward in one go: one hand-off per step instead of one for the forward
        and one for the backward, and no thread waits for the others in between.
        The shards' losses and gradients are added in
        shard order; the gradients then differ from the two-pass step's only in the
        order the head's sums are taken (float rounding)."""
        if self._single_layer_training(x, tbptt_steps):
            shards = self._shards(x)
            if len(shards) > 1:
                return self._sharded_train_step(x, fut, y, loss, quantiles, shards)
        pred, ctx = self.forward(x, fut, training=True, rng=rng, tbptt_steps=tbptt_steps)
        value, dpred = loss_and_grad(loss, pred, y, quantiles)
        return value, self.backward(ctx, dpred.astype(pred.dtype, copy=False))

    def _sharded_train_step(self, x, fut, y, loss, quantiles, shards):
        H = self.hidden_size

        def run_rows(rows):
            h, shard_cache = self._single_layer_forward_rows(x[rows])
            out, saved = self.head_forward(h, None if fut is None else fut[rows])
            value, dpred = loss_and_grad(loss, out, y[rows], quantiles, total_rows=len(x))
            grads, dfeat = self.head_backward(saved, dpred.astype(out.dtype, copy=False))
            grads.update(self._single_layer_backward_rows(shard_cache,
                                                  np.ascontiguousarray(dfeat[:, :H])))
            return value, grads

        per_shard = parallel.map_shards(run_rows, shards)
        keys = list(per_shard[0][1])
        value = sum(v for v, _ in per_shard)
        return value, parallel.add_shard_grads([g for _, g in per_shard], keys)

    def forward(self, x, fut, training=False, rng=None, tbptt_steps=None):
        if not training and self.device == "cuda" and not self.bidirectional:
            from tsrnn.device_training import predict  # imports numba.cuda

            return predict(self, x, fut), None
        if not training:
            h = self._single_layer_final_state(x)
            if h is not None:
                return self.head_predict(h, fut), None
        elif self._single_layer_training(x, tbptt_steps):
            h, single_layer = self._single_layer_forward(x)
            out, feats = self.head_forward(h, fut)
            return out, (single_layer, feats, None)
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
        if not training:
            return self.head_predict(self._features(st), fut), None
        out, feats = self.head_forward(self._features(st), fut)
        return out, (cache, feats, st)

    def backward(self, ctx, dout):
        cache, saved, st = ctx
        grads_head, dfeat = self.head_backward(saved, dout)
        if isinstance(cache, tuple):  # the single-layer path (_single_layer_forward)
            grads = self._single_layer_backward(cache, np.ascontiguousarray(
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
        grads, _, _ = F.backward(cache, dout_seq, dstate, consume=True)  # used once
        grads.update(grads_head)
        return grads
