# hyperflux: every job of the repository is a target here; each prints what it does.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
JOBS ?= 1
EXECUTOR ?= local
FLAGS ?=
PYTEST_ARGS ?=

.PHONY: help install test test-slow check lint export clean-nbs readme lab paper docs bench

help:
	@echo "make install    create $(VENV) and install hyperflux (editable) with its dev extra"
	@echo "make test       run every notebook in nbs/ and every test in tests/ (pytest)"
	@echo "make test-slow  the same, including cells and tests flagged slow"
	@echo "make check      nbdev-clean + nbdev-export must leave the git tree unchanged, and make lint passes"
	@echo "make lint       ruff: pyflakes on hyperflux/, tests/, benchmarks/, tools/; 120 columns in nbs/, tests/, benchmarks/, tools/"
	@echo "make readme     write README.md from nbs/index.ipynb"
	@echo "make lab        JupyterLab on 127.0.0.1 with the venv's kernel"
	@echo "make paper      rebuild every result, figure and table (PROFILE=$(PROFILE), JOBS=$(JOBS), EXECUTOR=local|slurm)"
	@echo "make docs       render the documentation into _docs/ (Quarto if installed, else offline, notebooks executed; DOCS=offline, DOCS_EXECUTE=0)"
	@echo "make bench      run the benchmarks into benchmarks/"
	@echo ""
	@echo "Profiles of paper.yaml (make paper PROFILE=<name>; headline results go to figures/<name>/, side studies to figures/studies/<name>/):"
	@$(BIN)/hyperflux paper --profiles 2>/dev/null || echo "  (run make install first; then make help lists them from paper.yaml)"

install: $(VENV)/.installed

# The stamp makes a second `make install` a no-op until pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@echo ">>> make install: creating $(VENV) with $$($(PYTHON) --version) and installing hyperflux[dev] (editable)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@
	@echo ">>> make install: done; try $(BIN)/hyperflux --help"

test: install
	@echo ">>> make test: running every notebook under nbs/ and the tests in tests/"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	@echo ">>> make test-slow: notebooks with their slow cells, and the slow tests"
	$(BIN)/python -m pytest --nb-flags slow --run-slow $(PYTEST_ARGS)

export: install
	@echo ">>> nbdev-export: writing hyperflux/ from nbs/"
	$(BIN)/nbdev-export

clean-nbs: install
	@echo ">>> nbdev-clean: stripping notebook metadata (cell tags are kept)"
	$(BIN)/nbdev-clean

readme: install
	@echo ">>> make readme: README.md from nbs/index.ipynb"
	$(BIN)/python -c "from hyperflux.dev.readme import write_readme; write_readme()"

lint: install
	@echo ">>> make lint: ruff (pyflakes rules on the package, tests, benchmarks and tools; 120 columns where code is written)"
	$(BIN)/ruff check --select F hyperflux tests benchmarks tools
	$(BIN)/ruff check --select E501 nbs tests benchmarks tools

check: clean-nbs export readme lint
	@echo ">>> make check: notebooks, package and README must be unchanged in git"
	@if [ -n "$$(git status --porcelain -- nbs hyperflux README.md)" ]; then \
		git status --short -- nbs hyperflux README.md; \
		echo "make check: FAILED: the files above changed. Run 'make check' locally and commit the result."; exit 1; \
	else echo "make check: notebooks, package and README are in sync"; fi

# Root (the default in containers and cloud machines) needs --allow-root; a normal user never gets it.
LAB_PORT ?= 8888
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: install
	@echo ">>> make lab: JupyterLab with the kernel of $(VENV); open the http://127.0.0.1:$(LAB_PORT)/lab?token=... URL it prints below"
	$(BIN)/jupyter lab --ip 127.0.0.1 --port $(LAB_PORT) --no-browser --notebook-dir nbs $(LAB_ROOT)

paper: install
	@echo ">>> make paper: profile $(PROFILE) of paper.yaml, $(JOBS) run(s) at once: each unfinished run is a papermill execution of nbs/experiments/train_run.ipynb into runs/<run>/ (finished runs are skipped, interrupted ones resume), then figures/$(PROFILE)/ (side studies: figures/studies/$(PROFILE)/; PNG, PDF, tables/, manifest.json), and the index figures/README.md; make help lists the profiles"
	@if [ "$(EXECUTOR)" = slurm ]; then echo ">>> make paper: EXECUTOR=slurm: the unfinished runs go to Slurm as job arrays (submitit; resources: from paper.yaml, --slurm-* in FLAGS), the report follows them as a job; follow with: $(BIN)/hyperflux paper --profile $(PROFILE) --status"; fi
	HYPERFLUX_PAPER_COMMAND="make paper PROFILE=$(PROFILE) JOBS=$(JOBS) EXECUTOR=$(EXECUTOR)" $(BIN)/hyperflux paper --profile $(PROFILE) --jobs $(JOBS) --executor $(EXECUTOR) $(FLAGS)

# Quarto (nbdev-docs) where the quarto binary exists, else the offline renderer (tools/docs/, explained in
# nbs/91_docs.ipynb); DOCS=offline forces it.
# The offline renderer executes every notebook (cached in _proc/ by notebook content and package code);
# DOCS_EXECUTE=0 shows them unexecuted (fast: no outputs on the pages).
DOCS ?= auto
DOCS_EXECUTE ?= 1
docs: install readme
	@echo ">>> make docs: every notebook in nbs/ -> _docs/ (renderer: $(DOCS); Quarto $$(command -v quarto >/dev/null && echo found || echo 'not installed, so offline'); DOCS_EXECUTE=$(DOCS_EXECUTE))"
	DOCS_EXECUTE=$(DOCS_EXECUTE) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -c "from tools.docs.build import build_docs; build_docs('$(DOCS)')"

BENCH_FLAGS ?=
bench: install
	@echo ">>> make bench: training overhead, peak memory, sparse inference, compute to reach a sparsity and data"
	@echo ">>> pipeline on CPU (about 15 minutes) -> benchmarks/results.json and benchmarks/RESULTS.md"
	@echo ">>> (BENCH_FLAGS=--quick for a smoke test; on a GPU machine: bash benchmarks/gpu_check.sh, about 6 minutes)"
	$(BIN)/python benchmarks/bench.py $(BENCH_FLAGS)
