"""The helper process that compiles a cold fit's backward and inference kernels."""

import json
import os
import subprocess
import sys

import pytest

from tsrnn import compile_helper, parallel

# The kernels the helper compiles, by module and name.
HELPER_KERNELS = {
    "tsrnn.kernels.cpu.{cell}": ["_{cell}_backward_steps", "{cell}_final_state"],
    "tsrnn.kernels.cpu.linalg": ["sum_squares", "rows_affine", "matmul_acc", "sum_outer",
                                 "col_sum"],
    "tsrnn.optim": ["_adam_update", "_average_update"],
}

_CHECK = """
import json, warnings
import numpy as np, pandas as pd
import importlib
from tsrnn import TSRNNRegressor
from tsrnn.compile_helper import compile_kernels
kernels = json.loads({kernels!r})
cells = ["lstm", "gru", "rnn"]
y = pd.Series(np.sin(np.arange(60) / 3) + 2.0,
              index=pd.date_range("2000-01-01", periods=60, freq="D"))
found = {{}}
for cell in cells:
    compile_kernels(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TSRNNRegressor(cell=cell, hidden_size=4, lookback=6, horizon=2, max_epochs=2,
                       random_state=0).fit(y).predict(level=[80])
    for module, names in kernels.items():
        mod = importlib.import_module(module.format(cell=cell))
        for name in names:
            name = name.format(cell=cell)
            found[name] = [str(s) for s in getattr(mod, name).signatures]
print(json.dumps(found))
"""


def test_helper_compiles_the_signatures_a_fit_uses():
    """compile_kernels calls the kernels with the argument types a fit passes: after
    it, a whole fit and forecast of each cell add no second specialisation of any of
    them (a type that differed would be compiled again, in the fit)."""
    code = _CHECK.format(kernels=json.dumps(HELPER_KERNELS))
    env = dict(os.environ, TSRNN_COMPILE_HELPER="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(found) == 3 * 2 + 5 + 2  # per cell two, shared seven
    for name, signatures in found.items():
        assert len(signatures) == 1, (name, signatures)
        assert "float32" in signatures[0], (name, signatures)


def test_enabled_follows_environment_and_threads(monkeypatch):
    monkeypatch.setattr(parallel, "_num_threads", 2)
    monkeypatch.setenv("TSRNN_COMPILE_HELPER", "1")
    monkeypatch.setitem(compile_helper.JIT_OPTIONS, "cache", True)
    assert compile_helper.enabled()
    monkeypatch.setenv("TSRNN_COMPILE_HELPER", "0")
    assert not compile_helper.enabled()
    monkeypatch.setenv("TSRNN_COMPILE_HELPER", "1")
    monkeypatch.setattr(parallel, "_num_threads", 1)  # e.g. a joblib worker
    assert not compile_helper.enabled()
    monkeypatch.setattr(parallel, "_num_threads", 2)
    monkeypatch.setitem(compile_helper.JIT_OPTIONS, "cache", False)  # no disk cache
    assert not compile_helper.enabled()
    monkeypatch.setitem(compile_helper.JIT_OPTIONS, "cache", True)
    # Python embedded in a server: its executable is the server, not an interpreter
    monkeypatch.setattr(compile_helper.sys, "executable", "/usr/bin/uwsgi")
    assert not compile_helper.enabled()
    monkeypatch.setattr(compile_helper.sys, "executable", "/opt/conda/bin/python3.11")
    assert compile_helper.enabled()


class _FakePopen:
    started: list = []

    def __init__(self, cmd, **kwargs):
        self.cmd = cmd
        self.waited = False
        _FakePopen.started.append(self)

    running = False  # poll(): finished, unless a test says it runs

    def wait(self, timeout=None):
        self.waited = True
        return 0

    def poll(self):
        return None if self.running else 0


@pytest.fixture
def fake_helper(monkeypatch):
    _FakePopen.started = []
    monkeypatch.setattr(compile_helper.subprocess, "Popen", _FakePopen)
    monkeypatch.setattr(compile_helper, "enabled", lambda: True)
    monkeypatch.setattr(compile_helper, "_helper", None)
    return _FakePopen.started


def test_start_only_when_the_kernel_is_not_cached(fake_helper, monkeypatch):
    monkeypatch.setattr(compile_helper, "_cached", lambda cell: True)
    assert not compile_helper.start("lstm")
    assert fake_helper == []
    monkeypatch.setattr(compile_helper, "_cached", lambda cell: False)
    assert compile_helper.start("gru")
    assert compile_helper.start("gru")  # one helper at a time
    assert len(fake_helper) == 1
    assert "compile_kernels('gru', " in fake_helper[0].cmd[-1]
    compile_helper.wait()
    assert fake_helper[0].waited and compile_helper._helper is None
    compile_helper.wait()  # nothing left to wait for


def _recording_tasks(monkeypatch, log):
    names = ["backward_steps", "final_state", "input_grad", "adam", "average"]
    monkeypatch.setattr(compile_helper, "_tasks", lambda cell: [
        (name, lambda name=name: log.append(name)) for name in names])


def test_the_fit_takes_kernels_from_the_end_until_it_meets_the_helper(fake_helper,
                                                                       monkeypatch):
    """While the helper runs, the fit's first backward pass compiles the kernels the
    helper has not claimed, last first, and stops at the first claimed one."""
    monkeypatch.setattr(compile_helper, "_cached", lambda cell: False)
    log = []
    _recording_tasks(monkeypatch, log)
    assert compile_helper.start("lstm")
    claims = compile_helper._claims
    for name in ["backward_steps", "final_state", "input_grad"]:  # the helper's so far
        assert compile_helper._claim(claims, name)
    fake_helper[0].running = True
    compile_helper.wait()
    assert log == ["average", "adam"]
    assert fake_helper[0].waited and not os.path.exists(claims)


def test_a_finished_helper_leaves_the_fit_nothing_to_compile(fake_helper, monkeypatch):
    monkeypatch.setattr(compile_helper, "_cached", lambda cell: False)
    log = []
    _recording_tasks(monkeypatch, log)
    assert compile_helper.start("lstm")
    compile_helper.wait()  # poll(): finished
    assert log == [] and fake_helper[0].waited


def test_the_helper_stops_at_the_first_kernel_the_fit_has_taken(monkeypatch, tmp_path):
    log = []
    _recording_tasks(monkeypatch, log)
    assert compile_helper._claim(str(tmp_path), "adam")  # the fit's
    compile_helper.compile_kernels("lstm", str(tmp_path))
    assert log == ["backward_steps", "final_state", "input_grad"]
    assert not compile_helper._claim(str(tmp_path), "input_grad")  # claimed once
    assert not compile_helper._claim(str(tmp_path / "gone"), "x")  # folder removed
    log.clear()
    compile_helper.compile_kernels("lstm")  # no claims folder: all of them
    assert log == ["backward_steps", "final_state", "input_grad", "adam", "average"]


def test_a_forked_child_does_not_wait_for_its_parents_helper(fake_helper, monkeypatch):
    monkeypatch.setattr(compile_helper, "_cached", lambda cell: False)
    assert compile_helper.start("lstm")
    monkeypatch.setattr(compile_helper, "_owner_pid", os.getpid() + 1)
    compile_helper.wait()
    assert not fake_helper[0].waited and compile_helper._helper is None


_CACHE_CHECK = """
import numpy as np
from tsrnn import compile_helper
from tsrnn import functional as F
before = compile_helper._cached("rnn")
p = F.init_params("rnn", 1, 3)
out, _, cache = F.forward("rnn", np.zeros((2, 3, 1), np.float32), p, training=True)
F.backward(cache, np.ones_like(out))
print(before, compile_helper._cached("rnn"))
"""


def test_the_cache_check_sees_the_kernel_arrive(tmp_path):
    """In an empty cache the check finds no backward kernel (so a cold fit starts
    the helper), and after a backward pass it finds it: numba's internals it reads
    are the ones this numba has (were they not, the check would say "cached" from
    the start and the helper would never run)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _CACHE_CHECK], capture_output=True,
                         text=True, env=env, check=True, timeout=600)
    assert out.stdout.split() == ["False", "True"]


_ONE_SPECIALISATION = """
import gc, warnings
warnings.simplefilter("ignore")
from numba.core.registry import CPUDispatcher
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers
for cell in ("lstm", "gru", "rnn"):
    TSRNNRegressor(cell=cell, max_epochs=2).fit(load_air_passengers()).predict(level=[80])
several = [f"{d.py_func.__module__}.{d.py_func.__name__}" for d in gc.get_objects()
           if isinstance(d, CPUDispatcher) and d.py_func.__module__.startswith("tsrnn")
           and len(d.signatures) > 1]
print(several)
"""


def test_a_fit_compiles_one_specialisation_of_each_kernel():
    """The helper and the fit may compile a shared kernel at the same time; numba's
    disk cache is safe for that only when both compile the same specialisation. A
    default fit and forecast of every cell compiles one of each tsrnn function."""
    env = dict(os.environ, TSRNN_COMPILE_HELPER="0")
    out = subprocess.run([sys.executable, "-c", _ONE_SPECIALISATION], capture_output=True,
                         text=True, env=env, check=True, timeout=600)
    assert out.stdout.strip().splitlines()[-1] == "[]"
