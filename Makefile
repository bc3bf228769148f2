# The course's two commands: `make lab` and `make test`. Both set everything up first and are
# fast the second time (the virtualenv is rebuilt only when the pins change).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NOTEBOOKS ?=
# The Jupyter kernel the notebooks ask for, installed inside the venv (so `jupyter lab` from the venv sees it).
KERNEL := $(VENV)/share/jupyter/kernels/asyncpg-course/kernel.json

.PHONY: help setup db lab test test-unit test-world lint lock execute bench html slides homework clean

help:
	@echo "make lab      set up and open JupyterLab on the course"
	@echo "make test     set up and run every test (helpers, notebooks under nbval, benchmark, browser)"
	@echo "make test-unit  the tests that need no PostgreSQL, in seconds (no server is started)"
	@echo "make test-world  real installs replayed as another user (Binder's steps; CI runs it)"
	@echo "make lint     ruff and mypy (make test runs them first)"
	@echo "make lock     regenerate the pins in constraints.txt from pyproject.toml"
	@echo "make execute  re-execute the notebooks in place (refreshes their stored outputs)"
	@echo "make bench    the full performance lab (python -m helpers bench)"
	@echo "make html     the executed notebooks as static HTML in build/html (offline)"
	@echo "make slides   reveal.js slides per notebook in build/slides (offline)"
	@echo "make homework the exercises as nbgrader assignments in build/nbgrader (instructors)"
	@echo "make clean    stop the embedded server and remove generated files"

# pip installs uv (one wheel), and uv installs the pinned rest in a few seconds (pip takes about
# a minute). uv does not read pip.conf, so where only a mirror configured for pip is reachable,
# pip installs the rest instead (slower, same pins).
INSTALL_ARGS := -c constraints.txt -e '.[lab,test,bench,dev]'

# A Python is its version and installation. `make setup PYTHON=python3.12` over a .venv that
# another Python made rebuilds it from scratch (--clear): updated in place, it would mix two
# Pythons. Without PYTHON= on the command line (or in the environment) the .venv is kept as it is.
PY_ID := import sys; print(sys.version.split()[0], sys.base_prefix)
ifneq ($(origin PYTHON),default)
ifneq ($(wildcard $(PY)),)
VENV_PY_ID := $(shell $(PY) -c '$(PY_ID)' 2>/dev/null)
ifneq ($(VENV_PY_ID),$(shell $(PYTHON) -c '$(PY_ID)' 2>/dev/null))
REBUILD_VENV := other-python
endif
endif
endif

.PHONY: other-python
other-python:
	@echo "$(VENV) was made by Python $(VENV_PY_ID), not by $(PYTHON): making it anew"

$(STAMP): pyproject.toml constraints.txt $(REBUILD_VENV)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(if $(REBUILD_VENV),--clear) $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) $(INSTALL_ARGS) \
	  || { echo "uv could not install the packages; installing them with pip instead"; \
	       $(PY) -m pip install --quiet --disable-pip-version-check $(INSTALL_ARGS); }
	touch $(STAMP)

setup: $(STAMP) $(KERNEL) db

$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name asyncpg-course --display-name "asyncpg course (.venv)"

db: $(STAMP)
	@$(PY) -m helpers db start

# JupyterLab reads <app dir>/settings/overrides.json as the defaults of its settings; the app dir
# of a venv's JupyterLab is .venv/share/jupyter/lab. "Never" fetch news: no pop-up asking about
# it on the first start, and no request to jupyter.org (a class may have no internet).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

$(LAB_OVERRIDES): $(STAMP)
	@mkdir -p $(dir $@)
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

lab: setup $(LAB_OVERRIDES)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

# Setup and lint side by side (the server and template build beside mypy), then two xdist
# workers, a file per worker at a time, in tests/scheduling.py's order: longest first
# (--no-loadscope-reorder keeps xdist from queueing the files with the most tests first).
# PYTEST_ARGS adds options, e.g. `make test PYTEST_ARGS="--durations=0"` for every test's time.
test:
	@$(MAKE) --no-print-directory -j2 setup lint
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=20 -m 'not world' $(PYTEST_ARGS)

# What `make test` leaves out to stay within minutes: the tests marked `world` (Binder's steps
# replayed as a user who is not root, tests/test_binder.py; nbgrader in a virtualenv of its own,
# tests/test_homework.py; notebook 11 twice beside 04), then a clone in a path with a space and
# non-ASCII letters set up by that user with the distribution's own Python
# (tests/world/floor_user.sh). .ci/run runs it after make test; what needs root says why it skips.
test-world: setup
	$(PY) -m pytest -p no:xdist -m world --durations=0 $(PYTEST_ARGS)
	bash tests/world/floor_user.sh

# The modules marked `no_server` (tests/test_layers.py, …): no server started, no template checked.
test-unit: $(STAMP)
	$(PY) -m pytest -p no:xdist -m "no_server and not server" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# Regenerate constraints.txt (and environment.yml's versions) from pyproject.toml's ranges.
lock: $(STAMP)
	$(PY) -m helpers.maintainers.lock

execute: setup
	$(PY) -m helpers notebooks execute $(NOTEBOOKS)

bench: setup
	$(PY) -m helpers bench --json build/bench/bench.json --plots build/bench

clean:
	-@[ -x $(PY) ] && $(PY) -m helpers db stop
	rm -rf build artifacts .pytest_cache

# Homework for a class (docs/instructor-guide.md, Homework): nbgrader in a virtualenv of its own,
# .venv-grading, so that a learner's `make lab` never shows nbgrader's menus. It sees the
# course's kernel, and its bin/ goes first on PATH because nbgrader runs its `alembic`.
# `course assignments` writes the source notebooks (notebooks/ is only read) and nbgrader the
# student versions in $(NBGRADER_DIR)/release/.
GRADING := .venv-grading
GRADING_STAMP := $(GRADING)/.installed
NBGRADER_DIR ?= build/nbgrader

$(GRADING_STAMP): $(STAMP)
	$(PYTHON) -m venv $(GRADING)
	$(VENV)/bin/uv pip install --quiet --python $(GRADING)/bin/python -c constraints.txt -e '.[lab,grading]' \
	  || $(GRADING)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[lab,grading]'
	$(GRADING)/bin/python -m ipykernel install --sys-prefix --name asyncpg-course --display-name "asyncpg course (.venv)"
	touch $(GRADING_STAMP)

homework: $(GRADING_STAMP) db
	$(GRADING)/bin/course assignments --out "$(NBGRADER_DIR)"
	cd "$(NBGRADER_DIR)" && PATH="$(CURDIR)/$(GRADING)/bin:$$PATH" "$(CURDIR)/$(GRADING)/bin/nbgrader" generate_assignment '*' --force --log-level=WARN

# Static copies for a classroom, from the outputs stored in the notebooks (nothing runs, no
# database): build/html/ (pages + index.html) and build/slides/ (reveal.js decks + index.html).
# Both work offline; reveal.js and Mermaid are fetched once with npm (versions in helpers/maintainers/site.py).
html: $(STAMP)
	$(PY) -m helpers site html

slides: $(STAMP)
	$(PY) -m helpers site slides
