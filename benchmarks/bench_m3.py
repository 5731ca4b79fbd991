"""Accuracy on the M3 competition's development groups: one global tsrnn model per
group against statsforecast's Theta, AutoETS, AutoTheta and seasonal naive.

    python benchmarks/bench_m3.py [--data ../shared/data/m3] [--seeds 0,1,2]

The protocol of ``M3.md`` beside the data (none of M3 ships with tsrnn): the last
``h`` values of each series are the test period; a method sees only the values
before it; one model per group, fitted once. sMAPE as in the competition
(``200 |y - f| / (|y| + |f|)``, averaged over the steps, then the series); MASE
against the in-sample seasonal-naive error (season ``m``). "All" weights every
series equally. tsrnn: its defaults plus ``lookback`` (2h; 8 for Yearly, the
shortest training series allowing it), ``horizon=h``, ``season_length=m`` and
``random_state``; one row per seed and one for the mean of the seeds' forecasts;
with ``--ablation``, rows for the defaults with ``combine`` and/or
``weight_averaging`` undone (each the mean of the seeds' scores).
statsforecast runs in the same process where installed (the ``bench`` extra).
Writes ``benchmarks/results/m3.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_quiet, machine_line, write_table  # noqa: E402

from tsrnn import TSRNNRegressor  # noqa: E402

GROUPS = ("Yearly", "Quarterly", "Other")


def load(folder):
    df = pd.read_csv(os.path.join(folder, "m3_dev.csv.gz"))
    info = pd.read_csv(os.path.join(folder, "m3_dev_info.csv")).set_index("unique_id")
    return df, info


def split(df, info, group):
    ids = info.index[info["group"] == group]
    g = df[df["unique_id"].isin(ids)].sort_values(["unique_id", "ds"])
    h = int(info.loc[ids[0], "h"])
    last = g.groupby("unique_id")["ds"].transform("max")
    return g[g["ds"] <= last - h], g[g["ds"] > last - h], h, int(info.loc[ids[0], "season"])


def scores(train, test, fc, m):
    """sMAPE and MASE per series of forecasts ``fc`` (unique_id, ds, f)."""
    t = test.merge(fc, on=["unique_id", "ds"], how="left")
    if t["f"].isna().any():
        raise RuntimeError("a forecast is missing")
    den = np.abs(t["y"]) + np.abs(t["f"])
    t["smape"] = np.where(den > 0, 200 * np.abs(t["y"] - t["f"]) / den.where(den > 0, 1), 0)
    t["ae"] = np.abs(t["y"] - t["f"])
    scale = train.groupby("unique_id")["y"].apply(
        lambda v: np.mean(np.abs(np.diff(v.to_numpy(), n=1) if m == 1 or len(v) <= m
                                 else v.to_numpy()[m:] - v.to_numpy()[:-m])))
    per = t.groupby("unique_id").agg(smape=("smape", "mean"), mae=("ae", "mean"))
    per["mase"] = per["mae"] / scale.loc[per.index]
    return per[["smape", "mase"]]


#: Rows of the ablation (``--ablation``): the defaults with one choice undone.
ABLATIONS = {"combine=None (network alone)": {"combine": None},
             "weight_averaging=None": {"weight_averaging": None},
             "combine=None, weight_averaging=None (before both)":
                 {"combine": None, "weight_averaging": None}}


def run_tsrnn(train, h, m, lookback, seed, **params):
    est = TSRNNRegressor(lookback=lookback, horizon=h,
                         season_length=m if m > 1 else None, random_state=seed,
                         **params)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = est.fit(train).predict()
    return fc.rename(columns={"y_pred": "f"}), time.perf_counter() - t0


def run_stats(train, h, m):
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive, Theta
    except ImportError:
        return {}
    models = [Theta(season_length=m), AutoETS(season_length=m),
              AutoTheta(season_length=m), SeasonalNaive(season_length=m)]
    out = {}
    for model in models:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = StatsForecast(models=[model], freq=1, n_jobs=1).forecast(df=train, h=h)
        secs = time.perf_counter() - t0
        col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
        out[f"statsforecast {col}"] = (fc.reset_index()[["unique_id", "ds", col]]
                                       .rename(columns={col: "f"}), secs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "m3"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--ablation", action="store_true",
                    help="also the defaults with combine=None and/or "
                         "weight_averaging=None (mean of the seeds' scores)")
    ap.add_argument("--allow-noisy", action="store_true",
                    help="run on a busy machine anyway (the table is marked NOISY)")
    args = ap.parse_args(argv)
    noisy = check_quiet(allow_noisy=args.allow_noisy)
    if not os.path.exists(os.path.join(args.data, "m3_dev.csv.gz")):
        raise SystemExit(f"No M3 data in {args.data} (pass --data).")
    seeds = [int(s) for s in args.seeds.split(",")]
    df, info = load(args.data)
    per_method: dict[str, list] = {}
    secs: dict[str, float] = {}
    for group in args.groups.split(","):
        train, test, h, m = split(df, info, group)
        lookback = 8 if group == "Yearly" else 2 * h
        seed_fc = []
        for seed in seeds:
            fc, s = run_tsrnn(train, h, m, lookback, seed)
            seed_fc.append(fc)
            name = f"tsrnn defaults, seed {seed}"
            per_method.setdefault(name, []).append(scores(train, test, fc, m).assign(group=group))
            secs[name] = secs.get(name, 0) + s
            print(group, name, f"{s:.1f} s", flush=True)
        mean = seed_fc[0].copy()
        mean["f"] = np.mean([f["f"].to_numpy() for f in seed_fc], axis=0)
        name = f"tsrnn, mean of {len(seeds)} seeds' forecasts"
        per_method.setdefault(name, []).append(scores(train, test, mean, m).assign(group=group))
        for label, params in (ABLATIONS.items() if args.ablation else ()):
            name = f"tsrnn {label}, mean of {len(seeds)} seeds' scores"
            runs = [scores(train, test, run_tsrnn(train, h, m, lookback, seed, **params)[0],
                           m) for seed in seeds]
            avg = sum(runs) / len(runs)
            per_method.setdefault(name, []).append(avg.assign(group=group))
            print(group, name, flush=True)
        for name, (fc, s) in run_stats(train, h, m).items():
            per_method.setdefault(name, []).append(scores(train, test, fc, m).assign(group=group))
            secs[name] = secs.get(name, 0) + s
            print(group, name, f"{s:.1f} s", flush=True)
    rows = []
    groups = args.groups.split(",")
    for name, parts in per_method.items():
        allp = pd.concat(parts)
        cells = []
        for metric in ("smape", "mase"):
            by = allp.groupby("group")[metric].mean()
            cells += [f"{by[g]:.2f}" if metric == "smape" else f"{by[g]:.3f}" for g in groups]
            cells.append(f"{allp[metric].mean():.2f}" if metric == "smape"
                         else f"{allp[metric].mean():.3f}")
        wall = secs.get(name)
        rows.append([name, *cells, "" if wall is None else f"{wall:.1f}"])
    header = (["method"] + [f"sMAPE {g}" for g in groups] + ["sMAPE All"]
              + [f"MASE {g}" for g in groups] + ["MASE All", "wall s (all groups)"])
    notes = (f"Machine: {machine_line()}. Data: {args.data} (M3.md's protocol). tsrnn: "
             "defaults + lookback (2h; Yearly 8), horizon h, season_length m, "
             f"random_state; seeds {seeds}; kernels cached. statsforecast models with "
             "season_length m, n_jobs=1.")
    noisy = noisy or check_quiet(allow_noisy=True, after=True)
    if noisy:
        notes = noisy + "\n\n" + notes
    write_table("m3.md", "M3 development groups: tsrnn against statsforecast", header,
                rows, notes)


if __name__ == "__main__":
    main()
