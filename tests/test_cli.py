"""The tsrnn command from a shell's point of view: files in, files out, one-line
errors and non-zero exit codes."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from tsrnn.cli import main
from tsrnn.datasets import load_air_passengers, load_elecdemand


@pytest.fixture
def elec(tmp_path):
    df = load_elecdemand().iloc[-700:]
    df.iloc[:-24].to_csv(tmp_path / "elec.csv")
    df.iloc[-24:][["temperature_c", "workday"]].to_csv(tmp_path / "next.csv")
    return tmp_path


def run(argv, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_predict_backtest_with_future_exog(elec, capsys):
    d = elec
    rc, out, err = run(["fit", d / "elec.csv", "--target", "demand_gw", "--exog",
                        "temperature_c,workday", "--future-exog", "temperature_c,workday",
                        "--lookback", 48, "--horizon", 24, "--hidden-size", 8,
                        "--max-epochs", 3, "-o", d / "m.tsrnn"], capsys)
    assert rc == 0, err
    assert "fitted lstm on 1 series" in err and (d / "m.tsrnn").exists()
    rc, out, err = run(["predict", d / "m.tsrnn", d / "elec.csv", "--future", d / "next.csv",
                        "--level", "80", "-o", d / "fc.csv"], capsys)
    assert rc == 0, err
    fc = pd.read_csv(d / "fc.csv", index_col=0, parse_dates=True)
    nxt = pd.read_csv(d / "next.csv", index_col=0, parse_dates=True)
    assert list(fc.index) == list(nxt.index)
    assert list(fc.columns) == ["demand_gw", "demand_gw_lo_80", "demand_gw_hi_80"]
    assert np.isfinite(fc.to_numpy()).all()
    # the CLI forecast equals the library's on the same model file
    from tsrnn import TSRNNRegressor

    m = TSRNNRegressor.load(d / "m.tsrnn")
    lib = m.predict(pd.read_csv(d / "elec.csv", index_col=0, parse_dates=True),
                    future=nxt, level=[80])
    np.testing.assert_allclose(fc.to_numpy(), lib.to_numpy(), rtol=1e-9)
    pytest.importorskip("matplotlib")
    rc, out, err = run(["backtest", d / "m.tsrnn", d / "elec.csv", "--windows", 2,
                        "--refit", "never", "--plot", d / "bt.png", "-o", d / "bt.csv"], capsys)
    assert rc == 0, err
    assert "mase" in out and "demand_gw" in out
    assert (d / "bt.png").stat().st_size > 10_000
    assert len(pd.read_csv(d / "bt.csv")) == 48


def test_predict_to_stdout_and_long_csv(tmp_path, capsys):
    y = load_air_passengers()
    long = pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": y.index,
                                    "y": y.to_numpy() + k}) for k in range(2)])
    long.to_csv(tmp_path / "long.csv", index=False)
    rc, out, err = run(["fit", tmp_path / "long.csv", "--lookback", 12, "--horizon", 3,
                        "--hidden-size", 8, "--max-epochs", 2, "-o", tmp_path / "m.tsrnn"],
                       capsys)
    assert rc == 0, err
    assert "on 2 series" in err
    rc, out, err = run(["predict", tmp_path / "m.tsrnn", tmp_path / "long.csv"], capsys)
    assert rc == 0
    lines = out.strip().splitlines()
    assert lines[0] == "unique_id,ds,y_pred" and len(lines) == 1 + 2 * 3
    assert lines[1].startswith("s0,1961-01-01")
    rc, out, err = run(["info", tmp_path / "m.tsrnn"], capsys)
    assert rc == 0 and "2 series" in out and "lookback 12" in out


@pytest.mark.parametrize("argv, message", [
    (["predict", "{d}/absent.tsrnn", "{d}/elec.csv"], "No model file"),
    (["predict", "{d}/elec.csv", "{d}/elec.csv"], "not a valid tsrnn model file"),
    (["fit", "{d}/elec.csv", "-o", "{d}/m.tsrnn"], "--target is required"),
    (["fit", "{d}/elec.csv", "--target", "nope", "-o", "{d}/m.tsrnn"],
     "column(s) ['nope'] not in the data"),
    (["fit", "{d}/missing.csv", "--target", "y", "-o", "{d}/m.tsrnn"], "no such file"),
    (["fit", "{d}/elec.csv", "--target", "demand_gw", "--lookback", "5000",
      "-o", "{d}/m.tsrnn"], "fewer than lookback + horizon"),
])
def test_bad_arguments_and_files_print_one_line_and_fail(elec, capsys, argv, message):
    rc, out, err = run([a.format(d=elec) for a in argv], capsys)
    assert rc == 1
    assert err.startswith("tsrnn: error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (elec / "m.tsrnn").exists()


def test_predict_without_the_required_future_file_says_which_option(elec, capsys):
    run(["fit", elec / "elec.csv", "--target", "demand_gw", "--future-exog", "workday",
         "--lookback", 24, "--horizon", 6, "--hidden-size", 8, "--max-epochs", 1,
         "-o", elec / "m.tsrnn"], capsys)
    rc, out, err = run(["predict", elec / "m.tsrnn", elec / "elec.csv"], capsys)
    assert rc == 1 and "--future" in err and "['workday']" in err


def test_usage_errors_exit_2_and_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "x.csv", "--lookback", "many", "-o", "m"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "tsrnn fit elec.csv --target demand_gw" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "tsrnn", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("tsrnn ")


def test_fit_passes_loss_calendar_head_window_scaling_and_combine(elec, capsys):
    from tsrnn import TSRNNRegressor

    d = elec
    for flag, cycles, head, ws, combine in (
            ("none", [], "linear", ["--no-window-scaling"], "none"),
            ("day,week", ["day", "week"], "mlp", [], "smoothing")):
        rc, out, err = run(["fit", d / "elec.csv", "--target", "demand_gw", "--lookback", 12,
                            "--horizon", 2, "--hidden-size", 4, "--max-epochs", 1,
                            "--loss", "mse", "--calendar", flag, "--head", head, *ws,
                            "--combine", combine, "-o", d / "c.tsrnn"], capsys)
        assert rc == 0, err
        m = TSRNNRegressor.load(d / "c.tsrnn")
        assert m.loss == "mse" and m.calendar_ == cycles
        assert m.head == head and m.net_.head == head
        assert m.window_scaling is (not ws) and m.route_.window_scaling is (not ws)
        assert m.combine == (None if combine == "none" else combine)
        assert (m.route_.smoothing is None) is (combine == "none")


def test_standard_input_and_output_reports_on_stderr_quiet_and_json(tmp_path):
    """``-`` reads the CSV from standard input and writes the model or the forecast
    to standard output; progress lines go to standard error, or nowhere with -q."""
    import json
    import subprocess
    import sys

    csv = load_air_passengers().to_frame().to_csv()
    tsrnn = [sys.executable, "-m", "tsrnn"]
    fit = subprocess.run([*tsrnn, "fit", "-", "--target", "passengers", "--lookback",
                          "12", "--horizon", "3", "--max-epochs", "3", "-o", "-"],
                         input=csv.encode(), capture_output=True, timeout=600)
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout[:2] == b"PK" and b"fitted lstm" in fit.stderr
    (tmp_path / "m.tsrnn").write_bytes(fit.stdout)
    pred = subprocess.run([*tsrnn, "predict", str(tmp_path / "m.tsrnn"), "-", "-o", "-",
                           "-q"], input=csv, capture_output=True, text=True, timeout=600)
    assert pred.returncode == 0 and pred.stderr == ""
    assert pred.stdout.splitlines()[0] == "ds,passengers" and len(pred.stdout.splitlines()) == 4
    info = subprocess.run([*tsrnn, "info", str(tmp_path / "m.tsrnn"), "--json"],
                          capture_output=True, text=True, timeout=600)
    meta = json.loads(info.stdout)
    assert meta["horizon"] == 3 and meta["targets"] == ["passengers"]
    assert meta["epochs"] == 3 and meta["input"] == "pandas"


def test_precompile_fills_the_cache_a_fresh_process_then_uses(tmp_path):
    """After ``tsrnn precompile`` into a cache folder, a fresh process fits and
    forecasts without compiling a kernel (every dispatcher loads from the cache)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "tsrnn", "precompile", "--cells", "gru"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "compiled the kernels of gru" in r.stderr, r.stderr
    code = """
import warnings; warnings.simplefilter("ignore")
import numba, numpy as np
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers
TSRNNRegressor(cell="gru", max_epochs=2, lookback=12, horizon=3).fit(
    load_air_passengers()).predict(level=[80])
from numba.core.registry import CPUDispatcher
import gc
misses = [d.py_func.__qualname__ for d in gc.get_objects()
          if isinstance(d, CPUDispatcher) and d.py_func.__module__.startswith("tsrnn")
          and sum(d.stats.cache_misses.values())]
print(misses)
"""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
