# The two commands of this repository. Both create their virtual environments on first use.
#   make run   execute the four notebooks on a real model on CPU (SmolLM2-135M; PROFILE=tiny for the quick one),
#              on NeMo 2's route (ROUTE=nemo2, the default) or on Megatron-Bridge + ModelOpt's (ROUTE=bridge)
#   make test  unit tests, the notebooks under nbval on both routes, and checks of what they produced

PYTHON ?= python3
PROFILE ?= smollm2-135m
ROUTE ?= nemo2

# Each route's environment and the lock it installs (helpers/routes.py names the same folders).
VENV_nemo2  := .venv
LOCK_nemo2  := requirements/lock.txt
VENV_bridge := .venv-bridge
LOCK_bridge := requirements/bridge/lock.txt
VENV := $(or $(VENV_$(ROUTE)),$(error ROUTE=$(ROUTE) is not a route: use ROUTE=nemo2 or ROUTE=bridge))

NOTEBOOKS := 01_model_and_data_preparation.ipynb 02_pruning.ipynb 03_distillation.ipynb 04_depth_vs_width_comparison.ipynb

.PHONY: run test env clean lock

run: $(VENV)/.ready
	$(VENV)/bin/python -m helpers.series --profile $(PROFILE) --route $(ROUTE)

# The NeMo 2 route: unit tests, the real model's import, the tiny series and its checks (pyproject.toml's testpaths).
# Then the Megatron-Bridge route in its own environment: its unit tests, the tiny series and the same checks.
test: $(VENV_nemo2)/.ready $(VENV_bridge)/.ready
	$(VENV_nemo2)/bin/python -m pytest -n 2
	TUTORIAL_ROUTE=bridge $(VENV_bridge)/bin/python -m pytest -n 2 tests/bridge $(NOTEBOOKS) tests/series

env: $(VENV)/.ready

# uv installs the pinned wheels in parallel and compiles their bytecode on both cores (~1.5 min; pip: ~5).
# It does not read pip's configuration, so the wheel folders pip is configured with (torch's CPU build) are passed on.
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))

# $(call install,VENV,LOCK,ROUTE)
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet -r requirements/build.txt
	$(1)/bin/uv pip install --quiet --python $(1)/bin/python --no-deps --compile-bytecode \
		$(addprefix --find-links ,$(FIND_LINKS)) -r $(2) \
		|| { echo "uv could not install $(2) (see above); installing it with pip instead"; \
		     $(1)/bin/pip install --quiet --no-deps -r $(2); }
	$(1)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	$(1)/bin/python -m helpers.environment --route $(3)
	touch $(1)/.ready
endef

$(VENV_nemo2)/.ready: $(LOCK_nemo2) requirements/build.txt pyproject.toml
	$(call install,$(VENV_nemo2),$(LOCK_nemo2),nemo2)

$(VENV_bridge)/.ready: $(LOCK_bridge) requirements/build.txt pyproject.toml
	$(call install,$(VENV_bridge),$(LOCK_bridge),bridge)

# Re-resolve the route's stack into its lock (needs the package registries): make lock [ROUTE=bridge].
lock:
	requirements/relock.sh $(if $(filter bridge,$(ROUTE)),bridge)

clean:
	rm -rf $(VENV_nemo2) $(VENV_bridge)
