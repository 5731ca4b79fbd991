"""Data handling: pandas in, packed arrays out, windows by index.

- :mod:`tsrnn.data.panel`: validation and packing of Series, wide and long frames
  into one :class:`Panel` (values + ``indptr`` offsets), future timestamps;
- :mod:`tsrnn.data.scaling`: per-series scalers;
- :mod:`tsrnn.data.calendar`: calendar features;
- :mod:`tsrnn.data.seasons`: seasonal periods and the naive baseline's lag;
- :mod:`tsrnn.data.windows`: window starts, batches gathered by index, the naive
  baseline and window scaling the network sees, :func:`make_windows` for arrays;
- :mod:`tsrnn.data.codec`: time indexes and frequencies in the model file.

The kernels never see pandas: a frame is checked and packed once, here.
"""

from tsrnn.data.calendar import (
    CALENDAR_CYCLES,
    MIN_CALENDAR_REPEATS,
    auto_calendar,
    calendar_values,
    choose_calendar,
    stacked_calendar_values,
    step_length,
)
from tsrnn.data.codec import decode_freq, decode_index, encode_freq, encode_index
from tsrnn.data.panel import (
    LONG_COLUMNS,
    MAX_ABS_VALUE,
    Panel,
    StackedIndex,
    as_list,
    check_finite,
    check_future_fits,
    check_min_length,
    check_numeric_columns,
    check_time_index,
    columns_of,
    future_index,
    future_indexes,
    pack,
    pad_front,
    past_index,
)
from tsrnn.data.scaling import fit_scaler, scale_values
from tsrnn.data.seasons import choose_season, naive_scale, season_length_for
from tsrnn.data.windows import (
    ArrayBatches,
    WindowBatches,
    batch_function,
    compiled_training_batch,
    gather_windows,
    held_out_tail,
    make_windows,
    network_windows,
    rows_by_series,
    series_of,
    split_windows,
    spread_sample,
    training_batch,
    window_starts,
    window_stats,
)

__all__ = [
    "ArrayBatches", "WindowBatches", "as_list", "auto_calendar", "batch_function",
    "compiled_training_batch",
    "calendar_values", "check_finite", "check_future_fits",
    "check_min_length", "check_numeric_columns", "check_time_index", "choose_calendar",
    "choose_season", "columns_of", "decode_freq", "decode_index", "encode_freq",
    "encode_index", "fit_scaler", "future_index", "future_indexes", "gather_windows",
    "held_out_tail", "make_windows", "naive_scale", "network_windows", "pack", "pad_front",
    "past_index", "rows_by_series", "scale_values", "season_length_for", "series_of",
    "split_windows", "spread_sample",
    "stacked_calendar_values", "step_length", "training_batch", "window_starts",
    "window_stats", "CALENDAR_CYCLES", "LONG_COLUMNS", "MAX_ABS_VALUE",
    "MIN_CALENDAR_REPEATS", "Panel", "StackedIndex",
]
