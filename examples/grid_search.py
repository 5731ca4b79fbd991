"""Tuning on pandas data: scikit-learn's GridSearchCV, and sktime's.

    python examples/grid_search.py [--epochs N] [--n-jobs N]

``GridSearchCV(..., cv=TimeSeriesSplit(...)).fit(y)`` on the airline series: each
fold fits the model people deploy on the history before the fold, and scores it by
``TSRNNRegressor.score``, minus the MASE of its rolling forecasts over the fold (no
refit inside a fold). The best setting is refit on everything and forecasts the next
year. With sktime installed (``pip install "tsrnn[sktime]"``), the same search runs
as ``ForecastingGridSearchCV`` over ``tsrnn.sktime.TSRNNForecaster``.
"""

import argparse
import time
import warnings

from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)

    y = load_air_passengers()
    search = GridSearchCV(
        TSRNNRegressor(horizon=12, max_epochs=args.epochs, random_state=0),
        {"cell": ["lstm", "gru"], "lookback": [12, 24]},
        cv=TimeSeriesSplit(n_splits=3, test_size=24), n_jobs=args.n_jobs,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(y)
    print(f"searched 4 settings x 3 folds in {time.perf_counter() - t0:.1f} s")
    for params, score in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"]):
        print(f"  {params}: rolling-origin MASE {-score:.3f}")
    print(f"best: {search.best_params_}")
    print(search.best_estimator_.predict().round(1).head(3).to_string())

    try:
        from sktime.forecasting.model_selection import ForecastingGridSearchCV
        from sktime.split import ExpandingWindowSplitter

        from tsrnn.sktime import TSRNNForecaster
    except ImportError:
        return search
    cv = ExpandingWindowSplitter(initial_window=96, step_length=12, fh=list(range(1, 13)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = ForecastingGridSearchCV(
            TSRNNForecaster(max_epochs=args.epochs, random_state=0), cv=cv,
            param_grid={"cell": ["lstm", "gru"], "lookback": [12, 24]},
        ).fit(y, fh=list(range(1, 13)))
    print(f"sktime ForecastingGridSearchCV best: {sk.best_params_}")
    return search


if __name__ == "__main__":
    main()
