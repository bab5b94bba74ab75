# Two commands for a new user:  `make demo`  (set up + run the main job)  and  `make test`.
# Each creates .venv, installs torch FIRST (CPU build torch==2.13.0 by default) and then the
# project with torch held at the installed version by a constraints file, so pip never swaps
# in another torch. GPU users: `make setup TORCH_SPEC="torch==2.5.1 --index-url <your CUDA wheel index>"`
# or install torch into .venv yourself and run `make setup TORCH_SPEC=`.
# EXTRAS: the default includes `sevenn` and `chgnet` (SevenNet-0 and CHGNet 0.3.0 ship inside
# their wheels; chgnet installs in seconds) so the native adapters are tested on every run, and
# `kappa` (phono3py, small) for thermal conductivity.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,qm,dist,sevenn,chgnet,kappa
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlip-props-installed

.PHONY: setup setup-dft demo test test-mace test-slow benchmarks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install -q $(TORCH_SPEC); fi
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(BIN)/python -m pip install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

# the optional `dft` extra (GPAW, a C++ build; apt-get of its libraries when root): its tests
# (marker dft) then run in the suite instead of skipping. CI runs it before `make test`.
setup-dft: setup
	bash .ci/install_dft.sh $(BIN)/python $(VENV)/constraints.txt

demo: setup
	$(BIN)/mlip-props demo

# `make test` runs the suite in .venv, then the MACE tests in a second venv (.venv-mace): mace-torch
# pins e3nn==0.4.4 and sevenn needs e3nn>=0.5, so the two cannot share one environment.
test: setup
	$(BIN)/python -m pytest -q
	$(MAKE) test-mace

MACE_VENV ?= .venv-mace
MACE_STAMP := $(MACE_VENV)/.mlip-props-installed

$(MACE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MACE_VENV)
	$(MACE_VENV)/bin/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(MACE_VENV)/bin/python -m pip install -q $(TORCH_SPEC); fi
	$(MACE_VENV)/bin/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(MACE_VENV)/constraints.txt
	$(MACE_VENV)/bin/python -m pip install -q -c $(MACE_VENV)/constraints.txt -e ".[dev,mace]"
	@touch $(MACE_STAMP)

# the MACE adapter's tests (models built and saved by the tests) in the environment with mace-torch
test-mace: $(MACE_STAMP)
	$(MACE_VENV)/bin/python -m pytest -q tests/potentials -k mace

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) $(MACE_VENV) mlip-props-demo .pytest_cache
