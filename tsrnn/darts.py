"""darts ``TimeSeries`` in and out (needs darts: ``pip install darts``).

    from tsrnn.darts import from_darts, to_darts
    X, fit_kw = from_darts(series, future_covariates=weather)
    model = TSRNNRegressor(lookback=48, horizon=24).fit(X, **fit_kw)
    to_darts(model.predict(future=future_frame(weather, model)))

One ``TimeSeries`` becomes a frame indexed by time (its components the targets); a
list of them a long frame (``unique_id`` = the position in the list), one global
model. Past covariates become exogenous inputs; future covariates exogenous inputs
known in advance (``future_exog``).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["from_darts", "future_frame", "to_darts"]


def _frame(ts) -> pd.DataFrame:
    return ts.to_dataframe() if hasattr(ts, "to_dataframe") else ts.pd_dataframe()


def _as_list(x):
    return None if x is None else (list(x) if isinstance(x, (list, tuple)) else [x])


def from_darts(series, past_covariates=None, future_covariates=None):
    """``(X, fit_kwargs)`` for ``TSRNNRegressor.fit(X, **fit_kwargs)`` from darts
    ``TimeSeries`` (one, or a list with covariates of the same length)."""
    many = isinstance(series, (list, tuple))
    items, past, fut = _as_list(series), _as_list(past_covariates), \
        _as_list(future_covariates)
    for name, cov in (("past_covariates", past), ("future_covariates", fut)):
        if cov is not None and len(cov) != len(items):
            raise ValueError(f"{name} must have one TimeSeries per series: "
                             f"{len(cov)} for {len(items)}.")
    frames, future_cols, targets = [], [], None
    for k, ts in enumerate(items):
        df = _frame(ts)
        targets = list(df.columns)
        for cov, known in ((past, False), (fut, True)):
            if cov is None:
                continue
            c = _frame(cov[k]).reindex(df.index)
            if c.isna().to_numpy().any():
                raise ValueError(f"the covariates of series {k} do not cover its time "
                                 f"range {df.index[0]} .. {df.index[-1]}.")
            clash = [col for col in c.columns if col in df.columns]
            if clash:
                raise ValueError(f"covariate columns {clash} have the names of series "
                                 "components; rename them.")
            df = df.join(c)
            if known and k == 0:
                future_cols += list(c.columns)
        frames.append(df)
    kwargs = {"target": targets, "future_exog": future_cols or None}
    if not many:
        return frames[0], kwargs
    long = pd.concat([f.rename_axis("ds").reset_index().assign(unique_id=k)
                      for k, f in enumerate(frames)], ignore_index=True)
    cols = ["unique_id", "ds"] + [c for c in long.columns if c not in ("unique_id", "ds")]
    return long[cols], kwargs


def future_frame(future_covariates, model) -> pd.DataFrame:
    """The ``future=`` frame of ``model.predict`` from darts future covariates (one
    ``TimeSeries``, or a list for a model fitted on a list)."""
    items = _as_list(future_covariates)
    cols = list(model.future_exog_)
    if len(items) == 1 and model.series_ids_ == [None]:
        return _frame(items[0])[cols]
    return pd.concat([_frame(ts)[cols].rename_axis("ds").reset_index().assign(unique_id=k)
                      for k, ts in enumerate(items)], ignore_index=True)


def to_darts(forecast: pd.DataFrame):
    """``predict``'s result as a darts ``TimeSeries`` (a list of them, in series
    order, for a long frame)."""
    from darts import TimeSeries

    if "unique_id" not in forecast.columns:
        return TimeSeries.from_dataframe(forecast)
    return [TimeSeries.from_dataframe(g.drop(columns="unique_id"), time_col="ds")
            for _, g in forecast.groupby("unique_id", sort=False)]
