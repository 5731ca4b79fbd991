"""Time indexes, frequencies, column names and series ids as JSON and int64
arrays, for the model file."""

from __future__ import annotations

import numpy as np
import pandas as pd


def encode_index(index: pd.Index) -> tuple[dict, np.ndarray]:
    """A time index as (JSON-able description, int64 array), for the model file."""
    if isinstance(index, pd.DatetimeIndex):
        tz = None if index.tz is None else str(index.tz)
        return {"kind": "datetime", "unit": index.unit, "tz": tz}, index.asi8.copy()
    if isinstance(index, pd.PeriodIndex):
        return {"kind": "period", "freq": index.freqstr}, index.asi8.copy()
    return {"kind": "int"}, np.asarray(index, dtype=np.int64)


def decode_index(info: dict, values: np.ndarray) -> pd.Index:
    kind = info["kind"]
    if kind == "datetime":
        idx = pd.DatetimeIndex(values.astype(np.int64).view(f"M8[{info['unit']}]"))
        return idx if info["tz"] is None else idx.tz_localize("UTC").tz_convert(info["tz"])
    if kind == "period":
        return pd.PeriodIndex.from_ordinals(values.astype(np.int64), freq=info["freq"])
    if kind == "int":
        return pd.Index(values.astype(np.int64))
    raise ValueError(f"unknown index kind {kind!r}")


def encode_freq(freq):
    if freq is None:
        return None
    if isinstance(freq, (int, np.integer)):
        return {"type": "int", "value": int(freq)}
    return {"type": "offset", "value": freq.freqstr}


def decode_freq(info):
    if info is None:
        return None
    if info["type"] == "int":
        return int(info["value"])
    return pd.tseries.frequencies.to_offset(info["value"])


def plain(v):
    """A column name or series id as JSON: numpy scalars as Python ones, tuples as
    ``{"tuple": [...]}`` (JSON has no tuples, and a list is not hashable)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return {"tuple": [plain(x) for x in v]}
    return v


def unplain(v):
    """The inverse of :func:`plain`: a name or id from the model file."""
    if isinstance(v, dict) and set(v) == {"tuple"} and isinstance(v["tuple"], list):
        return tuple(unplain(x) for x in v["tuple"])
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    raise ValueError(f"{v!r} is not a valid column name or series id")


def object_array(values) -> np.ndarray:
    """A 1-D object array of names (tuples stay elements, not rows)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out
