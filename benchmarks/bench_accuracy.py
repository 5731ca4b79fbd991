"""Forecast accuracy on the five bundled series: tsrnn's defaults against seasonal
naive, ETS (statsmodels) and a PyTorch LSTM of the same size and window.

    python benchmarks/bench_accuracy.py [--series air_passengers,...] [--no-torch]

Rolling origin, refit at every origin, settings from ../shared/data/DATA.md (copied
below). Every model sees the same training data and forecasts the same points.
Writes ``benchmarks/results/accuracy.md``: MASE, sMAPE and RMSE per series, the
geometric mean of MASE relative to seasonal naive (the headline figure), and the
empirical coverage of tsrnn's conformal intervals (80%, 95%) and of its quantile
outputs (q0.1-q0.9, nominal 80%).

neuralforecast's LSTM (its defaults: two layers of 128, MLP decoder, robust scaler,
1000 steps) joins the table when it is installed (``pip install neuralforecast``, in
a separate environment: it pulls PyTorch Lightning); without it, its reference
figure from the issue is quoted instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_quiet, machine_line, write_table  # noqa: E402

from tsrnn import TSRNNRegressor  # noqa: E402
from tsrnn.datasets import (  # noqa: E402
    load_air_passengers,
    load_elecdemand,
    load_melbourne_temp,
    load_sunspots,
    load_uschange,
)

# name: (loader, season m, horizon, origins, lookback, targets, future exog)
SETTINGS = {
    "air_passengers": (load_air_passengers, 12, 12, 3, 24, None, None),
    "sunspots_yearly": (load_sunspots, 1, 10, 5, 22, None, None),
    "uschange": (load_uschange, 1, 8, 4, 12, None, None),
    "elecdemand_hourly": (load_elecdemand, 24, 24, 3, 72, ["demand_gw"],
                          ["temperature_c", "workday"]),
    "melbourne_temp_daily": (load_melbourne_temp, 1, 14, 5, 30, None, None),
}
REFERENCE = {"neuralforecast LSTM": 0.66, "AutoARIMA": 0.77, "plain PyTorch LSTM": 0.84,
             "darts RNNModel": 1.03, "ETS": 1.15}


def load(name):
    data = SETTINGS[name][0]()
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if name == "melbourne_temp_daily":  # Feb 29 is absent: make the index regular
        data = data.asfreq("D").interpolate()
    return data


# ----------------------------------------------------------------------- models
def seasonal_naive(train, targets, h, m, **_):
    v = train[targets].to_numpy()
    reps = np.concatenate([v[-m:]] * int(np.ceil(h / m)))[:h]
    return {"point": reps}


def ets(train, targets, h, m, **_):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = []
    for c in targets:
        y = train[c].to_numpy(dtype=float)
        seasonal = "add" if m > 1 and len(y) >= 2 * m else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                       seasonal=seasonal,
                                       seasonal_periods=m if seasonal else None).fit()
        out.append(fit.forecast(h))
    return {"point": np.column_stack(out)}


# Extra parameters for the "tsrnn defaults" model, to try variants from the command
# line (--tsrnn-params '{"loss": "huber"}'); empty for the published table.
TSRNN_OVERRIDES: dict = {}


def tsrnn_defaults(train, targets, h, m, lookback, future_exog, future, seed, **_):
    model = TSRNNRegressor(lookback=lookback, horizon=h, random_state=seed,
                           **TSRNN_OVERRIDES)
    cols = targets + (future_exog or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train[cols], target=targets, future_exog=future_exog)
        # intervals need the held-out windows' scores (none without early stopping)
        levels = [80, 95] if model.early_stopping else []
        fc = model.predict(future=future, level=levels or None)
    return {"point": fc[targets].to_numpy(),
            **{f"{s}_{lv}": fc[[f"{t}_{s}_{lv}" for t in targets]].to_numpy()
               for lv in levels for s in ("lo", "hi")},
            "epochs": model.n_iter_}


def tsrnn_quantiles(train, targets, h, m, lookback, future_exog, future, seed, **_):
    model = TSRNNRegressor(lookback=lookback, horizon=h, random_state=seed,
                           quantiles=[0.1, 0.5, 0.9])
    cols = targets + (future_exog or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train[cols], target=targets, future_exog=future_exog)
        fc = model.predict(future=future)
    return {"point": fc[targets].to_numpy(),
            "lo_q": fc[[f"{t}_q0.1" for t in targets]].to_numpy(),
            "hi_q": fc[[f"{t}_q0.9" for t in targets]].to_numpy()}


def torch_lstm(train, targets, h, m, lookback, future_exog, future, seed, **_):
    """A plain PyTorch LSTM of the same size, window, inputs, scaling, optimizer,
    batch size and early stopping as tsrnn's defaults (what a careful user writes)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    cols = targets + (future_exog or [])
    v = train[cols].to_numpy(dtype=np.float64)
    mu, sd = v.mean(0), v.std(0)
    sd[sd == 0] = 1
    z = ((v - mu) / sd).astype(np.float32)
    nt, k = len(targets), len(future_exog or [])
    n = len(z) - lookback - h + 1
    idx = np.arange(n)[:, None]
    X = z[idx + np.arange(lookback)]
    Y = z[idx + lookback + np.arange(h)][:, :, :nt].reshape(n, -1)
    Fu = z[idx + lookback + np.arange(h)][:, :, nt:].reshape(n, -1)
    n_val = int(np.ceil(0.1 * n))
    tr, va = np.arange(n - n_val), np.arange(n - n_val, n)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(len(cols), 32, batch_first=True)
            self.head = torch.nn.Linear(32 + h * k, h * nt)

        def forward(self, x, f):
            _, (hn, _) = self.rnn(x)
            return self.head(torch.cat([hn[-1], f], 1))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    Xt, Yt, Ft = map(torch.from_numpy, (X, Y, Fu))
    best, best_state, stale = np.inf, None, 0
    rng = np.random.default_rng(seed)
    for _epoch in range(200):
        net.train()
        for b in np.array_split(rng.permutation(tr), max(1, len(tr) // 32)):
            opt.zero_grad()
            loss = torch.nn.functional.l1_loss(net(Xt[b], Ft[b]), Yt[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float(torch.nn.functional.l1_loss(net(Xt[va], Ft[va]), Yt[va]))
        if not np.isfinite(best) or val < best - 1e-4 * abs(best):
            best, stale = val, 0
            best_state = {kk: vv.clone() for kk, vv in net.state_dict().items()}
        else:
            stale += 1
            if stale >= 20:
                break
    net.load_state_dict(best_state)
    x_last = torch.from_numpy(z[-lookback:][None])
    if k:
        fz = ((future[future_exog].to_numpy() - mu[nt:]) / sd[nt:]).astype(np.float32)
        f_last = torch.from_numpy(fz.reshape(1, -1))
    else:
        f_last = torch.zeros((1, 0))
    with torch.no_grad():
        p = net(x_last, f_last).numpy().reshape(h, nt)
    return {"point": p * sd[:nt] + mu[:nt]}


def neuralforecast_lstm(train, targets, h, m, lookback, future_exog, future, seed, **_):
    """neuralforecast's LSTM with its defaults, the window and exogenous inputs of the
    others; several targets are fitted as one global model over the columns (it is
    univariate)."""
    import logging

    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch",
                 "lightning_fabric", "lightning.fabric", "neuralforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    fex = list(future_exog or [])

    def long(frame, cols):
        return pd.concat([pd.DataFrame({"unique_id": c, "ds": frame.index,
                                        **({"y": frame[c].to_numpy()} if cols else {}),
                                        **{f: frame[f].to_numpy() for f in fex}})
                          for c in targets], ignore_index=True)

    model = LSTM(h=h, input_size=lookback, futr_exog_list=fex or None, random_seed=seed,
                 enable_progress_bar=False, logger=False, enable_model_summary=False,
                 accelerator="cpu")
    nf = NeuralForecast(models=[model], freq=pd.infer_freq(train.index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nf.fit(long(train, True))
        fc = nf.predict(futr_df=long(future, False) if fex else None)
    return {"point": np.column_stack([fc.loc[fc["unique_id"] == c, "LSTM"].to_numpy()
                                      for c in targets])}


MODELS = {"seasonal naive": seasonal_naive, "ETS": ets, "tsrnn defaults": tsrnn_defaults,
          "tsrnn quantiles": tsrnn_quantiles, "PyTorch LSTM": torch_lstm}
try:  # optional: a heavy install (PyTorch Lightning), kept out of tsrnn's extras
    import neuralforecast  # noqa: F401

    MODELS["neuralforecast LSTM"] = neuralforecast_lstm
except ImportError:
    pass


# ---------------------------------------------------------------------- scoring
def mase_scale(train, m):
    lag = m if len(train) > m else 1
    return np.mean(np.abs(train[lag:] - train[:-lag]), axis=0)


def run(series, models, seed):
    rows = {}  # (series, model) -> dict of metric lists
    for name in series:
        _, m, h, origins, lookback, targets, fex = SETTINGS[name]
        data = load(name)
        targets = targets or list(data.columns)
        for o in range(origins):
            cut = len(data) - h * (origins - o)
            train, test = data.iloc[:cut], data.iloc[cut : cut + h]
            actual = test[targets].to_numpy()
            scale = mase_scale(train[targets].to_numpy(), m)
            future = test[fex] if fex else None
            for mname in models:
                t0 = time.perf_counter()
                res = MODELS[mname](train, targets, h, m, lookback=lookback,
                                    future_exog=fex, future=future, seed=seed)
                secs = time.perf_counter() - t0
                p = res["point"]
                r = rows.setdefault((name, mname), {k: [] for k in (
                    "mase", "smape", "rmse", "seconds", "cov80", "cov95", "covq")})
                r["mase"].append(np.mean(np.abs(actual - p).mean(0) / scale))
                den = np.abs(actual) + np.abs(p)
                r["smape"].append(np.mean(np.where(den > 0, 200 * np.abs(actual - p) /
                                                   np.where(den > 0, den, 1), 0)))
                r["rmse"].append(np.mean(np.sqrt(((actual - p) ** 2).mean(0))))
                r["seconds"].append(secs)
                for lv in (80, 95):
                    if f"lo_{lv}" in res:
                        r[f"cov{lv}"].append(np.mean((actual >= res[f"lo_{lv}"]) &
                                                     (actual <= res[f"hi_{lv}"])))
                if "lo_q" in res:
                    r["covq"].append(np.mean((actual >= res["lo_q"]) & (actual <= res["hi_q"])))
                print(f"{name:22s} origin {o} {mname:16s} MASE {r['mase'][-1]:.3f} "
                      f"({secs:.1f} s)", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default=",".join(SETTINGS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--seeds", default="0,1,2",
                    help="comma-separated seeds; MASE is averaged over seeds and origins")
    ap.add_argument("--output", default="accuracy.md")
    ap.add_argument("--allow-noisy", action="store_true",
                    help="run on a busy machine anyway (the table is marked NOISY)")
    ap.add_argument("--tsrnn-params", default="{}",
                    help="JSON of parameters changed from tsrnn's defaults (experiments)")
    args = ap.parse_args(argv)

    # The fit-time column depends on the load (the accuracy does not).
    noisy = check_quiet(allow_noisy=args.allow_noisy)
    TSRNN_OVERRIDES.update(json.loads(args.tsrnn_params))
    series = args.series.split(",")
    models = [mm for mm in args.models.split(",")
              if not (args.no_torch and mm == "PyTorch LSTM")]
    if "PyTorch LSTM" in models:
        try:
            import torch  # noqa: F401
        except ImportError:
            models.remove("PyTorch LSTM")
    t0 = time.time()
    seeds = [int(v) for v in args.seeds.split(",")]
    per_seed = [run(series, models, sd) for sd in seeds]
    rows = {key: {k: sum((r[key][k] for r in per_seed), []) for k in per_seed[0][key]}
            for key in per_seed[0]}

    def rel_mase(rr, name, mm):
        base = np.mean(rr[(name, "seasonal naive")]["mase"]) \
            if "seasonal naive" in models else np.nan
        return np.mean(rr[(name, mm)]["mase"]) / base

    table = []
    rel = {mm: [] for mm in models}
    for name in series:
        base = np.mean(rows[(name, "seasonal naive")]["mase"]) \
            if "seasonal naive" in models else np.nan
        for mm in models:
            r = rows[(name, mm)]
            mase = np.mean(r["mase"])
            rel[mm].append(mase / base)
            cov = " / ".join(f"{np.mean(r[c]):.0%}" for c in ("cov80", "cov95", "covq")
                             if r[c])
            table.append([name, mm, f"{mase:.3f}", f"{mase / base:.3f}",
                          f"{np.mean(r['smape']):.2f}", f"{np.mean(r['rmse']):.4g}",
                          cov or "", f"{np.median(r['seconds']):.2f}"])
    for mm in models:
        g = float(np.exp(np.mean(np.log(rel[mm]))))
        beats = sum(v < 1 for v in rel[mm])
        each = " / ".join(
            f"{np.exp(np.mean(np.log([rel_mase(rr, n, mm) for n in series]))):.3f}"
            for rr in per_seed)
        table.append(["**geometric mean**", f"**{mm}**", "", f"**{g:.3f}**", "", "",
                      f"beats seasonal naive on {beats}/{len(series)}; per seed {each}",
                      ""])
    ref = ", ".join(f"{k} {v}" for k, v in REFERENCE.items())
    command = " ".join(["python benchmarks/bench_accuracy.py"]
                       + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    # An experiment says so where the table is read.
    changed = (f"\n\n**The \"tsrnn defaults\" rows use {json.dumps(TSRNN_OVERRIDES)} "
               "instead of the defaults.**" if TSRNN_OVERRIDES else "")
    notes = f"""
Command: `{command}` ({machine_line()},
{time.time() - t0:.0f} s in all). Rolling origin, refit at every origin,
origins/horizon/lookback/season from `../shared/data/DATA.md`; MASE uses the in-sample
seasonal-naive error (period m) of each origin's training data; uschange is averaged
over its five columns (one multivariate model). `rel. MASE` is MASE divided by seasonal
naive's on the same series; the last rows are its geometric mean over the series (the
headline figure; reference figures from the issue: {ref}). Coverage: tsrnn's conformal
80% / 95% intervals (`predict(level=[80, 95])`), and the q0.1-q0.9 band (nominal 80%) of
the quantile model (`quantiles=[0.1, 0.5, 0.9]`). The PyTorch LSTM has tsrnn's defaults
(hidden 32, same window and inputs, L1 loss, Adam 3e-3, batch 32, clip 1, early stopping
on the last 10% with patience 20) but predicts levels, not changes, and has no calendar
features. `fit s` is the median time of one fit and forecast. Seeds {args.seeds}: MASE
is averaged over seeds and origins, and the geometric-mean rows also give each seed's
figure (on series this short a network's accuracy moves with its seed).{changed}
"""
    noisy = noisy or check_quiet(allow_noisy=True, after=True)
    if noisy:
        notes = noisy + "\n" + notes
    write_table(args.output, "Accuracy on the bundled series (rolling origin)",
                ["series", "model", "MASE", "rel. MASE", "sMAPE %", "RMSE",
                 "coverage 80/95/q", "fit s"], table, notes)


if __name__ == "__main__":
    main()
