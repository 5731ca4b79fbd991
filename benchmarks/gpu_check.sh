#!/usr/bin/env bash
# The GPU check of issue 25 in one device run, at most about 6 minutes: the CUDA tests
# on the real GPU, then the GPU benchmark (benchmarks/bench_gpu.py). Everything goes
# to $OUT (default benchmarks/results/gpu_run): gpu_check.log (versions, nvidia-smi,
# the tests' and the benchmark's output), gpu.md, nvidia-smi.txt.
#
# The device image has python3 with numba, numba-cuda, numpy, pandas, scikit-learn,
# pytest, hypothesis and PyTorch with CUDA; nothing can be downloaded there. Wheels
# of anything else (or other versions) go in wheels/ and are installed first, offline.
# tsrnn runs from this checkout (PYTHONPATH), not installed. From the device tool:
#
#     TSRNN_COMMIT=<commit> bash benchmarks/gpu_check.sh     (timeout_s 420)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/benchmarks/results/gpu_run}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
NUMBA_CACHE_DIR="$(mktemp -d)"
export NUMBA_CACHE_DIR
{
    echo "# benchmarks/gpu_check.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), commit ${TSRNN_COMMIT:-unknown}"
    nvidia-smi || echo "nvidia-smi: not found"
    if compgen -G "wheels/*.whl" > /dev/null; then
        "$PY" -m pip install --no-index --no-deps -q wheels/*.whl
    fi
    "$PY" - <<'PYEOF'
import sys
import numba, numpy, pandas, sklearn
print("python", sys.version.split()[0], "numba", numba.__version__, "numpy",
      numpy.__version__, "pandas", pandas.__version__, "scikit-learn", sklearn.__version__)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except Exception as exc:  # the benchmark then runs without PyTorch
    print("torch:", exc)
from numba import cuda
print("numba sees a GPU:", cuda.is_available())
PYEOF
    echo "## CUDA tests on the device (tests/test_cuda.py)"
    timeout 200 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
    echo "tests exit status: $?"
    echo "## benchmark"
    timeout 150 "$PY" benchmarks/bench_gpu.py --out "$OUT" --budget-s 100 --repeat 2
    echo "benchmark exit status: $?"
} 2>&1 | tee "$OUT/gpu_check.log"
