"""scikit-learn's own estimator checks (array input, where the sklearn contract lives)."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from tsrnn import TSRNNRegressor

# Checks the estimator cannot pass, each with its reason (not silently skipped).
EXPECTED_FAILED = {}


@parametrize_with_checks(
    [TSRNNRegressor()],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
