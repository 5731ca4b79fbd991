"""Model files are untrusted input: crafted files, re-packed with valid checksums as
an attacker would, are refused with ModelFileError before anything reaches compiled
code, without a crash and without allocating more than a small file justifies.
Also: names and ids round-trip, permissions are kept, the umask is never touched,
stale temporary files are cleaned up."""

import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from tsrnn import TSRNNRegressor
from tsrnn import model_file as MF
from tsrnn.datasets import load_air_passengers


def _fit(X, y=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        params = dict(hidden_size=4, max_epochs=2, random_state=0)
        params.update(kw)
        return TSRNNRegressor(**params).fit(X, y)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    y = load_air_passengers()
    series = _fit(y, lookback=12, horizon=3).save(d / "series.tsrnn")
    linear = _fit(y, lookback=12, horizon=3, head="linear", calendar=None,
                  optimizer="rmsprop").save(d / "linear.tsrnn")
    rng = np.random.default_rng(0)
    arrays = _fit(rng.normal(size=(30, 5, 2)), rng.normal(size=(30, 2))).save(
        d / "arrays.tsrnn")
    return {"series": series, "linear": linear, "arrays": arrays}


def _read(path):
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        blobs = {n: zf.read(f"arrays/{n}.npy") for n in meta["arrays"]}
    return meta, blobs


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _header(b):
    """(shape, dtype) an .npy blob's header declares."""
    buf = io.BytesIO(b)
    np.lib.format.read_magic(buf)
    shape, _, dtype = np.lib.format.read_array_header_1_0(buf)
    return shape, dtype


def _repack(src, dst, edit_meta=None, edit_arrays=None, raw_meta=None,
            compress=zipfile.ZIP_STORED, flag_bits=0):
    """Re-pack a valid file with edits and freshly computed checksums, the array
    table agreeing with each blob's header, as an attacker would write it."""
    meta, blobs = _read(src)
    if edit_arrays:
        edit_arrays(blobs)
    meta["arrays"] = {}
    for n, b in blobs.items():
        shape, dtype = _header(b)
        meta["arrays"][n] = {"sha256": MF.sha256(b), "shape": list(shape),
                             "dtype": dtype.str}
    if edit_meta:
        edit_meta(meta)
    mb = raw_meta if raw_meta is not None else json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        info = zipfile.ZipInfo("meta.json")
        info.compress_type = compress
        zf.writestr(info, mb)
        for n, b in blobs.items():
            zf.writestr(f"arrays/{n}.npy", b)
        zf.comment = MF.COMMENT_PREFIX + MF.sha256(mb).encode()
    if flag_bits:  # set a general-purpose flag of meta.json (local and central)
        data = bytearray(dst.read_bytes())
        i = data.find(b"PK\x03\x04")
        data[i + 6] |= flag_bits
        j = data.find(b"PK\x01\x02")
        data[j + 8] |= flag_bits
        dst.write_bytes(bytes(data))
    return dst


def _set(path, value):
    def edit(meta):
        obj = meta
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return edit


def _replace(name, new):
    def edit(blobs):
        a = np.load(io.BytesIO(blobs[name]))
        blobs[name] = _npy(new(a) if callable(new) else new)
    return edit


def _npy_header_lies(name, shape):
    def edit(blobs):
        a = np.load(io.BytesIO(blobs[name]))
        hdr = {"descr": a.dtype.str, "fortran_order": False, "shape": shape}
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, hdr)
        blobs[name] = buf.getvalue() + a.tobytes()
    return edit


def _deep_json(depth):
    return ("[" * depth + "]" * depth).encode()


CASES = {
    # the outside review's reproducers
    "fut_cols out of range": ("series", dict(edit_arrays=_replace(
        "fut_cols", np.array([10**7], np.int64)),
        edit_meta=_set(["state", "future_exog"], ["y"]))),
    "n_targets 50 on one channel": ("series", dict(edit_meta=_set(
        ["state", "n_targets"], 50))),
    "weight_ih_l0 cut to (1, 1)": ("series", dict(edit_arrays=_replace(
        "net/weight_ih_l0", lambda a: a[:1, :1].copy()))),
    "season 10**7": ("series", dict(edit_meta=_set(["state", "season"], 10**7))),
    "num_layers 10**9": ("series", dict(edit_meta=_set(["state", "net", "num_layers"],
                                                       10**9))),
    "100,000-deep JSON": ("series", dict(raw_meta=_deep_json(100_000))),
    "npy header of 10**12 elements": ("series", dict(edit_arrays=_npy_header_lies(
        "tail_values", (10**6, 10**6)))),
    "deflate-compressed meta.json": ("series", dict(compress=zipfile.ZIP_DEFLATED)),
    "encrypted entry": ("series", dict(flag_bits=0x1)),
    # more of our own
    "deep JSON inside the state": ("series", dict(edit_meta=_set(
        ["state", "calendar"], json.loads(_deep_json(500))))),
    "tail_values of another lookback": ("series", dict(edit_arrays=_replace(
        "tail_values", lambda a: np.repeat(a, 2, axis=1)))),
    "lookback param 10**6": ("series", dict(edit_meta=_set(["params", "lookback"],
                                                           10**6))),
    "horizon param changed": ("series", dict(edit_meta=_set(["params", "horizon"], 7))),
    "scaler_scale zero": ("series", dict(edit_arrays=_replace(
        "scaler_scale", lambda a: a * 0))),
    "scaler_loc NaN": ("series", dict(edit_arrays=_replace(
        "scaler_loc", lambda a: a * np.nan))),
    "conformal scores of another horizon": ("series", dict(edit_arrays=_replace(
        "conformal_scores", lambda a: a[:, :1].copy()))),
    "decoder hidden weight reshaped": ("series", dict(edit_arrays=_replace(
        "net/decoder.hidden.weight", lambda a: np.ascontiguousarray(a[:, :-1])))),
    "optimizer slot of another shape": ("series", dict(edit_arrays=_replace(
        "opt/m/weight_hh_l0", lambda a: a[:1].copy()))),
    "cell says gru, weights are lstm": ("series", dict(edit_meta=_set(
        ["state", "net", "cell"], "gru"))),
    "duplicated series ids": ("series", dict(edit_meta=_set(["state", "ids"],
                                                            [None, None]))),
    "unknown calendar cycle": ("series", dict(edit_meta=_set(["state", "calendar"],
                                                             ["fortnight"]))),
    "rng of an unknown generator": ("series", dict(edit_meta=_set(
        ["state", "rng", "bit_generator"], "RandomState"))),
    "float tail index": ("series", dict(edit_arrays=_replace(
        "tail_index", lambda a: a.astype(np.float64)))),
    "list as a series id": ("series", dict(edit_meta=_set(["state", "ids"], [[1, 2]]))),
    "head weight of another width": ("linear", dict(edit_arrays=_replace(
        "net/head.weight", lambda a: np.ascontiguousarray(a[:, :-1])))),
    "rmsprop slot of another shape": ("linear", dict(edit_arrays=_replace(
        "opt/sq/weight_ih_l0", lambda a: a[:1].copy()))),
    "x_loc of another size": ("arrays", dict(edit_arrays=_replace(
        "x_loc", lambda a: np.concatenate([a, a])))),
    "y_scale of another size": ("arrays", dict(edit_arrays=_replace(
        "y_scale", lambda a: a[:1].copy()))),
    "arrays mode with a pandas head": ("arrays", dict(edit_meta=_set(
        ["state", "mode"], "pandas"))),
    "smoothing damping above 1": ("series", dict(edit_arrays=_replace(
        "smooth/params", lambda a: a + [0, 0, 5, 0, 0]))),
    "smoothing factor zero where it divides": ("series", dict(edit_arrays=_replace(
        "smooth/factors", lambda a: a * 0))),
    "smoothing season 10**9": ("series", dict(edit_meta=_set(
        ["state", "smoothing_season"], 10**9))),
    "smoothing state of another series count": ("series", dict(edit_arrays=_replace(
        "smooth/state", lambda a: np.concatenate([a, a])))),
    "smoothing weight 7": ("series", dict(edit_meta=_set(
        ["state", "combine_weight"], 7))),
}

LOADER = """
import resource, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
from tsrnn import TSRNNRegressor
from tsrnn.datasets import load_air_passengers
from tsrnn.model_file import ModelFileError
y = load_air_passengers()
for path in sys.argv[1:]:
    try:
        m = TSRNNRegressor.load(path)
        out = (m.predict(np.zeros((2, 5, 2))) if "arrays" in path
               else m.calibrate(y).predict(level=[80]))
        print(path, "LOADED", np.asarray(out)[:1])
    except ModelFileError as e:
        print(path, "REFUSED", str(e).replace(chr(10), " ")[:300])
    except Exception as e:
        print(path, "OTHER", type(e).__name__, str(e)[:300])
    sys.stdout.flush()
print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_every_crafted_file_is_refused_without_crash_or_large_allocation(valid_files,
                                                                         tmp_path):
    paths = {}
    for k, (name, (base, kw)) in enumerate(CASES.items()):
        paths[name] = _repack(valid_files[base], tmp_path / f"{base}_case{k}.tsrnn", **kw)
    assert all(p.stat().st_size < 1 << 20 for p in paths.values())  # small files
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(LOADER))
    r = subprocess.run([sys.executable, str(script), *map(str, paths.values())],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]  # no segfault, no abort
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    for name, p in paths.items():
        assert lines[str(p)].startswith("REFUSED"), (name, lines[str(p)])
    assert int(lines["PEAK_MB"]) < 1024, lines["PEAK_MB"]


def test_the_valid_originals_load_in_the_same_loader(valid_files, tmp_path):
    """The loader of the test above does load untampered files (so REFUSED there is
    about the tampering, not the loader)."""
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(LOADER))
    r = subprocess.run([sys.executable, str(script), *map(str, valid_files.values())],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = [line for line in r.stdout.splitlines() if " LOADED " in line]
    assert len(loaded) == 3, r.stdout


def test_tuple_and_integer_ids_and_names_round_trip(tmp_path):
    y = load_air_passengers().to_numpy()
    idx = pd.date_range("2000-01", periods=len(y), freq="MS")
    long = pd.concat([pd.DataFrame({"unique_id": [uid] * len(y), "ds": idx, "y": y * k})
                      for k, uid in enumerate([("a", 1), ("b", 2)], start=1)])
    m = _fit(long, lookback=12, horizon=3)
    m2 = TSRNNRegressor.load(m.save(tmp_path / "tuple_ids.tsrnn"))
    assert m2.series_ids_ == [("a", 1), ("b", 2)]
    pd.testing.assert_frame_equal(m.predict(), m2.predict())
    # a checkpoint of tuple ids resumes
    ck = tmp_path / "ck.tsrnn"
    _fit(long, lookback=12, horizon=3, checkpoint_path=ck)
    _fit(long, lookback=12, horizon=3, checkpoint_path=ck, max_epochs=3)

    wide = pd.DataFrame({7: y, ("x", 2): np.log(y)}, index=idx)
    w = _fit(wide, lookback=12, horizon=3)
    w2 = TSRNNRegressor.load(w.save(tmp_path / "names.tsrnn"))
    assert w2.target_names_ == [7, ("x", 2)]
    assert list(w2.feature_names_in_) == [7, ("x", 2)]
    pd.testing.assert_frame_equal(w.predict(), w2.predict())


def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    m = _fit(load_air_passengers(), lookback=12, horizon=3)
    path = m.save(tmp_path / "m.tsrnn")
    os.chmod(path, 0o600)
    m.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_import_and_save_never_touch_the_umask(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys
        calls = []
        real = os.umask
        os.umask = lambda m: calls.append(m) or real(m)
        import warnings; warnings.simplefilter("ignore")
        from tsrnn import TSRNNRegressor, model_file
        from tsrnn.datasets import load_air_passengers
        m = TSRNNRegressor(hidden_size=4, max_epochs=1, lookback=12).fit(
            load_air_passengers())
        p = m.save({str(tmp_path / 'u.tsrnn')!r})
        print(calls, oct(os.stat(p).st_mode & 0o777), oct(real(0o022)))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    calls, mode, umask = r.stdout.split()
    assert calls == "[]"
    assert int(mode, 8) == 0o666 & ~int(umask, 8)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import socket

    m = _fit(load_air_passengers(), lookback=12, horizon=3)
    path = tmp_path / "m.tsrnn"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = socket.gethostname()
    stale = tmp_path / f".m.tsrnn.{host}-{dead}.abcd1234.tsrnn-tmp"
    live = tmp_path / f".m.tsrnn.{host}-{os.getpid()}.abcd1234.tsrnn-tmp"
    other = tmp_path / f".other.tsrnn.{host}-{dead}.abcd1234.tsrnn-tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    m.save(path)
    assert not stale.exists()  # its writer is gone
    assert live.exists() and other.exists()  # a running writer's; another file's
    assert TSRNNRegressor.load(path).n_iter_ == m.n_iter_


def test_saving_to_a_folder_names_the_problem(tmp_path):
    m = _fit(load_air_passengers(), lookback=12, horizon=3)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        m.save(tmp_path)
    assert os.listdir(tmp_path) == []
