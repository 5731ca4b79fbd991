"""The .tsrnn model file: round trips, old files still load, bad files are refused,
writes are atomic, nothing is unpickled."""

import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn import model_file as MF
from tsrnn.datasets import load_air_passengers, load_elecdemand
from tsrnn.heads import DECODER_KEYS

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def fitted_series():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TSRNNRegressor(lookback=12, horizon=6, hidden_size=8, max_epochs=3,
                              random_state=0).fit(load_air_passengers())


def test_round_trip_series_gives_identical_forecast_and_fitted_attributes(fitted_series, tmp_path):
    m = fitted_series
    path = m.save(tmp_path / "air.tsrnn")
    m2 = TSRNNRegressor.load(path)
    pd.testing.assert_frame_equal(m.predict(level=[80]), m2.predict(level=[80]))
    assert m2.get_params() == m.get_params()
    assert m2.loss_curve_ == m.loss_curve_ and m2.best_epoch_ == m.best_epoch_
    assert list(m2.feature_names_in_) == list(m.feature_names_in_)
    for k, v in m.net_.params.items():
        np.testing.assert_array_equal(m2.net_.params[k], v)


def test_round_trip_wide_with_future_exog_and_quantiles(tmp_path):
    df = load_elecdemand().iloc[-400:]
    m = TSRNNRegressor(cell="gru", lookback=24, horizon=4, hidden_size=8, max_epochs=2,
                       quantiles=[0.1, 0.5, 0.9], random_state=0)
    m.fit(df.iloc[:-4], target="demand_gw", future_exog=["workday"])
    m2 = TSRNNRegressor.load(m.save(tmp_path / "m.tsrnn"))
    fut = df.iloc[-4:][["workday"]]
    pd.testing.assert_frame_equal(m.predict(future=fut), m2.predict(future=fut))
    # new history with the same columns works on the loaded model too
    pd.testing.assert_frame_equal(m.predict(df.iloc[:-4], future=fut),
                                  m2.predict(df.iloc[:-4], future=fut))


def test_round_trip_long_period_index_and_integer_ids(tmp_path):
    y = load_air_passengers()
    idx = y.index.to_period("M")
    long = pd.concat([pd.DataFrame({"unique_id": k, "ds": idx.to_timestamp(),
                                    "y": y.to_numpy() + 10 * k}) for k in range(2)])
    m = TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=2,
                       random_state=0).fit(long)
    m2 = TSRNNRegressor.load(m.save(tmp_path / "m.tsrnn"))
    pd.testing.assert_frame_equal(m.predict(), m2.predict())
    s = pd.Series(y.to_numpy(), index=idx, name="p")
    m = TSRNNRegressor(lookback=12, horizon=3, hidden_size=8, max_epochs=2,
                       random_state=0).fit(s)
    m2 = TSRNNRegressor.load(m.save(tmp_path / "p.tsrnn"))
    pd.testing.assert_frame_equal(m.predict(), m2.predict())
    assert isinstance(m2.predict().index, pd.PeriodIndex)


def test_loaded_model_continues_training_exactly_like_the_original(fitted_series, tmp_path):
    """Optimizer state and random generator are in the file: one more epoch on the
    loaded model equals one more epoch on the original."""
    import copy

    y = load_air_passengers()
    a = copy.deepcopy(fitted_series)
    b = TSRNNRegressor.load(a.save(tmp_path / "m.tsrnn"))
    a.partial_fit(y)
    b.partial_fit(y)
    for k in a.net_.params:
        np.testing.assert_array_equal(a.net_.params[k], b.net_.params[k])
    assert b.loss_curve_ == a.loss_curve_ and len(b.loss_curve_) == 4


@pytest.mark.parametrize("name", ["series_lstm", "wide_gru_quantiles",
                                  "long_rnn_recursive", "arrays_lstm"])
def test_files_written_by_earlier_versions_still_load_and_forecast_the_same(name):
    path = FIXTURES / f"v1_{name}.tsrnn"
    m = TSRNNRegressor.load(path)
    # parameters the file predates take the values it was fitted with (not today's
    # defaults), so a refit of the loaded model trains the same kind of network
    params = m.get_params()
    assert params["window_scaling"] is False and params["head"] == "linear"
    assert params["calendar"] is None
    if name == "arrays_lstm":
        X = np.load(FIXTURES / "v1_arrays_lstm_X.npy")
        np.testing.assert_allclose(m.predict(X), np.load(FIXTURES / "v1_arrays_lstm_pred.npy"),
                                   rtol=1e-4, atol=1e-4)
        return
    if name == "long_rnn_recursive":
        expected = pd.read_csv(FIXTURES / f"v1_{name}.csv", parse_dates=["ds"])
        got = m.predict()
        np.testing.assert_allclose(got["y_pred"], expected["y_pred"], rtol=1e-4)
        assert list(got["unique_id"]) == list(expected["unique_id"])
        return
    expected = pd.read_csv(FIXTURES / f"v1_{name}.csv", index_col=0, parse_dates=True)
    if name == "wide_gru_quantiles":
        fut = pd.read_csv(FIXTURES / f"v1_{name}_future.csv", index_col=0, parse_dates=True)
        got = m.predict(future=fut)
    else:
        got = m.predict(level=[80])
    assert list(got.columns) == list(expected.columns)
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-4)


def _rewrite(path, out, edit_meta=None, edit_member=None, keep_comment=True):
    """Copy a model file, changing its metadata or one member's bytes."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
        comment = zf.comment
    if edit_meta:
        meta = json.loads(members["meta.json"])
        edit_meta(meta)
        members["meta.json"] = json.dumps(meta).encode()
        if not keep_comment:
            comment = MF.COMMENT_PREFIX + MF.sha256(members["meta.json"]).encode()
    if edit_member:
        edit_member(members)
    with zipfile.ZipFile(out, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
        zf.comment = comment
    return out


def test_truncated_file_is_refused(fitted_series, tmp_path):
    path = fitted_series.save(tmp_path / "m.tsrnn")
    data = path.read_bytes()
    bad = tmp_path / "cut.tsrnn"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MF.ModelFileError, match="truncated or corrupted"):
        TSRNNRegressor.load(bad)


def test_edited_weights_or_metadata_are_refused(fitted_series, tmp_path):
    path = fitted_series.save(tmp_path / "m.tsrnn")

    def flip(members):
        name = "arrays/net/decoder.out.bias.npy"
        b = bytearray(members[name])
        b[-1] ^= 0xFF
        members[name] = bytes(b)

    with pytest.raises(MF.ModelFileError, match="decoder.out.bias.*checksum"):
        TSRNNRegressor.load(_rewrite(path, tmp_path / "a.tsrnn", edit_member=flip))

    def more_epochs(meta):
        meta["params"]["lookback"] = 99

    with pytest.raises(MF.ModelFileError, match="metadata does not match"):
        TSRNNRegressor.load(_rewrite(path, tmp_path / "b.tsrnn", edit_meta=more_epochs))


def test_newer_format_is_refused_with_an_upgrade_hint(fitted_series, tmp_path):
    path = fitted_series.save(tmp_path / "m.tsrnn")

    def newer(meta):
        meta["format_version"] = MF.FORMAT_VERSION + 1

    bad = _rewrite(path, tmp_path / "new.tsrnn", edit_meta=newer, keep_comment=False)
    with pytest.raises(MF.ModelFileError, match=r"format 2 .*Upgrade tsrnn"):
        TSRNNRegressor.load(bad)


def test_not_a_model_file_and_missing_file(tmp_path):
    p = tmp_path / "x.tsrnn"
    p.write_text("unique_id,ds,y\n")
    with pytest.raises(MF.ModelFileError, match="not a valid tsrnn model file"):
        TSRNNRegressor.load(p)
    with pytest.raises(FileNotFoundError, match="No model file"):
        TSRNNRegressor.load(tmp_path / "absent.tsrnn")


def test_loading_never_unpickles(fitted_series, tmp_path):
    """An object array (which np.load could only read by unpickling) with a valid
    checksum is still refused, and the pickled payload never runs."""
    path = fitted_series.save(tmp_path / "m.tsrnn")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    evil = buf.getvalue()

    def add(meta):
        meta["arrays"]["evil"] = {"sha256": MF.sha256(evil), "shape": [1], "dtype": "|O"}

    def member(members):
        members["arrays/evil.npy"] = evil

    bad = _rewrite(path, tmp_path / "evil.tsrnn", edit_meta=add, edit_member=member,
                   keep_comment=False)
    with pytest.raises(MF.ModelFileError, match="Object arrays cannot be loaded"):
        TSRNNRegressor.load(bad)


def test_failed_write_leaves_the_old_file_and_no_temporary(fitted_series, tmp_path, monkeypatch):
    path = fitted_series.save(tmp_path / "m.tsrnn")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(MF.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        fitted_series.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.tsrnn"]


def test_save_before_fit_and_into_missing_folder(tmp_path, fitted_series):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TSRNNRegressor().save(tmp_path / "m.tsrnn")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fitted_series.save(tmp_path / "no" / "m.tsrnn")


def test_the_exported_decoder_is_the_documented_torch_modules(fitted_series):
    """to_torch_state_dict's docstring describes the "mlp" head as nn.Linear layers:
    built that way in torch, they give the estimator's own head outputs."""
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in fitted_series.to_torch_state_dict().items()}
    net = fitted_series.net_
    steps = fitted_series.horizon
    layers = {}
    for name in ("context", "hidden", "out"):
        w = sd[f"decoder.{name}.weight"]
        layers[name] = torch.nn.Linear(w.shape[1], w.shape[0])
        layers[name].load_state_dict({"weight": w, "bias": sd[f"decoder.{name}.bias"]})
    h = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    with torch.no_grad():
        ctx = layers["context"](torch.from_numpy(h)).reshape(4, steps, net.CONTEXT_SIZE)
        out = layers["out"](torch.relu(layers["hidden"](ctx))).reshape(4, -1)
    np.testing.assert_allclose(net.head_forward(h, None)[0], out.numpy(), rtol=1e-5, atol=1e-6)


def test_torch_state_dict_export_and_import(fitted_series):
    torch = pytest.importorskip("torch")
    sd = fitted_series.to_torch_state_dict()
    lstm = torch.nn.LSTM(1, 8, batch_first=True)
    head = {k: v for k, v in sd.items() if k.startswith(("head.", "decoder."))}
    assert sorted(head) == sorted(DECODER_KEYS)  # head="mlp"
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items() if k not in head})
    x = np.random.default_rng(0).normal(size=(3, 12, 1)).astype(np.float32)
    _, (h, _) = lstm(torch.from_numpy(x))
    from tsrnn import functional as F

    _, (h2, _), _ = F.forward("lstm", x, fitted_series.net_.rnn_params())
    np.testing.assert_allclose(h.detach().numpy(), h2, rtol=1e-5, atol=1e-6)
    # and back: a torch-trained state_dict replaces the weights
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(0.5)
    import copy

    est = copy.deepcopy(fitted_series)  # keep the shared fixture untouched
    est.load_torch_state_dict({**lstm.state_dict(), **head})
    np.testing.assert_allclose(est.net_.params["weight_hh_l0"], 0.5 * sd["weight_hh_l0"],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="weight_ih_l0.*shape"):
        est.load_torch_state_dict({**sd, "weight_ih_l0": np.zeros((3, 3))})


def test_a_decoder_of_other_sizes_loads_from_its_file(tmp_path, monkeypatch):
    """The decoder's context size is saved with the network: a file written with
    other sizes than the current defaults still forecasts the same."""
    from tsrnn.network import RecurrentNet

    monkeypatch.setattr(RecurrentNet, "CONTEXT_SIZE", 3)
    monkeypatch.setattr(RecurrentNet, "DECODER_SIZE", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TSRNNRegressor(lookback=12, horizon=4, hidden_size=6, max_epochs=2,
                           random_state=0).fit(load_air_passengers())
    assert m.net_.params["decoder.context.weight"].shape == (4 * 3, 6)
    path = m.save(tmp_path / "m.tsrnn")
    monkeypatch.setattr(RecurrentNet, "CONTEXT_SIZE", 8)
    m2 = TSRNNRegressor.load(path)
    assert m2.net_.context_size == 3
    pd.testing.assert_frame_equal(m2.predict(), m.predict())
