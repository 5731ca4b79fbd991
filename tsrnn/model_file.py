"""The ``.tsrnn`` model file: a zip of JSON metadata and ``.npy`` arrays.

Loading never unpickles: the metadata is JSON and the arrays are read with
``np.load(..., allow_pickle=False)``, so a file from an untrusted source cannot run
code. Layout (format version 1)::

    model.tsrnn (zip, stored uncompressed)
    |- meta.json      {"format": "tsrnn-model", "format_version": 1,
    |                  "tsrnn_version": "...", "estimator": "TSRNNRegressor",
    |                  "params": {...get_params()...}, "state": {...fitted state...},
    |                  "arrays": {name: {"sha256", "shape", "dtype"}}}
    |- arrays/<name>.npy  one per array (weights "net/weight_ih_l0", scaler state,
                          the history tails predict() starts from, optimizer slots)

Every array's SHA-256 is recorded in ``meta.json`` and the SHA-256 of ``meta.json``
in the zip comment, so a truncated, edited or swapped file is refused with
:class:`ModelFileError` instead of loading half a model. Writes go to a temporary
file in the target folder that is renamed over the target only once complete
(``os.replace`` is atomic), so a crash never leaves a half-written model.

Files of an older format version load in newer tsrnn versions (the test suite keeps
fixtures); a file of a newer format version is refused with a message saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT_NAME = "tsrnn-model"
FORMAT_VERSION = 1
_META = "meta.json"
_COMMENT_PREFIX = b"tsrnn-meta-sha256:"
# numpy dtypes an array in a model file may have (no object arrays, ever).
_ALLOWED_KINDS = set("biuf")
# mkstemp creates 0600 files; a saved model gets the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ModelFileError(ValueError):
    """The file is not a tsrnn model this version can load (truncated, tampered
    with, not a model file at all, or written by a newer format version)."""


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def write_model_file(path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (JSON-able) and ``arrays`` to ``path`` atomically."""
    path = Path(path)
    entries = {}
    blobs = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"array {name!r} has dtype {a.dtype}; only numbers can be saved.")
        b = _npy_bytes(a)
        blobs[name] = b
        entries[name] = {"sha256": _sha256(b), "shape": list(a.shape), "dtype": a.dtype.str}
    full = dict(meta, format=FORMAT_NAME, format_version=FORMAT_VERSION, arrays=entries)
    try:
        meta_bytes = json.dumps(full, indent=1, sort_keys=True, allow_nan=True).encode()
    except TypeError as e:
        raise TypeError(f"Cannot save this model: {e} (column names and series ids "
                        "must be str, int, float or bool).") from None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(_META, meta_bytes)
                for name, b in blobs.items():
                    zf.writestr(f"arrays/{name}.npy", b)
                zf.comment = _COMMENT_PREFIX + _sha256(meta_bytes).encode()
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_model_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file; returns (meta, arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    where = f"{path} is not a valid tsrnn model file"
    try:
        with zipfile.ZipFile(path) as zf:
            comment = zf.comment
            meta_bytes = zf.read(_META)
            if not comment.startswith(_COMMENT_PREFIX) or \
                    comment[len(_COMMENT_PREFIX):].decode() != _sha256(meta_bytes):
                raise ModelFileError(f"{where}: its metadata does not match its checksum "
                                     "(edited or corrupted).")
            meta = json.loads(meta_bytes)
            _check_header(meta, path)
            arrays = {}
            for name, entry in meta["arrays"].items():
                b = zf.read(f"arrays/{name}.npy")
                if _sha256(b) != entry["sha256"]:
                    raise ModelFileError(f"{where}: array {name!r} does not match its "
                                         "checksum (edited or corrupted).")
                a = np.load(io.BytesIO(b), allow_pickle=False)
                if list(a.shape) != list(entry["shape"]) or a.dtype.kind not in _ALLOWED_KINDS:
                    raise ModelFileError(f"{where}: array {name!r} has the wrong shape or dtype.")
                arrays[name] = a
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, UnicodeDecodeError,
            TypeError, AttributeError) as e:
        raise ModelFileError(f"{where} (truncated or corrupted?): {e}") from None
    return meta, arrays


def _check_header(meta, path):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a tsrnn model file.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path} has an invalid format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in model format {version} (tsrnn "
            f"{meta.get('tsrnn_version', '?')}); this tsrnn reads formats up to "
            f"{FORMAT_VERSION}. Upgrade tsrnn to load it."
        )
    if not isinstance(meta.get("arrays"), dict):
        raise ModelFileError(f"{path} has no array table.")
