# hwopt developer commands. Everything runs in .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_DIR := build/demo

.PHONY: demo test install install-dev bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Editable installs: setup.py maps backends/, kernels/ and benchmarks/ into the optimizer package and builds
# the C++ kernels with CMake.
install: $(VENV)/bin/activate
	$(PIP) install --quiet -e .

install-dev: $(VENV)/bin/activate
	$(PIP) install --quiet -e '.[dev]'

demo: install
	$(PY) -m optimizer.examples.make_demo_model $(DEMO_DIR)/demo.onnx
	$(VENV)/bin/optimize $(DEMO_DIR)/demo.onnx --target cpu -o $(DEMO_DIR)/out --force --threads 2

test: install-dev
	$(VENV)/bin/pytest -q

bench: install-dev
	$(VENV)/bin/pytest -q benchmarks --benchmark-only

clean:
	rm -rf build $(VENV) *.egg-info
