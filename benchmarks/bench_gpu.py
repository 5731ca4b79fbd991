"""GPU benchmark: one training epoch of the PERF.md workload on the GPU, tsrnn's
numba.cuda kernels side by side with PyTorch on CUDA (cuDNN), same run.

    python benchmarks/bench_gpu.py                      # needs an NVIDIA GPU
    python benchmarks/bench_gpu.py --cells gru --hidden 32 --batch 1024

Workload: the tutorial's synthetic series (N=10000, T=50, input 1, one layer + linear
head, MSE, Adam, float32), batch sizes 32, 256, 1024 and 4096. Times are medians of
``--repeat`` epochs after a warm-up epoch (which includes compilation). Writes
``benchmarks/results/gpu.md``. Without a GPU it says so and writes nothing (the CUDA
simulator is for correctness tests only).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, median_time, write_table  # noqa: E402
from bench_kernels import TorchModel, TsrnnModel, make_data  # noqa: E402


def gpu_name():
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        return None
    return cuda.get_current_device().name.decode() if hasattr(
        cuda.get_current_device().name, "decode") else str(cuda.get_current_device().name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--hidden", default="16,32,64,128")
    ap.add_argument("--batch", default="32,256,1024,4096")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    name = gpu_name()
    if name is None:
        print("No NVIDIA GPU visible to numba (or the CUDA simulator is on): nothing to "
              "measure. Run this on a machine with a GPU and `pip install 'tsrnn[cuda]'`.")
        return 1
    try:
        import torch

        has_torch_cuda = torch.cuda.is_available()
    except ImportError:
        has_torch_cuda = False
    X, Y = make_data()
    rows = []
    for cell in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            for B in map(int, args.batch.split(",")):
                m = TsrnnModel(cell, H)
                m.net.device = "cuda"
                rng = np.random.default_rng(0)
                t_ours = median_time(lambda: m.train_epoch(X, Y, B, rng), args.repeat)
                t_torch = np.nan
                if has_torch_cuda:
                    tm = TorchModel(cell, H, device="cuda")
                    t_torch = median_time(lambda: tm.train_epoch(X, Y, B, rng), args.repeat)
                rows.append([cell, H, B, f"{t_ours:.3f}", f"{t_torch:.3f}",
                             f"{t_torch / t_ours:.2f}x" if has_torch_cuda else "n/a"])
                print(rows[-1], flush=True)
    write_table("gpu.md", "GPU training epoch, tsrnn (numba.cuda) vs PyTorch (cuDNN)",
                ["cell", "hidden", "batch", "tsrnn s/epoch", "PyTorch s/epoch",
                 "PyTorch/tsrnn"], rows,
                f"Command: `python benchmarks/bench_gpu.py` on {name} ({machine_line()}). "
                f"Medians of {args.repeat} epochs after a warm-up epoch.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
