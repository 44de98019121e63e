# `make serve` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch, installed before the package. Plain `torch==2.13.0` takes the first index pip is
# configured with: on PyPI that is the CUDA build on Linux (large, also runs on CPU); this
# project's CI machines point pip at a local index holding the CPU build. Pick a build:
#   make serve TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
#   make serve TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# (see README, "PyTorch"). Changing it later: `make clean` first (the stamps keep the old one).
TORCH_SPEC ?= torch==2.13.0
# Two stamps in one venv: `make serve` installs the runtime only; `make test` (and lint,
# typecheck, unit, bench) add the dev extras (test tools and every deployment extra) on top.
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.dev
DEMO := $(VENV)/.demo

.PHONY: serve demo samples test lint typecheck unit jstest bench clean watermark-font

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV): $(RUNTIME)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# `make demo` adds only the dashscope SDK it drives the server with (the dev extras have it too).
$(DEMO): $(RUNTIME)
	$(BIN)/python -m pip install -q -e ".[demo]"
	touch $@

serve: $(RUNTIME)
	$(BIN)/vace-server serve

# The offline first run: a server on loopback (tiny model, temporary data folder), the five
# functions through the dashscope SDK on samples/, then the server stops (vace_server/demo/).
demo: $(DEMO)
	$(BIN)/python -m vace_server.demo

# Redraws samples/ (deterministic: the committed files come out byte for byte).
samples: $(RUNTIME)
	$(BIN)/python -m vace_server.demo.samples samples

lint: $(DEV)
	$(BIN)/ruff check vace_server tests bench
	$(BIN)/ruff format --check vace_server tests bench

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV)
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-postgres.sh
	$(BIN)/pytest

# The playground's pure JavaScript (vace_server/api/static/js/) under Node's own test runner.
jstest:
	bash scripts/ensure-node.sh
	@if command -v node >/dev/null 2>&1; then node --test tests/js/*.test.mjs; \
	elif [ -n "$$CI" ]; then echo "jstest: node is not installed (scripts/ensure-node.sh)" >&2; exit 1; \
	else echo "jstest: skipped, node is not installed (scripts/ensure-node.sh)"; fi

test: lint typecheck jstest unit

# The serving figures (issue 11) against baselines measured in the same run; rewrites the
# serving section of docs/benchmarks.md (a few minutes on two cores; not part of `make test`,
# whose tests/bench/test_serving.py runs it at tiny sizes).
bench: $(DEV)
	$(BIN)/python -m bench.serving

# Re-cuts the bundled watermark font (vace_server/media/fonts/NOTICE.txt) from the Debian font:
# `apt-get install fonts-wqy-microhei` first (fontTools comes with the dev extras).
WQY_FONT ?= /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
watermark-font: $(DEV)
	$(BIN)/pyftsubset $(WQY_FONT) --font-number=0 --text='AI生成' \
		--output-file=vace_server/media/fonts/wqy-microhei-mark.ttf --layout-features='' \
		--no-hinting --desubroutinize --name-IDs='*' --notdef-outline

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
