"""The one-shot GPU check (benchmarks/gpu_check.sh, benchmarks/bench_gpu.py) works
before a GPU is lent: a GPU run is rare and short, and must not fail on the script."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], check=True)


def test_gpu_benchmark_smoke_run_writes_its_table(tmp_path):
    """bench_gpu.py --smoke runs the whole script on tiny shapes (on the CUDA
    simulator here) and writes gpu.md, marked SMOKE, with the kernel row and the
    many-series line; with a time budget already spent, it lists what it left out."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", TSRNN_CUDA_THREADS="256",
               TSRNN_COMMIT="abc1234")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke",
           "--cells", "lstm", "--hidden", "4", "--batch", "8", "--repeat", "1", "--cpu",
           "--out", str(tmp_path)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True,
                   timeout=600)
    table = (tmp_path / "gpu.md").read_text()
    assert "**SMOKE**" in table
    assert "| lstm | 4 | 8 |" in table
    assert "Many series:" in table and "windows/s" in table
    cmd[cmd.index("--cells") + 1] = "rnn,gru"
    subprocess.run(cmd + ["--budget-s", "0", "--series", "0"], env=env, check=True,
                   capture_output=True, text=True, timeout=600)
    table = (tmp_path / "gpu.md").read_text()
    assert "Left out (time budget): rnn 4 8, gru 4 8." in table
    assert "| rnn |" not in table
