"""Training and inference that stay on the GPU.

With ``TSRNNRegressor(device="cuda")``, :class:`DeviceTrainer` keeps everything a fit
touches on the device: the packed series (batches are gathered and window-scaled
there), every weight as one flat array (so clipping and the optimizer are one
launch each), its gradients, the optimizer's state and the weights' moving average.
A step launches the batch, each layer's time loop (:mod:`tsrnn.kernels.cuda`), the
head's products, the loss, the backward pass, clipping and the update, and waits
for none of them; an epoch ends with one copy back, its batches' losses and a
status word that says whether a step met a non-finite loss or gradient (the update
is then skipped, and the epoch fails as on the CPU). The best weights come back
once, at the end.

The math is the CPU training's (:mod:`tsrnn.training`), in float32 on another
machine: results agree to float32 rounding, not bit for bit (sums run in another
order). What this path does not cover trains with :class:`tsrnn.training.Trainer`
on the same CUDA kernels, going back to the host between layers and steps:
bidirectional networks, dropout between layers, truncated BPTT, stateful training,
checkpoints (:func:`unsupported` names which).

:func:`predict` runs inference the same way, for many windows at once.
"""

from __future__ import annotations

import numpy as np

from tsrnn.data import ArrayBatches, WindowBatches
from tsrnn.training import Trainer


def unsupported(net, est, plan) -> str | None:
    """Why a fit of ``est`` cannot train on the device, or None when it can."""
    if plan.streams is not None:
        return "stateful training"
    if plan.batches is None:
        return "a data route without batch arrays"
    if net.bidirectional:
        return "bidirectional layers"
    if est.dropout and net.num_layers > 1:
        return "dropout between layers"
    if est.tbptt_steps is not None:
        return "truncated BPTT"
    if est.checkpoint_path is not None:
        return "checkpoints"
    if net.params["weight_hh_l0"].dtype != np.float32:
        return "float64 weights"
    return None


class DeviceWeights:
    """A dict of arrays as one flat device array, with a view per name."""

    def __init__(self, params: dict):
        self.keys = list(params)
        self.shapes = {k: params[k].shape for k in self.keys}
        self.dtype = params[self.keys[0]].dtype
        sizes = [int(np.prod(self.shapes[k])) for k in self.keys]
        self.offsets = dict(zip(self.keys, np.concatenate([[0], np.cumsum(sizes)])))
        self.size = int(np.sum(sizes))

    def upload(self, params: dict):
        from numba import cuda

        flat = np.concatenate([np.asarray(params[k], self.dtype).reshape(-1)
                               for k in self.keys])
        return cuda.to_device(flat)

    def zeros(self):
        from tsrnn.kernels.cuda.linalg import zeros

        return zeros(self.size, self.dtype)

    def views(self, flat) -> dict:
        out = {}
        for k in self.keys:
            lo = int(self.offsets[k])
            n = int(np.prod(self.shapes[k]))
            out[k] = flat[lo : lo + n].reshape(self.shapes[k])
        return out

    def download(self, flat) -> dict:
        host = flat.copy_to_host()
        return {k: host[int(self.offsets[k]) : int(self.offsets[k])
                         + int(np.prod(self.shapes[k]))].reshape(self.shapes[k]).copy()
                for k in self.keys}


class DeviceNet:
    """:class:`tsrnn.network.RecurrentNet`'s forward and backward over device
    weights (a dict of device arrays): unidirectional layers, either head."""

    def __init__(self, net):
        from tsrnn.kernels import cuda as K
        from tsrnn.kernels.cuda import linalg, training

        self.K, self.la, self.tk = K, linalg, training
        self.net = net
        self.cell = net.cell
        self.H = net.hidden_size
        self.relu = net.nonlinearity == "relu"
        self._lengths = {}

    def lengths(self, B: int, T: int):
        key = (B, T)
        if key not in self._lengths:
            from numba import cuda

            self._lengths[key] = cuda.to_device(np.full(B, T, np.int64))
        return self._lengths[key]

    def _layer_forward(self, W, sfx, x, keep, write_out):
        T, B, _ = x.shape
        la = self.la
        w = (W["weight_ih" + sfx], W["weight_hh" + sfx], W["bias_ih" + sfx],
             W["bias_hh" + sfx])
        h0 = la.zeros((B, self.H), x.dtype)
        lengths = self.lengths(B, T)
        if self.cell == "lstm":
            return self.K.lstm.lstm_forward_dev(x, *w, h0, h0, lengths, keep, write_out)
        if self.cell == "gru":
            return self.K.gru.gru_forward_dev(x, *w, h0, lengths, keep, write_out)
        return self.K.rnn.rnn_forward_dev(x, *w, h0, lengths, keep, self.relu, write_out)

    def _layer_backward(self, W, G, sfx, x, cache, dout, dh, want_dx):
        T, B, _ = x.shape
        w_ih, w_hh = W["weight_ih" + sfx], W["weight_hh" + sfx]
        grads = (G["weight_ih" + sfx], G["weight_hh" + sfx], G["bias_ih" + sfx],
                 G["bias_hh" + sfx])
        lengths = self.lengths(B, T)
        if self.cell == "lstm":
            dc = self.la.zeros((B, self.H), x.dtype)
            return self.K.lstm.lstm_backward_dev(x, w_ih, w_hh, lengths, *cache, dout, dh,
                                                 dc, grads, want_dx)[0]
        if self.cell == "gru":
            return self.K.gru.gru_backward_dev(x, w_ih, w_hh, lengths, *cache, dout, dh,
                                               grads, want_dx)[0]
        return self.K.rnn.rnn_backward_dev(x, w_ih, w_hh, lengths, *cache, dout, dh,
                                           self.relu, grads, want_dx)[0]

    def forward(self, W, x_tm, fut, training: bool):
        """Outputs (batch, n_out) from time-major ``x_tm`` and the flat known future
        ``fut`` (batch, k); with ``training``, what :meth:`backward` needs."""
        layers = []
        inp = x_tm
        L = self.net.num_layers
        for layer in range(L):
            top = layer == L - 1
            out, cache = self._layer_forward(W, f"_l{layer}", inp, training, not top)
            layers.append((inp, cache))
            inp = out
        T = x_tm.shape[0]
        h = layers[-1][1][0][T]  # hs[T]: the top layer's final state
        pred, saved = self._head_forward(W, h, fut)
        return pred, (layers, saved)

    def backward(self, W, ctx, dpred, G) -> None:
        """Every gradient, written into the device arrays ``G`` (by name)."""
        layers, saved = ctx
        dh = self._head_backward(W, saved, dpred, G)
        dout = None
        for layer in range(len(layers) - 1, -1, -1):
            x, cache = layers[layer]
            if dout is not None:
                dh = self.la.zeros((x.shape[1], self.H), x.dtype)
            dout = self._layer_backward(W, G, f"_l{layer}", x, cache, dout, dh,
                                        want_dx=layer > 0)

    # The heads of tsrnn.heads, as device products.
    def _head_forward(self, W, h, fut):
        la, tk = self.la, self.tk
        if self.net.head == "linear":
            feats = tk.concat_columns(h, fut) if fut.shape[1] else h
            return la.matmul(feats, W["head.weight"], b_t=True, bias=W["head.bias"]), feats
        B = h.shape[0]
        S, c = self.net.n_steps, self.net.context_size
        ctx = la.matmul(h, W["decoder.context.weight"], b_t=True,
                        bias=W["decoder.context.bias"])
        z = ctx.reshape(B * S, c)
        if fut.shape[1]:
            z = tk.concat_columns(z, fut.reshape(B * S, fut.shape[1] // S))
        r = la.matmul(z, W["decoder.hidden.weight"], b_t=True, bias=W["decoder.hidden.bias"])
        tk.relu_(r)
        out = la.matmul(r, W["decoder.out.weight"], b_t=True, bias=W["decoder.out.bias"])
        return out.reshape(B, out.size // B), (h, z, r)

    def _head_backward(self, W, saved, dpred, G):
        la, tk = self.la, self.tk
        if self.net.head == "linear":
            feats = saved
            la.matmul(dpred, feats, G["head.weight"], a_t=True)
            la.col_sum(dpred, G["head.bias"])
            return la.matmul(dpred, W["head.weight"])[:, : self.H]
        h, z, r = saved
        B = h.shape[0]
        S, c = self.net.n_steps, self.net.context_size
        d3 = dpred.reshape(B * S, dpred.shape[1] // S)
        la.matmul(d3, r, G["decoder.out.weight"], a_t=True)
        la.col_sum(d3, G["decoder.out.bias"])
        da = la.matmul(d3, W["decoder.out.weight"])
        tk.relu_backward_(da, r)
        la.matmul(da, z, G["decoder.hidden.weight"], a_t=True)
        la.col_sum(da, G["decoder.hidden.bias"])
        dctx = la.matmul(da, W["decoder.hidden.weight"][:, :c]).reshape(B, S * c)
        la.matmul(dctx, h, G["decoder.context.weight"], a_t=True)
        la.col_sum(dctx, G["decoder.context.bias"])
        return la.matmul(dctx, W["decoder.context.weight"])


def predict(net, x, fut):
    """The network's outputs for windows ``x`` (batch, steps, inputs) and flat known
    futures ``fut`` (batch, k), computed on the GPU: one copy in, one out."""
    from numba import cuda

    layout = DeviceWeights(net.params)
    W = layout.views(layout.upload(net.params))
    dt = layout.dtype
    x_tm = cuda.to_device(np.ascontiguousarray(np.asarray(x, dt).transpose(1, 0, 2)))
    f = np.zeros((len(x), 0), dt) if fut is None else np.asarray(fut, dt).reshape(len(x), -1)
    pred, _ = DeviceNet(net).forward(W, x_tm, cuda.to_device(np.ascontiguousarray(f)),
                                     training=False)
    return pred.copy_to_host()


class DeviceTrainer(Trainer):
    """:class:`tsrnn.training.Trainer` with the weights, the optimizer and the
    batches on the GPU (see the module's text)."""

    def __init__(self, net, plan, **kw):
        from numba import cuda

        from tsrnn.kernels.cuda import linalg, training

        super().__init__(net, plan.get_batch, **kw)
        self.la, self.tk = linalg, training
        self.dnet = DeviceNet(net)
        self.layout = DeviceWeights(net.params)
        self.P = self.layout.upload(net.params)
        self.W = self.layout.views(self.P)
        self.G = self.layout.zeros()
        self.Gv = self.layout.views(self.G)
        self.spec = plan.batches
        dt = self.layout.dtype
        if isinstance(self.spec, WindowBatches):
            self.data = {"values": cuda.to_device(np.ascontiguousarray(self.spec.values, dt)),
                         "starts": cuda.to_device(np.asarray(self.spec.starts, np.int64)),
                         "fut_cols": cuda.to_device(np.asarray(self.spec.fut_cols, np.int64))}
        elif isinstance(self.spec, ArrayBatches):
            self.data = {"xs": cuda.to_device(np.ascontiguousarray(self.spec.xs, dt)),
                         "ys": cuda.to_device(np.ascontiguousarray(self.spec.ys, dt))}
        else:
            raise TypeError(f"no device batches for {type(self.spec).__name__}")
        self.q = None if not self.quantiles else cuda.to_device(
            np.asarray(self.quantiles, dt))
        self.status = linalg.zeros(2, np.int64)
        self.slots = {}
        self.A = None  # the weights' moving average, once it starts

    # ------------------------------------------------------------- optimizer state
    def _upload_optimizer(self) -> None:
        opt = self.opt
        self.slots = {name: (self.layout.upload(getattr(opt, name)) if getattr(opt, name)
                             else self.layout.zeros()) for name in opt._slots}
        self.A = self.layout.upload(opt.average) if opt.average else None

    def _download_optimizer(self) -> None:
        for name, flat in self.slots.items():
            setattr(self.opt, name, self.layout.download(flat))
        if self.A is not None:
            self.opt.average = self.layout.download(self.A)

    def fit(self, train_idx, val_idx, **kw):
        self._upload_optimizer()
        try:
            return super().fit(train_idx, val_idx, **kw)
        finally:
            self._download_optimizer()

    # ---------------------------------------------------------------------- steps
    def _batch(self, order, lo, rows):
        if isinstance(self.spec, WindowBatches):
            return self.tk.window_batch(self.spec, self.data, order, lo, rows)
        return self.tk.array_batch(self.data, order, lo, rows)

    def _update(self) -> None:
        opt, tk, st = self.opt, self.tk, self.status
        opt.t += 1
        name = opt.__class__.__name__
        if name == "Adam":
            c1 = 1.0 - opt.beta1 ** opt.t
            c2 = 1.0 - opt.beta2 ** opt.t
            tk.adam(self.P, self.G, self.slots["m"], self.slots["v"], opt.beta1, opt.beta2,
                    opt.learning_rate / c1, c2, opt.eps, opt.weight_decay, st)
        elif name == "RMSprop":
            tk.rmsprop(self.P, self.G, self.slots["sq"], opt.learning_rate, opt.alpha,
                       opt.eps, opt.weight_decay, st)
        else:
            tk.sgd(self.P, self.G, opt.learning_rate, opt.weight_decay, st)
        if opt.average_decay is not None:
            decay = min(opt.average_decay, (1.0 + opt.t) / (10.0 + opt.t))
            first = self.A is None
            if first:
                self.A = self.layout.zeros()
            tk.average(self.A, self.P, decay, first, st)

    def train_epoch(self, idx: np.ndarray, epoch: int) -> float:
        from numba import cuda

        order = self.rng.permutation(idx)
        order_dev = cuda.to_device(np.asarray(order, np.int64))
        n = len(order)
        bs = self.batch_size
        n_batches = -(-n // bs)
        losses = cuda.device_array(max(n_batches, 1), np.float64)
        norms = cuda.device_array(max(n_batches, 1), np.float64)
        self.la.fill(self.status, 0)
        t0 = self.opt.t
        for i, lo in enumerate(range(0, n, bs)):
            rows = min(bs, n - lo)
            x_tm, y, f = self._batch(order_dev, lo, rows)
            pred, ctx = self.dnet.forward(self.W, x_tm, f, training=True)
            dpred = cuda.device_array(pred.shape, pred.dtype)
            self.tk.loss(self.loss, pred, y, self.q, dpred, losses, i, self.status,
                         self.tk.LOSS_NOT_FINITE)
            self.dnet.backward(self.W, ctx, dpred, self.Gv)
            self.tk.clip_by_global_norm(self.G, norms, i, self.clip_norm, self.status,
                                        self.tk.GRAD_NOT_FINITE)
            self._update()
        status = self.status.copy_to_host()
        if status[0]:
            self.opt.t = t0 + int(status[1])  # the steps taken before the failing one
            what = ("The training loss became non-finite" if status[0] == self.tk.LOSS_NOT_FINITE
                    else "A non-finite gradient appeared")
            raise FloatingPointError(
                f"{what} at epoch {epoch}. Lower learning_rate or set clip_norm (e.g. "
                "1.0); the model keeps its last finite weights.")
        sizes = np.minimum(bs, n - np.arange(0, n, bs))
        return float(np.sum(losses.copy_to_host()[:n_batches] * sizes) / max(n, 1))

    # ------------------------------------------------------ weights (Trainer hooks)
    def _kept(self):
        return self.A if self.A is not None else self.P

    def snapshot(self, kept: bool = False):
        src = self._kept() if kept else self.P
        out = self.la.zeros(self.layout.size, self.layout.dtype)
        self.la.copy(src, out)
        return out

    def restore(self, snapshot) -> None:
        self.la.copy(snapshot, self.P)
        self.net.params.update(self.layout.download(self.P))

    def adopt(self, params: dict):
        return self.layout.upload(params)

    def as_host(self, snapshot) -> dict:
        return self.layout.download(snapshot)

    def finish(self, best) -> None:
        self.net.params.update(self.layout.download(best if best is not None
                                                    else self._kept()))

    def evaluate_kept(self, val_idx: np.ndarray) -> float:
        from numba import cuda

        W = self.layout.views(self._kept())
        n = len(val_idx)
        rows = max(1, min(n, 4096))
        n_chunks = -(-n // rows)
        order = cuda.to_device(np.asarray(val_idx, np.int64))
        losses = cuda.device_array(max(n_chunks, 1), np.float64)
        ignored = self.la.zeros(2, np.int64)
        for i, lo in enumerate(range(0, n, rows)):
            m = min(rows, n - lo)
            x_tm, y, f = self._batch(order, lo, m)
            pred, _ = self.dnet.forward(W, x_tm, f, training=False)
            # a diverging network's inf validation loss is never an improvement;
            # the next training step names the epoch
            self.tk.loss(self.loss, pred, y, self.q, pred, losses, i, ignored, 0,
                         want_grad=False)
        sizes = np.minimum(rows, n - np.arange(0, n, rows))
        return float(np.sum(losses.copy_to_host()[:n_chunks] * sizes) / max(n, 1))
