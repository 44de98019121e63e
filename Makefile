# `make serve` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch by default. GPU users: set TORCH_SPEC to the CUDA build they want,
# e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>" (see README).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: serve demo samples test lint typecheck unit jstest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

serve: $(STAMP)
	$(BIN)/vace-server serve

# The offline first run: a server on loopback (tiny model, temporary data folder), the five
# functions through the dashscope SDK on samples/, then the server stops (vace_server/demo/).
demo: $(STAMP)
	$(BIN)/python -m vace_server.demo

# Redraws samples/ (deterministic: the committed files come out byte for byte).
samples: $(STAMP)
	$(BIN)/python -m vace_server.demo.samples samples

lint: $(STAMP)
	$(BIN)/ruff check vace_server tests bench
	$(BIN)/ruff format --check vace_server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
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
bench: $(STAMP)
	$(BIN)/python -m bench.serving

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
