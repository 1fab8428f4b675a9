# make smoke: build the tiny guests and boot the smoke profile of matrix.yaml.
# make test:  the test suite (real boots under QEMU).
# Both set the host up first (missing apt packages, .venv); that costs well under
# a second once everything is there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup smoke test nightly lint bench clean

# The libvirt daemons are started too (as root, when not running: libvirt cells are
# skips with the reason where they cannot be). The harness's bytecode is compiled
# here (up to date, in a tenth of a second): where PYTHONDONTWRITEBYTECODE is set, as
# in many containers, Python would otherwise compile every module at each start,
# most of a second of each `harness run`.
setup: $(STAMP)
	@tools/setup-host
	@$(BIN)/python -m harness.libvirt_host || true
	@$(BIN)/python -m compileall -q harness

$(STAMP): pyproject.toml tools/setup-host
	@tools/setup-host
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# The QEMU builds beside the host's (images/qemu.yaml): unpacked once into the cache,
# then checked against the mirror's package versions.
smoke: setup
	$(BIN)/harness qemu build
	$(BIN)/harness matrix --profile smoke

nightly: setup
	$(BIN)/harness images build --with-full
	$(BIN)/harness qemu build
	$(BIN)/harness matrix --profile nightly

# One worker per core, a test file per worker (real boots are CPU-bound; the files'
# shared fixtures run once), the longest files first (tests/conftest.py FILE_SECONDS;
# xdist would otherwise order them by their number of tests); then, alone, the check
# that no cached base image changed.
test: setup
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --ignore=tests/test_zz_integrity.py
	$(BIN)/pytest tests/test_zz_integrity.py

lint: setup
	$(BIN)/ruff check harness tests bench
	$(BIN)/ruff format --check harness tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) results
