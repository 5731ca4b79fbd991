"""Five real series shipped with the package (no download), as pandas objects.

================================  =======  ==========================================
loader                            freq     content
================================  =======  ==========================================
:func:`load_air_passengers`       MS       Box & Jenkins airline passengers, 1949-1960
:func:`load_sunspots`             YS       yearly sunspot numbers, 1700-2008
:func:`load_uschange`             QS       US consumption, income, production, savings,
                                           unemployment (% changes), 1970-2016
:func:`load_elecdemand`           h        Victoria (AU) electricity demand (GW) with
                                           temperature and a workday flag, 2014
:func:`load_melbourne_temp`       D        Melbourne daily maximum temperature,
                                           1981-1990 (Feb 29 absent: not regular)
================================  =======  ==========================================
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "load_air_passengers",
    "load_elecdemand",
    "load_melbourne_temp",
    "load_sunspots",
    "load_uschange",
    "DATASETS",
]


def _read(filename: str, freq: str | None):
    import pandas as pd

    with resources.files(__name__).joinpath(filename).open("r") as fh:
        df = pd.read_csv(fh, parse_dates=["date"], index_col="date")
    df.index.name = "date"
    if freq is not None:
        df = df.asfreq(freq)
    return df.astype("float64")


def load_air_passengers() -> pd.Series:
    """Monthly airline passengers (thousands), 1949-01 .. 1960-12, as a Series."""
    return _read("air_passengers.csv", "MS")["passengers"]


def load_sunspots() -> pd.Series:
    """Yearly sunspot numbers, 1700 .. 2008, as a Series."""
    return _read("sunspots_yearly.csv", "YS")["sunactivity"]


def load_uschange() -> pd.DataFrame:
    """Quarterly % changes of five US series, 1970Q1 .. 2016Q3, as a DataFrame."""
    return _read("uschange.csv", "QS")


def load_elecdemand() -> pd.DataFrame:
    """Hourly demand_gw, temperature_c and workday for Victoria, 2014 (8760 rows)."""
    return _read("elecdemand_hourly.csv", "h")


def load_melbourne_temp() -> pd.Series:
    """Daily max temperature in Melbourne, 1981-1990, as a Series.

    The index skips Feb 29 of 1984 and 1988, so it is *not* regular: pass
    ``freq="D"`` to fit (gaps are then reported) or reindex it yourself.
    """
    return _read("melbourne_temp_daily.csv", None)["max_temp_c"]


#: name -> loader
DATASETS = {
    "air_passengers": load_air_passengers,
    "sunspots": load_sunspots,
    "uschange": load_uschange,
    "elecdemand": load_elecdemand,
    "melbourne_temp": load_melbourne_temp,
}
