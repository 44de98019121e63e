#!/usr/bin/env bash
# Downloads into .whl/ the wheels bench/gpu.py needs on a GPU machine that has PyTorch,
# transformers, accelerate, peft, safetensors, tokenizers and numpy but no network and none
# of these (docs/gpu.md#4-benchmarking). Run here, in the repository root, where pip works.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/python -m pip}
rm -rf .whl && mkdir -p .whl
# Pinned to what the CPU tests run with (pyproject.toml pins diffusers itself).
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  diffusers==0.42.1 importlib_metadata==10.2.0 pydantic==2.14.4 pydantic_core==2.50.5 \
  pydantic-settings==2.16.3 python-dotenv==1.2.4 annotated-types==0.8.0 \
  typing-inspection==0.4.5 ftfy==6.3.1 wcwidth==0.9.4
du -sh .whl
