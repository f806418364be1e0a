# supplementalGroupsPolicy conformance suite. `make conformance` and `make test` do all set-up.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RESULTS_DIR ?= results

# Run options (empty = default). See README "Options".
TARGET ?=
RUNTIME ?=
VERSION ?=
CRI_ENDPOINT ?=
CONTAINERD_BIN_DIR ?=
CRIO_BIN_DIR ?=
OCI_BIN_DIR ?=
CRIO_STORAGE ?=
HANDLER ?=
IMAGE_LOAD ?=
ARGS ?=
CELLS ?=
N ?= 20
LOAD ?=
MATRIX_JOBS ?=
# Kubernetes targets (TARGET=local|cluster|kind)
K8S ?=
K8S_BIN_DIR ?=
ETCD_BIN ?=
DRY_RUN ?=
KEEP ?=
REUSE ?=
KIND_BIN ?=
WORKER ?=
CONTEXT ?=
NODES ?=
VARIANTS ?=
IMAGE_REGISTRY ?=
IMAGE_REGISTRY_INSECURE ?=
IMAGE_PUSH ?=
HOST_NETWORK ?=
PARALLEL ?=
export DRY_RUN

RUN_OPTS = $(if $(TARGET),--target "$(TARGET)") $(if $(RUNTIME),--runtime "$(RUNTIME)") \
  $(if $(VERSION),--version "$(VERSION)") $(if $(CRI_ENDPOINT),--cri-endpoint "$(CRI_ENDPOINT)") \
  $(if $(CONTAINERD_BIN_DIR),--containerd-bin-dir "$(CONTAINERD_BIN_DIR)") \
  $(if $(CRIO_BIN_DIR),--crio-bin-dir "$(CRIO_BIN_DIR)") $(if $(CRIO_STORAGE),--crio-storage "$(CRIO_STORAGE)") \
  $(if $(OCI_BIN_DIR),--oci-bin-dir "$(OCI_BIN_DIR)") \
  $(if $(K8S),--k8s "$(K8S)") $(if $(K8S_BIN_DIR),--k8s-bin-dir "$(K8S_BIN_DIR)") $(if $(ETCD_BIN),--etcd-bin "$(ETCD_BIN)") \
  $(if $(KUBECONFIG),--kubeconfig "$(KUBECONFIG)") $(if $(CONTEXT),--context "$(CONTEXT)") $(if $(NODES),--nodes "$(NODES)") \
  $(if $(VARIANTS),--variants "$(VARIANTS)") $(if $(IMAGE_REGISTRY),--image-registry "$(IMAGE_REGISTRY)") \
  $(if $(IMAGE_REGISTRY_INSECURE),--image-registry-insecure "$(IMAGE_REGISTRY_INSECURE)") \
  $(if $(IMAGE_PUSH),--image-push "$(IMAGE_PUSH)") \
  $(if $(HOST_NETWORK),--host-network "$(HOST_NETWORK)") \
  $(if $(PARALLEL),--parallel "$(PARALLEL)") $(if $(KEEP),--keep "$(KEEP)") $(if $(REUSE),--reuse "$(REUSE)") \
  $(if $(KIND_BIN),--kind-bin "$(KIND_BIN)") $(if $(WORKER),--worker "$(WORKER)") \
  $(if $(HANDLER),--handler "$(HANDLER)") $(if $(IMAGE_LOAD),--image-load "$(IMAGE_LOAD)")
RUN_FLAGS = $(RUN_OPTS) --results-dir "$(RESULTS_DIR)"

# make audit: NAMESPACE (a name, or all), SELECTOR, OUTPUT (table, json, markdown); KUBECONFIG and CONTEXT above
NAMESPACE ?=
SELECTOR ?=
OUTPUT ?=
AUDIT_FLAGS = $(if $(KUBECONFIG),--kubeconfig "$(KUBECONFIG)") $(if $(CONTEXT),--context "$(CONTEXT)") \
  $(if $(filter all,$(NAMESPACE)),--all-namespaces,$(if $(NAMESPACE),--namespace "$(NAMESPACE)")) \
  $(if $(SELECTOR),--selector "$(SELECTOR)") $(if $(OUTPUT),--output "$(OUTPUT)")

.PHONY: setup conformance test lint ruff proto clean bench matrix report faults soak crun audit

$(BIN)/sgp-conformance: pyproject.toml
	./scripts/setup.sh "$(PY)" "$(VENV)"
	@touch $@

setup: $(BIN)/sgp-conformance

conformance: setup
	$(BIN)/sgp-conformance run $(RUN_FLAGS) $(ARGS)

audit: setup
	$(BIN)/sgp-conformance audit $(AUDIT_FLAGS) $(ARGS)

lint: setup
	$(BIN)/sgp-conformance lint

ruff: setup
	$(BIN)/ruff check conformance tests

test: setup
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || ./scripts/setup.sh "$(PY)" "$(VENV)" test
	$(BIN)/sgp-conformance lint
	$(BIN)/ruff check conformance tests
	$(BIN)/pytest tests -rs $(ARGS)

matrix: setup
	$(BIN)/python -m conformance.matrix --cells "$(CELLS)" --results-dir "$(RESULTS_DIR)" $(if $(MATRIX_JOBS),--jobs "$(MATRIX_JOBS)") \
	  $(if $(K8S_BIN_DIR),--k8s-bin-dir "$(K8S_BIN_DIR)") $(if $(ETCD_BIN),--etcd-bin "$(ETCD_BIN)") $(if $(K8S),--k8s "$(K8S)") \
	  $(if $(OCI_BIN_DIR),--oci-bin-dir "$(OCI_BIN_DIR)") $(if $(KIND_BIN),--kind-bin "$(KIND_BIN)") $(ARGS)

report: setup
	$(BIN)/python -m conformance.report "$(RESULTS_DIR)"

crun: setup
	$(BIN)/python -c 'import sys; from conformance.runtimes import crun; sys.exit(crun.main())'

faults: setup
	$(BIN)/python -m tests.faults

soak: setup
	$(BIN)/python -m conformance.soak -N $(N) --results-dir "$(RESULTS_DIR)" $(if $(LOAD),--load "$(LOAD)") $(RUN_OPTS) $(ARGS)

bench: setup
	$(BIN)/python -m conformance.bench $(if $(VERSION),--version "$(VERSION)") $(if $(TARGET),--target "$(TARGET)") \
	  $(if $(K8S_BIN_DIR),--k8s-bin-dir "$(K8S_BIN_DIR)") $(if $(ETCD_BIN),--etcd-bin "$(ETCD_BIN)") \
	  $(if $(filter crio,$(RUNTIME)),--crio-bin-dir "$(CRIO_BIN_DIR)") --results-dir "$(RESULTS_DIR)/bench"

proto: setup
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. conformance/cri/api.proto

clean:
	rm -rf $(RESULTS_DIR) .pytest_cache
