"""Many series, one global model: training throughput and peak memory.

    python benchmarks/bench_many_series.py [--series 1000,10000] [--length 500]

A long frame of N series x 500 points (sines of random period, phase, level and
scale, plus noise), one LSTM (hidden 32, lookback 24, horizon 1) trained for one
epoch over every window of every series, then one ``predict()`` for all series.
Each configuration runs in a fresh process so that its peak resident memory
(``ru_maxrss``, whole process: Python, pandas, kernels) is its own; kernels come
from the disk cache (a warm-up process fills it). Writes
``benchmarks/results/many_series.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, write_table  # noqa: E402

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np, pandas as pd
from tsrnn import TSRNNRegressor
n, length, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
t = np.arange(length)
period = rng.uniform(6, 60, (n, 1)); phase = rng.uniform(0, 6.3, (n, 1))
level = rng.uniform(-5, 50, (n, 1)); scale = rng.uniform(0.1, 10, (n, 1))
noise = 0.2 * rng.standard_normal((n, length))
v = level + scale * (np.sin(2 * np.pi * t / period + phase) + noise)
df = pd.DataFrame({"unique_id": np.repeat(np.arange(n), length),
                   "ds": np.tile(pd.date_range("2020-01-01", periods=length, freq="h"), n),
                   "y": v.ravel().astype(np.float32)})
del v
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
m = TSRNNRegressor(lookback=24, horizon=1, hidden_size=32, max_epochs=1, batch_size=batch,
                   early_stopping=False, random_state=0)
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m.fit(df)
fit_s = time.perf_counter() - t0
t0 = time.perf_counter()
fc = m.predict()
pred_s = time.perf_counter() - t0
assert len(fc) == n and np.isfinite(fc["y_pred"]).all()
windows = n * (length - 24)
print(json.dumps(dict(fit_s=fit_s, pred_s=pred_s, windows=windows,
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      data_mb=base / 1024)))
"""


def run(n, length, batch):
    r = subprocess.run([sys.executable, "-c", CHILD, str(n), str(length), str(batch)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default="1000,10000")
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--batch", default="32,256")
    args = ap.parse_args(argv)
    run(10, 100, 32)  # warm the kernel cache
    rows = []
    for n in map(int, args.series.split(",")):
        for batch in map(int, args.batch.split(",")):
            r = run(n, args.length, batch)
            rows.append([n, args.length, batch, f"{r['windows']:,}", f"{r['fit_s']:.1f}",
                         f"{r['windows'] / r['fit_s']:,.0f}", f"{r['pred_s'] * 1e3:.0f}",
                         f"{r['data_mb']:.0f}", f"{r['peak_mb']:.0f}"])
            print(rows[-1], flush=True)
    write_table("many_series.md", "Many series, one global LSTM: throughput and memory",
                ["series", "length", "batch", "windows/epoch", "epoch s", "windows/s",
                 "predict all ms", "RSS before fit MB", "peak RSS MB"], rows,
                f"Command: `python benchmarks/bench_many_series.py` ({machine_line()}). "
                "One epoch over every window (no validation split), LSTM hidden 32, "
                "lookback 24, horizon 1; `predict all` forecasts every series in one "
                "call. RSS is the whole process (Python, pandas, the frame itself).")


if __name__ == "__main__":
    main()
