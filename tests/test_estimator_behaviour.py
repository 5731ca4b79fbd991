"""How the estimator behaves around the edges of a user's session: Ctrl-C, progress
bars and silence, scikit-learn meta-estimators, and memory on long series."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import RandomizedSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers

CTRL_C_SCRIPT = """
import signal, sys, warnings
# A process started in the background by a non-interactive shell (some CI runners)
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_elecdemand
y = load_elecdemand()["demand_gw"].iloc[:3000]
with warnings.catch_warnings():  # compile the kernels first, so that the interrupt
    warnings.simplefilter("ignore")  # lands in training even with a cold cache
    TSRNNRegressor(lookback=48, horizon=6, max_epochs=1).fit(y.iloc[:200])
m = TSRNNRegressor(lookback=48, horizon=6, max_epochs=10000, patience=10**6,
                   random_state=0)
print("fitting", flush=True)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    m.fit(y)
print("warned:", [str(x.message) for x in w if "interrupted" in str(x.message)])
print("epochs:", m.n_iter_, "best:", m.best_epoch_)
print(m.predict().iloc[:, 0].round(3).tolist())
m.save(sys.argv[1])
"""


@pytest.mark.slow
def test_ctrl_c_during_fit_leaves_a_usable_model_with_the_best_weights(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "m.tsrnn")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "fitting"
    time.sleep(4)  # a few epochs in
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "fit interrupted: keeping the best weights so far." in out
    epochs = int(out.split("epochs:")[1].split()[0])
    assert 1 <= epochs < 10000
    m = TSRNNRegressor.load(tmp_path / "m.tsrnn")
    assert m.n_iter_ == epochs and np.isfinite(m.predict().to_numpy()).all()


def test_silent_by_default_and_no_files(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning when it converges
        TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=500,
                       patience=5, random_state=0).fit(load_air_passengers())
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert os.listdir(tmp_path) == []


def test_verbose_shows_a_progress_bar_with_the_loss(capfd):
    pytest.importorskip("tqdm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=3, verbose=1,
                       random_state=0).fit(load_air_passengers())
    err = capfd.readouterr().err
    assert "tsrnn fit" in err and "loss=" in err and "val=" in err and "3/3" in err


def test_verbose_without_tqdm_says_so_once_and_trains_silently(monkeypatch, capfd):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.warns(UserWarning, match=r"verbose=1 needs tqdm \(pip install "
                                         r"'tsrnn\[progress\]'\)") as caught, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=3, verbose=1,
                           random_state=0).fit(load_air_passengers())
    assert [w.filename for w in caught if "tqdm" in str(w.message)] == [__file__]
    assert m.n_iter_ == 3 and capfd.readouterr().err == ""


def test_randomized_search_over_a_pipeline_with_time_series_split():
    y = np.log(load_air_passengers().to_numpy())
    X, t = tsrnn.make_windows(y, lookback=12)
    X2 = X[:, :, 0]  # tabular: each row one window, so StandardScaler applies
    pipe = make_pipeline(StandardScaler(), TSRNNRegressor(max_epochs=5, random_state=0))
    search = RandomizedSearchCV(
        pipe, {"tsrnnregressor__hidden_size": [4, 8, 16],
               "tsrnnregressor__cell": ["gru", "rnn", "lstm"]},
        n_iter=3, cv=TimeSeriesSplit(3), n_jobs=2, random_state=0,
        scoring="neg_mean_absolute_error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X2, t)
    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # the refit best pipeline equals one fitted by hand with the best parameters
    best = make_pipeline(StandardScaler(), TSRNNRegressor(max_epochs=5, random_state=0))
    best.set_params(**search.best_params_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best.fit(X2, t)
    np.testing.assert_array_equal(best.predict(X2), search.predict(X2))


MEMORY_SCRIPT = """
import resource, sys, warnings
import numpy as np, pandas as pd
from tsrnn import TSRNNRegressor
from tsrnn import training
# Train on a few batches only: the point is the memory of the data path (packing,
# scaling, window indexing, validation, calibration), not 5M windows of arithmetic.
orig = training.Trainer.train_epoch
training.Trainer.train_epoch = lambda self, idx, epoch: orig(
    self, idx[:20 * self.batch_size], epoch)
orig_eval = training.Trainer.evaluate
training.Trainer.evaluate = lambda self, idx: orig_eval(self, idx[:4096])
n = 5_000_000
rng = np.random.default_rng(0)
noise = rng.standard_normal(n).astype(np.float32) * 0.1
y = pd.Series(np.sin(np.arange(n) / 50).astype(np.float32) + noise,
              index=pd.date_range("2000-01-01", periods=n, freq="min"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m = TSRNNRegressor(lookback=168, horizon=1, hidden_size=16, max_epochs=1, random_state=0).fit(y)
fc = m.predict(level=[80])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base // 1024, peak // 1024, fc.shape)
"""


@pytest.mark.slow
def test_five_million_points_fit_under_one_gigabyte(tmp_path):
    """Windows of 168 steps over 5,000,000 float32 points would take 3.4 GB if
    copied; the packed data with windows gathered by index stays under 1 GB peak
    (resident set of the whole process, Python and the compiled kernels included)."""
    script = tmp_path / "mem.py"
    script.write_text(textwrap.dedent(MEMORY_SCRIPT))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    base_mb, peak_mb, _ = r.stdout.split(maxsplit=2)
    assert int(peak_mb) < 1024, r.stdout
