# TinyCL-HDL: every target sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto

.PHONY: install demo test test-soak lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The main job: the class-incremental GDumb protocol on the embedded digits preset.
demo: install
	mkdir -p build/digits
	$(BIN)/tinycl train --preset digits --json build/digits/train.json --plot build/digits/accuracy.png

test: install
	$(BIN)/python -m pytest -n $(JOBS)

test-soak: install
	$(BIN)/python -m pytest -n $(JOBS) --soak

clean:
	rm -rf build sim_build .pytest_cache .hypothesis
