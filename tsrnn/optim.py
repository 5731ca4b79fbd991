"""Optimizers as small plain classes over dicts of arrays, updated in place.

Each keeps its state per parameter name, so ``state_dict``/``load_state_dict`` make
checkpoints trivial. The update rules are PyTorch's (``torch.optim.SGD``, ``Adam``,
``RMSprop``, with L2 ``weight_decay`` added to the gradient). Each also keeps, when
asked (``average_decay``), an exponential moving average of the weights it updates
(:meth:`_Optimizer.update_average`), which the training validates and keeps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tsrnn._config import JIT_OPTIONS

__all__ = ["SGD", "Adam", "RMSprop", "make_optimizer"]


@njit(**JIT_OPTIONS)
def _adam_update(p, g, m, v, b1, b2, step_size, c2, eps, wd):
    """One Adam step over flat arrays, in one pass (numpy needs eight passes and
    five temporaries per parameter)."""
    for i in range(p.size):
        gi = g[i] + wd * p[i]
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (np.sqrt(vi / c2) + eps)


@njit(**JIT_OPTIONS)
def _average_update(a, p, decay):
    for i in range(p.size):
        a[i] = decay * a[i] + (1.0 - decay) * p[i]


class _Optimizer:
    #: The slot of the weights' moving average (beside each optimizer's own).
    AVERAGE = "average"

    def __init__(self, learning_rate: float, weight_decay: float = 0.0):
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.average_decay: float | None = None
        self.average: dict[str, np.ndarray] = {}

    def _grad(self, p, g):
        return g + self.weight_decay * p if self.weight_decay else g

    def update_average(self, params: dict) -> None:
        """Move the average of the weights towards ``params`` (after a step). The
        decay is ``min(average_decay, (1 + t) / (10 + t))`` at step ``t``, so that
        the first steps' weights, far from trained, fade fast: the average of a
        short training is not stuck near the initial weights."""
        if self.average_decay is None:
            return
        decay = min(self.average_decay, (1.0 + self.t) / (10.0 + self.t))
        for k, p in params.items():
            a = self.average.get(k)
            if a is None:
                self.average[k] = np.array(p, order="C")
            else:
                _average_update(a.reshape(-1), np.ascontiguousarray(p).reshape(-1), decay)

    def state_dict(self) -> dict:
        state = {"t": self.t}
        for name in (*self._slots, self.AVERAGE):
            for k, v in getattr(self, name).items():
                state[f"{name}/{k}"] = v.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        for name in (*self._slots, self.AVERAGE):
            slot = {}
            for k, v in state.items():
                if k.startswith(name + "/"):
                    slot[k[len(name) + 1 :]] = np.array(v, order="C")
            setattr(self, name, slot)


class SGD(_Optimizer):
    """``p -= lr * (g + wd * p)``, with optional (heavy-ball) momentum as in PyTorch."""

    _slots = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.momentum = float(momentum)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        for k, p in params.items():
            g = self._grad(p, grads[k])
            if self.momentum:
                v = self.velocity.get(k)
                v = g.copy() if v is None else self.momentum * v + g
                self.velocity[k] = v
                g = v
            p -= (self.learning_rate * g).astype(p.dtype, copy=False)


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with bias correction, PyTorch's formulation."""

    _slots = ("m", "v")

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1 = 1.0 - b1**self.t
        c2 = 1.0 - b2**self.t
        step_size = self.learning_rate / c1
        for k, p in params.items():
            if k not in self.m:  # C-ordered, so that reshape(-1) below is a view
                self.m[k] = np.zeros(p.shape, p.dtype)
                self.v[k] = np.zeros(p.shape, p.dtype)
            # The update runs on flat views; a non-contiguous parameter is updated
            # in a contiguous copy that is written back.
            flat = p.reshape(-1) if p.flags.c_contiguous else np.ascontiguousarray(p).reshape(-1)
            g = np.ascontiguousarray(grads[k], dtype=p.dtype).reshape(-1)
            _adam_update(flat, g, self.m[k].reshape(-1), self.v[k].reshape(-1), b1, b2,
                         step_size, c2, self.eps, self.weight_decay)
            if not p.flags.c_contiguous:
                p[...] = flat.reshape(p.shape)


class RMSprop(_Optimizer):
    """RMSprop as in PyTorch (alpha=0.99, eps outside the square root)."""

    _slots = ("sq",)

    def __init__(self, learning_rate=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(learning_rate, weight_decay)
        self.alpha, self.eps = float(alpha), float(eps)
        self.sq: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        for k, p in params.items():
            g = self._grad(p, grads[k])
            sq = self.sq.get(k)
            if sq is None:
                sq = self.sq[k] = np.zeros_like(p)
            sq *= self.alpha
            sq += (1 - self.alpha) * (g * g)
            p -= self.learning_rate * g / (np.sqrt(sq) + self.eps)


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0):
    """"adam" | "sgd" | "rmsprop" -> a fresh optimizer."""
    classes = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop}
    if name not in classes:
        raise ValueError(f"optimizer must be one of {sorted(classes)}. Got {name!r}.")
    return classes[name](learning_rate=learning_rate, weight_decay=weight_decay)
