"""The epoch loop around the network's training step.

Readable Python over compiled kernels: shuffled batches gathered by index, the
step's loss and gradients (:meth:`tsrnn.network.RecurrentNet.train_step`),
global-norm clipping, an optimizer step, a moving average of the weights (what
validates and is kept), early stopping that restores the best weights, and Ctrl-C
that leaves the best weights so far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from tsrnn import _warnings, parallel
from tsrnn._config import DIVERGED_LOSS_FACTOR, DIVERGED_LOSS_FLOOR, keep_freed_memory
from tsrnn.data.windows import spread_sample
from tsrnn.kernels import cpu as _cpu
from tsrnn.losses import loss_and_grad
from tsrnn.network import RecurrentNet
from tsrnn.optim import make_optimizer


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


@dataclass
class TrainingPlan:
    """What a data route hands the training: windows served by index, and the
    network's sizes.

    ``get_batch(idx)`` returns ``(x, y, fut)`` for the windows numbered ``idx``:
    inputs (batch, steps, inputs), targets (batch, n_out) and known future inputs
    (batch, n_future). Windows are numbered series after series,
    ``windows_per_series`` of each; the last ones of each series validate, and the
    ``gap`` before them are left out. ``after_training(net)`` runs once the network
    is trained (the pandas route computes its conformal scores there)."""

    get_batch: Callable
    windows_per_series: Sequence[int]
    n_inputs: int
    n_out: int
    n_future: int
    n_steps: int
    gap: int = 0
    after_training: Callable | None = None
    #: Stateful training (:mod:`tsrnn.stateful`): the streams to follow, instead of
    #: windows.
    streams: object = None
    #: What ``get_batch`` builds batches from (:class:`tsrnn.data.WindowBatches` or
    #: :class:`tsrnn.data.ArrayBatches`), for training that builds them on the GPU.
    batches: object = None


class Trainer:
    """Runs epochs over windows given by index; records the curves."""

    def __init__(self, net: RecurrentNet, get_batch, *, batch_size, learning_rate,
                 optimizer, weight_decay, clip_norm, loss, tbptt_steps, rng,
                 progress=None, quantiles=None, weight_averaging=None):
        self.net = net
        self.get_batch = get_batch
        self.batch_size = batch_size
        self.loss = loss
        self.quantiles = quantiles
        self.clip_norm = clip_norm
        self.tbptt_steps = tbptt_steps
        self.rng = rng
        self.opt = make_optimizer(optimizer, learning_rate, weight_decay)
        self.opt.average_decay = weight_averaging
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
            self.apply(grads, loss, epoch)
            total += loss * len(b)
            count += len(b)
        return total / max(count, 1)

    def apply(self, grads: dict, loss: float, epoch: int) -> None:
        """One optimizer step with ``grads`` (clipped), after checking that the loss
        and the gradients are finite."""
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
        self.opt.update_average(self.net.params)

    def kept_weights(self) -> dict:
        """The weights that validate and are kept (not copies): the moving average
        with ``weight_averaging`` (once there is one), else the weights themselves."""
        averaging = self.opt.average_decay is not None and self.opt.average
        return self.opt.average if averaging else self.net.params

    # What the epoch loop does with weights, as methods: a trainer whose weights live
    # elsewhere (tsrnn.device_training, on the GPU) overrides these.
    def snapshot(self, kept: bool = False) -> dict:
        """A copy of the weights (``kept``: of the weights that validate)."""
        source = self.kept_weights() if kept else self.net.params
        return {k: v.copy() for k, v in source.items()}

    def restore(self, snapshot: dict) -> None:
        self.net.params.update(snapshot)

    def adopt(self, params: dict):
        """A snapshot of host weights ``params`` (a checkpoint's best)."""
        return params

    def as_host(self, snapshot) -> dict:
        return snapshot

    def evaluate_kept(self, val_idx: np.ndarray) -> float:
        """The validation loss of the kept weights."""
        live = self.net.params.copy()
        self.net.params.update(self.kept_weights())  # evaluate() only reads them
        try:
            return self.evaluate(val_idx)
        finally:
            self.net.params.update(live)

    def finish(self, best) -> None:
        """The network's final weights: ``best`` (the best validated), or without
        validation the moving average as it ends (else the weights as they are)."""
        if best is not None:
            self.net.params.update(best)
        elif self.kept_weights() is not self.net.params:
            self.net.params.update({k: v.copy() for k, v in self.opt.average.items()})

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
        keep_freed_memory()
        h = history or {"loss": [], "val_loss": [], "best": np.inf, "best_epoch": 0,
                        "stale": 0}
        h.setdefault("stale", 0)
        self.history = h
        best_params = self.snapshot() if best_params is None else self.adopt(best_params)
        stopped = False
        start = len(h["loss"])
        bar = self.progress(total=max_epochs) if self.progress else None
        try:
            # tsrnn splits large batches over threads itself (parallel.py); inside a
            # step, BLAS threads only add hand-offs to small products.
            with parallel.one_blas_thread():
                for epoch in range(start + 1, start + max_epochs + 1):
                    prev = self.snapshot()
                    try:
                        loss = self.train_epoch(train_idx, epoch)
                    except FloatingPointError:
                        self.restore(prev)  # the last finite weights
                        raise
                    h["loss"].append(loss)
                    monitored = loss
                    if len(val_idx):
                        monitored = self.evaluate_kept(val_idx)
                        h["val_loss"].append(monitored)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4g}", val=f"{monitored:.4g}")
                    best = h["best"]
                    threshold = best - tol * abs(best) if np.isfinite(best) else best
                    if monitored < threshold:
                        h["best"], h["best_epoch"] = monitored, epoch
                        best_params = self.snapshot(kept=True)
                        h["stale"] = 0
                    else:
                        h["stale"] += 1
                    stopped = h["stale"] >= patience
                    h["stopped"] = stopped
                    if on_epoch_end is not None:
                        on_epoch_end(h, self.as_host(best_params))
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
        self.finish(best_params if len(val_idx) else None)
        if warn and not stopped:
            _warnings.warn(
                f"Reached max_epochs={max_epochs} before early stopping; the model may "
                "not have converged (raise max_epochs or learning_rate).",
                ConvergenceWarning,
            )
        h["stopped"] = stopped
        self.check_not_diverged(val_idx, train_idx, h)
        return h

    def naive_loss(self, idx: np.ndarray, validation: bool = False) -> float:
        """The loss of a network that outputs zeros, i.e. of the naive forecast the
        network forecasts the change from, on (at most 4096 of) the windows ``idx``
        (training or ``validation`` ones: windows are numbered alike)."""
        _, y, _ = self.get_batch(spread_sample(np.asarray(idx), 4096))
        return self.zero_output_loss(y)

    def zero_output_loss(self, y: np.ndarray) -> float:
        """The loss of zero outputs against targets ``y`` (rows, outputs)."""
        q = max(len(self.quantiles or ()), 1)
        zeros = np.zeros((len(y), y.shape[1] * q), dtype=y.dtype)
        return loss_and_grad(self.loss, zeros, y, self.quantiles)[0]

    def check_not_diverged(self, val_idx: np.ndarray, train_idx: np.ndarray,
                           h: dict) -> None:
        """A FloatingPointError when the kept weights' validation loss, or the last
        epoch's training loss, is more than ``DIVERGED_LOSS_FACTOR`` times the naive
        forecast's on the same windows: a run that diverged would otherwise give
        finite but absurd forecasts (or, with weight averaging, an average of
        diverged weights that happens to validate passably)."""
        if h["val_loss"] and len(val_idx):
            self._refuse_if_far(h["best"], self.naive_loss(val_idx, validation=True),
                                "validation loss of the kept weights")
        if h["loss"] and len(train_idx):
            self._refuse_if_far(h["loss"][-1], self.naive_loss(train_idx),
                                "training loss of the last epoch")

    def _refuse_if_far(self, final: float, naive: float, what: str) -> None:
        if final > DIVERGED_LOSS_FACTOR * max(naive, DIVERGED_LOSS_FLOOR):
            raise FloatingPointError(
                f"Training diverged: the {what}, {final:.4g}, is "
                f"{final / max(naive, 1e-300):.3g} times that of the naive forecast "
                f"({naive:.4g}). Lower learning_rate (now {self.opt.learning_rate:g}) "
                "or set clip_norm.")
