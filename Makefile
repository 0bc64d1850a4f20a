# The two commands of this repository. Both create the virtual environment on first use.
#   make run   execute the four notebooks on the tiny profile (executed copies and figures: ./workspace)
#   make test  unit tests, the notebooks under nbval, and checks of what they produced

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: run test env clean lock

run: $(READY)
	$(BIN)/python -m helpers.series

test: $(READY)
	$(BIN)/python -m pytest

env: $(READY)

$(READY): requirements/lock.txt requirements/build.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/build.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m helpers.environment
	touch $@

# Re-resolve requirements/stack.txt into requirements/lock.txt (needs the package registries).
lock:
	requirements/relock.sh

clean:
	rm -rf $(VENV)
