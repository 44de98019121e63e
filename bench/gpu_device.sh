#!/usr/bin/env bash
# The one prepared command of a GPU session (docs/gpu.md#4-benchmarking), run on the GPU machine
# in the repository root: installs the carried wheels, then the `device` rows of bench/gpu.py
# within BUDGET_S seconds. Results (JSON), the log and the GPU's description go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/bench-gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
python3 -c 'import torch, diffusers; print(torch.__version__, diffusers.__version__, torch.cuda.get_device_name())' \
  | tee -a "$OUT/gpu.txt"
# ROWS=smoke runs the tiny CPU row instead (a check of this script without a GPU).
python3 -m bench.gpu --rows "${ROWS:-device}" --budget-s "${BUDGET_S:-480}" \
  --results "$OUT/gpu.json" 2>&1 | tee "$OUT/log.txt"
