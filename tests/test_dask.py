"""Scale-out on an existing engine: a grid search on a Dask cluster through joblib
gives what n_jobs=1 gives, and the workers load the compiled kernels from the disk
cache instead of compiling them again."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

import tsrnn
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers

distributed = pytest.importorskip("distributed")


def _kernel_cache_stats():
    """(cache hits, cache misses) summed over tsrnn's compiled kernels, in the
    process where it runs (a miss means a compilation)."""
    import tsrnn.data
    import tsrnn.kernels.cpu.gru
    import tsrnn.kernels.cpu.linalg
    import tsrnn.kernels.cpu.lstm
    import tsrnn.kernels.cpu.rnn

    hits = misses = 0
    for mod in (tsrnn.kernels.cpu.lstm, tsrnn.kernels.cpu.gru, tsrnn.kernels.cpu.rnn,
                tsrnn.kernels.cpu.linalg, tsrnn.data):
        for obj in vars(mod).values():
            stats = getattr(obj, "stats", None)
            if stats is not None and hasattr(stats, "cache_hits"):
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    return hits, misses


@pytest.mark.slow
def test_grid_search_on_a_dask_cluster_equals_n_jobs_1():
    from distributed import Client, LocalCluster

    X, y = tsrnn.make_windows(np.log(load_air_passengers().to_numpy()), lookback=12)
    grid = {"cell": ["gru", "rnn"], "hidden_size": [4, 8]}

    def search(n_jobs):
        return GridSearchCV(TSRNNRegressor(max_epochs=5, random_state=0), grid,
                            cv=TimeSeriesSplit(3), n_jobs=n_jobs,
                            scoring="neg_mean_absolute_error")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = search(1).fit(X, y)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            with joblib.parallel_backend("dask"):
                on_dask = search(-1).fit(X, y)
            stats = client.run(_kernel_cache_stats)
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(on_dask.predict(X), local.predict(X))
    assert len(stats) == 2
    for worker, (hits, misses) in stats.items():
        assert hits > 0, f"{worker} ran no kernel"
        assert misses == 0, f"{worker} compiled {misses} kernel(s) instead of loading them"
