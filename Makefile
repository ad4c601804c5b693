# One entry point for every chore. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo
OUT    ?= imgpipe-out
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= imgpipe-data

.DEFAULT_GOAL := help
.PHONY: help venv run test lint fmt bench demo process clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

venv: $(STAMP)  ## create .venv and install imgpipe with its dev tools (fast when nothing changed)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: venv  ## generate a small folder of demo photos in ./demo
	$(BIN)/python -m imgpipe.demo $(DEMO)

run: venv  ## start the local service (API + workers) on http://127.0.0.1:8080 (HOST=, PORT=)
	@echo "imgpipe: starting on http://$(HOST):$(PORT) - try: curl -F file=@photo.jpg http://$(HOST):$(PORT)/images"
	$(BIN)/imgpipe serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

process: demo  ## process the demo folder with the batch CLI into ./imgpipe-out
	$(BIN)/imgpipe process $(DEMO) --out $(OUT)
	@echo "renditions and metadata.json files are in ./$(OUT)"

lint: venv  ## format check, lint and strict types
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

fmt: venv  ## reformat and autofix
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint  ## lint, then the whole test suite (warnings are errors; no tests collected is a failure)
	$(BIN)/python -m pytest

bench: venv  ## imgpipe core vs naive Pillow on ../shared/corpus/photos/large (or BENCH_DIR=...)
	$(BIN)/python benchmarks/bench.py $(if $(BENCH_DIR),$(BENCH_DIR),)
	$(BIN)/python benchmarks/service_bench.py $(if $(BENCH_DIR),$(BENCH_DIR),)

clean:  ## remove the venv and generated output
	rm -rf $(VENV) $(OUT) $(DEMO) $(DATA) .pytest_cache .mypy_cache .ruff_cache
