# The two commands of this repository. Both create the virtual environment on first use.
#   make run   execute the four notebooks on a real model on CPU (SmolLM2-135M; PROFILE=tiny for the quick one)
#   make test  unit tests, the notebooks under nbval, and checks of what they produced

PYTHON ?= python3
PROFILE ?= smollm2-135m
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: run test env clean lock

run: $(READY)
	$(BIN)/python -m helpers.series --profile $(PROFILE)

test: $(READY)
	$(BIN)/python -m pytest -n 2

env: $(READY)

# uv installs the ~300 pinned wheels in parallel and compiles their bytecode on both cores (~1.5 min; pip: ~5).
# It does not read pip's configuration, so the wheel folders pip is configured with (torch's CPU build) are passed on.
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))

$(READY): requirements/lock.txt requirements/build.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/build.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --compile-bytecode \
		$(addprefix --find-links ,$(FIND_LINKS)) -r requirements/lock.txt \
		|| { echo "uv could not install the lock (see above); installing it with pip instead"; \
		     $(BIN)/pip install --quiet --no-deps -r requirements/lock.txt; }
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m helpers.environment
	touch $@

# Re-resolve requirements/stack.txt into requirements/lock.txt (needs the package registries).
lock:
	requirements/relock.sh

clean:
	rm -rf $(VENV)
