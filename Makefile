# nexlab: everything a fresh Debian 12 machine (as root) needs, then the job.
#   make demo   install what is missing, build a sample rootfs, audit it, write reports/
#   make test   install what is missing, lint, type-check and run the whole suite
#   make test-fast   the tests that need neither Docker nor QEMU (under a minute)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := e2fsprogs docker.io debootstrap qemu-system-x86 qemu-utils linux-image-cloud-amd64 \
	diffoscope chromium mount util-linux gzip ca-certificates qemu-system-arm \
	qemu-user-static binfmt-support
DEBIAN_TAG := nexlab/debian:bookworm
PYTEST_ARGS ?=

.PHONY: setup system-packages dockerd binfmt venv kernels base demo test test-fast lint typecheck unit bench clean

setup: system-packages dockerd binfmt venv kernels

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "system packages: all present"; fi

dockerd:
	@.ci/ensure-dockerd

# arm64 builds run their setup container under qemu-user-static.
binfmt: system-packages
	@.ci/ensure-binfmt

$(BIN)/nexlab: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/nexlab

# The arm64 boot kernel (Debian's arm64 cloud kernel and an initramfs of nexlab's) in
# /var/cache/nexlab/kernels/arm64, fetched by a private apt state (the host's apt and
# dpkg architectures are untouched); nothing to do when it is there.
kernels: system-packages venv
	$(BIN)/python -m nexlab.boot.provision arm64

base: setup
	$(BIN)/nexlab base debian --tag $(DEBIAN_TAG)

DEMO_AGENT := nexlab/builder/assets/sample-agent.sh
DEMO_SIZE ?= 200MiB

# The example reports in reports/ (see reports/README.md): an audit of a sample
# rootfs, a diff against a second build slimmed by reports/demo-slim.sh, and a
# reproducibility check. diff and repro exit 1 when they find differences: expected.
demo: base
	@mkdir -p demo reports
	$(BIN)/nexlab build --agent $(DEMO_AGENT) --image $(DEBIAN_TAG) --size $(DEMO_SIZE) -o demo/rootfs.ext4
	$(BIN)/nexlab audit demo/rootfs.ext4 --html reports/audit-demo.html --json-file reports/audit-demo.json --markdown reports/audit-demo.md
	$(BIN)/nexlab build --agent $(DEMO_AGENT) --image $(DEBIAN_TAG) --size $(DEMO_SIZE) --script reports/demo-slim.sh -o demo/rootfs-slim.ext4
	$(BIN)/nexlab diff demo/rootfs.ext4 demo/rootfs-slim.ext4 -q --json-file reports/diff-demo.json --html reports/diff-demo.html --markdown reports/diff-demo.md || [ $$? -eq 1 ]
	$(BIN)/nexlab repro --agent $(DEMO_AGENT) --image $(DEBIAN_TAG) --size $(DEMO_SIZE) --report reports --name demo || [ $$? -eq 1 ]
	$(BIN)/nexlab repro --agent $(DEMO_AGENT) --image $(DEBIAN_TAG) --size $(DEMO_SIZE) --report reports --name demo-plain --plain || [ $$? -eq 1 ]
	$(BIN)/python -m tests.make_screenshots reports
	@echo "sample rootfs: $$(pwd)/demo/rootfs.ext4; reports: $$(pwd)/reports/"

lint: venv
	$(BIN)/ruff check nexlab tests
	$(BIN)/ruff format --check nexlab tests

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test: base lint typecheck unit

# The edit-test loop: every test that needs neither Docker nor QEMU (tests/conftest.py
# derives which from their fixtures and fences both off), on two workers.
FAST_WORKERS ?= 2
test-fast: venv
	NEXLAB_TEST_LANE=fast $(BIN)/pytest -q -n $(FAST_WORKERS) $(PYTEST_ARGS)

bench: base
	$(BIN)/python -m tests.benchmarks.run_all

clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache
