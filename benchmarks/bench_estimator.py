"""Fit and predict time of the estimator against darts ``RNNModel`` and Nixtla
neuralforecast ``LSTM``, in the same run, same sizes, epochs and batch size.

    python benchmarks/bench_estimator.py          # needs: pip install darts neuralforecast

Workloads (from the issue):
- air_passengers: LSTM hidden 32, lookback 24, horizon 12, 50 epochs, batch 32
  (per-fit overhead dominates);
- elecdemand_hourly, last 4000 hours: LSTM hidden 32, lookback 72, horizon 24,
  5 epochs, batch 32 (the arithmetic dominates);
- predict() of one series, 24 steps, pandas out, with the elecdemand model.

Every fit is a fresh model; times are medians of ``--repeat`` fits (the libraries' fits
taken in turns) after one warm-up fit each (which also fills tsrnn's kernel cache), and
predict times are medians of 50 calls after 3 warm-up calls. Early stopping is off for
all three so they run the same number of epochs. darts RNNModel is a one-step model
rolled forward (that is how darts defines it); neuralforecast counts steps, not epochs,
so it gets ``max_steps = epochs * ceil(windows / batch)`` with
``windows_batch_size = batch``.
Writes ``benchmarks/results/estimator.md``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_quiet, machine_line, write_table  # noqa: E402

from tsrnn import TSRNNRegressor  # noqa: E402
from tsrnn.datasets import load_air_passengers, load_elecdemand  # noqa: E402

WORKLOADS = {
    "air_passengers": dict(lookback=24, horizon=12, hidden=32, epochs=50, batch=32),
    "elecdemand_hourly (last 4000 h)": dict(lookback=72, horizon=24, hidden=32, epochs=5,
                                            batch=32),
}


def series_for(name) -> pd.Series:
    if name == "air_passengers":
        return load_air_passengers().astype("float32")
    return load_elecdemand()["demand_gw"].iloc[-4000:].astype("float32")


def n_windows(y, w):
    return len(y) - w["lookback"] - w["horizon"] + 1


# ---------------------------------------------------------------- the contenders
def tsrnn_fit(y, w):
    m = TSRNNRegressor(cell="lstm", hidden_size=w["hidden"], lookback=w["lookback"],
                       horizon=w["horizon"], max_epochs=w["epochs"], batch_size=w["batch"],
                       early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(y)
    return m


def tsrnn_predict(m, w):
    return m.predict()


def darts_fit(y, w):
    from darts import TimeSeries
    from darts.models import RNNModel

    ts = TimeSeries.from_series(y)
    m = RNNModel(model="LSTM", input_chunk_length=w["lookback"], hidden_dim=w["hidden"],
                 n_rnn_layers=1, training_length=w["lookback"] + w["horizon"],
                 n_epochs=w["epochs"], batch_size=w["batch"], random_state=0,
                 pl_trainer_kwargs={"enable_progress_bar": False, "logger": False,
                                    "enable_model_summary": False,
                                    "accelerator": "cpu"})
    m.fit(ts, verbose=False)
    m._bench_series = ts
    return m


def darts_predict(m, w):
    return m.predict(w["horizon"], verbose=False).to_series()


def nf_fit(y, w):
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    df = pd.DataFrame({"unique_id": "s", "ds": y.index, "y": y.to_numpy()})
    steps = w["epochs"] * math.ceil(n_windows(y, w) / w["batch"])
    model = LSTM(h=w["horizon"], input_size=w["lookback"], encoder_hidden_size=w["hidden"],
                 encoder_n_layers=1, decoder_hidden_size=w["hidden"], decoder_layers=1,
                 max_steps=steps, batch_size=1, windows_batch_size=w["batch"],
                 inference_windows_batch_size=w["batch"], random_seed=0,
                 enable_progress_bar=False, logger=False, enable_model_summary=False,
                 accelerator="cpu")
    freq = pd.infer_freq(y.index)
    nf = NeuralForecast(models=[model], freq=freq)
    nf.fit(df)
    return nf


def nf_predict(m, w):
    return m.predict()


CONTENDERS = {"tsrnn": (tsrnn_fit, tsrnn_predict), "darts RNNModel": (darts_fit, darts_predict),
              "neuralforecast LSTM": (nf_fit, nf_predict)}


def available():
    out = {"tsrnn": CONTENDERS["tsrnn"]}
    for name, mod in (("darts RNNModel", "darts"), ("neuralforecast LSTM", "neuralforecast")):
        try:
            __import__(mod)
            out[name] = CONTENDERS[name]
        except ImportError:
            print(f"{mod} is not installed: {name} left out", file=sys.stderr)
    return out


def quiet_logs():
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts",
                 "neuralforecast", "lightning_fabric",
                 "lightning.pytorch.utilities.rank_zero",
                 "pytorch_lightning.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--allow-noisy", action="store_true",
                    help="run on a busy machine anyway (the table is marked NOISY)")
    args = ap.parse_args(argv)
    noisy = check_quiet(allow_noisy=args.allow_noisy)
    quiet_logs()
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    contenders = available()
    rows = []
    ratios = {}
    for wname, w in WORKLOADS.items():
        y = series_for(wname)
        res = {}
        for fit, _ in contenders.values():
            timed(fit, y, w)  # warm-up: imports, compilation, caches
        # Fits in turns (tsrnn, darts, neuralforecast, tsrnn, ...), so that a slow
        # patch of this shared VM falls on every library alike.
        fits = {cname: [] for cname in contenders}
        models = {}
        for _ in range(args.repeat):
            for cname, (fit, _) in contenders.items():
                secs, models[cname] = timed(fit, y, w)
                fits[cname].append(secs)
        for cname, (_, predict) in contenders.items():
            model = models[cname]
            for _ in range(3):
                predict(model, w)
            preds = []
            for _ in range(50):
                preds.append(timed(predict, model, w)[0])
            res[cname] = (float(np.median(fits[cname])), float(np.median(preds)))
            print(f"{wname}: {cname} fit {res[cname][0]:.3f} s, predict "
                  f"{1e3 * res[cname][1]:.2f} ms", flush=True)
        base_fit, base_pred = res["tsrnn"]
        for cname, (f, p) in res.items():
            rows.append([wname, cname, f"{f:.3f}", f"{f / base_fit:.1f}x",
                         f"{1e3 * p:.2f}", f"{p / base_pred:.1f}x"])
            ratios[(wname, cname)] = (f / base_fit, p / base_pred)
    after = check_quiet(allow_noisy=True, after=True)
    noisy = noisy or after
    notes = (noisy + "\n\n" if noisy else "") + f"""
Command: `python benchmarks/bench_estimator.py` ({machine_line()}; darts and
neuralforecast on PyTorch 2.13 CPU with 2 threads). Medians of {args.repeat} fresh fits
after a warm-up fit, the libraries' fits taken in turns, and of 50 `predict` calls.
`x tsrnn` is the contender's time divided by tsrnn's in the same run (above 1: tsrnn
is faster). Targets from the issue: fit at least 10x faster on air_passengers and 1.5x
on elecdemand; predict() of one series under 1 ms.
"""
    write_table("estimator.md", "Estimator fit and predict against darts and neuralforecast",
                ["workload", "library", "fit s", "fit x tsrnn", "predict ms",
                 "predict x tsrnn"], rows, notes)


if __name__ == "__main__":
    main()
