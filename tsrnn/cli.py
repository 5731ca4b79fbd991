"""The ``tsrnn`` command: fit, predict, backtest and inspect models from a shell.

Also ``python -m tsrnn``. Bad arguments and bad files print one line starting with
``tsrnn: error:`` and exit with status 2 (usage) or 1 (data, file or model).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

EPILOG = """\
examples:
  tsrnn fit elec.csv --target demand_gw --exog temperature_c,workday \\
      --future-exog temperature_c,workday --lookback 72 --horizon 24 -o model.tsrnn
  tsrnn predict model.tsrnn elec.csv --future next_day.csv -o forecast.csv
  tsrnn predict model.tsrnn elec.csv --level 80,95          # CSV on stdout
  tsrnn backtest model.tsrnn elec.csv --windows 4 --plot backtest.png
  tsrnn info model.tsrnn

CSV files: a long file has columns unique_id, ds and the values (one global model
over all series); otherwise the first column (or --time-col) is the time index.
Bundled data to try: python -c "from tsrnn.datasets import load_elecdemand as f;
f().to_csv('elec.csv')"
"""


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _split(s):
    return [c.strip() for c in s.split(",") if c.strip()] if s else []


def _calendar(s):
    """"auto", "none" or cycles separated by commas (day, week, year)."""
    if s == "auto":
        return s
    return None if s == "none" else _split(s)


def _floats(s):
    try:
        return [float(v) for v in _split(s)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {s!r}") from None


def read_table(path, time_col=None):
    """A CSV as a long frame (unique_id, ds, ...) or a wide frame indexed by time."""
    import pandas as pd

    try:
        df = pd.read_csv(sys.stdin if path == "-" else path)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise CLIError(f"cannot read {path} as CSV: {e}") from None
    if df.shape[1] == 0 or len(df) == 0:
        raise CLIError(f"{path} has no data rows.")
    if time_col is None and {"unique_id", "ds"} <= set(df.columns):
        df["ds"] = _parse_time(df["ds"], path, "ds")
        return df
    col = time_col or df.columns[0]
    if col not in df.columns:
        raise CLIError(f"{path} has no column {col!r} (columns: {list(df.columns)}).")
    df[col] = _parse_time(df[col], path, col)
    return df.set_index(col)


def _parse_time(s, path, col):
    import pandas as pd

    if pd.api.types.is_integer_dtype(s):
        return s
    if pd.api.types.is_numeric_dtype(s):  # never read numbers as nanoseconds
        raise CLIError(f"column {col!r} of {path} holds numbers that are not integers "
                       f"(first value {s.iloc[0]!r}): the time column must hold "
                       "timestamps or integer steps.")
    try:
        return pd.to_datetime(s)
    except (ValueError, TypeError):
        raise CLIError(f"column {col!r} of {path} does not hold timestamps or integers "
                       f"(first value {s.iloc[0]!r}).") from None


def _select(df, target, exog, long):
    cols = list(dict.fromkeys(target + exog))
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CLIError(f"column(s) {missing} not in the data (columns: {list(df.columns)}).")
    return df[(["unique_id", "ds"] if long else []) + cols]


def _load_model(path):
    from tsrnn.estimator import TSRNNRegressor

    return TSRNNRegressor.load(path)


def _model_and_history(a):
    """The model file and the data CSV, restricted to the model's columns."""
    from tsrnn.routes import PanelRoute

    model = _load_model(a.model)
    if not isinstance(model.route_, PanelRoute):
        raise CLIError(f"{a.model} was fitted on arrays (X, y); the command line "
                       "forecasts models fitted on tables (CSV files, pandas frames). "
                       "Use it from Python: model.predict(X).")
    target, exog = model.target_names_, model.exog_names_
    df = read_table(a.data, a.time_col)
    return model, _select(df, target, exog, "unique_id" in df.columns)


def cmd_fit(a):
    from tsrnn.estimator import TSRNNRegressor

    df = read_table(a.data, a.time_col)
    long = "unique_id" in df.columns
    target = _split(a.target) or (["y"] if long else [])
    if not target:
        raise CLIError("--target is required for a wide CSV (the column to forecast).")
    future_exog = _split(a.future_exog)
    exog = list(dict.fromkeys(_split(a.exog) + future_exog))
    df = _select(df, target, exog, long)
    params = dict(cell=a.cell, hidden_size=a.hidden_size, num_layers=a.num_layers,
                  lookback=a.lookback, horizon=a.horizon, strategy=a.strategy,
                  max_epochs=a.max_epochs, batch_size=a.batch_size,
                  learning_rate=a.learning_rate, loss=a.loss, calendar=a.calendar,
                  head=a.head, window_scaling=not a.no_window_scaling,
                  combine=None if a.combine == "none" else a.combine,
                  random_state=a.random_state, freq=a.freq, verbose=int(a.progress))
    if a.quantiles:
        params["quantiles"] = a.quantiles
    model = TSRNNRegressor(**params)
    t0 = time.perf_counter()
    model.fit(df, target=target, future_exog=future_exog or None)
    secs = time.perf_counter() - t0
    path = _save(model, a.output)
    val = model.validation_loss_curve_
    best = f", best validation loss {min(val):.4g}" if val else ""
    _report(a, f"fitted {a.cell} on {len(model.series_ids_)} series in {secs:.1f} s: "
               f"{model.n_iter_} epochs (best {model.best_epoch_}){best} -> {path}")


def _save(model, output):
    """Save to ``output``, or write the model file's bytes to standard output for
    ``-``."""
    if output != "-":
        return model.save(output)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        data = model.save(Path(d) / "model.tsrnn").read_bytes()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return "standard output"


def _report(a, message):
    """A progress line for people, on standard error (standard output is data)."""
    if not getattr(a, "quiet", False):
        print(message, file=sys.stderr)


def _write_or_print(df, path, a=None, **kw):
    if path and path != "-":
        df.to_csv(path, **kw)
        _report(a, f"wrote {len(df)} rows to {path}")
    else:
        df.to_csv(sys.stdout, **kw)


def cmd_predict(a):
    model, df = _model_and_history(a)
    if model.future_exog_ and not a.future:
        raise CLIError(f"this model needs the known future values of "
                       f"{model.future_exog_}: pass --future FILE.csv with the "
                       f"{model.horizon} forecast timestamps and those columns.")
    future = read_table(a.future, a.time_col) if a.future else None
    fc = model.predict(df, future=future, level=a.level or None)
    _write_or_print(fc, a.output, a, index=model.route_.kind != "long",
                    index_label="ds" if model.route_.kind != "long" else None)


def cmd_backtest(a):
    from tsrnn.backtesting import backtest

    model, df = _model_and_history(a)
    refit = {"always": True, "never": False}.get(a.refit)
    if refit is None:
        try:
            refit = int(a.refit)
        except ValueError:
            raise CLIError(
                f"--refit must be always, never or a number; got {a.refit!r}.") from None
    params = model.get_params()
    params["verbose"] = 0
    est = type(model)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a per-window ConvergenceWarning is noise here
        res = backtest(est, df, n_windows=a.windows, step=a.step, refit=refit,
                       level=a.level or None, target=model.target_names_,
                       future_exog=model.future_exog_ or None)
    if a.output == "-":  # the forecasts are the data; the metrics a report
        res.forecasts.to_csv(sys.stdout, index=False)
        _report(a, res.metrics.to_string(float_format=lambda v: f"{v:.4g}"))
    else:
        print(res.metrics.to_string(float_format=lambda v: f"{v:.4g}"))
    if a.output and a.output != "-":
        res.forecasts.to_csv(a.output, index=False)
        _report(a, f"wrote {len(res.forecasts)} forecast rows to {a.output}")
    if a.plot:
        from tsrnn.plotting import plot_backtest

        fig = plot_backtest(res, history=df).figure
        fig.savefig(a.plot, dpi=120, bbox_inches="tight")
        _report(a, f"wrote {a.plot}")


def cmd_precompile(a):
    from tsrnn.precompile import CELLS, precompile

    cells = _split(a.cells)
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise CLIError(f"unknown cell(s) {unknown}; choose from {list(CELLS)}.")
    secs = precompile(cells, float64=a.float64)
    print(f"compiled the kernels of {', '.join(cells)} in {secs:.1f} s", file=sys.stderr)


def model_info(path) -> dict:
    """What ``tsrnn info`` reports of a model file, validated as ``load`` does."""
    from tsrnn.estimator import TSRNNRegressor
    from tsrnn.model_file import read_model_file
    from tsrnn.routes import PanelRoute

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a checkpoint says so in "checkpoint"
        model = TSRNNRegressor.load(path)
    meta, arrays = read_model_file(path)
    p = model.get_params()
    info = {"file": str(path), "estimator": meta["estimator"],
            "format_version": meta["format_version"],
            "tsrnn_version": meta["tsrnn_version"],
            "checkpoint": any(k.startswith("best/") for k in arrays),
            "cell": p["cell"], "hidden_size": p["hidden_size"],
            "num_layers": p["num_layers"], "head": p["head"],
            "lookback": p["lookback"], "horizon": p["horizon"],
            "strategy": p["strategy"], "quantiles": p["quantiles"],
            "weights": int(sum(v.size for v in model.net_.params.values())),
            "epochs": model.n_iter_, "best_epoch": model.best_epoch_,
            "input": "pandas" if isinstance(model.route_, PanelRoute) else "arrays"}
    if isinstance(model.route_, PanelRoute):
        from tsrnn.data.codec import plain

        r = model.route_
        info.update(targets=[plain(t) for t in r.target_names],
                    exogenous=[plain(c) for c in r.exog_names],
                    future_exog=[plain(c) for c in r.future_exog],
                    series=len(r.ids), frequency=None if r.freq is None else str(
                        getattr(r.freq, "freqstr", r.freq)),
                    calendar=list(r.calendar),
                    intervals=r.conformal_scores is not None)
    return info


def cmd_info(a):
    info = model_info(a.model)
    if a.json:
        import json

        print(json.dumps(info, indent=1, default=str))
        return
    print(f"{info['file']}: {info['estimator']} (format {info['format_version']}, "
          f"written by tsrnn {info['tsrnn_version']})"
          + (", a checkpoint" if info["checkpoint"] else ""))
    print(f"  {info['cell']} hidden {info['hidden_size']} x {info['num_layers']} "
          f"layer(s), lookback {info['lookback']}, horizon {info['horizon']}, "
          f"strategy {info['strategy']}")
    if info["input"] == "pandas":
        print(f"  targets {info['targets']}, exogenous {info['exogenous']}, known "
              f"future {info['future_exog']}")
        print(f"  {info['series']} series, frequency {info['frequency']}")
    print(f"  {info['weights']} weights, {info['epochs']} epochs, best epoch "
          f"{info['best_epoch']}")


def build_parser():
    from tsrnn import __version__

    ap = argparse.ArgumentParser(
        prog="tsrnn", description="Fit and use RNN/LSTM/GRU forecasters on CSV files.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"tsrnn {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--time-col", help="time column of a wide CSV (default: the first)")

    f = sub.add_parser("fit", help="fit a model on a CSV and save it",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("data", help="CSV file (- for standard input)")
    f.add_argument("--target", help="column(s) to forecast, comma separated (long CSV: y)")
    f.add_argument("--exog", help="exogenous input columns, comma separated")
    f.add_argument("--future-exog", help="exogenous columns known in advance "
                   "(their future values are passed to predict with --future)")
    f.add_argument("--lookback", type=int, default=24)
    f.add_argument("--horizon", type=int, default=1)
    f.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    f.add_argument("--hidden-size", type=int, default=32)
    f.add_argument("--num-layers", type=int, default=1)
    f.add_argument("--strategy", choices=["direct", "recursive"], default="direct")
    f.add_argument("--max-epochs", type=int, default=200)
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--learning-rate", type=float, default=3e-3)
    f.add_argument("--loss", choices=["mae", "mse", "huber"], default="mae")
    f.add_argument("--calendar", type=_calendar, default="auto",
                   help="calendar inputs: auto (default), none, or e.g. week,year")
    f.add_argument("--head", choices=["mlp", "linear"], default="mlp",
                   help="forecast head: a small decoder shared by the steps (default) "
                        "or one linear map")
    f.add_argument("--no-window-scaling", action="store_true",
                   help="see each window on the series' scale, not its own (for series "
                        "that revert to a level; see window_scaling)")
    f.add_argument("--combine", choices=["auto", "smoothing", "none"], default="auto",
                   help="average with per-series exponential smoothing: where the "
                        "held-out windows say so (auto, default), always, or never")
    f.add_argument("--quantiles", type=_floats, help="e.g. 0.1,0.5,0.9")
    f.add_argument("--freq", help="frequency when it cannot be inferred (e.g. h, D, MS)")
    f.add_argument("--random-state", type=int, default=0)
    f.add_argument("--progress", action="store_true", help="show a progress bar")
    f.add_argument("-o", "--output", required=True,
                   help="model file to write (- for standard output)")
    common(f)
    f.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="forecast after the end of a CSV")
    p.add_argument("model", help="model file written by tsrnn fit")
    p.add_argument("data", help="CSV with the history (the columns used in fit; - for "
                   "standard input)")
    p.add_argument("--future", help="CSV with the known future values of the "
                   "--future-exog columns, indexed by the forecast timestamps")
    p.add_argument("--level", type=_floats, help="conformal interval levels, e.g. 80,95")
    p.add_argument("-o", "--output", help="CSV to write (default or -: standard output)")
    common(p)
    p.set_defaults(func=cmd_predict)

    b = sub.add_parser("backtest", help="rolling-origin evaluation with the model's "
                       "settings")
    b.add_argument("model", help="model file (its settings are refit per window)")
    b.add_argument("data", help="CSV with the history (- for standard input)")
    b.add_argument("--windows", type=int, default=3, help="forecast origins (default 3)")
    b.add_argument("--step", type=int, help="points between origins (default: horizon)")
    b.add_argument("--refit", default="always", help="always, never, or every N windows")
    b.add_argument("--level", type=_floats, help="conformal interval levels, e.g. 80")
    b.add_argument("--plot", help="PNG to draw the windows into (needs matplotlib)")
    b.add_argument("-o", "--output", help="CSV of all window forecasts (- for standard "
                   "output; the metrics then go to standard error)")
    common(b)
    b.set_defaults(func=cmd_backtest)

    c = sub.add_parser("precompile", help="compile the kernels into numba's disk cache "
                       "(for container images: start warm)")
    c.add_argument("--cells", default="lstm,gru,rnn", help="cells to compile")
    c.add_argument("--float64", action="store_true",
                   help="also the float64 kernels of the functional API")
    c.set_defaults(func=cmd_precompile)

    i = sub.add_parser("info", help="describe a model file")
    i.add_argument("model")
    i.add_argument("--json", action="store_true", help="as one JSON object")
    i.set_defaults(func=cmd_info)
    for parser in (f, p, b):
        parser.add_argument("-q", "--quiet", action="store_true",
                            help="no progress lines or warnings on standard error")
    return ap


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"tsrnn: warning: {message}\n"


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        with warnings.catch_warnings():
            if getattr(args, "quiet", False):
                warnings.simplefilter("ignore")
            args.func(args)
    except (CLIError, ValueError, TypeError, KeyError, OSError, FloatingPointError,
            ImportError, RuntimeError) as e:
        msg = str(e).strip().strip('"') or type(e).__name__
        if isinstance(e, ImportError):
            msg = f"{msg} (plots need: pip install 'tsrnn[plot]')"
        print(f"tsrnn: error: {msg.splitlines()[0]}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `tsrnn predict ... | head`: the reader is gone
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("tsrnn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
