"""The ``.tsrnn`` model file: a zip of JSON metadata and ``.npy`` arrays.

Layout (format version 1)::

    model.tsrnn (zip, entries stored uncompressed)
    |- meta.json      {"format": "tsrnn-model", "format_version": 1,
    |                  "tsrnn_version": "...", "estimator": "TSRNNRegressor",
    |                  "params": {...get_params()...}, "state": {...fitted state...},
    |                  "arrays": {name: {"sha256", "shape", "dtype"}}}
    |- arrays/<name>.npy  one per array (weights "net/weight_ih_l0", scaler state,
                          the history tails predict() starts from, optimizer slots)

A model file is untrusted input. Loading never unpickles (JSON, and ``np.load(...,
allow_pickle=False)``), and this module refuses, with :class:`ModelFileError`, any
file that is not what :func:`write_model_file` writes: compressed or encrypted
entries, entries larger than the file, metadata over :data:`MAX_META_BYTES` or
nested deeper than :data:`MAX_JSON_DEPTH`, arrays whose ``.npy`` header declares
more data than the entry holds or a dtype that is not a plain number, so a small
file cannot make ``load`` allocate gigabytes. :mod:`tsrnn.state` then checks every
shape, index and size against the declared configuration before anything reaches
compiled code.

The SHA-256 of every array is recorded in ``meta.json``, and that of ``meta.json`` in
the zip comment: they detect a truncated or corrupted file. They are not a
signature (anyone can recompute them); safety against crafted files comes from the
validation above, not from the checksums.

Writes go to a temporary file in the target folder that is renamed over the target
only once complete (``os.replace`` is atomic), so a crash never leaves a
half-written model. An existing file keeps its permissions; a new one gets the
process's default (``0o666`` less the umask). Temporary files left by a writer that
was killed are removed by the next write to the same folder.

Files of an older format version load in newer tsrnn versions (the test suite keeps
fixtures); a file of a newer format version is refused with a message saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import socket
import zipfile
from pathlib import Path

import numpy as np

from tsrnn._config import MAX_ARRAY_BYTES, MAX_JSON_DEPTH, MAX_META_BYTES

FORMAT_NAME = "tsrnn-model"
FORMAT_VERSION = 1
META_NAME = "meta.json"
COMMENT_PREFIX = b"tsrnn-meta-sha256:"
#: numpy dtype kinds an array in a model file may have (no object arrays, ever).
ALLOWED_KINDS = frozenset("biuf")
_TMP_SUFFIX = ".tsrnn-tmp"


class ModelFileError(ValueError):
    """The file is not a tsrnn model this version can load (truncated, tampered
    with, not a model file at all, or written by a newer format version)."""


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


# ------------------------------------------------------------------------- write
def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of writes to ``path`` whose writer (a process of
    this host, named in the file name) is no longer running."""
    host = socket.gethostname()
    prefix = _tmp_prefix(path)
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        owner = name[len(prefix) : -len(_TMP_SUFFIX)].rsplit(".", 1)[0]
        h, _, pid = owner.rpartition("-")
        if h != host or not pid.isdigit() or _running(int(pid)):
            continue
        try:
            os.unlink(path.parent / name)
        except OSError:
            pass


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def write_model_file(path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (JSON-able) and ``arrays`` to ``path`` atomically."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save the model to {path}: it is a folder. Give "
                                f"a file name, such as {path / 'model.tsrnn'}.")
    entries = {}
    blobs = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"array {name!r} has dtype {a.dtype}; only numbers can be saved.")
        b = _npy_bytes(a)
        blobs[name] = b
        entries[name] = {"sha256": sha256(b), "shape": list(a.shape), "dtype": a.dtype.str}
    full = dict(meta, format=FORMAT_NAME, format_version=FORMAT_VERSION, arrays=entries)
    try:
        meta_bytes = json.dumps(full, indent=1, sort_keys=True, allow_nan=True).encode()
    except TypeError as e:
        raise TypeError(f"Cannot save this model: {e} (column names and series ids "
                        "must be str, int, float, bool or tuples of them).") from None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {folder} does not exist.")
    _remove_stale_temporaries(path)
    owner = f"{socket.gethostname()}-{os.getpid()}"
    tmp = folder / f"{_tmp_prefix(path)}{owner}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    # 0o666 less the umask, as any new file; the umask is never read or changed.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.chmod(tmp, mode)
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(META_NAME, meta_bytes)
                for name, b in blobs.items():
                    zf.writestr(f"arrays/{name}.npy", b)
                zf.comment = COMMENT_PREFIX + sha256(meta_bytes).encode()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# -------------------------------------------------------------------------- read
def _json_depth(obj) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            depth = max(depth, d)
            if d > MAX_JSON_DEPTH:
                return d
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return depth


def _entry(zf: zipfile.ZipFile, name: str, where: str, file_size: int) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(f"{where}: it has no entry {name!r}.") from None
    if info.flag_bits & 0x1:
        raise ModelFileError(f"{where}: entry {name!r} is encrypted.")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(f"{where}: entry {name!r} is compressed (method "
                             f"{info.compress_type}); tsrnn stores entries uncompressed.")
    if info.file_size != info.compress_size or info.file_size > file_size:
        raise ModelFileError(f"{where}: entry {name!r} declares {info.file_size} bytes, "
                             f"more than the file holds.")
    return info


def _load_npy(b: bytes, name: str, entry: dict, where: str) -> np.ndarray:
    """An array from ``.npy`` bytes, after checking that its header declares the
    table's shape and dtype and exactly the data that follows it."""
    buf = io.BytesIO(b)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"npy version {version}")
    except ValueError as e:
        raise ModelFileError(f"{where}: array {name!r} has an invalid header ({e}).") \
            from None
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None:
        raise ModelFileError(f"{where}: array {name!r} has dtype {dtype}. Object arrays "
                             "cannot be loaded: model files hold plain numbers only.")
    if list(shape) != list(entry.get("shape", [])) or dtype.str != entry.get("dtype"):
        raise ModelFileError(f"{where}: array {name!r} has shape {shape} and dtype "
                             f"{dtype}; the table says {entry.get('shape')} and "
                             f"{entry.get('dtype')}.")
    n_bytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if n_bytes != len(b) - buf.tell():
        raise ModelFileError(f"{where}: array {name!r} declares {n_bytes} bytes of data; "
                             f"the entry holds {len(b) - buf.tell()}.")
    a = np.frombuffer(b, dtype=dtype, offset=buf.tell())
    return a.reshape(shape, order="F" if fortran else "C").copy(order="C")


def read_model_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file; returns (meta, arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    where = f"{path} is not a valid tsrnn model file"
    file_size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            comment = zf.comment
            info = _entry(zf, META_NAME, where, min(file_size, MAX_META_BYTES))
            meta_bytes = zf.read(info)
            if not comment.startswith(COMMENT_PREFIX) or \
                    comment[len(COMMENT_PREFIX):].decode() != sha256(meta_bytes):
                raise ModelFileError(f"{where}: its metadata does not match its checksum "
                                     "(edited or corrupted).")
            try:
                meta = json.loads(meta_bytes)
            except RecursionError:
                raise ModelFileError(f"{where}: its metadata is nested too deeply.") \
                    from None
            if _json_depth(meta) > MAX_JSON_DEPTH:
                raise ModelFileError(f"{where}: its metadata is nested deeper than "
                                     f"{MAX_JSON_DEPTH} levels.")
            _check_header(meta, path)
            arrays, total = {}, 0
            for name, entry in meta["arrays"].items():
                if not isinstance(entry, dict):
                    raise ModelFileError(f"{where}: array table entry {name!r} is not "
                                         "an object.")
                info = _entry(zf, f"arrays/{name}.npy", where, file_size)
                total += info.file_size
                if total > MAX_ARRAY_BYTES:
                    raise ModelFileError(f"{where}: its arrays exceed "
                                         f"{MAX_ARRAY_BYTES} bytes.")
                b = zf.read(info)
                if sha256(b) != entry.get("sha256"):
                    raise ModelFileError(f"{where}: array {name!r} does not match its "
                                         "checksum (edited or corrupted).")
                arrays[name] = _load_npy(b, name, entry, where)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError, ValueError,
            UnicodeDecodeError, TypeError, AttributeError, OverflowError,
            NotImplementedError, RuntimeError) as e:
        raise ModelFileError(f"{where} (truncated or corrupted?): {e!r}") from None
    return meta, arrays


def _check_header(meta, path):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a tsrnn model file.")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path} has an invalid format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in model format {version} (tsrnn "
            f"{meta.get('tsrnn_version', '?')}); this tsrnn reads formats up to "
            f"{FORMAT_VERSION}. Upgrade tsrnn to load it."
        )
    if not isinstance(meta.get("arrays"), dict):
        raise ModelFileError(f"{path} has no array table.")
    for key in ("params", "state"):
        if not isinstance(meta.get(key), dict):
            raise ModelFileError(f"{path} has no {key!r} object.")
