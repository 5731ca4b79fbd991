"""Save every kind of forecast tsrnn makes, or compare them with a saved set.

    python tools/compare_outputs.py save DIR      # on the code before a change
    python tools/compare_outputs.py compare DIR   # on the code after it

A refactoring must not change results: this script fits small models on the bundled
series through every route (a Series, a wide frame with known-future exogenous
columns, a long frame, windowed arrays; direct, recursive and quantile models;
window scaling and calendar on and off), and keeps their point forecasts, conformal
intervals, quantiles, backtests (refit once and every window), calibrated intervals,
forecasts of new series, ``partial_fit`` continuations, checkpointed fits, saved and
reloaded models, and PyTorch-layout weights. ``compare`` asserts each is
bit-identical (``np.array_equal``, NaN-aware) and lists what it covered.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers, load_elecdemand, load_uschange


def _frames(obj, prefix):
    """Flatten a result into {name: ndarray}."""
    out = {}
    if isinstance(obj, pd.DataFrame):
        for c in obj.columns:
            v = obj[c].to_numpy()
            out[f"{prefix}/{c}"] = (v.astype(str) if v.dtype == object
                                    or not np.issubdtype(v.dtype, np.number) else v)
        out[f"{prefix}/index"] = np.asarray(obj.index.astype(str)).astype(str)
    elif isinstance(obj, pd.Series):
        out[f"{prefix}"] = obj.to_numpy()
    else:
        out[prefix] = np.asarray(obj)
    return out


def cases():
    warnings.simplefilter("ignore")
    res = {}
    air = load_air_passengers()
    kw = dict(max_epochs=8, random_state=0)

    m = TSRNNRegressor(lookback=24, horizon=12, **kw).fit(air[:-12])
    res |= _frames(m.predict(), "series/predict")
    res |= _frames(m.predict(level=[80, 95]), "series/level")
    res |= _frames(m.predict(air[:-30]), "series/new_history")
    res |= {f"series/torch/{k}": v for k, v in m.to_torch_state_dict().items()}
    res |= _frames(np.asarray(m.loss_curve_), "series/loss_curve")
    m.calibrate(air, n_windows=6)
    res |= _frames(m.predict(level=[90]), "series/calibrated")
    m.partial_fit(air)
    res |= _frames(m.predict(), "series/partial_fit")
    with tempfile.TemporaryDirectory() as d:
        m.save(Path(d) / "m.tsrnn")
        m2 = TSRNNRegressor.load(Path(d) / "m.tsrnn")
        res |= _frames(m2.predict(level=[90]), "series/reloaded")
        ck = Path(d) / "ck.tsrnn"
        c1 = TSRNNRegressor(lookback=12, horizon=6, max_epochs=3, random_state=1,
                            checkpoint_path=ck).fit(air)
        c2 = TSRNNRegressor(lookback=12, horizon=6, max_epochs=6, random_state=1,
                            checkpoint_path=ck).fit(air)
        res |= _frames(c1.predict(), "series/ckpt_first")
        res |= _frames(c2.predict(), "series/ckpt_resumed")

    for name, extra in {"gru_rec": dict(cell="gru", strategy="recursive"),
                        "rnn_linear": dict(cell="rnn", head="linear",
                                           window_scaling=False, calendar=None),
                        "quant": dict(quantiles=[0.1, 0.5, 0.9]),
                        "seasonal": dict(baseline="seasonal", scaler="robust"),
                        "tbptt": dict(tbptt_steps=8, scaler="minmax", loss="huber")}.items():
        mm = TSRNNRegressor(lookback=24, horizon=6, **extra, **kw).fit(air)
        res |= _frames(mm.predict(), f"{name}/predict")
        if name != "quant":
            res |= _frames(mm.predict(level=[90]), f"{name}/level")

    elec = load_elecdemand().iloc[: 24 * 40]
    me = TSRNNRegressor(cell="gru", lookback=48, horizon=24, hidden_size=16,
                        **kw).fit(elec, target="demand_gw",
                                  future_exog=["temperature_c", "workday"])
    fut = elec.iloc[-24:][["temperature_c", "workday"]].copy()
    fut.index = fut.index + pd.Timedelta(days=1)
    res |= _frames(me.predict(future=fut, level=[90]), "elec/predict")
    bt = tsrnn.backtest(me, elec, n_windows=2, refit=False, level=[90],
                        target="demand_gw", future_exog=["temperature_c", "workday"])
    res |= _frames(bt.forecasts, "elec/backtest")
    res |= _frames(bt.metrics.reset_index(), "elec/backtest_metrics")

    wide = load_uschange()
    long = (wide.rename_axis("ds").reset_index()
            .melt(id_vars="ds", var_name="unique_id", value_name="y")
            [["unique_id", "ds", "y"]])
    ml = TSRNNRegressor(lookback=12, horizon=8, **kw).fit(long)
    res |= _frames(ml.predict(level=[80]), "long/predict")
    new = long[long.unique_id == "income"].assign(unique_id="new", y=lambda d: 3 * d.y)
    res |= _frames(ml.predict(new), "long/new_series")
    bt = tsrnn.backtest(TSRNNRegressor(lookback=12, horizon=4, **kw), long,
                        n_windows=2, step=4, refit=True)
    res |= _frames(bt.forecasts, "long/backtest_refit")
    mw = TSRNNRegressor(lookback=12, horizon=4, quantiles=[0.2, 0.5, 0.8], **kw).fit(wide)
    res |= _frames(mw.predict(), "wide/predict")

    X, y = tsrnn.make_windows(air.to_numpy(), lookback=12, horizon=3)
    ma = TSRNNRegressor(**kw).fit(X, y)
    res |= _frames(ma.predict(X[-5:]), "arrays/predict")
    mq = TSRNNRegressor(quantiles=[0.25, 0.75], **kw).fit(X, y[:, 0])
    res |= _frames(mq.predict(X[-5:]), "arrays/quantiles")
    with tempfile.TemporaryDirectory() as d:
        ma.save(Path(d) / "a.tsrnn")
        res |= _frames(TSRNNRegressor.load(Path(d) / "a.tsrnn").predict(X[-5:]),
                       "arrays/reloaded")
    return res


def main(argv):
    mode, folder = argv[1], Path(argv[2])
    res = cases()
    if mode == "save":
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "outputs.npz", **{k.replace("/", "|"): v for k, v in res.items()})
        print(f"saved {len(res)} arrays to {folder / 'outputs.npz'}")
        return 0
    old = {k.replace("|", "/"): v for k, v in np.load(folder / "outputs.npz").items()}
    bad = sorted(set(old) ^ set(res))
    for k in sorted(set(old) & set(res)):
        a, b = old[k], res[k]
        same = a.shape == b.shape and (
            np.array_equal(a, b, equal_nan=True) if a.dtype.kind in "fc"
            else np.array_equal(a, b))
        if not same:
            bad.append(k)
    groups = sorted({k.split("/")[0] for k in res})
    print(f"compared {len(res)} arrays in {len(groups)} groups: {', '.join(groups)}")
    if bad:
        print("DIFFERENT:", *bad, sep="\n  ")
        return 1
    print("all bit-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
