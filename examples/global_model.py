"""Many series, one global model: the five US macro series as a long frame.

    python examples/global_model.py [--epochs N] [--out DIR]

A long frame (``unique_id``, ``ds``, ``y``) trains one network over every series,
each scaled on its own. The example holds out the last 8 quarters of each series,
backtests over 4 origins, forecasts a series the model never saw (a copy of one
series, shifted and scaled) and writes ``global_backtest.png``.
"""

import argparse
import warnings
from pathlib import Path

import pandas as pd

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_uschange


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--out", default="examples/output")
    args = ap.parse_args(argv)

    wide = load_uschange()
    long = (wide.rename_axis("ds").reset_index()
            .melt(id_vars="ds", var_name="unique_id", value_name="y")
            [["unique_id", "ds", "y"]])
    model = TSRNNRegressor(cell="lstm", lookback=12, horizon=8, max_epochs=args.epochs,
                           random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tsrnn.backtest(model, long, n_windows=4, step=4, refit=False)
        model.fit(long)
    print("Backtest (4 origins, one model for all five series):")
    print(res.metrics.round(3).to_string())
    print(f"mean MASE {res.overall['mase']:.3f}")

    print("\nNext 8 quarters, every series:")
    print(model.predict().pivot(index="ds", columns="unique_id", values="y_pred")
          .round(2).to_string())

    new = long[long.unique_id == "income"].assign(unique_id="new_series",
                                                  y=lambda d: 3 * d.y + 5)
    print("\nA series never seen in fit:")
    print(model.predict(new).round({"y_pred": 2}).head(4).to_string(index=False))

    try:
        from tsrnn.plotting import plot_backtest
    except ImportError:
        return res
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ax = plot_backtest(res, history=long, series="consumption")
    ax.figure.savefig(out / "global_backtest.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'global_backtest.png'}")
    return res


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
