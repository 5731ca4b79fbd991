"""GPU benchmark: training epochs of the PERF.md workload on the GPU, tsrnn's
device-resident training (:mod:`tsrnn.device_training`) against PyTorch on the same
GPU (cuDNN) and tsrnn on the CPU, one run; and many-series training (windows per
second).

    python benchmarks/bench_gpu.py                      # needs an NVIDIA GPU
    python benchmarks/bench_gpu.py --cells gru --hidden 32 --batch 1024
    python benchmarks/bench_gpu.py --out $OUT --budget-s 240   # benchmarks/gpu_check.sh

Kernel workload: the tutorial's synthetic series (N=10000, T=50, input 1, one layer +
linear head, MSE, Adam, float32), hidden 16-128, batch 32-4096. Times are medians of
``--repeat`` epochs after a warm-up epoch (which includes compilation), contenders in
turns. Many-series workload: one global LSTM (hidden 32, lookback 24, horizon 1) over
``--series`` series of 500 points, one epoch at batch 1024, windows per second on the
GPU (and with ``--many-cpu`` on this machine's CPU); it runs first.

Writes ``gpu.md`` (to ``--out``, default ``benchmarks/results``). ``--budget-s``
stops starting new configurations once that many seconds have passed and says which
were left out. Without a GPU it says so and writes nothing, unless ``--smoke``:
then tiny shapes run on whatever numba has (the CUDA simulator in the tests), to
check that the script works before a GPU run, and the table is marked SMOKE.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import interleaved_median_times, machine_line, write_table  # noqa: E402
from bench_kernels import TorchModel, TsrnnModel, make_data  # noqa: E402


class DeviceModel:
    """tsrnn's device-resident training (what ``TSRNNRegressor(device="cuda")``
    runs) on the kernel workload: the windows on the GPU, no clipping, Adam at 1e-3,
    MSE, linear head; an epoch ends with its one copy back (its losses)."""

    def __init__(self, cell, H, X, Y, B, seed=0):
        from tsrnn.data import ArrayBatches
        from tsrnn.device_training import DeviceTrainer
        from tsrnn.network import RecurrentNet
        from tsrnn.training import TrainingPlan

        net = RecurrentNet(cell, 1, H, num_layers=1, bidirectional=False, dropout=0.0,
                           n_out=1, n_future=0, rng=np.random.default_rng(seed),
                           head="linear", device="cuda")
        plan = TrainingPlan(None, [len(X)], 1, 1, 0, 1, batches=ArrayBatches(X, Y))
        self.trainer = DeviceTrainer(net, plan, batch_size=B, learning_rate=1e-3,
                                     optimizer="adam", weight_decay=0.0, clip_norm=None,
                                     loss="mse", tbptt_steps=None,
                                     rng=np.random.default_rng(seed))
        self.trainer._upload_optimizer()
        self.idx = np.arange(len(X))

    def train_epoch(self, *_):
        self.trainer.train_epoch(self.idx, 1)


def gpu_name():
    """The GPU numba sees, or None (no GPU, or the CUDA simulator)."""
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        return None
    name = cuda.get_current_device().name
    return name.decode() if hasattr(name, "decode") else str(name)


def nvidia_smi() -> str:
    try:
        return subprocess.run(["nvidia-smi"], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "nvidia-smi: not available"


def many_series_frame(n_series, T, seed=0):
    """``n_series`` random walks of ``T`` points, as a long frame."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.standard_normal((n_series, T)), axis=1).astype(np.float32) + 100
    return pd.DataFrame({
        "unique_id": np.repeat(np.arange(n_series), T),
        "ds": np.tile(pd.date_range("2000-01-01", periods=T, freq="h"), n_series),
        "y": y.ravel()})


def many_series_rate(device, n_series, B, T=500, hidden=32, seed=0):
    """Windows per second of one training epoch of a global LSTM (lookback 24,
    horizon 1) over ``n_series`` random walks of ``T`` points, on ``device``, after a
    warm-up fit on a few of them (compilation); the epoch's windows; and the seconds
    of one forecast of every series (``predict()``, batched inference)."""
    import warnings

    from tsrnn import TSRNNRegressor

    def model():
        return TSRNNRegressor(hidden_size=hidden, lookback=24, horizon=1, batch_size=B,
                              max_epochs=1, early_stopping=False, combine=None,
                              weight_averaging=None, device=device, random_state=seed)

    df = many_series_frame(n_series, T, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model().fit(many_series_frame(min(n_series, 4), T, seed)).predict()
        t0 = time.perf_counter()
        fitted = model().fit(df)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitted.predict()
        predict_s = time.perf_counter() - t0
    windows = n_series * (T - 24)  # lookback 24, horizon 1
    return windows / seconds, windows, predict_s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--hidden", default="16,32,64,128")
    ap.add_argument("--batch", default="32,256,1024,4096")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--series", type=int, default=10000,
                    help="series of the many-series workload (0: skip it)")
    ap.add_argument("--cpu", action="store_true",
                    help="also time tsrnn on the CPU for the kernel workload")
    ap.add_argument("--many-cpu", action="store_true",
                    help="also time the many-series workload on this machine's CPU")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no new configuration after this many seconds")
    ap.add_argument("--out", default=None, help="folder for gpu.md")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny shapes on whatever numba has (the simulator without a "
                         "GPU): checks the script, measures nothing")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    name = gpu_name()
    if name is None and not args.smoke:
        print("No NVIDIA GPU visible to numba (or the CUDA simulator is on): nothing to "
              "measure. Run this on a machine with a GPU and `pip install 'tsrnn[cuda]'`.")
        return 1
    try:
        import torch

        has_torch_cuda = torch.cuda.is_available() and not args.smoke
    except ImportError:
        has_torch_cuda = False
    n, T = (8, 4) if args.smoke else (10000, 50)
    X, Y = make_data(n=n, T=T)
    rows, skipped = [], []

    def over_budget():
        return (args.budget_s is not None
                and time.perf_counter() - t_start > args.budget_s)

    many = ""
    if args.series:  # first: the many-series figure, whatever the budget
        n_series, points, B, hidden = ((2, 28, 8, 4) if args.smoke
                                       else (args.series, 500, 1024, 32))
        gpu_rate, windows, gpu_pred = many_series_rate("cuda", n_series, B, points, hidden)
        many = (f"\n\nMany series: one global LSTM (hidden {hidden}, lookback 24, horizon "
                f"1), {n_series} series x {points} points ({windows} windows), one epoch "
                f"at batch {B}: GPU {gpu_rate:,.0f} windows/s; predict() of every "
                f"series {gpu_pred:.3f} s")
        if args.many_cpu:
            cpu_rate, _, cpu_pred = many_series_rate("cpu", n_series, B, points, hidden)
            many += (f"; this machine's CPU ({os.cpu_count()} cores) {cpu_rate:,.0f} "
                     f"windows/s ({gpu_rate / cpu_rate:.1f}x), predict() {cpu_pred:.3f} s")
        many += ("; the 2-core CPU's figures are in `many_series.md` (hidden 32, "
                 "batch 32 and 256).")
        print(many.strip(), flush=True)
    for cell in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            for B in map(int, args.batch.split(",")):
                if over_budget():
                    skipped.append(f"{cell} {H} {B}")
                    continue
                m = DeviceModel(cell, H, X, Y, B)
                fns = [m.train_epoch]
                if has_torch_cuda:
                    tm = TorchModel(cell, H, device="cuda")
                    fns.append(lambda: tm.train_epoch(X, Y, B, np.random.default_rng(0)))
                if args.cpu:
                    mc = TsrnnModel(cell, H)
                    fns.append(lambda: mc.train_epoch(X, Y, B, np.random.default_rng(0)))
                times = interleaved_median_times(fns, repeat=args.repeat)
                t_gpu = times[0]
                t_torch = times[1] if has_torch_cuda else float("nan")
                t_cpu = times[-1] if args.cpu else float("nan")
                rows.append([cell, H, B, f"{t_gpu:.3f}", f"{t_torch:.3f}",
                             f"{t_torch / t_gpu:.2f}x", f"{t_cpu:.3f}",
                             f"{t_cpu / t_gpu:.2f}x"])
                print(rows[-1], flush=True)
    note = (("**SMOKE**: tiny shapes, to check the script; not a measurement.\n\n"
             if args.smoke else "")
            + f"Command: `python benchmarks/bench_gpu.py {' '.join(argv or sys.argv[1:])}`"
            f" on {name or 'no GPU (simulator)'} ({machine_line()}). Kernel workload: "
            f"N={n} series, T={T}, input 1, one layer + linear head, MSE, Adam, float32; "
            f"medians of {args.repeat} epochs after a warm-up epoch, contenders in turns; "
            "ratio > 1: tsrnn on the GPU faster."
            + (f" Left out (time budget): {', '.join(skipped)}." if skipped else "")
            + many)
    out = args.out or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    write_table(os.path.join(os.path.abspath(out), "gpu.md"),
                "GPU training epoch, tsrnn (numba.cuda) vs PyTorch (cuDNN) and tsrnn (CPU)",
                ["cell", "hidden", "batch", "tsrnn GPU s/epoch", "PyTorch GPU s/epoch",
                 "PyTorch/tsrnn", "tsrnn CPU s/epoch", "CPU/GPU"], rows, note)
    if name is not None:
        with open(os.path.join(out, "nvidia-smi.txt"), "w") as fh:
            fh.write(nvidia_smi())
    return 0


if __name__ == "__main__":
    sys.exit(main())
