"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(__file__), "results")
# Load average when the benchmark started (this module is imported first thing).
_LOAD_AT_START = os.getloadavg() if hasattr(os, "getloadavg") else None


def _git_commit() -> str:
    """The checkout's commit; where there is no git history (a copy of the working
    tree, as on a lent GPU machine), ``TSRNN_COMMIT`` from the environment."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("TSRNN_COMMIT", "unknown") + " (from TSRNN_COMMIT)"


# The commit of the code the benchmark imported (files edited while it runs do not
# change what it measures).
_COMMIT_AT_START = _git_commit()


def busy_processes(seconds: float = 1.0, threshold: float = 0.2) -> list[str]:
    """Other processes that used more than ``threshold`` of a core over the last
    ``seconds`` (Linux /proc; [] elsewhere): a table taken beside them is not
    trustworthy."""
    def cpu_times():
        out = {}
        for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/comm") as fh:
                    name = fh.read().strip()
                out[int(pid)] = (int(fields[11]) + int(fields[12]), name)
            except (OSError, IndexError, ValueError):
                continue
        return out

    before = cpu_times()
    time.sleep(seconds)
    after = cpu_times()
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    mine = {os.getpid(), os.getppid()}
    return [f"{name} (pid {pid}, {(t - before[pid][0]) / ticks / seconds:.0%} of a core)"
            for pid, (t, name) in after.items()
            if pid in before and pid not in mine
            and (t - before[pid][0]) / ticks / seconds > threshold]


def check_quiet(max_load: float = 0.5, allow_noisy: bool = False,
                after: bool = False) -> str:
    """Refuse (SystemExit) a benchmark on a busy machine, unless ``allow_noisy``:
    then the returned warning goes into the table. Busy: a 1-minute load average
    above ``max_load`` (before the run; after it, the average holds the run's own
    work), or another process using a core."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    busy = busy_processes()
    if (after or load <= max_load) and not busy:
        return ""
    why = f"load average {load:.2f}" + (f"; busy: {', '.join(busy[:5])}" if busy else "")
    if not allow_noisy:
        raise SystemExit(f"The machine is not quiet ({why}): a table taken now would "
                         "flatter tsrnn against multi-threaded contenders. Wait, or pass "
                         "--allow-noisy to write a table marked NOISY.")
    return f"**NOISY**: taken on a busy machine ({why}); do not quote it."


def provenance() -> str:
    """Date, commit, command and load averages (1, 5, 15 min) before and after: the
    header of every results file."""
    def load(v):
        return "n/a" if v is None else " / ".join(f"{x:.2f}" for x in v)

    after = os.getloadavg() if hasattr(os, "getloadavg") else None
    cmd = " ".join(["python", *sys.argv])
    return (f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  \n"
            f"Commit: {_COMMIT_AT_START}  \n"
            f"Command: `{cmd}`  \n"
            f"Load average before / after: {load(_LOAD_AT_START)} ; {load(after)}  \n"
            f"Machine: {machine_line()}")


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
    lines = [f"# {title}", "", provenance(), "", notes.strip(), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    lines.append("")
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    print(f"written to {path}", file=sys.stderr)
    return path
