#!/usr/bin/env bash
# The GPU section of benchmarks/results.json (and RESULTS.md) on one CUDA GPU: training overhead of lenet300, lenet5,
# resnet50 and vgg19 (batch 128, bf16, channels_last), end-to-end throughput of the engine on ResNet-50 (dense and
# hyperflux), torch.compile on and off (default and reduce-overhead). Under 6 minutes on one H100.
#
#   bash benchmarks/gpu_check.sh                 # from anywhere; PYTHON=/path/to/python to choose the interpreter
#   bash benchmarks/gpu_check.sh --steps compile # any option of benchmarks/gpu_check.py
#
# Needs torch (CUDA), torchvision, numpy, tqdm and filelock; not fastcore, nbdev or papermill (hyperflux is imported
# from this checkout through PYTHONPATH, not installed). Commit benchmarks/results.json and RESULTS.md afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
"$PY" - <<'PYCHECK'
import importlib.util, sys
missing = [m for m in ("torch", "torchvision", "numpy", "tqdm", "filelock") if importlib.util.find_spec(m) is None]
if missing: sys.exit(f"gpu_check.sh: missing Python packages {missing}: pip install them first")
import torch
if not torch.cuda.is_available(): sys.exit("gpu_check.sh: torch sees no CUDA GPU here")
print(f"gpu_check.sh: torch {torch.__version__} on {torch.cuda.get_device_name(0)}", file=sys.stderr)
PYCHECK
exec "$PY" benchmarks/gpu_check.py --device cuda "$@"
