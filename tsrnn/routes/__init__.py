"""The data routes of :class:`tsrnn.TSRNNRegressor`, one object per kind of input,
behind one interface:

- :class:`PanelRoute` (pandas: a Series, a wide or a long frame; forecasts indexed by
  future timestamps, intervals, backtests);
- :class:`ArrayRoute` (windowed arrays and targets: scikit-learn's contract).

Each has ``prepare(est, ...)``, which validates the data, sets the route's fitted
state and returns a :class:`tsrnn.training.TrainingPlan` (windows served by index)
for :func:`tsrnn.fitting.train`; ``predict``; ``same_data`` (does a checkpoint
belong to this data); ``quantiles`` and ``n_quantiles``. A fitted estimator holds its
route as ``route_``; :mod:`tsrnn.state` saves and restores it.
"""

from tsrnn.routes.arrays import ArrayRoute
from tsrnn.routes.panel import PanelRoute

ROUTES = {"pandas": PanelRoute, "arrays": ArrayRoute}

__all__ = ["ROUTES", "ArrayRoute", "PanelRoute"]
