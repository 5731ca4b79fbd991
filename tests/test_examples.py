"""Examples run with small settings so that they never rot."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_runs(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--epochs", "3"])
    with pytest.warns(Warning):  # ConvergenceWarning at 3 epochs
        runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "1960-12" in out and "MAE tsrnn" in out
