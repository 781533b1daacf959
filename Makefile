# Set-up and everyday commands. `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch 2.13.0 has a CPU wheel on our machines; installing it first keeps pip from pulling a
# multi-GB CUDA build to satisfy `torch>=2.3`. GPU users: see "GPU" in the README.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev,distributed,human,language,multiagent]"
	command -v chromedriver >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && S=$$([ "$$(id -u)" = 0 ] || echo sudo -n) && $$S apt-get update -q && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } || echo "warning: chromium and chromium-driver are missing and apt-get could not install them: the browser tests will fail" >&2
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/feedbackgym demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/python -m pytest -n 2 -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_bandits.py
	$(PY) benchmarks/bench_dueling.py
	$(PY) benchmarks/bench_feedback.py
	$(PY) benchmarks/bench_learned.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_corrections.py
	$(PY) benchmarks/bench_language_bandit.py
	$(PY) benchmarks/bench_delays_bandit.py
	$(PY) benchmarks/bench_delays_rl.py
	$(PY) benchmarks/bench_delays_pref.py
	$(PY) benchmarks/bench_multiagent_bandit.py
	$(PY) benchmarks/bench_multiagent.py
	$(PY) benchmarks/bench_cpl.py
	$(PY) benchmarks/bench_label_server.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
