"""Kernel benchmark: one training epoch and batch-1 latency, tsrnn vs PyTorch, same run.

Workload (../shared/anchors/PERF.md): the tutorial's synthetic series, N=10000 series of
T=50 steps predicting step 51, input size 1, one recurrent layer + linear head on the
last hidden state, MSE, Adam, shuffled mini-batches, float32.

    python benchmarks/bench_kernels.py                 # full table (about 10 minutes)
    python benchmarks/bench_kernels.py --cells lstm --hidden 32 --batch 32   # a subset

Writes benchmarks/results/kernels.md (a subset: kernels_subset.md). Times are medians of
--repeat epochs, tsrnn's and PyTorch's taken in turns; compare the
ratio column (same run, same machine), not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import (  # noqa: E402
    check_quiet,
    interleaved_median_times,
    write_table,
)

from tsrnn import parallel  # noqa: E402
from tsrnn._config import keep_freed_memory  # noqa: E402
from tsrnn.network import RecurrentNet  # noqa: E402
from tsrnn.optim import Adam  # noqa: E402


def make_data(n=10000, T=50, seed=0):
    rng = np.random.default_rng(seed)
    f1, f2, o1, o2 = rng.random((4, n, 1))
    t = np.linspace(0, 1, T + 1)[None, :]
    s = (0.5 * np.sin((t - o1) * (f1 * 10 + 10)) + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
         + 0.1 * (rng.random((n, T + 1)) - 0.5))
    s = s.astype(np.float32)
    return np.ascontiguousarray(s[:, :T, None]), np.ascontiguousarray(s[:, T:])


class TsrnnModel:
    """The estimator's own network and training step (tsrnn.training), trained like
    the PyTorch loop below: no clipping, Adam at 1e-3."""

    def __init__(self, cell, H, seed=0):
        self.net = RecurrentNet(cell, 1, H, num_layers=1, bidirectional=False, dropout=0.0,
                                n_out=1, n_future=0, rng=np.random.default_rng(seed))
        self.opt = Adam(1e-3)
        keep_freed_memory()  # as the estimator's training loop and F.forward do

    def train_epoch(self, X, Y, B, rng):
        order = rng.permutation(len(X))
        with parallel.one_blas_thread():  # as the estimator's training loop does
            for lo in range(0, len(X), B):
                idx = order[lo : lo + B]
                _, grads = self.net.train_step(X[idx], None, Y[idx], "mse")
                self.opt.step(self.net.params, grads)

    def predict1(self, x):
        return self.net.forward(x, None)[0]


class FunctionalModel:
    """The same training through the public functional API, as a user building their
    own model writes it: ``F.forward(training=True)``, the linear head and the MSE
    in NumPy, ``F.backward(consume=True)``, tsrnn's Adam."""

    def __init__(self, cell, H, seed=0):
        from tsrnn import functional as F

        self.F, self.cell = F, cell
        self.params = F.init_params(cell, 1, H, seed=seed)
        self.keys = list(self.params)
        rng = np.random.default_rng(seed)
        bound = 1 / np.sqrt(H)  # nn.Linear's default initialisation
        self.params["head_w"] = rng.uniform(-bound, bound, (H, 1)).astype(np.float32)
        self.params["head_b"] = rng.uniform(-bound, bound, 1).astype(np.float32)
        self.opt = Adam(1e-3)

    def train_epoch(self, X, Y, B, rng):
        F, p = self.F, self.params
        rnn = {k: p[k] for k in self.keys}
        order = rng.permutation(len(X))
        for lo in range(0, len(X), B):
            idx = order[lo : lo + B]
            out, _, cache = F.forward(self.cell, X[idx], rnn, training=True)
            h = out[:, -1]
            d = (2.0 / len(idx)) * (h @ p["head_w"] + p["head_b"] - Y[idx])
            dout = np.zeros_like(out)
            dout[:, -1] = d @ p["head_w"].T
            grads, _, _ = F.backward(cache, dout, consume=True)
            grads["head_w"], grads["head_b"] = h.T @ d, d.sum(axis=0)
            self.opt.step(p, grads)

    def predict1(self, x):
        out, _, _ = self.F.forward(self.cell, x, self.rnn_params)
        return out[:, -1] @ self.params["head_w"] + self.params["head_b"]

    @property
    def rnn_params(self):
        return {k: self.params[k] for k in self.keys}


class ForwardOnly:
    """``F.forward`` alone, as issue 22's latency target states it (no head)."""

    def __init__(self, cell, H, seed=0):
        self.model = FunctionalModel(cell, H, seed)
        self.params = self.model.rnn_params

    def predict1(self, x):
        return self.model.F.forward(self.model.cell, x, self.params)[0]


class TorchModel:
    def __init__(self, cell, H, seed=0, device="cpu"):
        import torch

        torch.manual_seed(seed)
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.torch = torch
        self.device = device
        self.rnn = cls(1, H, batch_first=True).to(device)
        self.head = torch.nn.Linear(H, 1).to(device)
        self.opt = torch.optim.Adam(list(self.rnn.parameters()) + list(self.head.parameters()),
                                    lr=1e-3)

    def train_epoch(self, X, Y, B, rng):
        torch = self.torch
        Xt, Yt = torch.from_numpy(X).to(self.device), torch.from_numpy(Y).to(self.device)
        order = torch.from_numpy(rng.permutation(len(X))).to(self.device)
        for lo in range(0, len(X), B):
            idx = order[lo : lo + B]
            out, _ = self.rnn(Xt[idx])
            loss = torch.nn.functional.mse_loss(self.head(out[:, -1]), Yt[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        if self.device != "cpu":
            torch.cuda.synchronize()

    def predict1(self, x):
        with self.torch.inference_mode():
            out, _ = self.rnn(self.torch.from_numpy(x))
            return self.head(out[:, -1])


def latency_us(model, x, n=2000):
    model.predict1(x)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n // 5):
            model.predict1(x)
        times.append((time.perf_counter() - t0) / (n // 5))
    return float(np.median(times)) * 1e6


_FIRST_FORWARD = ("import numpy as np; from tsrnn import functional as F; "
                  "p=F.init_params('lstm',1,32); "
                  "F.forward('lstm', np.zeros((1,50,1),np.float32), p)")
# The README's main job in small: the estimator's defaults on bundled data.
_FIRST_FIT = ("import warnings; warnings.simplefilter('ignore'); "
              "from tsrnn import TSRNNRegressor; from tsrnn.datasets import load_air_passengers; "
              "TSRNNRegressor(max_epochs=5, random_state=0).fit(load_air_passengers()).predict()")
# The same without the smoothing partner, whose kernels a default fit compiles too.
_FIRST_FIT_NETWORK = _FIRST_FIT.replace("random_state=0", "random_state=0, combine=None")


def cold_start(cache_dir: str | None, job: str = _FIRST_FORWARD, **env_vars) -> float:
    """Seconds for ``job`` (imports included) in a fresh process, with its kernel
    cache in ``cache_dir`` and ``env_vars`` set."""
    code = f"import time; t=time.perf_counter(); {job}; print(time.perf_counter()-t)"
    env = dict(os.environ, **env_vars)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--hidden", default="16,32,64,128")
    ap.add_argument("--batch", default="32,256")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--cold-only", action="store_true",
                    help="only the cold-start timings, to benchmarks/results/cold_start.md")
    ap.add_argument("--allow-noisy", action="store_true",
                    help="run on a busy machine anyway (the tables are marked NOISY)")
    ap.add_argument("--out", default=None,
                    help="table file in benchmarks/results (default: kernels.md for the "
                         "full grid, kernels_subset.md for a subset)")
    args = ap.parse_args(argv)
    if args.out is None:  # a subset must not overwrite the full table
        full = (args.cells, args.hidden, args.batch) == ("rnn,lstm,gru", "16,32,64,128",
                                                          "32,256")
        args.out = "kernels.md" if full else "kernels_subset.md"
    try:
        import torch

        torch_ok = not args.no_torch
        torch_version = torch.__version__
    except ImportError:
        torch_ok, torch_version = False, "not installed"

    noisy = check_quiet(allow_noisy=args.allow_noisy)
    if args.cold_only:
        return cold_table(noisy)
    X, Y = make_data()
    rows = []
    threads = torch.get_num_threads() if torch_ok else 0
    for cell in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            for B in map(int, args.batch.split(",")):
                ts, fm = TsrnnModel(cell, H), FunctionalModel(cell, H)
                fns = [lambda: ts.train_epoch(X, Y, B, np.random.default_rng(0)),
                       lambda: fm.train_epoch(X, Y, B, np.random.default_rng(0))]
                if torch_ok:
                    tm, t1 = TorchModel(cell, H), TorchModel(cell, H)

                    def torch_epoch(model, n):
                        torch.set_num_threads(n)
                        try:
                            model.train_epoch(X, Y, B, np.random.default_rng(0))
                        finally:
                            torch.set_num_threads(threads)

                    fns.append(lambda: torch_epoch(tm, threads))
                    fns.append(lambda: torch_epoch(t1, 1))
                t_ts, t_f, t_pt, t_p1 = (interleaved_median_times(fns, repeat=args.repeat)
                                         + [float("nan")] * 2)[:4]
                rows.append([cell, H, B, f"{t_ts:.3f}", f"{t_f:.3f}", f"{t_pt:.3f}",
                             f"{t_pt / t_ts:.2f}x", f"{t_pt / t_f:.2f}x", f"{t_p1:.3f}",
                             f"{t_p1 / t_ts:.2f}x"])
                print(rows[-1], file=sys.stderr, flush=True)
    lat_rows = []
    x1 = X[:1]
    for cell in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            l_ts = latency_us(TsrnnModel(cell, H), x1)
            l_f = latency_us(FunctionalModel(cell, H), x1)
            l_f0 = latency_us(ForwardOnly(cell, H), x1)
            l_pt = latency_us(TorchModel(cell, H), x1) if torch_ok else float("nan")
            lat_rows.append([cell, H, f"{l_ts:.1f}", f"{l_f:.1f}", f"{l_f0:.1f}",
                             f"{l_pt:.1f}", f"{l_pt / l_ts:.1f}x", f"{l_pt / l_f:.1f}x"])
            print(lat_rows[-1], file=sys.stderr, flush=True)

    cold = ""
    if not args.no_cold:
        timings = []
        for job in (_FIRST_FORWARD, _FIRST_FIT):
            tmp = tempfile.mkdtemp(prefix="tsrnn-cold-")
            try:
                timings.append((cold_start(tmp, job), cold_start(tmp, job)))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        (f_empty, f_warm), (fit_empty, fit_warm) = timings
        cold = (f"\n\nCold start, fresh process, imports included: `import tsrnn` + first "
                f"LSTM forward {f_empty:.2f} s with an empty kernel cache, {f_warm:.2f} s "
                f"warm; first default fit (air_passengers, 5 epochs) + predict "
                f"{fit_empty:.2f} s empty, {fit_warm:.2f} s warm.")

    after = check_quiet(allow_noisy=True, after=True)  # no one else on a core after
    noisy = noisy or (after and after.replace("NOISY**: taken on", "NOISY**: after"))
    notes = ((noisy + "\n\n" if noisy else "")
             + f"PyTorch: torch {torch_version} "
             f"(default threads {torch.get_num_threads() if torch_ok else '-'}).  \n"
             "One epoch = N=10000 series, T=50, input 1, one layer + linear head, MSE, "
             "Adam, float32. tsrnn: the estimator's network (`tsrnn.network`); F API: "
             "the same training written with the public functional API "
             "(`F.forward(training=True)`, head and loss in NumPy, `F.backward`). "
             f"Seconds are medians of {args.repeat} epochs after one warm-up, all "
             "contenders' epochs taken in turns; ratio = PyTorch / tsrnn "
             "(> 1: tsrnn faster), PyTorch at its default threads and at one thread."
             + cold)
    header = ["cell", "hidden", "batch", "tsrnn s/epoch", "tsrnn F API s/epoch",
              "PyTorch s/epoch", "PyTorch/tsrnn", "PyTorch/F API",
              "PyTorch 1 thread s/epoch", "PyTorch 1 thread/tsrnn"]
    write_table(args.out, "Training epoch, tsrnn vs PyTorch (CPU)", header, rows, notes)
    lat_path = args.out.replace(".md", "_latency.md")
    write_table(lat_path, "Batch-1 inference latency (50 steps), tsrnn vs PyTorch",
                ["cell", "hidden", "tsrnn us", "tsrnn F API us", "F.forward alone us",
                 "PyTorch us", "PyTorch/tsrnn", "PyTorch/F API"], lat_rows,
                "Median over 5 blocks of 400 calls; forward of one 50-step sequence + head (tsrnn: "
                "the estimator's network; F API: `F.forward`, head in NumPy; "
                "F.forward alone: without the head).")


def cold_table(noisy):
    """Cold and warm starts of each job, twice each with a fresh empty cache, to
    ``cold_start.md``."""
    rows = []
    model_dir = tempfile.mkdtemp(prefix="tsrnn-model-")
    model = os.path.join(model_dir, "air.tsrnn")
    cold_start(model_dir, _FIRST_FIT.replace(".predict()", f".save({model!r})"))
    load_job = f"from tsrnn import TSRNNRegressor; TSRNNRegressor.load({model!r}).predict()"
    helper_off = {"TSRNN_COMPILE_HELPER": "0"}
    for name, job, env_vars in (
            ("import tsrnn + first LSTM forward", _FIRST_FORWARD, {}),
            ("first default fit (air_passengers, 5 epochs) + predict", _FIRST_FIT, {}),
            ("the same with combine=None", _FIRST_FIT_NETWORK, {}),
            ("the default fit, compile helper off (TSRNN_COMPILE_HELPER=0)", _FIRST_FIT,
             helper_off),
            ("load that fitted model from its file + predict", load_job, {})):
        empty, warm = [], []
        for _ in range(2):
            tmp = tempfile.mkdtemp(prefix="tsrnn-cold-")
            try:
                empty.append(cold_start(tmp, job, **env_vars))
                warm.append(cold_start(tmp, job, **env_vars))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        rows.append([name, " / ".join(f"{t:.1f}" for t in empty),
                     " / ".join(f"{t:.2f}" for t in warm)])
        print(rows[-1], file=sys.stderr, flush=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    after = check_quiet(allow_noisy=True, after=True)
    noisy = noisy or (after and after.replace("NOISY**: taken on", "NOISY**: after"))
    notes = ((noisy + "\n\n" if noisy else "")
             + "A fresh process per figure, imports included; empty: a new, empty "
             "NUMBA_CACHE_DIR (two runs, each with its own); warm: the same job again "
             "on the cache the empty run filled.")
    write_table("cold_start.md", "Cold start", ["job", "empty cache s", "warm cache s"],
                rows, notes)


if __name__ == "__main__":
    main()
