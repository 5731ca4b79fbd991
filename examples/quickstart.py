"""Quickstart: forecast the last year of the airline-passengers series and check it.

    python examples/quickstart.py [--epochs N]

Fits an LSTM on 1949-1959 (monthly), forecasts the 12 months of 1960, and prints the
forecast next to what happened, with the error of the seasonal-naive forecast (the
same month one year earlier) for comparison.
"""

import argparse
import time

import numpy as np
import pandas as pd

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200, help="max_epochs (default 200)")
    args = ap.parse_args(argv)

    y = load_air_passengers()
    train, test = y[:-12], y[-12:]
    model = TSRNNRegressor(lookback=24, horizon=12, max_epochs=args.epochs, random_state=0)
    # tsrnn itself prints nothing; a first-time user should know why run 1 is slow.
    print("Fitting an LSTM on 1949-1959 (the very first run also compiles tsrnn's "
          "kernels, about 10 s on two cores, cached on disk for later runs)...",
          flush=True)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    forecast = model.predict()

    table = pd.DataFrame({
        "actual": test,
        "tsrnn": forecast["passengers"].round(1),
        "seasonal_naive": y[-24:-12].to_numpy(),
    })
    table.index = table.index.strftime("%Y-%m")
    print(table.to_string())
    mae = np.abs(table["tsrnn"] - table["actual"]).mean()
    mae_naive = np.abs(table["seasonal_naive"] - table["actual"]).mean()
    print(f"\nMAE tsrnn {mae:.1f}  vs seasonal naive {mae_naive:.1f}  "
          f"(fit {fit_s:.1f} s, {model.n_iter_} epochs, best {model.best_epoch_})")
    return mae, mae_naive


if __name__ == "__main__":
    main()
