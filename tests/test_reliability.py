"""Training that survives interruption, divergence that is reported, and
reproducibility across processes."""

import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand
from tsrnn.model_file import read_model_file


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _same_weights(a, b):
    return all(np.array_equal(a.net_.params[k], b.net_.params[k]) for k in a.net_.params)


def test_divergence_names_the_epoch_and_keeps_finite_weights():
    y = load_air_passengers()
    # squared error: its gradient grows with the error, so this step size diverges
    m = TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, optimizer="sgd", loss="mse",
                       learning_rate=2.0, clip_norm=None, max_epochs=50, random_state=0)
    with pytest.raises(FloatingPointError, match=r"non-finite at epoch \d+\. Lower "
                                                 r"learning_rate or set clip_norm"), \
            warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the error, no numpy noise first
        m.fit(y)
    assert all(np.isfinite(v).all() for v in m.net_.params.values())
    assert 1 <= m.n_iter_ < 50 and len(m.loss_curve_) == m.n_iter_
    assert np.isfinite(m.loss_curve_).all()


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    y = load_air_passengers()
    kw = dict(lookback=12, horizon=3, hidden_size=8, max_epochs=8, patience=100,
              random_state=0)
    ck = tmp_path / "ck.tsrnn"
    full = TSRNNRegressor(**kw).fit(y)
    first = TSRNNRegressor(**{**kw, "max_epochs": 3}, checkpoint_path=ck).fit(y)
    assert len(read_model_file(ck)[0]["state"]["loss_curve"]) == 3
    resumed = TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)
    assert resumed.loss_curve_[:3] == first.loss_curve_
    assert resumed.loss_curve_ == full.loss_curve_ and _same_weights(resumed, full)
    again = TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)  # finished: not repeated
    assert again.loss_curve_ == full.loss_curve_ and _same_weights(again, full)
    # the checkpoint is a model file like any other (holding the last weights)
    assert np.isfinite(TSRNNRegressor.load(ck).predict().to_numpy()).all()


def test_a_resumed_fit_has_the_intervals_of_an_uninterrupted_one(tmp_path):
    """Conformal scores come from the trained network after a resume too (and after
    a finished checkpoint that is not run again)."""
    y = load_air_passengers()
    kw = dict(lookback=12, horizon=3, hidden_size=8, max_epochs=6, patience=100,
              random_state=0)
    ck = tmp_path / "ck.tsrnn"
    full = TSRNNRegressor(**kw).fit(y).predict(level=[80])
    TSRNNRegressor(**{**kw, "max_epochs": 2}, checkpoint_path=ck).fit(y)
    resumed = TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)
    pd.testing.assert_frame_equal(resumed.predict(level=[80]), full)
    again = TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)
    pd.testing.assert_frame_equal(again.predict(level=[80]), full)


def test_checkpoint_of_other_parameters_or_data_is_refused(tmp_path):
    y = load_air_passengers()
    ck = tmp_path / "ck.tsrnn"
    kw = dict(lookback=12, horizon=3, hidden_size=8, max_epochs=2, random_state=0)
    TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)
    with pytest.raises(ValueError, match=r"other values of \['hidden_size'\]"):
        TSRNNRegressor(**{**kw, "hidden_size": 4}, checkpoint_path=ck).fit(y)
    with pytest.raises(ValueError, match="made on other data"):
        TSRNNRegressor(**kw, checkpoint_path=ck).fit(y[:-5])


SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_elecdemand
y = load_elecdemand()["demand_gw"].iloc[:1500]
TSRNNRegressor(**{kw!r}, checkpoint_path=sys.argv[1]).fit(y)
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_continues_the_same_run(tmp_path):
    """A training process is killed with SIGKILL in the middle of an epoch; fit with
    the same checkpoint_path resumes and ends exactly where an uninterrupted run in
    this process ends (which also shows runs are reproducible across processes).

    The killed process is given far more epochs than it can run before the kill, so a
    slow poll on a loaded machine cannot let it finish first (max_epochs may change
    between a checkpoint and its resumption); both runs here stop a few epochs after
    the kill."""
    kw = dict(lookback=24, horizon=6, hidden_size=16, patience=100_000, random_state=0)
    ck = tmp_path / "ck.tsrnn"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(kw={**kw, "max_epochs": 100_000})))
    proc = subprocess.Popen([sys.executable, str(script), str(ck)])
    done_at_kill = 0
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if ck.exists():
                done_at_kill = len(read_model_file(ck)[0]["state"]["loss_curve"])
                if done_at_kill >= 3:
                    time.sleep(0.05)  # into the next epoch
                    break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the training ended before the kill"
    meta, _ = read_model_file(ck)  # the file survived the kill intact
    saved = meta["state"]["loss_curve"]
    assert len(saved) >= 3

    y = load_elecdemand()["demand_gw"].iloc[:1500]
    kw["max_epochs"] = len(saved) + 5
    resumed = TSRNNRegressor(**kw, checkpoint_path=ck).fit(y)
    assert resumed.loss_curve_[: len(saved)] == saved
    assert resumed.n_iter_ == len(saved) + 5
    uninterrupted = TSRNNRegressor(**kw).fit(y)
    assert resumed.loss_curve_ == uninterrupted.loss_curve_
    assert _same_weights(resumed, uninterrupted)
    np.testing.assert_array_equal(resumed.predict().to_numpy(),
                                  uninterrupted.predict().to_numpy())
