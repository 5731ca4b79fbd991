"""Training orchestration for the estimator: the train/validation split of windows,
building or reusing the network, the trainer, checkpoints and resuming from them.

The data routes (:mod:`tsrnn.routes`) turn the user's data into windows served by
index; this module trains on them and keeps what continues a fit (optimizer state,
random generator, curves) in a :class:`TrainingState`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tsrnn import _warnings, device_training

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
from tsrnn.backend import resolve_device
from tsrnn.data import split_windows
from tsrnn.model_file import read_model_file, write_model_file
from tsrnn.network import RecurrentNet
from tsrnn.state import TrainingState, export_state, import_state, json_params
from tsrnn.training import Trainer, TrainingPlan

# Parameters that may change between a checkpoint and the fit resuming from it.
RESUMABLE_CHANGES = frozenset({"max_epochs", "verbose", "checkpoint_every",
                               "checkpoint_path", "patience"})


def _progress_factory(verbose):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is optional: say so once, train silently
        _warnings.warn("verbose=1 needs tqdm (pip install 'tsrnn[progress]').")
        return None
    return lambda total: tqdm(total=total, desc="tsrnn fit", unit="epoch", leave=False)


def new_rng(random_state):
    """The training's numpy Generator from ``random_state`` (None, an int, a
    Generator or a legacy RandomState)."""
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(np.iinfo(np.int32).max)
    return np.random.default_rng(random_state)


def check_same_network(est):
    """warm_start / partial_fit go on training the fitted network: its shape
    parameters must not have changed since."""
    net = est.net_
    now = {"cell": net.cell, "hidden_size": net.hidden_size,
           "num_layers": net.num_layers, "bidirectional": net.bidirectional,
           "head": net.head}
    changed = [f"{k}={getattr(est, k)!r} (fitted: {v!r})" for k, v in now.items()
               if getattr(est, k) != v]
    if changed:
        raise ValueError(f"warm_start and partial_fit continue the fitted network, "
                         f"whose shape changed: {', '.join(changed)}. Fit a new "
                         f"model (warm_start=False) for another network.")


def set_history(est, history):
    """The curves of ``history`` as the estimator's fitted attributes."""
    est.training_state_.history = history
    est.loss_curve_ = list(history["loss"])
    est.validation_loss_curve_ = list(history["val_loss"])
    est.best_epoch_ = int(history["best_epoch"])
    est.n_iter_ = len(est.loss_curve_)


@contextmanager
def checkpoint_lock(path):
    """Hold ``<path>.lock`` for the whole fit, so that two fits can never write one
    checkpoint (the second is refused, naming the process that holds it). No lock
    where ``fcntl`` is missing (Windows)."""
    if path is None or fcntl is None:
        yield
        return
    lock = Path(f"{path}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            raise RuntimeError(
                f"checkpoint_path {path} is in use by another fit (process {holder}); "
                "give each run its own checkpoint_path.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def train(est, plan: TrainingPlan, incremental: bool = False) -> None:
    """Train ``est.net_`` on the windows of ``plan`` (see :func:`_train`), holding
    the checkpoint's lock when there is one."""
    with checkpoint_lock(est.checkpoint_path):
        _train(est, plan, incremental)


def _train(est, plan: TrainingPlan, incremental: bool = False) -> None:
    """Train ``est.net_`` on the windows of ``plan``: split them (the last
    ``validation_fraction`` of each series validates, ``plan.gap`` windows before it
    are left out: :func:`tsrnn.data.split_windows`), build or reuse the network, run
    the trainer, then ``plan.after_training``. ``est.route_`` is the fitted data
    route."""
    prev = est.training_state_ if hasattr(est, "net_") else None
    rng = prev.rng if (incremental and prev is not None and prev.rng is not None) \
        else new_rng(est.random_state)
    if plan.streams is not None:  # stateful: streams train, series validate
        train_idx = np.arange(len(plan.streams.begin))
        val_idx = np.arange(len(plan.streams.val_from))
    else:
        train_idx, val_idx = split_windows(
            plan.windows_per_series,
            est.validation_fraction if est.early_stopping else 0.0, plan.gap)
    reuse = (est.warm_start or incremental) and hasattr(est, "net_")
    resume_best = None
    if est.checkpoint_path is not None and not incremental:
        resume_best = resume_from_checkpoint(est)
        if resume_best is not None:
            reuse, prev = True, est.training_state_
            rng = prev.rng
    if reuse:
        check_same_network(est)
    else:
        est.net_ = RecurrentNet(est.cell, plan.n_inputs, est.hidden_size, est.num_layers,
                                est.bidirectional, est.dropout, plan.n_out,
                                plan.n_future, rng, head=est.head, n_steps=plan.n_steps)
        prev = None
    state = est.training_state_ = TrainingState(
        history=None if prev is None else prev.history,
        optimizer=None if prev is None else prev.optimizer, rng=rng)
    # Settings that are not the network's shape follow the parameters on a reused
    # network too (warm_start with another dropout trains with that dropout).
    est.net_.device = resolve_device(est.device)
    est.net_.dropout = est.dropout
    kw = dict(batch_size=est.batch_size, learning_rate=est.learning_rate,
              optimizer=est.optimizer, weight_decay=est.weight_decay,
              clip_norm=est.clip_norm, weight_averaging=est.weight_averaging,
              loss=est.loss, tbptt_steps=est.tbptt_steps,
              rng=rng, progress=_progress_factory(est.verbose),
              quantiles=est.route_.quantiles or None)
    if plan.streams is not None:
        from tsrnn.stateful import StreamTrainer

        trainer = StreamTrainer(est.net_, plan.streams, **kw)
    elif est.net_.device == "cuda" and device_training.unsupported(est.net_, est,
                                                                  plan) is None:
        trainer = device_training.DeviceTrainer(est.net_, plan, **kw)
    else:
        trainer = Trainer(est.net_, plan.get_batch, **kw)
    if state.optimizer is not None:
        trainer.opt.load_state_dict(state.optimizer)
    history = state.history
    epochs = 1 if incremental else est.max_epochs
    if resume_best is not None:
        epochs = est.max_epochs - len(history["loss"])
        if history.get("stopped") or epochs <= 0:
            est.net_.params.update(resume_best)  # finished run: its best weights
            _after(plan, est)
            return
    callback = None
    if est.checkpoint_path is not None:
        def callback(h, best_params):
            done = len(h["loss"])
            if done % est.checkpoint_every and not h["stopped"] \
                    and done != est.max_epochs:
                return
            state.optimizer = trainer.opt.state_dict()
            set_history(est, h)
            meta, arrays = export_state(est)
            arrays.update({f"best/{k}": v for k, v in best_params.items()})
            write_model_file(est.checkpoint_path, meta, arrays)
    try:
        trainer.fit(train_idx, val_idx, max_epochs=epochs,
                    patience=est.patience if not incremental else 10**9,
                    history=history, warn=not incremental, best_params=resume_best,
                    on_epoch_end=callback)
    finally:
        # Also after an error (divergence): the model stays usable with its last
        # finite weights and the curves so far.
        state.optimizer = trainer.opt.state_dict()
        set_history(est, trainer.history)
    _after(plan, est)


def _after(plan, est):
    if plan.after_training is not None:
        plan.after_training(est.net_)


def resume_from_checkpoint(est):
    """Restore weights, optimizer, random generator and curves from
    ``est.checkpoint_path`` if it exists; returns the best weights so far (None when
    there is no checkpoint). Refuses a checkpoint of other parameters or data."""
    path = Path(est.checkpoint_path)
    if not path.exists():
        return None
    meta, arrays = read_model_file(path)
    mine = json_params(est)
    diff = sorted(k for k in mine if k not in RESUMABLE_CHANGES
                  and meta["params"].get(k) != mine[k])
    if diff:
        raise ValueError(
            f"The checkpoint {path} was written with other values of {diff}; delete "
            "it or pass another checkpoint_path to start afresh."
        )
    if not est.route_.same_data(meta["state"], arrays):
        raise ValueError(f"The checkpoint {path} was made on other data (columns, "
                         "series or values differ); delete it or pass another "
                         "checkpoint_path.")
    # The route stays the one just built from the data (equal to the checkpoint's:
    # same_data); the network, the training state and the curves continue.
    net, _, training_state, curves = import_state(meta, arrays, est.get_params())
    est.net_, est.training_state_ = net, training_state
    for k, v in curves.items():
        setattr(est, k, v)
    return {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
