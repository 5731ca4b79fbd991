"""Long series: stateful training (truncated BPTT along the series) against windowed
training, in fit time, training targets per second, peak memory and accuracy.

    python benchmarks/bench_long_series.py [--points 5000000] [--skip-synthetic]

1. elecdemand (8,760 hours; temperature and workday as known-future inputs),
   horizon 24: the windowed default (lookback 168), windowed with lookback 336, and
   stateful (warm-up lookback 168, chunks of 48 hours). Accuracy on rolling origins:
   ``tsrnn.backtest(..., n_windows=8, step=24, refit=False)``, one fit on the data
   before the last 8 days, then 8 daily forecasts; MASE against the seasonal-naive
   (24 h) error of the training data. The fit time is that backtest's fit.
2. A synthetic series of ``--points`` points (minute data: sines and noise),
   horizon 1, LSTM hidden 16: one stateful epoch (chunks of 168) against windowed
   training with lookback 168, timed on its first 200 batches (a whole windowed
   epoch would take hours) and compared per training target. Peak resident memory
   of each run's process.

Every configuration runs in a fresh process (its own peak memory), kernels from the
disk cache. Writes ``benchmarks/results/long_series.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_quiet, machine_line, write_table  # noqa: E402

ELEC = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import tsrnn
from tsrnn import TSRNNRegressor, training
from tsrnn.datasets import load_elecdemand
cfg = json.loads(sys.argv[1])
df = load_elecdemand()
epochs = []
from tsrnn import stateful
def wrap(cls):
    f = cls.train_epoch
    def timed(self, idx, epoch):
        t = time.perf_counter(); out = f(self, idx, epoch)
        epochs.append(time.perf_counter() - t); return out
    cls.train_epoch = timed
wrap(training.Trainer); wrap(stateful.StreamTrainer)
est = TSRNNRegressor(cell="lstm", lookback=cfg["lookback"], horizon=24, random_state=cfg["seed"],
                     **cfg["extra"])
t0 = time.perf_counter()
res = tsrnn.backtest(est, df, n_windows=8, step=24, refit=False, target="demand_gw",
                     future_exog=["temperature_c", "workday"])
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"fit_s": secs, "epochs": len(epochs), "epoch_s": float(np.median(epochs)),
                  "mase": float(res.overall["mase"]), "peak_mb": int(peak)}))
"""

SYNTH = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from tsrnn import TSRNNRegressor, training, stateful
cfg = json.loads(sys.argv[1])
n = cfg["points"]
rng = np.random.default_rng(0)
t = np.arange(n)
y = pd.Series((np.sin(t / 60) + 0.5 * np.sin(t / 1440) + 0.1 * rng.standard_normal(n)
               ).astype(np.float32), index=pd.date_range("2000-01-01", periods=n, freq="min"))
seen = {}
if cfg["mode"] == "windowed":
    orig = training.Trainer.train_epoch
    def limited(self, idx, epoch):
        idx = idx[: cfg["batches"] * self.batch_size]
        t0 = time.perf_counter(); out = orig(self, idx, epoch)
        seen["secs"], seen["targets"] = time.perf_counter() - t0, len(idx); return out
    training.Trainer.train_epoch = limited
    training.Trainer.evaluate = lambda self, idx: 0.0
else:
    orig = stateful.StreamTrainer.train_epoch
    def whole(self, idx, epoch):
        t0 = time.perf_counter(); out = orig(self, idx, epoch)
        S = self.streams
        seen["secs"] = time.perf_counter() - t0
        seen["targets"] = int(sum(max(0, min(e, l - S.horizon) - f) for f, e, l in
                                  zip(S.loss_from, S.end, S.limit)))
        return out
    stateful.StreamTrainer.train_epoch = whole
kw = dict(stateful=True, window_scaling=False, tbptt_steps=168) if cfg["mode"] == "stateful" else {}
TSRNNRegressor(lookback=168, horizon=1, hidden_size=16, max_epochs=1, early_stopping=False,
               calendar=None, random_state=0, **kw).fit(y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"secs": seen["secs"], "targets": seen["targets"], "peak_mb": int(peak)}))
"""


def run(code, cfg):
    r = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True,
                       text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=5_000_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--allow-noisy", action="store_true",
                    help="run on a busy machine anyway (the table is marked NOISY)")
    args = ap.parse_args(argv)
    noisy = check_quiet(allow_noisy=args.allow_noisy)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    configs = [("windowed (default), lookback 168", 168, {}),
               ("windowed, lookback 336", 336, {}),
               ("stateful, chunks of 48, warm-up 168", 168,
                dict(stateful=True, window_scaling=False, tbptt_steps=48))]
    for name, lookback, extra in configs:
        for seed in seeds:
            r = run(ELEC, {"lookback": lookback, "extra": extra, "seed": seed})
            rows.append(["elecdemand", name, seed, f"{r['fit_s']:.1f}", r["epochs"],
                         f"{r['epoch_s']:.3f}", f"{r['mase']:.3f}", r["peak_mb"]])
            print(rows[-1], flush=True)
    notes = (f"Machine: {machine_line()}. Rolling origins: 8 daily forecasts (horizon "
             "24) after one fit on the data before them (backtest, refit=False); MASE "
             "against the training data's seasonal-naive (24 h) error. fit s: the "
             "backtest's one fit, early stopping on (patience 20, max 200 epochs).")
    header = ["data", "training", "seed", "fit s", "epochs", "s / epoch", "MASE",
              "peak RSS MB"]
    if not args.skip_synthetic:
        synth = []
        for mode in ("windowed", "stateful"):
            r = run(SYNTH, {"mode": mode, "points": args.points, "batches": args.batches})
            synth.append((mode, r))
            print(mode, r, flush=True)
        w = synth[0][1]["targets"] / synth[0][1]["secs"]
        for mode, r in synth:
            rate = r["targets"] / r["secs"]
            rows.append([f"synthetic {args.points:,} points", f"{mode}, lookback 168",
                         "0", f"{r['secs']:.1f} ({r['targets']:,} targets)", 1,
                         f"{rate:,.0f} targets/s ({rate / w:.1f}x)", "", r["peak_mb"]])
        notes += (" Synthetic series: horizon 1, LSTM hidden 16, batch 32; windowed "
                  f"training timed on its first {args.batches} batches (its whole epoch "
                  f"is {args.points - 168:,} windows of 168 steps), stateful on one whole "
                  "epoch (chunks of 168); the speed ratio is per training target.")
    noisy = noisy or check_quiet(allow_noisy=True, after=True)
    if noisy:
        notes = noisy + "\n\n" + notes
    write_table("long_series.md", "Long series: stateful against windowed training",
                header, rows, notes)


if __name__ == "__main__":
    main()
