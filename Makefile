# supplementalGroupsPolicy conformance suite. `make conformance` and `make test` do all set-up.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RESULTS_DIR ?= results

# Run options: every variable of the one options table (conformance/core/options.py; docs/options.md lists them:
# TARGET, RUNTIME, VERSION, K8S, K8S_BIN_DIR, CRIO_BIN_DIR, HANDLER, KEEP, ...), given to make or set in the
# environment, reaches the run as its flag (--options-from-env); nothing here lists them.
ARGS ?=
CELLS ?=
N ?= 20
LOAD ?=
MATRIX_JOBS ?=
DRY_RUN ?=
export DRY_RUN

# make audit: NAMESPACE (a name, or all), SELECTOR, OUTPUT (table, json, markdown), KUBECONFIG, CONTEXT
NAMESPACE ?=
SELECTOR ?=
OUTPUT ?=
AUDIT_FLAGS = $(if $(KUBECONFIG),--kubeconfig "$(KUBECONFIG)") $(if $(CONTEXT),--context "$(CONTEXT)") \
  $(if $(filter all,$(NAMESPACE)),--all-namespaces,$(if $(NAMESPACE),--namespace "$(NAMESPACE)")) \
  $(if $(SELECTOR),--selector "$(SELECTOR)") $(if $(OUTPUT),--output "$(OUTPUT)")

.PHONY: setup conformance test unit lint ruff proto clean bench matrix report faults soak crun audit

$(BIN)/sgp-conformance: pyproject.toml scripts/setup.sh
	./scripts/setup.sh "$(PY)" "$(VENV)"
	@touch $@

# what `make test` needs besides (a browser, a compiler, skopeo): scripts/setup.sh says which and why
$(VENV)/.test-setup: $(BIN)/sgp-conformance
	./scripts/setup.sh "$(PY)" "$(VENV)" test
	@touch $@

setup: $(BIN)/sgp-conformance

conformance: setup
	$(BIN)/sgp-conformance run --options-from-env --results-dir "$(RESULTS_DIR)" $(ARGS)

audit: setup
	$(BIN)/sgp-conformance audit $(AUDIT_FLAGS) $(ARGS)

lint: setup
	$(BIN)/sgp-conformance lint

ruff: setup
	$(BIN)/ruff check conformance tests setup.py

test: setup $(VENV)/.test-setup
	$(BIN)/sgp-conformance lint
	$(BIN)/ruff check conformance tests setup.py
	$(BIN)/pytest tests -rs $(ARGS)

# the fast set: no runtime, no root, no network (a minute)
unit: setup
	$(BIN)/pytest tests/unit tests/badinput -q -n 2 $(ARGS)

# the cells (CELLS, MATRIX_JOBS) and every shared option's variable come from the environment, as for conformance
matrix: setup
	$(BIN)/python -m conformance.tools.matrix --results-dir "$(RESULTS_DIR)" $(ARGS)

report: setup
	$(BIN)/python -m conformance.report "$(RESULTS_DIR)"

crun: setup
	$(BIN)/python -c 'import sys; from conformance.runtimes import crun; sys.exit(crun.main())'

faults: setup
	$(BIN)/python -m tests.faults

soak: setup
	$(BIN)/python -m conformance.tools.soak -N $(N) --results-dir "$(RESULTS_DIR)" $(if $(LOAD),--load "$(LOAD)") --options-from-env $(ARGS)

# the floor and the suite on the target the run's variables name (TARGET, RUNTIME, VERSION, ...); TARGET=audit: audit
bench: setup
	$(BIN)/python -m conformance.tools.bench --results-dir "$(RESULTS_DIR)/bench" $(if $(filter audit,$(TARGET)),--audit) $(ARGS)

proto: setup
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. conformance/cri/api.proto

clean:
	rm -rf $(RESULTS_DIR) .pytest_cache
