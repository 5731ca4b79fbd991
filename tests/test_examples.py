"""Examples run with small settings so that they never rot."""

import runpy
import sys
import warnings
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning with few epochs
        return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_quickstart_runs(capsys, monkeypatch):
    run_example("quickstart.py", monkeypatch, "--epochs", 3)
    out = capsys.readouterr().out
    assert "1960-12" in out and "MAE tsrnn" in out


def test_exogenous_example_writes_its_plot(capsys, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    run_example("exogenous_elecdemand.py", monkeypatch, "--epochs", 1, "--out", tmp_path)
    out = capsys.readouterr().out
    assert "2014-12-31 00:00:00" in out and "inside the 80% interval" in out
    assert (tmp_path / "elecdemand_forecast.png").stat().st_size > 10_000


def test_global_model_example(capsys, monkeypatch, tmp_path):
    run_example("global_model.py", monkeypatch, "--epochs", 2, "--out", tmp_path)
    out = capsys.readouterr().out
    assert "mean MASE" in out and "new_series" in out and "unemployment" in out


def test_grid_search_example(capsys, monkeypatch):
    run_example("grid_search.py", monkeypatch, "--epochs", 2, "--n-jobs", 1)
    out = capsys.readouterr().out
    assert "best: {" in out and "rolling-origin MASE" in out


def test_intervals_example(capsys, monkeypatch, tmp_path):
    run_example("intervals.py", monkeypatch, "--epochs", 2, "--windows", 2, "--out", tmp_path)
    out = capsys.readouterr().out
    assert "90% conformal interval covered" in out and "quantile band" in out
