"""Prediction intervals two ways: quantile outputs and conformal intervals.

    python examples/intervals.py [--epochs N] [--out DIR]

1. ``quantiles=[0.05, 0.5, 0.95]`` trains one network on the pinball loss that
   outputs the three quantiles at once (never crossing);
2. ``predict(level=[90])`` widens the point forecast by the errors the model made
   on its held-out validation windows (split conformal).

A rolling-origin backtest on the daily Melbourne temperatures reports how often each
90% interval actually contained the truth, and ``intervals.png`` shows both.
"""

import argparse
import warnings
from pathlib import Path

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_melbourne_temp


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--out", default="examples/output")
    args = ap.parse_args(argv)

    # Feb 29 is absent from this series: reindex to a regular daily index first.
    y = load_melbourne_temp().asfreq("D").interpolate()
    common = dict(lookback=30, horizon=14, max_epochs=args.epochs, random_state=0)
    quantile_model = TSRNNRegressor(quantiles=[0.05, 0.5, 0.95], **common)
    point_model = TSRNNRegressor(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rq = tsrnn.backtest(quantile_model, y, n_windows=args.windows, refit=False)
        rc = tsrnn.backtest(point_model, y, n_windows=args.windows, refit=False,
                            level=[90])
        quantile_model.fit(y)
        point_model.fit(y)
    cov_q = rq.overall.filter(like="coverage").iloc[0]
    print(f"90% quantile band (q0.05-q0.95) covered {cov_q:.0%} of "
          f"{len(rq.forecasts)} held-out days; MASE {rq.overall['mase']:.3f}")
    print(f"90% conformal interval covered {rc.overall['coverage_90']:.0%}; "
          f"MASE {rc.overall['mase']:.3f}")

    fq = quantile_model.predict()
    fc = point_model.predict(level=[90])
    print(fc.round(1).head(5).to_string())
    try:
        import matplotlib.pyplot as plt

        from tsrnn.plotting import plot_forecast
    except ImportError:
        return rq, rc
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    plot_forecast(y, fq, last=60, ax=axes[0]).set_title("quantile outputs (5-95%)")
    plot_forecast(y, fc, last=60, ax=axes[1]).set_title("conformal 90% interval")
    fig.savefig(out / "intervals.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'intervals.png'}")
    return rq, rc


if __name__ == "__main__":
    main()
