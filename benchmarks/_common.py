"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def median_time(fn, repeat: int = 3, warmup: int = 1) -> float:
    return interleaved_median_times([fn], repeat, warmup)[0]


def interleaved_median_times(fns, repeat: int = 3, warmup: int = 1) -> list[float]:
    """Median seconds of each of ``fns``, timed in turns (a, b, a, b, ...) so that
    a slow patch of this shared machine falls on every contender alike, rather than
    on one contender's whole block of repeats."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [float(np.median(ts)) for ts in times]


def machine_line() -> str:
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                      if ln.startswith("Model name")), platform.processor())
    except Exception:
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_table(name: str, title: str, header: list[str], rows: list[list], notes: str):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    lines = [f"# {title}", "", notes.strip(), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    lines.append("")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    print(f"written to {path}", file=sys.stderr)
    return path
