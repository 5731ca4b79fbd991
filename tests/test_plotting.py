"""Plots draw what they say (checked on the matplotlib objects, not pixels)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import tsrnn  # noqa: E402
from tsrnn import TSRNNRegressor  # noqa: E402
from tsrnn.datasets import load_air_passengers  # noqa: E402
from tsrnn.plotting import plot_forecast, plot_loss  # noqa: E402


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TSRNNRegressor(lookback=12, horizon=6, hidden_size=8, max_epochs=5,
                              random_state=0).fit(load_air_passengers())


def test_forecast_plot_has_history_forecast_and_interval(model, tmp_path):
    y = load_air_passengers()
    # 13 validation windows are too few for an honest 95% interval: the model says so.
    with pytest.warns(UserWarning, match="too few for a 95% conformal interval") as caught:
        fc = model.predict(level=[80, 95])
    assert [w.filename for w in caught] == [__file__]  # at this line, not in tsrnn
    ax = plot_forecast(y, fc, last=36)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) >= {"history", "forecast"}
    np.testing.assert_allclose(lines["forecast"].get_ydata(), fc["passengers"])
    assert len(lines["history"].get_xdata()) == 36
    assert len(ax.collections) == 2  # the 80% and 95% bands
    ax.figure.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000


def test_backtest_and_loss_plots(model):
    y = load_air_passengers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tsrnn.backtest(model, y, n_windows=3, refit=False)
    ax = res.plot(history=y)
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels[0] == "actual" and sum(lb.startswith("window") for lb in labels) == 3
    ax = plot_loss(model)
    assert len(ax.get_lines()[0].get_ydata()) == model.n_iter_
