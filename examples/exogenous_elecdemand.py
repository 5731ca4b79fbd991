"""Exogenous inputs: next-day electricity demand from temperature and workdays.

    python examples/exogenous_elecdemand.py [--epochs N] [--out DIR]

Victoria's hourly demand in 2014 depends on temperature and on whether the day is a
working day; both are known a day ahead (a weather forecast, a calendar), so they are
``future_exog``: the model sees the next 24 hours of them when it forecasts. Trains a
GRU on the year up to 30 December, forecasts 31 December with 80/95% conformal
intervals, prints the error next to the seasonal-naive (same hour yesterday) and
writes ``elecdemand_forecast.png``.

Expect the seasonal naive to win on this particular day: 29-31 December are flagged
``workday=1`` but behave like holidays, so a model that trusts the workday input
over-forecasts them, while "same as yesterday" is right. (On the bundled series'
backtests, benchmarks/results/accuracy.md, this week is where tsrnn loses.) A holiday
column in ``future_exog`` is the fix a forecaster would make.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_elecdemand


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--out", default="examples/output", help="folder for the PNG")
    args = ap.parse_args(argv)

    df = load_elecdemand()  # demand_gw, temperature_c, workday (hourly)
    history, tomorrow = df.iloc[:-24], df.iloc[-24:]
    model = TSRNNRegressor(cell="gru", lookback=72, horizon=24, hidden_size=32,
                           max_epochs=args.epochs, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning with few epochs
        model.fit(history, target="demand_gw", future_exog=["temperature_c", "workday"])
    fit_s = time.perf_counter() - t0
    fc = model.predict(future=tomorrow[["temperature_c", "workday"]], level=[80, 95])

    actual = tomorrow["demand_gw"].to_numpy()
    mae = np.abs(fc["demand_gw"].to_numpy() - actual).mean()
    mae_naive = np.abs(history["demand_gw"].to_numpy()[-24:] - actual).mean()
    inside = np.mean((actual >= fc["demand_gw_lo_80"]) & (actual <= fc["demand_gw_hi_80"]))
    print(fc.round(3).head(6).to_string())
    print(f"\nMAE tsrnn {mae:.3f} GW vs seasonal naive {mae_naive:.3f} GW; "
          f"{inside:.0%} of the day inside the 80% interval "
          f"(fit {fit_s:.1f} s, {model.n_iter_} epochs)")

    try:
        from tsrnn.plotting import plot_forecast
    except ImportError:
        return mae, mae_naive
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ax = plot_forecast(history["demand_gw"], fc, last=24 * 5, actual=tomorrow["demand_gw"])
    ax.set_ylabel("GW")
    ax.figure.savefig(out / "elecdemand_forecast.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'elecdemand_forecast.png'}")
    return mae, mae_naive


if __name__ == "__main__":
    main()
